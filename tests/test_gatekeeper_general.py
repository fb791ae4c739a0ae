"""Bulwark's verdicts on the gatekeeper-library `httpsonly` and `disallowanonymous` samples.

The samples are read from `../shared` (never copied). Each case states Bulwark's verdict,
Gatekeeper's (from the library's suite.yaml) and, where they differ, why:

* httpsonly demands the annotation `kubernetes.io/ingress.allow-http: "false"`, which only
  the GCE ingress controller reads; Bulwark does not (the contract never depends on the
  controller) and instead denies only an explicit `"true"`. Gatekeeper's `tlsOptional`
  turns the TLS requirement off; Bulwark has no such switch: TLS is the point.
* disallowanonymous lets `system:authenticated` through unless told otherwise
  (`disallowAuthenticated`), and exempts whole roles (`allowedRoles`). Bulwark always treats
  `system:authenticated` as broad, and exempts subjects (`rbac.exemptSubjects`), not roles;
  only the ClusterRoles the API server itself grants to everyone are let through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from webhook.admission import validate
from webhook.config import Settings, settings_from_mapping
from webhook.review import AdmissionRequest
from webhook.verdict import Verdict

GENERAL = Path("fixtures/gatekeeper-library/library/general")
HTTPSONLY = GENERAL / "httpsonly/samples"
ANONYMOUS = GENERAL / "disallowanonymous/samples/no-anonymous-bindings"


def load(shared_dir: Path, relative: Path) -> dict[str, Any]:
    document = yaml.safe_load((shared_dir / relative).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def judge(obj: dict[str, Any], settings: Settings | None = None) -> Verdict:
    """The verdict for creating `obj` in namespace team-a, through the real engine."""
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    kind = obj["kind"]
    namespaced = kind != "ClusterRoleBinding"
    request = AdmissionRequest.model_validate(
        {
            "uid": "5c441fb6-0000-4000-8000-00000000000a",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "namespace": "team-a" if namespaced else "",
            "name": obj["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": {"username": "dev-1"},
            "object": obj,
        }
    )
    return validate(request, settings or Settings())


def checks(verdict: Verdict) -> set[tuple[str, str]]:
    return {(v.check, v.subject) for v in verdict.violations}


HOST = 'host "example-host.example.com"'


@pytest.mark.parametrize(
    ("sample", "gatekeeper_allows", "bulwark_denies_with"),
    [
        pytest.param(
            HTTPSONLY / "ingress-https-only/example_allowed.yaml",
            True,
            set(),
            id="tls-required-allowed:same-verdict",
        ),
        pytest.param(
            HTTPSONLY / "ingress-https-only/example_disallowed.yaml",
            False,
            {("missingTLS", HOST)},
            id="tls-required-disallowed:same-verdict",
        ),
        pytest.param(
            HTTPSONLY / "ingress-https-only-tls-optional/example_allowed.yaml",
            True,
            {("missingTLS", HOST)},
            id="tls-optional-allowed:bulwark-denies-no-tls-optional",
        ),
        pytest.param(
            HTTPSONLY / "ingress-https-only-tls-optional/example_disallowed.yaml",
            False,
            {("missingTLS", HOST)},
            id="tls-optional-disallowed:same-verdict-other-reason",
        ),
    ],
)
def test_httpsonly_samples(
    shared_dir: Path,
    sample: Path,
    gatekeeper_allows: bool,
    bulwark_denies_with: set[tuple[str, str]],
) -> None:
    """Bulwark denies exactly the samples without TLS, whatever allow-http says otherwise."""
    verdict = judge(load(shared_dir, sample))
    assert checks(verdict) == bulwark_denies_with
    assert verdict.allowed is not bulwark_denies_with
    # The verdicts differ on the tlsOptional sample only: Bulwark never makes TLS optional.
    tls_optional_allowed = sample.match("ingress-https-only-tls-optional/example_allowed.yaml")
    assert (verdict.allowed != gatekeeper_allows) is tls_optional_allowed


def test_httpsonly_allowed_sample_without_the_gce_annotation_is_still_admitted(
    shared_dir: Path,
) -> None:
    """Gatekeeper would deny it for lacking allow-http "false"; Bulwark only needs the TLS."""
    obj = load(shared_dir, HTTPSONLY / "ingress-https-only/example_allowed.yaml")
    del obj["metadata"]["annotations"]
    assert obj["spec"]["tls"] == [{}]
    assert judge(obj).allowed


def test_httpsonly_allowed_sample_asking_for_plain_http_is_denied(shared_dir: Path) -> None:
    """Flipping the sample's annotation to "true" is the one allow-http value Bulwark denies."""
    obj = load(shared_dir, HTTPSONLY / "ingress-https-only/example_allowed.yaml")
    obj["metadata"]["annotations"]["kubernetes.io/ingress.allow-http"] = "true"
    assert checks(judge(obj)) == {("plaintextAllowed", "allow-http")}


AUTHENTICATED = ("broadSubject", 'Group "system:authenticated"')
UNAUTHENTICATED = ("broadSubject", 'Group "system:unauthenticated"')
ANONYMOUS_GROUP = ("broadSubject", 'Group "system:anonymous"')


@pytest.mark.parametrize(
    ("sample", "gatekeeper_allows", "bulwark_denies_with"),
    [
        pytest.param(
            ANONYMOUS / "example_allowed.yaml",
            True,
            {AUTHENTICATED, UNAUTHENTICATED},
            id="allowed:bulwark-denies-no-allowed-roles",
        ),
        pytest.param(
            ANONYMOUS / "example_disallowed.yaml",
            False,
            {AUTHENTICATED, UNAUTHENTICATED, ANONYMOUS_GROUP},
            id="disallowed:same-verdict-authenticated-also-broad",
        ),
    ],
)
def test_disallowanonymous_samples(
    shared_dir: Path,
    sample: Path,
    gatekeeper_allows: bool,
    bulwark_denies_with: set[tuple[str, str]],
) -> None:
    """Every population group is named, system:authenticated included, whatever the role."""
    verdict = judge(load(shared_dir, sample))
    assert checks(verdict) == bulwark_denies_with
    assert not verdict.allowed
    # Gatekeeper admits example_allowed only because its constraint lists cluster-role-1 in
    # allowedRoles; Bulwark has no per-role allowlist, so the verdicts differ there only.
    assert (verdict.allowed != gatekeeper_allows) is sample.match("example_allowed.yaml")
    # The sample's role is not in any role source here: judged by name, with a warning.
    assert any("judged by the role's name only" in w for w in verdict.warnings)


def test_disallowanonymous_allowed_sample_is_admitted_once_its_subjects_are_exempt(
    shared_dir: Path,
) -> None:
    """Bulwark's way to say what allowedRoles says: exempt the subjects explicitly."""
    settings = settings_from_mapping(
        {
            "rbac": {
                "exemptSubjects": [
                    {"kind": "Group", "name": "system:authenticated"},
                    {"kind": "Group", "name": "system:unauthenticated"},
                ]
            }
        }
    )
    obj = load(shared_dir, ANONYMOUS / "example_allowed.yaml")
    assert judge(obj, settings).allowed


def test_disallowanonymous_sample_bound_to_a_public_role_is_admitted(shared_dir: Path) -> None:
    """Bound to system:public-info-viewer, which the API server grants everyone, it passes."""
    obj = load(shared_dir, ANONYMOUS / "example_disallowed.yaml")
    obj["roleRef"]["name"] = "system:public-info-viewer"
    assert judge(obj).allowed
