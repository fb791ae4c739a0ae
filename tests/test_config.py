"""The configuration file: defaults, validation, and errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from webhook.config import Settings, load_settings, settings_from_mapping
from webhook.errors import ConfigError


def test_no_file_gives_the_contract_defaults() -> None:
    """Without --config, every documented default applies."""
    settings = load_settings(None)
    assert settings.pod_security.default_level == "baseline"
    assert settings.pod_security.level_for("kube-system") == "privileged"
    assert settings.pod_security.level_for("team-a") == "baseline"
    assert settings.ingress.plaintext_entrypoints == ["web"]
    assert settings.ingress.tls_entrypoints == ["websecure"]
    assert settings.rbac.forbidden_roles == ["cluster-admin"]
    assert settings.mutation.fs_group == 1000
    assert settings.mutation.defaults.requests.cpu == "100m"
    assert settings.mutation.defaults.limits.memory == "512Mi"
    assert settings.exempt_namespaces == []
    assert {settings.enforcement.for_policy(p) for p in ("pod-security", "ingress-tls")} == {"deny"}


def test_a_full_file_is_read_with_its_overrides(tmp_path: Path) -> None:
    """Every key of the contract's example file is accepted and read."""
    path = tmp_path / "bulwark.yaml"
    path.write_text(
        """
podSecurity:
  defaultLevel: restricted
  namespaces: {media: privileged}
ingress: {plaintextEntrypoints: [http], tlsEntrypoints: [https]}
rbac:
  forbiddenRoles: [cluster-admin, admin]
  exemptSubjects:
  - {kind: ServiceAccount, namespace: argocd, name: argocd-application-controller}
mutation:
  fsGroup: 2000
  defaults:
    requests: {cpu: 50m, memory: 64Mi}
    limits: {cpu: 1, memory: 1Gi}
  namespaces:
    batch: {fsGroup: 3000}
exemptNamespaces: [sandbox]
enforcement: {pod-security: warn, ingress-tls: audit, rbac-binding: deny}
"""
    )
    settings = load_settings(path)
    assert settings.pod_security.level_for("media") == "privileged"
    assert settings.pod_security.level_for("kube-system") == "restricted"
    assert settings.rbac.exempt_subjects[0].namespace == "argocd"
    assert settings.mutation.fs_group_for("batch") == 3000
    assert settings.mutation.fs_group_for("web") == 2000
    assert settings.mutation.defaults_for("batch").limits.cpu == 1
    assert settings.enforcement.for_policy("ingress-tls") == "audit"
    assert settings.exempt_namespaces == ["sandbox"]


@pytest.mark.parametrize(
    ("document", "named"),
    [
        pytest.param({"podsecurity": {}}, "podsecurity: unknown key", id="unknown-top-key"),
        pytest.param(
            {"podSecurity": {"defaultLevel": "strict"}}, "podSecurity.defaultLevel", id="bad-level"
        ),
        pytest.param({"mutation": {"fsGroup": "1000"}}, "mutation.fsGroup", id="string-for-int"),
        pytest.param({"mutation": {"fsGroup": -1}}, "mutation.fsGroup", id="negative-group"),
        pytest.param(
            {"mutation": {"defaults": {"limits": {"cpu": "lots"}}}},
            "mutation.defaults.limits.cpu: 'lots' is not a quantity",
            id="bad-quantity",
        ),
        pytest.param(
            {"mutation": {"defaults": {"requests": {"memory": "1Gi"}}}},
            "memory request 1Gi is above the limit 512Mi",
            id="request-above-limit",
        ),
        pytest.param(
            {"rbac": {"exemptSubjects": [{"kind": "Robot", "name": "r"}]}},
            "rbac.exemptSubjects[0].kind",
            id="bad-subject-kind",
        ),
        pytest.param(
            {"enforcement": {"pod-security": "block"}},
            "enforcement.pod-security",
            id="bad-enforcement",
        ),
        pytest.param({"enforcement": {"podsecurity": "warn"}}, "unknown key", id="bad-policy"),
        pytest.param({"exemptNamespaces": "kube-system"}, "exemptNamespaces", id="not-a-list"),
        pytest.param(
            {"mutation": {"defaults": {"requests": {"cpu": "-1"}}}},
            "mutation.defaults.requests.cpu: '-1' is negative",
            id="negative-quantity",
        ),
        pytest.param({"mutation": {"fsGroup": 2**40}}, "mutation.fsGroup", id="group-too-big"),
        pytest.param(
            {"rbac": {"exemptSubjects": [{"kind": "User"}]}},
            "rbac.exemptSubjects[0].name: missing: this key is required",
            id="missing-key",
        ),
        pytest.param({"mutation": [1]}, "mutation: must be a mapping, not a list", id="not-a-map"),
        pytest.param(
            {"mutation": {"defaults": {"limits": None}}},
            "mutation.defaults.limits: must be a mapping, not empty (null)",
            id="empty-map",
        ),
    ],
)
def test_an_invalid_file_is_refused_naming_the_key(document: object, named: str) -> None:
    """Unknown keys, wrong types and bad quantities each name the key's full path."""
    with pytest.raises(ConfigError) as raised:
        settings_from_mapping(document, source="cfg.yaml")
    assert named in str(raised.value)
    assert str(raised.value).startswith("cfg.yaml: ")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param("- a\n- b\n", "must be a mapping", id="a-list"),
        pytest.param("podSecurity: [\n", "not valid YAML", id="broken-yaml"),
        pytest.param(
            "podSecurity: {}\npodSecurity: {defaultLevel: privileged}\n",
            "the key 'podSecurity' is given twice",
            id="duplicate-key",
        ),
        pytest.param("? [a, b]\n: 1\n", "found unhashable key", id="list-as-key"),
        pytest.param(
            f"mutation: {{fsGroup: {'1' * 5000}}}\n",
            "an integer of more than 4300 digits",
            id="integer-too-long",
        ),
        pytest.param("exemptNamespaces: [2024-02-30]\n", "day is out of range", id="no-such-day"),
        pytest.param("podSecurity:\n  ? {a: 1}\n  : x\n", "found unhashable key", id="map-as-key"),
    ],
)
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str, named: str) -> None:
    """A file that is not a YAML mapping is refused with its path."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named):
        load_settings(path)


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    """Binary garbage is named as such, not a decoding traceback."""
    path = tmp_path / "garbage.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path)


def test_an_empty_file_means_the_defaults(tmp_path: Path) -> None:
    """An empty configuration file is the same as none."""
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set\n")
    assert load_settings(path) == Settings()


def test_a_missing_file_is_refused_by_the_command_with_status_2(tmp_path: Path) -> None:
    """The CLI turns a configuration error into exit status 2 and one line, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--config", str(tmp_path / "nope.yaml"),
         "--cert-dir", str(tmp_path / "certs"), "--port", "0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "nope.yaml: cannot read the configuration" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_the_configuration_file_keeps_pyyaml_scalars_so_namespace_n_is_a_name(
    tmp_path: Path,
) -> None:
    """kubectl never reads this file: `y` and `n` stay names, as PyYAML reads them (the
    manifest readers read them as kubectl's booleans)."""
    path = tmp_path / "config.yaml"
    path.write_text("exemptNamespaces: [y, n]\npodSecurity: {namespaces: {n: privileged}}\n")
    settings = load_settings(str(path))
    assert settings.exempt_namespaces == ["y", "n"]
    assert settings.pod_security.level_for("n") == "privileged"


def test_a_merge_the_readers_read_apart_is_refused_naming_the_file_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("mutation: &m {fsGroup: 5}\npodSecurity: {}\nx: {fsGroup: 7, <<: *m}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(str(path))
    message = str(raised.value)
    assert message.startswith(f"{path}: refused: the merge keys (<<) here give 'fsGroup'")
    assert f'in "{path}", line 3' in message


def test_several_errors_are_printed_on_lines_of_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from webhook.cli import main

    path = tmp_path / "config.yaml"
    path.write_text("exemptNamespaces: [1, 2]\n")
    assert main(["evaluate", "--config", str(path), "-"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("exemptNamespaces[0]: Input should be a valid string")
    assert lines[1] == f"{path}: exemptNamespaces[1]: Input should be a valid string"
