"""The `evaluate` output formats, compared with golden files for a small sample tree.

The tree in tests/data/evaluate/tree holds our own manifests: admitted, denied, mutated and
warned objects, a List, a role defined after its binding, and files that are not manifests.
After a deliberate change of wording, rewrite the golden files with

    BULWARK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_evaluate_outputs.py

and read the diff before committing it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import orjson
import pytest

from webhook.errors import printable
from webhook.evaluate import run_cli

DATA = Path(__file__).parent / "data" / "evaluate"
GOLDEN = DATA / "golden"
UPDATE = os.environ.get("BULWARK_UPDATE_GOLDEN") == "1"


def evaluate_tree(
    output: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """`bulwark evaluate --config config.yaml tree`, run from tests/data/evaluate."""
    monkeypatch.chdir(DATA)
    monkeypatch.setattr(sys, "stdin", None)
    status = run_cli(
        ["tree"], config_path="config.yaml", namespace="default", operation="CREATE", output=output
    )
    return status, capsys.readouterr().out


@pytest.mark.parametrize(
    ("output", "golden"),
    [
        pytest.param("text", "text.txt", id="text"),
        pytest.param("json", "json.json", id="json"),
        pytest.param("junit", "junit.xml", id="junit"),
        pytest.param("sarif", "sarif.json", id="sarif"),
    ],
)
def test_the_sample_tree_prints_as_the_golden_file(
    output: str,
    golden: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each format prints the sample tree exactly as its golden file shows."""
    status, printed = evaluate_tree(output, capsys, monkeypatch)
    if UPDATE:
        (GOLDEN / golden).write_text(printed)
    assert printed == (GOLDEN / golden).read_text()
    assert status == 1


def test_junit_has_a_testcase_per_object_and_a_failure_per_denial(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """JUnit: one testcase per object; the denied ones carry a failure with the messages."""
    _, printed = evaluate_tree("junit", capsys, monkeypatch)
    _, report = evaluate_tree("json", capsys, monkeypatch)
    summary = orjson.loads(report)["summary"]
    root = ET.fromstring(printed)
    cases = root.findall("./testsuite/testcase")
    failures = [case for case in cases if case.find("failure") is not None]
    assert len(cases) == summary["objects"] == int(root.get("tests", ""))
    assert len(failures) == summary["denied"] == int(root.get("failures", ""))
    assert all("pod-security/" in (case.findtext("failure") or "") for case in failures[:1])


def _rules(run: dict[str, Any]) -> list[str]:
    return [rule["id"] for rule in run["tool"]["driver"]["rules"]]


def test_sarif_results_point_at_rules_files_and_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SARIF 2.1.0: each result names a listed rule, a level, the file and the object's line."""
    _, printed = evaluate_tree("sarif", capsys, monkeypatch)
    sarif = orjson.loads(printed)
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    rules = _rules(run)
    levels = {result["ruleId"]: result["level"] for result in run["results"]}
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        (location,) = result["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"].startswith("tree/")
        assert location["physicalLocation"]["region"]["startLine"] >= 1
    assert levels["pod-security/privileged"] == "error"
    assert levels["ingress-tls/missingTLS"] == "warning"
    assert levels["bulwark/warning"] == "note"


def test_unreadable_documents_show_in_junit_and_sarif(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document that cannot be read is a JUnit error and a SARIF tool notification."""
    (tmp_path / "bad.yaml").write_text("kind: [\n")
    monkeypatch.setattr(sys, "stdin", None)
    arguments: dict[str, Any] = {"config_path": None, "namespace": "default", "operation": "CREATE"}
    assert run_cli([str(tmp_path)], output="junit", **arguments) == 2
    junit = ET.fromstring(capsys.readouterr().out)
    assert junit.find("./testsuite/testcase/error") is not None
    run_cli([str(tmp_path)], output="sarif", **arguments)
    (run,) = orjson.loads(capsys.readouterr().out)["runs"]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    assert "bad.yaml#0 (line 1)" in invocation["toolExecutionNotifications"][0]["message"]["text"]


PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers:
  - name: shell
    image: busybox
    securityContext: {privileged: true}
"""


def test_violations_under_audit_are_shown_in_every_format_and_admitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy in audit mode admits, with exit 0, yet each format shows what it found."""
    (tmp_path / "pod.yaml").write_text(PRIVILEGED_POD)
    (tmp_path / "audit.yaml").write_text("enforcement: {pod-security: audit}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", None)

    def evaluate(output: str) -> str:
        status = run_cli(
            ["pod.yaml"],
            config_path="audit.yaml",
            namespace="default",
            operation="CREATE",
            output=output,
        )
        assert status == 0
        return capsys.readouterr().out

    text = evaluate("text").splitlines()
    assert text[0].startswith("pod.yaml:1: Pod/default/debug: audit: [pod-security/privileged] ")
    assert text[-1] == "1 objects: 1 admitted, 0 denied, 1 mutated, 1 audited"

    (result,) = orjson.loads(evaluate("json"))["results"]
    assert result["allowed"] is True
    assert result["violations"] == []
    assert [(v["policy"], v["check"]) for v in result["audited"]] == [
        ("pod-security", "privileged")
    ]
    assert result["audited"][0]["path"] == "spec.containers[0].securityContext.privileged"

    (run,) = orjson.loads(evaluate("sarif"))["runs"]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("pod-security/privileged", "note")
    ]

    junit = ET.fromstring(evaluate("junit"))
    (case,) = junit.findall("./testsuite/testcase")
    assert case.find("failure") is None
    assert (case.findtext("system-out") or "").startswith("audit: [pod-security/privileged] ")


CONTROLLED_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: "web\\e[2J"}
spec:
  volumes: [{name: "data\\nforged: line", hostPath: {path: /var}}]
  containers:
  - {name: "shell\\x01", image: busybox, securityContext: {privileged: true}}
"""


def test_control_characters_from_a_manifest_are_escaped_in_text_and_junit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name with ESC or a line break neither splits a text line, nor reaches the
    terminal as an escape sequence, nor makes JUnit XML that a parser refuses."""
    (tmp_path / "pod.yaml").write_text(CONTROLLED_POD)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", None)
    arguments: dict[str, Any] = {"config_path": None, "namespace": "default", "operation": "CREATE"}

    assert run_cli(["pod.yaml"], output="text", **arguments) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # two violations and the summary
    assert all("\x1b" not in line and "\x01" not in line for line in lines)
    assert lines[0].startswith("pod.yaml:1: Pod/default/web\\u001b[2J: pod-security/privileged: ")
    assert 'container "shell\\u0001"' in lines[0]
    assert 'volume "data\\u000aforged: line"' in lines[1]

    assert run_cli(["pod.yaml"], output="junit", **arguments) == 1
    junit = ET.fromstring(capsys.readouterr().out)
    (case,) = junit.findall("./testsuite/testcase")
    assert case.get("name") == "Pod/default/web\\u001b[2J (pod.yaml#0)"
    assert 'container "shell\\u0001"' in (case.findtext("failure") or "")


def test_a_reader_that_stops_early_gets_no_traceback_and_the_verdict_stands(
    tmp_path: Path,
) -> None:
    """`bulwark evaluate tree | head -1`: the pipe closes before the report is written; the
    command exits with the verdict's status (1: something is denied) and says nothing."""
    pods = "---\n".join(PRIVILEGED_POD.replace("debug", f"debug-{n}") for n in range(3000))
    (tmp_path / "pods.yaml").write_text(pods)
    command = [str(Path(sys.executable).with_name("bulwark")), "evaluate", "-o", "json"]
    with subprocess.Popen(
        [*command, str(tmp_path / "pods.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.read(1) == b"{"
        process.stdout.close()  # the reader goes away with most of the report unread
        errors = process.stderr.read().decode()
        status = process.wait(timeout=60)
    assert errors == ""
    assert status == 1


@pytest.mark.parametrize(
    "character", ["\x00", "\x1b", "\n", "\x85", "\u2028", "\u2029", "\u202e", "\u2066", "\u200b"]
)
def test_line_breaks_and_direction_marks_are_escaped_too(character: str) -> None:
    """Unicode's line separators split a line for some readers, and its direction marks
    make text read otherwise than it is ("Trojan Source"): both are written as escapes."""
    shown = printable(f"web{character}evil")
    assert shown == f"web\\u{ord(character):04x}evil"
    assert len(shown.splitlines()) == 1
