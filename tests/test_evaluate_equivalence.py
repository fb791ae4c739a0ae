"""`bulwark evaluate` and a live `bulwark serve` judge every object alike.

Each object is judged twice: by `bulwark evaluate --output json` (a subprocess, as a user
runs it) and by a `bulwark serve` process over real HTTPS, to which the test POSTs the
AdmissionReview the API server would send for it, at /validate and at /mutate. The
verdict, the violations, the warnings and the patch must be the same. The objects are the
pod-security-admission fixtures of v1.37 (baseline fixtures judged at level baseline,
restricted ones at restricted) and every manifest case in the handed cases.

Roles and ClusterRoles in an input are left out of it here: `evaluate` judges a binding
with the roles beside it, which a webhook without a cluster cannot know (test_evaluate.py
tests that on its own). Binding warnings are not compared for the same reason: the live
server has no role cache, so it says the role could not be looked up, where `evaluate`
says it was not found.
"""

from __future__ import annotations

import base64
import copy
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.live import LiveServer

BULWARK = Path(sys.executable).with_name("bulwark")
PSA_CONFIG = {
    "podSecurity": {"namespaces": {"kube-system": "privileged", "psa-restricted": "restricted"}}
}
# The resources the API server names for the kinds in these inputs (written out here, not
# taken from webhook.evaluate, so that the two sides build their requests independently).
RESOURCES = {
    "Pod": "pods",
    "Deployment": "deployments",
    "CronJob": "cronjobs",
    "Ingress": "ingresses",
    "RoleBinding": "rolebindings",
    "ClusterRoleBinding": "clusterrolebindings",
}
CLUSTER_SCOPED = {"ClusterRoleBinding"}
ROLES = {"Role", "ClusterRole"}
VIOLATION_TAG = re.compile(r"\[([a-z-]+/[A-Za-z_]+)\]")


class Server:
    """A live `bulwark serve` with one keep-alive client, for posting reviews."""

    def __init__(self, folder: Path, config: dict[str, Any] | None) -> None:
        self.live = LiveServer(folder, config=None if config is None else yaml.safe_dump(config))
        try:
            self.live.wait_ready()
        except BaseException:
            self.live.terminate()
            raise
        self.client = self.live.client()

    def review(self, endpoint: str, review: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.post(
            f"/{endpoint}",
            content=orjson.dumps(review),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        response: dict[str, Any] = answer.json()["response"]
        return response

    def stop(self) -> None:
        self.client.close()
        self.live.terminate()


@pytest.fixture(scope="module")
def server_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[Any], Server]]:
    """A running server per configuration, all stopped when the module is done."""
    servers: dict[bytes, Server] = {}

    def get(config: dict[str, Any] | None) -> Server:
        key = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
        if key not in servers:
            servers[key] = Server(tmp_path_factory.mktemp("serve"), config)
        return servers[key]

    try:
        yield get
    finally:
        for server in servers.values():
            server.stop()


def review_for(obj: dict[str, Any], namespace: str, operation: str, uid: str) -> dict[str, Any]:
    """The AdmissionReview the API server sends for `kubectl apply` of `obj`."""
    group, _, version = obj["apiVersion"].rpartition("/")
    kind = obj["kind"]
    body = copy.deepcopy(obj)
    metadata = body.setdefault("metadata", {})
    target = "" if kind in CLUSTER_SCOPED else metadata.get("namespace") or namespace
    if target:
        metadata["namespace"] = target
    request = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": RESOURCES[kind]},
        "namespace": target,
        "name": metadata.get("name", ""),
        "operation": operation,
        "userInfo": {"username": ""},
        "object": body,
        "oldObject": None,
        "dryRun": True,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


@dataclass
class Group:
    """Inputs judged with one configuration, namespace and operation."""

    config: dict[str, Any] | None
    namespace: str
    operation: str
    files: list[Path]


def evaluate(group: Group, folder: Path) -> list[dict[str, Any]]:
    command = [str(BULWARK), "evaluate", "--output", "json", "--namespace", group.namespace]
    command += ["--operation", group.operation]
    if group.config is not None:
        (folder / "config.yaml").write_text(yaml.safe_dump(group.config))
        command += ["--config", str(folder / "config.yaml")]
    done = subprocess.run(
        [*command, *map(str, group.files)], capture_output=True, timeout=120, check=False
    )
    assert done.returncode in (0, 1), done.stderr.decode()
    results: list[dict[str, Any]] = orjson.loads(done.stdout)["results"]
    return results


def assert_same_judgement(result: dict[str, Any], server: Server, review: dict[str, Any]) -> None:
    checked, defaulted = server.review("validate", review), server.review("mutate", review)
    where = result["source"]
    assert result["allowed"] == (checked["allowed"] and defaulted["allowed"]), where
    # The status message lists every violation as `[policy/check]` with its message.
    message = checked.get("status", {}).get("message", "") if not checked["allowed"] else ""
    tags = sorted(f"{v['policy']}/{v['check']}" for v in result["violations"])
    assert sorted(VIOLATION_TAG.findall(message)) == tags, where
    for violation in result["violations"]:
        assert violation["message"] in message, where
    patch = orjson.loads(base64.b64decode(defaulted["patch"])) if "patch" in defaulted else []
    assert result["patch"] == patch, where
    # Violations under audit: `audited` in the report, `auditAnnotations` from the webhook,
    # one key per policy and check, its messages joined.
    annotations = checked.get("auditAnnotations", {})
    audited = result.get("audited", [])
    assert sorted(annotations) == sorted({f"{v['policy']}.{v['check']}" for v in audited}), where
    for violation in audited:
        assert violation["message"] in annotations[f"{violation['policy']}.{violation['check']}"]
    if result["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
        warnings = checked.get("warnings", []) + defaulted.get("warnings", [])
        assert result["warnings"] == warnings, where


def judge_both_ways(group: Group, folder: Path, server: Server) -> int:
    """Compare every object of `group`; return how many were compared."""
    objects = [
        obj
        for path in group.files
        for obj in yaml.safe_load_all(path.read_text())
        if obj is not None
    ]
    results = evaluate(group, folder)
    assert len(results) == len(objects)
    for number, (result, obj) in enumerate(zip(results, objects, strict=True)):
        review = review_for(obj, group.namespace, group.operation, f"equivalence-{number}")
        assert_same_judgement(result, server, review)
    return len(results)


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_pod_security_fixtures_are_judged_alike(
    level: str, shared_dir: Path, server_for: Callable[[Any], Server], tmp_path: Path
) -> None:
    """Every v1.37 pass and fail fixture: same verdict, violations and patch both ways."""
    folder = shared_dir / "fixtures/pod-security-admission/test/testdata" / level / "v1.37"
    files = sorted(folder.rglob("*.yaml"))
    group = Group(PSA_CONFIG, f"psa-{level}", "CREATE", files)
    compared = judge_both_ways(group, tmp_path, server_for(PSA_CONFIG))
    assert compared == len(files) > 20


def test_pod_security_fixtures_under_audit_are_judged_alike(
    shared_dir: Path, server_for: Callable[[Any], Server], tmp_path: Path
) -> None:
    """With pod-security in audit mode: all admitted both ways, and every violation the
    webhook records in auditAnnotations is in the report's `audited`."""
    folder = shared_dir / "fixtures/pod-security-admission/test/testdata/baseline/v1.37"
    files = sorted(folder.rglob("fail/*.yaml"))
    config = {**PSA_CONFIG, "enforcement": {"pod-security": "audit"}}
    compared = judge_both_ways(
        Group(config, "psa-baseline", "CREATE", files), tmp_path, server_for(config)
    )
    assert compared == len(files) > 20
    results = evaluate(Group(config, "psa-baseline", "CREATE", files), tmp_path)
    assert all(result["allowed"] and result["audited"] for result in results)


def _handed_groups(shared: Path, folder: Path) -> list[Group]:
    cases = yaml.safe_load((shared / "cases" / "handed.yaml").read_text())
    groups: dict[bytes, Group] = {}
    for case in cases:
        if "input" not in case or "exit" in case:
            continue
        documents = [
            d for d in yaml.safe_load_all(case["input"]) if d and d.get("kind") not in ROLES
        ]
        if not documents:
            continue
        path = folder / f"{case['id']}.yaml"
        path.write_text(yaml.safe_dump_all(documents))
        config = case.get("config")
        namespace, operation = case.get("namespace", "default"), case.get("operation", "CREATE")
        key = orjson.dumps([config, namespace, operation], option=orjson.OPT_SORT_KEYS)
        groups.setdefault(key, Group(config, namespace, operation, [])).files.append(path)
    return list(groups.values())


def test_handed_manifest_cases_are_judged_alike(
    shared_dir: Path, server_for: Callable[[Any], Server], tmp_path: Path
) -> None:
    """Every manifest case of the handed cases: same verdict, violations and patch both ways."""
    compared = 0
    for number, group in enumerate(_handed_groups(shared_dir, tmp_path)):
        folder = tmp_path / f"group-{number}"
        folder.mkdir()
        compared += judge_both_ways(group, folder, server_for(group.config))
    assert compared >= 15
