"""The baseline level: no known privilege escalation.

Each function is one upstream check, named by its id in `webhook.policies.pod_security`,
and records its violations on the `PodView`. Init, regular and ephemeral containers are
all judged, as upstream does.
"""

from __future__ import annotations

from webhook.policies.pod_security.allowed import (
    APPARMOR_ANNOTATION_DEFAULT,
    APPARMOR_ANNOTATION_LOCALHOST,
    APPARMOR_ANNOTATION_PREFIX,
    BASELINE_CAPABILITIES,
    DEFAULT_PROC_MOUNT,
    PROFILE_TYPES,
    SAFE_SYSCTLS,
    SELINUX_TYPES,
    enumerate_allowed,
    listed,
)
from webhook.policies.pod_security.view import PodView, items, mapping, show
from webhook.verdict import Object

HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HOOKS = ("postStart", "preStop")
HOST_HANDLERS = ("httpGet", "tcpSocket")
PROFILES = '"RuntimeDefault" or "Localhost"'


def privileged(view: PodView) -> None:
    """A privileged container can do almost anything the host can."""
    for container in view.secured:
        if container.security.get("privileged") is True:
            path = f"{container.path}.securityContext.privileged"
            view.deny("privileged", container.label, path, f"{path} is true", "set it to false")


def host_namespaces(view: PodView) -> None:
    """Sharing the node's network, process or IPC namespace escapes the pod's isolation."""
    for key in HOST_NAMESPACES:
        if view.spec.get(key) is True:
            path = f"{view.path}.{key}"
            view.deny("hostNamespaces", key, path, f"{path} is true", "set it to false", who="pod")


def host_path_volumes(view: PodView) -> None:
    """A hostPath volume reads or writes the node's own files."""
    for index, volume in enumerate(items(view.spec.get("volumes"))):
        source = mapping(volume).get("hostPath")
        if source is not None:
            name = mapping(volume).get("name")
            path = f"{view.path}.volumes[{index}].hostPath"
            view.deny(
                "hostPathVolumes",
                f'volume "{name}"',
                path,
                f"{path} mounts the node's {show(mapping(source).get('path'))}",
                "use a persistentVolumeClaim, emptyDir, configMap or secret volume instead",
            )


def host_ports(view: PodView) -> None:
    """A hostPort binds the node's own address, bypassing network policy."""
    for container in view.containers:
        for index, port in enumerate(items(container.body.get("ports"))):
            host_port = mapping(port).get("hostPort")
            if host_port is not None and host_port != 0:
                path = f"{container.path}.ports[{index}].hostPort"
                view.deny(
                    "hostPorts",
                    container.label,
                    path,
                    f"{path} is {show(host_port)}",
                    "remove it (or set 0) and reach the container through a Service",
                )


def _handler_hosts(view: PodView, label: str, path: str, handler: Object) -> None:
    for kind in HOST_HANDLERS:
        action = handler.get(kind)
        if action is None:
            continue
        host = mapping(action).get("host")
        if host is not None and host != "":
            where = f"{path}.{kind}.host"
            view.deny(
                "hostProbesAndHostLifecycle",
                label,
                where,
                f"{where} is {show(host)}",
                "remove it so that the kubelet checks the pod's own IP",
            )


def host_probes_and_host_lifecycle(view: PodView) -> None:
    """A probe or hook with a `host` makes the kubelet reach any address for the pod."""
    for container in view.containers:
        body = container.body
        for probe in PROBES:
            handler = body.get(probe)
            if handler is not None:
                _handler_hosts(view, container.label, f"{container.path}.{probe}", mapping(handler))
        lifecycle = body.get("lifecycle")
        if lifecycle is not None:
            for hook in LIFECYCLE_HOOKS:
                handler = mapping(lifecycle).get(hook)
                if handler is not None:
                    where = f"{container.path}.lifecycle.{hook}"
                    _handler_hosts(view, container.label, where, mapping(handler))


def capabilities(view: PodView) -> None:
    """Capabilities beyond the runtime's default set (and NET_RAW) widen the kernel surface."""
    for container in view.secured:
        added = items(mapping(container.security.get("capabilities")).get("add"))
        extra = [value for value in added if not listed(value, BASELINE_CAPABILITIES)]
        if extra:
            path = f"{container.path}.securityContext.capabilities.add"
            view.deny(
                "capabilities_baseline",
                container.label,
                path,
                f"{path} adds {', '.join(show(value) for value in extra)}",
                f"remove {'it' if len(extra) == 1 else 'them'}: baseline allows adding only "
                + enumerate_allowed(BASELINE_CAPABILITIES),
            )


def _selinux(view: PodView, label: str, path: str, options: Object) -> None:
    selinux_type = options.get("type")
    if selinux_type is not None and not listed(selinux_type, SELINUX_TYPES):
        view.deny(
            "seLinuxOptions",
            label,
            f"{path}.type",
            f"{path}.type is {show(selinux_type)}",
            f"use one of {enumerate_allowed(SELINUX_TYPES - {''})} or leave it unset",
        )
    for key in ("user", "role"):
        value = options.get(key)
        if value is not None and value != "":
            view.deny(
                "seLinuxOptions",
                label,
                f"{path}.{key}",
                f"{path}.{key} is {show(value)}",
                "remove it: a custom SELinux user or role is never allowed",
            )


def selinux_options(view: PodView) -> None:
    """A custom SELinux type, user or role can lift the container's confinement."""
    options = view.security.get("seLinuxOptions")
    if options is not None:
        where = f"{view.path}.securityContext.seLinuxOptions"
        _selinux(view, "pod", where, mapping(options))
    for container in view.secured:
        options = container.security.get("seLinuxOptions")
        if options is not None:
            where = f"{container.path}.securityContext.seLinuxOptions"
            _selinux(view, container.label, where, mapping(options))


def unmasked_proc_mounts(view: PodView, check: str) -> None:
    """Record every container that asks for a procMount other than "Default"."""
    for container in view.secured:
        proc_mount = container.security.get("procMount")
        if proc_mount is not None and proc_mount != DEFAULT_PROC_MOUNT:
            path = f"{container.path}.securityContext.procMount"
            view.deny(
                check,
                container.label,
                path,
                f"{path} is {show(proc_mount)}",
                'set it to "Default" or remove it',
            )


def proc_mount(view: PodView) -> None:
    """An unmasked /proc exposes the host's kernel; allowed only in a pod's own user namespace."""
    if not view.user_namespace:
        unmasked_proc_mounts(view, "procMount")


def _profile_type(view: PodView, check: str, label: str, path: str, profile: object) -> bool:
    """Record a profile whose type is not RuntimeDefault or Localhost; True when it is fine."""
    profile_type = mapping(profile).get("type")
    if listed(profile_type, PROFILE_TYPES):
        return True
    shown = "empty" if profile_type is None else show(profile_type)
    view.deny(check, label, f"{path}.type", f"{path}.type is {shown}", f"set it to {PROFILES}")
    return False


def seccomp_profiles(view: PodView, check: str) -> None:
    """Record every explicit seccompProfile whose type is not an allowed one."""
    profile = view.security.get("seccompProfile")
    if profile is not None:
        _profile_type(view, check, "pod", f"{view.path}.securityContext.seccompProfile", profile)
    for container in view.secured:
        profile = container.security.get("seccompProfile")
        if profile is not None:
            where = f"{container.path}.securityContext.seccompProfile"
            _profile_type(view, check, container.label, where, profile)


def seccomp_profile(view: PodView) -> None:
    """An Unconfined seccomp profile lets the container make any system call."""
    seccomp_profiles(view, "seccompProfile_baseline")


def sysctls(view: PodView) -> None:
    """Only namespaced sysctls that cannot affect other pods on the node may be set."""
    for index, sysctl in enumerate(items(view.security.get("sysctls"))):
        name = mapping(sysctl).get("name")
        if not listed(name, SAFE_SYSCTLS):
            path = f"{view.path}.securityContext.sysctls[{index}].name"
            view.deny(
                "sysctls",
                f"sysctl {show(name)}",
                path,
                f"{path} is {show(name)}",
                f"remove it: baseline allows only {enumerate_allowed(SAFE_SYSCTLS)}",
                who="pod",
            )


def _annotation_allowed(value: object) -> bool:
    if value is None or value in ("", APPARMOR_ANNOTATION_DEFAULT):
        return True
    return isinstance(value, str) and value.startswith(APPARMOR_ANNOTATION_LOCALHOST)


def app_armor_profile(view: PodView) -> None:
    """An Unconfined AppArmor profile removes the runtime's default confinement."""
    profile = view.security.get("appArmorProfile")
    if profile is not None:
        where = f"{view.path}.securityContext.appArmorProfile"
        _profile_type(view, "appArmorProfile", "pod", where, profile)
    for container in view.secured:
        profile = container.security.get("appArmorProfile")
        if profile is not None:
            where = f"{container.path}.securityContext.appArmorProfile"
            _profile_type(view, "appArmorProfile", container.label, where, profile)

    annotations = mapping(view.pod.metadata.get("annotations"))
    for key, value in annotations.items():
        if not isinstance(key, str) or not key.startswith(APPARMOR_ANNOTATION_PREFIX):
            continue
        if not _annotation_allowed(value):
            path = f'{view.metadata_path}.annotations["{key}"]'
            view.deny(
                "appArmorProfile",
                f'annotation "{key}"',
                path,
                f"{path} is {show(value)}",
                'set it to "runtime/default" or "localhost/<profile>", or remove it',
                who="pod",
            )


def windows_host_process(view: PodView) -> None:
    """A Windows host-process container runs directly on the node, as the node."""
    options = view.security.get("windowsOptions")
    if mapping(options).get("hostProcess") is True:
        path = f"{view.path}.securityContext.windowsOptions.hostProcess"
        view.deny("windowsHostProcess", "pod", path, f"{path} is true", "set it to false")
    for container in view.secured:
        options = container.security.get("windowsOptions")
        if options is not None and mapping(options).get("hostProcess") is True:
            path = f"{container.path}.securityContext.windowsOptions.hostProcess"
            view.deny(
                "windowsHostProcess", container.label, path, f"{path} is true", "set it to false"
            )
