"""Bulwark against the reference: the upstream pod-security-admission library itself.

`tests/oracle` is a small Go program that judges pods with the library (v0.37.2, the
v1.37 standards). It is built once into `.cache/oracle/<version>/` and kept running while
hypothesis generates a few thousand pods that mix every field the standards read, valid
and invalid, at pod and container level, in Pods and in workload templates. For each pod
the set of failing checks must be the same at baseline and at restricted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from webhook.podspec import find_pod_spec
from webhook.policies.pod_security import CHECKS, judge_pod
from webhook.policies.pod_security.allowed import (
    APPARMOR_ANNOTATION_PREFIX,
    FORBIDDEN_VOLUME_SOURCES,
    RESTRICTED_VOLUME_SOURCES,
)

ORACLE_SOURCE = REPO / "tests" / "oracle"
LEVELS = ("baseline", "restricted")
EXAMPLES = 2500
MISSING = object()  # a field left out, as opposed to one set to null


def _library_version() -> str:
    go_mod = (ORACLE_SOURCE / "go.mod").read_text(encoding="utf-8")
    found = re.search(r"k8s\.io/pod-security-admission (v\S+)", go_mod)
    assert found, "tests/oracle/go.mod must require k8s.io/pod-security-admission"
    return found.group(1)


def _go_environment() -> dict[str, str]:
    """The caller's environment, with caches inside the repo when there is no home."""
    env = dict(os.environ)
    if not env.get("HOME"):
        env.setdefault("GOPATH", str(REPO / ".cache" / "go"))
        env.setdefault("GOCACHE", str(REPO / ".cache" / "go-build"))
    return env


def _build_oracle() -> Path:
    """The oracle binary, built when missing or older than its sources."""
    binary = REPO / ".cache" / "oracle" / _library_version() / "psa-oracle"
    sources = [ORACLE_SOURCE / name for name in ("main.go", "go.mod", "go.sum")]
    newest = max(source.stat().st_mtime for source in sources)
    if binary.exists() and binary.stat().st_mtime >= newest:
        return binary

    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"psa-oracle.{os.getpid()}.partial")  # parallel runs
    # -buildvcs=false: the repository's git state is no business of the build;
    # -mod=readonly: go.sum pins every module, nothing is resolved anew.
    command = ["go", "build", "-buildvcs=false", "-mod=readonly", "-trimpath", "-o", str(partial)]
    result = subprocess.run(
        [*command, "."],
        cwd=ORACLE_SOURCE,
        env=_go_environment(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"building tests/oracle failed:\n{result.stderr}")
    partial.replace(binary)
    return binary


class Oracle:
    """One running oracle process: a pod in, its failing checks per level out."""

    def __init__(self, binary: Path) -> None:
        self._process = subprocess.Popen(
            [str(binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def judge(self, pod: dict[str, Any]) -> dict[str, set[str]]:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps(pod) + "\n")
        self._process.stdin.flush()
        reply = json.loads(self._process.stdout.readline())
        assert "error" not in reply, f"the oracle could not judge {pod}: {reply['error']}"
        return {level: set(reply[level]) for level in LEVELS}

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=10)


@pytest.fixture(scope="session")
def oracle() -> Iterator[Oracle]:
    """The upstream library, built from tests/oracle and running for the session."""
    if shutil.which("go") is None:
        pytest.skip("go is not on PATH: the comparison with the upstream library needs it")
    running = Oracle(_build_oracle())
    yield running
    running.close()


# --- Pods ----------------------------------------------------------------------------------
# Each field is one weighted draw whose first option is safe, so a disagreement shrinks to
# the one field that causes it. A hardened pod takes a risky option rarely and a wild one
# often, so that admitted and denied pods are both common at both levels.

HARDENED, WILD = 0, 1
Choice = tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]


def _choice(safe: list[Any], risky: list[Any]) -> Choice:
    """One draw: hardened pods pick a risky value 1 time in 80, wild pods 1 in 3."""

    def weighted(risk: float) -> st.SearchStrategy[Any]:
        copies = max(1, round(len(risky) * (1 - risk) / (risk * len(safe))))
        return st.sampled_from(safe * copies + risky)

    return weighted(1 / 80), weighted(1 / 3)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not MISSING:
        target[key] = value


def _profiles(kinds: list[Any]) -> list[Any]:
    return [{"type": kind} for kind in kinds]


SAFE_PROFILES = [{"type": "RuntimeDefault"}, {"type": "Localhost", "localhostProfile": "p.json"}]
RISKY_PROFILES = [None, {}, *_profiles(["Unconfined", "", "runtime/default", None])]
SELINUX_TYPES = ["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"]
SAFE_SYSCTLS = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
    "net.ipv4.tcp_rmem",
]
UNSAFE_SYSCTLS = ["kernel.msgmax", "net.core.somaxconn", "vm.swappiness", "", "NET.IPV4.TCP_RMEM"]
RISKY_CAPABILITIES = ["SYS_ADMIN", "NET_RAW", "ALL", "net_bind_service", "CAP_CHOWN", "", "KILL"]
# The volume sources as the policy lists them; which of them upstream refuses is the oracle's
# to say, so taking the names from the module does not make the test agree with itself.
ALLOWED_VOLUMES = list(RESTRICTED_VOLUME_SOURCES)
FORBIDDEN_VOLUMES = list(FORBIDDEN_VOLUME_SOURCES)

FIELD = {
    # pod level
    "hostNamespace": _choice([MISSING, False], [True, None]),
    "hostUsers": _choice([MISSING, True], [False, None]),
    "os": _choice([MISSING, {"name": "linux"}], [{"name": "windows"}, {"name": "Windows"}]),
    "podSecurityContext": _choice([True], [False, None]),
    "podRunAsNonRoot": _choice([True], [MISSING, False, None]),
    "runAsUser": _choice([MISSING, 1000], [0, None]),
    "podProfile": _choice(SAFE_PROFILES, [MISSING, *RISKY_PROFILES]),
    "appArmorProfile": _choice([MISSING, *SAFE_PROFILES], RISKY_PROFILES),
    "sysctl": _choice(SAFE_SYSCTLS, UNSAFE_SYSCTLS),
    # hostPath, the one source baseline forbids too, is a third of the risky sources
    "volumeSource": _choice(ALLOWED_VOLUMES, [*["hostPath"] * 11, *FORBIDDEN_VOLUMES, "unknown"]),
    "nullSource": _choice([False], [True]),
    "annotation": _choice(["runtime/default", "localhost/custom", ""], ["unconfined", "x"]),
    "seccompAnnotation": _choice([False], [True]),
    # SELinux and Windows options, at either level
    "seLinux": _choice([False], [True]),
    "seLinuxType": _choice([MISSING, *SELINUX_TYPES], ["spc_t", None, "Container_t"]),
    "seLinuxUserOrRole": _choice([MISSING, ""], ["system_u", None]),
    "hostProcess": _choice([MISSING, False], [True, None]),
    # container level
    "containerSecurityContext": _choice([True], [MISSING, None, False]),
    "allowPrivilegeEscalation": _choice([False], [MISSING, True, None]),
    "privileged": _choice([MISSING, False], [True, None]),
    "containerRunAsNonRoot": _choice([MISSING, True], [False, None]),
    "containerProfile": _choice([MISSING, *SAFE_PROFILES], RISKY_PROFILES),
    "capabilities": _choice([True], [MISSING, None, False]),
    "drop": _choice([["ALL"]], [MISSING, [], ["all"], ["NET_RAW"], ["CHOWN", "ALL"], None]),
    "add": _choice([MISSING, [], ["NET_BIND_SERVICE"]], [None, *([c] for c in RISKY_CAPABILITIES)]),
    "procMount": _choice([MISSING, "Default"], ["Unmasked", "", None]),
    "hostPort": _choice([MISSING, 0], [8080, 443]),
    "handlerHost": _choice([MISSING, ""], ["10.0.0.1", "localhost", "::1", None]),
}


def _field(draw: st.DrawFn, mode: int, name: str) -> Any:
    return draw(FIELD[name][mode])


def _selinux(draw: st.DrawFn, mode: int) -> Any:
    if not _field(draw, mode, "seLinux"):
        return MISSING
    options: dict[str, Any] = {"level": "s0:c1,c2"}
    _put(options, "type", _field(draw, mode, "seLinuxType"))
    _put(options, "user", _field(draw, mode, "seLinuxUserOrRole"))
    _put(options, "role", _field(draw, mode, "seLinuxUserOrRole"))
    return options


def _windows_options(draw: st.DrawFn, mode: int) -> Any:
    host_process = _field(draw, mode, "hostProcess")
    if host_process is MISSING:
        return MISSING
    return {"runAsUserName": "ContainerUser", "hostProcess": host_process}


def _pod_security_context(draw: st.DrawFn, mode: int) -> Any:
    present = _field(draw, mode, "podSecurityContext")
    if present is not True:
        return present or MISSING
    context: dict[str, Any] = {}
    _put(context, "runAsNonRoot", _field(draw, mode, "podRunAsNonRoot"))
    _put(context, "runAsUser", _field(draw, mode, "runAsUser"))
    _put(context, "seccompProfile", _field(draw, mode, "podProfile"))
    _put(context, "appArmorProfile", _field(draw, mode, "appArmorProfile"))
    _put(context, "seLinuxOptions", _selinux(draw, mode))
    _put(context, "windowsOptions", _windows_options(draw, mode))
    count = draw(st.integers(0, 2))
    if count:
        names = [_field(draw, mode, "sysctl") for _ in range(count)]
        context["sysctls"] = [{"name": name, "value": "1"} for name in names]
    return context


def _capabilities(draw: st.DrawFn, mode: int) -> Any:
    present = _field(draw, mode, "capabilities")
    if present is not True:
        return {} if present is False else present
    capabilities: dict[str, Any] = {}
    _put(capabilities, "drop", _field(draw, mode, "drop"))
    _put(capabilities, "add", _field(draw, mode, "add"))
    return capabilities


def _container_security_context(draw: st.DrawFn, mode: int) -> Any:
    present = _field(draw, mode, "containerSecurityContext")
    if present is not True:
        return {} if present is False else present
    context: dict[str, Any] = {}
    _put(context, "allowPrivilegeEscalation", _field(draw, mode, "allowPrivilegeEscalation"))
    _put(context, "privileged", _field(draw, mode, "privileged"))
    _put(context, "runAsNonRoot", _field(draw, mode, "containerRunAsNonRoot"))
    _put(context, "runAsUser", _field(draw, mode, "runAsUser"))
    _put(context, "capabilities", _capabilities(draw, mode))
    _put(context, "procMount", _field(draw, mode, "procMount"))
    _put(context, "seccompProfile", _field(draw, mode, "containerProfile"))
    _put(context, "appArmorProfile", _field(draw, mode, "appArmorProfile"))
    _put(context, "seLinuxOptions", _selinux(draw, mode))
    _put(context, "windowsOptions", _windows_options(draw, mode))
    return context


def _handler(draw: st.DrawFn, mode: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["httpGet", "tcpSocket", "exec", "both"]))
    if kind == "exec":
        return {"exec": {"command": ["true"]}}
    handler: dict[str, Any] = {}
    for key in ("httpGet", "tcpSocket") if kind == "both" else (kind,):
        handler[key] = {"port": 8080}
        _put(handler[key], "host", _field(draw, mode, "handlerHost"))
    return handler


def _container(draw: st.DrawFn, mode: int, name: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": "registry.example/app:1"}
    _put(container, "securityContext", _container_security_context(draw, mode))
    host_ports = [_field(draw, mode, "hostPort") for _ in range(draw(st.integers(0, 1)))]
    if host_ports:
        container["ports"] = [{"containerPort": 8000}]
        _put(container["ports"][0], "hostPort", host_ports[0])
    handlers = draw(
        st.sets(st.sampled_from(["livenessProbe", "readinessProbe", "startupProbe", "hooks"]))
    )
    for probe in handlers - {"hooks"}:
        container[probe] = _handler(draw, mode)
    if "hooks" in handlers:
        container["lifecycle"] = {
            "postStart": _handler(draw, mode),
            "preStop": _handler(draw, mode),
        }
    return container


def _volumes(draw: st.DrawFn, mode: int) -> list[dict[str, Any]]:
    volumes = []
    for index in range(draw(st.integers(0, 2))):
        volume: dict[str, Any] = {"name": f"v{index}"}
        for _ in range(draw(st.integers(0, 2))):  # none: the API server makes it an emptyDir
            source = _field(draw, mode, "volumeSource")
            volume[source] = {"path": "/var/data"} if source == "hostPath" else {}
        if _field(draw, mode, "nullSource"):  # a source set to null counts as absent
            volume[draw(st.sampled_from(ALLOWED_VOLUMES + FORBIDDEN_VOLUMES))] = None
        volumes.append(volume)
    return volumes


def _annotations(draw: st.DrawFn, mode: int, names: list[str]) -> dict[str, str]:
    annotations = {"team": "payments"}
    for name in draw(st.lists(st.sampled_from([*names, "absent"]), max_size=2, unique=True)):
        annotations[APPARMOR_ANNOTATION_PREFIX + name] = _field(draw, mode, "annotation")
    if _field(draw, mode, "seccompAnnotation"):  # seccomp annotations stopped counting in 1.19
        annotations["seccomp.security.alpha.kubernetes.io/pod"] = "unconfined"
    return annotations


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    """A Pod whose security-relevant fields are each likely safe, sometimes not."""
    mode = draw(st.sampled_from([HARDENED, WILD]))
    spec: dict[str, Any] = {}
    names: list[str] = []
    for list_name, prefix, smallest, largest in (
        ("initContainers", "init", 0, 1),
        ("containers", "app", 1, 2),
        ("ephemeralContainers", "debug", 0, 1),
    ):
        count = draw(st.integers(smallest, largest))
        if count:
            spec[list_name] = [_container(draw, mode, f"{prefix}{i}") for i in range(count)]
            names.extend(f"{prefix}{i}" for i in range(count))
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        _put(spec, key, _field(draw, mode, "hostNamespace"))
    _put(spec, "hostUsers", _field(draw, mode, "hostUsers"))
    _put(spec, "os", _field(draw, mode, "os"))
    _put(spec, "securityContext", _pod_security_context(draw, mode))
    volumes = _volumes(draw, mode)
    if volumes:
        spec["volumes"] = volumes
    metadata = {"name": "generated", "annotations": _annotations(draw, mode, names)}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _carried_in(kind: str, pod: dict[str, Any]) -> dict[str, Any]:
    """`pod` as the template of a workload of `kind` (or the Pod itself)."""
    template = {"metadata": pod["metadata"], "spec": pod["spec"]}
    if kind == "Pod":
        return pod
    if kind == "PodTemplate":
        return {"kind": kind, "template": template}
    if kind == "CronJob":
        return {"kind": kind, "spec": {"jobTemplate": {"spec": {"template": template}}}}
    return {"kind": kind, "spec": {"template": template}}


KINDS = ["Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "PodTemplate"]


@pytest.mark.timeout(900)  # a first run builds the oracle: about a minute, more under load
def test_bulwark_and_the_upstream_library_fail_the_same_checks(
    oracle: Oracle, record_property: Any
) -> None:
    """Thousands of generated pods fail exactly the same checks in Bulwark and upstream."""
    compared = 0
    admitted: Counter[str] = Counter()
    failed: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(pod=pods(), kind=st.sampled_from(KINDS))
    def agree(pod: dict[str, Any], kind: str) -> None:
        nonlocal compared
        expected = oracle.judge(pod)
        spec = find_pod_spec(kind, _carried_in(kind, pod))
        assert spec is not None
        for level in LEVELS:
            found = {violation.check for violation in judge_pod(spec, level, "team-a")}
            assert found == expected[level], f"{level}: Bulwark {found}, upstream {expected[level]}"
            admitted[level] += not found
            failed.update(found)
        compared += 1

    agree()

    record_property("pods_compared", compared)
    print(f"\ncompared {compared} pods with the upstream library; admitted {dict(admitted)}")
    assert compared >= 2000
    for level in LEVELS:
        assert admitted[level] >= compared // 20, f"too few pods admitted at {level} to tell"
    assert set(failed) == {check.id for check in CHECKS}, "some check never failed"
