"""The JSON Patch helper: RFC 6901 pointers, smallest enclosing adds, merging, idempotency."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from webhook.mutation.patch import PatchBuilder, Path, escape, pointer


@pytest.mark.parametrize(
    ("segment", "token"),
    [
        pytest.param("spec", "spec", id="plain"),
        pytest.param("a/b", "a~1b", id="slash"),
        pytest.param("a~b", "a~0b", id="tilde"),
        pytest.param("~1", "~01", id="tilde-one-is-not-a-slash"),
        pytest.param("/~", "~1~0", id="both"),
        pytest.param("", "", id="empty-member"),
        pytest.param(3, "3", id="list-index"),
    ],
)
def test_pointer_tokens_are_escaped_per_rfc_6901(segment: str | int, token: str) -> None:
    """`~` becomes `~0` before `/` becomes `~1`, so the two never mix."""
    assert escape(segment) == token


def test_pointer_joins_tokens_and_the_root_is_empty() -> None:
    """A path becomes "/a/b"; the empty path is the whole document, ""."""
    assert pointer(("spec", "containers", 0, "resources")) == "/spec/containers/0/resources"
    assert pointer(("metadata", "annotations", "bulwark.dev/x~y")) == (
        "/metadata/annotations/bulwark.dev~1x~0y"
    )
    assert pointer(()) == ""


def _ops(document: Any, *wishes: tuple[Path, Any]) -> list[dict[str, Any]]:
    builder = PatchBuilder(document)
    for path, value in wishes:
        builder.set_absent(path, value)
    return builder.operations


FS_GROUP: Path = ("spec", "securityContext", "fsGroup")
CPU_REQUEST: Path = ("spec", "containers", 0, "resources", "requests", "cpu")
MEMORY_REQUEST: Path = ("spec", "containers", 0, "resources", "requests", "memory")


@pytest.mark.parametrize(
    ("document", "wishes", "expected"),
    [
        pytest.param(
            {"spec": {}},
            [(FS_GROUP, 1000)],
            [{"op": "add", "path": "/spec/securityContext", "value": {"fsGroup": 1000}}],
            id="missing-parent-added-as-smallest-enclosing-object",
        ),
        pytest.param(
            {"spec": {"securityContext": {"runAsUser": 1}}},
            [(FS_GROUP, 1000)],
            [{"op": "add", "path": "/spec/securityContext/fsGroup", "value": 1000}],
            id="existing-parent-gets-a-member",
        ),
        pytest.param(
            {"spec": {"securityContext": None}},
            [(FS_GROUP, 1000)],
            [{"op": "replace", "path": "/spec/securityContext", "value": {"fsGroup": 1000}}],
            id="null-parent-replaced",
        ),
        pytest.param(
            {"spec": {"securityContext": {"fsGroup": None}}},
            [(FS_GROUP, 1000)],
            [{"op": "replace", "path": "/spec/securityContext/fsGroup", "value": 1000}],
            id="null-member-replaced",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "a"}]}},
            [(CPU_REQUEST, "100m"), (MEMORY_REQUEST, "128Mi")],
            [
                {
                    "op": "add",
                    "path": "/spec/containers/0/resources",
                    "value": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }
            ],
            id="two-wishes-under-one-missing-parent-merge-into-one-add",
        ),
        pytest.param(
            {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}}}]}},
            [(CPU_REQUEST, "100m"), (("spec", "containers", 0, "resources", "limits", "mem"), 1)],
            [
                {
                    "op": "add",
                    "path": "/spec/containers/0/resources/requests",
                    "value": {"cpu": "100m"},
                },
                {"op": "add", "path": "/spec/containers/0/resources/limits/mem", "value": 1},
            ],
            id="existing-object-extended-never-replaced",
        ),
        pytest.param(
            {"metadata": {"annotations": {"a/b": "x"}}},
            [(("metadata", "annotations", "c~d/e"), "y")],
            [{"op": "add", "path": "/metadata/annotations/c~0d~1e", "value": "y"}],
            id="escaped-member-name",
        ),
    ],
)
def test_wishes_become_the_smallest_operations_that_apply(
    document: dict[str, Any], wishes: list[tuple[Path, Any]], expected: list[dict[str, Any]]
) -> None:
    """Each wish turns into the one operation that creates what is missing, and it applies."""
    operations = _ops(document, *wishes)

    assert operations == expected
    patched = jsonpatch.apply_patch(document, operations)
    for path, value in wishes:
        node: Any = patched
        for segment in path:
            node = node[segment]
        assert node == value


@pytest.mark.parametrize(
    "present",
    [
        pytest.param(0, id="zero"),
        pytest.param(False, id="false"),
        pytest.param("", id="empty-string"),
        pytest.param({}, id="empty-object"),
        pytest.param([], id="empty-list"),
        pytest.param(2000, id="other-value"),
    ],
)
def test_a_present_value_is_never_changed(present: Any) -> None:
    """Only absence (or null) counts as absent: 0, false and empty values are choices."""
    assert _ops({"spec": {"securityContext": {"fsGroup": present}}}, (FS_GROUP, 1000)) == []


@pytest.mark.parametrize(
    ("document", "path"),
    [
        pytest.param({"spec": "text"}, FS_GROUP, id="through-a-string"),
        pytest.param({"spec": [1, 2]}, FS_GROUP, id="member-of-a-list"),
        pytest.param({"spec": {"containers": []}}, CPU_REQUEST, id="list-item-not-there"),
        pytest.param({"spec": {"containers": {"0": {}}}}, CPU_REQUEST, id="index-into-an-object"),
        pytest.param({"spec": {}}, CPU_REQUEST, id="would-need-a-new-list"),
        pytest.param({"spec": {"containers": [None]}}, CPU_REQUEST, id="null-list-item"),
        pytest.param({"spec": {"containers": ["x"]}}, CPU_REQUEST, id="string-list-item"),
        pytest.param({"spec": {}}, (), id="the-root-itself"),
        pytest.param({"spec": {"containers": [{}]}}, ("spec", "containers", 0), id="list-item"),
    ],
)
def test_a_wish_that_cannot_be_met_is_dropped_not_raised(
    document: dict[str, Any], path: Path
) -> None:
    """A path through a scalar, a missing list item or into a list yields False and no op."""
    builder = PatchBuilder(document)

    assert builder.set_absent(path, 1) is False
    assert builder.operations == []


def test_merge_absent_fills_only_the_missing_leaves_of_a_nested_object() -> None:
    """Nested wishes descend into existing objects and add only what each one lacks."""
    document = {"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}}}]}}
    builder = PatchBuilder(document)

    met = builder.merge_absent(
        ("spec", "containers", 0),
        {"resources": {"requests": {"cpu": "100m", "memory": "1Mi"}, "limits": {"cpu": "2"}}},
    )

    assert met is True
    assert builder.operations == [
        {"op": "add", "path": "/spec/containers/0/resources/requests/memory", "value": "1Mi"},
        {"op": "add", "path": "/spec/containers/0/resources/limits", "value": {"cpu": "2"}},
    ]


def test_wishes_under_the_same_created_object_merge_across_calls() -> None:
    """A later merge_absent joins the add an earlier wish made, instead of overwriting it."""
    builder = PatchBuilder({"spec": {"containers": [{}]}})
    first = {"requests": {"cpu": "100m"}}

    builder.merge_absent(("spec", "containers", 0), {"resources": first})
    builder.merge_absent(("spec", "containers", 0), {"resources": {"requests": {"cpu": "9"}}})
    builder.set_absent(("spec", "containers", 0, "resources", "limits", "cpu"), "1")

    assert builder.operations == [
        {
            "op": "add",
            "path": "/spec/containers/0/resources",
            "value": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}},
        }
    ]
    assert first == {"requests": {"cpu": "100m"}}, "the caller's value was merged into"


def test_the_document_is_only_read() -> None:
    """Building a patch never changes the document it is built against."""
    document = {"spec": {"securityContext": None, "containers": [{"resources": {}}]}}
    before = copy.deepcopy(document)

    _ops(document, (FS_GROUP, 1), (CPU_REQUEST, "1"), (MEMORY_REQUEST, "1"))

    assert document == before


def test_building_again_on_the_patched_document_yields_no_operation() -> None:
    """The patch is idempotent: the same wishes against its result are all already met."""
    document: dict[str, Any] = {
        "spec": {"securityContext": None, "containers": [{"name": "a"}, {"resources": None}]}
    }
    wishes = [
        (FS_GROUP, 1000),
        (CPU_REQUEST, "100m"),
        (MEMORY_REQUEST, "128Mi"),
        (("spec", "containers", 1, "resources", "limits", "cpu"), "1"),
    ]

    patched = jsonpatch.apply_patch(document, _ops(document, *wishes))

    assert _ops(patched, *wishes) == []
