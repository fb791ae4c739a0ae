"""The pure engine: request rules that hold for every policy, and enforcement modes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.reviews import pod, review
from webhook.admission import mutate, validate
from webhook.config import Settings, settings_from_mapping
from webhook.review import AdmissionRequest, AdmissionReview, encode_response
from webhook.verdict import Object, PatchOperation, PolicyContext, Violation


def _request(body: dict[str, Any]) -> AdmissionRequest:
    return AdmissionReview.model_validate(body).request


class Exploding:
    """A policy with a bug in it."""

    name = "pod-security"

    def applies_to(self, request: AdmissionRequest) -> bool:
        return True

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        raise KeyError("spec")


class ExplodingMutation:
    name = "pod-defaults"

    def applies_to(self, request: AdmissionRequest) -> bool:
        return True

    def patch(self, obj: Object, context: PolicyContext) -> list[PatchOperation]:
        raise TypeError("not a list")


class Recording:
    """A policy that records the identity the engine gave it and reports one violation."""

    name = "ingress-tls"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def applies_to(self, request: AdmissionRequest) -> bool:
        return True

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        self.seen.append((context.namespace, context.name))
        return []


@pytest.mark.parametrize(
    ("operation", "sub_resource"),
    [
        pytest.param("DELETE", "", id="delete"),
        pytest.param("CONNECT", "", id="connect"),
        pytest.param("UPDATE", "status", id="status-write"),
        pytest.param("UPDATE", "scale", id="scale-write"),
    ],
)
def test_writes_that_never_widen_privileges_are_admitted(operation: str, sub_resource: str) -> None:
    """DELETE, CONNECT and status/scale writes pass even for a privileged pod."""
    body = review(pod(privileged=True), operation=operation, sub_resource=sub_resource,
                  old=pod(privileged=True))  # fmt: skip
    verdict = validate(_request(body), Settings())
    assert verdict.allowed
    assert verdict.reason
    assert mutate(_request(body), Settings()).patch == []


def test_exempt_namespaces_are_skipped_by_policies_and_mutation() -> None:
    """An exempt namespace is neither judged nor mutated."""
    settings = settings_from_mapping({"exemptNamespaces": ["team-a"]})
    request = _request(review(pod(privileged=True)))
    assert validate(request, settings).allowed
    assert validate(request, settings).reason == "namespace team-a is exempt"
    assert mutate(request, settings).patch == []


def test_namespace_and_name_come_from_the_request_when_the_object_lacks_them() -> None:
    """A generateName pod has no name yet; its namespace is in the request path."""
    obj = pod()
    obj["metadata"] = {"generateName": "web-"}
    body = review(obj, namespace="team-b")
    body["request"]["name"] = ""
    recorder = Recording()
    validate(_request(body), Settings(), policies=[recorder])
    assert recorder.seen == [("team-b", "web-")]


def test_a_policy_that_raises_denies_naming_the_policy() -> None:
    """A bug in a policy fails closed, and the reply says which policy failed."""
    request = _request(review(pod()))
    verdict = validate(request, Settings(), policies=[Exploding()])
    assert not verdict.allowed
    assert "pod-security" in verdict.reason
    assert verdict.failed_policies[0][0] == "pod-security"
    reply = encode_response(
        AdmissionReview.model_validate(review(pod())), verdict, with_patch=False
    )
    assert "policy pod-security could not judge" in reply["response"]["status"]["message"]


def test_a_policy_that_raises_under_warn_enforcement_admits_with_a_warning() -> None:
    """Enforcement warn keeps a broken policy from blocking anything."""
    settings = settings_from_mapping({"enforcement": {"pod-security": "warn"}})
    verdict = validate(_request(review(pod())), settings, policies=[Exploding()])
    assert verdict.allowed
    assert "could not judge" in verdict.warnings[0]


def test_a_mutation_that_raises_denies_naming_the_mutation() -> None:
    """A bug in a mutation answers a well-formed denial rather than a broken reply."""
    verdict = mutate(_request(review(pod())), Settings(), mutations=[ExplodingMutation()])
    assert not verdict.allowed
    assert "pod-defaults" in verdict.reason


@pytest.mark.parametrize(
    ("mode", "allowed", "warned", "audited"),
    [
        pytest.param("deny", False, 0, 0, id="deny"),
        pytest.param("warn", True, 1, 0, id="warn"),
        pytest.param("audit", True, 0, 1, id="audit"),
    ],
)
def test_enforcement_modes_route_violations(
    mode: str, allowed: bool, warned: int, audited: int
) -> None:
    """deny refuses, warn admits with a warning, audit admits with an audit annotation."""
    settings = settings_from_mapping({"enforcement": {"pod-security": mode}})
    body = review(pod(privileged=True))
    verdict = validate(_request(body), settings)
    assert verdict.allowed is allowed
    assert len(verdict.warnings) == warned
    reply = encode_response(AdmissionReview.model_validate(body), verdict, with_patch=False)
    response = reply["response"]
    if warned:
        assert response["warnings"][0].startswith("[pod-security/privileged]")
    if audited:
        assert list(response["auditAnnotations"]) == ["pod-security.privileged"]
    else:
        assert "auditAnnotations" not in response


def test_an_update_adding_a_new_violation_is_denied_even_if_others_existed() -> None:
    """Grandfathering covers only the violations the old object had."""
    old = pod(privileged=True)
    new = pod(privileged=True)
    new["spec"]["containers"].append(
        {"name": "debug", "image": "busybox", "securityContext": {"privileged": True}}
    )
    verdict = validate(_request(review(new, operation="UPDATE", old=old)), Settings())
    assert not verdict.allowed
    assert [v.subject for v in verdict.violations] == ['container "debug"']


@pytest.mark.parametrize(
    ("old_spec", "new_spec"),
    [
        pytest.param(
            {"containers": [{"name": "a", "image": "x",
                             "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]},
            {"containers": [{"name": "a", "image": "x", "securityContext": {
                "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}}}]},
            id="one-more-capability",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x"}],
             "volumes": [{"name": "logs", "hostPath": {"path": "/var/log/app"}}]},
            {"containers": [{"name": "a", "image": "x"}],
             "volumes": [{"name": "logs", "hostPath": {"path": "/"}}]},
            id="host-path-widened-to-root",
        ),
        pytest.param(
            {"containers": [{"name": "a", "image": "x", "ports": [
                {"containerPort": 80, "hostPort": 8080}]}]},
            {"containers": [{"name": "a", "image": "x", "ports": [
                {"containerPort": 80, "hostPort": 8080}, {"containerPort": 22, "hostPort": 22}]}]},
            id="another-host-port",
        ),
    ],
)  # fmt: skip
def test_an_update_that_widens_an_existing_violation_is_denied(
    old_spec: dict[str, Any], new_spec: dict[str, Any]
) -> None:
    """Grandfathering compares the offending values, not only the check and container."""
    old = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": old_spec}
    new = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": new_spec}
    assert not validate(_request(review(new, operation="UPDATE", old=old)), Settings()).allowed
    assert validate(_request(review(old, operation="UPDATE", old=old)), Settings()).allowed


def test_the_request_namespace_wins_over_the_objects() -> None:
    """A hand-made review cannot pick an allowlisted level through metadata.namespace."""
    obj = pod(privileged=True)
    obj["metadata"]["namespace"] = "kube-system"
    assert not validate(_request(review(obj, namespace="team-a")), Settings()).allowed


def test_a_denial_lists_at_most_twenty_violations_and_counts_the_rest() -> None:
    """A pod with a hundred privileged containers gets a bounded message."""
    obj = pod()
    obj["spec"]["containers"] = [
        {"name": f"c{i}", "image": "x", "securityContext": {"privileged": True}} for i in range(100)
    ]
    body = review(obj)
    verdict = validate(_request(body), Settings())
    message = encode_response(AdmissionReview.model_validate(body), verdict, with_patch=False)[
        "response"
    ]["status"]["message"]
    assert message.count("[pod-security/privileged]") == 20
    assert message.endswith("and 80 more violations")
