"""The two roads of `decode_review` give the same review.

The pydantic models are the contract. `plain_review` is the fast road for reviews whose
fields already have their final types; whenever it takes a review, the models must take
it too, with the same values, and the recorded reviews must all take the fast road.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.reviews import pod, review
from webhook.errors import BadReview
from webhook.review import AdmissionReview, PlainReview, Review, decode_review, plain_review

RECORDED = sorted((Path(__file__).parent.parent / "bench" / "reviews").glob("*.json"))


def values(decoded: Review) -> tuple[Any, ...]:
    """Every value the engine can read of a review."""
    request = decoded.request
    kind, resource, user = request.kind, request.resource, request.user_info
    return (
        decoded.api_version,
        request.uid,
        (kind.group, kind.version, kind.kind),
        (resource.group, resource.version, resource.resource),
        request.sub_resource,
        request.name,
        request.namespace,
        request.operation,
        (user.username, getattr(user, "uid", None), user.groups),
        request.object,
        request.old_object,
        request.dry_run,
    )


def by_the_models(data: Any) -> AdmissionReview | None:
    try:
        return AdmissionReview.model_validate_json(orjson.dumps(data), by_name=False)
    except ValueError:
        return None


@pytest.mark.parametrize("path", RECORDED, ids=lambda path: path.stem)
def test_recorded_reviews_take_the_fast_road_to_the_models_values(path: Path) -> None:
    data = orjson.loads(path.read_bytes())
    fast = plain_review(data)
    assert fast is not None
    models = by_the_models(data)
    assert models is not None
    assert values(fast) == values(models)


def test_a_review_with_every_optional_field_left_out_gets_the_models_defaults() -> None:
    data = {
        "apiVersion": "admission.k8s.io/v1beta1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u",
            "kind": {"kind": "Pod"},
            "resource": {"resource": "pods"},
            "operation": "DELETE",
        },
    }
    fast, models = plain_review(data), by_the_models(data)
    assert isinstance(fast, PlainReview)
    assert models is not None
    assert values(fast) == values(models)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param({"dryRun": 1}, id="a-number-for-a-boolean"),
        pytest.param({"name": None}, id="null-for-a-string"),
        pytest.param({"userInfo": None}, id="null-user"),
        pytest.param({"userInfo": {"groups": ["a", 2]}}, id="a-group-that-is-a-number"),
        pytest.param({"uid": ""}, id="an-empty-uid"),
        pytest.param({"operation": "PATCH"}, id="an-unknown-operation"),
    ],
)
def test_a_review_the_fast_road_is_unsure_of_is_left_to_the_models(edit: dict[str, Any]) -> None:
    data = review(pod())
    data["request"].update(edit)
    assert plain_review(data) is None
    # and the answer is the models' own, whatever it is
    try:
        decoded: Review | None = decode_review(orjson.dumps(data))
    except BadReview:
        decoded = None
    models = by_the_models(data)
    assert (decoded is None) == (models is None)
    if decoded is not None and models is not None:
        assert values(decoded) == values(models)


@pytest.mark.parametrize("name", ["sub_resource", "old_object", "dry_run", "user_info"])
def test_the_models_python_names_are_unknown_fields_on_both_roads(name: str) -> None:
    """A hand-made `sub_resource: status` does not make a pod's CREATE a status write."""
    data = review(pod(privileged=True))
    data["request"][name] = {"sub_resource": "status", "old_object": pod(), "dry_run": True}.get(
        name, {"username": "system:admin"}
    )
    decoded = decode_review(orjson.dumps(data))
    assert isinstance(decoded, PlainReview)
    assert decoded.request.sub_resource == ""
    assert decoded.request.old_object is None
    assert decoded.request.dry_run is False
    assert decoded.request.user_info.username == data["request"]["userInfo"]["username"]
    data["request"]["dryRun"] = 1  # now the models decode it
    models = decode_review(orjson.dumps(data))
    assert isinstance(models, AdmissionReview)
    assert (models.request.sub_resource, models.request.old_object) == ("", None)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
# Where an edit may land: the review, the request and the objects inside it.
PLACES = (
    (),
    ("request",),
    ("request", "kind"),
    ("request", "resource"),
    ("request", "userInfo"),
)
KEYS = (
    "apiVersion",
    "kind",
    "request",
    "uid",
    "resource",
    "subResource",
    "sub_resource",
    "name",
    "namespace",
    "operation",
    "userInfo",
    "user_info",
    "object",
    "oldObject",
    "old_object",
    "dryRun",
    "dry_run",
    "api_version",
    "group",
    "version",
    "username",
    "groups",
)
EDITS = st.lists(
    st.tuples(
        st.sampled_from(PLACES),
        st.sampled_from(KEYS),
        st.one_of(st.just("delete"), JSON_VALUES, st.sampled_from(["", "CREATE", "Pod"])),
    ),
    max_size=4,
)


@given(EDITS)
def test_whatever_the_fast_road_takes_the_models_take_with_the_same_values(
    edits: list[tuple[tuple[str, ...], str, Any]],
) -> None:
    data: Any = copy.deepcopy(review(pod(), operation="UPDATE", old=pod()))
    for place, key, value in edits:
        target = data
        for step in place:
            target = target.get(step) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        if value == "delete":
            target.pop(key, None)
        else:
            target[key] = value
    fast = plain_review(data)
    if fast is None:
        return
    models = by_the_models(data)
    assert models is not None, data
    assert values(fast) == values(models)
