"""The upstream pod-security-admission fixtures for v1.37, replayed through the real engine.

Every `pass/` pod must be admitted at its level and every `fail/` pod denied, naming the
check the fixture's file name gives (lower-cased upstream, e.g. `procmount_restricted1`) or
the restricted check that stands in for it. The fixtures stay in `../shared`; nothing is
copied here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SHARED
from webhook.admission import validate
from webhook.config import Settings, settings_from_mapping
from webhook.policies.pod_security import CHECKS
from webhook.review import AdmissionRequest

VERSION = "v1.37"
LEVELS = ("baseline", "restricted")
TESTDATA = Path("fixtures/pod-security-admission/test/testdata")

CHECK_IDS = {check.id.lower(): check.id for check in CHECKS}
STAND_INS = {check.stands_in_for: check.id for check in CHECKS if check.stands_in_for}


def _fixtures() -> list[Any]:
    """(level, outcome, file name) for every fixture; resolved against `shared_dir` later."""
    params = []
    for level in LEVELS:
        for outcome in ("pass", "fail"):
            folder = SHARED / TESTDATA / level / VERSION / outcome
            names = sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
            params.extend(
                pytest.param(level, outcome, name, id=f"{level}-{outcome}-{name[:-5]}")
                for name in names
            )
    if not params:  # no ../shared: one parameter whose test skips through `shared_dir`
        params.append(pytest.param("baseline", "pass", "base.yaml", id="fixtures-absent"))
    return params


def _expected_check(file_name: str, level: str) -> str:
    """The check id a fail fixture is about, as the level under test names it."""
    stem = re.sub(r"\d+$", "", file_name.removesuffix(".yaml"))
    check = CHECK_IDS[stem]
    return STAND_INS.get(check, check) if level == "restricted" else check


def _judge(pod: dict[str, Any], level: str) -> tuple[bool, set[str]]:
    request = AdmissionRequest.model_validate(
        {
            "uid": "fixture",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "fixtures",
            "operation": "CREATE",
            "object": pod,
        }
    )
    settings: Settings = settings_from_mapping({"podSecurity": {"defaultLevel": level}})
    verdict = validate(request, settings)
    return verdict.allowed, {v.check for v in verdict.violations if v.policy == "pod-security"}


@pytest.mark.parametrize(("level", "outcome", "name"), _fixtures())
def test_upstream_fixture_gets_the_upstream_verdict(
    shared_dir: Path, level: str, outcome: str, name: str
) -> None:
    """An upstream v1.37 pass fixture is admitted and a fail fixture is denied for its check."""
    path = shared_dir / TESTDATA / level / VERSION / outcome / name
    pod = yaml.safe_load(path.read_text(encoding="utf-8"))

    allowed, checks = _judge(pod, level)

    if outcome == "pass":
        assert allowed, f"{path} was denied for {sorted(checks)}"
    else:
        # NB: procmount0/1 set hostUsers: true; upstream marks them failRequiresError
        # because API validation rejects them too. Bulwark denies them on its own.
        assert not allowed, f"{path} was admitted"
        assert _expected_check(name, level) in checks


def test_every_check_has_upstream_fail_fixtures(shared_dir: Path) -> None:
    """Each of the nineteen checks is exercised by at least one v1.37 fail fixture."""
    covered = set()
    for level in LEVELS:
        for path in (shared_dir / TESTDATA / level / VERSION / "fail").glob("*.yaml"):
            covered.add(CHECK_IDS[re.sub(r"\d+$", "", path.stem)])
    assert covered == {check.id for check in CHECKS}
