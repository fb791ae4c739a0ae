"""End to end: a real kube-apiserver calls a real `bulwark serve`, as in a cluster.

The scenarios run in file order against one registration: the last two stop and rotate
the webhook, so they come after everything that needs it up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.live import free_port

pytestmark = pytest.mark.e2e

CONFIG = """
podSecurity:
  defaultLevel: baseline
  namespaces: {kube-system: privileged, media: privileged}
"""
BULWARK = [sys.executable, "-m", "webhook"]


class Webhook:
    """`bulwark serve` on loopback with a certificate for 127.0.0.1, registered in the cluster."""

    def __init__(self, workdir: Path, kubeconfig: Path) -> None:
        self.workdir = workdir
        self.kubeconfig = kubeconfig
        self.cert_dir = workdir / "certs"
        self.config = workdir / "config.yaml"
        self.config.write_text(CONFIG)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "bulwark.log"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def make_certificates(self, *, force: bool = False) -> None:
        command = [*BULWARK, "certs", "--out", str(self.cert_dir), "--host", "127.0.0.1"]
        subprocess.run([*command, *(["--force"] if force else [])], check=True, timeout=60)

    def start(self) -> None:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [*BULWARK, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--cert-dir", str(self.cert_dir), "--config", str(self.config),
             "--kubeconfig", str(self.kubeconfig), "--cert-poll-seconds", "0.5"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bulwark serve exited:\n{self.log_path.read_text()}")
            context = ssl.create_default_context(cafile=str(self.cert_dir / "ca.crt"))
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/readyz", context=context, timeout=2),
            ):
                return
            time.sleep(0.3)
        raise RuntimeError(f"bulwark serve never became ready:\n{self.log_path.read_text()}")

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(30)

    def register(self) -> str:
        result = subprocess.run(
            [*BULWARK, "register", "--kubeconfig", str(self.kubeconfig),
             "--ca-bundle", str(self.cert_dir / "ca.crt"), "--url", self.url],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def webhook(control_plane: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    for namespace in ("team-a", "media", "bulwark-system"):
        control_plane.ensure_namespace(namespace)
    hook = Webhook(tmp_path_factory.mktemp("bulwark"), control_plane.kubeconfig)
    hook.make_certificates()
    hook.start()
    print(hook.register())
    yield hook
    hook.stop()
    _unregister(control_plane)


def _unregister(control_plane: Any) -> None:
    with control_plane.api_client() as api:
        registration = client.AdmissionregistrationV1Api(api)
        for delete in (
            registration.delete_validating_webhook_configuration,
            registration.delete_mutating_webhook_configuration,
        ):
            try:
                delete("bulwark")
            except ApiException as error:
                if error.status != 404:
                    raise


@pytest.fixture(scope="module")
def core(api_client: Any, webhook: Webhook) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def _pod(name: str, *, privileged: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1"}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container]}}  # fmt: skip


def _denial(call: Callable[[], Any]) -> str:
    """Run an API call that must be refused by admission; the API server's message."""
    with pytest.raises(ApiException) as raised:
        call()
    message: str = json.loads(raised.value.body)["message"]
    return message


def _ignore_conflict(call: Callable[[], Any]) -> None:
    try:
        call()
    except ApiException as error:
        if error.status != 409:
            raise


def test_a_privileged_pod_in_team_a_is_refused_with_bulwarks_message(
    core: client.CoreV1Api,
) -> None:
    """The API server relays Bulwark's denial, field path and fix included."""
    message = _denial(lambda: core.create_namespaced_pod("team-a", _pod("priv", privileged=True)))
    assert "denied the request" in message
    assert "[pod-security/privileged]" in message
    assert "spec.containers[0].securityContext.privileged" in message


def test_the_same_pod_in_an_allowlisted_namespace_is_created(core: client.CoreV1Api) -> None:
    """Namespaces at level privileged run privileged pods."""
    created = core.create_namespaced_pod("media", _pod("media-server", privileged=True))
    assert created.spec.containers[0].security_context.privileged is True


def test_a_created_pod_is_stored_with_fs_group_and_default_resources(
    core: client.CoreV1Api,
) -> None:
    """The mutating webhook's patch is applied by the API server and stored."""
    core.create_namespaced_pod("team-a", _pod("plain"))
    stored = core.read_namespaced_pod("plain", "team-a")
    assert stored.spec.security_context.fs_group == 1000
    resources = stored.spec.containers[0].resources
    assert resources.requests == {"cpu": "100m", "memory": "128Mi"}
    assert resources.limits == {"cpu": "500m", "memory": "512Mi"}


def _host_network_deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"hostNetwork": True, "containers": [{"name": "p", "image": "proxy:3"}]},
        }},
    }  # fmt: skip


def _plain_ingress(name: str) -> dict[str, Any]:
    backend = {"service": {"name": "app", "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
        "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": backend}]}}]},
    }  # fmt: skip


def _admin_binding(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "team-a"}],
    }  # fmt: skip


@pytest.mark.parametrize("dry_run", [None, "All"], ids=["stored", "server-side-dry-run"])
def test_host_network_plain_ingress_and_cluster_admin_binding_are_refused(
    api_client: Any, webhook: Webhook, dry_run: str | None
) -> None:
    """A Deployment on the host network, an Ingress without TLS and a cluster-admin binding."""
    apps, networking = client.AppsV1Api(api_client), client.NetworkingV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    kwargs = {"dry_run": dry_run} if dry_run else {}
    message = _denial(lambda: apps.create_namespaced_deployment(
        "team-a", _host_network_deployment("edge"), **kwargs))  # fmt: skip
    assert "[pod-security/hostNamespaces]" in message
    assert "spec.template.spec.hostNetwork" in message
    message = _denial(lambda: networking.create_namespaced_ingress(
        "team-a", _plain_ingress("plain"), **kwargs))  # fmt: skip
    assert "[ingress-tls/missingTLS]" in message
    message = _denial(lambda: rbac.create_cluster_role_binding(
        _admin_binding("ci-admin"), **kwargs))  # fmt: skip
    assert "[rbac-binding/forbiddenRole]" in message


def test_server_side_dry_run_of_an_allowed_pod_returns_the_mutated_object(
    core: client.CoreV1Api,
) -> None:
    """dryRun=All admits and mutates exactly as a real create, storing nothing."""
    answer = core.create_namespaced_pod("team-a", _pod("dry"), dry_run="All")
    assert answer.spec.security_context.fs_group == 1000
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("dry", "team-a")
    assert missing.value.status == 404
    _denial(lambda: core.create_namespaced_pod("team-a", _pod("p2", privileged=True),
                                               dry_run="All"))  # fmt: skip


def test_a_binding_to_a_role_granting_escalate_is_refused_once_the_cache_sees_it(
    api_client: Any, webhook: Webhook
) -> None:
    """The role cache learns of a new Role through its watch, with no API call per review."""
    rbac = client.RbacAuthorizationV1Api(api_client)
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "escalator"},
            "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                       "verbs": ["escalate", "get"]}]}  # fmt: skip
    rbac.create_namespaced_role("team-a", role)
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "escalator-binding"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "escalator"},
               "subjects": [{"kind": "User", "name": "dev-1",
                             "apiGroup": "rbac.authorization.k8s.io"}]}  # fmt: skip
    deadline = time.monotonic() + 15
    refused = ""
    while not refused:  # the watch event may land a moment after the create returns
        try:
            rbac.create_namespaced_role_binding("team-a", binding, dry_run="All")
        except ApiException as error:
            refused = json.loads(error.body)["message"]
        assert time.monotonic() < deadline, "the role cache never saw the new Role"
        time.sleep(0.2)
    assert "[rbac-binding/escalationVerbs]" in refused
    message = _denial(lambda: rbac.create_namespaced_role_binding("team-a", binding))
    assert "escalate" in message


def test_a_privileged_ephemeral_debug_container_is_refused(core: client.CoreV1Api) -> None:
    """`kubectl debug --profile=sysadmin` cannot slip a privileged container in."""
    _ignore_conflict(lambda: core.create_namespaced_pod("team-a", _pod("debug-target")))
    pod = core.read_namespaced_pod("debug-target", "team-a")
    pod.spec.ephemeral_containers = [
        client.V1EphemeralContainer(
            name="debugger", image="busybox",
            security_context=client.V1SecurityContext(privileged=True),
        )
    ]  # fmt: skip
    message = _denial(
        lambda: core.replace_namespaced_pod_ephemeralcontainers("debug-target", "team-a", pod)
    )
    assert "ephemeralContainers[0]" in message


def _handed_manifest_cases(shared: Path) -> list[dict[str, Any]]:
    cases = yaml.safe_load((shared / "cases" / "handed.yaml").read_text())
    return [case for case in cases if "input" in case and "exit" not in case]


def test_every_handed_manifest_case_gets_the_same_verdict_as_evaluate(
    api_client: Any, control_plane: Any, webhook: Webhook, shared_dir: Path, tmp_path: Path
) -> None:
    """What `bulwark evaluate` predicts is what the API server does, case by case."""
    from kubernetes.dynamic import DynamicClient

    dynamic = DynamicClient(api_client)
    compared = 0
    for case in _handed_manifest_cases(shared_dir):
        namespace = case.get("namespace", "default")
        control_plane.ensure_namespace(namespace)
        manifest = tmp_path / f"{case['id']}.yaml"
        manifest.write_text(case["input"])
        evaluated = subprocess.run(
            [*BULWARK, "evaluate", "--output", "json", "--namespace", namespace,
             "--config", str(webhook.config), str(manifest)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert evaluated.returncode in (0, 1), evaluated.stderr
        results = json.loads(evaluated.stdout)["results"]
        documents = [d for d in yaml.safe_load_all(case["input"]) if d]
        created = []
        for document, result in zip(documents, results, strict=True):
            api = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
            where = {"namespace": namespace} if api.namespaced else {}
            try:
                created.append((api, api.create(body=document, **where), where))
                admitted = True
            except ApiException as error:
                message = json.loads(error.body)["message"]
                assert "denied the request" in message, (case["id"], message)
                admitted = False
                for violation in result["violations"]:
                    assert f"[{violation['policy']}/{violation['check']}]" in message
            assert admitted is result["allowed"], (case["id"], result)
            compared += 1
        for api, obj, where in reversed(created):
            api.delete(name=obj.metadata.name, **where)
    print(f"compared {compared} objects from the handed cases")
    assert compared >= 18


def test_a_rotated_certificate_with_reregistration_keeps_admission_working(
    core: client.CoreV1Api, webhook: Webhook
) -> None:
    """New CA and serving pair on disk, re-registered: no API server restart needed."""
    old_ca = (webhook.cert_dir / "ca.crt").read_bytes()
    webhook.make_certificates(force=True)
    assert (webhook.cert_dir / "ca.crt").read_bytes() != old_ca
    output = webhook.register()
    assert "updated" in output
    deadline = time.monotonic() + 30
    while True:  # the server reloads within its poll interval; the API server re-reads the CA
        message = _denial(lambda: core.create_namespaced_pod("team-a", _pod("r", privileged=True)))
        if "[pod-security/privileged]" in message:
            break
        assert time.monotonic() < deadline, "admission did not recover after rotation"
        time.sleep(0.5)
    core.create_namespaced_pod("team-a", _pod("after-rotation"))
    assert "certificate_loaded" in webhook.log_path.read_text().split("self_signed")[-1]


def test_with_bulwark_stopped_team_pods_fail_closed_but_templates_and_kube_system_pass(
    api_client: Any, core: client.CoreV1Api, webhook: Webhook
) -> None:
    """Pods fail closed; workload templates fail open; kube-system is never sent to Bulwark."""
    assert webhook.stop() == 0
    message = _denial(lambda: core.create_namespaced_pod("team-a", _pod("while-down")))
    assert "failed calling webhook" in message
    apps = client.AppsV1Api(api_client)
    deployment = _host_network_deployment("while-down")
    deployment["spec"]["template"]["spec"]["hostNetwork"] = False
    apps.create_namespaced_deployment("team-a", deployment)
    core.create_namespaced_pod("kube-system", _pod("system-pod", privileged=True))
