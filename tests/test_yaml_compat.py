"""The exact YAML readers read a manifest as kubectl does, where PyYAML alone would not.

- `y`, `Y`, `n` and `N` are booleans, as go-yaml reads them (`privileged: y` is true).
- Merge keys (`<<`): where kubectl's reader (go-yaml v2, keys set in the order written)
  and the YAML merge type (the mapping's own keys win, then the earlier merged mapping)
  agree, the mapping reads so whatever PyYAML's release (6.0.4 let the later of
  `<<: [*a, *b]` win, which admitted a privileged pod); where they disagree, the document
  is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from webhook.config import load_settings
from webhook.errors import ConfigError
from webhook.evaluate import run_cli
from webhook.manifests_io import _loader
from webhook.yaml_compat import ReadApart

PRIVILEGED_THEN_NOT = """\
apiVersion: v1
kind: Pod
metadata: {name: merged}
x-contexts:
  privileged: &privileged {privileged: true}
  unprivileged: &unprivileged {privileged: false}
spec:
  containers:
  - name: shell
    image: busybox
    securityContext:
      <<: [*privileged, *unprivileged]
"""


def load(text: str) -> Any:
    return yaml.load(text, Loader=_loader())  # a SafeLoader subclass


def evaluate_text(folder: Path, text: str) -> int:
    """`bulwark evaluate FOLDER/pod.yaml` holding `text`, in-process; its exit status."""
    (folder / "pod.yaml").write_text(text)
    return run_cli(
        [str(folder / "pod.yaml")],
        config_path=None,
        namespace="default",
        operation="CREATE",
        output="text",
    )


def test_the_earlier_merged_mapping_wins_so_the_pod_is_privileged_and_denied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pod above runs privileged in a cluster; evaluate must deny it."""
    assert evaluate_text(tmp_path, PRIVILEGED_THEN_NOT) == 1
    assert "pod-security/privileged" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: &a {kk: 1}\nb: &b {kk: 2}\nr: {<<: [*a, *b]}", {"kk": 1}, id="earlier-wins"
        ),
        pytest.param(
            "a: &a {kk: 1, xx: 1}\nr: {<<: *a, xx: own}", {"kk": 1, "xx": "own"}, id="own-wins"
        ),
        pytest.param(
            "a: &a {kk: 1}\nb: &b {<<: *a, kk: 2, mm: 3}\nr: {<<: [*b, *a]}",
            {"kk": 2, "mm": 3},
            id="a-merged-mapping-keeps-its-own-keys-first",
        ),
        pytest.param("r: {<<: {aa: 3, bb: 4}, aa: 1, aa: 2}", {"aa": 2, "bb": 4}, id="own-twice"),
        pytest.param(
            "a: &a {kk: 1}\nr: {kk: 1, <<: *a}", {"kk": 1}, id="own-then-the-same-value-merged"
        ),
        pytest.param("r: {<<: {aa: 1, aa: 2}}", {"aa": 2}, id="merged-twice"),
        pytest.param("r: {<<: {'1': a, 1: b}}", {"1": "a", 1: "b"}, id="text-and-number"),
        pytest.param("r: {<<: {=: 1}}", {"=": 1}, id="value-key"),
    ],
)
def test_merge_precedence_follows_the_merge_type(text: str, expected: dict[str, Any]) -> None:
    assert load(text)["r"] == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("r: &r {<<: *r}", "merges the mapping it is in", id="itself"),
        pytest.param(
            "a: &a {privileged: true}\nr: {privileged: false, <<: *a}",
            "give 'privileged' two values",
            id="own-then-merged",
        ),
        pytest.param(
            "a: &a {kk: 1}\nb: &b {kk: 2}\nr: {<<: *a, <<: *b}",
            "give 'kk' two values",
            id="two-merge-keys",
        ),
        pytest.param(
            "a: &a {kk: 1}\nb: &b {kk: 2, <<: *a}\nr: {<<: *b}",
            "give 'kk' two values",
            id="in-a-merged-mapping",
        ),
        pytest.param("r: {<<: [1]}", "found a scalar", id="a-scalar"),
        pytest.param("r: {<<: [[a]]}", "found a list", id="a-list"),
    ],
)
def test_merges_readers_read_apart_and_merges_of_non_mappings_are_refused(
    text: str, problem: str
) -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match=problem):
        load(text)


def test_mappings_merging_mappings_keep_one_pair_per_key() -> None:
    """Each level merges the one below twice: 2**15 copies of the first mapping's key
    would reach the top, and one does."""
    lines = ["a0: &a0 {k0: 1}"]
    lines += [f"a{k}: &a{k} {{<<: [*a{k - 1}, *a{k - 1}], k{k}: 1}}" for k in range(1, 16)]
    loader = _loader()("\n".join(lines))
    try:
        document = loader.get_single_node()
        assert loader.construct_document(document)["a15"] == {f"k{k}": 1 for k in range(16)}
        top = document.value[-1][1]
        assert len(top.value) == 16
    finally:
        loader.dispose()


def test_a_configuration_file_merges_alike(tmp_path: Path) -> None:
    """The configuration loader, which refuses a key given twice, merges the same way."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "mutation:\n"
        "  defaults: &base\n"
        "    requests: {cpu: 100m, memory: 128Mi}\n"
        "    limits: {cpu: 500m, memory: 512Mi}\n"
        "  namespaces:\n"
        "    team-a:\n"
        "      defaults:\n"
        "        <<: [{requests: {cpu: 200m, memory: 256Mi}}, *base]\n"
    )
    defaults = load_settings(str(path)).mutation.defaults_for("team-a")
    assert (defaults.requests.cpu, defaults.limits.cpu) == ("200m", "500m")
    path.write_text("podSecurity: {<<: [1]}\n")
    with pytest.raises(ConfigError, match="mapping or a list of mappings"):
        load_settings(str(path))


# Flat mappings of a few multi-character keys (one-character ones hid PyYAML's bug).
_KEYS = st.sampled_from(["kk", "name", "image", "privileged", "cpu"])
_MAPPINGS = st.dictionaries(_KEYS, st.integers(0, 9), max_size=4)


def _merged_by_the_book(own: dict[str, int], merged: list[dict[str, int]]) -> dict[str, int]:
    """The merge type's rule on plain data: later mappings first, so that earlier ones and
    then the mapping's own keys overwrite them."""
    result: dict[str, int] = {}
    for mapping in reversed(merged):
        result.update(mapping)
    result.update(own)
    return result


def _flow(mapping: dict[str, int]) -> str:
    return "{" + ", ".join(f"{key}: {value}" for key, value in mapping.items()) + "}"


@given(
    anchors=st.lists(_MAPPINGS, min_size=1, max_size=4),
    picks=st.lists(st.integers(0, 3), min_size=1, max_size=5),
    own=_MAPPINGS,
)
def test_any_merge_of_flat_mappings_reads_as_the_merge_type_says(
    anchors: list[dict[str, int]], picks: list[int], own: dict[str, int]
) -> None:
    chosen = [index % len(anchors) for index in picks]
    lines = [f"m{index}: &m{index} {_flow(mapping)}" for index, mapping in enumerate(anchors)]
    aliases = ", ".join(f"*m{index}" for index in chosen)
    lines.append(f"r: {{<<: [{aliases}]{''.join(f', {k}: {v}' for k, v in own.items())}}}")
    expected = _merged_by_the_book(own, [anchors[index] for index in chosen])
    assert load("\n".join(lines))["r"] == expected


_PIECES = st.lists(
    st.one_of(
        st.tuples(st.just("own"), _KEYS, st.integers(0, 9)),
        st.tuples(st.just("merge"), st.lists(st.integers(0, 3), min_size=1, max_size=3)),
    ),
    min_size=1,
    max_size=6,
)


@given(anchors=st.lists(_MAPPINGS, min_size=1, max_size=4), pieces=_PIECES)
def test_merge_keys_anywhere_read_as_both_readers_agree_or_are_refused(
    anchors: list[dict[str, int]], pieces: list[Any]
) -> None:
    """`<<` keys and own keys in any order: kubectl's reading (each key set in the order
    written; of one `<<: [...]`, the earlier mapping last) and the merge type's (own keys,
    the last of a key given twice; then the merged mappings, the earliest first) are
    worked out here on plain data; the loader gives their value when they agree, and
    refuses the document when they do not."""
    written, own, merged = {}, {}, []
    entries = []
    for piece in pieces:
        if piece[0] == "own":
            _, key, value = piece
            written[key] = value
            own[key] = value
            entries.append(f"{key}: {value}")
        else:
            chosen = [anchors[index % len(anchors)] for index in piece[1]]
            for mapping in reversed(chosen):
                written.update(mapping)
            merged.extend(chosen)
            aliases = ", ".join(f"*m{index % len(anchors)}" for index in piece[1])
            entries.append(f"<<: [{aliases}]")
    lines = [f"m{index}: &m{index} {_flow(mapping)}" for index, mapping in enumerate(anchors)]
    lines.append("r: {" + ", ".join(entries) + "}")
    text = "\n".join(lines)
    if written == _merged_by_the_book(own, merged):
        assert load(text)["r"] == written
    else:
        with pytest.raises(yaml.constructor.ConstructorError, match="two values"):
            load(text)


@pytest.mark.parametrize(
    ("field", "spelling"),
    [("privileged", "y"), ("privileged", "Y"), ("hostPID", "y"), ("hostNetwork", "Y")],
)
def test_one_letter_yes_is_true_as_kubectl_reads_it_so_the_pod_is_denied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, spelling: str
) -> None:
    where = "    securityContext: {privileged: %s}\n" if field == "privileged" else ""
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n"
        + (f"  {field}: {spelling}\n" if field != "privileged" else "")
        + "  containers:\n  - name: c\n    image: x\n"
        + (where % spelling if where else "")
    )
    assert evaluate_text(tmp_path, pod) == 1, pod
    assert "pod-security/" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: y", True),
        ("a: N", False),
        ("a: !!bool y", True),
        ("a: [y, n]", [True, False]),
        ('a: "y"', "y"),
        ("a: yes", True),
        ("a: nginx", "nginx"),
    ],
)
def test_one_letter_booleans_in_every_reader(text: str, expected: Any) -> None:
    """The libyaml loader, and the subset reader the fast path falls back to, agree."""
    from webhook import yaml_subset

    assert load(text)["a"] == expected
    if "!!" not in text:  # the subset reader leaves tags to libyaml
        assert yaml_subset.load(text + "\n")[0]["a"] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # What go-yaml v2 reads as numbers and PyYAML as strings (values from Go's strconv).
        ("0e0", 0.0),
        (".0e0", 0.0),
        ("0o0", 0),
        ("+_0_", 0),
        ("-._0_", -0.0),
        ("0o755", 493),
        ("09", 9.0),
        ("1e3", 1000.0),
        ("1.e2", 100.0),
        ("-0o1_0", -8),
        # What both read alike.
        ("0755", 493),
        ("0x1F", 31),
        ("1_000", 1000),
        ("0b101", 5),
        ("+3", 3),
        ("1.5", 1.5),
        ("9223372036854775808", 9223372036854775808),  # ParseUint takes it
        ("-9223372036854775809", -9.223372036854776e18),  # past int64: go-yaml's float
        # What go-yaml reads as strings and PyYAML as numbers, or refuses.
        ("1:20", "1:20"),
        ("+8:30", "+8:30"),
        ("1e999", "1e999"),
        (".5e999", ".5e999"),
        ("9" * 5000, "9" * 5000),
        ("0x" + "1" + "0" * 16, "0x1" + "0" * 16),
        ("._5", "._5"),
        # Neither reads these as numbers.
        ("100m", "100m"),
        ("1.5Gi", "1.5Gi"),
    ],
)
def test_plain_numbers_read_as_go_yaml_reads_them(text: str, expected: Any) -> None:
    from webhook import yaml_subset

    for value in (load(f"a: {text}")["a"], yaml_subset.load(f"a: {text}\n")[0]["a"]):
        assert value == expected
        assert type(value) is type(expected)


@pytest.mark.parametrize("zero", ["0e0", "-_0", "-._0", "0o0"])
def test_run_as_user_zero_in_any_spelling_is_root_so_a_restricted_pod_is_denied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], zero: str
) -> None:
    """kubectl sends `runAsUser: 0e0` (or `-_0`, ...) as 0: the container runs as root."""
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n"
        f"  securityContext: {{runAsNonRoot: true, runAsUser: {zero}, seccompProfile: "
        "{type: RuntimeDefault}}\n"
        "  containers:\n  - name: c\n    image: x\n    securityContext:\n"
        "      allowPrivilegeEscalation: false\n      capabilities: {drop: [ALL]}\n"
    )
    (tmp_path / "restricted.yaml").write_text("podSecurity: {defaultLevel: restricted}\n")
    (tmp_path / "pod.yaml").write_text(pod)
    status = run_cli(
        [str(tmp_path / "pod.yaml")],
        config_path=str(tmp_path / "restricted.yaml"),
        namespace="default",
        operation="CREATE",
        output="text",
    )
    assert status == 1
    assert "pod-security/runAsUser" in capsys.readouterr().out


def test_evaluate_refuses_a_merge_read_apart_naming_the_line_and_the_way_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Valid YAML, but kubectl would run the container privileged and the merge type
    would not: exit 2, with the mapping's line and how to write it."""
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: m}\nx-a: &a {privileged: true}\nspec:\n"
        "  containers:\n  - name: c\n    image: x\n    securityContext:\n"
        "      privileged: false\n      <<: *a\n"
    )
    assert evaluate_text(tmp_path, pod) == 2
    error = capsys.readouterr().err
    assert "pod.yaml#0 (line 10): refused: the merge keys (<<) here give 'privileged'" in error
    assert "write the merge key first and only once" in error


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        ("  !!binary aG9zdE5ldHdvcms=: true\n", "hostNamespaces"),  # the key hostNetwork
        ("  containers:\n  - name: c\n    image: x\n    securityContext:\n"
         "      ? !!binary cHJpdmlsZWdlZA==\n      : true\n", "privileged"),
        ("  containers:\n  - name: c\n    image: x\n"
         "    securityContext: !!set {privileged: true}\n", "privileged"),
        ("  containers:\n  - name: c\n    image: x\n"
         "    securityContext: !custom {privileged: true}\n", "privileged"),
        ("  containers: !!omap\n  - c: {}\n  initContainers:\n  - name: c\n    image: x\n"
         "    securityContext: {privileged: true}\n", "privileged"),
    ],
)  # fmt: skip
def test_tags_kubectl_reads_through_hide_no_violation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, check: str
) -> None:
    """go-yaml v2 reads a tagged mapping as a mapping and `!!binary` as its decoded text:
    kubectl sends these pods privileged, so they are denied here too."""
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n" + spec
    if "containers" not in spec:
        pod += "  containers:\n  - name: c\n    image: x\n"
    assert evaluate_text(tmp_path, pod) == 1, pod
    assert f"pod-security/{check}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # As go-yaml v2 reads them (k8s.io/apimachinery's YAMLOrJSONDecoder, then JSON).
        ("a: !!set {x, z}", {"x": None, "z": None}),
        ("a: !!omap [{x: 1}, {z: 2}]", [{"x": 1}, {"z": 2}]),
        ("a: !!pairs [{x: 1}]", [{"x": 1}]),
        ("a: !anything {x: 1}", {"x": 1}),
        ("a: !anything [1]", [1]),
        ("a: !!binary dHJ1ZQ==", "true"),
        ("a: !!binary /w==", "\ufffd"),  # not UTF-8: Go's JSON writes U+FFFD
        ("a: !foo true", "true"),
        ("a: !!python/str x", "x"),
        ("a: !!int 0o10", 8),
    ],
)
def test_tags_read_as_go_yaml_reads_them(text: str, expected: Any) -> None:
    value = load(text)["a"]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("value", ["aGk", '"cHJp\\n  dmlsZWdlZA=="', "a b"])
def test_binary_that_go_cannot_decode_is_not_valid_yaml(tmp_path: Path, value: str) -> None:
    with pytest.raises(yaml.constructor.ConstructorError, match="!!binary value that is not"):
        load(f"a: !!binary {value}")


def test_the_configuration_file_keeps_pyyaml_tags(tmp_path: Path) -> None:
    """Bulwark's own file is not kubectl's to read: an unknown tag stays an error there."""
    config = tmp_path / "config.yaml"
    config.write_text("podSecurity: !custom {defaultLevel: baseline}\n")
    with pytest.raises(ConfigError):
        load_settings(str(config))


POD_HEAD = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("\ufeff" + POD_HEAD + "  hostPID: true\n", None),  # the one kubectl drops
        ("\ufeff\ufeff\ufeff" + POD_HEAD.replace("\n", "\n ") + "\nxhostPID: true}\n", 1),
        ("\ufeff\ufeff" + POD_HEAD + "  sspec: {hostPID: true}\n", 1),
        (POD_HEAD + "  \ufeffhostPID: true\n", 5),
        (POD_HEAD + '  hostname: "a\ufeffb"\n', 5),
    ],
)
def test_a_byte_order_mark_past_the_start_is_refused_where_go_yaml_misreads_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int | None
) -> None:
    """go-yaml v2, meeting a byte-order mark at its buffer's start, drops the first
    character of the lines after it: `xhostPID: true` reaches the cluster as `hostPID`."""
    status = evaluate_text(tmp_path, text + "  containers: [{name: c, image: x}]\n")
    err = capsys.readouterr().err
    if line is None:
        assert status == 1  # read, and hostPID denied
        return
    assert status == 2
    assert f"pod.yaml (line {line}): refused: a byte-order mark (U+FEFF)" in err


@pytest.mark.parametrize(
    "value", ["! null", "!<!> null", "! ~", "! 'null'", "&h ! null", "! true", "! {a: b}"]
)
def test_a_value_tagged_with_a_bare_exclamation_mark_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    """go-yaml reads `host: ! null` as the text "null" (a probe on another host), libyaml
    as null (no host): the document is refused, naming the line."""
    pod = (
        POD_HEAD + "  containers:\n  - name: c\n    image: x\n    livenessProbe:\n"
        f"      httpGet:\n        port: 80\n        host: {value}\n"
    )
    assert evaluate_text(tmp_path, pod) == 2
    assert "pod.yaml#0 (line 11): refused: the tag ! alone" in capsys.readouterr().err


@pytest.mark.parametrize("value", ['"wow ! great"', "wow ! great", "'!'", "a!b"])
def test_an_exclamation_mark_inside_a_value_is_only_text(value: str) -> None:
    assert load(f"a: {value}")["a"] == value.strip("'\"")


def test_a_merge_tag_on_another_key_is_that_key_as_go_yaml_reads_it() -> None:
    assert load("a: {!!merge foo: {hostPID: true}}")["a"] == {"foo": {"hostPID": True}}


def test_an_alias_of_a_merge_key_is_refused() -> None:
    """go-yaml reads `*m :` as the key "<<"; PyYAML would merge through it."""
    text = "a: {&m <<: {x: 1}}\nb: {*m : {hostPID: true}}\n"
    with pytest.raises(ReadApart, match="an alias of a merge key"):
        load(text)
