"""pod-security: the Pod Security Standards, per namespace, on pods and pod templates.

A pod that needs more than its namespace's level allows is denied. The default level is
`baseline`, which forbids the known privilege escalations (privileged containers, host
namespaces, hostPath volumes, added capabilities, ...); namespaces on the allowlist run at
level `privileged` and are not checked. Check ids and semantics follow the upstream
pod-security-admission library (https://kubernetes.io/docs/concepts/security/
pod-security-standards/), so a cluster can move between it and Bulwark without surprises.
"""

from __future__ import annotations

from collections.abc import Callable

from webhook.podspec import POD_CARRYING_KINDS, PodSpec, containers, find_pod_spec
from webhook.review import AdmissionRequest
from webhook.verdict import Object, PolicyContext, Violation

POLICY = "pod-security"

Check = Callable[[PodSpec, str], list[Violation]]


def _allowlist_hint(namespace: str) -> str:
    return (
        f"or ask for namespace {namespace or '(none)'} to run privileged pods "
        f"(podSecurity.namespaces: {{{namespace}: privileged}})"
    )


def check_privileged(pod: PodSpec, hint: str) -> list[Violation]:
    """Privileged containers can do almost anything the host can."""
    found = []
    for container in containers(pod):
        context = container.body.get("securityContext")
        if isinstance(context, dict) and context.get("privileged") is True:
            found.append(
                Violation(
                    POLICY,
                    "privileged",
                    f"{container.label} sets securityContext.privileged=true; "
                    f"set it to false {hint}",
                    f"{container.path}.securityContext.privileged",
                    container.label,
                )
            )
    return found


BASELINE_CHECKS: tuple[Check, ...] = (check_privileged,)
RESTRICTED_CHECKS: tuple[Check, ...] = BASELINE_CHECKS


def judge_pod(pod: PodSpec, level: str, namespace: str) -> list[Violation]:
    """Every Pod Security Standards violation of `pod` at `level`."""
    if level == "privileged":
        return []
    checks = RESTRICTED_CHECKS if level == "restricted" else BASELINE_CHECKS
    hint = _allowlist_hint(namespace)
    return [violation for check in checks for violation in check(pod, hint)]


class PodSecurity:
    """The pod-security policy, as the engine calls it."""

    name = POLICY

    def applies_to(self, request: AdmissionRequest) -> bool:
        return request.kind.kind in POD_CARRYING_KINDS and request.sub_resource in (
            "",
            "ephemeralcontainers",
        )

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        level = context.settings.pod_security.level_for(context.namespace)
        pod = find_pod_spec(context.request.kind.kind, obj)
        if pod is None:
            return []
        return judge_pod(pod, level, context.namespace)
