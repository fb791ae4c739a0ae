"""ingress-tls: Ingresses and Traefik IngressRoutes serve their hosts over TLS only.

An Ingress without TLS sends cookies, tokens and form posts across the network in clear
text, and nothing in Kubernetes stops one from being created. This policy asks of every
Ingress (`networking.k8s.io/v1`, and the `networking.k8s.io/v1beta1` and
`extensions/v1beta1` shapes) that each host its rules serve is covered by TLS:

* a `spec.tls[].hosts` entry names the host exactly, or is a `*.domain` wildcard that covers
  it with exactly one more label (as a certificate's wildcard does: `*.example.com` covers
  `a.example.com`, neither `example.com` nor `a.b.example.com`); names compare
  case-insensitively;
* a `spec.tls` entry that lists no hosts covers every host (the controller's default or
  wildcard certificate), and so does Traefik's `router.tls: "true"` annotation;
* a rule without a host answers every name, so only those two cover it.

With neither `spec.tls` nor that annotation, everything the Ingress serves is `missingTLS`
(a default backend included); with `spec.tls`, each host it leaves out is `hostNotCovered`.
Whatever the coverage, asking for plain HTTP besides (`kubernetes.io/ingress.allow-http:
"true"`, or Traefik's `router.entrypoints` naming only plaintext entrypoints) is
`plaintextAllowed`. The ingress class is never read: a class can be renamed or defaulted
after admission, so the verdict must not hang on it.

Violations are reported per host (`subject` 'host "a.example.com"'), so an UPDATE that only
touches labels or annotations of an Ingress that already lacked TLS is admitted, while one
that adds a new uncovered host is denied.

A Traefik IngressRoute (`traefik.io/v1alpha1`, `traefik.containo.us/v1alpha1`) carries no
host list in its TLS section, so it is judged by its entrypoints: it needs `spec.tls` unless
every one of its `spec.entryPoints` is a TLS entrypoint of the configuration
(`ingress.tlsEntrypoints`, where Traefik terminates TLS for every router). An IngressRoute
that lists no entryPoints is served on every entrypoint, the plaintext ones included, so it
needs `spec.tls`. One that has `spec.tls` but lists only plaintext entrypoints serves nothing
in clear text (Traefik then expects TLS on the plaintext port), which is almost surely a
mistake but not an exposure: it is admitted with a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from webhook.request import Request
from webhook.verdict import Object, PolicyContext, Violation

POLICY = "ingress-tls"

INGRESS_GROUPS = frozenset({"networking.k8s.io", "extensions"})
INGRESS_ROUTE_GROUPS = frozenset({"traefik.io", "traefik.containo.us"})

ALLOW_HTTP = "kubernetes.io/ingress.allow-http"
ROUTER_TLS = "traefik.ingress.kubernetes.io/router.tls"
ROUTER_ENTRYPOINTS = "traefik.ingress.kubernetes.io/router.entrypoints"

# The spellings Go's strconv.ParseBool reads as true; ingress-gce and Traefik both read
# these annotations with it, so "True" or "1" mean what "true" means.
_GO_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})

_CERT_HINT = "with a secretName holding its certificate (a cert-manager Certificate can issue one)"


def _mapping(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_true(value: Any) -> bool:
    return isinstance(value, str) and value.strip() in _GO_TRUE


def _annotation_path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def covers(pattern: str, host: str) -> bool:
    """Whether a `spec.tls[].hosts` entry covers `host` (exactly, or as a one-label wildcard)."""
    pattern, host = pattern.strip().lower(), host.strip().lower()
    if pattern == host:
        return True
    if not pattern.startswith("*.") or "." not in host:
        return False
    first, rest = host.split(".", 1)
    return bool(first) and rest == pattern[2:]


@dataclass(frozen=True, slots=True)
class Served:
    """One thing an Ingress answers for: a host, or every name (host-less rule, default backend)."""

    host: str  # lower-cased; "" when it answers every name
    subject: str
    path: str


def served(spec: Object) -> list[Served]:
    """What the Ingress answers for, one entry per distinct host, in rule order."""
    found: dict[str, Served] = {}
    for index, rule in enumerate(_list(spec.get("rules"))):
        if not isinstance(rule, dict):
            continue
        host = str(rule.get("host") or "").strip().lower()
        subject = f'host "{host}"' if host else "rule without host"
        path = f"spec.rules[{index}].host" if host else f"spec.rules[{index}]"
        found.setdefault(subject, Served(host, subject, path))
    return list(found.values())


def _default_backend_path(spec: Object) -> str:
    """Where the default backend is (`spec.backend` in the v1beta1 shapes), or ""."""
    for key in ("defaultBackend", "backend"):
        if isinstance(spec.get(key), dict):
            return f"spec.{key}"
    return ""


def _violation(check: str, message: str, path: str, subject: str) -> Violation:
    return Violation(POLICY, check, message, path, subject)


def _missing_tls(spec: Object) -> list[Violation]:
    """Everything a TLS-less Ingress serves, each in its own violation."""
    found = []
    for item in served(spec):
        if item.host:
            message = (
                f"{item.subject} is served over plain HTTP: the Ingress has no spec.tls; "
                f"add the host to spec.tls[].hosts {_CERT_HINT}"
            )
        else:
            message = (
                f"the rule without host ({item.path}) answers every name over plain HTTP: the "
                "Ingress has no spec.tls; add a spec.tls entry without hosts (it covers every "
                "name) or give the rule a host and list it in spec.tls[].hosts"
            )
        found.append(_violation("missingTLS", message, item.path, item.subject))

    backend = _default_backend_path(spec)
    if backend:
        message = (
            f"the default backend ({backend}) answers every name over plain HTTP: the Ingress "
            f"has no spec.tls; add a spec.tls entry {_CERT_HINT} (an entry without hosts "
            "covers every name)"
        )
        found.append(_violation("missingTLS", message, backend, "default backend"))
    if not found:
        message = f"the Ingress has no spec.tls; add spec.tls {_CERT_HINT}"
        found.append(_violation("missingTLS", message, "spec.tls", "ingress"))
    return found


def _uncovered(spec: Object, patterns: Sequence[str]) -> list[Violation]:
    """Each host of the rules that no `spec.tls[].hosts` entry covers."""
    listed = ", ".join(patterns)
    found = []
    for item in served(spec):
        if item.host and any(covers(pattern, item.host) for pattern in patterns):
            continue
        if item.host:
            message = (
                f"{item.subject} is not covered by spec.tls (it covers {listed}), so it is "
                f"served without TLS; add it to spec.tls[].hosts {_CERT_HINT}"
            )
        else:
            message = (
                f"the rule without host ({item.path}) answers every name, but spec.tls covers "
                f"only {listed}; give the rule a host and list it in spec.tls[].hosts, or add "
                "a spec.tls entry without hosts"
            )
        found.append(_violation("hostNotCovered", message, item.path, item.subject))
    return found


def _entrypoints(value: Any) -> list[str]:
    names = value.split(",") if isinstance(value, str) else _list(value)
    return [str(name).strip() for name in names if str(name).strip()]


def _plaintext(annotations: Object, context: PolicyContext) -> list[Violation]:
    """The annotations that ask the controller for plain HTTP."""
    found = []
    if _is_true(annotations.get(ALLOW_HTTP)):
        message = (
            f'the annotation {ALLOW_HTTP}: "true" asks the controller to serve plain HTTP '
            'besides HTTPS; remove it or set it to "false"'
        )
        found.append(
            _violation("plaintextAllowed", message, _annotation_path(ALLOW_HTTP), "allow-http")
        )

    settings = context.settings.ingress
    names = _entrypoints(annotations.get(ROUTER_ENTRYPOINTS))
    if names and all(name in settings.plaintext_entrypoints for name in names):
        message = (
            f"the annotation {ROUTER_ENTRYPOINTS} routes this Ingress only through plaintext "
            f"entrypoints ({', '.join(names)}); name a TLS entrypoint instead "
            f"({', '.join(settings.tls_entrypoints) or 'one with TLS configured in Traefik'})"
        )
        path = _annotation_path(ROUTER_ENTRYPOINTS)
        found.append(_violation("plaintextAllowed", message, path, "router.entrypoints"))
    return found


def judge_ingress(obj: Object, context: PolicyContext) -> list[Violation]:
    """Every ingress-tls violation of an Ingress, in any of its API versions."""
    annotations = _mapping(_mapping(obj.get("metadata")).get("annotations"))
    spec = _mapping(obj.get("spec"))
    found = _plaintext(annotations, context)
    if _is_true(annotations.get(ROUTER_TLS)):
        return found

    entries = [entry for entry in _list(spec.get("tls")) if isinstance(entry, dict)]
    if not entries:
        return found + _missing_tls(spec)
    if any(not _list(entry.get("hosts")) for entry in entries):
        return found
    patterns = [str(host) for entry in entries for host in _list(entry.get("hosts"))]
    return found + _uncovered(spec, patterns)


def judge_ingress_route(obj: Object, context: PolicyContext) -> list[Violation]:
    """Whether a Traefik IngressRoute's routes are served only over TLS."""
    spec = _mapping(obj.get("spec"))
    settings = context.settings.ingress
    entrypoints = _entrypoints(spec.get("entryPoints"))
    only_plaintext = bool(entrypoints) and all(
        name in settings.plaintext_entrypoints for name in entrypoints
    )

    if isinstance(spec.get("tls"), dict):
        if only_plaintext:
            context.warn(
                f"IngressRoute {context.namespace}/{context.name} has spec.tls but only plaintext "
                f"entryPoints ({', '.join(entrypoints)}), so Traefik expects TLS on a plaintext "
                f"port; did you mean {', '.join(settings.tls_entrypoints) or 'a TLS entrypoint'}?",
            )
        return []
    if entrypoints and all(name in settings.tls_entrypoints for name in entrypoints):
        return []

    if not entrypoints:
        reason = "lists no entryPoints, so Traefik serves it on every entrypoint"
    else:
        reason = f"is served on entryPoints {', '.join(entrypoints)}"
    fix = (
        "add spec.tls (a secretName, e.g. from a cert-manager Certificate, or a certResolver) "
        "or set spec.entryPoints to TLS entrypoints only "
        f"({', '.join(settings.tls_entrypoints) or 'none are configured'})"
    )
    found = []
    for index, route in enumerate(_list(spec.get("routes"))):
        match = str(_mapping(route).get("match") or "")
        subject = f'route "{match}"'
        message = f"{subject} is served without TLS: the IngressRoute {reason}; {fix}"
        found.append(_violation("missingTLS", message, f"spec.routes[{index}]", subject))
    if not found:
        message = f"the IngressRoute has no spec.tls and {reason}; {fix}"
        found.append(_violation("missingTLS", message, "spec.tls", "ingressroute"))
    return found


class IngressTLS:
    """The ingress-tls policy, as the engine calls it."""

    name = POLICY

    def applies_to(self, request: Request) -> bool:
        if request.sub_resource:
            return False
        kind = request.kind
        return (kind.kind == "Ingress" and kind.group in INGRESS_GROUPS) or (
            kind.kind == "IngressRoute" and kind.group in INGRESS_ROUTE_GROUPS
        )

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        if context.request.kind.kind == "IngressRoute":
            return judge_ingress_route(obj, context)
        return judge_ingress(obj, context)
