"""pod-security through the real engine: each check, the handed cases, UPDATE, enforcement."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from webhook.admission import mutate, validate
from webhook.config import settings_from_mapping
from webhook.policies.pod_security.view import show
from webhook.review import AdmissionRequest
from webhook.verdict import Verdict

RESOURCES = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "StatefulSet": ("apps", "v1", "statefulsets"),
    "DaemonSet": ("apps", "v1", "daemonsets"),
    "Job": ("batch", "v1", "jobs"),
    "CronJob": ("batch", "v1", "cronjobs"),
    "ReplicationController": ("", "v1", "replicationcontrollers"),
    "PodTemplate": ("", "v1", "podtemplates"),
}


def request_for(
    obj: dict[str, Any],
    *,
    namespace: str = "team-a",
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    sub_resource: str = "",
) -> AdmissionRequest:
    group, version, resource = RESOURCES[obj["kind"]]
    return AdmissionRequest.model_validate(
        {
            "uid": "test",
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": resource},
            "subResource": sub_resource,
            "namespace": namespace,
            "operation": operation,
            "object": obj,
            "oldObject": old,
        }
    )


def judge(obj: dict[str, Any], config: dict[str, Any] | None = None, **request: Any) -> Verdict:
    return validate(request_for(obj, **request), settings_from_mapping(config or {}))


def at(level: str) -> dict[str, Any]:
    return {"podSecurity": {"defaultLevel": level}}


def checks(verdict: Verdict) -> set[str]:
    return {f"{v.policy}/{v.check}" for v in verdict.all_violations}


def merged(base: Any, patch: Any) -> Any:
    """`base` with `patch` merged in; a None in `patch` removes the key."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result


# A pod that passes the restricted level; each table row changes one thing in it.
RESTRICTED_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "app",
                "image": "registry.example/app:1",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    },
}


def pod_with(spec: dict[str, Any], app: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    pod = merged(RESTRICTED_POD, {"metadata": metadata, "spec": spec})
    pod["spec"]["containers"][0] = merged(pod["spec"]["containers"][0], app)
    return pod


def sc(**fields: Any) -> dict[str, Any]:
    """A container patch that sets securityContext fields."""
    return {"securityContext": fields}


def pod_sc(**fields: Any) -> dict[str, Any]:
    """A spec patch that sets pod securityContext fields."""
    return {"securityContext": fields}


APP = "spec.containers[0]"
ANNOTATION = "container.apparmor.security.beta.kubernetes.io/app"

DENIED = [
    # baseline
    pytest.param("baseline", {}, sc(privileged=True), {}, "privileged",
                 f"{APP}.securityContext.privileged", id="privileged"),
    pytest.param("baseline", {"hostPID": True}, {}, {}, "hostNamespaces",
                 "spec.hostPID", id="hostNamespaces-pid"),
    pytest.param("baseline", {"hostNetwork": True}, {}, {}, "hostNamespaces",
                 "spec.hostNetwork", id="hostNamespaces-network"),
    pytest.param("baseline", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, {}, {},
                 "hostPathVolumes", "spec.volumes[0].hostPath", id="hostPathVolumes"),
    pytest.param("baseline", {}, {"ports": [{"containerPort": 80, "hostPort": 80}]}, {},
                 "hostPorts", f"{APP}.ports[0].hostPort", id="hostPorts"),
    pytest.param("baseline", {}, {"livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80}}},
                 {}, "hostProbesAndHostLifecycle", f"{APP}.livenessProbe.httpGet.host",
                 id="hostProbesAndHostLifecycle-probe"),
    pytest.param("baseline", {},
                 {"lifecycle": {"preStop": {"tcpSocket": {"host": "db", "port": 5432}}}}, {},
                 "hostProbesAndHostLifecycle", f"{APP}.lifecycle.preStop.tcpSocket.host",
                 id="hostProbesAndHostLifecycle-hook"),
    pytest.param("baseline", {}, sc(capabilities={"add": ["NET_RAW"]}), {},
                 "capabilities_baseline", f"{APP}.securityContext.capabilities.add",
                 id="capabilities_baseline"),
    pytest.param("baseline", pod_sc(seLinuxOptions={"type": "spc_t"}), {}, {}, "seLinuxOptions",
                 "spec.securityContext.seLinuxOptions.type", id="seLinuxOptions-pod-type"),
    pytest.param("baseline", {}, sc(seLinuxOptions={"user": "system_u"}), {}, "seLinuxOptions",
                 f"{APP}.securityContext.seLinuxOptions.user", id="seLinuxOptions-user"),
    pytest.param("baseline", {}, sc(procMount="Unmasked"), {}, "procMount",
                 f"{APP}.securityContext.procMount", id="procMount"),
    pytest.param("baseline", {}, sc(seccompProfile={"type": "Unconfined"}), {},
                 "seccompProfile_baseline", f"{APP}.securityContext.seccompProfile.type",
                 id="seccompProfile_baseline"),
    pytest.param("baseline", pod_sc(sysctls=[{"name": "kernel.msgmax", "value": "1"}]), {}, {},
                 "sysctls", "spec.securityContext.sysctls[0].name", id="sysctls"),
    pytest.param("baseline", {}, sc(appArmorProfile={"type": "Unconfined"}), {},
                 "appArmorProfile", f"{APP}.securityContext.appArmorProfile.type",
                 id="appArmorProfile-field"),
    pytest.param("baseline", {}, {}, {"annotations": {ANNOTATION: "unconfined"}},
                 "appArmorProfile", f'metadata.annotations["{ANNOTATION}"]',
                 id="appArmorProfile-annotation"),
    pytest.param("baseline", pod_sc(windowsOptions={"hostProcess": True}), {}, {},
                 "windowsHostProcess", "spec.securityContext.windowsOptions.hostProcess",
                 id="windowsHostProcess"),
    # restricted
    pytest.param("restricted", {}, sc(allowPrivilegeEscalation=None), {},
                 "allowPrivilegeEscalation", f"{APP}.securityContext.allowPrivilegeEscalation",
                 id="allowPrivilegeEscalation"),
    pytest.param("restricted", pod_sc(runAsNonRoot=False), {}, {}, "runAsNonRoot",
                 "spec.securityContext.runAsNonRoot", id="runAsNonRoot-pod-false"),
    pytest.param("restricted", pod_sc(runAsNonRoot=None), {}, {}, "runAsNonRoot",
                 f"{APP}.securityContext.runAsNonRoot", id="runAsNonRoot-unset"),
    pytest.param("restricted", {}, sc(runAsUser=0), {}, "runAsUser",
                 f"{APP}.securityContext.runAsUser", id="runAsUser"),
    pytest.param("restricted", pod_sc(seccompProfile=None), {}, {}, "seccompProfile_restricted",
                 f"{APP}.securityContext.seccompProfile", id="seccompProfile_restricted-unset"),
    pytest.param("restricted", {}, sc(seccompProfile={"type": "Unconfined"}), {},
                 "seccompProfile_restricted", f"{APP}.securityContext.seccompProfile.type",
                 id="seccompProfile_restricted-stands-in"),
    pytest.param("restricted", {}, sc(capabilities={"drop": ["NET_RAW"]}), {},
                 "capabilities_restricted", f"{APP}.securityContext.capabilities.drop",
                 id="capabilities_restricted-drop"),
    pytest.param("restricted", {}, sc(capabilities={"add": ["SYS_ADMIN"]}), {},
                 "capabilities_restricted", f"{APP}.securityContext.capabilities.add",
                 id="capabilities_restricted-stands-in"),
    pytest.param("restricted", {"hostUsers": False}, sc(procMount="Unmasked"), {},
                 "procMount_restricted", f"{APP}.securityContext.procMount",
                 id="procMount_restricted-user-namespace"),
    pytest.param("restricted", {"volumes": [{"name": "share", "nfs": {"server": "x"}}]}, {}, {},
                 "restrictedVolumes", "spec.volumes[0].nfs", id="restrictedVolumes"),
    pytest.param("restricted", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, {}, {},
                 "restrictedVolumes", "spec.volumes[0].hostPath",
                 id="restrictedVolumes-stands-in-for-hostPathVolumes"),
]  # fmt: skip


@pytest.mark.parametrize(("level", "spec", "app", "metadata", "check", "path"), DENIED)
def test_one_unsafe_setting_is_denied_by_its_check_at_its_field(
    level: str,
    spec: dict[str, Any],
    app: dict[str, Any],
    metadata: dict[str, Any],
    check: str,
    path: str,
) -> None:
    """One unsafe setting in a restricted pod fails exactly its check, pointing at its field."""
    verdict = judge(pod_with(spec, app, metadata), at(level))

    assert not verdict.allowed
    assert [(v.check, v.path) for v in verdict.violations] == [(check, path)]


ALLOWED = [
    pytest.param("baseline", {"hostUsers": False}, sc(procMount="Unmasked"), {},
                 id="unmasked-procMount-in-a-user-namespace"),
    pytest.param("baseline", pod_sc(sysctls=[{"name": "net.ipv4.tcp_notsent_lowat", "value": "1"}]),
                 {}, {}, id="sysctl-added-in-v1.37"),
    pytest.param("baseline", pod_sc(seLinuxOptions={"type": "container_engine_t"}), {}, {},
                 id="selinux-container_engine_t"),
    pytest.param("baseline", {}, {}, {"annotations": {ANNOTATION: "localhost/custom"}},
                 id="apparmor-localhost-annotation"),
    pytest.param("baseline", {}, {}, {"annotations": {
                 "seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
                 id="seccomp-annotations-no-longer-count"),
    pytest.param("baseline", {}, {"readinessProbe": {"httpGet": {"host": "", "port": 80}}}, {},
                 id="empty-probe-host"),
    pytest.param("restricted", {}, sc(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
                 {}, id="restricted-adds-net-bind-service"),
    pytest.param("restricted", {"hostUsers": False, "securityContext": {"runAsUser": 0}}, {}, {},
                 id="root-in-a-user-namespace"),
    pytest.param("restricted", {"volumes": [{"name": "tools", "image": {"reference": "x:1"}},
                                            {"name": "scratch"}]}, {}, {},
                 id="image-and-sourceless-volumes"),
    pytest.param("restricted", {"os": {"name": "windows"}, "securityContext": None},
                 {"securityContext": {"runAsNonRoot": True}}, {},
                 id="windows-pod-without-linux-only-fields"),
]  # fmt: skip


@pytest.mark.parametrize(("level", "spec", "app", "metadata"), ALLOWED)
def test_setting_the_standards_allow_is_admitted(
    level: str, spec: dict[str, Any], app: dict[str, Any], metadata: dict[str, Any]
) -> None:
    """A setting the v1.37 standards allow at a level is admitted there."""
    verdict = judge(pod_with(spec, app, metadata), at(level))

    assert verdict.allowed, [v.message for v in verdict.violations]


def test_message_names_container_field_value_allowed_values_and_the_way_out() -> None:
    """A denial says which container, which field, the bad value, what passes, and the allowlist."""
    pod = pod_with({}, sc(capabilities={"add": ["NET_RAW", "CHOWN"]}), {})

    (violation,) = judge(pod, at("baseline")).violations

    assert violation.subject == 'container "app"'
    for part in ('container "app"', f"{APP}.securityContext.capabilities.add", '"NET_RAW"',
                 "AUDIT_WRITE, CHOWN", "podSecurity.namespaces: {team-a: privileged}"):  # fmt: skip
        assert part in violation.message
    assert '"CHOWN"' not in violation.message


def test_restricted_only_violation_points_to_the_baseline_level() -> None:
    """A violation only restricted forbids suggests running the namespace at baseline."""
    (violation,) = judge(pod_with({}, sc(runAsUser=0), {}), at("restricted")).violations

    assert "podSecurity.namespaces: {team-a: baseline}" in violation.message


# The handed cases C01-C04, in our own words.

MIXED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "mixed"},
    "spec": {
        "containers": [
            {"name": "worker", "image": "registry.example/worker:1.0"},
            {
                "name": "sidecar",
                "image": "registry.example/agent:2.1",
                "securityContext": {"privileged": True},
            },
        ]
    },
}


def test_privileged_sidecar_in_second_position_is_denied_outside_the_allowlist() -> None:
    """C01: the second container's privilege is found and the denial names the sidecar."""
    verdict = judge(MIXED_POD)

    assert not verdict.allowed
    assert checks(verdict) == {"pod-security/privileged"}
    assert "sidecar" in verdict.violations[0].message
    assert verdict.violations[0].path == "spec.containers[1].securityContext.privileged"


def test_privileged_pod_in_an_allowlisted_namespace_is_admitted_and_still_mutated() -> None:
    """C02: a privileged-level namespace admits the pod, and pod-defaults still applies."""
    pod = copy.deepcopy(MIXED_POD)
    config = {"podSecurity": {"namespaces": {"media": "privileged", "kube-system": "privileged"}}}
    settings = settings_from_mapping(config)

    verdict = validate(request_for(pod, namespace="media"), settings)
    patch = mutate(request_for(pod, namespace="media"), settings).patch

    assert verdict.allowed
    assert not verdict.all_violations
    assert jsonpatch.apply_patch(pod, patch)["spec"]["securityContext"]["fsGroup"] == 1000


def test_cronjob_init_container_adding_sys_admin_is_found_three_levels_down() -> None:
    """C03: a CronJob's init container that adds SYS_ADMIN is denied, its path in jobTemplate."""
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "initContainers": [{
                    "name": "prepare",
                    "image": "registry.example/tools:1",
                    "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}},
                }],
                "containers": [{"name": "job", "image": "registry.example/job:1"}],
            }}}},
        },
    }  # fmt: skip

    verdict = judge(cronjob)

    assert not verdict.allowed
    assert checks(verdict) == {"pod-security/capabilities_baseline"}
    assert "jobTemplate" in verdict.violations[0].message
    assert verdict.violations[0].path == (
        "spec.jobTemplate.spec.template.spec.initContainers[0].securityContext.capabilities.add"
    )


def test_deployment_template_on_the_host_network_is_denied() -> None:
    """C04: a Deployment template on the host network is denied (no-patch is pod-defaults')."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "edge"},
        "spec": {
            "selector": {"matchLabels": {"app": "edge"}},
            "template": {
                "metadata": {"labels": {"app": "edge"}},
                "spec": {
                    "hostNetwork": True,
                    "containers": [{"name": "proxy", "image": "registry.example/proxy:3"}],
                },
            },
        },
    }

    verdict = judge(deployment)

    assert not verdict.allowed
    assert checks(verdict) == {"pod-security/hostNamespaces"}
    assert verdict.violations[0].path == "spec.template.spec.hostNetwork"


def carrying(kind: str, pod: dict[str, Any]) -> dict[str, Any]:
    template = {"metadata": pod["metadata"], "spec": pod["spec"]}
    if kind == "Pod":
        return copy.deepcopy(pod)
    if kind == "PodTemplate":
        return {"apiVersion": "v1", "kind": kind, "metadata": {"name": "t"}, "template": template}
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "@daily", "jobTemplate": {"spec": spec}}
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": "w"}, "spec": spec}


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        pytest.param("Pod", "spec", id="Pod"),
        pytest.param("Deployment", "spec.template.spec", id="Deployment"),
        pytest.param("ReplicaSet", "spec.template.spec", id="ReplicaSet"),
        pytest.param("StatefulSet", "spec.template.spec", id="StatefulSet"),
        pytest.param("DaemonSet", "spec.template.spec", id="DaemonSet"),
        pytest.param("Job", "spec.template.spec", id="Job"),
        pytest.param("CronJob", "spec.jobTemplate.spec.template.spec", id="CronJob"),
        pytest.param("ReplicationController", "spec.template.spec", id="ReplicationController"),
        pytest.param("PodTemplate", "template.spec", id="PodTemplate"),
    ],
)
def test_privileged_container_is_denied_in_every_pod_carrying_kind(kind: str, prefix: str) -> None:
    """Every kind that carries a pod spec is judged, and the path leads into its template."""
    verdict = judge(carrying(kind, MIXED_POD))

    assert not verdict.allowed
    assert [v.path for v in verdict.violations] == [
        f"{prefix}.containers[1].securityContext.privileged"
    ]


def test_label_update_of_an_existing_privileged_pod_is_admitted() -> None:
    """An UPDATE that only adds a label keeps a pod that already had its violations."""
    updated = merged(MIXED_POD, {"metadata": {"labels": {"tier": "batch"}}})

    verdict = judge(updated, operation="UPDATE", old=MIXED_POD)

    assert verdict.allowed


def test_reordering_containers_creates_no_new_violation() -> None:
    """Violations are told apart by container name, not position, so a reorder is admitted."""
    reordered = copy.deepcopy(MIXED_POD)
    reordered["spec"]["containers"].reverse()

    assert judge(reordered, operation="UPDATE", old=MIXED_POD).allowed


def test_new_privileged_container_in_a_deployment_update_is_denied() -> None:
    """An UPDATE adding a privileged container is denied for it, not for the old one."""
    old = carrying("Deployment", MIXED_POD)
    new = copy.deepcopy(old)
    debugger = {"name": "debugger", "image": "dbg:1", "securityContext": {"privileged": True}}
    new["spec"]["template"]["spec"]["containers"].append(debugger)

    verdict = judge(new, operation="UPDATE", old=old)

    assert not verdict.allowed
    assert [v.subject for v in verdict.violations] == ['container "debugger"']


def test_new_host_namespace_in_a_template_already_on_the_host_network_is_denied() -> None:
    """Each host namespace is its own subject: adding hostPID to a hostNetwork template is new."""
    old = carrying("Deployment", merged(RESTRICTED_POD, {"spec": {"hostNetwork": True}}))
    new = merged(old, {"spec": {"template": {"spec": {"hostPID": True}}}})

    verdict = judge(new, operation="UPDATE", old=old)

    assert [v.path for v in verdict.violations] == ["spec.template.spec.hostPID"]


def test_privileged_debug_container_through_ephemeralcontainers_is_denied() -> None:
    """`kubectl debug --profile=sysadmin` adds a privileged ephemeral container: denied."""
    old = copy.deepcopy(RESTRICTED_POD)
    new = merged(old, {"spec": {"ephemeralContainers": [
        {"name": "debugger", "image": "busybox", "securityContext": {"privileged": True}}
    ]}})  # fmt: skip

    verdict = judge(new, operation="UPDATE", old=old, sub_resource="ephemeralcontainers")

    assert not verdict.allowed
    assert [(v.check, v.path) for v in verdict.violations] == [
        ("privileged", "spec.ephemeralContainers[0].securityContext.privileged")
    ]
    assert 'ephemeral container "debugger"' in verdict.violations[0].message


def test_exempt_namespace_skips_pod_security() -> None:
    """A namespace in exemptNamespaces is not judged at all."""
    verdict = judge(MIXED_POD, {"exemptNamespaces": ["team-a"]})

    assert verdict.allowed
    assert not verdict.all_violations


def test_per_namespace_level_overrides_the_default_level() -> None:
    """A namespace set to restricted is judged at restricted under a baseline default."""
    pod = pod_with({}, sc(runAsUser=0), {})

    assert judge(pod).allowed
    assert not judge(pod, {"podSecurity": {"namespaces": {"team-a": "restricted"}}}).allowed


def test_warn_enforcement_admits_with_warnings() -> None:
    """With enforcement warn, the pod is admitted and the violation comes back as a warning."""
    verdict = judge(MIXED_POD, {"enforcement": {"pod-security": "warn"}})

    assert verdict.allowed
    assert any(
        w.startswith("[pod-security/privileged]") and "sidecar" in w for w in verdict.warnings
    )


def test_audit_enforcement_admits_with_audit_annotations() -> None:
    """With enforcement audit, the pod is admitted and the violation is an audit annotation."""
    verdict = judge(MIXED_POD, {"enforcement": {"pod-security": "audit"}})

    assert verdict.allowed
    assert not verdict.warnings
    assert "sidecar" in verdict.audit_annotations()["pod-security.privileged"]


def test_an_audit_annotation_lists_twenty_violations_and_counts_the_rest() -> None:
    """A pod of 25 privileged containers under audit: one annotation, 20 messages and the
    count of the others, so that a huge pod does not swell the API server's audit event."""
    containers = [
        {"name": f"c{n}", "image": "x", "securityContext": {"privileged": True}} for n in range(25)
    ]
    pod = {**MIXED_POD, "spec": {"containers": containers}}
    verdict = judge(pod, {"enforcement": {"pod-security": "audit"}})

    (annotation,) = verdict.audit_annotations().values()
    assert annotation.count("is true; set it to false") == 20
    assert '"c19"' in annotation
    assert '"c20"' not in annotation
    assert annotation.endswith("; and 5 more")
    assert len(verdict.audited) == 25


def test_a_value_nested_too_deeply_to_echo_is_named_not_a_policy_failure() -> None:
    nested: list[object] = []
    for _ in range(5000):
        nested = [nested]
    assert show(nested) == "(a value nested too deeply to show)"
    assert show({"path": "/etc"}) == '{"path": "/etc"}'
