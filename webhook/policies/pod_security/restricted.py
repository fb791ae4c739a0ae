"""The restricted level: current pod-hardening practice, on top of baseline.

Unlike baseline, several restricted checks ask for a setting to be present, not merely
absent (`allowPrivilegeEscalation: false`, `runAsNonRoot: true`, a seccomp profile,
`capabilities.drop: [ALL]`). A pod-level setting covers the containers that leave it
unset. Upstream exempts Windows pods (`spec.os.name: windows`) from the checks whose fields
Windows rejects, and relaxes the root-user checks for pods in their own user namespace
(`spec.hostUsers: false`).
"""

from __future__ import annotations

from webhook.policies.pod_security.allowed import (
    DROP_ALL,
    FORBIDDEN_VOLUME_SOURCES,
    RESTRICTED_CAPABILITIES,
    RESTRICTED_VOLUME_SOURCES,
    listed,
)
from webhook.policies.pod_security.baseline import PROFILES, seccomp_profiles, unmasked_proc_mounts
from webhook.policies.pod_security.view import PodView, items, mapping, show
from webhook.verdict import Object


def allow_privilege_escalation(view: PodView) -> None:
    """Without allowPrivilegeEscalation=false, a setuid binary can gain privileges."""
    if view.windows:
        return
    for container in view.containers:
        value = container.security.get("allowPrivilegeEscalation")
        if value is not False:
            path = f"{container.path}.securityContext.allowPrivilegeEscalation"
            state = "is not set" if value is None else f"is {show(value)}"
            view.deny(
                "allowPrivilegeEscalation",
                container.label,
                path,
                f"{path} {state}",
                "set it to false",
            )


def run_as_non_root(view: PodView) -> None:
    """Containers must be kept from running as root, by the pod or by each container."""
    if view.user_namespace:
        return
    pod_value = view.security.get("runAsNonRoot")
    pod_path = f"{view.path}.securityContext.runAsNonRoot"
    if pod_value is not None and pod_value is not True:
        view.deny(
            "runAsNonRoot", "pod", pod_path, f"{pod_path} is {show(pod_value)}", "set it to true"
        )
    for container in view.containers:
        value = container.security.get("runAsNonRoot")
        path = f"{container.path}.securityContext.runAsNonRoot"
        if value is None:
            # NB: a container that leaves it unset inherits the pod's value; a pod set to
            # false is reported once, above.
            if pod_value is None:
                view.deny(
                    "runAsNonRoot",
                    container.label,
                    path,
                    f"{path} is not set and neither is {pod_path}",
                    "set either to true",
                )
        elif value is not True:
            view.deny(
                "runAsNonRoot", container.label, path, f"{path} is {show(value)}", "set it to true"
            )


def _root_user(value: object) -> bool:
    return value == 0 and not isinstance(value, bool)


def run_as_user(view: PodView) -> None:
    """runAsUser: 0 runs the container as root whatever its image says."""
    if view.user_namespace:
        return
    if _root_user(view.security.get("runAsUser")):
        path = f"{view.path}.securityContext.runAsUser"
        view.deny("runAsUser", "pod", path, f"{path} is 0", "set a non-zero user id")
    for container in view.secured:
        if _root_user(container.security.get("runAsUser")):
            path = f"{container.path}.securityContext.runAsUser"
            view.deny("runAsUser", container.label, path, f"{path} is 0", "set a non-zero user id")


def seccomp_profile(view: PodView) -> None:
    """Each container needs a RuntimeDefault or Localhost seccomp profile, its own or the pod's."""
    if view.windows:
        return
    seccomp_profiles(view, "seccompProfile_restricted")
    if view.security.get("seccompProfile") is not None:
        return  # the pod's profile, good or already reported, covers the rest
    pod_path = f"{view.path}.securityContext.seccompProfile"
    for container in view.containers:
        if container.security.get("seccompProfile") is None:
            path = f"{container.path}.securityContext.seccompProfile"
            view.deny(
                "seccompProfile_restricted",
                container.label,
                path,
                f"{path} is not set and neither is {pod_path}",
                f"set the type of either to {PROFILES}",
            )


def capabilities(view: PodView) -> None:
    """Containers must drop ALL capabilities and may add back only NET_BIND_SERVICE."""
    if view.windows:
        return
    for container in view.containers:
        granted = mapping(container.security.get("capabilities"))
        dropped = items(granted.get("drop"))
        if DROP_ALL not in dropped:
            path = f"{container.path}.securityContext.capabilities.drop"
            problem = (
                f'{path} is {show(dropped)}, without "ALL"' if dropped else f"{path} is not set"
            )
            view.deny(
                "capabilities_restricted", container.label, path, problem, 'set it to ["ALL"]'
            )
        extra = [
            value
            for value in items(granted.get("add"))
            if not listed(value, RESTRICTED_CAPABILITIES)
        ]
        if extra:
            path = f"{container.path}.securityContext.capabilities.add"
            view.deny(
                "capabilities_restricted",
                container.label,
                path,
                f"{path} adds {', '.join(show(value) for value in extra)}",
                f"remove {'it' if len(extra) == 1 else 'them'}: restricted allows adding only "
                "NET_BIND_SERVICE",
            )


def proc_mount(view: PodView) -> None:
    """An unmasked /proc is never allowed at restricted, user namespace or not."""
    unmasked_proc_mounts(view, "procMount_restricted")


def _forbidden_source(volume: Object) -> str:
    """The forbidden source a volume uses, or "" when it uses an allowed one."""
    for key in RESTRICTED_VOLUME_SOURCES:
        if volume.get(key) is not None:
            return ""  # NB: upstream lets an allowed source excuse any other one beside it
    for key in FORBIDDEN_VOLUME_SOURCES:
        if volume.get(key) is not None:
            return key
    # A volume with no source at all is an emptyDir: the API server defaults it so before
    # any admission webhook sees it (upstream's pass fixture restrictedvolumes0 relies on it).
    return ""


def restricted_volumes(view: PodView) -> None:
    """Only volume sources that cannot reach into the node or the network are allowed."""
    for index, entry in enumerate(items(view.spec.get("volumes"))):
        volume = mapping(entry)
        kind = _forbidden_source(volume)
        if kind:
            path = f"{view.path}.volumes[{index}].{kind}"
            view.deny(
                "restrictedVolumes",
                f'volume "{volume.get("name")}"',
                path,
                f"{path} is set, and {kind} volumes are not allowed at restricted",
                f"use one of {', '.join(RESTRICTED_VOLUME_SOURCES)}",
            )
