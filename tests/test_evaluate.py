"""`bulwark evaluate` and `POST /evaluate`: inputs, requests, roles, outputs and bad input."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml

from webhook import evaluate as evaluation
from webhook import manifests_io
from webhook.app import ServerState, create_app
from webhook.config import Settings
from webhook.errors import BulwarkError
from webhook.evaluate import admission_request, resource_for, run_cli
from webhook.review import AdmissionRequest
from webhook.verdict import Verdict

BULWARK = Path(sys.executable).with_name("bulwark")

POD = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers:
  - name: app
    image: registry.example/app:1
"""
PRIVILEGED = POD + "    securityContext: {{privileged: true}}\n"
WILDCARD_ROLE = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: do-anything}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
"""
BINDING = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ops}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: do-anything}
subjects:
- {kind: User, apiGroup: rbac.authorization.k8s.io, name: ops-1}
"""


@dataclass
class Outcome:
    status: int
    out: str
    err: str

    @property
    def report(self) -> dict[str, Any]:
        return dict(orjson.loads(self.out))

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.report["results"])

    @property
    def sources(self) -> list[str]:
        return [result["source"] for result in self.results]


Evaluate = Callable[..., Outcome]


class _Stdin(io.TextIOWrapper):
    def __init__(self, data: bytes, *, tty: bool = False) -> None:
        super().__init__(io.BytesIO(data))
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def evaluate(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Evaluate:
    """Run `bulwark evaluate` in-process; JSON output unless told otherwise."""

    def run(
        *paths: str | Path,
        stdin: bytes = b"",
        output: str = "json",
        namespace: str = "default",
        operation: str = "CREATE",
        config: str | None = None,
    ) -> Outcome:
        monkeypatch.setattr(sys, "stdin", _Stdin(stdin))
        status = run_cli(
            [str(path) for path in paths],
            config_path=config,
            namespace=namespace,
            operation=operation,
            output=output,
        )
        captured = capsys.readouterr()
        return Outcome(status, captured.out, captured.err)

    return run


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a file under the test's temporary folder and return its path."""

    def write_file(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return write_file


# --- inputs -------------------------------------------------------------------------------


def test_a_file_of_several_documents_gives_one_result_per_object(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """Each document is a result; an empty one is skipped but keeps its index."""
    path = write("pods.yaml", POD.format(name="a") + "---\n# nothing\n---\n" + POD.format(name="b"))
    outcome = evaluate(path)
    assert outcome.sources == [f"{path}#0", f"{path}#2"]
    assert [r["name"] for r in outcome.results] == ["a", "b"]
    assert outcome.report["summary"]["objects"] == 2


def test_a_folder_is_read_recursively_in_sorted_order(
    evaluate: Evaluate, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    """Folders are walked for .yaml, .yml and .json files in sorted order; others are left."""
    write("b/z.yaml", POD.format(name="bz"))
    write("b/a.yml", POD.format(name="ba"))
    write(
        "a.json",
        orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}}).decode(),
    )
    write("b/notes.txt", "not a manifest")
    write(".github/workflows/ci.yml", "on: [push]\n")
    write("b/.hidden.yaml", "on: [push]\n")
    outcome = evaluate(tmp_path)
    assert [r["name"] for r in outcome.results] == ["j", "ba", "bz"]
    assert outcome.status == 0


def test_a_file_in_a_hidden_folder_is_read_when_named(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """Hidden files are skipped only while walking a folder, never when named."""
    outcome = evaluate(write(".deploy/pod.yaml", POD.format(name="named")))
    assert [r["name"] for r in outcome.results] == ["named"]


@pytest.mark.parametrize("paths", [pytest.param(["-"], id="dash"), pytest.param([], id="no-path")])
def test_standard_input_is_read_with_a_dash_or_no_path(
    evaluate: Evaluate, paths: list[str]
) -> None:
    """`-` or no path reads standard input; its source is `-#N`."""
    outcome = evaluate(
        *paths, stdin=(POD.format(name="a") + "---\n" + PRIVILEGED.format(name="b")).encode()
    )
    assert outcome.sources == ["-#0", "-#1"]
    assert [r["allowed"] for r in outcome.results] == [True, False]


def test_a_terminal_on_standard_input_is_told_what_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a terminal says so on stderr, so nobody waits on a silent prompt."""
    monkeypatch.setattr(sys, "stdin", _Stdin(b"", tty=True))
    run_cli([], config_path=None, namespace="default", operation="CREATE", output="json")
    assert "reading manifests from standard input" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", 1, id="first-line"),
        pytest.param("# head\n\n---\n# note\napiVersion: v1\nkind: Pod\n", 5, id="after-comments"),
        pytest.param("---\n{apiVersion: v1, kind: Pod}\n", 2, id="flow-document"),
        pytest.param(
            "apiVersion: v1\nkind: Pod\nmetadata: &m {name: a}\nx: *m\n", 1, id="slow-path"
        ),
        pytest.param('{\n  "apiVersion": "v1",\n  "kind": "Pod"\n}\n', 2, id="json"),
        pytest.param("# a\r\n---\r\napiVersion: v1\r\nkind: Pod\r\n", 3, id="crlf"),
        pytest.param("\ufeffapiVersion: v1\nkind: Pod\n", 1, id="byte-order-mark"),
    ],
)
def test_line_is_where_the_first_key_stands(
    evaluate: Evaluate, write: Callable[[str, str], Path], text: str, line: int
) -> None:
    """`line` is the 1-based line of the document's first key."""
    (result,) = evaluate(write("doc.yaml", text)).results
    assert result["line"] == line


def test_json_is_read_from_json_files_and_standard_input(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """JSON objects are judged like YAML ones, from a .json file or from stdin."""
    body = orjson.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}, "spec": {}})
    assert evaluate(write("p.json", body.decode())).results[0]["name"] == "j"
    assert evaluate("-", stdin=body).results[0]["source"] == "-#0"


LIST = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a}}
-
  apiVersion: v1
  kind: Pod
  metadata: {name: b}
"""
POD_LIST = """\
apiVersion: v1
kind: PodList
items:
- metadata: {name: a}
- metadata: {name: b}
"""
JSON_LIST = orjson.dumps(
    {
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n}} for n in "ab"],
    },
    option=orjson.OPT_INDENT_2,
).decode()


@pytest.mark.parametrize(
    ("name", "text", "lines"),
    [
        pytest.param("list.yaml", LIST, [4, 6], id="yaml-list"),
        pytest.param("list.yaml", POD_LIST, [4, 5], id="typed-list-items-without-kind"),
        pytest.param("list.json", JSON_LIST, [6, 13], id="json-list"),
    ],
)
def test_list_objects_give_one_result_per_item(
    evaluate: Evaluate, write: Callable[[str, str], Path], name: str, text: str, lines: list[int]
) -> None:
    """Each item of a List is a result with a unique source `file#doc.items[i]` and its line."""
    path = write(name, text)
    outcome = evaluate(path)
    assert outcome.sources == [f"{path}#0.items[0]", f"{path}#0.items[1]"]
    assert [(r["kind"], r["name"], r["line"]) for r in outcome.results] == [
        ("Pod", "a", lines[0]),
        ("Pod", "b", lines[1]),
    ]


# --- requests, namespace, operation, configuration ----------------------------------------


def test_objects_without_a_namespace_are_judged_in_the_given_namespace(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """--namespace fills in a missing namespace; an object's own namespace is kept."""
    path = write(
        "p.yaml",
        POD.format(name="a")
        + "---\n"
        + POD.format(name="b").replace("{name: b}", "{name: b, namespace: own}"),
    )
    outcome = evaluate(path, namespace="team-a")
    assert [r["namespace"] for r in outcome.results] == ["team-a", "own"]


def test_cluster_scoped_objects_have_no_namespace(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """Cluster-scoped objects are judged without a namespace, as the API server sends them."""
    binding = BINDING.replace("{name: ops}", "{name: ops, namespace: stray}")
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    outcome = evaluate(write("c.yaml", binding + "---\n" + namespace), namespace="team-a")
    assert [r["namespace"] for r in outcome.results] == ["", ""]


def test_an_allowlisted_namespace_from_the_configuration_admits_privileged_pods(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """--config is read: a namespace at level privileged admits a privileged pod."""
    config = write("config.yaml", "podSecurity: {namespaces: {media: privileged}}\n")
    path = write("p.yaml", PRIVILEGED.format(name="p"))
    assert evaluate(path, namespace="media", config=str(config)).status == 0
    assert evaluate(path, namespace="other", config=str(config)).status == 1


def test_update_without_an_old_object_is_judged_but_not_defaulted(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """UPDATE is judged with oldObject null: violations count, pod defaults do not apply."""
    path = write("p.yaml", PRIVILEGED.format(name="p") + "---\n" + POD.format(name="q"))
    create, update = evaluate(path), evaluate(path, operation="UPDATE")
    assert [r["allowed"] for r in update.results] == [False, True]
    assert all(r["patch"] for r in create.results)
    assert not any(r["patch"] for r in update.results)


@pytest.mark.parametrize(
    ("kind", "api_version", "resource"),
    [
        pytest.param("Pod", "v1", ("", "v1", "pods"), id="core"),
        pytest.param("Deployment", "apps/v1", ("apps", "v1", "deployments"), id="apps"),
        pytest.param("CronJob", "batch/v1", ("batch", "v1", "cronjobs"), id="batch"),
        pytest.param(
            "Ingress",
            "networking.k8s.io/v1",
            ("networking.k8s.io", "v1", "ingresses"),
            id="ingress",
        ),
        pytest.param(
            "IngressRoute",
            "traefik.io/v1alpha1",
            ("traefik.io", "v1alpha1", "ingressroutes"),
            id="traefik",
        ),
        pytest.param(
            "ClusterRoleBinding",
            "rbac.authorization.k8s.io/v1",
            ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
            id="rbac",
        ),
        pytest.param(
            "NetworkPolicy",
            "networking.k8s.io/v1",
            ("networking.k8s.io", "v1", "networkpolicies"),
            id="table-ies",
        ),
        pytest.param(
            "Gateway",
            "gateway.networking.k8s.io/v1",
            ("gateway.networking.k8s.io", "v1", "gateways"),
            id="fallback-s",
        ),
        pytest.param(
            "Proxy", "example.com/v1", ("example.com", "v1", "proxies"), id="fallback-ies"
        ),
        pytest.param(
            "Mailbox", "example.com/v1", ("example.com", "v1", "mailboxes"), id="fallback-es"
        ),
    ],
)
def test_requests_carry_the_kind_and_resource_the_api_server_would(
    kind: str, api_version: str, resource: tuple[str, str, str]
) -> None:
    """Group, version, kind and the plural resource come from apiVersion and kind."""
    request = admission_request(
        {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}},
        namespace="ns",
        operation="CREATE",
        uid="u",
    )
    assert (request.kind.group, request.kind.version, request.kind.kind) == (*resource[:2], kind)
    assert (request.resource.group, request.resource.version, request.resource.resource) == resource
    assert resource_for(kind) == resource[2]


def test_built_requests_are_what_validation_would_make_of_them() -> None:
    """The unvalidated fast construction equals a fully validated AdmissionRequest."""
    request = admission_request(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
        namespace="team-a",
        operation="UPDATE",
        uid="evaluate-0",
    )
    validated = AdmissionRequest.model_validate(asdict(request))
    assert validated.model_dump() == asdict(request)
    assert request.object is not None
    assert request.object["metadata"]["namespace"] == "team-a"
    assert request.old_object is None


def test_an_object_is_allowed_only_when_validation_and_mutation_both_allow(
    evaluate: Evaluate, write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mutation that denies (it could not default the object) denies the result."""
    monkeypatch.setattr(
        evaluation, "mutate", lambda request, settings: Verdict(allowed=False, reason="broken")
    )
    outcome = evaluate(write("p.yaml", POD.format(name="p")))
    assert outcome.results[0]["allowed"] is False
    assert outcome.status == 1


# --- roles in the input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"all.yaml": WILDCARD_ROLE + "---\n" + BINDING}, id="role-first"),
        pytest.param({"all.yaml": BINDING + "---\n" + WILDCARD_ROLE}, id="role-later-in-the-file"),
        pytest.param({"a.yaml": BINDING, "b.yaml": WILDCARD_ROLE}, id="role-in-a-later-file"),
    ],
)
def test_roles_in_the_input_judge_the_bindings_wherever_they_stand(
    evaluate: Evaluate, write: Callable[[str, str], Path], tmp_path: Path, files: dict[str, str]
) -> None:
    """A ClusterRole anywhere in the input is used to judge its binding."""
    for name, text in files.items():
        write(name, text)
    (binding,) = [r for r in evaluate(tmp_path).results if r["kind"] == "ClusterRoleBinding"]
    assert [v["check"] for v in binding["violations"]] == ["wildcardRole"]


def test_results_keep_the_input_order_though_bindings_are_judged_last(
    evaluate: Evaluate, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    """Bindings wait for the whole input's roles; their results still stand in their place."""
    text = "---\n".join([POD.format(name="first"), BINDING, POD.format(name="last"), WILDCARD_ROLE])
    results = evaluate(write("all.yaml", text)).results
    assert [r["source"] for r in results] == [f"{tmp_path / 'all.yaml'}#{n}" for n in range(4)]
    assert [r["kind"] for r in results] == ["Pod", "ClusterRoleBinding", "Pod", "ClusterRole"]
    assert [v["check"] for v in results[1]["violations"]] == ["wildcardRole"]


def test_a_binding_whose_role_is_not_in_the_input_gets_a_warning(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """Without its role a binding is judged by the role's name, and the result says so."""
    (result,) = evaluate(write("b.yaml", BINDING)).results
    assert result["allowed"] is True
    assert any("do-anything" in warning for warning in result["warnings"])


# --- outputs and exit status --------------------------------------------------------------


def test_json_output_has_exactly_the_contract_shape(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """Every result and the summary carry exactly the contract's keys."""
    report = evaluate(write("p.yaml", PRIVILEGED.format(name="web"))).report
    assert list(report) == ["results", "summary"]
    (result,) = report["results"]
    assert list(result) == [
        "source", "line", "apiVersion", "kind", "namespace", "name",
        "allowed", "violations", "warnings", "patch",
    ]  # fmt: skip
    assert list(result["violations"][0]) == ["policy", "check", "message", "path"]
    assert result["violations"][0]["path"] == "spec.containers[0].securityContext.privileged"
    assert report["summary"] == {"objects": 1, "allowed": 0, "denied": 1, "mutated": 1}


def test_text_output_has_one_line_per_violation_and_a_summary(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """`file:line: Kind/namespace/name: policy/check: message`, then the counts."""
    path = write("p.yaml", POD.format(name="ok") + "---\n" + PRIVILEGED.format(name="bad"))
    lines = evaluate(path, output="text", namespace="team-a").out.splitlines()
    assert lines[0].startswith(f"{path}:9: Pod/team-a/bad: pod-security/privileged: ")
    assert lines[-1] == "2 objects: 1 admitted, 1 denied, 2 mutated"
    assert len(lines) == 2


@pytest.mark.parametrize(
    ("tty", "no_color", "coloured"),
    [
        pytest.param(True, False, True, id="terminal"),
        pytest.param(False, False, False, id="pipe"),
        pytest.param(True, True, False, id="terminal-with-NO_COLOR"),
    ],
)
def test_text_is_coloured_only_on_a_terminal(
    write: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
    tty: bool,
    no_color: bool,
    coloured: bool,
) -> None:
    """ANSI colours appear on a terminal only, and never with NO_COLOR set."""
    from webhook import report

    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    path = write("p.yaml", PRIVILEGED.format(name="bad"))
    documents = [
        item
        for item in manifests_io.read_paths([str(path)])
        if isinstance(item, manifests_io.Document)
    ]
    stream = _Stdin(b"", tty=tty)
    stream_out = io.StringIO()
    monkeypatch.setattr(stream_out, "isatty", stream.isatty)
    report.write("text", evaluation.judge(documents, Settings()), [], stream_out)
    assert ("\033[" in stream_out.getvalue()) is coloured


@pytest.mark.parametrize(
    ("texts", "status"),
    [
        pytest.param([POD.format(name="a")], 0, id="all-admitted"),
        pytest.param([POD.format(name="a"), PRIVILEGED.format(name="b")], 1, id="one-denied"),
        pytest.param([POD.format(name="a"), "kind: [\n"], 2, id="unreadable"),
        pytest.param([PRIVILEGED.format(name="b"), "kind: [\n"], 2, id="unreadable-and-denied"),
    ],
)
def test_exit_status_says_admitted_denied_or_unreadable(
    evaluate: Evaluate,
    write: Callable[[str, str], Path],
    tmp_path: Path,
    texts: list[str],
    status: int,
) -> None:
    """0 when everything is admitted, 1 when something is denied, 2 when input was bad."""
    for number, text in enumerate(texts):
        write(f"{number}.yaml", text)
    assert evaluate(tmp_path).status == status


def test_a_bad_configuration_or_operation_exits_2() -> None:
    """Usage errors end with status 2 and one line on stderr."""
    from webhook.cli import main

    assert main(["evaluate", "--config", "/nonexistent/config.yaml", "-"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--operation", "DELETE", "-"])
    assert exit_info.value.code == 2


def test_the_operation_is_read_in_any_case_as_the_endpoint_reads_it(
    write: Callable[[str, str], Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--operation update` judges as UPDATE (no pod defaults), as `?operation=update` does."""
    from webhook.cli import main

    monkeypatch.setattr(sys, "stdin", None)
    path = str(write("p.yaml", POD.format(name="web")))
    mutated = {}
    for operation in ("create", "update", "UPDATE"):
        assert main(["evaluate", "--operation", operation, "--output", "json", path]) == 0
        mutated[operation] = orjson.loads(capsys.readouterr().out)["summary"]["mutated"]
    assert mutated == {"create": 1, "update": 0, "UPDATE": 0}


@pytest.mark.parametrize(
    ("named", "value"), [("operation", "X" * 10_000), ("namespace", "it's" + "-a" * 5000)]
)
def test_a_long_wrong_operation_or_namespace_is_shown_cut_short(named: str, value: str) -> None:
    from webhook.evaluate import namespace_named, operation_named

    read = operation_named if named == "operation" else namespace_named
    with pytest.raises(BulwarkError) as refused:
        read(value)
    message = str(refused.value)
    assert len(message) < 200
    assert message.endswith(("...'", '..."'))


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "where", "message"),
    [
        pytest.param(
            "x.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n",
            "x.yaml#0 (line 3)",
            "not valid YAML",
            id="yaml-syntax",
        ),
        pytest.param(
            "x.yaml",
            "kind: Pod\nmetadata: {}\n",
            "x.yaml#0 (line 1)",
            "no apiVersion",
            id="no-apiVersion",
        ),
        pytest.param(
            "x.yaml", "apiVersion: v1\nmetadata: {}\n", "x.yaml#0 (line 1)", "no kind", id="no-kind"
        ),
        pytest.param(
            "x.yaml",
            "apiVersion: v1\nkind: ConfigMap\ndata:\n  since: 2024-13-45\n",
            "x.yaml#0 (line 1)",
            "not valid YAML: a value that cannot be read (month must be in 1..12)",
            id="date-that-does-not-exist",
        ),
        pytest.param(
            "x.yaml",
            "apiVersion: 5\nkind: Pod\n",
            "x.yaml#0 (line 1)",
            "its apiVersion is a number (5), not text such as apps/v1",
            id="apiVersion-a-number",
        ),
        pytest.param(
            "x.yaml",
            "apiVersion: v1\nkind: [Pod]\n",
            "x.yaml#0 (line 1)",
            "its kind is a list (['Pod']), not text such as Deployment",
            id="kind-a-list",
        ),
        pytest.param(
            "x.yaml",
            "- apiVersion: v1\n  kind: Pod\n",
            "x.yaml#0 (line 1)",
            "a list, not a mapping",
            id="not-a-mapping",
        ),
        pytest.param(
            "x.yaml", "just words\n", "x.yaml#0 (line 1)", "a string, not a mapping", id="scalar"
        ),
        pytest.param(
            "x.json",
            '{"apiVersion": "v1",\n"kind": }',
            "x.json#0 (line 2)",
            "not valid JSON",
            id="json-syntax",
        ),
        pytest.param(
            "x.yaml", b"apiVersion: v1\nkind: \xff\n", "x.yaml (line 2)", "not UTF-8", id="not-utf8"
        ),
        pytest.param("x.yaml", None, "x.yaml", "No such file or directory", id="missing-file"),
    ],
)
def test_unreadable_input_is_reported_and_the_rest_is_judged(
    evaluate: Evaluate,
    write: Callable[[str, str], Path],
    tmp_path: Path,
    name: str,
    content: str | bytes | None,
    where: str,
    message: str,
) -> None:
    """A bad document names its file, document and line on stderr; other files are judged."""
    good = write("good.yaml", PRIVILEGED.format(name="good"))
    bad = tmp_path / name
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content)
    outcome = evaluate(good, bad)
    assert outcome.status == 2
    assert [r["name"] for r in outcome.results] == ["good"]
    (line,) = outcome.err.splitlines()
    assert line.startswith(f"bulwark evaluate: {tmp_path}/{where}: ")
    assert message in line


def test_a_broken_document_costs_only_itself(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """The documents after a YAML syntax error in the same file are still judged."""
    path = write(
        "x.yaml", POD.format(name="a") + "---\nkind: {broken\n---\n" + POD.format(name="c")
    )
    outcome = evaluate(path)
    assert outcome.sources == [f"{path}#0", f"{path}#2"]
    assert f"{path}#1 (line 9): not valid YAML" in outcome.err


def test_text_after_a_flow_container_is_refused_not_judged_without_it(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """A privileged securityContext written after a container's flow mapping, on its line,
    is text YAML refuses (kubectl too): it is reported, never read as a harmless pod."""
    path = write(
        "x.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - {name: c, image: x} securityContext: {privileged: true}\n",
    )
    outcome = evaluate(path)
    assert outcome.status == 2
    assert outcome.results == []
    assert f"{path}#0 (line 6): not valid YAML" in outcome.err


def test_handed_case_c23_unreadable_yaml_exits_2_naming_the_file(tmp_path: Path) -> None:
    """C23: unreadable YAML is reported with its file, exit status 2, and no traceback."""
    path = tmp_path / "C23.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: broken\nspec: [\n")
    done = subprocess.run(
        [BULWARK, "evaluate", "--output", "json", "--namespace", "team-a", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "C23.yaml#0 (line" in done.stderr
    assert "Traceback" not in done.stderr
    assert orjson.loads(done.stdout)["results"] == []


def test_a_file_name_that_is_not_utf8_is_shown_escaped_in_every_format(
    evaluate: Evaluate, tmp_path: Path
) -> None:
    """A name of bytes that are not UTF-8 is shown with `\\xff`; no format fails on it."""
    (tmp_path / os.fsdecode(b"bad\xff.yaml")).write_text(PRIVILEGED.format(name="web"))
    shown = f"{tmp_path}/bad\\xff.yaml"
    for output in ("text", "junit"):
        outcome = evaluate(tmp_path, output=output)
        assert (outcome.status, shown in outcome.out) == (1, True), outcome.err
    (result,) = evaluate(tmp_path).results
    assert result["source"] == f"{shown}#0"
    (run,) = orjson.loads(evaluate(tmp_path, output="sarif").out)["runs"]
    location = run["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("/bad%5Cxff.yaml")


def test_a_fifo_in_a_folder_is_reported_not_waited_for(evaluate: Evaluate, tmp_path: Path) -> None:
    """Only regular files are read in a folder: a FIFO would block until a writer came."""
    (tmp_path / "app.yaml").write_text(POD.format(name="web"))
    os.mkfifo(tmp_path / "pipe.yaml")
    outcome = evaluate(tmp_path)
    assert outcome.status == 2
    assert f"{tmp_path}/pipe.yaml: not a regular file" in outcome.err
    assert [result["name"] for result in outcome.results] == ["web"]


def _bulwark_in_bash(script: str, path: Path) -> subprocess.CompletedProcess[str]:
    """`script` run by bash with "$0" the bulwark command and "$1" `path`."""
    return subprocess.run(
        ["bash", "-c", script, str(BULWARK), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_pipe_named_on_the_command_line_is_read(tmp_path: Path) -> None:
    """`bulwark evaluate <(kustomize build)`: a path named by the user may be a pipe."""
    manifest = tmp_path / "p.yaml"
    manifest.write_text(POD.format(name="web"))
    done = _bulwark_in_bash('exec "$0" evaluate -o json <(cat "$1")', manifest)
    assert done.returncode == 0, done.stderr
    assert [r["name"] for r in orjson.loads(done.stdout)["results"]] == ["web"]


def test_a_file_named_twice_is_judged_once(
    evaluate: Evaluate, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    """`evaluate deploy deploy/app.yaml` judges app.yaml once, under its first name."""
    path = write("deploy/app.yaml", POD.format(name="web"))
    outcome = evaluate(tmp_path / "deploy", path, tmp_path / "deploy" / "." / "app.yaml")
    assert outcome.sources == [f"{path}#0"]


def test_a_hard_link_to_a_file_read_already_is_not_read_again(
    evaluate: Evaluate, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    path = write("deploy/app.yaml", POD.format(name="web"))
    os.link(path, tmp_path / "deploy" / "copy.yaml")
    assert evaluate(tmp_path / "deploy").sources == [f"{path}#0"]


def test_a_stream_of_json_objects_is_one_document_each(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """`jq -c '.items[]' | bulwark evaluate`: JSON values one after another, as kubectl
    reads them, in a .json file or on standard input."""
    one, two = (
        orjson.dumps(yaml.safe_load(POD.format(name="a"))),
        orjson.dumps(yaml.safe_load(PRIVILEGED.format(name="b"))),
    )
    stream = one + b"\n" + two + b"\n"
    path = write("pods.json", stream.decode())
    for outcome in (evaluate(path), evaluate(stdin=stream)):
        assert [r["name"] for r in outcome.results] == ["a", "b"]
        assert [r["line"] for r in outcome.results] == [1, 2]
        assert outcome.status == 1


def test_a_json_file_holding_yaml_is_read_as_yaml_as_kubectl_reads_it(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    outcome = evaluate(write("pod.json", POD.format(name="web")))
    assert (outcome.status, [r["name"] for r in outcome.results]) == (0, ["web"])
    broken = evaluate(write("broken.json", '{"apiVersion": "v1",}'))
    assert broken.status == 2
    assert "broken.json#0 (line 1): not valid JSON" in broken.err


def test_directives_after_a_document_end_belong_to_the_next_document(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """`...`, then `%YAML 1.1`, then `---`: a valid stream of two documents."""
    text = POD.format(name="a") + "...\n%YAML 1.1\n---\n" + PRIVILEGED.format(name="b")
    path = write("two.yaml", text)
    assert [d["metadata"]["name"] for d in yaml.safe_load_all(text)] == ["a", "b"]
    outcome = evaluate(path)
    assert (outcome.status, outcome.err) == (1, "")
    assert [(r["name"], r["line"]) for r in outcome.results] == [("a", 1), ("b", 11)]


def test_input_without_objects_says_so_and_admits(evaluate: Evaluate) -> None:
    outcome = evaluate(stdin=b"# nothing here\n")
    assert outcome.status == 0
    assert outcome.err == "bulwark evaluate: no Kubernetes objects in the input\n"


@pytest.mark.parametrize(
    ("redirect", "message"),
    [
        pytest.param(">/dev/full", "cannot write the report: No space left on device", id="full"),
        pytest.param(">&-", "there is no standard output to write the report to", id="closed"),
    ],
)
def test_a_report_that_cannot_be_written_is_status_2_with_a_message(
    tmp_path: Path, redirect: str, message: str
) -> None:
    """Never a traceback, and never status 0 or 1: they would read as a verdict."""
    path = tmp_path / "pods.yaml"
    path.write_text("---\n".join(POD.format(name=f"p{n}") for n in range(500)))
    done = _bulwark_in_bash(f'"$0" evaluate -o sarif "$1" {redirect}', path)
    assert done.returncode == 2
    assert done.stderr == f"bulwark evaluate: {message}\n"


def test_a_closed_standard_error_does_not_stop_the_judgement(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(PRIVILEGED.format(name="web"))
    done = _bulwark_in_bash('"$0" evaluate -o json "$1" 2>&-', path)
    assert done.returncode == 1
    assert orjson.loads(done.stdout)["summary"]["denied"] == 1


@pytest.mark.parametrize("space", ["\u00a0", "\u2003", "\u3000", "\x85", "\u2028", "\x0b"])
def test_a_part_that_starts_with_another_space_is_read_never_skipped(
    evaluate: Evaluate, write: Callable[[str, str], Path], space: str
) -> None:
    """kubectl reads a JSON object behind a no-break space, and YAML lines behind NEL; the
    part must be read (and judged, or refused), never dropped as if it held nothing."""
    pod = orjson.dumps(yaml.safe_load(PRIVILEGED.format(name="web"))).decode()
    outcome = evaluate(write("pod.yaml", space + pod + "\n"))
    assert outcome.status in (1, 2)
    assert outcome.results or "pod.yaml#0" in outcome.err


def test_an_integer_past_64_bits_is_text_as_kubectl_reads_it(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """go-yaml reads integers of 64 bits at most, and a longer one as a string (PyYAML
    could not even build one of 5,000 digits)."""
    long_number = "9" * 5000
    text = POD.format(name="web").replace("spec:\n", f"spec:\n  priority: {long_number}\n")
    (result,) = evaluate(write("long.yaml", text)).results
    assert result["allowed"] is True


@pytest.mark.parametrize("value", ["!!bool 1", "!!bool ''", "!!int ''", "!!timestamp x"])
def test_a_value_its_tag_cannot_hold_is_reported_not_a_traceback(
    evaluate: Evaluate, write: Callable[[str, str], Path], value: str
) -> None:
    text = POD.format(name="web").replace("spec:\n", f"spec:\n  hostPID: {value}\n")
    outcome = evaluate(write("tagged.yaml", text))
    assert outcome.status == 2
    assert "tagged.yaml#0 (line 1): not valid YAML: a value that cannot be read as its tag" in (
        outcome.err
    )


def test_an_unreadable_folder_is_reported(
    evaluate: Evaluate,
    write: Callable[[str, str], Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A folder that cannot be listed is a problem named on stderr; exit status 2."""
    write("sub/p.yaml", POD.format(name="p"))

    def walk(
        top: str, onerror: Callable[[OSError], None]
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        onerror(PermissionError(13, "Permission denied", os.path.join(top, "sub")))
        yield top, [], []

    monkeypatch.setattr(manifests_io.os, "walk", walk)
    outcome = evaluate(tmp_path)
    assert outcome.status == 2
    assert f"{tmp_path}/sub: cannot read the folder: Permission denied" in outcome.err


BILLION_LAUGHS = (
    "apiVersion: v1\nkind: ConfigMap\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
)


def test_alias_bombs_are_refused_quickly(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """A document whose aliases expand past a million nodes is refused, not expanded."""
    path = write("bomb.yaml", BILLION_LAUGHS + "---\n" + POD.format(name="after"))
    started = time.perf_counter()
    outcome = evaluate(path)
    assert time.perf_counter() - started < 10
    assert "aliases expand it to more than 1,000,000 nodes" in outcome.err
    assert [r["name"] for r in outcome.results] == ["after"]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        pytest.param(
            "deep.yaml",
            "apiVersion: v1\nkind: Pod\nx: " + "[" * 100_000 + "]" * 100_000 + "\n",
            id="flow",
        ),
        pytest.param(
            "deep.yaml",
            "apiVersion: v1\nkind: Pod\n" + "".join("  " * i + "a:\n" for i in range(3000)),
            id="block",
        ),
        pytest.param(
            "deep.json",
            '{"apiVersion": "v1", "kind": "Pod", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
            id="json",
        ),
    ],
)
@pytest.mark.timeout(60)  # a guard against quadratic scans of long lines, not a speed target
def test_deeply_nested_documents_are_refused_with_a_message(
    evaluate: Evaluate, write: Callable[[str, str], Path], name: str, text: str
) -> None:
    """Nesting beyond the parsers' limits is an input error, never a crash."""
    outcome = evaluate(write(name, text))
    assert outcome.status == 2
    assert f"{name}#0 (line" in outcome.err


def test_nesting_within_the_limits_is_judged(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """900 levels of nesting are still read and judged."""
    text = POD.format(name="deep") + "  extra: " + "[" * 900 + "]" * 900 + "\n"
    assert evaluate(write("deep.yaml", text)).status == 0


def test_a_recursion_error_while_reading_is_reported(
    evaluate: Evaluate, write: Callable[[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RecursionError while building a document becomes a clear message."""

    class Loader(yaml.CSafeLoader):
        def construct_document(self, node: Any) -> Any:
            raise RecursionError

    monkeypatch.setattr(manifests_io, "_Loader", Loader)
    outcome = evaluate(write("x.yaml", "apiVersion: v1\nkind: Pod\nx: &a [1]\n"))
    assert "x.yaml#0 (line 1): nested too deeply to be read" in outcome.err


# --- POST /evaluate -----------------------------------------------------------------------


class Client:
    """Requests to the ASGI app in-process, one event loop per request."""

    def __init__(self, state: ServerState) -> None:
        self._app = create_app(state)

    def post(
        self, url: str, *, content: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bulwark") as client:
                return await client.post(url, content=content, headers=headers)

        return asyncio.run(send())


@pytest.fixture
def client() -> Client:
    """The app with default settings and a small body limit."""
    return Client(ServerState(settings=Settings(), max_body_bytes=64 * 1024))


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("application/yaml", PRIVILEGED.format(name="a"), id="yaml"),
        pytest.param("application/x-yaml; charset=utf-8", PRIVILEGED.format(name="a"), id="x-yaml"),
        pytest.param("text/plain", PRIVILEGED.format(name="a"), id="text"),
        pytest.param(None, PRIVILEGED.format(name="a"), id="no-content-type"),
        pytest.param(
            "application/json",
            orjson.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "a"},
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "i", "securityContext": {"privileged": True}}
                        ]
                    },
                }
            ).decode(),
            id="json",
        ),
    ],
)
def test_the_evaluate_endpoint_answers_the_json_report(
    client: Client, content_type: str | None, body: str
) -> None:
    """YAML or JSON manifests in, the contract's JSON out, with sources `request#N`."""
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/evaluate", content=body.encode(), headers=headers)
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert (result["source"], result["allowed"]) == ("request#0", False)
    assert result["violations"][0]["check"] == "privileged"


def test_the_evaluate_endpoint_refuses_other_media_types(client: Client) -> None:
    """A body that is neither YAML nor JSON by its Content-Type is a 415."""
    response = client.post("/evaluate", content=b"x", headers={"content-type": "application/xml"})
    assert response.status_code == 415
    assert "error" in response.json()


def test_the_evaluate_endpoint_takes_namespace_and_operation_from_the_query(client: Client) -> None:
    """?namespace= fills in missing namespaces and ?operation=UPDATE drops pod defaults."""
    body = POD.format(name="a").encode()
    response = client.post("/evaluate?namespace=team-a&operation=UPDATE", content=body)
    (result,) = response.json()["results"]
    assert (result["namespace"], result["patch"]) == ("team-a", [])
    assert client.post("/evaluate?operation=DELETE", content=body).status_code == 400


@pytest.mark.parametrize("namespace", ["Team_A", "a%0Ab", "x" * 64, "-a"])
def test_the_evaluate_endpoint_refuses_a_namespace_that_is_no_namespace_name(
    client: Client, namespace: str
) -> None:
    """?namespace= must be a namespace's name; anything else is a 400 that says so."""
    response = client.post(
        f"/evaluate?namespace={namespace}", content=POD.format(name="a").encode()
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("the namespace must be a namespace's name")


def test_a_namespace_that_is_no_namespace_name_is_a_usage_error() -> None:
    """`--namespace Team_A` ends with status 2, as the other usage errors do."""
    from webhook.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--namespace", "Team_A", "-"])
    assert exit_info.value.code == 2


def test_an_integer_beyond_64_bits_is_reported_not_a_crash(
    evaluate: Evaluate, write: Callable[[str, str], Path], client: Client
) -> None:
    """orjson refuses such integers. A stream of JSON objects keeps one exactly (kubectl's
    JSON reader does too), the patch copies it from a request into a limit, and the report
    still comes out, from the command and from the endpoint."""
    big = yaml.safe_load(POD.format(name="big"))
    big["spec"]["containers"][0]["resources"] = {"requests": {"cpu": 99999999999999999999999}}
    text = json.dumps(big) + "\n" + json.dumps(yaml.safe_load(POD.format(name="small"))) + "\n"
    outcome = evaluate(write("big.json", text))
    assert outcome.status == 0, outcome.err
    result = json.loads(outcome.out)["results"][0]  # orjson would read the integer as a float
    limits = [op for op in result["patch"] if op["path"].endswith("/resources/limits")]
    assert limits[0]["value"]["cpu"] == 99999999999999999999999
    response = client.post(
        "/evaluate", content=text.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert json.loads(response.content)["results"][0]["patch"] == result["patch"]


def test_the_evaluate_endpoint_names_the_unreadable_document_in_a_400(client: Client) -> None:
    """Unreadable input is a 400 whose error names the document and its line."""
    body = (POD.format(name="a") + "---\nkind: [\n").encode()
    response = client.post("/evaluate", content=body, headers={"content-type": "application/yaml"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("request#1 (line 9): not valid YAML")


def test_the_evaluate_endpoint_refuses_an_oversized_body(client: Client) -> None:
    """Bodies over the server's limit are refused with 413 before they are judged."""
    response = client.post("/evaluate", content=b"#" * (64 * 1024 + 1))
    assert response.status_code == 413


def test_large_bodies_are_judged_in_a_worker_thread_with_the_same_answer(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bodies above the inline limit are judged off the event loop's thread, alike."""
    import threading

    from webhook import app

    threads: list[int] = []
    real = app.evaluate_body

    def spy(*args: Any, **kwargs: Any) -> bytes:
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(app, "evaluate_body", spy)
    small = POD.format(name="p").encode()
    large = "---\n".join(POD.format(name=f"p{n}") for n in range(200)).encode()
    assert len(small) <= app.EVALUATE_INLINE_BYTES < len(large)
    assert client.post("/evaluate", content=small).json()["summary"]["objects"] == 1
    assert client.post("/evaluate", content=large).json()["summary"]["objects"] == 200
    inline, in_a_worker = threads
    assert inline != in_a_worker


def test_the_evaluate_endpoint_uses_input_roles_then_the_cluster_roles() -> None:
    """Over HTTP the input's roles come first, then the roles the server knows."""

    class ClusterRoles:
        def rules(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]] | None:
            return (
                [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
                if name == "do-anything"
                else None
            )

        def complete(self) -> bool:
            return True

    client = Client(ServerState(settings=Settings(), roles=ClusterRoles()))
    cluster = client.post("/evaluate", content=BINDING.encode()).json()["results"][0]
    harmless = WILDCARD_ROLE.replace('verbs: ["*"]', "verbs: [get]")
    overridden = client.post("/evaluate", content=(harmless + "---\n" + BINDING).encode())
    assert [v["check"] for v in cluster["violations"]] == ["wildcardRole"]
    assert overridden.json()["results"][1]["allowed"] is True


# --- start-up -----------------------------------------------------------------------------


def test_evaluate_imports_neither_the_http_stack_nor_the_kubernetes_client(
    write: Callable[[str, str], Path],
) -> None:
    """`bulwark evaluate` starts fast: no kubernetes, uvicorn, starlette or cryptography."""
    path = write("p.yaml", POD.format(name="p"))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "webhook", "evaluate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert not imported & {"kubernetes", "uvicorn", "starlette", "cryptography"}


def test_a_list_whose_items_is_not_a_list_is_a_problem_not_an_object() -> None:
    text = "apiVersion: v1\nkind: List\nitems: 5\n"
    found = list(manifests_io.read_yaml("odd.yaml", text))
    assert len(found) == 1
    problem = found[0]
    assert isinstance(problem, manifests_io.Problem)
    assert (problem.source, problem.line) == ("odd.yaml#0", 1)
    assert "List whose items is a number, not a list" in problem.message


def test_a_broken_value_in_a_json_stream_is_reported_and_the_others_judged(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    good = orjson.dumps(yaml.safe_load(PRIVILEGED.format(name="good"))).decode()
    outcome = evaluate(write("pods.json", good + '\n{"apiVersion":\n'))
    assert outcome.status == 2
    assert [r["name"] for r in outcome.results] == ["good"]
    assert "pods.json#1 (line 3): not valid JSON: Expecting value" in outcome.err


def test_names_and_keys_nested_past_the_stack_are_judged_not_a_traceback(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """The API server would refuse such names; judged here without one, in the namespace
    given, rather than overflowing the stack in `str`."""
    deep = "[" * 1000 + "]" * 1000
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "NAME", "namespace": "NAME"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "viewer"},
        "aggregationRule": {
            "clusterRoleSelectors": [{"matchExpressions": [{"key": "NAME", "operator": "Exists"}]}]
        },
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "NAME"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "viewer",
        },
        "subjects": [{"kind": "Group", "name": "team"}],
    }
    files = [
        write(f"{number}.json", json.dumps(obj).replace('"NAME"', deep))
        for number, obj in enumerate((pod, role, binding))
    ]
    outcome = evaluate(*files)
    assert outcome.err == ""
    assert outcome.status == 1
    judged = {result["kind"]: result for result in outcome.results}
    assert (judged["Pod"]["namespace"], judged["Pod"]["name"]) == ("default", "")
    assert judged["Pod"]["allowed"] is False
    assert judged["ClusterRoleBinding"]["allowed"] is True


PRIVILEGED_ITEM = (
    "- metadata: {name: evil}\n  spec: {hostPID: true, containers: [{name: c, image: x}]}\n"
)


@pytest.mark.parametrize("outer", ["Pod", "ConfigMap", "Namespace"])
def test_any_object_with_items_has_its_items_judged_as_kubectl_applies_them(
    evaluate: Evaluate, write: Callable[[str, str], Path], outer: str
) -> None:
    """kubectl decodes every object with `items` as a list and applies the items, an item
    without kind and apiVersion taking the object's; other tools apply the object. Both
    are judged."""
    text = f"apiVersion: v1\nkind: {outer}\nmetadata: {{name: ok}}\nitems:\n" + PRIVILEGED_ITEM
    path = write("listed.yaml", text)
    outcome = evaluate(path)
    assert outcome.sources == [f"{path}#0", f"{path}#0.items[0]"]
    outer_result, item = outcome.results
    assert (outer_result["kind"], outer_result["name"], outer_result["allowed"]) == (
        outer,
        "ok",
        True,
    )
    assert (item["kind"], item["name"], item["line"]) == (outer, "evil", 5)
    assert item["allowed"] is (outer != "Pod")
    assert outcome.status == (1 if outer == "Pod" else 0)


def test_a_json_deployment_with_a_pod_among_its_items_is_denied_for_the_pod(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "evil"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    outcome = evaluate(write("d.json", json.dumps({**deployment, "items": [pod]})))
    assert outcome.status == 1
    assert [(r["kind"], r["allowed"]) for r in outcome.results] == [
        ("Deployment", True),
        ("Pod", False),
    ]


@pytest.mark.parametrize(
    ("items", "kinds"),
    [
        pytest.param("null", ["Pod"], id="null-items-leave-the-object"),
        pytest.param("[]", ["Pod"], id="no-items-leave-the-object"),
    ],
)
def test_items_are_opened_one_level_deep_and_only_when_there_are_some(
    evaluate: Evaluate, write: Callable[[str, str], Path], items: str, kinds: list[str]
) -> None:
    text = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: ok}}\nitems: {items}\n"
    assert [r["kind"] for r in evaluate(write("p.yaml", text)).results] == kinds


def test_a_typed_list_item_with_a_kind_but_no_api_version_is_a_problem_as_in_kubectl(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """apimachinery fills in kind and apiVersion only where an item has neither."""
    text = "apiVersion: v1\nkind: PodList\nitems:\n- {kind: Pod, metadata: {name: a}}\n"
    outcome = evaluate(write("l.yaml", text))
    assert outcome.status == 2
    assert "l.yaml#0.items[0] (line 4): not a Kubernetes object: no apiVersion" in outcome.err


def test_the_evaluate_endpoint_judges_at_most_a_bounded_number_of_objects() -> None:
    """Each result is kept until the report is written: a body of thousands of tiny items
    is refused with a 413 that says what to do, not judged into the server's memory."""
    from webhook.evaluate import MAX_REQUEST_OBJECTS

    client = Client(ServerState(settings=Settings()))
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    for count, status in ((MAX_REQUEST_OBJECTS, 200), (MAX_REQUEST_OBJECTS + 1, 413)):
        body = orjson.dumps({"apiVersion": "v1", "kind": "List", "items": [config_map] * count})
        answer = client.post(
            "/evaluate", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == status
    assert f"more than {MAX_REQUEST_OBJECTS:,} objects in one request" in answer.json()["error"]


def test_the_evaluate_endpoint_has_a_body_limit_below_the_admission_one() -> None:
    from webhook.app import EVALUATE_MAX_BODY_BYTES

    client = Client(ServerState(settings=Settings(), max_body_bytes=8 * 1024 * 1024))
    body = b"# padding\n" * (EVALUATE_MAX_BODY_BYTES // 10 + 1)
    answer = client.post("/evaluate", content=body, headers={"content-type": "application/yaml"})
    assert answer.status_code == 413
    assert f"the limit is {EVALUATE_MAX_BODY_BYTES}" in answer.json()["error"]


def test_the_items_of_a_long_list_share_its_line_instead_of_a_second_read(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    from webhook.manifests_io import MAX_ITEMS_WITH_LINES

    item = "- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n"
    for count, second_line in ((2, 6), (MAX_ITEMS_WITH_LINES + 1, 2)):
        text = "# a list\napiVersion: v1\nkind: List\nitems:\n" + item * count
        results = evaluate(write("long.yaml", text)).results
        assert len(results) == count
        assert results[1]["line"] == second_line


def test_a_list_among_a_lists_items_is_a_problem_as_kubectl_refuses_it(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    """kubectl opens one level of items and fails on an item that has items of its own."""
    text = (
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: PodList\n  items:\n"
        + PRIVILEGED_ITEM.replace("- ", "  - ").replace("\n  spec", "\n    spec")
    )
    outcome = evaluate(write("nested.yaml", text))
    assert outcome.status == 2
    assert "nested.yaml#0.items[0] (line 4): a PodList with items inside a list's items" in (
        outcome.err
    )


def test_a_kind_nested_past_the_stack_is_a_problem_quoted_without_a_traceback(
    evaluate: Evaluate, write: Callable[[str, str], Path]
) -> None:
    deep = "[" * 1000 + "]" * 1000
    outcome = evaluate(write("deep.json", '{"apiVersion": "v1", "kind": ' + deep + "}"))
    assert outcome.status == 2
    assert "its kind is a list (nested too deeply to show)" in outcome.err
