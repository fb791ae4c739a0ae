"""The dry run: judge plain manifests exactly as the admission webhooks would.

`bulwark evaluate` and `POST /evaluate` share this module. For every object it builds the
admission request the API server would send on `kubectl apply` (kind and resource from the
object's apiVersion and kind, the namespace filled in for namespaced kinds and cleared for
cluster-scoped ones) and hands it to the same `validate` and `mutate` the HTTP layer
calls, so the two doors cannot judge differently. Each object is judged as it is read
and only its result is kept, so a large tree takes the memory of its results, not of its
manifests; bindings alone wait for the end of the input, to be judged with the Roles and
ClusterRoles found anywhere in it.

Reading the input lives in `webhook.manifests_io`, the output formats in `webhook.report`.
This module imports neither the HTTP stack nor the Kubernetes client, so that the command
starts fast.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Any

from webhook import report
from webhook.admission import mutate, validate
from webhook.config import Settings, load_settings
from webhook.errors import BulwarkError, ManifestError, printable, quoted
from webhook.manifests_io import Document, Problem, read_bytes, read_paths
from webhook.policies.rbac_binding import BINDING_KINDS
from webhook.policies.roles import ROLE_KINDS, InputRoles
from webhook.request import (
    DNS_LABEL,
    Operation,
    PlainKind,
    PlainRequest,
    PlainResource,
    PlainUser,
    as_text,
)
from webhook.verdict import Object, RoleSource, Verdict
from webhook.yaml_native import native_reader

EXIT_ADMITTED, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2
# What one `POST /evaluate` may ask the server to judge: each result or problem is kept
# until the report is written, and a body of empty items (`[{},{},...]`) is 3 bytes an
# item, so 8 MiB of them made the server take 1.5 GB. The command line has no such limit.
MAX_REQUEST_OBJECTS = 5_000


class TooManyObjects(ManifestError):
    """A request to judge more objects than one request may hold."""


# The plural resource names of the kinds Bulwark judges, and of common neighbours.
RESOURCES = {
    "Pod": "pods",
    "Deployment": "deployments",
    "ReplicaSet": "replicasets",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "Job": "jobs",
    "CronJob": "cronjobs",
    "ReplicationController": "replicationcontrollers",
    "PodTemplate": "podtemplates",
    "Ingress": "ingresses",
    "IngressRoute": "ingressroutes",
    "IngressClass": "ingressclasses",
    "RoleBinding": "rolebindings",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "ClusterRole": "clusterroles",
    "Namespace": "namespaces",
    "NetworkPolicy": "networkpolicies",
    "Endpoints": "endpoints",
    "PriorityClass": "priorityclasses",
    "StorageClass": "storageclasses",
}
CLUSTER_SCOPED = frozenset(
    {
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "Node",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "CustomResourceDefinition",
        "APIService",
        "CSIDriver",
        "CSINode",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)
OPERATIONS: tuple[Operation, ...] = ("CREATE", "UPDATE")


def operation_named(value: str) -> Operation:
    """The operation to judge as; only CREATE and UPDATE carry an object to judge."""
    for operation in OPERATIONS:
        if value.upper() == operation:
            return operation
    raise BulwarkError(f"the operation must be CREATE or UPDATE, not {quoted(value, 60)}")


def namespace_named(value: str) -> str:
    """The namespace to judge objects without one in; it must be a namespace's name."""
    if not DNS_LABEL.fullmatch(value):
        raise BulwarkError(
            "the namespace must be a namespace's name (lower-case letters, digits and '-', "
            f"at most 63), not {quoted(value, 60)}"
        )
    return value


def resource_for(kind: str) -> str:
    """The plural, lower-case resource name the API server uses for `kind`."""
    known = RESOURCES.get(kind)
    if known is not None:
        return known
    lower = kind.lower()
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"


@lru_cache(maxsize=1024)
def _kind_and_resource(api_version: str, kind: str) -> tuple[PlainKind, PlainResource]:
    group, _, version = api_version.rpartition("/")
    return PlainKind(group, version, kind), PlainResource(group, version, resource_for(kind))


_DRY_RUN_USER = PlainUser(username="", uid="", groups=[])


def admission_request(
    obj: dict[str, Any], *, namespace: str, operation: Operation, uid: str
) -> PlainRequest:
    """The request the API server would send for `kubectl apply` of `obj` (no old object).

    Namespaced objects without a namespace get `namespace`, and cluster-scoped objects
    lose theirs, as the API server does before admission. The fields are known to be well
    formed, so it is built as the plain request `webhook.review.plain_review` makes of the
    common review, without a pydantic model: this is the hot path of a dry run.
    """
    kind = str(obj["kind"])
    metadata: Any = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    given = metadata.get("namespace")
    target = "" if kind in CLUSTER_SCOPED else as_text(given) or namespace
    if (given or "") != target:
        metadata = {**metadata, "namespace": target} if target else _without_namespace(metadata)
        obj = {**obj, "metadata": metadata}
    # Shared between requests: the engine only reads them.
    versioned_kind, resource = _kind_and_resource(str(obj["apiVersion"]), kind)
    return PlainRequest(
        uid=uid,
        kind=versioned_kind,
        resource=resource,
        sub_resource="",
        name=as_text(metadata.get("name")),
        namespace=target,
        operation=operation,
        user_info=_DRY_RUN_USER,
        object=obj,
        old_object=None,
        dry_run=True,
    )


def _without_namespace(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metadata.items() if key != "namespace"}


@dataclass(slots=True)  # not frozen: one is built per object, and a frozen one costs 5x
class Result:
    """One object's judgement: where it stands, what it is, and what validation and
    mutation each said. It keeps nothing of the object itself, so that a large input is
    judged in the memory of one document at a time, not of all of them."""

    file: str  # as the user named it; "-" for standard input
    source: str  # "file#index"
    line: int
    api_version: str
    kind: str
    checked: Verdict  # validate
    defaulted: Verdict  # mutate

    @property
    def namespace(self) -> str:
        """As the API server would see it (see `admission_request`)."""
        return self.checked.namespace

    @property
    def name(self) -> str:
        """The name, else the generateName, else ""."""
        return self.checked.name

    @property
    def allowed(self) -> bool:
        return self.checked.allowed and self.defaulted.allowed

    @property
    def warnings(self) -> list[str]:
        return [*self.checked.warnings, *self.defaulted.warnings]


class _LayeredRoles:
    """The roles in the input first, then those the server knows from its cluster."""

    def __init__(self, first: RoleSource, then: RoleSource) -> None:
        self._first, self._then = first, then

    def rules(self, kind: str, namespace: str, name: str) -> Sequence[Object] | None:
        found = self._first.rules(kind, namespace, name)
        return found if found is not None else self._then.rules(kind, namespace, name)

    def complete(self) -> bool:
        return self._then.complete()


class _RolesNotYetRead:
    """The role source while the input is still being read: consulting it is a bug.

    Only bindings are judged by roles, and they wait until the whole input is read (see
    `judge`). A policy that came to consult roles for another kind would fail here, loudly,
    rather than be judged against half of the input's roles.
    """

    def rules(self, kind: str, namespace: str, name: str) -> Sequence[Object] | None:
        raise RuntimeError("roles were consulted for an object that is not a binding")

    def complete(self) -> bool:
        raise RuntimeError("roles were consulted for an object that is not a binding")


def judge(
    documents: Iterable[Document],
    settings: Settings,
    *,
    namespace: str = "default",
    operation: Operation = "CREATE",
    cluster_roles: RoleSource | None = None,
) -> list[Result]:
    """Judge every document, in order, with the roles among them (then `cluster_roles`).

    Each document is judged as it is read, and only its `Result` is kept. Bindings are the
    exception: a Role or ClusterRole anywhere in the input may decide them, so they are
    kept until the input is read, then judged with all of its roles.
    """
    results: list[Result | None] = []
    bindings: list[tuple[int, Document]] = []
    roles_in_input: list[Object] = []
    pending = _RolesNotYetRead()
    for document in documents:
        kind = document.body["kind"]
        if kind in ROLE_KINDS:
            roles_in_input.append(document.body)
        if kind in BINDING_KINDS:
            bindings.append((len(results), document))
            results.append(None)
        else:
            results.append(_judged(document, settings, namespace, operation, pending))
    if bindings:
        roles: RoleSource = InputRoles.from_manifests(roles_in_input, namespace=namespace)
        if cluster_roles is not None:
            roles = _LayeredRoles(roles, cluster_roles)
        for number, document in bindings:
            results[number] = _judged(document, settings, namespace, operation, roles)
    return [result for result in results if result is not None]


def _judged(
    document: Document, settings: Settings, namespace: str, operation: Operation, roles: RoleSource
) -> Result:
    body = document.body
    request = admission_request(body, namespace=namespace, operation=operation, uid=document.source)
    return Result(
        file=document.file,
        source=document.source,
        line=document.line,
        api_version=str(body["apiVersion"]),
        kind=str(body["kind"]),
        checked=validate(request, settings, roles=roles),
        defaulted=mutate(request, settings),
    )


def evaluate_body(
    body: bytes,
    settings: Settings,
    *,
    namespace: str = "default",
    operation: str = "CREATE",
    json: bool = False,
    cluster_roles: RoleSource | None = None,
) -> bytes:
    """The JSON report on one HTTP body (sources `request#N`); ManifestError if unreadable,
    TooManyObjects past `MAX_REQUEST_OBJECTS`."""
    judged_in, judged_as = namespace_named(namespace), operation_named(operation)
    items = islice(read_bytes("request", body, json=json), MAX_REQUEST_OBJECTS + 1)
    documents, problems = _split(items)
    if len(documents) + len(problems) > MAX_REQUEST_OBJECTS:
        raise TooManyObjects(
            f"more than {MAX_REQUEST_OBJECTS:,} objects in one request; send them in smaller "
            "requests, or run bulwark evaluate where they are"
        )
    if problems:
        raise ManifestError("; ".join(str(problem) for problem in problems))
    results = judge(
        documents, settings, namespace=judged_in, operation=judged_as, cluster_roles=cluster_roles
    )
    return report.dumps(report.json_document(results), indent=False)


def _split(items: Iterable[Document | Problem]) -> tuple[list[Document], list[Problem]]:
    documents: list[Document] = []
    problems: list[Problem] = []
    for item in items:
        if isinstance(item, Problem):
            problems.append(item)
        else:
            documents.append(item)
    return documents, problems


def run_cli(
    paths: list[str],
    *,
    config_path: str | None,
    namespace: str,
    operation: str,
    output: str,
) -> int:
    """`bulwark evaluate`: judge, print in `output` format, and return the exit status."""
    settings = load_settings(config_path)
    # NB: a large tree is hundreds of thousands of live containers; the cyclic collector
    # would walk them all again and again while they are read (about 40% of the run) and
    # find nothing, as parsed manifests hold no cycles. The command ends soon after.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(paths, settings, namespace=namespace, operation=operation, output=output)
    finally:
        if collecting:
            gc.enable()


def _run(
    paths: list[str], settings: Settings, *, namespace: str, operation: str, output: str
) -> int:
    stdin = None
    if not paths or "-" in paths:
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is not None and sys.stdin.isatty():
            _tell("reading manifests from standard input")
    judged_as = operation_named(operation)
    problems: list[Problem] = []
    documents = _documents(read_paths(paths, stdin), problems)
    with native_reader():  # each document is judged as soon as it is read
        results = judge(documents, settings, namespace=namespace, operation=judged_as)
    for problem in problems:
        _tell(printable(str(problem)))
    if not results and not problems:
        _tell("no Kubernetes objects in the input")

    written = _write_report(output, results, problems)
    if problems or not written:
        return EXIT_BAD_INPUT
    return EXIT_ADMITTED if all(result.allowed for result in results) else EXIT_DENIED


def _write_report(output: str, results: list[Result], problems: list[Problem]) -> bool:
    """Print the report; False, with a message, when it could not be written."""
    if sys.stdout is None:  # started with standard output closed (`>&-`)
        _tell("there is no standard output to write the report to")
        return False
    try:
        report.write(output, results, problems, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped reading (`| head`): the verdict stands.
        _discard_standard_output()
    except OSError as error:  # a full disk, a device that fails
        _tell(f"cannot write the report: {error.strerror or error}")
        _discard_standard_output()
        return False
    return True


def _tell(message: str) -> None:
    """One line on standard error, when there is one (`2>&-` closes it)."""
    if sys.stderr is not None:
        print(f"bulwark evaluate: {message}", file=sys.stderr)


def _discard_standard_output() -> None:
    """Point descriptor 1 at /dev/null, so that Python's flush at exit, of what could not
    be written, fails no more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _documents(items: Iterable[Document | Problem], problems: list[Problem]) -> Iterator[Document]:
    """The documents among `items`, as they come; the problems go to `problems`."""
    for item in items:
        if isinstance(item, Problem):
            problems.append(item)
        else:
            yield item
