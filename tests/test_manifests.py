"""The kustomize base and overlays in manifests/: they build, agree with the code, and pass
Bulwark's own restricted policy.

Building needs kustomize: `.cache/bin/kustomize` (made by scripts/install-kustomize.sh),
a `kustomize` on PATH, or `kubectl kustomize`. Without any of them the build tests skip.
"""

from __future__ import annotations

import base64
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from webhook.certs import service_hosts
from webhook.config import load_settings
from webhook.registration import build_configurations

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"
OVERLAYS = ("cert-manager", "self-signed")
INJECT = "cert-manager.io/inject-ca-from"
Obj = dict[str, Any]


def kustomize_command() -> list[str] | None:
    """How to run `kustomize build`, preferring the pinned binary of install-kustomize.sh."""
    pinned = REPO / ".cache" / "bin" / "kustomize"
    if pinned.is_file():
        return [str(pinned), "build"]
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    return None


def bulwark(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("bulwark")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "webhook", *args]


class Builder:
    """Builds the base or an overlay from a copy of manifests/, caching each output."""

    def __init__(self, command: list[str], folder: Path) -> None:
        self.command, self.folder = command, folder
        self._built: dict[str, list[Obj]] = {}

    def __call__(self, overlay: str) -> list[Obj]:
        if overlay not in self._built:
            where = (
                self.folder / overlay if overlay == "base" else self.folder / "overlays" / overlay
            )
            result = subprocess.run(
                [*self.command, str(where)],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            assert result.returncode == 0, result.stderr
            self._built[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return self._built[overlay]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Builder:
    """A Builder over a copy of manifests/ whose self-signed overlay has `bulwark certs` files."""
    command = kustomize_command()
    if command is None:
        pytest.skip("no kustomize: run scripts/install-kustomize.sh (or put kubectl on PATH)")
    copy = tmp_path_factory.mktemp("manifests") / "manifests"
    shutil.copytree(MANIFESTS, copy, ignore=shutil.ignore_patterns("*.crt", "*.key"))
    certs = bulwark("certs", "--out", str(copy / "overlays" / "self-signed"))
    subprocess.run(certs, check=True, capture_output=True)
    return Builder(command, copy)


def the(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    """The one object of `kind` (and `name`) in `objects`."""
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def webhooks(objects: list[Obj]) -> list[Obj]:
    kinds = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
    return [o for o in objects if o["kind"] in kinds]


def test_committed_webhook_configurations_equal_the_builder_output() -> None:
    """base/webhooks.yaml is exactly what `bulwark manifests` prints; regenerate it if not."""
    committed = list(yaml.safe_load_all((MANIFESTS / "base" / "webhooks.yaml").read_text()))
    expected = build_configurations(
        ca_bundle=None, url=None, namespace="bulwark-system", service="bulwark"
    )
    assert committed == expected, "run: bulwark manifests > manifests/base/webhooks.yaml"


def test_policy_configmap_holds_the_contract_defaults() -> None:
    """The ConfigMap's config.yaml loads cleanly and equals the built-in defaults."""
    assert load_settings(MANIFESTS / "base" / "config.yaml") == load_settings(None)


@pytest.mark.parametrize("overlay", [pytest.param(name, id=name) for name in OVERLAYS])
def test_overlay_builds_every_piece_of_the_install(build: Builder, overlay: str) -> None:
    """Each overlay yields the namespace, identity, RBAC, workload, networking and webhooks."""
    kinds = {(o["kind"], o["metadata"]["name"]) for o in build(overlay)}
    assert {
        ("Namespace", "bulwark-system"),
        ("ServiceAccount", "bulwark"),
        ("ClusterRole", "bulwark-role-reader"),
        ("ClusterRoleBinding", "bulwark-role-reader"),
        ("Deployment", "bulwark"),
        ("Service", "bulwark"),
        ("PodDisruptionBudget", "bulwark"),
        ("NetworkPolicy", "bulwark"),
        ("ValidatingWebhookConfiguration", "bulwark"),
        ("MutatingWebhookConfiguration", "bulwark"),
    } <= kinds
    assert any(kind == "ConfigMap" and name.startswith("bulwark-config-") for kind, name in kinds)


@pytest.mark.parametrize("overlay", [pytest.param(name, id=name) for name in OVERLAYS])
def test_bulwark_own_manifests_pass_its_restricted_policy(
    build: Builder, overlay: str, tmp_path: Path
) -> None:
    """`bulwark evaluate` at level restricted admits everything each overlay installs."""
    if importlib.util.find_spec("webhook.evaluate") is None:
        pytest.skip("webhook.evaluate is not there yet")
    config = tmp_path / "restricted.yaml"
    config.write_text("podSecurity:\n  defaultLevel: restricted\n")
    result = subprocess.run(
        bulwark("evaluate", "--config", str(config), "-"),
        input=yaml.safe_dump_all(build(overlay)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", [pytest.param(name, id=name) for name in OVERLAYS])
def test_built_in_kinds_match_the_kubernetes_schema(build: Builder, overlay: str) -> None:
    """Every built-in object validates strictly against the v1.37 schema (CRDs aside)."""
    for obj in build(overlay):
        if obj["apiVersion"].startswith("cert-manager.io/"):
            continue
        kubernetes_validate.validate(obj, "1.37.0", strict=True)


def test_self_signed_overlay_puts_ca_crt_into_every_ca_bundle(
    build: Builder,
) -> None:
    """The generated Secret feeds each webhook's caBundle with the ca.crt of `bulwark certs`."""
    objects = build("self-signed")
    ca = (build.folder / "overlays" / "self-signed" / "ca.crt").read_bytes()
    hooks = [hook for config in webhooks(objects) for hook in config["webhooks"]]
    assert len(hooks) == 5
    for hook in hooks:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca


def test_self_signed_overlay_secret_holds_the_pair_but_never_the_ca_key(
    build: Builder,
) -> None:
    """bulwark-tls is a TLS Secret with tls.crt, tls.key and ca.crt; ca.key stays on disk."""
    secret = the(build("self-signed"), "Secret", "bulwark-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["namespace"] == "bulwark-system"
    assert sorted(secret["data"]) == ["ca.crt", "tls.crt", "tls.key"]


def test_cert_manager_overlay_asks_for_ca_injection_into_both_configurations(
    build: Builder,
) -> None:
    """Both configurations name the serving Certificate for injection and carry no bundle."""
    objects = build("cert-manager")
    the(objects, "Certificate", "bulwark-serving")
    for config in webhooks(objects):
        assert config["metadata"]["annotations"] == {INJECT: "bulwark-system/bulwark-serving"}
        for hook in config["webhooks"]:
            assert "caBundle" not in hook["clientConfig"]


def test_cert_manager_certificate_covers_the_service_names(
    build: Builder,
) -> None:
    """The serving Certificate has the service's DNS names and fills the mounted Secret."""
    objects = build("cert-manager")
    spec = the(objects, "Certificate", "bulwark-serving")["spec"]
    loopback = ("localhost", "127.0.0.1")
    expected = [h for h in service_hosts("bulwark", "bulwark-system") if h not in loopback]
    assert spec["dnsNames"] == expected
    assert "server auth" in spec["usages"]
    volumes = the(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "certs",
        "secret": {"secretName": spec["secretName"], "defaultMode": 0o440},
    } in (volumes)


@pytest.mark.parametrize("overlay", [pytest.param(name, id=name) for name in OVERLAYS])
def test_webhooks_call_the_service_that_selects_the_pods(build: Builder, overlay: str) -> None:
    """clientConfig names the Service, whose port 443 reaches the container's 8443."""
    objects = build(overlay)
    service = the(objects, "Service", "bulwark")
    for config in webhooks(objects):
        for hook in config["webhooks"]:
            ref = hook["clientConfig"]["service"]
            assert (ref["namespace"], ref["name"], ref["port"]) == (
                service["metadata"]["namespace"],
                service["metadata"]["name"],
                service["spec"]["ports"][0]["port"],
            )
    pod = the(objects, "Deployment")["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    [port] = pod["spec"]["containers"][0]["ports"]
    assert (port["name"], port["containerPort"]) == (
        service["spec"]["ports"][0]["targetPort"],
        8443,
    )


def test_deployment_runs_two_restricted_replicas_apart(build: Builder) -> None:
    """Two replicas, spread by hostname, non-root, read-only, with HTTPS probes and args."""
    deployment = the(build("self-signed"), "Deployment", "bulwark")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["affinity"]["podAntiAffinity"]
    assert pod["securityContext"]["runAsUser"] == 65532
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["args"] == [
        "--config", "/etc/bulwark/config.yaml", "--cert-dir", "/etc/bulwark/certs",
    ]  # fmt: skip
    probes = {
        name: (probe["httpGet"]["path"], probe["httpGet"]["scheme"], probe["httpGet"]["port"])
        for name, probe in container.items()
        if name.endswith("Probe")
    }
    assert probes == {
        "livenessProbe": ("/healthz", "HTTPS", "https"),
        "readinessProbe": ("/readyz", "HTTPS", "https"),
    }
    assert all(mount["readOnly"] for mount in container["volumeMounts"])


def test_namespace_enforces_restricted_pod_security(build: Builder) -> None:
    """The built-in Pod Security admission guards the namespace the webhooks leave out."""
    labels = the(build("cert-manager"), "Namespace", "bulwark-system")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_role_cache_may_only_read_roles(build: Builder) -> None:
    """The ClusterRole reads Roles and ClusterRoles and nothing else; it is bound to the SA."""
    objects = build("cert-manager")
    assert the(objects, "ClusterRole", "bulwark-role-reader")["rules"] == [
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["roles", "clusterroles"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    binding = the(objects, "ClusterRoleBinding", "bulwark-role-reader")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "bulwark", "namespace": "bulwark-system"}
    ]
    assert the(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == (
        "bulwark"
    )


def test_network_policy_opens_only_the_webhook_port(build: Builder) -> None:
    """Ingress is allowed to TCP 8443 from any source, and to nothing else."""
    spec = the(build("cert-manager"), "NetworkPolicy", "bulwark")["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8443}]}]


def test_disruption_budget_keeps_one_replica(build: Builder) -> None:
    """A drain may take one pod at a time, and never waits on a pod that is not ready."""
    spec = the(build("cert-manager"), "PodDisruptionBudget", "bulwark")["spec"]
    assert spec["minAvailable"] == 1
    assert spec["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
