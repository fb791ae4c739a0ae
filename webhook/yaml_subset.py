"""A fast reader for the block-style YAML that Kubernetes manifests are written in.

PyYAML with libyaml turns a typical pod into Python objects at a few thousand documents a
second, which is most of what `bulwark evaluate` spends on a large tree. Nearly every
manifest uses a small part of YAML: block mappings and sequences, plain and one-line quoted
scalars, one-line flow collections, and literal or folded block scalars. This module reads
that part and raises `Unsupported` on anything else (anchors, aliases, tags, multi-line
plain or quoted scalars, escapes, complex keys, directives, and anything malformed). The
caller then reads the document with PyYAML, which also reports the errors; so a document
always means what PyYAML says it means, and this reader only has to be right where it does
not give up. tests/test_evaluate_yaml.py holds it to that against PyYAML.

Plain scalars are resolved by PyYAML's YAML 1.1 resolver and constructors (`yes` is a
boolean, `0755` an octal number, `2024-01-01` a date), as the libyaml loader resolves them
(`webhook.yaml_compat`: also `y` and `n` are booleans, as kubectl reads them), cached per
distinct text.
"""

from __future__ import annotations

import re
from typing import Any

from yaml.nodes import ScalarNode

from webhook.yaml_compat import CONSTRUCTOR, GO_NUMBER_TAG, RESOLVER
from webhook.yaml_declined import Unsupported

__all__ = ["MAX_DEPTH", "Unsupported", "load"]

# Deeper documents go to libyaml, which has its own limit and a clear error.
MAX_DEPTH = 64
# libyaml refuses a key whose `:` stands more than this many characters after its start.
MAX_KEY_LENGTH = 1024

_KEY = re.compile(
    r"""(?:([^\s#'"&*!|>%@`{}\[\],?:<=-][^\s:#{}\[\],]*)|"([^"\\]*)"|'((?:[^']|'')*)'):(?: +|$)"""
)
_BLOCK_HEADER = re.compile(r"([|>])([-+]?)(?: +#.*)?$")
_FLOW_KEY = re.compile(r"""([^\s#'"&*!|>%@`{}\[\],?:<=-][^\s:#{}\[\],]*): +""")
_PLAIN_STARTS = frozenset("&*!|>%@`,[]{}#'\"")
_STR = "tag:yaml.org,2002:str"

_RESOLVED_FIRST = frozenset(char for char in RESOLVER.yaml_implicit_resolvers if char)
_CONSTRUCTORS = {
    tag: CONSTRUCTOR.yaml_constructors[tag]
    for tag in [f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "float", "timestamp")]
    + [GO_NUMBER_TAG]
}
_resolved: dict[str, Any] = {}
_EMPTY = object()  # a flow entry with nothing in it
_flows: dict[str, Any] = {}


def _plain(text: str) -> Any:
    """A plain scalar's value, exactly as the libyaml loader resolves it."""
    if text[0] not in _RESOLVED_FIRST:
        return text
    try:
        return _resolved[text]
    except KeyError:
        pass
    tag = RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if tag == _STR:
        value: Any = text
    elif tag in _CONSTRUCTORS:
        try:
            value = _CONSTRUCTORS[tag](CONSTRUCTOR, ScalarNode(tag, text))
        except ValueError:  # `2024-13-45`: libyaml's reader reports it
            raise Unsupported(text) from None
    else:  # the merge key `<<` and the value key `=`
        raise Unsupported(tag)
    if len(_resolved) > 8192:
        _resolved.clear()
    _resolved[text] = value
    return value


def _plain_value(text: str) -> Any:
    """A plain scalar in block context, with its trailing comment removed."""
    cut = text.find(" #")
    if cut >= 0:
        text = text[:cut].rstrip(" ")
    first = text[0]
    if first in _PLAIN_STARTS or (first in "-?:" and (len(text) == 1 or text[1] == " ")):
        raise Unsupported(text)
    if ": " in text or text.endswith(":"):
        raise Unsupported(text)
    return _plain(text)


def _quoted(text: str, start: int) -> tuple[str, int]:
    """A one-line quoted scalar at `start`, and the index after its closing quote."""
    if text[start] == "'":
        end = start + 1
        while True:
            end = text.find("'", end)
            if end < 0:
                raise Unsupported(text)
            if not text.startswith("''", end):
                return text[start + 1 : end].replace("''", "'"), end + 1
            end += 2
    end = text.find('"', start + 1)
    if end < 0 or "\\" in text[start:end]:
        raise Unsupported(text)
    return text[start + 1 : end], end + 1


def _after_scalar(text: str, end: int) -> None:
    """Only a comment may follow a scalar on its line."""
    rest = text[end:]
    if rest and not (rest[0] == " " and rest.lstrip(" ").startswith("#")):
        raise Unsupported(text)


def _flow_scalar(text: str, start: int, stops: str) -> tuple[Any, int]:
    """A plain scalar inside a flow collection, up to the next `stops` character."""
    end = start
    while end < len(text) and text[end] not in ",[]{}":
        end += 1
    if end == len(text) or text[end] not in stops:
        raise Unsupported(text)
    value = text[start:end].strip(" ")
    if not value:
        return _EMPTY, end
    first = value[0]
    if first in _PLAIN_STARTS or first in "?:" or (first == "-" and value[1:2] in ("", " ")):
        raise Unsupported(text)
    if ": " in value or value.endswith(":") or " #" in value or ":?" in value:
        raise Unsupported(text)  # libyaml ends the scalar at such a `:`, then refuses `?`
    return _plain(value), end


def _skip_spaces(text: str, index: int) -> int:
    while index < len(text) and text[index] == " ":
        index += 1
    return index


def _flow_node(text: str, index: int, stops: str, depth: int) -> tuple[Any, int]:
    index = _skip_spaces(text, index)
    if index == len(text):
        raise Unsupported(text)
    char = text[index]
    if char in "[{":
        return _flow_collection(text, index, depth + 1)
    if char in "'\"":
        value, end = _quoted(text, index)
        return value, _skip_spaces(text, end)
    return _flow_scalar(text, index, stops)


def _flow_key(text: str, index: int) -> tuple[Any, int]:
    """A flow mapping's key and the index after its `:`."""
    start = index = _skip_spaces(text, index)
    if index < len(text) and text[index] in "'\"":
        key, index = _quoted(text, index)
        index = _skip_spaces(text, index)
        if not text.startswith(":", index) or index - start > MAX_KEY_LENGTH:
            raise Unsupported(text)
        return key, index + 1
    match = _FLOW_KEY.match(text, index)
    if match is None or match.end(1) - start > MAX_KEY_LENGTH:
        raise Unsupported(text)
    return _plain(match.group(1)), match.end()


def _flow_collection(text: str, index: int, depth: int) -> tuple[Any, int]:
    """A one-line `[...]` or `{...}` starting at `index`, and the index after it."""
    if depth > MAX_DEPTH:
        raise Unsupported(text)
    closing = "]" if text[index] == "[" else "}"
    items: list[Any] = []
    mapping: dict[Any, Any] = {}
    index = _skip_spaces(text, index + 1)
    if text.startswith(closing, index):
        return (items if closing == "]" else mapping), index + 1
    while True:
        if closing == "]":
            item, index = _flow_node(text, index, ",]", depth)
            if item is _EMPTY or text.startswith(":", index):
                raise Unsupported(text)
            items.append(item)
        else:
            key, index = _flow_key(text, index)
            value, index = _flow_node(text, index, ",}", depth)
            mapping[key] = None if value is _EMPTY else value
        if index >= len(text):
            raise Unsupported(text)
        if text[index] == closing:
            return (items if closing == "]" else mapping), index + 1
        if text[index] != ",":
            raise Unsupported(text)
        index = _skip_spaces(text, index + 1)
        if index >= len(text) or text[index] == closing:
            raise Unsupported(text)


def _flow(text: str) -> Any:
    """A one-line flow collection; manifests repeat a few of them (`{cpu: 100m}`) a lot,
    so each is parsed once and copied after that."""
    parsed = _flows.get(text)
    if parsed is None:
        parsed, end = _flow_collection(text, 0, 1)
        _after_scalar(text, end)
        if len(_flows) > 4096:
            _flows.clear()
        _flows[text] = parsed
    return _fresh(parsed)


def _fresh(value: Any) -> Any:
    """A copy of parsed flow content: new containers, the same immutable scalars."""
    if type(value) is dict:
        return {key: _fresh(item) for key, item in value.items()}
    if type(value) is list:
        return [_fresh(item) for item in value]
    return value


class _Lines:
    """The document's lines, with a cursor on the next line that holds content.

    `indent` is -1 at the end. `enter` moves the cursor into the same line, after a
    sequence's `- `, so that `- name: app` reads as a mapping at the column of `name`.
    """

    def __init__(self, raw: list[str], start: int, *, final_break: bool) -> None:
        self.raw = raw
        self.final_break = final_break  # whether the last line ends with a line break
        stripped = ((index, line, line.lstrip(" ")) for index, line in enumerate(raw))
        self._content = [
            (index, len(line) - len(text), text.rstrip(" "))
            for index, line, text in stripped
            if index >= start and text and text[0] != "#"
        ]
        self._content.append((len(raw), -1, ""))
        self._next = 0
        self.index, self.indent, self.text = -1, -1, ""
        self.advance()

    def advance(self) -> None:
        self.index, self.indent, self.text = self._content[self._next]
        self._next += 1

    def skip_to(self, index: int) -> None:
        """Move to the first content line at or after raw line `index`."""
        while self._content[self._next][0] < index:
            self._next += 1
        self.advance()

    def enter(self, indent: int, text: str) -> None:
        self.indent, self.text = indent, text


def _is_item(text: str) -> bool:
    return text[0] == "-" and (len(text) == 1 or text[1] == " ")


def _node(lines: _Lines, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise Unsupported("too deep for the fast path")
    if _is_item(lines.text):
        return _sequence(lines, lines.indent, depth)
    return _mapping(lines, lines.indent, depth)


def _mapping(lines: _Lines, indent: int, depth: int) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    while lines.indent == indent:
        text = lines.text
        match = _KEY.match(text)
        if match is None:
            raise Unsupported(text)
        plain, double, single = match.groups()
        colon = match.end(1) if plain is not None else match.end(2 if single is None else 3) + 1
        if colon > MAX_KEY_LENGTH:
            raise Unsupported(text)
        if plain is not None:
            key = _plain(plain)
        else:
            key = double if double is not None else single.replace("''", "'")
        result[key] = _value(lines, indent, text[match.end() :], depth, in_mapping=True)
    if lines.indent > indent:
        raise Unsupported(lines.text)
    return result


def _sequence(lines: _Lines, indent: int, depth: int) -> list[Any]:
    result: list[Any] = []
    while lines.indent == indent and _is_item(lines.text):
        text = lines.text
        rest = text[1:].lstrip(" ")
        if rest and rest[0] != "#" and (_is_item(rest) or _KEY.match(rest)):
            lines.enter(indent + len(text) - len(rest), rest)
            result.append(_node(lines, depth + 1))
        else:
            result.append(_value(lines, indent, rest, depth, in_mapping=False))
    if lines.indent > indent:
        raise Unsupported(lines.text)
    return result


def _value(lines: _Lines, indent: int, rest: str, depth: int, *, in_mapping: bool) -> Any:
    """The value after `key:` or `-` on the cursor's line, and the lines it spans."""
    if not rest or rest[0] == "#":
        lines.advance()
        if lines.indent > indent:
            return _node(lines, depth + 1)
        if in_mapping and lines.indent == indent and _is_item(lines.text):
            return _sequence(lines, indent, depth + 1)  # `key:` then `- item` at its column
        return None

    first = rest[0]
    value: Any
    if first in "|>":
        value = _block_scalar(lines, indent, rest)
    else:
        if first in "[{":
            value = _flow(rest)
        elif first in "'\"":
            value, end = _quoted(rest, 0)
            _after_scalar(rest, end)
        else:
            value = _plain_value(rest)
        lines.advance()
    if lines.indent > indent:  # a continuation line: multi-line scalars are PyYAML's
        raise Unsupported(lines.text)
    return value


def _block_scalar(lines: _Lines, indent: int, header: str) -> str:
    """A literal (`|`) or folded (`>`) scalar without an explicit indentation indicator."""
    match = _BLOCK_HEADER.match(header)
    if match is None:
        raise Unsupported(header)
    style, chomping = match.groups()
    raw, index = lines.raw, lines.index + 1
    body: list[str] = []
    column = -1
    while index < len(raw):
        line = raw[index]
        text = line.lstrip(" ")
        if not text:
            if line or column < 0:  # spaces-only and leading blank lines are PyYAML's
                raise Unsupported(header)
            body.append("")
        else:
            line_indent = len(line) - len(text)
            if column < 0:
                if line_indent <= indent:
                    break
                column = line_indent
            elif line_indent < column:
                break
            body.append(line[column:])
        index += 1
    if index == len(raw) and not lines.final_break:
        raise Unsupported(header)  # the last line has no break to keep or clip
    lines.skip_to(index)
    return _chomp(style, chomping, body, header)


def _chomp(style: str, chomping: str, body: list[str], header: str) -> str:
    end = len(body)
    while end and not body[end - 1]:
        end -= 1
    content, trailing = body[:end], len(body) - end
    if not content:
        if chomping == "+":
            raise Unsupported(header)
        return ""
    text = "\n".join(content) if style == "|" else _fold(content, header)
    if chomping == "-":
        return text
    return text + "\n" * (1 + trailing if chomping == "+" else 1)


def _fold(content: list[str], header: str) -> str:
    """Folded lines: one line break becomes a space, n empty lines become n line breaks."""
    if any(line[:1] == " " for line in content):
        raise Unsupported(header)  # more-indented lines keep their breaks: PyYAML's
    parts = [content[0]]
    breaks = 0
    for line in content[1:]:
        if not line:
            breaks += 1
            continue
        parts.append("\n" * breaks if breaks else " ")
        parts.append(line)
        breaks = 0
    return "".join(parts)


def load(text: str) -> tuple[Any, int]:
    """The document in `text` and the 0-based line of its first key.

    `text` holds one document, optionally opened by a `---` line. Raises `Unsupported`
    unless the document is empty or a block mapping in the subset this module reads.
    """
    raw = text.split("\n")
    final_break = not raw[-1]
    if final_break:
        raw.pop()
    start = 0
    if raw and (raw[0] == "---" or raw[0].startswith("--- ")):
        head = raw[0][3:].lstrip(" ")
        if head and head[0] != "#":
            raise Unsupported(raw[0])
        start = 1
    lines = _Lines(raw, start, final_break=final_break)
    if lines.indent < 0:
        return None, start  # an empty document
    if lines.indent != 0 or _is_item(lines.text):
        raise Unsupported("not a block mapping at the left margin")
    first = lines.index
    value = _mapping(lines, 0, 0)
    if lines.indent != -1:
        raise Unsupported(lines.text)
    return value, first
