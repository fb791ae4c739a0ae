"""The rapidyaml path never disagrees with PyYAML: it reads a document as SafeLoader does,
with the same first line, or hands it to the exact readers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.test_evaluate_yaml import KEYS, SCALARS, documents, same
from webhook import manifests_io, yaml_native
from webhook.manifests_io import _chunks, _first_line, _loader, read_yaml

# The exact reader the fast paths are held to: libyaml, reading as kubectl does where
# PyYAML would not (webhook.yaml_compat).
EXACT = _loader()

BULWARK = Path(sys.executable).with_name("bulwark")

# Plain scalars the two YAML versions read apart, or that rapidyaml rewrites.
RISKY_SCALARS = [
    "yes", "Yes", "YES", "no", "No", "on", "On", "off", "OFF", "True",
    "TRUE", "False", "FALSE", "Null", "NULL", "~", "0755", "00", "0o17", "0x1F", "0b101",
    "1_000", "1:20", "-1:30", "190:20:30", "1e3", "1E3", "6.02e23", "1.0e+3", "+1", "-.5",
    ".5", "1.", ".inf", "-.Inf", "+.inf", ".nan", "NaN", "inf", "-inf", "nan", "Inf",
    "2024-01-01", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "=", "<<",
    "0.1234567", "1.5.2", "123456789012345678901",
]  # fmt: skip
SAFE_SCALARS = ["8080", "0", "-1", "1.5", "0.5", "-0.25", "100m", "1.5Gi", "128Mi", "2k"]


@pytest.fixture(autouse=True)
def _native() -> Iterator[None]:
    with yaml_native.native_reader():
        yield


def expected_document(text: str) -> tuple[Any, int] | None:
    """PyYAML's one document in `text` and its first key's line; None when it refuses."""
    try:
        nodes = list(yaml.compose_all(text, Loader=EXACT))
        values = list(yaml.load_all(text, Loader=EXACT))
    except yaml.YAMLError:
        return None
    if len(nodes) != 1:
        return None
    return values[0], _first_line(nodes[0])


def assert_agrees(text: str) -> bool:
    """rapidyaml reads `text` as PyYAML does, or gives up; True when it read it."""
    try:
        value, first = yaml_native.load(text)
    except yaml_native.Unsupported:
        return False
    expected = expected_document(text)
    assert expected is not None, f"rapidyaml read text PyYAML refuses: {text!r}"
    assert same(expected[0], value), f"{text!r}: PyYAML {expected[0]!r}, rapidyaml {value!r}"
    assert first == expected[1], f"{text!r}: first key on line {expected[1]}, not {first}"
    return True


@st.composite
def native_documents(draw: st.DrawFn) -> str:
    """Block documents whose scalars include the ones rapidyaml must not read alone."""
    lines = draw(documents()).split("\n")
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.integers(0, len(lines)))
        key = draw(st.sampled_from([*KEYS, "a", "b", "name"]))
        scalar = draw(st.sampled_from(RISKY_SCALARS + SAFE_SCALARS + SCALARS))
        shape = draw(
            st.sampled_from(["{k}: {v}", "{k}: [{v}, {v}]", "{k}: {{x: {v}}}", "{v}: {k}"])
        )
        lines.insert(where, shape.format(k=key, v=scalar))
    return "\n".join(lines)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(native_documents())
def test_generated_documents_read_as_pyyaml_reads_them(text: str) -> None:
    """Random documents full of YAML 1.1 scalars: rapidyaml agrees with PyYAML or gives up."""
    assert_agrees(text)


def mangled(text: str, data: st.DataObject, edits: int, extras: list[str]) -> str:
    """`text` with `edits` characters removed, or pieces of `extras` inserted, anywhere."""
    for _ in range(edits):
        where = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()) and where < len(text):
            text = text[:where] + text[where + 1 :]
        else:
            text = text[:where] + data.draw(st.sampled_from(extras)) + text[where:]
    return text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(native_documents(), st.data())
def test_mangled_documents_read_as_pyyaml_reads_them(text: str, data: st.DataObject) -> None:
    """Characters inserted or removed anywhere: rapidyaml never reads what PyYAML refuses."""
    edits = data.draw(st.integers(1, 4))
    assert_agrees(mangled(text, data, edits, [*" -:#'\"[]{},|>&*!?a1.\n", "  ", "\n  "]))


@pytest.mark.parametrize("scalar", RISKY_SCALARS)
@pytest.mark.parametrize("shape", ["k: {v}\n", "k: [a, {v}]\n", "k: {{x: {v}}}\n", "- {v}\n"])
def test_scalars_yaml_versions_read_apart_go_to_the_exact_readers(scalar: str, shape: str) -> None:
    """A plain scalar YAML 1.1 and 1.2 (or rapidyaml's JSON) read apart is never read here."""
    text = shape.format(v=scalar)
    if text.startswith("-"):
        text = "a: 1\nlist:\n" + text
    with pytest.raises(yaml_native.Unsupported):
        yaml_native.load(text)


@given(
    st.text(alphabet="-+._0123456789eExXoObByYnN", min_size=1, max_size=8),
    st.sampled_from(["k: {v}\n", "k: [a, {v}]\n", "k: {{x: {v}}}\n"]),
)
@settings(max_examples=500)
@example("-_0", "k: {v}\n")
@example("-._0e0", "k: [a, {v}]\n")
@example("-__0", "k: {{x: {v}}}\n")
def test_number_like_scalars_read_as_the_exact_readers_read_them(scalar: str, shape: str) -> None:
    """Signs, dots, underscores, digits and the letters of exponents, bases and one-letter
    booleans: whatever rapidyaml reads, the exact readers (which follow kubectl's reader:
    `-_0` is 0 there) read alike. `-_0` was once read here as the text "-_0"."""
    assert_agrees(shape.format(v=scalar))


@pytest.mark.parametrize("scalar", ["8080", "1.5", "true", "false", "null", "100m"])
def test_numbers_and_json_words_as_keys_go_to_the_exact_readers(scalar: str) -> None:
    """`8080: x` has an integer key in PyYAML and a string one in JSON."""
    with pytest.raises(yaml_native.Unsupported):
        yaml_native.load(f"a: 1\n{scalar}: x\n")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: &x 1\nb: *x\n", id="anchor-and-alias"),
        pytest.param("a: !!str 1\n", id="tag"),
        pytest.param("base: {a: 1}\nb:\n  <<: {c: 2}\n", id="merge-key"),
        pytest.param("a: 1\na: 2\nb: 'x\\y'\nc: \"\\/\"\n", id="escape"),
        pytest.param('a: {"b":c}\n', id="json-style-key"),
        pytest.param("a: 'x'#c\n", id="comment-glued-to-a-quote"),
        pytest.param("%YAML 1.1\n---\na: 1\n", id="directive"),
        pytest.param("--- a: 1\n", id="content-on-the-marker-line"),
        pytest.param("a: 1\n...\nb: 2\n", id="document-end"),
        pytest.param("? a\n: 1\n", id="complex-key"),
        pytest.param("a:\n  : 1\n", id="empty-key"),
        pytest.param("a: |\n  text\n", id="literal-block"),
        pytest.param("a: >-\n  text\n", id="folded-block"),
        pytest.param("a:\tb\n", id="tab"),
        pytest.param("a: b\r\n", id="carriage-return"),
        pytest.param("a: \x85b\n", id="next-line"),
        pytest.param("a: @b\n", id="reserved-character"),
        pytest.param("a: [a:, a:]\n", id="empty-values-in-a-flow-sequence"),
        pytest.param("a: {x: a #b}\n", id="comment-inside-a-flow-mapping"),
        pytest.param("a: [{port:? 80}]\n", id="question-mark-after-a-colon-in-a-flow"),
        pytest.param("a: [x,\n  b:?c]\n", id="question-mark-after-a-colon-on-a-later-line"),
        pytest.param("a: {k: v, 1}\n", id="number-alone-in-a-flow-mapping"),
        pytest.param("a: {k: [v], true}\n", id="json-word-alone-in-a-flow-mapping"),
        pytest.param("a: {1\n  k: v}\n", id="flow-mapping-key-over-two-lines"),
        pytest.param("a: [x,\n  y]\n", id="flow-sequence-over-two-lines"),
        pytest.param('a: [b, "]"\n  "[", c]\n', id="brackets-inside-quotes"),
        pytest.param("---#c\na: 1\n", id="text-glued-to-the-marker"),
        pytest.param("a:\n  - x\n  ...\n", id="indented-document-end"),
        pytest.param('k:\n  a:\n  - "x"\n    b: y\n', id="line-indented-past-a-scalar-item"),
        pytest.param("k:\n  a:\n  - {x: 1}\n\n    b: y\n", id="same-after-a-blank-line"),
        pytest.param("a:\n- [x] y: z\n", id="text-after-a-flow-collection"),
        pytest.param('b: "x\n  y": z\n', id="quoted-key-over-two-lines"),
        pytest.param("b: 'x\n  y': z\n", id="single-quoted-key-over-two-lines"),
        pytest.param('a:\n  - "run"   - "x"\n', id="an-entry-after-a-quoted-item"),
        pytest.param('a:\n- "x\n  y"  - z\n', id="an-entry-after-a-quoted-item-over-two-lines"),
        pytest.param(f"{'k' * 1100}: v\n", id="key-longer-than-pyyaml-allows"),
        pytest.param("- a\n- b\n", id="top-level-sequence"),
        pytest.param("just text\n", id="top-level-scalar"),
        pytest.param("{a: 1}\n", id="top-level-flow"),
        pytest.param("# only a comment\n", id="comment-only"),
        pytest.param("", id="empty"),
    ],
)
def test_constructs_outside_the_certain_subset_go_to_the_exact_readers(text: str) -> None:
    """Anchors, tags, merge keys, escapes, directives and the like are never read here."""
    with pytest.raises(yaml_native.Unsupported):
        yaml_native.load(text)


def test_duplicate_keys_keep_the_last_value_as_pyyaml_does() -> None:
    """A key given twice keeps its first place and its last value, in both readers."""
    assert assert_agrees("a: 1\nb: 2\na: 3\nc: {x: 1, z: 2, x: 3}\n")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: 1\nb:\n- x\n- w: 2\n  z: [3]\n", id="indentless-sequence"),
        pytest.param("a:\n  - - x\n    - w\n  -   k: v\n      l: w\n", id="compact-nesting"),
        pytest.param("--- # head\na: 'x' # c\nb: \"y\"\n", id="document-marker"),
        pytest.param("a: {b: [1, 2.5, true, null], 'c': 'd'}\n", id="flow"),
        pytest.param("# head\n\nkind: Pod\nimage: nginx:1.25\ncpu: 100m\n", id="comments-first"),
        pytest.param('"app.kubernetes.io/name": x\nv: "yes"\n', id="quoted-keys-and-values"),
        pytest.param("a: b\n  c\n\n  d\n", id="multi-line-plain"),
        pytest.param("a: 'x\n\n  y'\n", id="multi-line-quoted"),
        pytest.param("a: é ü 漢字 😀\n", id="unicode"),
        pytest.param("url: https://example.com/?q=1\nargs: [b?c]\n", id="question-marks"),
    ],
)
def test_common_manifest_shapes_take_the_native_path(text: str) -> None:
    """The shapes manifests are written in are read by rapidyaml, not handed on."""
    assert assert_agrees(text)


def test_outside_the_native_reader_the_exact_readers_do_everything() -> None:
    """`POST /evaluate` and other callers never reach rapidyaml (its messages go to fd 2)."""
    with yaml_native.native_reader():
        pass
    token = yaml_native._enabled.set(False)
    try:
        with pytest.raises(yaml_native.Unsupported):
            yaml_native.load("a: 1\n")
    finally:
        yaml_native._enabled.reset(token)


def items_of(name: str, text: str) -> list[Any]:
    return [
        (type(item).__name__, item.source, item.line, getattr(item, "body", None))
        for item in read_yaml(name, text)
    ]


def exact_items(name: str, text: str) -> list[Any]:
    token = yaml_native._enabled.set(False)
    try:
        return items_of(name, text)
    finally:
        yaml_native._enabled.reset(token)


def test_every_public_fixture_gives_the_same_objects_and_lines(shared_dir: Path) -> None:
    """Every YAML file under ../shared: the same documents, problems, sources and lines."""
    read_natively = 0
    files = sorted({*shared_dir.rglob("*.yaml"), *shared_dir.rglob("*.yml")})
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        expected = exact_items(str(path), text)
        assert same_items(items_of(str(path), text), expected), path
        for _, chunk in _chunks(text):
            read_natively += assert_agrees(chunk) if "\r" not in text else 0
    assert read_natively > 500


def same_items(actual: list[Any], expected: list[Any]) -> bool:
    return len(actual) == len(expected) and all(
        a[:3] == e[:3] and same(e[3], a[3]) for a, e in zip(actual, expected, strict=True)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(native_documents(), min_size=1, max_size=4), st.data())
def test_multi_document_files_give_the_same_objects_and_lines(
    texts: list[str], data: st.DataObject
) -> None:
    """Whole files, `---` separated, with Lists, broken documents and comments among them."""
    parts = []
    for text in texts:
        head = data.draw(st.sampled_from(["", "apiVersion: v1\nkind: Pod\n", "kind: List\n"]))
        comment = data.draw(st.sampled_from(["", "# Source: chart/pod.yaml\n", "\n# a\n\n"]))
        parts.append(comment + head + text if not text.startswith("---") else text)
    separator = data.draw(st.sampled_from(["---\n", "\n---\n", "--- # next\n"]))
    opening = data.draw(st.sampled_from(["", "---\n", "# generated\n", "---\n# generated\n"]))
    whole = opening + separator.join(parts)
    assert same_items(items_of("f.yaml", whole), exact_items("f.yaml", whole))


def chunk_by_chunk_items(name: str, text: str) -> list[Any]:
    """`items_of`, with rapidyaml given one document at a time instead of a batch."""
    saved = manifests_io.BATCH_DOCUMENTS
    manifests_io.BATCH_DOCUMENTS = 1
    try:
        return items_of(name, text)
    finally:
        manifests_io.BATCH_DOCUMENTS = saved


CERTAIN_VALUES = [
    *SAFE_SCALARS, "web", "nginx:1.25", "'quoted: yes'", '"x"', "[a, b]", "{a: b, c: 8080}",
    "[]", "{}", "[{name: http, port: 80}]",
]  # fmt: skip


@st.composite
def certain_documents(draw: st.DrawFn) -> str:
    """Manifest-like documents made only of what rapidyaml may read, nested a little."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(["name", "image", "app", "port", "labels", "ports"]))
        if draw(st.booleans()):
            lines.append(f"{key}: {draw(st.sampled_from(CERTAIN_VALUES))}")
            continue
        lines.append(f"{key}:")
        dash = draw(st.sampled_from(["  ", "  - ", "- "]))
        for number in range(draw(st.integers(1, 3))):
            lines.append(f"{dash}{key}{number}: {draw(st.sampled_from(CERTAIN_VALUES))}")
    return "apiVersion: v1\nkind: Pod\n" + "\n".join(lines) + "\n"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(certain_documents(), min_size=2, max_size=6), st.data())
def test_mangled_multi_document_files_read_in_batches_as_one_by_one(
    texts: list[str], data: st.DataObject
) -> None:
    """Characters inserted or removed anywhere in a whole file, separators included, so
    that a document may run on into the next: reading the file whole, or in batches, gives
    what reading each document alone gives, and what the exact readers give."""
    edits = data.draw(st.integers(0, 2))
    whole = mangled("---\n".join(texts), data, edits, [*"-:#'\"[]{},|&*!?a1.\n", "---\n", "\n  "])
    batched = items_of("f.yaml", whole)
    assert same_items(batched, chunk_by_chunk_items("f.yaml", whole))
    assert same_items(batched, exact_items("f.yaml", whole))


@pytest.mark.parametrize(
    "broken",
    ["a: [1,\n", 'a: "open\n', "a: {x: 1,\n", "a: 1\n  b: 2\n", "a: yes\n", "- a\n"],
)
def test_one_document_rapidyaml_declines_costs_its_neighbours_nothing(broken: str) -> None:
    """A document rapidyaml must not read (or cannot) sends its batch back one by one:
    the others are still read by rapidyaml, and everything matches the exact readers."""
    docs = [f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{n}}}\n" for n in range(4)]
    docs.insert(2, broken)
    text = "---\n".join(docs)
    with pytest.raises(yaml_native.Unsupported):
        yaml_native.load_all([chunk for _, chunk in _chunks(text)])
    assert same_items(items_of("f.yaml", text), exact_items("f.yaml", text))
    for _, chunk in _chunks(text):
        if chunk.removeprefix("---\n") != broken:
            assert assert_agrees(chunk)


def test_documents_that_run_into_each_other_are_refused_as_a_batch() -> None:
    """An unclosed bracket or quote would swallow the next `---`: the batch is refused,
    never read as fewer documents than it has."""
    for first in ("a: [1,\n", 'a: "x\n', "a: {x: 1,\n"):
        with pytest.raises(yaml_native.Unsupported):
            yaml_native.load_all([first, "b: 2\n", "c: 3\n"])
    assert yaml_native.load_all(["a: 1", "---\nb: 2\n"]) == [({"a": 1}, 0), ({"b": 2}, 1)]


def test_lists_keep_the_line_of_every_item() -> None:
    """A List read by rapidyaml still reports each item's own line."""
    text = (
        "# a list\napiVersion: v1\nkind: List\nitems:\n"
        "- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n"
        "-   apiVersion: v1\n    kind: Pod\n    metadata:\n      name: b\n"
    )
    assert items_of("l.yaml", text) == exact_items("l.yaml", text)
    assert [item[2] for item in items_of("l.yaml", text)] == [5, 8]


@pytest.mark.parametrize("depth", [50, 200, 3000])
def test_deep_nesting_neither_crashes_nor_changes_the_result(depth: int) -> None:
    """Deep block and flow nesting: the same result as the exact readers, no crash."""
    block = "".join(f"{'  ' * level}k{level}:\n" for level in range(depth)) + "  " * depth + "v"
    flow = "a: " + "[" * depth + "1" + "]" * depth + "\n"
    for text in (block, flow):
        assert same_items(items_of("d.yaml", text), exact_items("d.yaml", text))


def test_a_large_document_is_read_whole() -> None:
    """A document larger than the shared output buffer is written out in one piece."""
    text = "a: 1\nitems:\n" + "".join(f"- name: item-{n}\n  value: x{n}\n" for n in range(5000))
    assert assert_agrees(text)


def test_rapidyaml_messages_never_reach_standard_error(tmp_path: Path) -> None:
    """A document rapidyaml cannot parse is reported once, by Bulwark, with its line."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n labels: x\n")
    done = subprocess.run(
        [str(BULWARK), "evaluate", str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        line for line in done.stderr.splitlines() if line.startswith("bulwark evaluate: ")
    ]
    assert f"{broken}#0 (line 5): not valid YAML" in done.stderr
