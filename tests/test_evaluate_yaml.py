"""The fast YAML reader never disagrees with PyYAML: it gives the same value or gives up."""

from __future__ import annotations

import datetime
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook import yaml_subset
from webhook.manifests_io import Document, _loader, read_yaml
from webhook.yaml_declined import UNSUPPORTED_CHARACTERS

# The exact reader the fast paths are held to: libyaml, reading as kubectl does where
# PyYAML would not (webhook.yaml_compat).
EXACT = _loader()

SCALARS = [
    "a", "web-1", "yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "~", "0",
    "010", "0o17", "0x1F", "0b101", "1_000", "1:30", "-1:30", "1.5", "1e3", "1.0e+3",
    ".inf", "-.Inf", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "a b", "a  b", "a#b",
    "a #b", "http://x:80/y", "nginx:1.25", "::1", "-a", "--port", "-", "?", "?a", ":a",
    "a:", "a: b", "'q'", "'it''s'", "'a' #c", "'a'#c", '"dq"', '"a\\nb"', "'", '"', "[a, b]",
    "[]", "{}", "{a: 1, b: [x, y]}", "{a: }", "{a: , b: 2}", "[a, , b]", "[a: 1]", "{a}",
    "{a:1}", '{"a": 1}', '{"a":1}', "[a, [b, {c: d}]]", "[a]x", "[a] # c", "&x a", "*x",
    "!!str 1", "@a", "`a", "%a", "<<", "=", "!", ",a", "a,b", "é", "a\"b", "a'b", "0755",
    "+1", "-0", "1.", ".5", "1e", "Null", "NULL", "nulls", "[yes, no, ~]", "{on: off}",
    "{image: a:1}", "[-1, -a]", "[- a]", "[?a]", "[a, ]", "[a ,b]", "{a: 1 , b: 2}",
]  # fmt: skip
KEYS = [
    "a", "b", "name", "on", "1", "'k'", '"k"', "k k", "a:b", "-k", "?k", "<<", "yes",
    "example.com/x", "~", "1.5", "'it''s'", "a#b", "[k]", "{k}", "k ",
]  # fmt: skip
BLOCK_LINES = ["x", "  more", "", "# not a comment", "y: z", "- item", "   ", "a  b"]


def same(expected: Any, actual: Any) -> bool:
    """Equal, with types compared too (True is not 1, 1 is not 1.0) and NaN equal to NaN."""
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, dict):
        return list(expected) == list(actual) and all(
            same(key, other) and same(expected[key], actual[other])
            for key, other in zip(expected, actual, strict=True)
        )
    if isinstance(expected, list):
        return len(expected) == len(actual) and all(
            same(a, b) for a, b in zip(expected, actual, strict=True)
        )
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(actual)
    return bool(expected == actual)


def assert_agrees(text: str) -> bool:
    """The fast reader gives PyYAML's value for `text` or gives up; True when it read it."""
    try:
        expected = list(yaml.load_all(text, Loader=EXACT))
    except yaml.YAMLError:
        expected = None
    try:
        value, _ = yaml_subset.load(text)
    except yaml_subset.Unsupported:
        return False
    assert expected is not None, f"fast path read text PyYAML refuses: {text!r}"
    if value is None and not expected:
        return True  # no document at all, which the caller skips like an empty one
    assert len(expected) == 1, text
    assert same(expected[0], value), f"{text!r}: PyYAML {expected[0]!r}, fast {value!r}"
    return True


def _block(draw: st.DrawFn, indent: int, depth: int) -> list[str]:
    pad = " " * indent
    kind = draw(st.sampled_from(["map", "seq", "map"] if depth < 3 else ["map"]))
    lines: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 9)) == 0:
            lines.append(pad + draw(st.sampled_from(["# comment", "", "  # indented comment"])))
        head = f"{pad}{draw(st.sampled_from(KEYS))}:" if kind == "map" else f"{pad}-"
        lines.extend(_value(draw, head, indent, depth, compact=kind == "seq"))
    return lines


def _value(draw: st.DrawFn, head: str, indent: int, depth: int, *, compact: bool) -> list[str]:
    style = draw(st.sampled_from(["scalar", "scalar", "nested", "block", "compact", "empty"]))
    if style == "scalar" or (depth >= 3 and style in ("nested", "compact")):
        return [f"{head} {draw(st.sampled_from(SCALARS))}"]
    if style == "empty":
        return [head + draw(st.sampled_from(["", " # c", "  "]))]
    if style == "block":
        header = draw(st.sampled_from(["|", "|-", "|+", ">", ">-", ">+", "|2", "| # c"]))
        step = draw(st.sampled_from([1, 2, 4]))
        body = draw(st.lists(st.sampled_from(BLOCK_LINES), min_size=0, max_size=4))
        return [f"{head} {header}"] + [(" " * (indent + step) + b) if b else b for b in body]
    if style == "compact" and compact:
        inner = _block(draw, indent + 2, depth + 1)
        return [head + " " + inner[0].lstrip(" "), *inner[1:]]
    step = draw(st.sampled_from([0, 2, 2, 3])) if not compact else draw(st.sampled_from([2, 1]))
    return [head, *_block(draw, indent + step, depth + 1)]


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines = _block(draw, 0, 0)
    if draw(st.booleans()):
        lines.insert(0, draw(st.sampled_from(["---", "--- # c", "# head"])))
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_generated_documents_read_as_pyyaml_reads_them(text: str) -> None:
    """Random block-style documents: the fast reader agrees with PyYAML or gives up."""
    assert_agrees(text)


@settings(max_examples=400, deadline=None)
@given(documents(), st.data())
def test_mangled_documents_read_as_pyyaml_reads_them(text: str, data: st.DataObject) -> None:
    """Documents with characters inserted or removed anywhere: same value, or give up."""
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()) and where < len(text):
            text = text[:where] + text[where + 1 :]
        else:
            text = (
                text[:where]
                + data.draw(st.sampled_from(list(" -:#'\"[]{},|>&*!?a\n")))
                + text[where:]
            )
    assert_agrees(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: 1\nb:\n- x\n- y: 2\n  z: [3]\n", id="indentless-sequence"),
        pytest.param("a:\n  - - x\n    - y\n  -   k: v\n      l: w\n", id="compact-nesting"),
        pytest.param("s: |\n  one\n\n  two\n\nt: 1\n", id="literal-with-blank-lines"),
        pytest.param("s: >-\n  one\n  two\n\n  three\n", id="folded-strip"),
        pytest.param("s: |+\n  keep\n\n", id="literal-keep"),
        pytest.param("--- # head\na: 'x' # c\nb: \"y\"\n", id="document-marker"),
        pytest.param("a: {b: [1, 2.5, yes, ~], 'c': 'd'}\n", id="flow"),
        pytest.param("when: 2001-12-14\nmode: 0644\nratio: 1:30\n", id="yaml-1.1-scalars"),
    ],
)
def test_common_manifest_shapes_take_the_fast_path(text: str) -> None:
    """The shapes manifests are written in are read by the fast path, not handed on."""
    assert assert_agrees(text)


@pytest.mark.parametrize("text", ["a: [a:?]\n", "a: [x, a:?b]\n", "a: {k: a:?b}\n"])
def test_a_colon_before_a_question_mark_in_a_flow_is_left_to_libyaml(text: str) -> None:
    """libyaml ends a plain scalar at `:` followed by `?` inside a flow collection, and
    then refuses the document; the fast path must not read it as a string."""
    with pytest.raises(yaml.YAMLError):
        yaml.load(text, Loader=EXACT)
    with pytest.raises(yaml_subset.Unsupported):
        yaml_subset.load(text)


@pytest.mark.parametrize(
    ("template", "around"),
    [
        pytest.param("{key}: v\n", 0, id="plain"),
        pytest.param('"{key}": v\n', 2, id="double-quoted"),
        pytest.param("a:\n- {key}: v\n", 0, id="in-a-sequence-item"),
        pytest.param("a: {{{key}: v}}\n", 0, id="in-a-flow-mapping"),
        pytest.param('a: {{"{key}"  : v}}\n', 4, id="quoted-and-spaced-in-a-flow-mapping"),
    ],
)
def test_a_key_longer_than_libyaml_allows_is_left_to_it(template: str, around: int) -> None:
    """libyaml refuses a key whose `:` stands more than 1024 characters after its start
    (quotes and spaces count); the fast path must not read one, and reads a shorter one."""
    too_long = template.format(key="k" * (1025 - around))
    with pytest.raises(yaml.YAMLError):
        yaml.load(too_long, Loader=EXACT)
    with pytest.raises(yaml_subset.Unsupported):
        yaml_subset.load(too_long)
    assert assert_agrees(template.format(key="k" * (1024 - around)))


def _fixture_files(shared: Path) -> list[Path]:
    psa = shared / "fixtures/pod-security-admission/test/testdata"
    files = sorted(psa.glob("*/v1.37/*/*.yaml"))
    files += sorted((shared / "fixtures/gatekeeper-library").rglob("*.yaml"))
    return files


def test_public_fixtures_read_as_pyyaml_reads_them(shared_dir: Path) -> None:
    """Every public fixture file gives PyYAML's documents, whichever path reads them."""
    fast = 0
    for path in _fixture_files(shared_dir):
        text = path.read_text()
        try:
            expected = [doc for doc in yaml.load_all(text, Loader=EXACT) if isinstance(doc, dict)]
        except yaml.YAMLError:
            continue
        read = [item.body for item in read_yaml(str(path), text) if isinstance(item, Document)]
        wanted = [
            doc for doc in expected if isinstance(doc.get("apiVersion"), str) and doc.get("kind")
        ]
        if not any(str(d.get("kind")).endswith("List") for d in wanted):
            assert all(same(a, b) for a, b in zip(wanted, read, strict=True)), path
        fast += sum(1 for _ in text.split("\n---"))
    assert fast > 100


def test_timestamps_and_integers_keep_pyyaml_types() -> None:
    """YAML 1.1 scalars become the same Python types as with PyYAML."""
    value, _ = yaml_subset.load("d: 2001-12-14\nx: 0x10\nb: on\n")
    assert value == {"d": datetime.date(2001, 12, 14), "x": 16, "b": True}


def test_the_characters_left_to_libyaml_are_exactly_the_unprintable_ones() -> None:
    """Every code point: the pattern finds those YAML does not print (tabs, carriage
    returns, NEL, LS, PS, the byte-order mark, surrogates, controls), and no other."""

    def printable(code: int) -> bool:
        return (
            code == 0x0A
            or 0x20 <= code <= 0x7E
            or 0xA0 <= code <= 0x2027
            or 0x202A <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFEFE
            or 0xFF00 <= code <= 0xFFFD
            or code >= 0x10000
        )

    every = "".join(map(chr, range(0x110000)))
    found = [match.start() for match in UNSUPPORTED_CHARACTERS.finditer(every)]
    assert found == [code for code in range(0x110000) if not printable(code)]


def test_evaluate_loads_pyyaml_and_pydantic_only_when_needed(tmp_path: Path) -> None:
    """A tree rapidyaml reads whole is judged without PyYAML or pydantic (most of the
    start-up): one document rapidyaml declines brings in PyYAML, a configuration file both."""
    plain = tmp_path / "plain.yaml"
    plain.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n")
    declined = tmp_path / "declined.yaml"
    declined.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {on: yes}}\n")
    probe = (
        "import sys\n"
        "from webhook.cli import main\n"
        "try:\n"
        "    main(['evaluate', '--output', 'json', *sys.argv[1:]])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(*sorted({'yaml', 'pydantic'} & set(sys.modules)), file=sys.stderr)\n"
    )

    config = tmp_path / "bulwark.yaml"
    config.write_text("podSecurity: {defaultLevel: baseline}\n")

    def loaded(*arguments: str | Path) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", probe, *map(str, arguments)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stderr.splitlines()[-1].split()

    assert loaded(plain) == []
    assert loaded(plain, declined) == ["yaml"]
    assert loaded("--config", config, plain) == ["pydantic", "yaml"]
