"""The fastest way to read a manifest: rapidyaml (C++), for documents whose meaning is certain.

rapidyaml parses a typical Deployment and writes it out as JSON for orjson in about a
quarter of the time `webhook.yaml_subset` takes. But it reads YAML 1.2, and Kubernetes
manifests are read as YAML 1.1 (kubectl's go-yaml v2; the exact readers follow it, see
`webhook.yaml_compat`): plain `yes`, `y`, `0755`, `0e0`, `-_0`, `~`, `2024-01-01` or `.inf`
mean a boolean, a number, null or a date there, and a string (sometimes a rewritten one)
here; it accepts some text PyYAML refuses; and it has tags, anchors and merge keys of its
own. So a document comes here only when a scan of its text finds none of that (`RISKY`):
every plain scalar that could be anything but a string in either YAML is one of the few
whose value both agree on (`true`, `false`, `null`, a plain decimal number, a quantity
such as `100m` or `1.5Gi`) and stands where a value stands, never as a key. Anything else
raises `Unsupported`, and the caller reads the document with the exact readers
(`webhook.yaml_subset`, then libyaml). tests/test_evaluate_yaml_native.py holds this module
to the libyaml loader on generated, mangled and public documents.

rapidyaml prints a message on the process's standard error (file descriptor 2, from C++)
for every document it cannot parse, before Python sees the exception, and its Python
binding offers no way to turn that off. So it is used only inside `native_reader()`,
which points descriptor 2 at /dev/null while manifests are read; everywhere else (the
webhook's `POST /evaluate`) `load` raises `Unsupported` and the exact readers do the work.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson

from webhook.yaml_declined import UNSUPPORTED_CHARACTERS, Unsupported

__all__ = ["RISKY", "Unsupported", "enabled", "load", "load_all", "load_file", "native_reader"]

_VALUE_END = r"(?=[ ]*(?:[\n,\]}]|[ ]\#|\Z))"  # the scalar ends here: it is not a key (`1: x`)
# Plain scalars whose value PyYAML (YAML 1.1) and rapidyaml's JSON agree on, as values:
# decimal numbers that orjson reads exactly as PyYAML's int() and float() do, quantities
# (`100m`, `1.5Gi`) that both read as strings, and JSON's own three words.
_SAFE_VALUE = (
    r"(?:-?(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,6})?"
    r"|(?:0|[1-9][0-9]{0,17})(?:\.[0-9]{1,6})?(?:[KMGTPE]i|[numkMGTP])"
    r"|true|false|null)" + _VALUE_END
)
# Whatever could mean something else to one of the two readers, or that they read apart.
# It is searched line by line (see `_certain`), so each part looks no further than its line.
RISKY = re.compile(
    r"[ \n\[{,\"'](?=[-+.0-9yYnNoOtTfFiI~=<?:&*!%@`|>#\]},])"  # a plain scalar may start here
    r"(?:(?<=[ \n\[{,])(?!" + _SAFE_VALUE + r")(?:"  # and it is not one of the safe ones:
    r"[-+]?[._]*[0-9]|\+|\.\.\."  # numbers, dates, sexagesimals, octals, 1e3, .5, -_0, `...`
    r"|[-+]?\.?(?i:yes|no|on|off|true|false|null|inf|nan|y|n)(?=[\s,\[\]{}:?#]|\Z)"  # words
    r"|[~=&*!%@`|>]"  # null, the value key, anchors, aliases, tags, directives, block scalars
    r"|(?<![\[{])[\]},]|(?<=\[)[},]|(?<={)[\],]"  # what YAML 1.1 refuses to start a scalar with
    r"|<<"  # the merge key
    r"|[?:]"  # a complex key `? k`, an empty key `: v`, a flow scalar YAML 1.1 refuses (`{:a}`)
    r"|(?<=\n)(?:---|\.\.\.))"  # a document marker inside the document
    r"|(?<=[\"'])(?::[^ \n]|\#))"  # JSON-style `"key":value`, a comment glued to a quote
    r"|:[,\]}?]"  # an empty value in a flow collection (`[a:, b:]`, `[a:?]`): the readers differ
)
_FLOW_CHARACTERS = re.compile(r"[\[\]{}]")
# Anything but the next entry, the end of the line or a comment after a flow collection
# closes (`- [x] y: z`): libyaml refuses it, rapidyaml reads on.
_AFTER_FLOW = re.compile(r"[\]}](?![ ]*(?:[,\]}]|$)|[ ]+#)")
# A sequence entry after a quoted scalar on its line (`- "run"  - "x"`): libyaml refuses
# it, rapidyaml reads two items.
_DASH_AFTER_QUOTE = re.compile(r"[\"'][ ]+-(?=[ \n]|\Z)")
# In rapidyaml's JSON, where a string starts with a space (see `_parse`), or holds an
# escaped quote before one; a regular expression finds this pair of characters in half the
# time `bytearray.find` takes.
_QUOTE_THEN_SPACE = re.compile(rb'" ')
# A quote closing before `: `; when it closes a scalar opened on an earlier line, that
# scalar is a key over two lines (`"x\n  y": z`), which YAML refuses and rapidyaml reads.
_QUOTE_BEFORE_COLON = re.compile(r"([\"'])[ ]*:(?=[ \n]|\Z)")
# A number or JSON word standing alone: a flow sequence's item (`[1, 2]`), or, in a flow
# mapping, a key without a value (`{a: b, 1}`).
_LONE_FLOW_KEY = re.compile(r"[{,][ ]*" + _SAFE_VALUE)
# PyYAML refuses a simple key longer than 1024 characters; rapidyaml does not.
_LONG_LINE = 1000
_FIRST_CONTENT = re.compile(r"[A-Za-z_\"']")
_COMMENT_OR_BLANK = re.compile(r"(?:[ ]*(?:#[^\n]*)?\n)*")
# Lines already found free of risk. Manifests repeat most of their lines (labels, ports,
# volume mounts), so most lines of a document are looked up here, not searched again.
_certain_lines: set[str] = set()
_MAX_CERTAIN_LINES = 200_000

_enabled: ContextVar[bool] = ContextVar("native_yaml_enabled", default=False)
_ryml: Any = None  # the binding module, once `native_reader()` has imported it
_tree: Any = None  # the tree the last successful parse used
# JSON is written here, then read by orjson; `native_reader()` is for one thread (the CLI).
_OUTPUT = bytearray(1 << 18)


def enabled() -> bool:
    """Whether `load` may use rapidyaml here (only inside `native_reader()`)."""
    return _enabled.get()


@contextmanager
def native_reader() -> Iterator[None]:
    """Let `load` use rapidyaml, with descriptor 2 silenced so its C++ messages go nowhere.

    Python's own messages are written after this block (the caller reads everything
    first, then reports); a traceback raised inside it is printed after descriptor 2 is
    back. Without rapidyaml, or without a descriptor 2 to save, nothing changes and the
    exact readers read everything.
    """
    global _ryml  # noqa: PLW0603 - imported on first use: it costs 10 ms of start-up
    try:
        from ryml import _ryml as binding

        if sys.stderr is not None:  # None when started with it closed (`2>&-`)
            sys.stderr.flush()
        saved = os.dup(2)
    except (ImportError, OSError, ValueError):
        yield
        return
    _ryml = binding
    try:
        silent = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(silent, 2)
        finally:
            os.close(silent)
        token = _enabled.set(True)
        try:
            yield
        finally:
            _enabled.reset(token)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _body_start(text: str) -> int:
    """Where the document's content starts: after a `---` line, comments and blank lines."""
    start = 0
    if text.startswith("---"):
        newline = text.find("\n")
        head = text[3:newline] if newline >= 0 else text[3:]
        if head and not head.startswith(" "):
            raise Unsupported("text glued to ---: not a document marker")  # `---#c`, `---x`
        if head.strip(" ") and not head.lstrip(" ").startswith("#"):
            raise Unsupported("content on the --- line")
        if newline < 0:
            return len(text)
        start = newline + 1
    end = _COMMENT_OR_BLANK.match(text, start)
    return end.end() if end else start


def load(text: str) -> tuple[Any, int]:
    """The mapping in one document's `text` and the 0-based line of its first key.

    Raises `Unsupported` unless the document is a block mapping whose meaning rapidyaml
    and PyYAML certainly agree on, and unless `native_reader()` is active.
    """
    return load_all([text])[0]


def load_all(texts: Sequence[str]) -> list[tuple[Any, int]]:
    """What `load` gives for each of `texts`, consecutive documents of one file, read in
    one pass: one certainty check, one parse, one JSON text and one orjson call for all of
    them, which takes a fifth off reading a typical manifest.

    Raises `Unsupported` unless `load` would read every one of them; the caller then
    reads them one by one, so that one document rapidyaml must not read costs the others
    nothing but this attempt.
    """
    if not _enabled.get():
        raise Unsupported("rapidyaml is used only inside native_reader()")
    bodies = []
    firsts = []
    for text in texts:
        start = _body_start(text)
        if _FIRST_CONTENT.match(text, start) is None:
            raise Unsupported("not a block mapping at the left margin")
        bodies.append(text[start:])
        firsts.append(text.count("\n", 0, start))
    if not _certain("\n".join(bodies)):
        raise Unsupported("a construct whose meaning may differ")
    # Each body behind a `---` line of its own; none holds one (RISKY refuses a document
    # marker inside a document), so the stream has one document per body unless a body
    # runs on into the next (an unclosed bracket or quote), which the count below catches.
    values = _mappings(("---\n" + "\n---\n".join(bodies)).encode(), len(bodies))
    return list(zip(values, firsts, strict=True))


def load_file(text: str) -> list[tuple[Any, int]]:
    """The mapping in every document of a whole file's `text`, and the 0-based line of each
    one's first key, read in one pass without cutting the text up. The common file, whose
    documents are each a block mapping behind a bare `---` line, costs about a tenth less
    to read this way than cut into parts for `load_all`.

    Raises `Unsupported` for any other file (a `---` line with more on it, an empty or
    comment-only part, a document rapidyaml must not read); the caller then reads it part
    by part.
    """
    if not _enabled.get():
        raise Unsupported("rapidyaml is used only inside native_reader()")
    stream = text if text.startswith("---\n") else "---\n" + text
    put_in_front = 0 if stream is text else 1  # the `---` line added before the text
    firsts = []  # the line of each document's first key
    newlines = counted = 0  # in stream[:counted]
    marker = 0  # where a bare `---` line starts
    while marker >= 0:
        skipped = _COMMENT_OR_BLANK.match(stream, marker + 4)  # always, perhaps nothing
        first = skipped.end() if skipped else marker + 4
        if _FIRST_CONTENT.match(stream, first) is None:
            raise Unsupported("not a block mapping at the left margin")
        newlines += stream.count("\n", counted, first)
        counted = first
        firsts.append(newlines - put_in_front)
        marker = stream.find("\n---\n", first)
        if marker >= 0:
            marker += 1
    # Any other line that starts with `---` (a comment, content or spaces after it, or
    # none at the very end) is left to `load_all`.
    if stream.count("\n---") + 1 != len(firsts):
        raise Unsupported("a document marker that is not a bare --- line")
    if not _certain(stream, separated=True):
        raise Unsupported("a construct whose meaning may differ")
    return list(zip(_mappings(stream.encode(), len(firsts)), firsts, strict=True))


def _mappings(stream: bytes, count: int) -> list[Any]:
    """The documents of `stream` as rapidyaml reads them, when there are `count` of them
    and each is a mapping; else `Unsupported`."""
    values = _parse(stream)
    if type(values) is not list or len(values) != count:
        raise Unsupported("the documents did not stay apart")
    for value in values:
        if type(value) is not dict:
            raise Unsupported("not a mapping")
    return values


def _certain(body: str, *, separated: bool = False) -> bool:
    """Whether no line of `body` holds anything the two readers may read apart; with
    `separated`, bare `---` lines may part its documents."""
    lines = set(body.split("\n"))
    if separated:
        lines.discard("---")
    lines -= _certain_lines
    if not lines:
        return True
    unknown = "\n" + "\n".join(lines)
    if (
        "\\" in unknown  # escapes: YAML 1.2 knows more of them than PyYAML does
        or max(map(len, lines)) > _LONG_LINE  # first: it bounds the searches below
        or UNSUPPORTED_CHARACTERS.search(unknown)
        or RISKY.search(unknown)
        # A comment on a line where a flow collection opens may cut it short (`{x: a #b}`).
        # Tested here, not in RISKY: as a pattern it would rescan the rest of the line from
        # every bracket, quadratic in a line's length.
        or ("#" in unknown and any("#" in line and ("[" in line or "{" in line) for line in lines))
        or (_FLOW_CHARACTERS.search(unknown) and not all(map(_plain_flow, lines)))
        or _key_over_two_lines(unknown)
        or _DASH_AFTER_QUOTE.search(unknown)
    ):
        return False
    if len(_certain_lines) > _MAX_CERTAIN_LINES:
        _certain_lines.clear()
    _certain_lines.update(lines)
    return True


def _plain_flow(line: str) -> bool:
    """Whether the flow collections on `line` are ones the two readers read alike: each
    closes on the line it opens on (a flow that goes on to the next line may hold what
    YAML 1.1 refuses, such as a key over two lines, and makes the line-by-line checks blind),
    no bracket stands inside quotes (it would fool the count and `_innermost_flow`), and no
    number or JSON word stands alone in a flow mapping (`{a: b, 1}`: a key, the integer 1
    in PyYAML and the string "1" in JSON)."""
    if _FLOW_CHARACTERS.search(line) is None:
        return True
    if line.count("[") + line.count("{") != line.count("]") + line.count("}"):
        return False
    quotes = [index for index in (line.find('"'), line.find("'")) if index >= 0]
    if quotes:
        inside = line[min(quotes) : max(line.rfind('"'), line.rfind("'"))]
        if _FLOW_CHARACTERS.search(inside):
            return False
    if _AFTER_FLOW.search(line):
        return False
    if "{" in line:
        for lone in _LONE_FLOW_KEY.finditer(line):
            if lone.group().startswith("{") or _innermost_flow(line, lone.start()) == "{":
                return False
    return True


def _key_over_two_lines(text: str) -> bool:
    """Whether a line of `text` ends a quoted key it did not open (an odd count of its
    quote: `  y": z`)."""
    for found in _QUOTE_BEFORE_COLON.finditer(text):
        start = text.rfind("\n", 0, found.start()) + 1
        end = text.find("\n", found.end())
        line = text[start:] if end < 0 else text[start:end]
        if line.count(found.group(1)) % 2:
            return True
    return False


def _innermost_flow(line: str, end: int) -> str:
    """The bracket (`[` or `{`) of the innermost flow collection open at `line[end]`."""
    open_brackets: list[str] = []
    for character in _FLOW_CHARACTERS.findall(line, 0, end):
        if character in "[{":
            open_brackets.append(character)
        elif open_brackets:
            open_brackets.pop()
    return open_brackets[-1] if open_brackets else ""


def _parse(data: bytes) -> Any:
    """rapidyaml's tree of `data`, written out as JSON and read back by orjson."""
    global _tree  # noqa: PLW0603 - one tree, cleared and reused: a new one costs a microsecond
    tree = _tree if _tree is not None else _ryml.new_Tree()
    _tree = None  # NB: a tree left by a failed parse is never used again
    try:
        _ryml.Tree_clear(tree)
        _ryml.Tree_clear_arena(tree)
        _ryml.parse_csubstr(data, tree)
        root = _ryml.Tree_root_id(tree)
        failed, size = _ryml.emit_json_to_substr(tree, root, _OUTPUT)
        output = _OUTPUT
        if failed:  # larger than the shared buffer: once more, into one large enough
            output = bytearray(size)
            failed, size = _ryml.emit_json_to_substr(tree, root, output)
        leading_space = _QUOTE_THEN_SPACE.search(output, 0, size) is not None
        value = orjson.loads(memoryview(output)[:size])
    except Exception as error:  # noqa: BLE001 - the exact readers report what is wrong
        raise Unsupported(f"rapidyaml: {type(error).__name__}") from None
    _tree = tree
    if leading_space:
        # A string that starts with a space (or holds `" `). No plain scalar starts with
        # one, yet rapidyaml reads a line indented past the scalar item of an indentless
        # sequence (`a:` `- "x"` `  b: y`, or `- {x: 1}`) as the key "  b", where libyaml
        # refuses the document. Quoted ones are rare enough to leave to the exact readers.
        raise Unsupported("a string that starts with a space")
    return value
