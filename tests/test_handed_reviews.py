"""Handed cases C19-C22: AdmissionReviews that public webhooks once mishandled."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.live import LiveServer, live_server
from tests.reviews import pod, review


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server: LiveServer
    with live_server(tmp_path_factory.mktemp("handed")) as server, server.client() as client:
        yield client


def _binding() -> dict[str, object]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "old-binding"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "system:authenticated"}],
    }  # fmt: skip


def test_c19_delete_with_a_null_object_is_admitted_with_the_uid_echoed(http: httpx.Client) -> None:
    """Deleting a binding that broke every rule is still allowed."""
    body = review(None, kind="ClusterRoleBinding", operation="DELETE", namespace="",
                  old=_binding(), uid="c19")  # fmt: skip
    for path in ("/validate", "/mutate"):
        answer = http.post(path, json=body).json()
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["response"] == {"uid": "c19", "allowed": True}


def test_c20_a_v1beta1_review_is_answered_in_v1beta1(http: httpx.Client) -> None:
    """Old API servers get their own version back, patch included."""
    body = review(pod("old-client"), api_version="admission.k8s.io/v1beta1", uid="c20")
    validated = http.post("/validate", json=body).json()
    assert validated["apiVersion"] == "admission.k8s.io/v1beta1"
    assert validated["response"] == {"uid": "c20", "allowed": True}
    mutated = http.post("/mutate", json=body).json()
    assert mutated["apiVersion"] == "admission.k8s.io/v1beta1"
    assert mutated["response"]["uid"] == "c20"
    assert mutated["response"]["allowed"] is True
    if "patch" in mutated["response"]:
        assert isinstance(json.loads(base64.b64decode(mutated["response"]["patch"])), list)


def test_c21_a_kubelet_status_write_on_an_old_privileged_pod_is_never_blocked(
    http: httpx.Client,
) -> None:
    """Status writes pass both webhooks untouched."""
    new, old = pod("legacy", privileged=True), pod("legacy", privileged=True)
    new["status"], old["status"] = {"phase": "Running"}, {"phase": "Pending"}
    body = review(new, operation="UPDATE", old=old, sub_resource="status", uid="c21")
    body["request"]["userInfo"] = {"username": "system:node:node-1"}
    assert http.post("/validate", json=body).json()["response"] == {"uid": "c21", "allowed": True}
    assert http.post("/mutate", json=body).json()["response"] == {"uid": "c21", "allowed": True}


def test_c22_a_truncated_body_is_a_400_not_a_crash(http: httpx.Client) -> None:
    """Half a review is a client error on both webhooks; the server keeps serving."""
    body = b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": '
    for path in ("/validate", "/mutate"):
        reply = http.post(path, content=body, headers={"content-type": "application/json"})
        assert reply.status_code == 400
        assert "error" in reply.json()
    assert http.get("/healthz").status_code == 200
