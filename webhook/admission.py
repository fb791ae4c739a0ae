"""The pure core: an admission request and the settings in, a verdict out.

The HTTP layer (`webhook.app`) and the dry-run path (`webhook.evaluate`) both call
`validate` and `mutate` here, so a manifest is judged the same way whichever door it
comes through. Nothing in this module performs I/O.

The request rules that hold for every policy live here, as guard clauses, before any
policy runs: DELETE and CONNECT are admitted, writes to the `status` and `scale`
subresources are admitted, exempt namespaces are skipped, and an UPDATE is denied only
for violations that the old object did not already have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from webhook.config import Settings
from webhook.mutation.pod_defaults import PodDefaults
from webhook.policies.ingress_tls import IngressTLS
from webhook.policies.pod_security import PodSecurity
from webhook.policies.rbac_binding import RbacBinding
from webhook.request import Request, as_text
from webhook.verdict import (
    Mutation,
    NoRoles,
    Object,
    Policy,
    PolicyContext,
    RoleSource,
    Verdict,
    Violation,
)

POLICIES: tuple[Policy, ...] = (PodSecurity(), IngressTLS(), RbacBinding())
MUTATIONS: tuple[Mutation, ...] = (PodDefaults(),)

# Writes that never change what a workload may do: the kubelet reporting status, an
# autoscaler changing replicas. Blocking them would wedge existing objects.
ALWAYS_ADMITTED_SUBRESOURCES = frozenset({"status", "scale"})


def _skip_reason(request: Request, namespace: str, settings: Settings) -> str:
    """Why this request is admitted without running any policy, or "" to judge it."""
    if request.operation in ("DELETE", "CONNECT"):
        return f"{request.operation} is always allowed"
    if request.sub_resource in ALWAYS_ADMITTED_SUBRESOURCES:
        return f"writes to the {request.sub_resource} subresource are always allowed"
    if namespace and namespace in settings.exempt_namespaces:
        return f"namespace {namespace} is exempt"
    if request.object is None:
        return "the request carries no object to judge"
    return ""


def _identity(request: Request, obj: Object) -> tuple[str, str]:
    """Namespace and name, from the request or, where it has none, from the object.

    Pods made from `generateName` have no name yet. The API server refuses an object whose
    namespace differs from the request's, so the request's namespace is the one that will
    hold the object; preferring it keeps a hand-made review from choosing its own level.
    """
    metadata: Any = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    namespace = request.namespace or as_text(metadata.get("namespace"))
    name = as_text(metadata.get("name")) or request.name or as_text(metadata.get("generateName"))
    return namespace, name


def _context(request: Request, settings: Settings, roles: RoleSource) -> tuple[PolicyContext, str]:
    namespace, name = _identity(request, request.object or {})
    context = PolicyContext(
        request=request, settings=settings, namespace=namespace, name=name, roles=roles
    )
    return context, _skip_reason(request, namespace, settings)


def _new_violations(policy: Policy, request: Request, context: PolicyContext) -> list[Violation]:
    """The policy's violations in the object, less those the old object already had."""
    assert request.object is not None
    found = policy.check(request.object, context)
    if not found or request.operation != "UPDATE" or not request.old_object:
        return found
    try:
        # A throwaway context: warnings about the old object are not this request's news.
        old_context = dataclasses.replace(context, warnings=[])
        old = {v.identity for v in policy.check(request.old_object, old_context)}
    except Exception:  # noqa: BLE001 - an unreadable old object grandfathers nothing
        return found
    return [violation for violation in found if violation.identity not in old]


def validate(
    request: Request,
    settings: Settings,
    *,
    roles: RoleSource | None = None,
    policies: Sequence[Policy] = POLICIES,
) -> Verdict:
    """Judge `request` with every policy that applies to it."""
    context, skip = _context(request, settings, roles or NoRoles())
    verdict = Verdict(namespace=context.namespace, name=context.name, reason=skip)
    if skip:
        return verdict

    for policy in policies:
        if not policy.applies_to(request):
            continue
        enforcement = settings.enforcement.for_policy(policy.name)
        try:
            found = _new_violations(policy, request, context)
        except Exception as error:  # noqa: BLE001 - one broken policy must not break the reply
            verdict.failed_policies.append((policy.name, error))
            message = f"policy {policy.name} could not judge this object ({error!r})"
            if enforcement == "deny":
                verdict.allowed = False
                verdict.reason = f"{message}; denied so that nothing unjudged is admitted"
            else:
                verdict.warnings.append(message)
            continue
        _file(verdict, found, enforcement)

    verdict.warnings.extend(context.warnings)
    if verdict.violations:
        verdict.allowed = False
    if verdict.allowed and not verdict.reason:
        verdict.reason = _admitted_because(verdict)
    return verdict


def _admitted_because(verdict: Verdict) -> str:
    if verdict.warned:
        return "admitted with warnings (enforcement warn)"
    if verdict.audited:
        return "admitted; violations recorded for audit (enforcement audit)"
    return "no policy found a violation"


def _file(verdict: Verdict, found: list[Violation], enforcement: str) -> None:
    """Sort violations by their policy's enforcement: deny, warn or audit."""
    if enforcement == "deny":
        verdict.violations.extend(found)
    elif enforcement == "warn":
        verdict.warned.extend(found)
        verdict.warnings.extend(f"[{v.policy}/{v.check}] {v.message}" for v in found)
    else:
        verdict.audited.extend(found)


def mutate(
    request: Request,
    settings: Settings,
    *,
    mutations: Sequence[Mutation] = MUTATIONS,
) -> Verdict:
    """The defaults every applicable mutation adds to `request`'s object, as one patch."""
    if not any(mutation.applies_to(request) for mutation in mutations):
        # Most objects are not Pods: the same verdict as below, without a context to build.
        namespace, name = _identity(request, request.object or {})
        skip = _skip_reason(request, namespace, settings)
        return Verdict(namespace=namespace, name=name, reason=skip or "nothing to default")
    context, skip = _context(request, settings, NoRoles())
    verdict = Verdict(namespace=context.namespace, name=context.name, reason=skip)
    if skip:
        return verdict
    verdict.reason = "nothing to default"
    assert request.object is not None
    for mutation in mutations:
        if not mutation.applies_to(request):
            continue
        try:
            verdict.patch.extend(mutation.patch(request.object, context))
        except Exception as error:  # noqa: BLE001 - a broken mutation must not break the reply
            verdict.failed_policies.append((mutation.name, error))
            verdict.allowed = False
            verdict.reason = (
                f"mutation {mutation.name} could not default this object ({error!r}); "
                "denied rather than admitted without its defaults"
            )
            return verdict
    if verdict.patch:
        verdict.reason = "defaults added"
    verdict.warnings.extend(context.warnings)
    return verdict
