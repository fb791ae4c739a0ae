"""The one JSON Patch helper every mutation builds its patch with.

A mutation says what it wants in terms of "this value at this path, if nothing is there
yet"; `PatchBuilder` turns those wishes into RFC 6902 operations against the document
the API server sent, following the rules that keep a patch safe to apply and to repeat:

- Pointers are escaped per RFC 6901 (`~` becomes `~0`, `/` becomes `~1`), list items are
  addressed by index.
- A missing parent is created by adding the smallest enclosing object
  (`add /spec/securityContext {"fsGroup": 1000}`), and several wishes under the same
  missing parent are merged into that one `add`.
- An existing object or list is never replaced wholesale; an existing value is never
  touched, so building the patch again on the patched document yields no operation
  (a mutating webhook with `reinvocationPolicy: IfNeeded` may be called twice).
- A member that is present but `null` counts as absent, as it does for the API server's
  decoder; it is overwritten with `replace` (RFC 6902 section 4.3), the op that says so.
- A wish that cannot be met (the path runs through a string, a list index that is not
  there, or needs a list created) is dropped and reported as False, never raised: a
  mutation skips what it cannot default rather than failing the admission.

Building from wishes is cheaper than editing a deep copy and diffing it: the copy alone
costs more than the whole patch for a ten-container pod (bench/bench_pod_defaults.py
measures both).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from webhook.verdict import PatchOperation

Segment = str | int
Path = tuple[Segment, ...]

_BLOCKED = object()  # the path cannot go on from here (a scalar, a missing list item)


def escape(segment: Segment) -> str:
    """One reference token of a JSON Pointer (RFC 6901 section 3)."""
    if isinstance(segment, int):
        return str(segment)
    if "~" in segment or "/" in segment:  # the order matters: "~1" must not become "/"
        return segment.replace("~", "~0").replace("/", "~1")
    return segment


@lru_cache(maxsize=4096)  # the same few paths recur in every pod; bounded all the same
def pointer(path: Path) -> str:
    """The JSON Pointer of `path`, e.g. ("spec", "containers", 0) -> "/spec/containers/0"."""
    return "/" + "/".join([escape(segment) for segment in path]) if path else ""


def _owned(value: Any) -> Any:
    """A copy of the objects in the JSON value `value`, so later wishes can merge into it.

    Lists and scalars are shared: nothing is ever merged into them.
    """
    if type(value) is not dict:
        return value
    return {key: item if type(item) is not dict else _owned(item) for key, item in value.items()}


def _nest(path: Path, value: Any) -> Any:
    """`value` wrapped in one object per segment of `path`, or `_BLOCKED` for a list index."""
    for segment in reversed(path):
        if not isinstance(segment, str):
            return _BLOCKED
        value = {segment: value}
    return value


def _merge_into(target: dict[str, Any], values: dict[str, Any]) -> None:
    """Add the members of `values` that `target` lacks, recursing into shared objects."""
    for key, value in values.items():
        current = target.get(key)
        if current is None:
            target[key] = _owned(value)
        elif isinstance(current, dict) and isinstance(value, dict):
            _merge_into(current, value)


class PatchBuilder:
    """Collects "set if absent" wishes against one document and yields RFC 6902 operations.

    The document is only read. Wished values are JSON values (dicts, lists, strings,
    numbers, booleans), as the reply's encoder expects; they go into the operations as
    given, so a caller must not change them afterwards (the builder copies a value before
    merging a later wish into it). Operations come out in the order their wishes went in.
    """

    __slots__ = ("_copied", "_created", "_document", "_operations")

    def __init__(self, document: Any) -> None:
        self._document = document
        self._operations: list[PatchOperation] = []
        # the path each add/replace creates -> that operation, for later wishes to merge into
        self._created: dict[Path, PatchOperation] = {}
        # the paths whose operation value is the builder's own copy, safe to merge into
        self._copied: set[Path] = set()

    @property
    def operations(self) -> list[PatchOperation]:
        return self._operations

    def set_absent(self, path: Path, value: Any) -> bool:
        """Set `value` at `path` unless a value is already there; False when it cannot be."""
        if not path or not isinstance(path[-1], str):
            return False
        return self.merge_absent(path[:-1], {path[-1]: value})

    def merge_absent(self, path: Path, values: dict[str, Any]) -> bool:
        """Set each leaf of the nested object `values` under the object at `path`, if absent.

        Members already present are kept, and nested objects are merged member by member.
        Returns False when `path` does not lead to (or cannot be created as) an object.
        """
        node = self._document
        for depth, segment in enumerate(path):
            if isinstance(node, dict) and isinstance(segment, str):
                child = node.get(segment)
                if child is None:  # absent or null: create the smallest enclosing object
                    nested = _nest(path[depth + 1 :], values)
                    if nested is _BLOCKED:
                        return False
                    return self._create(path[: depth + 1], node, nested)
            elif isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node):
                child = node[segment]
            else:
                return False  # through a scalar, or a list item that is not there
            node = child
        if not isinstance(node, dict):
            return False
        self._merge_existing(path, node, values)
        return True

    def _merge_existing(self, path: Path, node: dict[str, Any], values: dict[str, Any]) -> None:
        for key, value in values.items():
            current = node.get(key)
            if current is None:
                self._create((*path, key), node, value)
            elif isinstance(current, dict) and isinstance(value, dict):
                self._merge_existing((*path, key), current, value)

    def _create(self, path: Path, parent: Any, value: Any) -> bool:
        """One add (or replace, over a null) of `value` at `path`, or a merge into an earlier."""
        earlier = self._created.get(path)
        if earlier is None:
            op = "replace" if isinstance(parent, dict) and path[-1] in parent else "add"
            operation = {"op": op, "path": pointer(path), "value": value}
            self._operations.append(operation)
            self._created[path] = operation
            return True
        if isinstance(earlier["value"], dict) and isinstance(value, dict):
            # NB: copy on the first merge only; most values are never merged into, and
            # copying every one would cost more than building the rest of the patch.
            if path not in self._copied:
                earlier["value"] = _owned(earlier["value"])
                self._copied.add(path)
            _merge_into(earlier["value"], value)
        return True
