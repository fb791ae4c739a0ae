"""pod-defaults through the real engine: which requests it patches, fsGroup, resources.

Every test calls `webhook.admission.mutate` with a real AdmissionRequest and applies the
patch with `jsonpatch`, as the API server would.
"""

from __future__ import annotations

import textwrap
from typing import Any

import jsonpatch
import pytest
import yaml

from webhook.admission import mutate
from webhook.config import Settings, settings_from_mapping
from webhook.review import AdmissionRequest

MISSING = object()
DEFAULTS = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}


def _request(
    obj: dict[str, Any],
    *,
    namespace: str = "team-a",
    operation: str = "CREATE",
    kind: str = "Pod",
    group: str = "",
    resource: str = "pods",
    sub_resource: str = "",
) -> AdmissionRequest:
    body: dict[str, Any] = {
        "uid": "5f3c9d1e-0000-4000-8000-000000000001",
        "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "dev-1"},
        "object": obj,
    }
    if sub_resource:
        body["subResource"] = sub_resource
    if operation == "UPDATE":
        body["oldObject"] = obj
    return AdmissionRequest.model_validate(body)


def _patch(obj: dict[str, Any], settings: Settings | None = None, **request: Any) -> list[Any]:
    verdict = mutate(_request(obj, **request), settings or Settings())
    assert verdict.allowed, verdict.reason
    assert not verdict.failed_policies
    return verdict.patch


def _mutated(obj: dict[str, Any], settings: Settings | None = None, **request: Any) -> Any:
    return jsonpatch.apply_patch(obj, _patch(obj, settings, **request))


def _get(document: Any, pointer: str) -> Any:
    node = document
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return MISSING
    return node


def _pod(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": list(containers) or [_container()], **spec},
    }


def _container(name: str = "app", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "registry.example/app:1", **fields}


def _resources(container: int = 0, list_name: str = "containers") -> str:
    return f"/spec/{list_name}/{container}/resources"


# --- the handed cases C05 to C11, restated as our own test data ---------------------------

HANDED = [
    pytest.param(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: bare}
        spec:
          containers:
          - {name: app, image: registry.example/app:1}
        """,
        {
            "/spec/securityContext/fsGroup": 1000,
            "/spec/containers/0/resources/requests/cpu": "100m",
            "/spec/containers/0/resources/requests/memory": "128Mi",
            "/spec/containers/0/resources/limits/cpu": "500m",
            "/spec/containers/0/resources/limits/memory": "512Mi",
        },
        [],
        [],
        id="C05-bare-pod-gets-fsgroup-and-defaults-with-parents-created",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: root-group}
        spec:
          securityContext: {fsGroup: 0, runAsUser: 1001}
          containers:
          - {name: app, image: registry.example/app:1}
        """,
        {"/spec/securityContext/fsGroup": 0, "/spec/securityContext/runAsUser": 1001},
        [],
        [],
        id="C06-explicit-fsgroup-0-is-a-choice",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: big}
        spec:
          containers:
          - name: app
            image: registry.example/app:1
            resources:
              requests: {cpu: "1", memory: 2Gi}
        """,
        {
            "/spec/containers/0/resources/requests/cpu": "1",
            "/spec/containers/0/resources/requests/memory": "2Gi",
            "/spec/containers/0/resources/limits/cpu": "1",
            "/spec/containers/0/resources/limits/memory": "2Gi",
        },
        [],
        [],
        id="C07-request-above-default-limit-raises-the-limit",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: capped}
        spec:
          containers:
          - name: app
            image: registry.example/app:1
            resources:
              limits: {cpu: 200m, memory: 64Mi}
        """,
        {
            "/spec/containers/0/resources/limits/cpu": "200m",
            "/spec/containers/0/resources/limits/memory": "64Mi",
        },
        ["/spec/containers/0/resources/requests"],
        [],
        id="C08-limits-only-keep-their-qos",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: win}
        spec:
          os: {name: windows}
          containers:
          - {name: app, image: registry.example/nanoserver:ltsc2022}
        """,
        {"/spec/containers/0/resources/limits/memory": "512Mi"},
        ["/spec/securityContext/fsGroup"],
        [],
        id="C09-windows-pod-gets-resources-but-no-fsgroup",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: pair}
        spec:
          containers:
          - name: sized
            image: registry.example/a:1
            resources:
              requests: {cpu: 250m, memory: 64Mi}
              limits: {cpu: "1", memory: 256Mi}
          - {name: unsized, image: registry.example/b:1}
        """,
        {
            "/spec/containers/1/resources/requests/cpu": "100m",
            "/spec/containers/1/resources/limits/memory": "512Mi",
        },
        [],
        ["/spec/containers/0/resources"],
        id="C10-only-the-unsized-container-is-defaulted",
    ),
    pytest.param(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: with-init}
        spec:
          initContainers:
          - {name: migrate, image: registry.example/migrate:1, command: ["/migrate", "--up"]}
          containers:
          - {name: app, image: registry.example/app:1}
        """,
        {"/spec/initContainers/0/resources/requests/memory": "128Mi"},
        [],
        ["/spec/initContainers/0/command", "/spec/initContainers/0/name"],
        id="C11-init-containers-defaulted-in-place",
    ),
]


@pytest.mark.parametrize(("manifest", "after", "absent", "unchanged"), HANDED)
def test_handed_case_is_patched_as_the_contract_says(
    manifest: str, after: dict[str, Any], absent: list[str], unchanged: list[str]
) -> None:
    """The handed pod, mutated in namespace team-a, has exactly the fields the case names."""
    pod = yaml.safe_load(textwrap.dedent(manifest))

    patched = _mutated(pod)

    for pointer, value in after.items():
        assert _get(patched, pointer) == value, pointer
    for pointer in absent:
        assert _get(patched, pointer) is MISSING, pointer
    for pointer in unchanged:
        assert _get(patched, pointer) == _get(pod, pointer), pointer
    assert _patch(patched) == [], "mutating the patched pod again must change nothing"


# --- which requests are mutated --------------------------------------------------------------


@pytest.mark.parametrize(
    "request_fields",
    [
        pytest.param({"operation": "UPDATE"}, id="update"),
        pytest.param({"operation": "DELETE"}, id="delete"),
        pytest.param({"sub_resource": "ephemeralcontainers"}, id="ephemeralcontainers-subresource"),
        pytest.param({"sub_resource": "status"}, id="status-subresource"),
        pytest.param({"sub_resource": "binding"}, id="binding-subresource"),
        pytest.param({"group": "example.com"}, id="a-pod-kind-of-another-api-group"),
        pytest.param({"resource": "podtemplates"}, id="another-resource"),
        pytest.param({"namespace": "kube-system"}, id="exempt-namespace"),
    ],
)
def test_only_pod_creation_is_mutated(request_fields: dict[str, Any]) -> None:
    """UPDATE, DELETE, subresources, look-alike kinds and exempt namespaces get no patch."""
    settings = settings_from_mapping({"exemptNamespaces": ["kube-system"]})

    assert _patch(_pod(), settings, **request_fields) == []


@pytest.mark.parametrize(
    ("kind", "group", "resource", "obj"),
    [
        pytest.param(
            "Deployment",
            "apps",
            "deployments",
            {"spec": {"template": {"spec": {"containers": [_container()]}}}},
            id="deployment-template",
        ),
        pytest.param(
            "CronJob",
            "batch",
            "cronjobs",
            {"spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}},
            id="cronjob-template",
        ),
        pytest.param(
            "PodTemplate", "", "podtemplates", {"template": {"spec": {}}}, id="pod-template"
        ),
        pytest.param("ConfigMap", "", "configmaps", {"data": {"a": "b"}}, id="configmap"),
    ],
)
def test_other_kinds_and_templates_get_an_empty_patch(
    kind: str, group: str, resource: str, obj: dict[str, Any]
) -> None:
    """Templates are never defaulted: live workloads would drift from what git holds."""
    manifest = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}, **obj}

    assert _patch(manifest, kind=kind, group=group, resource=resource) == []


# --- fsGroup ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param({}, 1000, id="absent-is-set"),
        pytest.param({"securityContext": {"runAsUser": 1}}, 1000, id="context-without-fsgroup"),
        pytest.param({"securityContext": None}, 1000, id="null-context"),
        pytest.param({"securityContext": {"fsGroup": None}}, 1000, id="null-fsgroup"),
        pytest.param({"securityContext": {"fsGroup": 0}}, 0, id="zero-kept"),
        pytest.param({"securityContext": {"fsGroup": 2000}}, 2000, id="other-group-kept"),
        pytest.param({"os": {"name": "linux"}}, 1000, id="linux-os"),
        pytest.param({"nodeSelector": {"kubernetes.io/os": "linux"}}, 1000, id="linux-selector"),
        pytest.param(
            {"securityContext": {"windowsOptions": {"hostProcess": False}}},
            1000,
            id="host-process-false",
        ),
        pytest.param(
            {"securityContext": {"windowsOptions": {"gmsaCredentialSpecName": "x"}}},
            1000,
            id="windows-options-without-host-process",
        ),
    ],
)
def test_fsgroup_is_set_only_when_absent(spec: dict[str, Any], expected: int) -> None:
    """fsGroup is added when absent or null, and a present one (0 included) is kept."""
    patched = _mutated(_pod(**spec))

    assert _get(patched, "/spec/securityContext/fsGroup") == expected


@pytest.mark.parametrize(
    ("spec", "containers"),
    [
        pytest.param({"os": {"name": "windows"}}, [_container()], id="os-windows"),
        pytest.param(
            {"nodeSelector": {"kubernetes.io/os": "windows"}}, [_container()], id="node-selector"
        ),
        pytest.param(
            {"securityContext": {"windowsOptions": {"hostProcess": True}}},
            [_container()],
            id="pod-host-process",
        ),
        pytest.param(
            {},
            [
                _container(),
                _container("hpc", securityContext={"windowsOptions": {"hostProcess": True}}),
            ],
            id="container-host-process",
        ),
        pytest.param(
            {
                "initContainers": [
                    _container("setup", securityContext={"windowsOptions": {"hostProcess": True}})
                ]
            },
            [_container()],
            id="init-container-host-process",
        ),
    ],
)
def test_windows_pods_get_no_fsgroup(spec: dict[str, Any], containers: list[Any]) -> None:
    """The API server rejects fsGroup on Windows pods; every Windows marker keeps it out."""
    patched = _mutated(_pod(*containers, **spec))

    assert _get(patched, "/spec/securityContext/fsGroup") is MISSING
    assert _get(patched, "/spec/containers/0/resources/limits/cpu") == "500m"


def test_fsgroup_follows_the_namespace_override() -> None:
    """A per-namespace fsGroup wins over the global one, and only in that namespace."""
    settings = settings_from_mapping(
        {"mutation": {"fsGroup": 3000, "namespaces": {"media": {"fsGroup": 4000}}}}
    )

    assert _get(_mutated(_pod(), settings, namespace="media"), "/spec/securityContext/fsGroup") == (
        4000
    )
    assert _get(_mutated(_pod(), settings), "/spec/securityContext/fsGroup") == 3000


def test_the_fsgroup_patch_is_one_add_of_the_smallest_enclosing_object() -> None:
    """Without a securityContext the patch adds it whole, as the contract's example shows."""
    sized = _container(resources={"requests": {"cpu": "1"}, "limits": {"cpu": "1", "memory": "1"}})

    assert _patch(_pod(sized)) == [
        {"op": "add", "path": "/spec/securityContext", "value": {"fsGroup": 1000}}
    ]


# --- container resources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        pytest.param(None, DEFAULTS, id="nothing-set"),
        pytest.param({}, DEFAULTS, id="empty-resources"),
        pytest.param({"requests": None, "limits": None}, DEFAULTS, id="null-sections"),
        pytest.param(
            {"requests": {"cpu": None}},
            DEFAULTS,
            id="null-request-counts-as-absent",
        ),
        pytest.param(
            {"limits": {"cpu": "200m"}},
            {
                "requests": {"memory": "128Mi"},
                "limits": {"cpu": "200m", "memory": "512Mi"},
            },
            id="cpu-limit-only-left-for-the-api-server-to-copy",
        ),
        pytest.param(
            {"requests": {"cpu": "250m"}},
            {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": DEFAULTS["limits"]},
            id="request-below-default-limit-gets-the-default-limit",
        ),
        pytest.param(
            {"requests": {"cpu": "2", "memory": "1Gi"}},
            {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
            id="request-above-default-limit-becomes-the-limit-as-written",
        ),
        pytest.param(
            {"requests": {"cpu": "0.5", "memory": "0.5Gi"}},
            {"requests": {"cpu": "0.5", "memory": "0.5Gi"}, "limits": DEFAULTS["limits"]},
            id="request-equal-to-default-limit-in-another-spelling",
        ),
        pytest.param(
            {"requests": {"cpu": "501m", "memory": "536870913"}},
            {
                "requests": {"cpu": "501m", "memory": "536870913"},
                "limits": {"cpu": "501m", "memory": "536870913"},
            },
            id="request-just-above-default-limit-compared-exactly",
        ),
        pytest.param(
            {"requests": {"cpu": 2}},
            {"requests": {"cpu": 2, "memory": "128Mi"}, "limits": {"cpu": 2, "memory": "512Mi"}},
            id="numeric-request-written-back-as-a-number",
        ),
        pytest.param(
            {"requests": {"cpu": "1e3m"}},
            {"requests": {"cpu": "1e3m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            id="unreadable-request-gets-no-limit",
        ),
        pytest.param(
            {
                "requests": {"cpu": "250m", "memory": "64Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
            {
                "requests": {"cpu": "250m", "memory": "64Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"},
            },
            id="both-set-untouched",
        ),
        pytest.param(
            {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
            {
                "requests": {"cpu": "2", "memory": "128Mi"},
                "limits": {"cpu": "1", "memory": "512Mi"},
            },
            id="both-set-untouched-even-when-invalid",
        ),
        pytest.param(
            {"requests": {"ephemeral-storage": "1Gi"}, "limits": {"example.com/dev": 1}},
            {
                "requests": {"ephemeral-storage": "1Gi", "cpu": "100m", "memory": "128Mi"},
                "limits": {"example.com/dev": 1, "cpu": "500m", "memory": "512Mi"},
            },
            id="other-resources-never-touched",
        ),
    ],
)
def test_container_resources_follow_the_contract(
    resources: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    """Per resource: defaults when nothing is set, a limit above a lone request, else nothing."""
    container = _container() if resources is None else _container(resources=resources)

    patched = _mutated(_pod(container))

    assert _get(patched, _resources()) == expected


def test_init_containers_and_sidecars_are_defaulted_but_ephemeral_containers_never() -> None:
    """Init containers (restartPolicy Always ones too) get defaults; ephemeral ones may not."""
    pod = _pod(
        _container(),
        initContainers=[_container("init"), _container("sidecar", restartPolicy="Always")],
        ephemeralContainers=[{"name": "debug", "image": "busybox"}],
    )

    patched = _mutated(pod)

    assert _get(patched, _resources(0, "initContainers")) == DEFAULTS
    assert _get(patched, _resources(1, "initContainers")) == DEFAULTS
    assert _get(patched, "/spec/ephemeralContainers") == [{"name": "debug", "image": "busybox"}]


def test_namespace_defaults_override_the_global_ones() -> None:
    """A namespace's own defaults apply in that namespace only."""
    settings = settings_from_mapping(
        {
            "mutation": {
                "namespaces": {
                    "batch": {
                        "defaults": {
                            "requests": {"cpu": "1", "memory": "1Gi"},
                            "limits": {"cpu": "4", "memory": "8Gi"},
                        }
                    }
                }
            }
        }
    )

    in_batch = _mutated(_pod(), settings, namespace="batch")
    elsewhere = _mutated(_pod(), settings)

    assert _get(in_batch, _resources()) == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "4", "memory": "8Gi"},
    }
    assert _get(elsewhere, _resources()) == DEFAULTS


@pytest.mark.parametrize(
    ("defaults", "resources", "expected"),
    [
        pytest.param(
            {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
            None,
            {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}},
            id="unset-defaults-are-not-added",
        ),
        pytest.param(
            {"requests": {"cpu": "100m", "memory": "1Mi"}, "limits": {"memory": "1Gi"}},
            {"requests": {"cpu": "8"}},
            {"requests": {"cpu": "8", "memory": "1Mi"}, "limits": {"memory": "1Gi"}},
            id="no-default-limit-no-limit-for-a-lone-request",
        ),
        pytest.param(
            {"requests": {"cpu": 0.25, "memory": 1024}, "limits": {"cpu": 1, "memory": 2048}},
            None,
            {
                "requests": {"cpu": "0.25", "memory": "1024"},
                "limits": {"cpu": "1", "memory": "2048"},
            },
            id="numeric-defaults-written-as-strings",
        ),
    ],
)
def test_configured_defaults_shape_what_is_added(
    defaults: dict[str, Any], resources: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    """Only configured amounts are added, written as quantity strings."""
    settings = settings_from_mapping({"mutation": {"defaults": defaults}})
    container = _container() if resources is None else _container(resources=resources)

    assert _get(_mutated(_pod(container), settings), _resources()) == expected


def test_a_bare_pod_is_patched_with_one_add_per_container() -> None:
    """Missing resources are added whole, one op per container, never one op per value."""
    patch = _patch(_pod(_container("a"), _container("b")))

    assert [op["path"] for op in patch] == [
        "/spec/securityContext",
        "/spec/containers/0/resources",
        "/spec/containers/1/resources",
    ]
    assert all(op["op"] == "add" for op in patch)


def test_null_resources_are_replaced_not_added_under() -> None:
    """A null member is overwritten with replace, so a strict patcher accepts the patch."""
    patch = _patch(_pod(_container(resources=None), securityContext=None))

    assert [(op["op"], op["path"]) for op in patch] == [
        ("replace", "/spec/securityContext"),
        ("replace", "/spec/containers/0/resources"),
    ]


# --- pod-level resources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod_resources", "expected"),
    [
        pytest.param(
            {"limits": {"cpu": "2"}},
            {"requests": {"memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            id="pod-cpu-limit-no-cpu-defaults",
        ),
        pytest.param(
            {"requests": {"memory": "1Gi"}},
            {"requests": {"cpu": "100m"}, "limits": {"cpu": "500m"}},
            id="pod-memory-request-no-memory-defaults",
        ),
        pytest.param(
            {"requests": {"cpu": "1"}, "limits": {"memory": "1Gi"}},
            MISSING,
            id="both-budgeted-no-container-defaults",
        ),
        pytest.param(
            {"requests": {"cpu": None}, "limits": {}},
            DEFAULTS,
            id="null-pod-amounts-budget-nothing",
        ),
        pytest.param(
            {"limits": {"hugepages-2Mi": "1Gi"}},
            DEFAULTS,
            id="other-pod-resources-budget-nothing",
        ),
        pytest.param(None, DEFAULTS, id="null-pod-resources"),
        pytest.param("lots", MISSING, id="unreadable-pod-resources-skip-all"),
        pytest.param({"limits": ["cpu"]}, MISSING, id="unreadable-pod-limits-skip-all"),
    ],
)
def test_pod_level_resources_keep_container_defaults_out(pod_resources: Any, expected: Any) -> None:
    """A resource budgeted at pod level gets no container defaults, so no sum can exceed it."""
    patched = _mutated(_pod(resources=pod_resources))

    assert _get(patched, _resources()) == expected
    assert _get(patched, "/spec/resources") == pod_resources
    assert _get(patched, "/spec/securityContext/fsGroup") == 1000


def test_pod_level_budget_leaves_lone_requests_without_a_limit() -> None:
    """Under a pod-level cpu budget even a lone cpu request gets no limit added."""
    pod = _pod(
        _container(resources={"requests": {"cpu": "250m"}}),
        _container("b"),
        resources={"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}},
    )

    patched = _mutated(pod)

    assert _get(patched, "/spec/containers/0/resources/limits/cpu") is MISSING
    assert _get(patched, "/spec/containers/1/resources/requests/cpu") is MISSING
    assert _get(patched, "/spec/containers/1/resources/limits/memory") == "512Mi"


# --- malformed input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param({"kind": "Pod"}, id="no-spec"),
        pytest.param({"kind": "Pod", "spec": None}, id="null-spec"),
        pytest.param({"kind": "Pod", "spec": ["x"]}, id="spec-a-list"),
        pytest.param(_pod(securityContext="root"), id="security-context-a-string"),
        pytest.param(
            {"kind": "Pod", "spec": {"containers": {"app": {}}}}, id="containers-an-object"
        ),
        pytest.param({"kind": "Pod", "spec": {"containers": "app"}}, id="containers-a-string"),
        pytest.param(_pod("app", None, 3), id="container-entries-not-objects"),  # type: ignore[arg-type]
        pytest.param(_pod(_container(resources="lots")), id="resources-a-string"),
        pytest.param(_pod(_container(resources=["cpu"])), id="resources-a-list"),
        pytest.param(_pod(_container(resources={"requests": "1"})), id="requests-a-string"),
        pytest.param(_pod(_container(resources={"limits": [1]})), id="limits-a-list"),
        pytest.param(
            _pod(_container(resources={"requests": {"cpu": {"v": 1}, "memory": [1]}})),
            id="quantities-not-scalars",
        ),
        pytest.param(
            _pod(_container(resources={"requests": {"cpu": True, "memory": "1e999"}})),
            id="quantities-unreadable",
        ),
        pytest.param(_pod(os="windows", nodeSelector=["x"]), id="windows-markers-malformed"),
        pytest.param(
            _pod(_container(securityContext={"windowsOptions": "yes"})),
            id="windows-options-a-string",
        ),
        pytest.param(_pod(initContainers=None, ephemeralContainers=5), id="odd-lists"),
        pytest.param(
            {**_pod(), "metadata": {"annotations": {"a/b~c": "x"}, "name": None}},
            id="odd-metadata",
        ),
    ],
)
def test_malformed_pods_are_skipped_never_denied(obj: dict[str, Any]) -> None:
    """What cannot be defaulted is left alone; the patch still applies and is idempotent."""
    patched = _mutated(obj)

    assert _patch(patched) == []


def test_a_container_that_cannot_be_defaulted_does_not_stop_the_others() -> None:
    """One unreadable container is skipped while its siblings still get their defaults."""
    patched = _mutated(_pod(_container(resources="lots"), _container("b")))

    assert _get(patched, _resources(0)) == "lots"
    assert _get(patched, _resources(1)) == DEFAULTS
