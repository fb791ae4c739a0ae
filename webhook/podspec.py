"""Where pod specs live inside the objects that carry them.

A Pod carries its spec at `spec`; the workload controllers carry a pod template whose
spec they copy into every pod they create. Judging the template at `kubectl apply` time
tells the user at once, instead of leaving a ReplicaSet that silently cannot create pods.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from webhook.verdict import Object

# kind -> the keys leading from the object to its pod template (metadata + spec)
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "PodTemplate": ("template",),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
POD_CARRYING_KINDS = frozenset({"Pod", *TEMPLATE_PATHS})
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class PodSpec:
    """One pod spec found in an object, with the dotted path that leads to it."""

    path: str  # "spec" or "spec.template.spec"
    metadata: Object
    spec: Object


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a pod spec, with its list, index and dotted path."""

    path: str  # "spec.containers[1]"
    list_name: str
    index: int
    body: Object

    @property
    def name(self) -> str:
        return str(self.body.get("name") or f"#{self.index}")

    @property
    def label(self) -> str:
        kind = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}
        return f'{kind.get(self.list_name, "container")} "{self.name}"'


def _mapping(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def find_pod_spec(kind: str, obj: Object) -> PodSpec | None:
    """The pod spec `obj` carries, or None when its kind carries none."""
    if kind == "Pod":
        return PodSpec("spec", _mapping(obj.get("metadata")), _mapping(obj.get("spec")))
    keys = TEMPLATE_PATHS.get(kind)
    if keys is None:
        return None
    node: Object = obj
    for key in keys:
        node = _mapping(node.get(key))
    path = ".".join(keys)
    return PodSpec(f"{path}.spec", _mapping(node.get("metadata")), _mapping(node.get("spec")))


def containers(pod: PodSpec, lists: tuple[str, ...] = CONTAINER_LISTS) -> Iterator[Container]:
    """Every container of every list named in `lists`, in the order the API lists them."""
    for list_name in lists:
        items = pod.spec.get(list_name)
        if not isinstance(items, list):
            continue
        for index, body in enumerate(items):
            yield Container(f"{pod.path}.{list_name}[{index}]", list_name, index, _mapping(body))
