"""pod-security: the Pod Security Standards, per namespace, on pods and pod templates.

A pod that needs more than its namespace's level allows is denied. The default level is
`baseline`, which forbids the known privilege escalations (privileged containers, host
namespaces, hostPath volumes, added capabilities, ...); `restricted` adds current hardening
practice (no root, no privilege escalation, a seccomp profile, ALL capabilities dropped);
namespaces on the allowlist run at level `privileged` and are not checked.

Check ids and semantics are those of the upstream pod-security-admission library at its
newest version, v1.37 (https://kubernetes.io/docs/concepts/security/pod-security-standards/),
so a cluster can move between it and Bulwark without surprises; `tests/oracle` runs that
library to compare. Upstream quirks are kept on purpose, for instance: at restricted,
`capabilities_restricted` stands in for `capabilities_baseline`, and it exempts Windows
pods, so a Windows pod that adds SYS_ADMIN passes restricted but not baseline.

Violations are one per offending field. Their subject, which an UPDATE compares with the
old object's, is the container (`container "web"`), `pod`, the volume (`volume "data"`),
the sysctl, the AppArmor annotation, or the host namespace (`hostPID`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from webhook.podspec import POD_CARRYING_KINDS, PodSpec, find_pod_spec
from webhook.policies.pod_security import baseline, restricted
from webhook.policies.pod_security.view import POLICY, PodView, view_of
from webhook.request import Request
from webhook.verdict import Object, PolicyContext, Violation

__all__ = ["CHECKS", "POLICY", "Check", "PodSecurity", "checks_at", "judge_pod"]


@dataclass(frozen=True, slots=True)
class Check:
    """One Pod Security Standards check, as upstream registers it."""

    id: str
    level: str  # the lowest level that runs it: baseline or restricted
    run: Callable[[PodView], None]
    stands_in_for: str = ""  # the baseline check this one replaces at restricted
    # It reads nothing but the pod's and the containers' securityContext, and a pod with
    # none passes it. Most pods set none; skipping these then judges a pod a fifth faster.
    needs_security_context: bool = False


CHECKS: tuple[Check, ...] = (
    Check("privileged", "baseline", baseline.privileged, needs_security_context=True),
    Check("hostNamespaces", "baseline", baseline.host_namespaces),
    Check("hostPathVolumes", "baseline", baseline.host_path_volumes),
    Check("hostPorts", "baseline", baseline.host_ports),
    Check("hostProbesAndHostLifecycle", "baseline", baseline.host_probes_and_host_lifecycle),
    Check("capabilities_baseline", "baseline", baseline.capabilities, needs_security_context=True),
    Check("seLinuxOptions", "baseline", baseline.selinux_options, needs_security_context=True),
    Check("procMount", "baseline", baseline.proc_mount, needs_security_context=True),
    Check(
        "seccompProfile_baseline", "baseline", baseline.seccomp_profile, needs_security_context=True
    ),
    Check("sysctls", "baseline", baseline.sysctls, needs_security_context=True),
    Check("appArmorProfile", "baseline", baseline.app_armor_profile),
    Check(
        "windowsHostProcess", "baseline", baseline.windows_host_process, needs_security_context=True
    ),
    Check("allowPrivilegeEscalation", "restricted", restricted.allow_privilege_escalation),
    Check("runAsNonRoot", "restricted", restricted.run_as_non_root),
    Check("runAsUser", "restricted", restricted.run_as_user),
    Check(
        "seccompProfile_restricted",
        "restricted",
        restricted.seccomp_profile,
        "seccompProfile_baseline",
    ),
    Check(
        "capabilities_restricted", "restricted", restricted.capabilities, "capabilities_baseline"
    ),
    Check("procMount_restricted", "restricted", restricted.proc_mount, "procMount"),
    Check("restrictedVolumes", "restricted", restricted.restricted_volumes, "hostPathVolumes"),
)


def checks_at(level: str) -> tuple[Check, ...]:
    """The checks a level runs: baseline's, or all of them less those a stand-in replaces."""
    if level == "baseline":
        return tuple(check for check in CHECKS if check.level == "baseline")
    if level == "restricted":
        replaced = {check.stands_in_for for check in CHECKS}
        return tuple(check for check in CHECKS if check.id not in replaced)
    return ()


_CHECKS_AT = {level: checks_at(level) for level in ("baseline", "restricted")}


def judge_pod(pod: PodSpec, level: str, namespace: str) -> list[Violation]:
    """Every Pod Security Standards violation of `pod` at `level` (none at privileged)."""
    checks = _CHECKS_AT.get(level)
    if not checks:
        return []
    view = view_of(pod, namespace)
    secured = bool(view.secured or view.security)
    for check in checks:
        if secured or not check.needs_security_context:
            check.run(view)
    return view.found


class PodSecurity:
    """The pod-security policy, as the engine calls it."""

    name = POLICY

    def applies_to(self, request: Request) -> bool:
        return request.kind.kind in POD_CARRYING_KINDS and request.sub_resource in (
            "",
            "ephemeralcontainers",
        )

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        level = context.settings.pod_security.level_for(context.namespace)
        if level == "privileged":
            return []
        pod = find_pod_spec(context.request.kind.kind, obj)
        if pod is None:
            return []
        return judge_pod(pod, level, context.namespace)
