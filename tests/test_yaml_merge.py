"""Merge keys (`<<`) are read as the YAML merge type defines them, whatever PyYAML's release.

The mapping's own keys win over merged ones; of the merged mappings, the earlier wins
(https://yaml.org/type/merge.html, and the Go reader behind kubectl). PyYAML 6.0.4 lets the
later win for keys longer than one character, which admitted a privileged pod.
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


def test_the_earlier_merged_mapping_wins_so_the_pod_is_privileged_and_denied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pod above runs privileged in a cluster; evaluate must deny it."""
    (tmp_path / "pod.yaml").write_text(PRIVILEGED_THEN_NOT)
    status = run_cli(
        [str(tmp_path / "pod.yaml")],
        config_path=None,
        namespace="default",
        operation="CREATE",
        output="text",
    )
    assert status == 1
    assert "pod-security/privileged" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: &a {kk: 1}\nb: &b {kk: 2}\nr: {<<: [*a, *b]}", {"kk": 1}, id="earlier-wins"
        ),
        pytest.param(
            "a: &a {kk: 1, xx: 1}\nr: {xx: own, <<: *a}", {"kk": 1, "xx": "own"}, id="own-wins"
        ),
        pytest.param(
            "a: &a {kk: 1}\nb: &b {<<: *a, kk: 2, mm: 3}\nr: {<<: [*b, *a]}",
            {"kk": 2, "mm": 3},
            id="a-merged-mapping-keeps-its-own-keys-first",
        ),
        pytest.param("r: {aa: 1, aa: 2, <<: {aa: 3, bb: 4}}", {"aa": 2, "bb": 4}, id="own-twice"),
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
        pytest.param("r: {<<: [1]}", "found a scalar", id="a-scalar"),
        pytest.param("r: {<<: [[a]]}", "found a list", id="a-list"),
    ],
)
def test_a_merge_of_anything_but_other_mappings_is_refused(text: str, problem: str) -> None:
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
