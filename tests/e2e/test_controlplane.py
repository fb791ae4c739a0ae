"""Smoke test of the e2e harness itself: the API server stores and admits objects."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.e2e


def test_version_and_readyz(control_plane: Any, api_client: Any) -> None:
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == control_plane.binaries.k8s_version
    status, body = control_plane.get("/readyz")
    assert (status, body) == (200, b"ok")


def test_pod_round_trip_in_new_namespace(control_plane: Any, api_client: Any) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="smoke")))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "smoke", "labels": {"app": "smoke"}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]},
    }
    created = core.create_namespaced_pod("smoke", pod)
    assert created.metadata.uid

    read = core.read_namespaced_pod("smoke", "smoke")
    assert read.metadata.uid == created.metadata.uid
    assert read.spec.containers[0].image == "registry.example/app:1"
    assert read.status.phase == "Pending"  # stored only: no scheduler, no kubelet


def test_namespace_lifecycle_requires_the_namespace(api_client: Any) -> None:
    core = client.CoreV1Api(api_client)
    pod = {"metadata": {"name": "orphan"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("no-such-namespace", pod)
    assert err.value.status == 404


def test_privileged_pods_are_admitted_by_the_server_itself(
    control_plane: Any, api_client: Any
) -> None:
    # --allow-privileged=true: denying them is the webhook's job, not the server's
    control_plane.ensure_namespace("smoke-privileged")
    pod = {
        "metadata": {"name": "priv"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }
    created = client.CoreV1Api(api_client).create_namespaced_pod(
        "smoke-privileged", pod, dry_run="All"
    )
    assert created.spec.containers[0].security_context.privileged is True


def test_server_side_dry_run_deployment(api_client: Any) -> None:
    apps = client.AppsV1Api(api_client)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    answer = apps.create_namespaced_deployment("default", deployment, dry_run="All")
    assert answer.metadata.name == "web"
    assert answer.spec.strategy.type == "RollingUpdate"  # defaulted by the server
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("web", "default")
    assert err.value.status == 404  # dry run stored nothing
