"""Properties of pod-defaults that hold for every pod, checked over generated pods.

The pods mix containers, init containers (sidecars too) and ephemeral containers; existing
requests and limits in many quantity spellings; fsGroup absent, null, 0 or set; Windows
markers; pod-level resources; privileged settings for pod-security to judge; and member
names with `/` and `~` in them. Every mutation goes through the real engine and its patch
through `jsonpatch`, as the API server would apply it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonpatch
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission import mutate, validate
from webhook.config import Settings, settings_from_mapping
from webhook.quantity import parse_quantity
from webhook.review import AdmissionRequest

SETTINGS = settings_from_mapping(
    {"podSecurity": {"namespaces": {"strict": "restricted", "kube-system": "privileged"}}}
)
DEFAULT_LIMITS = {"cpu": "500m", "memory": "512Mi"}
RESOURCE_NAMES = ("cpu", "memory")
NAMESPACES = st.sampled_from(["team-a", "strict"])
ODD_NAMES = st.text(alphabet="ab-./~0", min_size=1, max_size=8)
EXTRA_RESOURCES = ["ephemeral-storage", "nvidia.com/gpu", "example.com/odd~name"]

CPU = st.one_of(
    st.integers(0, 8),
    st.integers(0, 8000).map(lambda n: f"{n}m"),
    st.integers(0, 800).map(lambda n: f"{n / 100}"),
    st.integers(0, 80).map(lambda n: f"{n}e-1"),
    st.sampled_from(["100m", "0.5", "1", "1.", ".5", "+1", "1e0", "5E-1", "500m", "501m", "499m"]),
)
MEMORY = st.one_of(
    st.integers(0, 2**34),
    st.integers(0, 4096).map(lambda n: f"{n}Mi"),
    st.integers(0, 8).map(lambda n: f"{n}Gi"),
    st.integers(0, 4000).map(lambda n: f"{n}M"),
    st.integers(0, 10**6).map(lambda n: f"{n}Ki"),
    st.sampled_from(["512Mi", "0.5Gi", "536870912", "536870913", "1e9", "1Gi", "1.5Gi", "1E"]),
)
AMOUNTS = {"cpu": CPU, "memory": MEMORY}


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any] | None:
    """Container resources: each of cpu and memory unset, request only, limit only, or both."""
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for name in RESOURCE_NAMES:
        state = draw(st.sampled_from(["none", "request", "limit", "both", "null"]))
        if state == "request":
            requests[name] = draw(AMOUNTS[name])
        elif state == "limit":
            limits[name] = draw(AMOUNTS[name])
        elif state == "both":  # a pair the API server accepts: request <= limit
            pair = sorted([draw(AMOUNTS[name]), draw(AMOUNTS[name])], key=parse_quantity)
            requests[name], limits[name] = pair
        elif state == "null":
            requests[name] = None
    for extra in draw(st.lists(st.sampled_from(EXTRA_RESOURCES), unique=True, max_size=2)):
        (limits if draw(st.booleans()) else requests)[extra] = draw(st.integers(1, 4))

    found: dict[str, Any] = {}
    for key, section in (("requests", requests), ("limits", limits)):
        form = draw(st.sampled_from(["kept", "dropped-when-empty", "null-when-empty"]))
        if section or form == "kept":
            found[key] = section
        elif form == "null-when-empty":
            found[key] = None
    return found


CONTAINER_CONTEXTS = st.sampled_from(
    [
        None,
        None,
        None,
        None,
        {},
        {"privileged": True},
        {"privileged": False, "runAsNonRoot": True},
        {"windowsOptions": {"hostProcess": True}},
        {"windowsOptions": {"hostProcess": False}},
        {"capabilities": {"add": ["NET_ADMIN"]}},
    ]
)


@st.composite
def containers(draw: st.DrawFn, *, ephemeral: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": draw(ODD_NAMES), "image": "registry.example/app:1"}
    if ephemeral or draw(st.booleans()):
        found = draw(resources())
        if found is not None or draw(st.booleans()):
            container["resources"] = found
    context = draw(CONTAINER_CONTEXTS)
    if context is not None:
        container["securityContext"] = context
    if not ephemeral and draw(st.booleans()):
        container["restartPolicy"] = "Always"  # a sidecar, when it is an init container
    return container


POD_CONTEXTS = st.one_of(
    st.sampled_from(
        [
            "absent",
            None,
            {},
            {"fsGroup": None},
            {"runAsUser": 1001},
            {"windowsOptions": {"hostProcess": True}},
        ]
    ),
    st.integers(0, 70000).map(lambda group: {"fsGroup": group, "runAsNonRoot": True}),
)
WINDOWS_MARKERS = st.sampled_from(
    [
        {},
        {"os": {"name": "windows"}},
        {"os": {"name": "linux"}},
        {"nodeSelector": {"kubernetes.io/os": "windows"}},
        {"nodeSelector": {"kubernetes.io/os": "linux", "disk/type~x": "ssd"}},
    ]
)


@st.composite
def pod_level_resources(draw: st.DrawFn) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for section, amount in (("requests", {"cpu": "16", "memory": "64Gi"}), ("limits", None)):
        names = draw(st.lists(st.sampled_from(RESOURCE_NAMES), unique=True, max_size=2))
        if names:
            found[section] = {
                name: (amount or {"cpu": "32", "memory": "128Gi"})[name] for name in names
            }
    return found


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": draw(st.lists(containers(), min_size=1, max_size=4))}
    if draw(st.booleans()):
        spec["initContainers"] = draw(st.lists(containers(), max_size=3))
    if draw(st.booleans()):
        spec["ephemeralContainers"] = draw(st.lists(containers(ephemeral=True), max_size=2))
    context = draw(POD_CONTEXTS)
    if context != "absent":
        spec["securityContext"] = context
    spec.update(draw(WINDOWS_MARKERS))
    if draw(st.booleans()):
        spec["resources"] = draw(pod_level_resources())
    if draw(st.booleans()):
        spec["hostNetwork"] = True
    annotations = draw(st.dictionaries(ODD_NAMES, st.text(max_size=4), max_size=3))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": draw(ODD_NAMES), "annotations": annotations},
        "spec": spec,
    }


def _request(pod: Any, namespace: str) -> AdmissionRequest:
    return AdmissionRequest.model_validate(
        {
            "uid": "0e6b1a52-0000-4000-8000-000000000002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "object": pod,
        }
    )


def _patch(pod: Any, namespace: str = "team-a", config: Settings = SETTINGS) -> list[Any]:
    verdict = mutate(_request(pod, namespace), config)
    assert verdict.allowed, verdict.reason
    assert not verdict.failed_policies
    return verdict.patch


def _resolve(document: Any, pointer: str) -> tuple[Any, str]:
    """The parent object the pointer's last token names a member of, and that token."""
    *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    node = document
    for token in parents:
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node, last


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every non-null scalar of `node` with its path, and every list with its length."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        yield (*path, "#len"), len(node)
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    elif node is not None:
        yield path, node


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    node = document
    for key in path:
        if key == "#len":
            return len(node)
        node = node[key]
    return node


def _is_windows(spec: dict[str, Any]) -> bool:
    def host_process(context: Any) -> bool:
        return (
            isinstance(context, dict)
            and (context.get("windowsOptions") or {}).get("hostProcess") is True
        )

    listed = [
        c
        for name in ("containers", "initContainers", "ephemeralContainers")
        for c in spec.get(name, [])
    ]
    return (
        (spec.get("os") or {}).get("name") == "windows"
        or (spec.get("nodeSelector") or {}).get("kubernetes.io/os") == "windows"
        or host_process(spec.get("securityContext"))
        or any(host_process(c.get("securityContext")) for c in listed)
    )


def _budgeted(spec: dict[str, Any]) -> set[str]:
    pod_resources = spec.get("resources") or {}
    return {name for section in pod_resources.values() for name in section}


EXAMPLES = settings(max_examples=80, deadline=None)


@EXAMPLES
@given(pod=pods(), namespace=NAMESPACES)
def test_the_patch_applies_and_only_fills_what_was_absent(pod: Any, namespace: str) -> None:
    """Every op adds an absent member or replaces a null one; every value set stays as it was."""
    patch = _patch(pod, namespace)

    patched = jsonpatch.JsonPatch(patch).apply(pod)

    for operation in patch:
        parent, member = _resolve(pod, operation["path"])
        assert isinstance(parent, dict), operation
        if operation["op"] == "add":
            assert member not in parent, operation
        else:
            assert operation["op"] == "replace", operation
            assert parent[member] is None, operation
    for path, value in _leaves(pod):
        assert _at(patched, path) == value, path
    assert patched["spec"].get("ephemeralContainers") == pod["spec"].get("ephemeralContainers")


@EXAMPLES
@given(pod=pods(), namespace=NAMESPACES)
def test_containers_end_with_requests_within_limits(pod: Any, namespace: str) -> None:
    """After the patch each container's requests are within its limits, and it has limits."""
    patched = jsonpatch.apply_patch(pod, _patch(pod, namespace))

    budgeted = _budgeted(pod["spec"])
    for list_name in ("containers", "initContainers"):
        for container in patched["spec"].get(list_name, []):
            resources = container.get("resources") or {}
            requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
            for name in RESOURCE_NAMES:
                if requests.get(name) is not None and limits.get(name) is not None:
                    assert parse_quantity(requests[name]) <= parse_quantity(limits[name])
                if name not in budgeted:
                    assert limits.get(name) is not None, (list_name, container, name)


@EXAMPLES
@given(pod=pods(), namespace=NAMESPACES)
def test_pod_level_budgets_get_no_container_defaults(pod: Any, namespace: str) -> None:
    """A resource budgeted at pod level is added to no container, so no sum can exceed it."""
    patch = _patch(pod, namespace)

    for name in _budgeted(pod["spec"]):
        for operation in patch:
            assert not operation["path"].endswith(f"/{name}"), operation
            assert name not in str(operation["value"]), operation


@EXAMPLES
@given(pod=pods(), namespace=NAMESPACES)
def test_fsgroup_is_present_unless_the_pod_runs_on_windows(pod: Any, namespace: str) -> None:
    """Linux pods end with an fsGroup (theirs if they had one); Windows pods get none added."""
    patched = jsonpatch.apply_patch(pod, _patch(pod, namespace))

    before = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    after = (patched["spec"].get("securityContext") or {}).get("fsGroup")
    if _is_windows(pod["spec"]):
        assert after == before
    else:
        assert after == (1000 if before is None else before)


@EXAMPLES
@given(pod=pods(), namespace=NAMESPACES)
def test_mutating_the_patched_pod_again_changes_nothing(pod: Any, namespace: str) -> None:
    """The mutation is idempotent, so reinvocationPolicy IfNeeded is safe."""
    patched = jsonpatch.apply_patch(pod, _patch(pod, namespace))

    assert _patch(patched, namespace) == []


@EXAMPLES
@given(pod=pods(), namespace=NAMESPACES)
def test_pod_security_judges_the_patched_pod_as_the_original(pod: Any, namespace: str) -> None:
    """The defaults never turn an admitted pod into a denied one, nor change what is found."""
    patched = jsonpatch.apply_patch(pod, _patch(pod, namespace))

    before = validate(_request(pod, namespace), SETTINGS)
    after = validate(_request(patched, namespace), SETTINGS)

    assert after.allowed == before.allowed
    checks = {(v.policy, v.check) for v in before.all_violations}
    assert {(v.policy, v.check) for v in after.all_violations} == checks


KEYS = st.sampled_from(
    [
        "containers",
        "initContainers",
        "ephemeralContainers",
        "resources",
        "requests",
        "limits",
        "cpu",
        "memory",
        "securityContext",
        "fsGroup",
        "windowsOptions",
        "hostProcess",
        "os",
        "name",
        "nodeSelector",
        "kubernetes.io/os",
        "a/b~c",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["", "1", "100m", "2Gi", "windows", "lots", "1e999"]),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=16,
)


@settings(max_examples=150, deadline=None)
@given(spec=JSON, pod=pods())
def test_malformed_pods_never_fail_the_mutation(spec: Any, pod: Any) -> None:
    """Whatever shape the spec has, the mutation answers, its patch applies and is idempotent."""
    for candidate in ({**pod, "spec": spec}, {**pod, "spec": {**pod["spec"], "extra": spec}}):
        patched = jsonpatch.apply_patch(candidate, _patch(candidate))

        assert _patch(patched) == []
        for path, value in _leaves(candidate):
            assert _at(patched, path) == value, path
