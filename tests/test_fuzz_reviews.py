"""Random and mutilated AdmissionReviews against a live server: answers stay well-formed."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live import LiveServer, live_server
from tests.reviews import pod, review

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
SEED_REVIEWS = [
    review(pod(privileged=True)),
    review(pod(), operation="UPDATE", old=pod(privileged=True)),
    review(pod(), api_version="admission.k8s.io/v1beta1"),
    review(None, operation="DELETE", old=pod()),
    review(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"hostNetwork": True, "containers": []}}},
        },
        kind="Deployment",
    ),
]


@st.composite
def mutilated_reviews(draw: st.DrawFn) -> Any:
    """A valid review with some node replaced, dropped or retyped."""
    body = copy.deepcopy(draw(st.sampled_from(SEED_REVIEWS)))
    for _ in range(draw(st.integers(1, 4))):
        node: Any = body
        path = []
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            path.append((node, key))
            node = node[key]
        if not path:
            continue
        parent, key = path[-1]
        action = draw(st.sampled_from(["replace", "delete"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = draw(JSON)
    return body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("fuzz")) as live:
        yield live


def _assert_well_formed(reply: httpx.Response, sent: Any) -> None:
    assert reply.headers["content-type"] == "application/json"
    answer = reply.json()
    if reply.status_code == 200:
        assert answer["kind"] == "AdmissionReview"
        assert answer["apiVersion"] == sent["apiVersion"]
        assert answer["response"]["uid"] == sent["request"]["uid"]
        assert isinstance(answer["response"]["allowed"], bool)
    else:
        assert 400 <= reply.status_code < 500, reply.text
        assert isinstance(answer["error"], str)
        assert answer["error"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=mutilated_reviews() | JSON)
def test_every_answer_is_a_review_or_a_json_client_error(server: LiveServer, body: Any) -> None:
    """Whatever arrives, both webhooks answer a well-formed review or a 4xx JSON error."""
    with server.client() as http:
        for path in ("/validate", "/mutate"):
            reply = http.post(
                path, content=json.dumps(body), headers={"content-type": "application/json"}
            )
            _assert_well_formed(reply, body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=300))
def test_random_bytes_are_client_errors(server: LiveServer, raw: bytes) -> None:
    """Bytes that are not JSON are a 400, never a 500."""
    with server.client() as http:
        reply = http.post("/validate", content=raw, headers={"content-type": "application/json"})
        assert reply.status_code == 400


def test_the_server_is_healthy_after_the_fuzzing(server: LiveServer) -> None:
    """No input above wedged or killed the server."""
    with server.client() as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200
    assert server.process.poll() is None
    assert '"request_failed"' not in server.log()
