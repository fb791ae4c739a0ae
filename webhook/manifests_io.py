"""Reading manifests for `bulwark evaluate`: files, folders and standard input.

Every object comes out as a `Document` that knows where it stands (`deploy/app.yaml#2`,
line 14); every document that cannot be judged comes out as a `Problem` that says where
and why, and reading goes on with the next document and the next file.

A file is split into YAML documents at its `---` lines, as kubectl does, so one broken
document does not hide the others. A document is read by rapidyaml when its meaning is
certain (`webhook.yaml_native`, only inside `yaml_native.native_reader()`; a whole file,
or a few dozen of its documents, in one pass), else by the fast subset reader in
`webhook.yaml_subset` and, when that gives up, by libyaml (PyYAML's CSafeLoader), which
refuses nesting deeper than 1000 levels; a document with aliases is refused when they
expand it past `MAX_EXPANDED_NODES` ("billion laughs"). The last two load PyYAML, which
only then is imported. Text that starts with `{` is read as JSON first, as kubectl does.
`List` objects (`kind: List` or `PodList`, ...) are opened up: each item is a document of
its own, `file#2.items[3]`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any

import orjson

from webhook import yaml_native
from webhook.errors import UNBUILDABLE, quoted, unbuildable_value, value_kind
from webhook.yaml_declined import UNSUPPORTED_CHARACTERS, Unsupported

if TYPE_CHECKING:
    import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_EXPANDED_NODES = 1_000_000
# Documents read by rapidyaml in one pass: enough to share its per-call costs, few enough
# that a large file is still judged a few documents at a time.
BATCH_DOCUMENTS = 32
STDIN = "-"
MAX_ITEMS_WITH_LINES = 2_000
STRAY_BYTE_ORDER_MARK = (
    "refused: a byte-order mark (U+FEFF) past the start of the text, which kubectl's reader "
    'misreads the lines around; remove it, or write it as "\\ufeff" inside a quoted string'
)

# A `---` line; the text is searched with a line break in front, so that one at the very
# start is found too (a literal prefix keeps the search fast on large files).
_SEPARATOR = re.compile(r"\n---(?=[ \t\r\n]|$)")
# A line with more than YAML's white space (space and tab) and a comment. Not `\s`: other
# spaces (U+00A0, U+2028, ...) are content to a YAML or JSON reader, and a part of them
# must be read and refused, never skipped as empty.
_CONTENT_LINE = re.compile(r"^[ \t]*[^ \t\r\n#]", re.MULTILINE)
_JSON_FIRST_KEY = re.compile(rb'\s*\{\s*"')
_WHITE_SPACE = re.compile(r"[ \t\r\n]*")
_DOCUMENT_END = re.compile(r"\.\.\.[ \t]*(?:#.*)?")
_BLANK_OR_COMMENT = re.compile(r"[ \t]*(?:#.*)?")
_Loader: Any = None  # libyaml's safe loader, once a document needs it (see `_loader`)


@dataclass(slots=True)  # not frozen: one is built per object, and a frozen one costs 5x
class Document:
    """One Kubernetes object read from the input."""

    file: str  # as the user named it; "-" for standard input
    source: str  # "file#index", unique within one evaluation
    line: int  # 1-based line of the object's first key
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """Input that cannot be judged, and where it is."""

    file: str
    source: str
    line: int  # 0 when the whole file is concerned
    message: str

    def __str__(self) -> str:
        where = f"{self.source} (line {self.line})" if self.line else self.source
        return f"{where}: {self.message}"


Item = Document | Problem


def manifest_files(paths: list[str]) -> Iterator[tuple[str, str | None]]:
    """(name, error) for every file to read: folders are walked, in sorted order.

    Files and folders whose names start with a dot (`.git`, `.github/workflows`) are
    skipped inside a folder but read when named. `error` is None for a readable path.
    A file named twice (`deploy deploy/app.yaml`, or through a link) is read once, under
    its first name. In a folder only regular files are read: a FIFO would block the walk
    until a writer came. A path named on the command line may be anything that can be read
    (`<(kustomize build)`).
    """
    seen: set[object] = set()
    for path in paths or [STDIN]:
        if path == STDIN or not os.path.isdir(path):
            if path == STDIN or _first_time(path, seen):
                yield path, None
            continue
        errors: list[OSError] = []
        for root, folders, names in os.walk(path, onerror=errors.append):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            for name in sorted(names):
                if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
                    found = os.path.join(root, name)
                    if not _first_time(found, seen):
                        continue
                    if os.path.exists(found) and not os.path.isfile(found):
                        yield found, "not a regular file (a FIFO, socket or device): not read"
                        continue
                    yield found, None
        for error in errors:
            yield str(error.filename), f"cannot read the folder: {error.strerror}"


def _first_time(path: str, seen: set[object]) -> bool:
    """Whether `path` names a file not seen yet: by its inode, so that a symbolic or a
    hard link to a file read already is not read again."""
    try:
        status = os.stat(path)
        identity: object = (status.st_dev, status.st_ino)
    except OSError:  # it will be reported when it is read
        identity = os.path.realpath(path)
    if identity in seen:
        return False
    seen.add(identity)
    return True


def shown_name(name: str) -> str:
    """`name` as it can be printed: the bytes of a file name that is not UTF-8 (which Python
    keeps as lone surrogates) written as `\\xff` escapes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def read_paths(paths: list[str], stdin: Any = None) -> Iterator[Item]:
    """Every document (or problem) in `paths`; `-` or no path reads `stdin` (bytes)."""
    for path, unreadable in manifest_files(paths):
        name = shown_name(path)
        if unreadable is not None:
            yield Problem(name, name, 0, unreadable)
            continue
        try:
            if name == STDIN:
                data = stdin.read() if stdin is not None else b""
            else:
                with open(path, "rb") as handle:
                    data = handle.read()
        except OSError as error:
            yield Problem(name, name, 0, f"cannot read: {error.strerror or error}")
            continue
        yield from read_bytes(name, data, json=name.endswith(".json"))


def read_bytes(name: str, data: bytes, *, json: bool = False) -> Iterator[Item]:
    """The documents in one file's bytes; `json` for a `.json` file.

    Text that starts with `{"` is JSON, and so is a `.json` file's that starts with `{` or
    `[` (an error in it is a JSON error, not a YAML one); like kubectl, a stream of JSON
    values one after another (`jq -c '.items[]'`) is read as one document each. Anything
    else is YAML, whatever the file is called, as kubectl reads it.
    """
    data = data.removeprefix(b"\xef\xbb\xbf")  # the byte-order mark some editors write
    opening = _JSON_FIRST_KEY.match(data)
    json = json and data.lstrip().startswith((b"{", b"["))
    if opening or json:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            stream, broken = _json_stream(data)
            # Values one after another (`jq -c`): each a document, as kubectl reads them,
            # and the one that cannot be read a problem of its own. A text that is JSON at
            # no value, or at its first only, is not a stream (YAML may read it).
            if len(stream) > 1 or (stream and json):
                for index, (line, value, text) in enumerate(stream):
                    lines = partial(_item_lines, text, line - 1)
                    yield from _objects(name, f"{name}#{index}", line, value, lines)
                if broken is not None:
                    where, problem = broken
                    yield Problem(
                        name, f"{name}#{len(stream)}", where, f"not valid JSON: {problem}"
                    )
                return
            if json:
                yield Problem(name, f"{name}#0", error.lineno, f"not valid JSON: {error.msg}")
                return
        else:
            line = data.count(b"\n", 0, opening.end()) + 1 if opening else 1
            yield from _objects(name, f"{name}#0", line, body, partial(_item_lines, data, 0))
            return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        yield Problem(name, name, data.count(b"\n", 0, error.start) + 1, "not UTF-8 text")
        return
    stray = text.find("\ufeff")
    if stray >= 0:
        # kubectl drops the first; past it, go-yaml v2 loses the first character of lines
        # (`xhostPID:` reads as `hostPID:`), where libyaml and rapidyaml lose none.
        yield Problem(name, name, text.count("\n", 0, stray) + 1, STRAY_BYTE_ORDER_MARK)
        return
    yield from read_yaml(name, text)


def _json_stream(data: bytes) -> tuple[list[tuple[int, Any, str]], tuple[int, str] | None]:
    """(line, value, text) of each JSON value at the start of `data`, one after another
    with only white space between them; and, where one could not be read, its line and
    what is wrong there (None when all of `data` was read)."""
    import json

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], (1, "not UTF-8 text")
    decoder = json.JSONDecoder(parse_constant=_no_constant)
    values: list[tuple[int, Any, str]] = []
    position = _after_white_space(text, 0)
    while position < len(text):
        line = text.count("\n", 0, position) + 1
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            return values, (error.lineno, error.msg)
        except (ValueError, RecursionError) as error:  # NaN; nested past the stack
            return values, (line, str(error) or type(error).__name__)
        values.append((line, value, text[position:end]))
        position = _after_white_space(text, end)
    return values, None


def _after_white_space(text: str, position: int) -> int:
    found = _WHITE_SPACE.match(text, position)
    return found.end() if found else position


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of every `---`-separated part; a leading comment-only part is
    dropped, and directives (`%YAML 1.1`), at the start or after a document's `...` line,
    join the part they precede."""
    starts = [0]
    starts.extend(match.start() for match in _SEPARATOR.finditer("\n" + text))
    line = 0
    carried = ""
    if len(starts) > 1 and starts[1] == 0:
        starts.pop(0)
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        chunk = text[start:end]
        if index == 0 and not chunk.startswith("---"):
            content = [m.group() for m in _CONTENT_LINE.finditer(chunk)]
            if not content or all(c.lstrip(" \t").startswith("%") for c in content):
                carried = chunk if content else ""
                line += chunk.count("\n")
                continue
        cut = _directives_after_end(chunk)
        yield line - carried.count("\n"), carried + chunk[:cut]
        line += chunk.count("\n")
        carried = chunk[cut:]


def _directives_after_end(chunk: str) -> int:
    """Where the directives that follow a document's `...` line start in `chunk` (they
    belong to the next document), else the chunk's length."""
    if "\n%" not in chunk:
        return len(chunk)
    lines = chunk.split("\n")
    directives = False
    for index in range(len(lines) - 1, -1, -1):  # up from the end, to a `...` line
        line = lines[index]
        if line.startswith("%"):
            directives = True
        elif _DOCUMENT_END.fullmatch(line):
            if not directives:
                break
            return sum(len(kept) + 1 for kept in lines[: index + 1])
        elif not _BLANK_OR_COMMENT.fullmatch(line):
            break
    return len(chunk)


def read_yaml(name: str, text: str) -> Iterator[Item]:
    """The documents of one YAML text, each parsed on its own.

    Inside `yaml_native.native_reader()`, a text of fewer than `BATCH_DOCUMENTS` plain
    objects goes to rapidyaml whole; else up to `BATCH_DOCUMENTS` documents at a time do;
    when it declines a batch, its documents are read one by one, each by the fastest reader
    that takes it.
    """
    if yaml_native.enabled() and text.count("\n---") < BATCH_DOCUMENTS:
        documents = _read_whole(name, text)
        if documents is not None:
            return iter(documents)
    return _read_parts(_TextReader(name, text), text)


def _read_whole(name: str, text: str) -> list[Document] | None:
    """Every object of `text` read by rapidyaml in one pass, or None when it declines the
    text or one of its documents is not a plain object (a List, no kind)."""
    try:
        loaded = yaml_native.load_file(text)
    except Unsupported:
        return None
    documents = []
    for index, (body, first) in enumerate(loaded):
        if not _plain_object(body):
            return None
        documents.append(Document(name, f"{name}#{index}", first + 1, body))
    return documents


def _read_parts(reader: _TextReader, text: str) -> Iterator[Item]:
    """The documents of one YAML text, part by part (see `read_yaml`)."""
    chunks = _chunks(text)
    if not reader.native:
        for offset, chunk in chunks:
            yield from reader.read(offset, chunk)
        return
    while batch := list(islice(chunks, BATCH_DOCUMENTS)):
        try:
            loaded = yaml_native.load_all([chunk for _, chunk in batch])
        except Unsupported:
            for offset, chunk in batch:
                yield from reader.read(offset, chunk)
            continue
        for (offset, chunk), (body, first) in zip(batch, loaded, strict=True):
            yield from reader.found(offset, chunk, body, first)


class _TextReader:
    """Reads the documents of one text in order, numbering them as it goes."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text = name, text
        self.index = 0  # of the next document in the text
        self.subset: bool | None = None  # whether the subset reader may read the text at all
        self.native = yaml_native.enabled()

    def read(self, offset: int, chunk: str) -> Iterator[Item]:
        """The objects of one chunk, by the fastest reader that takes it."""
        try:
            body, first = self._fast(chunk)
        except Unsupported:
            items, documents = _slow(self.name, chunk, offset, self.index)
            self.index += documents
            return iter(items)
        return self.found(offset, chunk, body, first)

    def _fast(self, chunk: str) -> tuple[Any, int]:
        """The chunk's document by rapidyaml, else by the subset reader; else `Unsupported`."""
        if self.native:
            try:
                return yaml_native.load(chunk)
            except Unsupported:
                pass
        self.subset = _subset_may_read(self.text, self.subset)
        from webhook import yaml_subset  # it loads PyYAML: only for what rapidyaml declines

        return yaml_subset.load(chunk)

    def found(self, offset: int, chunk: str, body: Any, first: int) -> Iterator[Item]:
        """The objects of the chunk's document `body`, whose first key is on line `first`."""
        source, line = f"{self.name}#{self.index}", offset + first + 1
        self.index += 1
        if _plain_object(body):  # the common case, without the generator below
            return iter((Document(self.name, source, line, body),))
        return _objects(self.name, source, line, body, partial(_item_lines, chunk, offset))


def _subset_may_read(text: str, known: bool | None) -> bool:
    """Whether `text` is free of the characters the subset reader leaves to libyaml;
    raises `Unsupported` when it is not. Searched once per text, when first needed."""
    if known is None:
        known = UNSUPPORTED_CHARACTERS.search(text) is None
    if not known:
        raise Unsupported("characters for libyaml")
    return known


def _slow(name: str, chunk: str, offset: int, index: int) -> tuple[list[Item], int]:
    """The objects of one chunk read by libyaml, and how many documents it held."""
    import yaml  # loaded when first needed: it costs a tenth of the start-up

    from webhook.yaml_compat import ReadApart, refuse_non_specific_tags

    items: list[Item] = []
    start = index
    loader = _loader()(chunk)
    try:
        if "!" in chunk:
            refuse_non_specific_tags(chunk)
        while loader.check_node():
            node = loader.get_node()
            if "&" in chunk:
                _refuse_bombs(node)
            body = loader.construct_document(node)
            source, line = f"{name}#{index}", offset + _first_line(node) + 1
            lines = partial(_node_item_lines, node, offset)
            items.extend(_objects(name, source, line, body, lines))
            index += 1
    except yaml.MarkedYAMLError as error:
        line, message = _located(error, chunk, offset)
        refused = "refused" if isinstance(error, ReadApart) else "not valid YAML"
        items.append(Problem(name, f"{name}#{index}", line, f"{refused}: {message}"))
        index += 1
    except (yaml.YAMLError, _Refused) as error:
        message = str(error) if isinstance(error, _Refused) else f"not valid YAML: {error}"
        items.append(Problem(name, f"{name}#{index}", offset + 1, message))
        index += 1
    except RecursionError:
        items.append(Problem(name, f"{name}#{index}", offset + 1, "nested too deeply to be read"))
        index += 1
    except UNBUILDABLE as error:  # `2024-13-45`, 5000 digits, `!!bool 1`
        message = f"not valid YAML: {unbuildable_value(error)}"
        items.append(Problem(name, f"{name}#{index}", offset + 1, message))
        index += 1
    finally:
        loader.dispose()
    return items, index - start


def _loader() -> Any:
    """libyaml's safe loader (PyYAML's own when libyaml is missing), found on first use,
    reading as kubectl does where PyYAML would not (`webhook.yaml_compat`)."""
    global _Loader  # noqa: PLW0603 - set once
    if _Loader is None:
        import yaml

        from webhook.yaml_compat import kubectl_loader

        _Loader = kubectl_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return _Loader


def _located(error: yaml.MarkedYAMLError, chunk: str, offset: int) -> tuple[int, str]:
    """The line of a YAML error (never past its document) and what went wrong there."""
    last = chunk.rstrip().count("\n")

    def line_of(mark: Any) -> int:
        return offset + min(int(mark.line), last) + 1

    mark = error.problem_mark or error.context_mark
    context = error.context or ""
    if (
        error.context
        and error.context_mark
        and error.problem_mark
        and line_of(error.context_mark) != line_of(error.problem_mark)
    ):
        context += f" (from line {line_of(error.context_mark)})"
    message = ", ".join(part for part in (context, error.problem) if part)
    return (line_of(mark) if mark else offset + 1), message


class _Refused(Exception):
    pass


def _refuse_bombs(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it past MAX_EXPANDED_NODES nodes."""
    import yaml

    stack: list[Any] = [root]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_EXPANDED_NODES:
            raise _Refused(
                f"refused: its aliases expand it to more than {MAX_EXPANDED_NODES:,} nodes"
            )
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)


def _first_line(node: yaml.Node) -> int:
    import yaml

    if isinstance(node, yaml.MappingNode) and node.value:
        return int(node.value[0][0].start_mark.line)
    return int(node.start_mark.line)


def _objects(
    name: str,
    source: str,
    line: int,
    body: Any,
    item_lines: Callable[[], list[int]],
    *,
    an_item: bool = False,
) -> Iterator[Item]:
    """The object in one document, or its items when it is a List; nothing when empty. An
    item that is itself a list is a problem: kubectl opens one level of items only, and
    fails on an item with items of its own."""
    if body is None:
        return
    if not isinstance(body, dict):
        yield Problem(
            name, source, line, f"not a Kubernetes object: {value_kind(body)}, not a mapping"
        )
        return
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if not api_version or not isinstance(api_version, str):
        problem = _not_a_name("apiVersion", api_version, "apps/v1")
        yield Problem(name, source, line, f"not a Kubernetes object: {problem}")
    elif not kind or not isinstance(kind, str):
        problem = _not_a_name("kind", kind, "Deployment")
        yield Problem(name, source, line, f"not a Kubernetes object: {problem}")
    elif "items" in body and not an_item:
        yield from _listed(name, source, line, body, item_lines)
    elif an_item and isinstance(body.get("items"), list):
        problem = (
            f"a {kind} with items inside a list's items, which kubectl refuses to apply "
            "(no Items field in this object); put its items in the outer list"
        )
        yield Problem(name, source, line, problem)
    else:
        yield Document(name, source, line, body)


def _listed(
    name: str, source: str, line: int, body: dict[str, Any], item_lines: Callable[[], list[int]]
) -> Iterator[Item]:
    """The objects of a document with `items`, whatever its kind.

    kubectl applies the items of every object that has an `items` key (apimachinery decodes
    it as a list) and never the object itself: a Pod with a privileged pod among its items
    creates that pod. The API server, sent the object itself (as a tool that decodes it
    as one object sends it), creates the object and drops `items`. So a `...List` gives
    its items, and any other object itself and then its items: each reader's objects are
    judged.
    """
    kind, items = body["kind"], body["items"]
    if items is not None and not isinstance(items, list):
        problem = f"a {kind} whose items is {value_kind(items)}, not a list"
        yield Problem(name, source, line, problem)
        return
    if not kind.endswith("List"):
        yield Document(name, source, line, body)
    if items:
        # Finding each item's line means reading the text again with PyYAML, whose nodes
        # take a hundred times the text's size: a long list's items share its line.
        lines = item_lines() if len(items) <= MAX_ITEMS_WITH_LINES else []
        yield from _items(name, source, line, body, lines)


def _not_a_name(field: str, value: Any, example: str) -> str:
    """What is wrong with an apiVersion or kind that is missing, empty or not text."""
    if value is None or value == "":
        return f"no {field}"
    return f"its {field} is {value_kind(value)} ({quoted(value, 40)}), not text such as {example}"


def _plain_object(body: Any) -> bool:
    """Whether `_objects` would give `body` as it is, alone: an object without `items`."""
    if type(body) is not dict or "items" in body:
        return False
    api_version, kind = body.get("apiVersion"), body.get("kind")
    return (
        bool(api_version) and isinstance(api_version, str) and bool(kind) and isinstance(kind, str)
    )


def _items(
    name: str, source: str, line: int, body: dict[str, Any], lines: list[int]
) -> Iterator[Item]:
    # A typed list (PodList) may leave apiVersion and kind out of its items: an item with
    # neither gets the list's apiVersion and its kind less `List`, as kubectl gives them.
    defaults = {"apiVersion": body["apiVersion"], "kind": body["kind"].removesuffix("List")}
    for position, value in enumerate(body["items"]):
        item = value
        if (
            isinstance(value, dict)
            and not _named(value, "kind")
            and not _named(value, "apiVersion")
        ):
            item = {**value, **defaults}
        item_line = lines[position] if position < len(lines) else line
        item_source = f"{source}.items[{position}]"
        yield from _objects(name, item_source, item_line, item, list, an_item=True)


def _named(obj: dict[str, Any], field: str) -> bool:
    """Whether `obj` has text in `field`, as apimachinery's GetKind and GetAPIVersion see it."""
    value = obj.get(field)
    return isinstance(value, str) and value != ""


def _item_lines(text: str | bytes, offset: int) -> list[int]:
    """The 1-based line of each List item's first key, or [] when they cannot be found."""
    import yaml

    try:
        node = yaml.compose(text, Loader=_loader())
    except yaml.YAMLError:
        return []
    return _node_item_lines(node, offset) if node is not None else []


def _node_item_lines(node: yaml.Node, offset: int) -> list[int]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "items" and isinstance(value, yaml.SequenceNode):
                return [offset + _first_line(item) + 1 for item in value.value]
    return []
