"""Where PyYAML would read a manifest otherwise than kubectl, and what the loaders do instead.

kubectl (and Argo CD, and the API server for YAML bodies) turns YAML into JSON with
`sigs.k8s.io/yaml`, whose reader is go-yaml v2. A manifest that reads one way here and
another way there could pass `bulwark evaluate` and reach the cluster privileged, so the
exact readers (PyYAML, and `webhook.yaml_subset` through `RESOLVER` and `CONSTRUCTOR`)
follow go-yaml where PyYAML parts from it:

- **`y`, `Y`, `n` and `N` are booleans**, as go-yaml reads them (`privileged: y` is
  true); PyYAML reads them as strings.
- **Merge keys (`<<`).** go-yaml applies them in the order written: a `<<` overwrites
  the mapping's own keys written before it, and of two `<<` keys the later wins (of the
  mappings in one `<<: [...]`, the earlier). The merge type (https://yaml.org/type/merge.html)
  lets the mapping's own keys win wherever they stand, and so do PyYAML before 6.0.4 and
  go-yaml v3 (kustomize); PyYAML 6.0.4 lets the later of `<<: [*a, *b]` win for any key
  longer than one character (its issue #953). Where the readers that matter agree, the
  mapping reads as they do; where they do not (`privileged: false` and then `<<: *a`
  that says `true`), the document is refused with a message that says how to write it
  so that every reader agrees. A mapping is flattened once however often it is merged,
  with one pair per key, so mappings merging mappings cannot multiply into a flood (the
  billion-laughs check in `webhook.manifests_io` bounds the aliases themselves).
- **Numbers.** A plain scalar that starts like a number is one when go-yaml reads it as
  one, and then has its value: `1e3` is 1000 and `0o17` is 15 (strings to PyYAML), `1:20`
  is a string (80 to PyYAML). `runAsUser: 0e0` is root. See `go_number`.

- **Tags.** go-yaml reads a mapping as a mapping and a sequence as a sequence whatever
  their tag: `securityContext: !!set {privileged: true}` is privileged to kubectl, where
  PyYAML makes a set of it (and of `!!omap` and `!!pairs`, lists of pairs). A scalar's
  `!!binary` is its decoded text (`!!binary aG9zdE5ldHdvcms=:` is the key `hostNetwork`);
  a scalar with a tag go-yaml does not know (`!foo true`) is its text. The tag `!` alone
  makes a value text to go-yaml whatever it looks like (`! null` is "null"), where
  libyaml reads the value by its look; a document with one is refused
  (`refuse_non_specific_tags`).
- **Merge keys are `<<` written as a key**, as go-yaml has them: `!!merge foo:` is the key
  "foo", and an alias of a `<<` key (`*m :`), the key "<<" to go-yaml and a merge to
  PyYAML, is refused.

Left as PyYAML reads them, because no check depends on them: dates (a date here, a string
to kubectl), and keys such as `y:`, which are the boolean True here and the string "true"
in kubectl's JSON.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import Resolver

MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"
STR_TAG = "tag:yaml.org,2002:str"
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
BINARY_TAG = "tag:yaml.org,2002:binary"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
# A plain scalar go-yaml reads as a number (see `go_number`); built by `go_number` too.
GO_NUMBER_TAG = "tag:bulwark.dev,2026:go-number"

_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")
_BASES = {"0x": 16, "0X": 16, "0o": 8, "0O": 8, "0b": 2, "0B": 2}
_DIGITS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}
_INT64, _UINT64 = 1 << 63, 1 << 64
_MOST_DIGITS = {2: 64, 8: 22, 10: 20, 16: 16}  # of a number below 2**64, in each base

Pair = tuple[yaml.Node, yaml.Node]


def go_number(text: str) -> int | float | None:
    """The number go-yaml v2 reads a plain scalar as, or None when it reads a string.

    Its rules: a scalar that starts with `.` is a float when Go's ParseFloat takes it;
    one that starts with a digit or a sign, once every `_` is removed, is an integer when
    Go's ParseInt or ParseUint takes it with base 0 (`0x`, `0o`, `0b`, and a leading `0`
    for octal), else a float when it matches go-yaml's float pattern (`1e3`, `1.`, `.5`)
    and is finite (a float as PyYAML and the fast reader give one: `1e3` is 1000.0, which
    the API server reads as 1000). `.inf` and `.nan`, which it reads by name, are not here.
    """
    if not text:
        return None
    if text[0] == ".":
        return _finite(text) if _DOT_FLOAT.fullmatch(text) else None
    if text[0] not in "+-0123456789":
        return None
    plain = text.replace("_", "")
    integer = _go_int(plain)
    if integer is not None:
        return integer
    return _finite(plain) if _GO_FLOAT.fullmatch(plain) else None


def _finite(text: str) -> float | None:
    """The float of `text`, or None where Go's ParseFloat fails: past a float's range."""
    value = float(text)
    return None if value in (float("inf"), float("-inf")) else value


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), else strconv.ParseUint(text, 0, 64); None if neither."""
    sign = text[:1] if text[:1] in ("+", "-") else ""
    body = text[len(sign) :]
    base = _BASES.get(body[:2], 8 if body[:1] == "0" and len(body) > 1 else 10)
    digits = body[2:] if body[:2] in _BASES else body[1:] if base == 8 else body
    if not digits or any(character not in _DIGITS[base] for character in digits):
        return None
    if len(digits.lstrip("0")) > _MOST_DIGITS[base]:  # past 64 bits, and past int()'s limit
        return None
    value = int(digits, base) * (-1 if sign == "-" else 1)
    if -_INT64 <= value < _INT64 or (not sign and 0 <= value < _UINT64):
        return value
    return None


class _GoNumberPattern:
    """Stands for a regular expression in the resolver: it matches what `go_number` reads."""

    def match(self, text: str) -> bool:
        return go_number(text) is not None


class KubectlResolver(Resolver):
    """PyYAML's resolver, with go-yaml's one-letter booleans and its numbers."""


# PyYAML's integer and float patterns make way for go-yaml's numbers, but for `.inf` and
# `.nan`, which both read by name.
KubectlResolver.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in (INT_TAG, FLOAT_TAG)]
    for first, resolvers in Resolver.yaml_implicit_resolvers.items()
}
KubectlResolver.add_implicit_resolver(
    FLOAT_TAG, re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+.")
)
KubectlResolver.add_implicit_resolver(GO_NUMBER_TAG, _GoNumberPattern(), list("-+.0123456789"))
KubectlResolver.add_implicit_resolver(BOOL_TAG, re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))


class KubectlConstructor(SafeConstructor):
    """PyYAML's safe constructor, knowing the one-letter booleans (also as `!!bool y`),
    go-yaml's numbers, and its scalar tags (for its collections' tags, see
    `_with_kubectl_scalars`)."""

    bool_values = {**SafeConstructor.bool_values, "y": True, "n": False}  # noqa: RUF012

    def construct_go_number(self, node: yaml.ScalarNode) -> int | float:
        value = go_number(node.value)
        if value is None:  # only an explicit tag gets here with anything else
            raise ConstructorError(None, None, f"{node.value!r} is not a number", node.start_mark)
        return value

    def construct_go_binary(self, node: yaml.ScalarNode) -> str:
        """The text of a `!!binary` scalar: Go's strict base64 (line breaks skipped), read
        as UTF-8 with U+FFFD for what is not, as Go's JSON writes it."""
        text = self.construct_scalar(node)
        try:
            data = base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
        except binascii.Error:
            raise ConstructorError(
                None, None, "a !!binary value that is not base64", node.start_mark
            ) from None
        return data.decode("utf-8", "replace")

    def construct_unknown_tag(self, node: yaml.Node) -> Any:
        """A scalar whose tag go-yaml does not know is its text; other nodes never get here
        (see `_with_kubectl_scalars`)."""
        if isinstance(node, yaml.ScalarNode):
            return self.construct_scalar(node)
        return self.construct_undefined(node)


KubectlConstructor.yaml_constructors = {
    **SafeConstructor.yaml_constructors,
    GO_NUMBER_TAG: KubectlConstructor.construct_go_number,
    BINARY_TAG: KubectlConstructor.construct_go_binary,
    None: KubectlConstructor.construct_unknown_tag,
}


RESOLVER = KubectlResolver()
CONSTRUCTOR = KubectlConstructor()


class ReadApart(ConstructorError):
    """Valid YAML that kubectl's reader and the exact readers would read apart: refused."""


def refuse_non_specific_tags(text: str) -> None:
    """Raise `ReadApart` at the first value of `text` tagged `!` alone (see the module)."""
    tokens = yaml.scan(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    for token in tokens:
        if isinstance(token, yaml.TagToken) and token.value == (None, "!"):
            raise ReadApart(
                None,
                None,
                "the tag ! alone makes the value after it text to kubectl's reader, whatever "
                "it looks like (! null is the text null), and YAML reads it by its look; "
                "quote the value instead",
                token.start_mark,
            )


def _with_kubectl_scalars(base: type[Any]) -> type[Any]:
    """`base` with go-yaml's booleans, numbers and tags."""

    class KubectlScalars(base):  # type: ignore[misc]
        # A safe loader's constructors are SafeConstructor's: KubectlConstructor's are those
        # and go-yaml's numbers.
        bool_values = KubectlConstructor.bool_values
        yaml_implicit_resolvers = KubectlResolver.yaml_implicit_resolvers
        yaml_constructors = KubectlConstructor.yaml_constructors

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            # A collection's tag (`!!set`, `!!omap`, `!anything`) changes nothing to go-yaml.
            if type(node) is yaml.MappingNode:
                node.tag = MAP_TAG
            elif type(node) is yaml.SequenceNode:
                node.tag = SEQ_TAG
            return super().construct_object(node, deep)

    return KubectlScalars


class _Flattening:
    """Marks a mapping whose merges are being flattened, to catch one that merges itself."""


_FLATTENING = _Flattening()


def kubectl_loader(base: type[Any], *, kubectl_scalars: bool = True) -> type[Any]:
    """`base` (a PyYAML safe loader class) reading as kubectl does (see the module); with
    `kubectl_scalars` False only its merge keys, and plain scalars as PyYAML reads them (for
    Bulwark's own configuration file, which kubectl never reads: a namespace `n` stays `n`)."""
    scalars = _with_kubectl_scalars(base) if kubectl_scalars else base

    class KubectlLoader(scalars):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # id(mapping node) -> the node, and its pairs with merges flattened. The node is
            # kept so that its id cannot be another node's while the entry lives: one
            # document's entries are dropped when it is built (see `construct_document`).
            self._flattened: dict[int, tuple[yaml.Node, list[Pair] | _Flattening]] = {}
            self._merge_keys: dict[int, yaml.Node] = {}  # id -> a `<<` key node met so far

        def construct_document(self, node: yaml.Node) -> Any:
            try:
                return super().construct_document(node)
            finally:
                self._flattened.clear()
                self._merge_keys.clear()

        def flatten_mapping(self, node: yaml.MappingNode) -> None:
            node.value = self._pairs(node)

        def _pairs(self, node: yaml.MappingNode) -> list[Pair]:
            _, known = self._flattened.get(id(node), (node, None))
            if isinstance(known, _Flattening):
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found a merge key that merges the mapping it is in",
                    node.start_mark,
                )
            if known is not None:
                return known
            self._flattened[id(node)] = (node, _FLATTENING)
            pairs = self._flattened_pairs(node)
            self._flattened[id(node)] = (node, pairs)
            return pairs

        def _flattened_pairs(self, node: yaml.MappingNode) -> list[Pair]:
            own: list[Pair] = []
            merged: list[yaml.MappingNode] = []  # the earlier wins, by the merge type
            in_order: list[list[Pair]] = []  # what go-yaml sets, in the order it sets it
            for key, value in node.value:
                if key.tag == MERGE_TAG and key.value != "<<":  # `!!merge foo:` is "foo"
                    key.tag = STR_TAG
                if key.tag != MERGE_TAG:
                    if key.tag == VALUE_TAG:  # `=` as a key is the string "="
                        key.tag = STR_TAG
                    own.append((key, value))
                    in_order.append([(key, value)])
                    continue
                self._refuse_aliased_merge_key(key)
                mappings = self._mappings_to_merge(node, value)
                merged.extend(mappings)
                in_order.extend(self._pairs(mapping) for mapping in reversed(mappings))
            if not merged:
                return own
            pairs = self._winners(own, merged) + own
            _refuse_disagreement(node, pairs, in_order)
            return pairs

        def _refuse_aliased_merge_key(self, key: yaml.Node) -> None:
            """A `<<` key met twice is one written once and used again through an alias,
            which go-yaml reads as the key "<<" and PyYAML as a merge."""
            if id(key) in self._merge_keys:
                raise ReadApart(
                    None,
                    None,
                    "an alias of a merge key (<<) is the key '<<' to kubectl's reader and a "
                    "merge to YAML; write <<: out instead",
                    key.start_mark,
                )
            self._merge_keys[id(key)] = key

        def _mappings_to_merge(
            self, node: yaml.MappingNode, value: yaml.Node
        ) -> list[yaml.MappingNode]:
            given = value.value if isinstance(value, yaml.SequenceNode) else [value]
            mappings: list[yaml.MappingNode] = []
            for mapping in given:
                if not isinstance(mapping, yaml.MappingNode):
                    found = "a list" if isinstance(mapping, yaml.SequenceNode) else "a scalar"
                    raise ConstructorError(
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

    return KubectlLoader


def _refuse_disagreement(
    node: yaml.MappingNode, pairs: list[Pair], in_order: list[list[Pair]]
) -> None:
    """Refuse `node` when go-yaml, setting keys in the order written, ends with another
    value for a key than the merge type's `pairs` give it."""
    by_the_type = {_identity(key): value for key, value in pairs}
    as_written: dict[tuple[str, Any], yaml.Node] = {}
    for group in in_order:
        for key, value in group:
            as_written[_identity(key)] = value
    for identity, value in as_written.items():
        if not _same(value, by_the_type[identity]):
            raise ReadApart(
                None,
                None,
                f"the merge keys (<<) here give {identity[1]!r} two values: kubectl's reader "
                "takes the one written last, the YAML merge type the mapping's own or the "
                "first merged one; write the merge key first and only once, or write the key "
                "out",
                node.start_mark,
            )


def _same(one: yaml.Node, other: yaml.Node) -> bool:
    """Whether two value nodes read the same: the same node, or equal scalars."""
    if one is other:
        return True
    if isinstance(one, yaml.ScalarNode) and isinstance(other, yaml.ScalarNode):
        return (one.tag, one.value) == (other.tag, other.value)
    return False


def _identity(key: yaml.Node) -> tuple[str, Any]:
    """What makes two keys the same key: a scalar's tag and text (`1` and `"1"` differ);
    any other key is only ever itself, and the constructor refuses it as unhashable."""
    if isinstance(key, yaml.ScalarNode):
        return key.tag, key.value
    return "", id(key)
