"""Bulwark's pod-security verdicts on the gatekeeper-library pod-security-policy samples.

Gatekeeper's PSP constraint templates are the other common way to enforce pod security. Each
row below is one sample object of a template that tests a Pod Security Standards control,
judged under one of the library's sample constraints, as `fixtures/expected.tsv` lists them:
Gatekeeper's verdict, Bulwark's verdict at baseline and at restricted, and, where Bulwark
deliberately differs, why. A row agrees when Bulwark's checks for the same control, at the
level that holds that control, fail exactly when Gatekeeper denies; Bulwark's verdicts at
restricted also reflect the other restricted checks, since the samples are not hardened pods.

Not in the table: `fsgroup` and `read-only-root-filesystem`, which are no Pod Security
Standards control (Bulwark's pod-defaults mutation sets an fsGroup instead of requiring one).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.admission import validate
from webhook.config import settings_from_mapping
from webhook.review import AdmissionRequest

LIBRARY = Path("fixtures/gatekeeper-library/library/pod-security-policy")
NOT_PSS_CONTROLS = frozenset({"fsgroup", "read-only-root-filesystem"})

# Each sample constraint, by name: the level that holds its control, and that control's checks.
CONTROLS = {
    "allow-privilege-escalation": ("restricted", {"allowPrivilegeEscalation"}),
    "apparmor": ("baseline", {"appArmorProfile"}),
    "capabilities-baseline": ("baseline", {"capabilities_baseline"}),
    "capabilities-restricted": ("restricted", {"capabilities_restricted"}),
    "flexvolume-drivers": ("restricted", {"restrictedVolumes"}),
    "forbidden-sysctls": ("baseline", {"sysctls"}),
    "forbidden-sysctls-wildcard": ("baseline", {"sysctls"}),
    "forbidden-sysctls3": ("baseline", {"sysctls"}),
    "forbidden-sysctls4-empty-allowedSysctls": ("baseline", {"sysctls"}),
    "forbidden-sysctls5-unspecified-allowedSysctls": ("baseline", {"sysctls"}),
    "host-filesystem": ("baseline", {"hostPathVolumes"}),
    "no-host-paths": ("baseline", {"hostPathVolumes"}),
    "host-namespace": ("baseline", {"hostNamespaces"}),
    "port-range-with-host-network-allowed": ("baseline", {"hostNamespaces", "hostPorts"}),
    "host-network-forbidden": ("baseline", {"hostNamespaces", "hostPorts"}),
    "port-range-with-host-network-forbidden": ("baseline", {"hostNamespaces", "hostPorts"}),
    "host-probes-lifecycle-disallowed": ("baseline", {"hostProbesAndHostLifecycle"}),
    "host-process-disallowed": ("baseline", {"windowsHostProcess"}),
    "privileged-containers-disallowed": ("baseline", {"privileged"}),
    "default-proc-mount-required": ("baseline", {"procMount"}),
    "default-seccomp-required": ("restricted", {"seccompProfile_restricted"}),
    "seccomp-baseline": ("baseline", {"seccompProfile_baseline"}),
    "seccomp-restricted": ("restricted", {"seccompProfile_restricted"}),
    "require-matching-selinux-options": ("baseline", {"seLinuxOptions"}),
    "users-and-groups-together": ("restricted", {"runAsNonRoot", "runAsUser"}),
    "host-path-disallowed": ("restricted", {"restrictedVolumes"}),
}

# Why Bulwark differs, where it does.
UPDATE = (
    "Gatekeeper's PSP templates let every UPDATE through; Bulwark judges UPDATEs and "
    "excuses only what the oldObject already had, and this review carries no oldObject"
)
EXEMPT = (
    "the constraint exempts the image (exemptImages); the Pod Security Standards exempt "
    "no image, only whole namespaces (exemptNamespaces or level privileged)"
)
APPARMOR_OVERRIDE = (
    "the constraint judges each container's effective profile, where the container's "
    "RuntimeDefault overrides the pod's; the standards forbid Unconfined wherever it is set"
)
FLEXVOLUME = "the constraint allows listed flexVolume drivers; restricted allows no flexVolume"
NO_SYSCTLS = (
    "the constraint forbids every sysctl (stricter); baseline allows the namespaced, "
    "isolated ones such as net.ipv4.ip_local_port_range"
)
HOSTPATH_PREFIX = (
    "the constraint allows read-only hostPath volumes under /foo; baseline allows no hostPath"
)
PORT_RANGE = "the constraint allows hostPorts 80-9000; baseline allows no hostPort"
HOST_NETWORK_PARAM = (
    "the constraint's parameter hostNetwork: true allows the host network; baseline never does"
)
HOST_NETWORK_AND_EXEMPT = (
    "the constraint allows the host network and exempts the image's ports; baseline allows "
    "neither, whatever the image"
)
USER_NAMESPACE_PROC = (
    "the constraint requires procMount Default everywhere (stricter); baseline allows an "
    "unmasked /proc in a pod with its own user namespace (hostUsers: false) since v1.35, "
    "restricted does not"
)
SECCOMP_ANNOTATIONS = (
    "the constraint honours the seccomp annotations; the standards stopped reading them at "
    "v1.19, so restricted wants securityContext.seccompProfile"
)
ANY_LOCALHOST = (
    "the constraint allows only the Localhost profile profile.json; the standards allow any "
    "Localhost profile (stricter there)"
)

ESCALATION = "allow-privilege-escalation/samples/psp-allow-privilege-escalation-container"
APPARMOR = "apparmor/samples/psp-apparmor"
CAPS_BASELINE = "capabilities/samples/psp-capabilities-baseline"
CAPS_RESTRICTED = "capabilities/samples/psp-capabilities-restricted"
FLEXVOLUME_DRIVERS = "flexvolume-drivers/samples/psp-flexvolume-drivers"
SYSCTLS = "forbidden-sysctls/samples/psp-forbidden-sysctls"
NO_HOST_PATHS = "host-filesystem/samples/no-host-paths"
HOST_FILESYSTEM = "host-filesystem/samples/psp-host-filesystem"
HOST_NAMESPACE = "host-namespaces/samples/psp-host-namespace"
PORT_RANGE_NO_HOST_NET = "host-network-ports/samples/port_range_block_host_network"
HOST_NETWORK_PORTS = "host-network-ports/samples/psp-host-network-ports"
PROBES = "host-probes-lifecycle/samples/psp-host-probes-lifecycle"
HOST_PROCESS = "host-process/samples/psp-host-process"
PRIVILEGED = "privileged-containers/samples/psp-privileged-container"
PROC_MOUNT = "proc-mount/samples/psp-proc-mount"
SECCOMP_V1 = "seccomp/samples/psp-seccomp"
SECCOMP_BASELINE = "seccompv2/samples/psp-seccomp-baseline"
SECCOMP_RESTRICTED = "seccompv2/samples/psp-seccomp-restricted"
SELINUX = "selinux/samples/psp-selinux-v2"
USERS = "users/samples/psp-pods-allowed-user-ranges"
VOLUMES = "volumes/samples/psp-volume-types"


def case(
    folder: str,
    sample: str,
    constraint: str,
    gatekeeper: str,
    baseline: str,
    restricted: str,
    differs: str = "",
) -> Any:
    """One table row; `differs` says why Bulwark deliberately disagrees ("" when it agrees)."""
    return pytest.param(
        f"{folder}/{sample}.yaml",
        constraint,
        gatekeeper,
        {"baseline": baseline, "restricted": restricted},
        differs,
        id=f"{constraint}/{sample}",
    )


# fmt: off
# folder, sample, constraint, Gatekeeper's verdict, Bulwark's at baseline and at restricted,
# and why Bulwark differs where it does
TABLE = [
    case(ESCALATION, "example_allowed", "allow-privilege-escalation", "allow", "allow", "deny"),
    case(ESCALATION, "example_disallowed", "allow-privilege-escalation", "deny", "allow", "deny"),
    case(ESCALATION, "disallowed_ephemeral", "allow-privilege-escalation", "deny", "allow", "deny"),
    case(ESCALATION, "update", "allow-privilege-escalation", "allow", "allow", "deny", UPDATE),
    case(ESCALATION, "example_allowed_exempt", "allow-privilege-escalation",
         "allow", "allow", "deny", EXEMPT),
    case(APPARMOR, "example_allowed", "apparmor", "allow", "allow", "deny"),
    case(APPARMOR, "example_allowed_container", "apparmor", "allow", "allow", "deny"),
    case(APPARMOR, "example_allowed_pod", "apparmor", "allow", "allow", "deny"),
    case(APPARMOR, "example_allowed_override", "apparmor",
         "allow", "deny", "deny", APPARMOR_OVERRIDE),
    case(APPARMOR, "example_disallowed", "apparmor", "deny", "deny", "deny"),
    case(APPARMOR, "example_disallowed_override", "apparmor", "deny", "deny", "deny"),
    case(APPARMOR, "example_disallowed_no_profile", "apparmor", "deny", "deny", "deny"),
    case(APPARMOR, "disallowed_ephemeral", "apparmor", "deny", "deny", "deny"),
    case(CAPS_BASELINE, "example_disallowed", "capabilities-baseline", "deny", "deny", "deny"),
    case(CAPS_BASELINE, "example_allowed", "capabilities-baseline", "allow", "allow", "deny"),
    case(CAPS_BASELINE, "disallowed_ephemeral", "capabilities-baseline", "deny", "deny", "deny"),
    case(CAPS_BASELINE, "update", "capabilities-baseline", "allow", "deny", "deny", UPDATE),
    case(CAPS_RESTRICTED, "example_disallowed", "capabilities-restricted", "deny", "deny", "deny"),
    case(CAPS_RESTRICTED, "example_allowed", "capabilities-restricted", "allow", "allow", "deny"),
    case(CAPS_RESTRICTED, "disallowed_ephemeral", "capabilities-restricted",
         "deny", "deny", "deny"),
    case(CAPS_RESTRICTED, "update", "capabilities-restricted", "allow", "deny", "deny", UPDATE),
    case(FLEXVOLUME_DRIVERS, "example_allowed", "flexvolume-drivers",
         "allow", "allow", "deny", FLEXVOLUME),
    case(FLEXVOLUME_DRIVERS, "example_disallowed", "flexvolume-drivers", "deny", "allow", "deny"),
    case(FLEXVOLUME_DRIVERS, "update", "flexvolume-drivers", "allow", "allow", "deny", UPDATE),
    case(SYSCTLS, "example_disallowed", "forbidden-sysctls", "deny", "deny", "deny"),
    case(SYSCTLS, "example_allowed", "forbidden-sysctls", "allow", "allow", "deny"),
    case(SYSCTLS, "update", "forbidden-sysctls", "allow", "deny", "deny", UPDATE),
    case(SYSCTLS, "example_disallowed", "forbidden-sysctls-wildcard", "deny", "deny", "deny"),
    case(SYSCTLS, "example_allowed", "forbidden-sysctls-wildcard",
         "deny", "allow", "deny", NO_SYSCTLS),
    case(SYSCTLS, "update", "forbidden-sysctls-wildcard", "allow", "deny", "deny", UPDATE),
    case(SYSCTLS, "example_disallowed", "forbidden-sysctls3", "deny", "deny", "deny"),
    case(SYSCTLS, "example_allowed", "forbidden-sysctls3", "allow", "allow", "deny"),
    case(SYSCTLS, "update", "forbidden-sysctls3", "allow", "deny", "deny", UPDATE),
    case(SYSCTLS, "example_disallowed", "forbidden-sysctls4-empty-allowedSysctls",
         "deny", "deny", "deny"),
    case(SYSCTLS, "example_allowed", "forbidden-sysctls4-empty-allowedSysctls",
         "deny", "allow", "deny", NO_SYSCTLS),
    case(SYSCTLS, "update", "forbidden-sysctls4-empty-allowedSysctls",
         "allow", "deny", "deny", UPDATE),
    case(SYSCTLS, "example_disallowed", "forbidden-sysctls5-unspecified-allowedSysctls",
         "deny", "deny", "deny"),
    case(SYSCTLS, "example_allowed", "forbidden-sysctls5-unspecified-allowedSysctls",
         "allow", "allow", "deny"),
    case(SYSCTLS, "update", "forbidden-sysctls5-unspecified-allowedSysctls",
         "allow", "deny", "deny", UPDATE),
    case(HOST_FILESYSTEM, "example_disallowed", "host-filesystem", "deny", "deny", "deny"),
    case(HOST_FILESYSTEM, "example_allowed", "host-filesystem",
         "allow", "deny", "deny", HOSTPATH_PREFIX),
    case(HOST_FILESYSTEM, "disallowed_ephemeral", "host-filesystem", "deny", "deny", "deny"),
    case(HOST_FILESYSTEM, "update", "host-filesystem", "allow", "deny", "deny", UPDATE),
    case(HOST_FILESYSTEM, "example_allowed", "no-host-paths", "deny", "deny", "deny"),
    case(NO_HOST_PATHS, "example_allowed_no_volumes", "no-host-paths", "allow", "allow", "deny"),
    case(HOST_NAMESPACE, "example_allowed", "host-namespace", "allow", "allow", "deny"),
    case(HOST_NAMESPACE, "example_disallowed", "host-namespace", "deny", "deny", "deny"),
    case(HOST_NAMESPACE, "update", "host-namespace", "allow", "deny", "deny", UPDATE),
    case(PORT_RANGE_NO_HOST_NET, "example_disallowed_out_of_range_host_network_true",
         "port-range-with-host-network-allowed",
         "deny", "deny", "deny"),
    case(HOST_NETWORK_PORTS, "example_allowed_in_range", "port-range-with-host-network-allowed",
         "allow", "deny", "deny", PORT_RANGE),
    case(HOST_NETWORK_PORTS, "disallowed_ephemeral", "port-range-with-host-network-allowed",
         "deny", "deny", "deny"),
    case(HOST_NETWORK_PORTS, "update", "port-range-with-host-network-allowed",
         "allow", "deny", "deny", UPDATE),
    case(HOST_NETWORK_PORTS, "example_allowed_no_ports", "port-range-with-host-network-allowed",
         "allow", "deny", "deny", HOST_NETWORK_PARAM),
    case(HOST_NETWORK_PORTS, "example_allowed_out_of_range_exempted",
         "port-range-with-host-network-allowed",
         "allow", "deny", "deny", HOST_NETWORK_AND_EXEMPT),
    case(HOST_NETWORK_PORTS, "example_allowed_no_ports_host_network_true", "host-network-forbidden",
         "deny", "deny", "deny"),
    case(HOST_NETWORK_PORTS, "example_allowed_no_ports_host_network_false",
         "host-network-forbidden",
         "allow", "allow", "deny"),
    case(PORT_RANGE_NO_HOST_NET, "example_disallowed_out_of_range_host_network_true",
         "port-range-with-host-network-forbidden",
         "deny", "deny", "deny"),
    case(PORT_RANGE_NO_HOST_NET, "example_disallowed_exempted_container_host_network_enabled",
         "port-range-with-host-network-forbidden",
         "deny", "deny", "deny"),
    case(HOST_NETWORK_PORTS, "example_allowed_in_range", "port-range-with-host-network-forbidden",
         "allow", "deny", "deny", PORT_RANGE),
    case(HOST_NETWORK_PORTS, "disallowed_ephemeral", "port-range-with-host-network-forbidden",
         "deny", "deny", "deny"),
    case(HOST_NETWORK_PORTS, "update", "port-range-with-host-network-forbidden",
         "allow", "deny", "deny", UPDATE),
    case(PROBES, "example_allowed_no_probes", "host-probes-lifecycle-disallowed",
         "allow", "allow", "deny"),
    case(PROBES, "example_allowed_probe_no_host", "host-probes-lifecycle-disallowed",
         "allow", "allow", "deny"),
    case(PROBES, "example_disallowed_liveness_probe", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "example_disallowed_readiness_probe", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "example_disallowed_startup_probe", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "example_disallowed_lifecycle_poststart", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "example_disallowed_lifecycle_prestop", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "example_disallowed_tcp_probe", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "disallowed_init_probe", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "disallowed_ephemeral_probe", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "disallowed_init_lifecycle", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "disallowed_ephemeral_lifecycle", "host-probes-lifecycle-disallowed",
         "deny", "deny", "deny"),
    case(PROBES, "update", "host-probes-lifecycle-disallowed", "allow", "deny", "deny", UPDATE),
    case(HOST_PROCESS, "example_disallowed_pod_level", "host-process-disallowed",
         "deny", "deny", "deny"),
    case(HOST_PROCESS, "example_disallowed_container_level", "host-process-disallowed",
         "deny", "deny", "deny"),
    case(HOST_PROCESS, "example_allowed", "host-process-disallowed", "allow", "allow", "deny"),
    case(HOST_PROCESS, "disallowed_ephemeral", "host-process-disallowed", "deny", "deny", "deny"),
    case(HOST_PROCESS, "disallowed_init", "host-process-disallowed", "deny", "deny", "deny"),
    case(HOST_PROCESS, "update", "host-process-disallowed", "allow", "deny", "deny", UPDATE),
    case(PRIVILEGED, "example_disallowed", "privileged-containers-disallowed",
         "deny", "deny", "deny"),
    case(PRIVILEGED, "example_allowed", "privileged-containers-disallowed",
         "allow", "allow", "deny"),
    case(PRIVILEGED, "disallowed_ephemeral", "privileged-containers-disallowed",
         "deny", "deny", "deny"),
    case(PRIVILEGED, "update", "privileged-containers-disallowed", "allow", "deny", "deny", UPDATE),
    case(PRIVILEGED, "example_allowed_exempt", "privileged-containers-disallowed",
         "allow", "deny", "deny", EXEMPT),
    case(PROC_MOUNT, "example_disallowed", "default-proc-mount-required",
         "deny", "allow", "deny", USER_NAMESPACE_PROC),
    case(PROC_MOUNT, "example_allowed", "default-proc-mount-required", "allow", "allow", "deny"),
    case(PROC_MOUNT, "example_allowed_missing", "default-proc-mount-required",
         "allow", "allow", "deny"),
    case(PROC_MOUNT, "disallowed_ephemeral", "default-proc-mount-required",
         "deny", "allow", "deny", USER_NAMESPACE_PROC),
    case(PROC_MOUNT, "update", "default-proc-mount-required", "allow", "deny", "deny", UPDATE),
    case(PROC_MOUNT, "example_allowed_exempt_image", "default-proc-mount-required",
         "allow", "allow", "deny"),
    case(SECCOMP_V1, "example_disallowed2", "default-seccomp-required", "deny", "allow", "deny"),
    case(SECCOMP_V1, "example_disallowed", "default-seccomp-required", "deny", "allow", "deny"),
    case(SECCOMP_V1, "example_allowed", "default-seccomp-required",
         "allow", "allow", "deny", SECCOMP_ANNOTATIONS),
    case(SECCOMP_V1, "example_allowed2", "default-seccomp-required",
         "allow", "allow", "deny", SECCOMP_ANNOTATIONS),
    case(SECCOMP_V1, "disallowed_ephemeral", "default-seccomp-required", "deny", "allow", "deny"),
    case(SECCOMP_V1, "example_allowed_exempt_image", "default-seccomp-required",
         "allow", "deny", "deny", EXEMPT),
    case(SECCOMP_V1, "example_allowed_localhost", "default-seccomp-required",
         "allow", "allow", "deny"),
    case(SECCOMP_V1, "example_disallowed_localhost", "default-seccomp-required",
         "deny", "allow", "deny", ANY_LOCALHOST),
    case(SECCOMP_BASELINE, "example_disallowed2", "seccomp-baseline", "deny", "deny", "deny"),
    case(SECCOMP_BASELINE, "example_disallowed", "seccomp-baseline", "deny", "deny", "deny"),
    case(SECCOMP_BASELINE, "example_allowed", "seccomp-baseline", "allow", "allow", "deny"),
    case(SECCOMP_BASELINE, "example_allowed_localhost", "seccomp-baseline",
         "allow", "allow", "deny"),
    case(SECCOMP_BASELINE, "example_allowed_no_profile", "seccomp-baseline",
         "allow", "allow", "deny"),
    case(SECCOMP_BASELINE, "example_allowed_exempt_image", "seccomp-baseline",
         "allow", "deny", "deny", EXEMPT),
    case(SECCOMP_BASELINE, "allowed_ephemeral", "seccomp-baseline", "allow", "allow", "deny"),
    case(SECCOMP_RESTRICTED, "example_disallowed2", "seccomp-restricted", "deny", "deny", "deny"),
    case(SECCOMP_RESTRICTED, "example_disallowed", "seccomp-restricted", "deny", "deny", "deny"),
    case(SECCOMP_RESTRICTED, "example_allowed", "seccomp-restricted", "allow", "allow", "deny"),
    case(SECCOMP_RESTRICTED, "example_allowed_localhost", "seccomp-restricted",
         "allow", "allow", "deny"),
    case(SECCOMP_RESTRICTED, "example_allowed_exempt_image", "seccomp-restricted",
         "allow", "deny", "deny", EXEMPT),
    case(SECCOMP_RESTRICTED, "disallowed_ephemeral", "seccomp-restricted", "deny", "allow", "deny"),
    case(SELINUX, "example_disallowed", "require-matching-selinux-options", "deny", "deny", "deny"),
    case(SELINUX, "example_allowed", "require-matching-selinux-options", "allow", "allow", "deny"),
    case(SELINUX, "disallowed_ephemeral", "require-matching-selinux-options",
         "deny", "deny", "deny"),
    case(SELINUX, "update", "require-matching-selinux-options", "allow", "deny", "deny", UPDATE),
    case(USERS, "example_disallowed", "users-and-groups-together", "deny", "allow", "deny"),
    case(USERS, "example_allowed", "users-and-groups-together", "allow", "allow", "deny"),
    case(USERS, "disallowed_ephemeral", "users-and-groups-together", "deny", "allow", "deny"),
    case(USERS, "update", "users-and-groups-together", "allow", "allow", "deny", UPDATE),
    case(VOLUMES, "example_disallowed", "host-path-disallowed", "deny", "deny", "deny"),
    case(VOLUMES, "example_allowed", "host-path-disallowed", "allow", "allow", "deny"),
    case(VOLUMES, "update", "host-path-disallowed", "allow", "deny", "deny", UPDATE),
]
# fmt: on


def _request(document: dict[str, Any]) -> AdmissionRequest:
    """The admission request for a sample: a bare object is a CREATE, a review its own."""
    review = document.get("request") if document.get("kind") == "AdmissionReview" else None
    obj = review["object"] if review else document
    return AdmissionRequest.model_validate(
        {
            "uid": "gatekeeper-sample",
            "kind": {"group": "", "version": "v1", "kind": obj["kind"]},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": review["operation"] if review else "CREATE",
            "object": obj,
            "oldObject": review.get("oldObject") if review else None,
        }
    )


@pytest.mark.parametrize(("sample", "constraint", "gatekeeper", "bulwark", "differs"), TABLE)
def test_gatekeeper_sample_gets_the_stated_bulwark_verdict(
    shared_dir: Path,
    sample: str,
    constraint: str,
    gatekeeper: str,
    bulwark: dict[str, str],
    differs: str,
) -> None:
    """Bulwark's verdicts match the table, which agrees with Gatekeeper unless it says why not."""
    document = yaml.safe_load((shared_dir / LIBRARY / sample).read_text(encoding="utf-8"))
    failed = {}
    for level in ("baseline", "restricted"):
        settings = settings_from_mapping({"podSecurity": {"defaultLevel": level}})
        verdict = validate(_request(document), settings)
        assert ("allow" if verdict.allowed else "deny") == bulwark[level], level
        failed[level] = {violation.check for violation in verdict.violations}

    level, control = CONTROLS[constraint]
    agrees = bool(failed[level] & control) == (gatekeeper == "deny")
    assert agrees == (not differs), f"{constraint}: Bulwark fails {sorted(failed[level])}"


def test_table_covers_every_pss_sample_with_gatekeepers_verdict(shared_dir: Path) -> None:
    """Every PSS-control row of expected.tsv is in the table, with the verdict it lists."""
    prefix = "library/pod-security-policy/"
    expected = {}
    with (shared_dir / "fixtures" / "expected.tsv").open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            if row["source"] != "gatekeeper-library" or not row["path"].startswith(prefix):
                continue
            template, constraint = row["check"].split(":")
            if template not in NOT_PSS_CONTROLS:
                expected[(row["path"].removeprefix(prefix), constraint)] = row["expected"]

    tabled = {(p.values[0], p.values[1]): p.values[2] for p in TABLE}
    assert tabled == expected


def test_every_pss_template_has_a_control(shared_dir: Path) -> None:
    """Each PSP template folder is either mapped to a PSS control or named as not one."""
    templates = {path.name for path in (shared_dir / LIBRARY).iterdir() if path.is_dir()}
    covered = {sample.split("/")[0] for sample, *_ in (p.values for p in TABLE)}
    assert templates == covered | NOT_PSS_CONTROLS
