"""The output formats of `bulwark evaluate`: text, JSON, JUnit XML and SARIF 2.1.0.

`json` is the contract's document, also the body of `POST /evaluate`. `text` is for a
person: one line per denial or warning, `file:line: Kind/namespace/name: policy/check:
message`, then a summary; coloured only on a terminal (and never with NO_COLOR set).
`junit` and `sarif` let CI systems show denials beside the code: one JUnit testcase per
object (a `failure` when it is denied, an `error` for a document that cannot be read), one
SARIF result per violation (`error` for deny, `warning` for warn, `note` for audit and for
other warnings) with the file and the line of the object.

Names, keys and paths come from the manifests, and the API server has not checked them yet:
text and JUnit write their control characters as escapes (`\\u001b`), so that a value can
neither break a line of the report, nor make the XML one a parser refuses, nor reach a CI
log or a terminal as an escape sequence. JSON and SARIF escape them as JSON does.

A policy in `audit` mode admits, so its violations never change the exit status; but a
team that moves a policy to audit before enforcing it wants to see what it would refuse,
as gator and the Kyverno CLI show them. Every format shows them: a JSON result's `audited`
(the shape of `violations`, present only when there are some; the webhook puts them in
`auditAnnotations`), an `audit:` line in text, a SARIF `note`, a line in the JUnit
testcase's output.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from webhook import __version__
from webhook.errors import printable

if TYPE_CHECKING:
    from webhook.evaluate import Result
    from webhook.manifests_io import Problem

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_RED, _YELLOW, _CYAN, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[36m", "\033[1m", "\033[0m"


def label(result: Result) -> str:
    """`Kind/namespace/name`, or `Kind/name` for a cluster-scoped object."""
    kind, name = result.kind, result.name or "(unnamed)"
    return f"{kind}/{result.namespace}/{name}" if result.namespace else f"{kind}/{name}"


def denial_reason(result: Result) -> str:
    """Why an object without violations was denied (a policy could not judge it)."""
    verdict = result.checked if not result.checked.allowed else result.defaulted
    return verdict.reason


def other_warnings(result: Result) -> list[str]:
    """The warnings that do not come from a policy in `warn` mode (e.g. a missing role)."""
    from_warned = {f"[{v.policy}/{v.check}] {v.message}" for v in result.checked.warned}
    return [warning for warning in result.warnings if warning not in from_warned]


def audit_lines(result: Result) -> list[str]:
    """`[policy/check] message` for each violation found under `audit` enforcement."""
    return [f"[{v.policy}/{v.check}] {v.message}" for v in result.checked.audited]


def summary(results: Iterable[Result]) -> dict[str, int]:
    counts = {"objects": 0, "allowed": 0, "denied": 0, "mutated": 0}
    for result in results:
        counts["objects"] += 1
        counts["allowed" if result.allowed else "denied"] += 1
        counts["mutated"] += bool(result.defaulted.patch)
    return counts


def json_document(results: Sequence[Result], problems: Sequence[Problem] = ()) -> dict[str, Any]:
    """The contract's JSON document for `results`; unreadable input is listed in `errors`."""
    document = {
        "results": [_json_result(result) for result in results],
        "summary": summary(results),
    }
    if problems:
        document["errors"] = [str(problem) for problem in problems]
    return document


def _json_result(result: Result) -> dict[str, Any]:
    shown = {
        "source": result.source,
        "line": result.line,
        "apiVersion": result.api_version,
        "kind": result.kind,
        "namespace": result.namespace,
        "name": result.name,
        "allowed": result.allowed,
        "violations": [violation.as_dict() for violation in result.checked.violations],
        "warnings": result.warnings,
        "patch": result.defaulted.patch,
    }
    # Only where a policy in audit mode found something: the contract's document has no
    # such key, and a result without audit findings keeps exactly the contract's shape.
    if result.checked.audited:
        shown["audited"] = [violation.as_dict() for violation in result.checked.audited]
    return shown


def dumps(document: Any, *, indent: bool = True) -> bytes:
    """JSON bytes. orjson refuses integers beyond 64 bits, which a manifest may hold and a
    patch may copy (`cpu: 99999999999999999999999`); those documents go through the stdlib."""
    options = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(document, option=options)
    except TypeError:
        import json

        if indent:
            return json.dumps(document, indent=2).encode()
        return json.dumps(document, separators=(",", ":")).encode()


def text(results: Sequence[Result], problems: Sequence[Problem], *, colour: bool) -> str:
    def paint(words: str, code: str) -> str:
        return f"{code}{words}{_RESET}" if colour else words

    lines = []
    for result in results:
        where = paint(f"{printable(result.file)}:{result.line}:", _BOLD)
        who = printable(label(result))
        for violation in result.checked.violations:
            check = paint(f"{violation.policy}/{violation.check}", _RED)
            lines.append(f"{where} {who}: {check}: {printable(violation.message)}")
        if not result.allowed and not result.checked.violations:
            reason = printable(denial_reason(result))
            lines.append(f"{where} {who}: {paint('denied', _RED)}: {reason}")
        for warning in result.warnings:
            lines.append(f"{where} {who}: {paint('warning', _YELLOW)}: {printable(warning)}")
        for line in audit_lines(result):
            lines.append(f"{where} {who}: {paint('audit', _CYAN)}: {printable(line)}")

    counts = summary(results)
    denied = f"{counts['denied']} denied"
    audited = sum(1 for result in results if result.checked.audited)
    tail = f", {audited} audited" if audited else ""
    tail += f", {len(problems)} unreadable" if problems else ""
    lines.append(
        f"{counts['objects']} objects: {counts['allowed']} admitted, "
        f"{paint(denied, _RED) if counts['denied'] else denied}, {counts['mutated']} mutated{tail}"
    )
    return "\n".join(lines) + "\n"


def junit(results: Sequence[Result], problems: Sequence[Problem]) -> str:
    import xml.etree.ElementTree as ET  # only for this format: it costs start-up time

    counts = summary(results)
    totals = {
        "tests": str(counts["objects"] + len(problems)),
        "failures": str(counts["denied"]),
        "errors": str(len(problems)),
    }
    root = ET.Element("testsuites", {"name": "bulwark evaluate", **totals})
    suite = ET.SubElement(root, "testsuite", {"name": "bulwark evaluate", **totals, "skipped": "0"})
    for result in results:
        name = printable(f"{label(result)} ({result.source})")
        case = ET.SubElement(suite, "testcase", classname=printable(result.file), name=name)
        if not result.allowed:
            found = [
                printable(f"{v.policy}/{v.check}: {v.message} (at {v.path})")
                for v in result.checked.violations
            ] or [printable(f"denied: {denial_reason(result)}")]
            message = found[0] if len(found) == 1 else f"{found[0]} (and {len(found) - 1} more)"
            failure = ET.SubElement(case, "failure", message=message, type="denied")
            failure.text = "\n".join(found)
        notes = [printable(f"warning: {warning}") for warning in result.warnings]
        notes.extend(printable(f"audit: {line}") for line in audit_lines(result))
        if notes:
            ET.SubElement(case, "system-out").text = "\n".join(notes)
    for problem in problems:
        where = {"classname": printable(problem.file), "name": printable(problem.source)}
        case = ET.SubElement(suite, "testcase", where)
        error = ET.SubElement(case, "error", message=printable(problem.message), type="unreadable")
        error.text = printable(str(problem))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _location(file: str, line: int, logical: str = "") -> dict[str, Any]:
    from urllib.parse import quote  # only for SARIF: it costs start-up time

    physical = {
        "artifactLocation": {"uri": quote(file.replace(os.sep, "/"))},
        "region": {"startLine": max(line, 1)},
    }
    location: dict[str, Any] = {"physicalLocation": physical}
    if logical:
        location["logicalLocations"] = [{"fullyQualifiedName": logical, "kind": "resource"}]
    return location


def sarif(results: Sequence[Result], problems: Sequence[Problem]) -> dict[str, Any]:
    rules: dict[str, int] = {}
    findings: list[dict[str, Any]] = []

    def add(rule: str, level: str, result: Result, message: str, path: str = "") -> None:
        index = rules.setdefault(rule, len(rules))
        where = _location(result.file, result.line, label(result))
        finding = {"ruleId": rule, "ruleIndex": index, "level": level}
        finding |= {"message": {"text": f"{label(result)}: {message}"}, "locations": [where]}
        finding["properties"] = {"source": result.source, "path": path}
        findings.append(finding)

    for result in results:
        for v in result.checked.violations:
            add(f"{v.policy}/{v.check}", "error", result, v.message, v.path)
        if not result.allowed and not result.checked.violations:
            add("bulwark/policy-error", "error", result, denial_reason(result))
        for v in result.checked.warned:
            add(f"{v.policy}/{v.check}", "warning", result, v.message, v.path)
        for v in result.checked.audited:
            add(f"{v.policy}/{v.check}", "note", result, v.message, v.path)
        for warning in other_warnings(result):
            add("bulwark/warning", "note", result, warning)

    notifications = [
        {"level": "error", "message": {"text": str(problem)}}
        | {"locations": [_location(problem.file, problem.line)]}
        for problem in problems
    ]
    driver = {
        "name": "bulwark",
        "version": __version__,
        "rules": [_rule(rule) for rule in rules],
    }
    run = {
        "tool": {"driver": driver},
        "invocations": [
            {"executionSuccessful": not problems, "toolExecutionNotifications": notifications}
        ],
        "results": findings,
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def _rule(rule: str) -> dict[str, Any]:
    policy, _, check = rule.partition("/")
    return {
        "id": rule,
        "name": check,
        "shortDescription": {"text": f"{policy}: {check}"},
        "properties": {"tags": ["security", "kubernetes", policy]},
    }


def write(
    output: str, results: Sequence[Result], problems: Sequence[Problem], stream: TextIO
) -> None:
    """Print `results` to `stream` in `output` format (text, json, junit or sarif)."""
    if output == "json":
        _write_bytes(stream, dumps(json_document(results, problems)))
    elif output == "sarif":
        _write_bytes(stream, dumps(sarif(results, problems)))
    elif output == "junit":
        stream.write(junit(results, problems))
    else:
        colour = stream.isatty() and "NO_COLOR" not in os.environ
        stream.write(text(results, problems, colour=colour))


def _write_bytes(stream: TextIO, data: bytes) -> None:
    """`data` and a line break, straight to the stream's bytes when it has them (a large
    report is then neither decoded nor encoded again), else as text."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(data.decode() + "\n")
        return
    stream.flush()
    buffer.write(data)
    buffer.write(b"\n")
