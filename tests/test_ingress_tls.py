"""ingress-tls: every host of an Ingress or IngressRoute is served over TLS only.

Each test goes through the real engine (`webhook.admission.validate`) with an
AdmissionRequest built the way the API server builds it.
"""

from __future__ import annotations

from typing import Any

import pytest

from webhook.admission import validate
from webhook.config import Settings, settings_from_mapping
from webhook.policies.ingress_tls import covers
from webhook.review import AdmissionRequest
from webhook.verdict import Verdict

RESOURCES = {"Ingress": "ingresses", "IngressRoute": "ingressroutes"}


def request(
    obj: dict[str, Any],
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    sub_resource: str = "",
) -> AdmissionRequest:
    """An AdmissionRequest for `obj`, with group, version and kind read from the object."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    kind = obj["kind"]
    resource = RESOURCES.get(kind, kind.lower() + "s")
    return AdmissionRequest.model_validate(
        {
            "uid": "3b0c6f5e-1d2a-4c9b-9a51-000000000005",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "subResource": sub_resource,
            "namespace": "team-a",
            "name": obj["metadata"]["name"],
            "operation": operation,
            "userInfo": {"username": "dev-1", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
        }
    )


def judge(obj: dict[str, Any], settings: Settings | None = None, **kwargs: Any) -> Verdict:
    return validate(request(obj, **kwargs), settings or Settings())


def found(verdict: Verdict) -> set[tuple[str, str]]:
    """(check, subject) of every ingress-tls violation, however it was enforced."""
    return {(v.check, v.subject) for v in verdict.all_violations if v.policy == "ingress-tls"}


def backend(name: str = "app") -> dict[str, Any]:
    return {"service": {"name": name, "port": {"number": 80}}}


def rule(host: str | None) -> dict[str, Any]:
    paths = {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend()}]}
    return {"http": paths} if host is None else {"host": host, "http": paths}


def ingress(
    *hosts: str | None,
    tls: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
    api_version: str = "networking.k8s.io/v1",
    **spec: Any,
) -> dict[str, Any]:
    """An Ingress with one rule per host (None: a rule without host)."""
    body: dict[str, Any] = {**spec}
    if hosts:
        body["rules"] = [rule(host) for host in hosts]
    if tls is not None:
        body["tls"] = tls
    metadata: dict[str, Any] = {"name": "web", "namespace": "team-a"}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": api_version, "kind": "Ingress", "metadata": metadata, "spec": body}


def ingress_route(
    entry_points: list[str] | None,
    *,
    tls: dict[str, Any] | None = None,
    matches: tuple[str, ...] = ("Host(`app.example.com`)",),
    api_version: str = "traefik.io/v1alpha1",
) -> dict[str, Any]:
    routes = [
        {"match": m, "kind": "Rule", "services": [{"name": "app", "port": 80}]} for m in matches
    ]
    spec: dict[str, Any] = {"routes": routes}
    if entry_points is not None:
        spec["entryPoints"] = entry_points
    if tls is not None:
        spec["tls"] = tls
    metadata = {"name": "app", "namespace": "team-a"}
    return {"apiVersion": api_version, "kind": "IngressRoute", "metadata": metadata, "spec": spec}


HOST_A = 'host "a.example.com"'
HOST_B = 'host "b.example.com"'
ROUTER_TLS = "traefik.ingress.kubernetes.io/router.tls"
ENTRYPOINTS = "traefik.ingress.kubernetes.io/router.entrypoints"
ALLOW_HTTP = "kubernetes.io/ingress.allow-http"


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        pytest.param("a.example.com", "a.example.com", True, id="exact-name"),
        pytest.param("A.Example.COM", "a.example.com", True, id="names-compare-case-insensitively"),
        pytest.param("*.example.com", "a.example.com", True, id="wildcard-covers-one-more-label"),
        pytest.param("*.EXAMPLE.com", "A.example.com", True, id="wildcard-case-insensitive"),
        pytest.param("*.example.com", "example.com", False, id="wildcard-not-the-apex"),
        pytest.param("*.example.com", "a.b.example.com", False, id="wildcard-not-two-labels"),
        pytest.param("*.example.com", "a.example.org", False, id="wildcard-other-domain"),
        pytest.param("*.example.com", "*.example.com", True, id="wildcard-rule-host-same-wildcard"),
        pytest.param("a.example.com", "*.example.com", False, id="name-does-not-cover-wildcard"),
        pytest.param("b.example.com", "a.example.com", False, id="other-name"),
    ],
)
def test_a_tls_host_covers_its_name_or_one_wildcard_label(
    pattern: str, host: str, expected: bool
) -> None:
    """A spec.tls host covers the same name, or as `*.domain` exactly one label more."""
    assert covers(pattern, host) is expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            ingress("a.example.com", tls=[{"hosts": ["a.example.com"], "secretName": "a"}]),
            set(),
            id="exact-host-covered",
        ),
        pytest.param(
            ingress("App.Example.com", tls=[{"hosts": ["app.example.COM"], "secretName": "a"}]),
            set(),
            id="case-insensitive-host-covered",
        ),
        pytest.param(
            ingress("a.example.com", "b.example.com", tls=[{"hosts": ["*.example.com"]}]),
            set(),
            id="wildcard-covers-both-hosts",
        ),
        pytest.param(
            ingress("example.com", tls=[{"hosts": ["*.example.com"]}]),
            {("hostNotCovered", 'host "example.com"')},
            id="wildcard-does-not-cover-apex",
        ),
        pytest.param(
            ingress("a.b.example.com", tls=[{"hosts": ["*.example.com"]}]),
            {("hostNotCovered", 'host "a.b.example.com"')},
            id="wildcard-does-not-cover-two-labels",
        ),
        pytest.param(
            ingress("a.example.com", "b.example.com", tls=[{"secretName": "default-cert"}]),
            set(),
            id="tls-entry-without-hosts-covers-all",
        ),
        pytest.param(
            ingress("a.example.com", tls=[{"hosts": [], "secretName": "default-cert"}]),
            set(),
            id="tls-entry-with-empty-hosts-covers-all",
        ),
        pytest.param(
            ingress("a.example.com", tls=[{"hosts": ["x.example.com"]}, {}]),
            set(),
            id="one-hostless-entry-among-others-covers-all",
        ),
        pytest.param(
            ingress("a.example.com", annotations={ROUTER_TLS: "true"}),
            set(),
            id="traefik-router-tls-annotation-covers-all",
        ),
        pytest.param(
            ingress("a.example.com", annotations={ROUTER_TLS: "True"}),
            set(),
            id="router-tls-read-like-go-parsebool",
        ),
        pytest.param(
            ingress("a.example.com", annotations={ROUTER_TLS: "false"}),
            {("missingTLS", HOST_A)},
            id="router-tls-false-covers-nothing",
        ),
        pytest.param(
            ingress(None, tls=[{"hosts": ["a.example.com"]}]),
            {("hostNotCovered", "rule without host")},
            id="hostless-rule-not-covered-by-named-hosts",
        ),
        pytest.param(
            ingress(None, tls=[{"secretName": "wildcard"}]),
            set(),
            id="hostless-rule-covered-by-hostless-entry",
        ),
        pytest.param(
            ingress(None, annotations={ROUTER_TLS: "true"}),
            set(),
            id="hostless-rule-covered-by-router-tls",
        ),
        pytest.param(
            ingress("a.example.com", "b.example.com"),
            {("missingTLS", HOST_A), ("missingTLS", HOST_B)},
            id="no-tls-every-host-missing",
        ),
        pytest.param(
            ingress("a.example.com", tls=[]),
            {("missingTLS", HOST_A)},
            id="empty-tls-list-is-no-tls",
        ),
        pytest.param(
            ingress(None),
            {("missingTLS", "rule without host")},
            id="no-tls-hostless-rule-missing",
        ),
        pytest.param(
            ingress(defaultBackend=backend()),
            {("missingTLS", "default backend")},
            id="default-backend-only-missing-tls",
        ),
        pytest.param(
            ingress(defaultBackend=backend(), tls=[{"secretName": "default-cert"}]),
            set(),
            id="default-backend-only-with-tls",
        ),
        pytest.param(
            ingress(
                api_version="extensions/v1beta1",
                backend={"serviceName": "app", "servicePort": 80},
            ),
            {("missingTLS", "default backend")},
            id="v1beta1-default-backend-only-missing-tls",
        ),
        pytest.param(
            ingress("a.example.com", api_version="networking.k8s.io/v1beta1"),
            {("missingTLS", HOST_A)},
            id="networking-v1beta1-judged-alike",
        ),
        pytest.param(
            ingress("a.example.com", "a.example.com", tls=[{"hosts": ["b.example.com"]}]),
            {("hostNotCovered", HOST_A)},
            id="a-host-in-two-rules-reported-once",
        ),
    ],
)
def test_ingress_coverage_follows_the_contract(
    obj: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    """Hosts are covered by exact or wildcard tls hosts, host-less entries or router.tls."""
    verdict = judge(obj)
    assert found(verdict) == expected
    assert verdict.allowed is (not expected)


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({ALLOW_HTTP: "true"}, {"allow-http"}, id="allow-http-true"),
        pytest.param({ALLOW_HTTP: "1"}, {"allow-http"}, id="allow-http-parsebool-1"),
        pytest.param({ALLOW_HTTP: "false"}, set(), id="allow-http-false"),
        pytest.param({ENTRYPOINTS: "web"}, {"router.entrypoints"}, id="only-plaintext-entrypoint"),
        pytest.param({ENTRYPOINTS: " web , web "}, {"router.entrypoints"}, id="spaces-trimmed"),
        pytest.param({ENTRYPOINTS: "web,websecure"}, set(), id="plaintext-and-tls-entrypoints"),
        pytest.param({ENTRYPOINTS: "websecure"}, set(), id="only-tls-entrypoint"),
        pytest.param({ENTRYPOINTS: ""}, set(), id="empty-entrypoints"),
        pytest.param(
            {ALLOW_HTTP: "true", ENTRYPOINTS: "web"},
            {"allow-http", "router.entrypoints"},
            id="both-annotations",
        ),
    ],
)
def test_asking_for_plain_http_is_plaintext_allowed_even_with_tls(
    annotations: dict[str, str], expected: set[str]
) -> None:
    """allow-http "true" or only plaintext router.entrypoints deny a fully covered Ingress."""
    obj = ingress("a.example.com", tls=[{"hosts": ["a.example.com"]}], annotations=annotations)
    verdict = judge(obj)
    assert found(verdict) == {("plaintextAllowed", subject) for subject in expected}


def test_plaintext_entrypoints_come_from_the_configuration() -> None:
    """router.entrypoints is judged against ingress.plaintextEntrypoints, not a fixed name."""
    settings = settings_from_mapping(
        {"ingress": {"plaintextEntrypoints": ["http"], "tlsEntrypoints": ["https"]}}
    )
    tls = [{"hosts": ["a.example.com"]}]
    on_http = ingress("a.example.com", tls=tls, annotations={ENTRYPOINTS: "http"})
    on_web = ingress("a.example.com", tls=tls, annotations={ENTRYPOINTS: "web"})
    assert found(judge(on_http, settings)) == {("plaintextAllowed", "router.entrypoints")}
    assert judge(on_web, settings).allowed


def test_missing_tls_and_plaintext_are_both_reported() -> None:
    """An Ingress without TLS that also asks for plain HTTP gets both findings at once."""
    verdict = judge(ingress("a.example.com", annotations={ALLOW_HTTP: "true"}))
    assert found(verdict) == {("missingTLS", HOST_A), ("plaintextAllowed", "allow-http")}


@pytest.mark.parametrize(
    "ingress_class",
    [
        pytest.param({"ingressClassName": "traefik"}, id="class-name-traefik"),
        pytest.param({"ingressClassName": "nginx"}, id="class-name-nginx"),
        pytest.param({"ingressClassName": "gce"}, id="class-name-gce"),
        pytest.param({}, id="no-class"),
    ],
)
def test_the_verdict_never_depends_on_the_ingress_class(ingress_class: dict[str, str]) -> None:
    """Whatever the ingress class, a host without TLS is denied and a covered one admitted."""
    bare = ingress("a.example.com", **ingress_class)
    covered = ingress("a.example.com", tls=[{"hosts": ["a.example.com"]}], **ingress_class)
    assert found(judge(bare)) == {("missingTLS", HOST_A)}
    assert judge(covered).allowed


@pytest.mark.parametrize(
    ("api_version", "kind", "sub_resource", "judged"),
    [
        pytest.param("networking.k8s.io/v1", "Ingress", "", True, id="networking-v1"),
        pytest.param("networking.k8s.io/v1beta1", "Ingress", "", True, id="networking-v1beta1"),
        pytest.param("extensions/v1beta1", "Ingress", "", True, id="extensions-v1beta1"),
        pytest.param("traefik.io/v1alpha1", "IngressRoute", "", True, id="traefik-io"),
        pytest.param("traefik.containo.us/v1alpha1", "IngressRoute", "", True, id="traefik-old"),
        pytest.param("traefik.io/v1alpha1", "IngressRouteTCP", "", False, id="tcp-routes-not"),
        pytest.param("example.com/v1", "Ingress", "", False, id="other-group-ingress-not"),
        pytest.param("networking.k8s.io/v1", "Ingress", "status", False, id="status-not"),
    ],
)
def test_the_policy_judges_ingresses_and_ingress_routes_only(
    api_version: str, kind: str, sub_resource: str, judged: bool
) -> None:
    """Ingress in its three API versions and both IngressRoute groups; nothing else."""
    obj = ingress("a.example.com", api_version=api_version)
    obj["kind"] = kind
    verdict = judge(obj, sub_resource=sub_resource)
    assert bool(found(verdict)) is judged


def test_a_denial_names_every_uncovered_host_and_the_fix() -> None:
    """Both uncovered hosts are named, each with the spec.tls fix and a secretName."""
    obj = ingress(
        "a.example.com",
        "b.example.com",
        "c.example.com",
        tls=[{"hosts": ["a.example.com"], "secretName": "a-tls"}],
    )
    verdict = judge(obj)
    assert not verdict.allowed
    assert found(verdict) == {
        ("hostNotCovered", HOST_B),
        ("hostNotCovered", 'host "c.example.com"'),
    }
    messages = " ".join(v.message for v in verdict.violations)
    assert "b.example.com" in messages
    assert "c.example.com" in messages
    for violation in verdict.violations:
        assert "spec.tls[].hosts" in violation.message
        assert "secretName" in violation.message
        assert "cert-manager" in violation.message
    assert [v.path for v in verdict.violations] == ["spec.rules[1].host", "spec.rules[2].host"]


def test_missing_tls_names_each_host_and_how_to_add_tls() -> None:
    """Without spec.tls each host's message says it is plain HTTP and how to add TLS."""
    verdict = judge(ingress("a.example.com", "b.example.com"))
    messages = [v.message for v in verdict.violations]
    assert len(messages) == 2
    assert "a.example.com" in messages[0]
    assert "b.example.com" in messages[1]
    assert all("plain HTTP" in m and "spec.tls" in m and "secretName" in m for m in messages)


# IngressRoute (Traefik CRD)


@pytest.mark.parametrize(
    ("obj", "missing"),
    [
        pytest.param(ingress_route(["websecure"]), False, id="tls-entrypoint-only"),
        pytest.param(ingress_route(["web"]), True, id="plaintext-entrypoint"),
        pytest.param(ingress_route(["web", "websecure"]), True, id="mixed-entrypoints"),
        pytest.param(ingress_route(["internal"]), True, id="unknown-entrypoint"),
        pytest.param(ingress_route(None), True, id="no-entrypoints-means-all"),
        pytest.param(ingress_route([]), True, id="empty-entrypoints-means-all"),
        pytest.param(ingress_route(None, tls={}), False, id="empty-tls-section-uses-default-cert"),
        pytest.param(
            ingress_route(["web", "websecure"], tls={"secretName": "app"}), False, id="tls"
        ),
        pytest.param(ingress_route(None, tls={"certResolver": "le"}), False, id="cert-resolver"),
        pytest.param(
            ingress_route(["web"], api_version="traefik.containo.us/v1alpha1"),
            True,
            id="old-group-judged-alike",
        ),
    ],
)
def test_an_ingress_route_needs_tls_unless_only_on_tls_entrypoints(
    obj: dict[str, Any], missing: bool
) -> None:
    """spec.tls is required unless every entryPoint is a configured TLS entrypoint."""
    verdict = judge(obj)
    expected = {("missingTLS", 'route "Host(`app.example.com`)"')} if missing else set()
    assert found(verdict) == expected


def test_ingress_route_tls_entrypoints_come_from_the_configuration() -> None:
    """An IngressRoute only on a configured TLS entrypoint needs no spec.tls."""
    settings = settings_from_mapping({"ingress": {"tlsEntrypoints": ["https", "internal-tls"]}})
    assert judge(ingress_route(["https", "internal-tls"]), settings).allowed
    assert not judge(ingress_route(["websecure"]), settings).allowed


def test_ingress_route_without_tls_names_every_route_and_the_fix() -> None:
    """Each route is named; the message says to add spec.tls or use TLS entrypoints."""
    obj = ingress_route(None, matches=("Host(`a.example.com`)", "Host(`b.example.com`)"))
    verdict = judge(obj)
    assert [v.path for v in verdict.violations] == ["spec.routes[0]", "spec.routes[1]"]
    for violation in verdict.violations:
        assert "every entrypoint" in violation.message
        assert "spec.tls" in violation.message
        assert "websecure" in violation.message


def test_ingress_route_with_tls_on_plaintext_entrypoints_is_admitted_with_a_warning() -> None:
    """TLS on a plaintext port serves nothing in clear text, but is flagged as a likely mistake."""
    verdict = judge(ingress_route(["web"], tls={"secretName": "app"}))
    assert verdict.allowed
    assert len(verdict.warnings) == 1
    assert "plaintext" in verdict.warnings[0]
    assert "websecure" in verdict.warnings[0]


# UPDATE: only new violations deny


def test_annotation_update_of_an_ingress_already_lacking_tls_on_a_host_is_admitted() -> None:
    """A pre-existing uncovered host does not block an annotation-only UPDATE."""
    old = ingress("a.example.com", "b.example.com", tls=[{"hosts": ["a.example.com"]}])
    new = ingress(
        "a.example.com",
        "b.example.com",
        tls=[{"hosts": ["a.example.com"]}],
        annotations={"team": "payments"},
    )
    assert judge(new, operation="UPDATE", old=old).allowed


def test_update_adding_a_new_uncovered_host_is_denied_for_that_host_only() -> None:
    """The host the update adds is denied; the one that was already uncovered is not named."""
    old = ingress("a.example.com", "b.example.com", tls=[{"hosts": ["a.example.com"]}])
    new = ingress(
        "a.example.com", "b.example.com", "c.example.com", tls=[{"hosts": ["a.example.com"]}]
    )
    verdict = judge(new, operation="UPDATE", old=old)
    assert not verdict.allowed
    assert {(v.check, v.subject) for v in verdict.violations} == {
        ("hostNotCovered", 'host "c.example.com"')
    }


def test_update_adding_a_host_to_an_ingress_without_tls_is_denied() -> None:
    """Grandfathering is per host: a TLS-less Ingress cannot grow new plain-HTTP hosts."""
    old = ingress("a.example.com")
    new = ingress("a.example.com", "b.example.com")
    verdict = judge(new, operation="UPDATE", old=old)
    assert {(v.check, v.subject) for v in verdict.violations} == {("missingTLS", HOST_B)}
    assert judge(ingress("a.example.com"), operation="UPDATE", old=old).allowed


def test_update_turning_on_allow_http_is_denied() -> None:
    """Adding allow-http "true" to an admitted Ingress is a new violation."""
    old = ingress("a.example.com", tls=[{"hosts": ["a.example.com"]}])
    new = ingress(
        "a.example.com", tls=[{"hosts": ["a.example.com"]}], annotations={ALLOW_HTTP: "true"}
    )
    verdict = judge(new, operation="UPDATE", old=old)
    assert found(verdict) == {("plaintextAllowed", "allow-http")}


def test_update_adding_a_route_to_an_ingress_route_without_tls_is_denied() -> None:
    """An existing route without TLS is grandfathered; a new route is not."""
    old = ingress_route(["web"], matches=("Host(`a.example.com`)",))
    same = ingress_route(["web"], matches=("Host(`a.example.com`)",))
    same["metadata"]["labels"] = {"team": "payments"}
    grown = ingress_route(["web"], matches=("Host(`a.example.com`)", "Host(`b.example.com`)"))
    assert judge(same, operation="UPDATE", old=old).allowed
    verdict = judge(grown, operation="UPDATE", old=old)
    assert [v.subject for v in verdict.violations] == ['route "Host(`b.example.com`)"']


def test_the_warning_of_the_old_object_is_not_repeated_on_update() -> None:
    """Moving an IngressRoute from a plaintext to a TLS entrypoint carries no stale warning."""
    old = ingress_route(["web"], tls={"secretName": "app"})
    new = ingress_route(["websecure"], tls={"secretName": "app"})
    verdict = judge(new, operation="UPDATE", old=old)
    assert verdict.allowed
    assert verdict.warnings == []


def test_warn_enforcement_admits_with_the_messages_as_warnings() -> None:
    """With ingress-tls set to warn, an Ingress without TLS is admitted and warned about."""
    settings = settings_from_mapping({"enforcement": {"ingress-tls": "warn"}})
    verdict = judge(ingress("a.example.com"), settings)
    assert verdict.allowed
    assert any("a.example.com" in warning for warning in verdict.warnings)


def test_delete_of_an_ingress_without_tls_is_admitted() -> None:
    """DELETE is always allowed, whatever the object."""
    assert judge(ingress("a.example.com"), operation="DELETE").allowed


# The handed cases, in our own words


def test_c12_ingress_with_both_hosts_covered_is_admitted() -> None:
    """C12: one tls entry listing both hosts covers both rules."""
    obj = ingress(
        "shop.example.net",
        "api.example.net",
        tls=[{"hosts": ["shop.example.net", "api.example.net"], "secretName": "shop-api-tls"}],
    )
    assert judge(obj).allowed


def test_c13_ingress_without_tls_is_denied_whatever_its_class() -> None:
    """C13: a v1 Ingress of class traefik without spec.tls is missingTLS."""
    obj = ingress("blog.example.net", ingressClassName="traefik")
    verdict = judge(obj)
    assert not verdict.allowed
    assert {v.check for v in verdict.violations} == {"missingTLS"}


def test_c14_the_uncovered_host_is_named_in_the_denial() -> None:
    """C14: with one of two hosts in spec.tls, the other is hostNotCovered and named."""
    obj = ingress(
        "shop.example.net",
        "admin.example.net",
        tls=[{"hosts": ["shop.example.net"], "secretName": "shop-tls"}],
    )
    verdict = judge(obj)
    assert not verdict.allowed
    assert [(v.check, v.subject) for v in verdict.violations] == [
        ("hostNotCovered", 'host "admin.example.net"')
    ]
    assert "admin.example.net" in verdict.violations[0].message
