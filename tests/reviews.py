"""AdmissionReview bodies for tests, built the way the API server builds them."""

from __future__ import annotations

import uuid
from typing import Any

GROUPS = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings"),
}


def review(
    obj: dict[str, Any] | None,
    *,
    kind: str = "Pod",
    operation: str = "CREATE",
    namespace: str = "team-a",
    old: dict[str, Any] | None = None,
    sub_resource: str = "",
    api_version: str = "admission.k8s.io/v1",
    uid: str | None = None,
) -> dict[str, Any]:
    group, version, resource = GROUPS[kind]
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "namespace": namespace,
        "operation": operation,
        "userInfo": {"username": "dev-1", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
    }
    if sub_resource:
        request["subResource"] = sub_resource
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


def pod(name: str = "web", *, privileged: bool = False, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.example/app:1"}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }
