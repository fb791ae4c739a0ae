"""The dry run: judge plain manifests exactly as the admission webhooks would.

`bulwark evaluate` and `POST /evaluate` share this module. For every object it builds the
AdmissionRequest the API server would send on `kubectl apply` (kind and resource from the
object's apiVersion and kind, the namespace filled in for namespaced kinds and cleared for
cluster-scoped ones) and hands it to the same `validate` and `mutate` the HTTP layer
calls, so the two doors cannot judge differently. Roles and ClusterRoles anywhere in the
input are collected first and used to judge the bindings, wherever they stand.

Reading the input lives in `webhook.manifests_io`, the output formats in `webhook.report`.
This module imports neither the HTTP stack nor the Kubernetes client, so that the command
starts fast.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from webhook import report
from webhook.admission import mutate, validate
from webhook.config import Settings, load_settings
from webhook.errors import BulwarkError, ManifestError
from webhook.manifests_io import Document, Problem, read_bytes, read_paths
from webhook.policies.roles import InputRoles
from webhook.review import (
    AdmissionRequest,
    GroupVersionKind,
    GroupVersionResource,
    Operation,
    UserInfo,
)
from webhook.verdict import Object, RoleSource, Verdict
from webhook.yaml_native import native_reader

EXIT_ADMITTED, EXIT_DENIED, EXIT_BAD_INPUT = 0, 1, 2

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
    raise BulwarkError(f"the operation must be CREATE or UPDATE, not {value!r}")


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
def _kind_and_resource(
    api_version: str, kind: str
) -> tuple[GroupVersionKind, GroupVersionResource]:
    group, _, version = api_version.rpartition("/")
    return (
        GroupVersionKind.model_construct(group=group, version=version, kind=kind),
        GroupVersionResource.model_construct(
            group=group, version=version, resource=resource_for(kind)
        ),
    )


# Every field a dry-run request shares; each request is a copy with its own identity.
_TEMPLATE = AdmissionRequest.model_construct(
    uid="",
    kind=GroupVersionKind.model_construct(kind=""),
    resource=GroupVersionResource.model_construct(resource=""),
    sub_resource="",
    name="",
    namespace="",
    operation="CREATE",
    user_info=UserInfo(),
    object=None,
    old_object=None,
    dry_run=True,
)


def admission_request(
    obj: dict[str, Any], *, namespace: str, operation: Operation, uid: str
) -> AdmissionRequest:
    """The request the API server would send for `kubectl apply` of `obj` (no old object).

    Namespaced objects without a namespace get `namespace`, and cluster-scoped objects
    lose theirs, as the API server does before admission. The fields are known to be well
    formed, so the model is copied from a template without validation: this is the hot
    path of a dry run, and a validated model costs several times more.
    """
    kind = str(obj["kind"])
    metadata: Any = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    given = metadata.get("namespace")
    target = "" if kind in CLUSTER_SCOPED else str(given or namespace)
    if (given or "") != target:
        metadata = {**metadata, "namespace": target} if target else _without_namespace(metadata)
        obj = {**obj, "metadata": metadata}
    kind_model, resource = _kind_and_resource(str(obj["apiVersion"]), kind)
    fields = {
        "uid": uid,
        "kind": kind_model,
        "resource": resource,
        "name": str(metadata.get("name") or ""),
        "namespace": target,
        "operation": operation,
        "object": obj,
    }
    return _TEMPLATE.model_copy(update=fields)


def _without_namespace(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metadata.items() if key != "namespace"}


@dataclass(frozen=True, slots=True)
class Result:
    """One object's judgement: what validation and mutation each said."""

    document: Document
    request: AdmissionRequest
    checked: Verdict  # validate
    defaulted: Verdict  # mutate

    @property
    def allowed(self) -> bool:
        return self.checked.allowed and self.defaulted.allowed

    @property
    def warnings(self) -> list[str]:
        return [*self.checked.warnings, *self.defaulted.warnings]

    @property
    def namespace(self) -> str:
        return self.request.namespace

    @property
    def name(self) -> str:
        metadata: Any = self.document.body.get("metadata")
        if not isinstance(metadata, dict):
            return ""
        return str(metadata.get("name") or metadata.get("generateName") or "")


class _LayeredRoles:
    """The roles in the input first, then those the server knows from its cluster."""

    def __init__(self, first: RoleSource, then: RoleSource) -> None:
        self._first, self._then = first, then

    def rules(self, kind: str, namespace: str, name: str) -> Sequence[Object] | None:
        found = self._first.rules(kind, namespace, name)
        return found if found is not None else self._then.rules(kind, namespace, name)

    def complete(self) -> bool:
        return self._then.complete()


def judge(
    documents: Sequence[Document],
    settings: Settings,
    *,
    namespace: str = "default",
    operation: Operation = "CREATE",
    cluster_roles: RoleSource | None = None,
) -> list[Result]:
    """Judge every document, with the roles among them (then `cluster_roles`) at hand."""
    roles: RoleSource = InputRoles.from_manifests(
        (document.body for document in documents), namespace=namespace
    )
    if cluster_roles is not None:
        roles = _LayeredRoles(roles, cluster_roles)
    results = []
    for number, document in enumerate(documents):
        request = admission_request(
            document.body, namespace=namespace, operation=operation, uid=f"evaluate-{number}"
        )
        checked = validate(request, settings, roles=roles)
        results.append(Result(document, request, checked, mutate(request, settings)))
    return results


def evaluate_body(
    body: bytes,
    settings: Settings,
    *,
    namespace: str = "default",
    operation: str = "CREATE",
    json: bool = False,
    cluster_roles: RoleSource | None = None,
) -> bytes:
    """The JSON report on one HTTP body (sources `request#N`); ManifestError if unreadable."""
    documents, problems = _split(read_bytes("request", body, json=json))
    if problems:
        raise ManifestError("; ".join(str(problem) for problem in problems))
    results = judge(
        documents,
        settings,
        namespace=namespace,
        operation=operation_named(operation),
        cluster_roles=cluster_roles,
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
            print("bulwark evaluate: reading manifests from standard input", file=sys.stderr)
    with native_reader():
        documents, problems = _split(read_paths(paths, stdin))
    for problem in problems:
        print(f"bulwark evaluate: {problem}", file=sys.stderr)

    results = judge(documents, settings, namespace=namespace, operation=operation_named(operation))
    report.write(output, results, problems, sys.stdout)
    if problems:
        return EXIT_BAD_INPUT
    return EXIT_ADMITTED if all(result.allowed for result in results) else EXIT_DENIED
