"""What the Pod Security Standards allow, as data, at the newest upstream version (v1.37).

Each set is the exact list the upstream pod-security-admission library accepts at its
newest version (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
They grow between Kubernetes releases (sysctls in 1.27, 1.29, 1.32 and 1.37; SELinux types
in 1.31), so a new upstream release means re-reading its `policy/check_*.go` files and the
fixtures under `test/testdata/<level>/<version>/`.
"""

from __future__ import annotations

# Linux capabilities a baseline container may add: the container runtime's default set,
# less NET_RAW.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)

# The one capability a restricted container may add; it must drop ALL (spelled exactly so).
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
DROP_ALL = "ALL"

# Sysctls that are namespaced and isolated from other pods on the node.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ping_group_range",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_notsent_lowat",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.tcp_wmem",
    }
)

# SELinux types a pod or container may ask for ("" = not set); user and role may not be set.
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)

# Profile types for seccompProfile.type and appArmorProfile.type.
PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})

# The deprecated per-container AppArmor annotation and the values it may carry.
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
APPARMOR_ANNOTATION_DEFAULT = "runtime/default"
APPARMOR_ANNOTATION_LOCALHOST = "localhost/"

# The only procMount a container may ask for, unless the pod has its own user namespace.
DEFAULT_PROC_MOUNT = "Default"

# Volume sources a restricted pod may use: none of them reaches into the node.
RESTRICTED_VOLUME_SOURCES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
)

# The other volume sources, in the order upstream names the first one a volume uses.
FORBIDDEN_VOLUME_SOURCES = (
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
)


def listed(value: object, allowed: frozenset[str]) -> bool:
    """Whether `value` is one of the `allowed` strings (False for any other type)."""
    return isinstance(value, str) and value in allowed


def enumerate_allowed(allowed: frozenset[str]) -> str:
    """The allowed values, sorted and comma-separated, for a message."""
    return ", ".join(sorted(allowed))
