"""Merge keys (`<<`) read as the YAML 1.1 merge type defines them, whatever PyYAML's release.

    securityContext:
      <<: [*privileged, *unprivileged]   # the earlier mapping wins: privileged: true

The merge type (https://yaml.org/type/merge.html) gives the mapping's own keys precedence
over merged ones, and, of the merged mappings, the earlier over the later. The Go YAML
reader behind kubectl and the API server merges so too. PyYAML 6.0.4 lets the later win
for any key longer than one character (its issue #953), which judged the pod above
unprivileged and admitted it. So the loaders here flatten merge keys themselves:

- the mapping's own pairs come last, as written, so that they win (and of two equal own
  keys the last, as PyYAML has always done);
- of the merged pairs only the one that wins is kept per key, so that mappings merging
  mappings that merge others cannot multiply into a flood of pairs, and each mapping is
  flattened once however often it is merged (the billion-laughs check in
  `webhook.manifests_io` bounds the aliases themselves);
- a mapping that merges itself, or a merge of anything but mappings, is a
  `ConstructorError`, which the callers report as invalid YAML.
"""

from __future__ import annotations

from typing import Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"
STR_TAG = "tag:yaml.org,2002:str"

Pair = tuple[yaml.Node, yaml.Node]


class _Flattening:
    """Marks a mapping whose merges are being flattened, to catch one that merges itself."""


_FLATTENING = _Flattening()


def spec_merging(base: type[Any]) -> type[Any]:
    """`base` (a PyYAML loader class) with merge keys flattened as the merge type says."""

    class SpecMergingLoader(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # id(mapping node) -> its pairs with merges flattened; the nodes outlive it
            self._flattened: dict[int, list[Pair] | _Flattening] = {}

        def flatten_mapping(self, node: yaml.MappingNode) -> None:
            node.value = self._pairs(node)

        def _pairs(self, node: yaml.MappingNode) -> list[Pair]:
            known = self._flattened.get(id(node))
            if isinstance(known, _Flattening):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found a merge key that merges the mapping it is in",
                    node.start_mark,
                )
            if known is not None:
                return known
            self._flattened[id(node)] = _FLATTENING
            own: list[Pair] = []
            merged: list[yaml.MappingNode] = []  # the earlier wins
            for key, value in node.value:
                if key.tag == MERGE_TAG:
                    merged.extend(self._mappings_to_merge(node, value))
                    continue
                if key.tag == VALUE_TAG:  # `=` as a key is the string "="
                    key.tag = STR_TAG
                own.append((key, value))
            pairs = self._winners(own, merged) + own if merged else own
            self._flattened[id(node)] = pairs
            return pairs

        def _mappings_to_merge(
            self, node: yaml.MappingNode, value: yaml.Node
        ) -> list[yaml.MappingNode]:
            given = value.value if isinstance(value, yaml.SequenceNode) else [value]
            mappings: list[yaml.MappingNode] = []
            for mapping in given:
                if not isinstance(mapping, yaml.MappingNode):
                    found = "a list" if isinstance(mapping, yaml.SequenceNode) else "a scalar"
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping or a list of mappings to merge, found {found}",
                        mapping.start_mark,
                    )
                mappings.append(mapping)
            return mappings

        def _winners(self, own: list[Pair], merged: list[yaml.MappingNode]) -> list[Pair]:
            """The merged pairs that win, one per key not among `own`, the weakest first."""
            taken = {_identity(key) for key, _ in own}
            winners: list[Pair] = []
            for mapping in merged:
                # A flattened mapping's pairs run from the weakest to the strongest.
                for key, value in reversed(self._pairs(mapping)):
                    identity = _identity(key)
                    if identity not in taken:
                        taken.add(identity)
                        winners.append((key, value))
            winners.reverse()
            return winners

    return SpecMergingLoader


def _identity(key: yaml.Node) -> tuple[str, Any]:
    """What makes two keys the same key: a scalar's tag and text (`1` and `"1"` differ);
    any other key is only ever itself, and the constructor refuses it as unhashable."""
    if isinstance(key, yaml.ScalarNode):
        return key.tag, key.value
    return "", id(key)
