"""One read of a pod spec that every check shares, and the way checks report.

The Pod Security Standards look at the same few places over and over: each container's
`securityContext`, the pod's `securityContext`, the volumes. `PodView` reads them once, so
nineteen checks over ten containers cost one walk of the containers, not nineteen.

Field presence follows how the API server decodes a pod: a key whose value is null is
absent, an empty mapping is present (`seccompProfile: {}` sets a profile with an empty
type). A value of the wrong type never raises; it is read as the unsafe choice where one
exists, because the API server would have refused it anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from webhook.podspec import CONTAINER_LISTS, PodSpec
from webhook.verdict import Object, Violation

POLICY = "pod-security"
EMPTY: Object = {}

_LIST_WORDS = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}


def mapping(value: Any) -> Object:
    """`value` when it is a mapping, else an empty one: a safe thing to call `.get` on."""
    return value if isinstance(value, dict) else EMPTY


def items(value: Any) -> list[Any]:
    """`value` when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def show(value: Any) -> str:
    """A field value as a person would type it in a manifest (JSON spelling)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    except RecursionError:  # nested past what the API server would ever send
        return "(a value nested too deeply to show)"


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, and this is hot
class ContainerView:
    """One container of any list, with what the checks read from it."""

    pod_path: str  # spec.template.spec
    list_name: str  # initContainers
    index: int
    body: Object
    security: Object  # its securityContext, or an empty mapping

    @property
    def path(self) -> str:
        """spec.template.spec.initContainers[0]; built when a violation needs it."""
        return f"{self.pod_path}.{self.list_name}[{self.index}]"

    @property
    def label(self) -> str:
        """init container "prepare": the subject of its violations."""
        name = self.body.get("name") or f"#{self.index}"
        return f'{_LIST_WORDS.get(self.list_name, "container")} "{name}"'


@dataclass(slots=True)
class PodView:
    """A pod spec as the checks see it, plus where its violations are collected."""

    pod: PodSpec
    spec: Object  # pod.spec, read by most checks
    namespace: str
    containers: list[ContainerView]
    # The containers with a securityContext: the only ones whose own settings a check that
    # reads nothing else can find wrong (most pods set one on few containers, or none).
    secured: list[ContainerView]
    security: Object  # the pod's securityContext, or an empty mapping
    windows: bool  # spec.os.name is "windows": some restricted checks do not apply
    user_namespace: bool  # spec.hostUsers is false: some checks are relaxed
    found: list[Violation] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.pod.path

    @property
    def metadata_path(self) -> str:
        """The dotted path of the metadata beside the spec (`spec.template.metadata`)."""
        return self.pod.path.removesuffix("spec") + "metadata"

    def deny(
        self, check: str, subject: str, path: str, problem: str, fix: str, *, who: str = ""
    ) -> None:
        """Record one violation: who is at fault, what is wrong, how to pass.

        `subject` keeps violations apart across an UPDATE (see `Violation.identity`); `who`
        names the pod or container in the message when the subject is something finer,
        such as one sysctl of the pod.
        """
        message = f"{who or subject}: {problem}; {fix}, {hint(check, self.namespace)}"
        self.found.append(Violation(POLICY, check, message, path, subject))


def view_of(pod: PodSpec, namespace: str) -> PodView:
    """Read `pod` once into the shape every check uses."""
    spec = pod.spec
    containers = []
    secured = []
    for list_name in CONTAINER_LISTS:
        entries = spec.get(list_name)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            body = mapping(entry)
            security = mapping(body.get("securityContext"))
            container = ContainerView(pod.path, list_name, index, body, security)
            containers.append(container)
            if security:
                secured.append(container)
    return PodView(
        pod,
        spec,
        namespace,
        containers,
        secured,
        mapping(spec.get("securityContext")),
        mapping(spec.get("os")).get("name") == "windows",
        spec.get("hostUsers") is False,
    )


# The checks only the restricted level runs; their way out is the baseline level.
RESTRICTED_ONLY = frozenset(
    {
        "allowPrivilegeEscalation",
        "runAsNonRoot",
        "runAsUser",
        "seccompProfile_restricted",
        "capabilities_restricted",
        "procMount_restricted",
        "restrictedVolumes",
    }
)


def hint(check: str, namespace: str) -> str:
    """The other way out of a violation: a namespace that runs at a lower level."""
    level = "baseline" if check in RESTRICTED_ONLY else "privileged"
    where = namespace or "(none)"
    if level == "privileged":
        return (
            f"or ask for namespace {where} to run privileged pods "
            f"(podSecurity.namespaces: {{{namespace}: privileged}})"
        )
    return (
        f"or ask for namespace {where} to run at level baseline "
        f"(podSecurity.namespaces: {{{namespace}: baseline}})"
    )
