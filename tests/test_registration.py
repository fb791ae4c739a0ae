"""The webhook configurations: the pure builder, `bulwark manifests`, and `register`'s rules."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from webhook.cli import main
from webhook.errors import BulwarkError
from webhook.podspec import POD_CARRYING_KINDS
from webhook.registration import build_configurations

Config = dict[str, Any]
SERVICE = {"namespace": "bulwark-system", "service": "bulwark"}
CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def build(**overrides: Any) -> list[Config]:
    arguments: dict[str, Any] = {"ca_bundle": None, "url": None, **SERVICE, **overrides}
    return build_configurations(**arguments)


def validating(**overrides: Any) -> Config:
    return build(**overrides)[0]


def mutating(**overrides: Any) -> Config:
    return build(**overrides)[1]


def every_webhook(**overrides: Any) -> list[Config]:
    return [hook for config in build(**overrides) for hook in config["webhooks"]]


def webhooks_for(config: Config, group: str, resource: str, operation: str) -> list[Config]:
    """The webhooks of `config` whose rules send `operation` on group/resource."""
    return [
        hook
        for hook in config["webhooks"]
        if any(
            group in rule["apiGroups"]
            and resource in rule["resources"]
            and operation in rule["operations"]
            for rule in hook["rules"]
        )
    ]


def test_builder_makes_one_validating_and_one_mutating_configuration() -> None:
    """Two admissionregistration.k8s.io/v1 objects, both named bulwark, validating first."""
    configurations = build()
    assert [(c["apiVersion"], c["kind"], c["metadata"]["name"]) for c in configurations] == [
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "bulwark"),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "bulwark"),
    ]


def test_webhook_names_are_unique_and_qualified() -> None:
    """Every webhook name is unique and under bulwark.dev, as the API server requires."""
    names = [hook["name"] for hook in every_webhook()]
    assert len(names) == len(set(names))
    assert all(name.endswith(".bulwark.dev") and name.count(".") >= 3 for name in names)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param("sideEffects", "None", id="no-side-effects"),
        pytest.param("admissionReviewVersions", ["v1", "v1beta1"], id="review-versions"),
        pytest.param("matchPolicy", "Equivalent", id="equivalent-versions"),
        pytest.param("timeoutSeconds", 5, id="timeout-5s"),
    ],
)
def test_every_webhook_sets(field: str, expected: object) -> None:
    """Fields every entry carries, so dry runs work and a slow webhook is cut off early."""
    for hook in every_webhook():
        assert hook[field] == expected, hook["name"]


@pytest.mark.parametrize(
    ("namespace", "excluded"),
    [
        pytest.param(
            "bulwark-system", ["kube-system", "kube-node-lease", "bulwark-system"], id="default"
        ),
        pytest.param("guard", ["kube-system", "kube-node-lease", "guard"], id="own-namespace"),
        pytest.param("kube-system", ["kube-system", "kube-node-lease"], id="no-duplicate"),
    ],
)
def test_control_plane_and_own_namespace_are_never_sent(
    namespace: str, excluded: list[str]
) -> None:
    """The namespaceSelector leaves out kube-system, kube-node-lease and Bulwark's namespace."""
    expected = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}
        ]
    }
    for hook in every_webhook(namespace=namespace):
        assert hook["namespaceSelector"] == expected, hook["name"]


@pytest.mark.parametrize(
    ("group", "resource", "failure_policy"),
    [
        pytest.param("", "pods", "Fail", id="pods"),
        pytest.param("", "pods/ephemeralcontainers", "Fail", id="ephemeral-containers"),
        pytest.param("apps", "deployments", "Ignore", id="deployments"),
        pytest.param("apps", "replicasets", "Ignore", id="replicasets"),
        pytest.param("apps", "statefulsets", "Ignore", id="statefulsets"),
        pytest.param("apps", "daemonsets", "Ignore", id="daemonsets"),
        pytest.param("batch", "jobs", "Ignore", id="jobs"),
        pytest.param("batch", "cronjobs", "Ignore", id="cronjobs"),
        pytest.param("", "replicationcontrollers", "Ignore", id="replicationcontrollers"),
        pytest.param("", "podtemplates", "Ignore", id="podtemplates"),
        pytest.param("networking.k8s.io", "ingresses", "Fail", id="ingresses"),
        pytest.param("traefik.io", "ingressroutes", "Fail", id="ingressroutes"),
        pytest.param("traefik.containo.us", "ingressroutes", "Fail", id="ingressroutes-legacy"),
        pytest.param("rbac.authorization.k8s.io", "rolebindings", "Fail", id="rolebindings"),
        pytest.param(
            "rbac.authorization.k8s.io", "clusterrolebindings", "Fail", id="clusterrolebindings"
        ),
    ],
)
@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
def test_each_contract_kind_is_validated_by_exactly_one_webhook(
    group: str, resource: str, failure_policy: str, operation: str
) -> None:
    """Every kind the contract judges goes to one webhook, failing closed or open by risk."""
    hooks = webhooks_for(validating(), group, resource, operation)
    assert len(hooks) == 1
    assert hooks[0]["failurePolicy"] == failure_policy


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_deletes_and_connects_are_never_sent(operation: str) -> None:
    """DELETE and CONNECT are always allowed, so the API server need not ask."""
    for hook in every_webhook():
        for rule in hook["rules"]:
            assert operation not in rule["operations"]


def test_every_pod_carrying_kind_has_a_rule() -> None:
    """The rules cover each kind webhook.podspec knows to carry a pod spec."""
    resources = {
        resource
        for hook in validating()["webhooks"]
        for r in hook["rules"]
        for resource in r["resources"]
    }
    for kind in POD_CARRYING_KINDS:
        assert f"{kind.lower()}s" in resources, kind


def test_workload_templates_fail_open_in_an_entry_of_their_own() -> None:
    """Templates share no entry with pods, so failing open for them never opens pods."""
    [workloads] = webhooks_for(validating(), "apps", "deployments", "CREATE")
    resources = {resource for rule in workloads["rules"] for resource in rule["resources"]}
    assert "pods" not in resources
    assert workloads["failurePolicy"] == "Ignore"


def test_mutation_is_pods_on_create_only_failing_open_and_reinvoked() -> None:
    """The mutating webhook defaults pods on CREATE, is re-run if needed, and fails open."""
    [hook] = mutating()["webhooks"]
    assert hook["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "resources": ["pods"],
            "operations": ["CREATE"],
            "scope": "*",
        }
    ]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["reinvocationPolicy"] == "IfNeeded"


@pytest.mark.parametrize(
    ("config_index", "path"),
    [pytest.param(0, "/validate", id="validating"), pytest.param(1, "/mutate", id="mutating")],
)
def test_client_config_names_the_service_on_port_443(config_index: int, path: str) -> None:
    """Without --url the API server calls the service, at /validate or /mutate."""
    for hook in build(namespace="guard", service="gate")[config_index]["webhooks"]:
        assert hook["clientConfig"] == {
            "service": {"namespace": "guard", "name": "gate", "path": path, "port": 443}
        }


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://bulwark.example:8443", id="bare"),
        pytest.param("https://bulwark.example:8443/", id="trailing-slash"),
        pytest.param("https://[fd00::1]:8443", id="ipv6"),
        pytest.param("https://10.0.0.1:8443", id="ipv4"),
    ],
)
def test_url_replaces_the_service_reference(url: str) -> None:
    """With --url the webhooks call <base>/validate and <base>/mutate; no service is named."""
    configurations = build(url=url)
    for config, path in zip(configurations, ("/validate", "/mutate"), strict=True):
        for hook in config["webhooks"]:
            assert hook["clientConfig"] == {"url": url.rstrip("/") + path}


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://bulwark.example", id="plain-http"),
        pytest.param("bulwark.example", id="no-scheme"),
        pytest.param("https://bulwark.example/?x=1", id="query"),
        pytest.param("https://user:pw@bulwark.example", id="user-info"),
        pytest.param("https://bulwark.example#frag", id="fragment"),
        pytest.param("https://exa mple/", id="space-in-the-host"),
        pytest.param("https://bulwark_example/", id="underscore-in-the-host"),
        pytest.param("https://bulwark.example:99999/", id="port-out-of-range"),
        pytest.param("https://bulwark.example:8443/a b", id="space-in-the-path"),
    ],
)
def test_url_the_api_server_would_refuse_is_a_usage_error(url: str) -> None:
    """A URL the API server rejects is refused up front, naming it."""
    with pytest.raises(BulwarkError, match="--url"):
        build(url=url)


def test_ca_bundle_is_the_base64_pem_in_every_webhook() -> None:
    """caBundle is the PEM given, base64-encoded, in every entry of both configurations."""
    for hook in every_webhook(ca_bundle=CA_PEM):
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == CA_PEM


def test_ca_bundle_is_absent_when_none_is_given() -> None:
    """Without a bundle the field is left out for cert-manager's CA injector."""
    for hook in every_webhook():
        assert "caBundle" not in hook["clientConfig"]


def test_each_call_returns_objects_of_its_own() -> None:
    """Editing one result (as a kustomize-like caller might) never leaks into the next."""
    first = build()
    pristine = copy.deepcopy(first)
    first[0]["webhooks"][0]["rules"][0]["operations"].append("DELETE")
    first[0]["webhooks"][1]["clientConfig"]["caBundle"] = "x"
    assert build() == pristine
    webhooks = first[0]["webhooks"]
    assert webhooks[0]["rules"] is not webhooks[1]["rules"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="service"),
        pytest.param({"ca_bundle": CA_PEM}, id="service-with-ca"),
        pytest.param({"url": "https://bulwark.example/hooks/"}, id="url"),
        pytest.param({"url": "https://10.0.0.1:8443", "ca_bundle": CA_PEM}, id="url-with-ca"),
    ],
)
def test_configurations_match_the_admissionregistration_v1_schema(
    overrides: dict[str, Any],
) -> None:
    """Both objects validate strictly (no unknown fields) against the v1.37 schema."""
    for config in build(**overrides):
        kubernetes_validate.validate(config, "1.37.0", strict=True)


def test_manifests_prints_both_configurations_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    """`bulwark manifests` prints the builder's two objects as one YAML stream, exit 0."""
    assert main(["manifests", "--namespace", "guard"]) == 0
    out = capsys.readouterr().out
    assert list(yaml.safe_load_all(out)) == build(namespace="guard")
    assert "&id" not in out, "no YAML anchors"


def test_manifests_reads_the_ca_bundle_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--ca-bundle puts the file's PEM into every webhook; --url replaces the service."""
    assert main(["certs", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    ca = tmp_path / "ca.crt"
    assert main(["manifests", "--ca-bundle", str(ca), "--url", "https://h.example"]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert printed == build(ca_bundle=ca.read_bytes(), url="https://h.example")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read --ca-bundle", id="missing"),
        pytest.param(b"not a certificate", "holds no PEM certificate", id="not-pem"),
    ],
)
def test_unusable_ca_bundle_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    """A --ca-bundle that is missing or holds no certificate is a usage error."""
    path = tmp_path / "ca.crt"
    if content is not None:
        path.write_bytes(content)
    assert main(["manifests", "--ca-bundle", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert str(path) in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "no such file", id="missing"),
        pytest.param("just a string\n", "not a readable kubeconfig", id="not-a-kubeconfig"),
        pytest.param("clusters: [\n", "not a readable kubeconfig", id="broken-yaml"),
        pytest.param("apiVersion: v1\nkind: Config\n", "current-context", id="no-context"),
    ],
)
def test_register_with_an_unusable_kubeconfig_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    """A kubeconfig that is missing or not a kubeconfig stops register before any call."""
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    assert main(["register", "--kubeconfig", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("bulwark register: error:")
    assert str(path) in error
    assert message in error


def test_register_without_any_kubeconfig_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --kubeconfig, no ~/.kube/config and not in a pod: a usage error, not a crash."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["register"]) == 2
    assert "kubeconfig" in capsys.readouterr().err


class FakeAdmissionApi:
    """An in-memory admissionregistration API: stores, versions and refuses like the real one.

    Stored objects gain the fields the API server adds (uid, resourceVersion,
    managedFields), so `register` must see past them to call a configuration unchanged.
    """

    def __init__(self) -> None:
        self.stored: dict[str, Config] = {}
        self.writes: list[tuple[str, str]] = []
        self.refusal: tuple[int, str] | None = None
        self.api_client = self
        self._version = 0
        for kind in ("validating", "mutating"):
            suffix = f"{kind}_webhook_configuration"
            setattr(self, f"read_{suffix}", lambda name, k=kind: self._read(k))
            setattr(self, f"create_{suffix}", lambda body, k=kind: self._write(k, "create", body))
            setattr(
                self,
                f"replace_{suffix}",
                lambda name, body, k=kind: self._write(k, "replace", body),
            )

    def sanitize_for_serialization(self, obj: Config) -> Config:
        return copy.deepcopy(obj)

    def _read(self, kind: str) -> Config:
        from kubernetes.client.exceptions import ApiException

        if kind not in self.stored:
            raise ApiException(status=404, reason="Not Found")
        return copy.deepcopy(self.stored[kind])

    def _write(self, kind: str, verb: str, body: Config) -> Config:
        from kubernetes.client.exceptions import ApiException

        if self.refusal is not None:
            error = ApiException(status=self.refusal[0], reason=self.refusal[1])
            error.body = '{"kind": "Status", "message": "admission denied by a test"}'
            raise error
        if verb == "replace":
            assert (
                body["metadata"]["resourceVersion"]
                == self.stored[kind]["metadata"]["resourceVersion"]
            ), "a replace carries the resourceVersion it read"
        self._version += 1
        stored = copy.deepcopy(body)
        stored["metadata"].update(
            uid=f"uid-{kind}", resourceVersion=str(self._version), managedFields=[{"manager": "x"}]
        )
        self.stored[kind] = stored
        self.writes.append((verb, kind))
        return stored


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeAdmissionApi:
    """`register` talking to a FakeAdmissionApi instead of a cluster."""
    import kubernetes.client

    from webhook import registration

    api = FakeAdmissionApi()
    monkeypatch.setattr(registration, "_api_client", lambda kubeconfig: None)
    monkeypatch.setattr(kubernetes.client, "AdmissionregistrationV1Api", lambda client: api)
    return api


def register(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    status = main(["register", *argv])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


VALIDATING_LINE = "validatingwebhookconfiguration.admissionregistration.k8s.io/bulwark"
MUTATING_LINE = "mutatingwebhookconfiguration.admissionregistration.k8s.io/bulwark"


def test_register_creates_then_reports_unchanged(
    cluster: FakeAdmissionApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first run creates both; the second changes nothing and says so."""
    assert register(capsys) == (0, [f"{VALIDATING_LINE} created", f"{MUTATING_LINE} created"], "")
    assert register(capsys) == (
        0,
        [f"{VALIDATING_LINE} unchanged", f"{MUTATING_LINE} unchanged"],
        "",
    )
    assert cluster.writes == [("create", "validating"), ("create", "mutating")]


def test_register_replaces_a_different_ca_bundle(
    cluster: FakeAdmissionApi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A caBundle that differs (not only a missing one) is replaced; others' annotations stay."""
    for name in ("old", "new"):
        main(["certs", "--out", str(tmp_path / name)])
    register(capsys, "--ca-bundle", str(tmp_path / "old" / "ca.crt"))
    cluster.stored["validating"]["metadata"]["annotations"] = {"team": "platform"}

    status, lines, _ = register(capsys, "--ca-bundle", str(tmp_path / "new" / "ca.crt"))

    assert (status, lines) == (0, [f"{VALIDATING_LINE} updated", f"{MUTATING_LINE} updated"])
    new_ca = (tmp_path / "new" / "ca.crt").read_bytes()
    for config in cluster.stored.values():
        for hook in config["webhooks"]:
            assert base64.b64decode(hook["clientConfig"]["caBundle"]) == new_ca
    assert cluster.stored["validating"]["metadata"]["annotations"] == {"team": "platform"}
    assert register(capsys, "--ca-bundle", str(tmp_path / "new" / "ca.crt"))[1] == [
        f"{VALIDATING_LINE} unchanged",
        f"{MUTATING_LINE} unchanged",
    ]


def test_register_keeps_an_injected_ca_bundle(
    cluster: FakeAdmissionApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --ca-bundle, cert-manager's injected bundle is no difference and survives updates."""
    register(capsys)
    for config in cluster.stored.values():
        for hook in config["webhooks"]:
            hook["clientConfig"]["caBundle"] = "aW5qZWN0ZWQ="
    assert register(capsys)[1] == [f"{VALIDATING_LINE} unchanged", f"{MUTATING_LINE} unchanged"]

    cluster.stored["validating"]["webhooks"][0]["failurePolicy"] = "Ignore"  # drifted by hand
    assert register(capsys)[1] == [f"{VALIDATING_LINE} updated", f"{MUTATING_LINE} unchanged"]
    hooks = cluster.stored["validating"]["webhooks"]
    assert hooks[0]["failurePolicy"] == "Fail"
    assert {hook["clientConfig"]["caBundle"] for hook in hooks} == {"aW5qZWN0ZWQ="}


def test_register_removes_a_webhook_the_builder_no_longer_makes(
    cluster: FakeAdmissionApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stale extra entry is a difference: the configuration is replaced without it."""
    register(capsys)
    stale = {**cluster.stored["validating"]["webhooks"][0], "name": "old.validate.bulwark.dev"}
    cluster.stored["validating"]["webhooks"].append(stale)
    assert register(capsys)[1][0] == f"{VALIDATING_LINE} updated"
    assert len(cluster.stored["validating"]["webhooks"]) == len(validating()["webhooks"])


def test_register_exits_1_when_the_api_server_refuses(
    cluster: FakeAdmissionApi, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refusal stops at the first configuration, printing status, reason and message."""
    cluster.refusal = (403, "Forbidden")
    status, lines, error = register(capsys)
    assert (status, lines) == (1, [])
    assert "403 Forbidden" in error
    assert "admission denied by a test" in error
    assert "ValidatingWebhookConfiguration bulwark" in error


def test_register_exits_1_when_the_api_server_is_unreachable(
    cluster: FakeAdmissionApi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A connection failure (as urllib3 reports it after its retries) exits 1, no traceback."""
    import urllib3

    def unreachable(name: str) -> Config:
        raise urllib3.exceptions.MaxRetryError(None, "/apis", "connection refused")  # type: ignore[arg-type]

    monkeypatch.setattr(cluster, "read_validating_webhook_configuration", unreachable)
    status, _, error = register(capsys)
    assert status == 1
    assert "cannot reach the API server" in error
