"""pod-defaults: an fsGroup and cpu and memory requests and limits for new pods.

A pod without an fsGroup may not be able to write to the volumes it mounts, and a container
without requests and limits is scheduled as if it needed nothing and may then take a whole
node's memory. This mutation fills those gaps on Pods at CREATE, and only there: pod
templates are never patched (a GitOps tool would then see every live Deployment drift from
git), nor any subresource. The rules, per the contract:

- `spec.securityContext.fsGroup` is set to the namespace's configured group when absent.
  A present fsGroup (0 included) is a choice and is kept. Windows pods get none: the API
  server rejects fsGroup when `spec.os.name` is windows, and it means nothing to a
  host-process pod or one pinned to Windows nodes by `kubernetes.io/os: windows`.
- For every container and init container (sidecars included), for cpu and memory apart:
  with nothing set, the default request and limit are added; with only a limit, nothing
  is added (the API server copies the limit into the request); with only a request, a
  limit is added, the larger of the default limit and the request, so the pod stays
  valid (the request's own text is written when it wins). Ephemeral containers may not
  have resources at all. Other resources (ephemeral-storage, devices) are left alone, and
  a default that the configuration leaves unset is not added.
- Pod-level resources (`spec.resources`, Kubernetes 1.34+): when the pod sets a request or
  a limit for cpu (or memory) at pod level, no container gets a cpu (or memory) default.
  The API server requires the containers' aggregate requests to stay within the pod-level
  request and each container's limit within the pod-level limit, and its defaulting, which
  runs before admission, has already fixed the pod-level request (to the pod-level limit
  when only a limit was given). A default added here could push the sum past it: twenty
  containers at 100m overrun a 1-cpu pod. Capping the defaults instead would carve the
  budget the user chose to share into fixed slices (a container that may burst to the
  pod's limit would be OOM-killed at the default limit). The pod-level budget already
  bounds every container, which is all the defaults are for (KEP-2837,
  https://kubernetes.io/docs/concepts/workloads/pods/pod-level-resources/).

A member whose value is null counts as absent, as the API server's decoder reads it.
Input the API server would reject (containers that are not a list, resources that are a
string, a quantity that does not parse) is skipped, never raised: the engine turns an
exception into a denial, which would be worse than admitting the pod without a default.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from webhook.config import ResourceAmounts, ResourceDefaults
from webhook.mutation.patch import PatchBuilder
from webhook.podspec import CONTAINER_LISTS
from webhook.quantity import parse_quantity, quantity_or_none
from webhook.request import Request
from webhook.verdict import Object, PatchOperation, PolicyContext

NAME = "pod-defaults"
RESOURCES = ("cpu", "memory")
DEFAULTED_LISTS = ("initContainers", "containers")  # ephemeral containers have no resources
_ALL = frozenset(RESOURCES)


class PodDefaults:
    """The pod-defaults mutation, as the engine calls it."""

    name = NAME

    def applies_to(self, request: Request) -> bool:
        return (
            request.operation == "CREATE"
            and not request.sub_resource
            and request.kind.kind == "Pod"
            and request.kind.group == ""
            and request.resource.resource == "pods"
        )

    def patch(self, obj: Object, context: PolicyContext) -> list[PatchOperation]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return []
        settings = context.settings.mutation
        builder = PatchBuilder(obj)

        if not is_windows(spec):
            fs_group = settings.fs_group_for(context.namespace)
            builder.set_absent(("spec", "securityContext", "fsGroup"), fs_group)

        names = tuple(name for name in RESOURCES if name not in pod_level_resources(spec))
        if names:
            table = _DefaultTable.of(settings.defaults_for(context.namespace), names)
            for list_name in DEFAULTED_LISTS:
                items = spec.get(list_name)
                if not isinstance(items, list):
                    continue
                for index, container in enumerate(items):
                    wanted = table.for_container(container)
                    if wanted:
                        builder.merge_absent(("spec", list_name, index), {"resources": wanted})
        return builder.operations


def is_windows(spec: Object) -> bool:
    """Whether the pod runs on Windows: by its os, a host-process context or its node selector."""
    pod_os = spec.get("os")
    if isinstance(pod_os, dict) and pod_os.get("name") == "windows":
        return True
    selector = spec.get("nodeSelector")
    if isinstance(selector, dict) and selector.get("kubernetes.io/os") == "windows":
        return True
    if _host_process(spec.get("securityContext")):
        return True
    for list_name in CONTAINER_LISTS:
        items = spec.get(list_name)
        if isinstance(items, list) and any(
            isinstance(item, dict) and _host_process(item.get("securityContext")) for item in items
        ):
            return True
    return False


def _host_process(security_context: Any) -> bool:
    if not isinstance(security_context, dict):
        return False
    options = security_context.get("windowsOptions")
    return isinstance(options, dict) and options.get("hostProcess") is True


def pod_level_resources(spec: Object) -> frozenset[str]:
    """The resources of RESOURCES the pod budgets at pod level; all of them when unreadable."""
    pod_resources = spec.get("resources")
    if pod_resources is None:
        return frozenset()
    if not isinstance(pod_resources, dict):
        return _ALL
    found: set[str] = set()
    for section in ("requests", "limits"):
        amounts = pod_resources.get(section)
        if amounts is None:
            continue
        if not isinstance(amounts, dict):
            return _ALL
        found.update(name for name in RESOURCES if amounts.get(name) is not None)
    return frozenset(found)


def _members(value: Any) -> dict[str, Any] | None:
    """`value` as an object: {} when absent or null, None when it is something else."""
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


def _text(amount: str | float) -> str:
    """A configured default as the API server writes quantities: a string."""
    return amount if isinstance(amount, str) else repr(amount)


class _DefaultTable:
    """The namespace's defaults, resolved once per pod, applied to each container."""

    __slots__ = ("_limits", "_names", "_requests")

    # (id of the defaults, names) -> (those defaults, their table). The entry holds the
    # defaults themselves, so their id cannot be reused by other ones while it is cached.
    _made: dict[tuple[int, tuple[str, ...]], tuple[ResourceDefaults, _DefaultTable]] = {}  # noqa: RUF012

    def __init__(self, defaults: ResourceDefaults, names: tuple[str, ...]) -> None:
        self._names = names
        self._requests = _present(defaults.requests, names)
        self._limits = _present(defaults.limits, names)

    @classmethod
    def of(cls, defaults: ResourceDefaults, names: tuple[str, ...]) -> _DefaultTable:
        """The table for `defaults` and `names`, made once: the settings never change."""
        key = (id(defaults), names)
        made = cls._made.get(key)
        if made is not None and made[0] is defaults:
            return made[1]
        table = cls(defaults, names)
        if len(cls._made) > 64:
            cls._made.clear()
        cls._made[key] = (defaults, table)
        return table

    def for_container(self, container: Any) -> dict[str, dict[str, Any]]:
        """The requests and limits `container` should get, or {} when it needs none."""
        if not isinstance(container, dict):
            return {}
        resources = _members(container.get("resources"))
        if resources is None:
            return {}
        requests, limits = _members(resources.get("requests")), _members(resources.get("limits"))
        if requests is None or limits is None:
            return {}

        add_requests: dict[str, Any] = {}
        add_limits: dict[str, Any] = {}
        for name in self._names:
            if limits.get(name) is not None:
                continue  # both set, or a limit alone: the API server copies it into the request
            request = requests.get(name)
            if request is None:
                if name in self._requests:
                    add_requests[name] = self._requests[name]
                if name in self._limits:
                    add_limits[name] = self._limits[name]
            elif name in self._limits:
                limit = self._limit_above(request, self._limits[name])
                if limit is not None:
                    add_limits[name] = limit

        wanted = {}
        if add_requests:
            wanted["requests"] = add_requests
        if add_limits:
            wanted["limits"] = add_limits
        return wanted

    @staticmethod
    def _limit_above(request: Any, default_limit: str) -> Any:
        """The larger of the request and the default limit, or None if the request is unreadable."""
        if type(request) in _CACHED_TYPES:
            return _cached_limit_above(request, default_limit)
        return _larger_limit(request, default_limit)


def _larger_limit(request: Any, default_limit: str) -> Any:
    requested = quantity_or_none(request)
    if requested is None:
        return None
    return request if requested > parse_quantity(default_limit) else default_limit


# Requests repeat across pods (`100m`, `128Mi`); comparing their values is the dear part.
_CACHED_TYPES = (str, int, float)
_cached_limit_above = lru_cache(maxsize=4096, typed=True)(_larger_limit)


def _present(amounts: ResourceAmounts, names: tuple[str, ...]) -> dict[str, str]:
    """The configured amounts for `names`, skipping the ones left unset."""
    found = {}
    for name in names:
        amount = getattr(amounts, name)
        if amount is not None:
            found[name] = _text(amount)
    return found
