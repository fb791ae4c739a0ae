"""The vocabulary shared by the engine, the policies and the mutations.

A policy reads an object and returns `Violation`s; a mutation reads an object and returns
JSON Patch operations; the engine folds both into one `Verdict`. Nothing here knows about
HTTP, TLS or the Kubernetes client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from webhook.config import Settings
    from webhook.request import Request

Object = Mapping[str, Any]
PatchOperation = dict[str, Any]
Enforcement = Literal["deny", "warn", "audit"]


# A denial or an audit annotation names at most this many violations; the rest are
# counted. Each one found is still in the log and the metrics.
MAX_LISTED_VIOLATIONS = 20


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, phrased for the person who has to fix it.

    `subject` says what the violation is about (`container "sidecar"`, `pod`,
    `host "b.example.com"`). An UPDATE is denied only for violations the old object did
    not already have, compared by `identity`: the message is part of it, since it carries
    the offending value, so widening a violation the object already had (a second added
    capability, a hostPath moved to "/") is news, while a label edit is not. The path,
    which holds list indices, is taken out of the message so that reordering is not news.
    """

    policy: str
    check: str
    message: str
    path: str
    subject: str = ""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        detail = self.message.replace(self.path, "") if self.path else self.message
        return (self.policy, self.check, self.subject or self.path, detail)

    def as_dict(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "check": self.check,
            "message": self.message,
            "path": self.path,
        }


class RoleSource(Protocol):
    """Where the rbac-binding policy finds the rules of the role a binding references."""

    def rules(self, kind: str, namespace: str, name: str) -> Sequence[Object] | None:
        """The role's rules, or None when the role is not known."""

    def complete(self) -> bool:
        """Whether a missing role is truly absent (False: the source could not be read)."""


class NoRoles:
    """A role source that knows no roles: every binding is judged by its role's name."""

    def rules(self, kind: str, namespace: str, name: str) -> Sequence[Object] | None:
        return None

    def complete(self) -> bool:
        return True


@dataclass(slots=True)  # not frozen: one is built per request, and a frozen one costs 3x
class PolicyContext:
    """What a policy may know besides the object itself. Policies only read it."""

    request: Request
    settings: Settings
    namespace: str
    name: str
    roles: RoleSource
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        """Add a warning that is returned whatever the verdict (e.g. a role not found)."""
        if message not in self.warnings:
            self.warnings.append(message)


class Policy(Protocol):
    """A validating rule set such as pod-security; one module each under `webhook.policies`."""

    name: str

    def applies_to(self, request: Request) -> bool:
        """Whether this policy judges requests for this kind of resource."""

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        """Every violation in `obj`; an empty list admits it."""


class Mutation(Protocol):
    """A defaulting rule set such as pod-defaults; one module each under `webhook.mutation`."""

    name: str

    def applies_to(self, request: Request) -> bool:
        """Whether this mutation edits requests for this kind of resource and operation."""

    def patch(self, obj: Object, context: PolicyContext) -> list[PatchOperation]:
        """The RFC 6902 operations that apply this mutation's defaults to `obj`."""


@dataclass(slots=True)
class Verdict:
    """The engine's answer to one admission request, about the object it names."""

    namespace: str = ""  # as the engine resolved them: see `webhook.admission`
    name: str = ""
    allowed: bool = True
    violations: list[Violation] = field(default_factory=list)  # the ones that deny
    warned: list[Violation] = field(default_factory=list)
    audited: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    patch: list[PatchOperation] = field(default_factory=list)
    failed_policies: list[tuple[str, BaseException]] = field(default_factory=list)
    reason: str = ""

    @property
    def has_violations(self) -> bool:
        """Whether any violation was found, whatever its enforcement."""
        return bool(self.violations or self.warned or self.audited)

    @property
    def all_violations(self) -> list[Violation]:
        return [*self.violations, *self.warned, *self.audited]

    def by_enforcement(self) -> Iterator[tuple[Enforcement, Violation]]:
        """Every violation with the enforcement it was filed under."""
        filed: tuple[tuple[Enforcement, list[Violation]], ...] = (
            ("deny", self.violations),
            ("warn", self.warned),
            ("audit", self.audited),
        )
        for enforcement, found in filed:
            for violation in found:
                yield enforcement, violation

    def audit_annotations(self) -> dict[str, str]:
        """`auditAnnotations`, one per policy and check, its first `MAX_LISTED_VIOLATIONS`
        messages joined and the rest counted: each becomes part of the API server's audit
        event, which a pod of thousands of containers must not swell. The API server
        prefixes each key with the webhook's name."""
        found: dict[str, list[str]] = {}
        for violation in self.audited:
            found.setdefault(f"{violation.policy}.{violation.check}", []).append(violation.message)
        annotations = {}
        for key, messages in found.items():
            listed = "; ".join(messages[:MAX_LISTED_VIOLATIONS])
            left = len(messages) - MAX_LISTED_VIOLATIONS
            annotations[key] = f"{listed}; and {left} more" if left > 0 else listed
        return annotations
