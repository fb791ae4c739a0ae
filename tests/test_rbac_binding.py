"""rbac-binding: no binding grants forbidden or wildcard roles, escalation verbs or broad subjects.

Each test goes through the real engine (`webhook.admission.validate`); the referenced roles
come from `InputRoles`, the pure role source `bulwark evaluate` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from webhook.admission import validate
from webhook.config import Settings, settings_from_mapping
from webhook.policies.roles import InputRoles, selects
from webhook.review import AdmissionRequest
from webhook.verdict import NoRoles, Object, RoleSource, Verdict

RBAC = "rbac.authorization.k8s.io"
RBAC_V1 = f"{RBAC}/v1"


def request(
    obj: dict[str, Any],
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    username: str = "dev-1",
) -> AdmissionRequest:
    kind = obj["kind"]
    namespace = obj["metadata"].get("namespace", "") if kind == "RoleBinding" else ""
    return AdmissionRequest.model_validate(
        {
            "uid": "9d5e2f1a-7b3c-4e8d-a6f0-000000000005",
            "kind": {"group": RBAC, "version": "v1", "kind": kind},
            "resource": {"group": RBAC, "version": "v1", "resource": kind.lower() + "s"},
            "namespace": namespace,
            "name": obj["metadata"]["name"],
            "operation": operation,
            "userInfo": {"username": username},
            "object": obj,
            "oldObject": old,
        }
    )


def judge(
    obj: dict[str, Any],
    *,
    roles: RoleSource | None = None,
    settings: Settings | None = None,
    **kwargs: Any,
) -> Verdict:
    return validate(request(obj, **kwargs), settings or Settings(), roles=roles or NoRoles())


def found(verdict: Verdict) -> set[tuple[str, str]]:
    """(check, subject) of every rbac-binding violation."""
    return {(v.check, v.subject) for v in verdict.all_violations if v.policy == "rbac-binding"}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "apiGroup": RBAC, "name": name}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": RBAC, "name": name}


def service_account(name: str, namespace: str = "team-a") -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def binding(
    role: str,
    *subjects: dict[str, str],
    role_kind: str = "ClusterRole",
    namespace: str | None = "team-a",
    name: str = "grant",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A RoleBinding in `namespace`, or a ClusterRoleBinding when namespace is None."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": RBAC_V1,
        "kind": "ClusterRoleBinding" if namespace is None else "RoleBinding",
        "metadata": metadata,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": list(subjects),
    }


def role(name: str, *rules: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """A ClusterRole, or a Role in `namespace`."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    kind = "ClusterRole" if namespace is None else "Role"
    return {"apiVersion": RBAC_V1, "kind": kind, "metadata": metadata, "rules": list(rules)}


def rule(verbs: list[str], resources: list[str], groups: Sequence[str] = ("",)) -> dict[str, Any]:
    return {"apiGroups": list(groups), "resources": resources, "verbs": verbs}


def roles(*manifests: dict[str, Any]) -> InputRoles:
    return InputRoles.from_manifests(manifests, namespace="team-a")


class UnreadableRoles:
    """A role source that could not be read: it knows nothing and says it is incomplete."""

    def rules(self, kind: str, namespace: str, name: str) -> Sequence[Object] | None:
        return None

    def complete(self) -> bool:
        return False


DEV = 'User "dev-1"'

# broadSubject


@pytest.mark.parametrize(
    ("subject", "broad"),
    [
        pytest.param(group("system:anonymous"), True, id="group-anonymous"),
        pytest.param(group("system:unauthenticated"), True, id="group-unauthenticated"),
        pytest.param(group("system:authenticated"), True, id="group-authenticated"),
        pytest.param(group("system:masters"), True, id="group-masters"),
        pytest.param(group("system:serviceaccounts"), True, id="group-all-serviceaccounts"),
        pytest.param(user("system:anonymous"), True, id="user-anonymous"),
        pytest.param(group("system:serviceaccounts:team-a"), False, id="one-namespace-sas-scoped"),
        pytest.param(group("System:Authenticated"), False, id="group-names-are-case-sensitive"),
        pytest.param(user("system:authenticated"), False, id="a-user-is-not-the-group"),
        pytest.param(service_account("default"), False, id="one-service-account"),
        pytest.param(group("platform-team"), False, id="ordinary-group"),
    ],
)
def test_broad_subjects_are_denied(subject: dict[str, str], broad: bool) -> None:
    """The whole-population groups and the anonymous user are broadSubject."""
    verdict = judge(binding("view", subject))
    assert {check for check, _ in found(verdict)} == ({"broadSubject"} if broad else set())
    assert verdict.allowed is not broad


@pytest.mark.parametrize(
    ("role_name", "role_kind", "allowed"),
    [
        pytest.param("system:discovery", "ClusterRole", True, id="discovery"),
        pytest.param("system:basic-user", "ClusterRole", True, id="basic-user"),
        pytest.param("system:public-info-viewer", "ClusterRole", True, id="public-info-viewer"),
        pytest.param("system:discovery", "Role", False, id="a-namespaced-role-of-that-name"),
        pytest.param("view", "ClusterRole", False, id="any-other-role"),
    ],
)
def test_the_public_cluster_roles_may_be_bound_to_everyone(
    role_name: str, role_kind: str, allowed: bool
) -> None:
    """The API server grants these ClusterRoles to everyone itself; binding them adds nothing."""
    obj = binding(
        role_name,
        group("system:authenticated"),
        group("system:unauthenticated"),
        role_kind=role_kind,
    )
    assert judge(obj).allowed is allowed


def test_every_subject_is_checked_not_just_the_first() -> None:
    """Broad subjects in second and third position are each reported."""
    obj = binding("view", user("dev-1"), group("system:authenticated"), user("system:anonymous"))
    verdict = judge(obj)
    assert found(verdict) == {
        ("broadSubject", 'Group "system:authenticated"'),
        ("broadSubject", 'User "system:anonymous"'),
    }
    assert [v.path for v in verdict.violations] == ["subjects[1]", "subjects[2]"]


def test_a_broad_subject_message_names_binding_subject_role_and_fix() -> None:
    """The message says which binding grants what to whom, and what to do instead."""
    verdict = judge(binding("edit", group("system:authenticated"), name="everyone-edits"))
    message = verdict.violations[0].message
    assert "RoleBinding team-a/everyone-edits" in message
    assert 'ClusterRole "edit"' in message
    assert 'Group "system:authenticated"' in message
    assert "instead" in message
    assert "rbac.exemptSubjects" in message


# forbiddenRole


@pytest.mark.parametrize(
    ("obj", "denied"),
    [
        pytest.param(binding("cluster-admin", user("dev-1"), namespace=None), True, id="crb"),
        pytest.param(
            binding("cluster-admin", user("dev-1")), True, id="rolebinding-to-clusterrole"
        ),
        pytest.param(
            binding("cluster-admin", user("dev-1"), role_kind="Role"),
            True,
            id="rolebinding-to-a-role-of-that-name",
        ),
        pytest.param(binding("admin", user("dev-1")), False, id="other-role"),
        pytest.param(binding("Cluster-Admin", user("dev-1")), False, id="names-case-sensitive"),
    ],
)
def test_bindings_to_a_forbidden_role_are_denied(obj: dict[str, Any], denied: bool) -> None:
    """roleRef names in rbac.forbiddenRoles are denied, whether ClusterRole or Role."""
    verdict = judge(obj)
    assert found(verdict) == ({("forbiddenRole", DEV)} if denied else set())


def test_forbidden_roles_come_from_the_configuration() -> None:
    """A configured list replaces the default cluster-admin."""
    settings = settings_from_mapping({"rbac": {"forbiddenRoles": ["admin"]}})
    assert not judge(binding("admin", user("dev-1")), settings=settings).allowed
    assert judge(binding("cluster-admin", user("dev-1")), settings=settings).allowed


def test_a_forbidden_role_is_reported_per_subject() -> None:
    """Each subject that receives the forbidden role is named in its own violation."""
    verdict = judge(binding("cluster-admin", user("dev-1"), service_account("ci"), namespace=None))
    assert found(verdict) == {
        ("forbiddenRole", DEV),
        ("forbiddenRole", 'ServiceAccount "team-a/ci"'),
    }


# exemptSubjects

ARGOCD = {"kind": "ServiceAccount", "namespace": "argocd", "name": "argocd-application-controller"}


@pytest.mark.parametrize(
    ("subjects", "expected"),
    [
        pytest.param(
            [service_account("argocd-application-controller", "argocd")],
            set(),
            id="exempt-service-account",
        ),
        pytest.param(
            [service_account("argocd-application-controller", "team-a")],
            {("forbiddenRole", 'ServiceAccount "team-a/argocd-application-controller"')},
            id="same-name-other-namespace",
        ),
        pytest.param(
            [service_account("argocd-application-controller", "argocd"), user("dev-1")],
            {("forbiddenRole", DEV)},
            id="exempt-and-other-subject",
        ),
        pytest.param(
            [group("system:authenticated")],
            set(),
            id="exempt-group",
        ),
    ],
)
def test_exempt_subjects_are_skipped(
    subjects: list[dict[str, str]], expected: set[tuple[str, str]]
) -> None:
    """Subjects in rbac.exemptSubjects match by kind, name and (service accounts) namespace."""
    settings = settings_from_mapping(
        {"rbac": {"exemptSubjects": [ARGOCD, {"kind": "Group", "name": "system:authenticated"}]}}
    )
    obj = binding("cluster-admin", *subjects, namespace=None)
    assert found(judge(obj, settings=settings)) == expected


def test_a_binding_without_subjects_is_judged_by_its_role_alone() -> None:
    """The contract denies a binding to a forbidden role, whoever it names (or no one yet)."""
    obj = binding("cluster-admin", namespace=None)
    obj["subjects"] = []
    verdict = judge(obj)
    assert not verdict.allowed
    assert found(verdict) == {("forbiddenRole", "no subject yet")}
    del obj["subjects"]
    assert found(judge(obj)) == {("forbiddenRole", "no subject yet")}
    assert judge(binding("view", namespace=None)).allowed


def test_subjects_added_later_to_an_empty_binding_are_new_violations() -> None:
    old = binding("cluster-admin", namespace=None)
    again = judge(binding("cluster-admin", namespace=None), operation="UPDATE", old=old)
    assert again.allowed  # an unchanged binding is not held up
    widened = binding("cluster-admin", user("mallory"), namespace=None)
    verdict = judge(widened, operation="UPDATE", old=old)
    assert found(verdict) == {("forbiddenRole", 'User "mallory"')}


# wildcardRole and escalationVerbs


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        pytest.param([rule(["*"], ["*"], ["*"])], {"wildcardRole"}, id="all-groups-wildcard"),
        pytest.param([rule(["*"], ["*"], [""])], {"wildcardRole"}, id="core-group-wildcard"),
        pytest.param(
            [rule(["*"], ["*"], ["apps"])], {"wildcardRole"}, id="one-named-group-wildcard"
        ),
        pytest.param([rule(["*"], ["pods"], ["*"])], set(), id="all-verbs-on-one-resource"),
        pytest.param([rule(["get", "list"], ["*"], ["*"])], set(), id="read-everything"),
        pytest.param(
            [{"nonResourceURLs": ["*"], "verbs": ["*"]}], set(), id="non-resource-urls-never-count"
        ),
        pytest.param(
            [rule(["escalate"], ["clusterroles"], [RBAC])], {"escalationVerbs"}, id="escalate"
        ),
        pytest.param([rule(["bind"], ["roles"], [RBAC])], {"escalationVerbs"}, id="bind"),
        pytest.param([rule(["impersonate"], ["users"])], {"escalationVerbs"}, id="impersonate"),
        pytest.param(
            [rule(["impersonate:user-info"], ["users"])],
            {"escalationVerbs"},
            id="constrained-impersonation-verbs",
        ),
        pytest.param(
            [rule(["*"], ["clusterroles"], [RBAC])],
            {"escalationVerbs"},
            id="star-verbs-on-rbac-roles",
        ),
        pytest.param([rule(["*"], ["*"], [RBAC])], {"wildcardRole"}, id="star-on-rbac-group"),
        pytest.param(
            [rule(["*"], ["serviceaccounts"], [""])],
            {"escalationVerbs"},
            id="star-on-sas-impersonates",
        ),
        pytest.param(
            [rule(["*"], ["userextras/scopes"], ["authentication.k8s.io"])],
            {"escalationVerbs"},
            id="star-on-userextras",
        ),
        pytest.param(
            [rule(["get", "list", "create"], ["clusterroles", "roles"], [RBAC])],
            set(),
            id="managing-roles-without-escalate-or-bind",
        ),
        pytest.param(
            [rule(["*"], ["*"], ["*"]), rule(["impersonate"], ["groups"])],
            {"wildcardRole", "escalationVerbs"},
            id="wildcard-and-another-rule-impersonating",
        ),
    ],
)
def test_the_referenced_roles_rules_are_judged(
    rules: list[dict[str, Any]], expected: set[str]
) -> None:
    """`*` on `*` in all or the core group is wildcardRole; escalate, bind, impersonate escalate."""
    source = roles(role("custom", *rules))
    verdict = judge(binding("custom", user("dev-1"), namespace=None), roles=source)
    assert {check for check, _ in found(verdict)} == expected
    assert verdict.warnings == []


def test_a_wildcard_rule_is_not_reported_twice_as_escalation() -> None:
    """`*` verbs on `*` resources already imply escalate and bind; one finding is enough."""
    source = roles(role("root", rule(["*"], ["*"], ["*"])))
    verdict = judge(binding("root", user("dev-1"), namespace=None), roles=source)
    assert found(verdict) == {("wildcardRole", DEV)}
    assert "rules[0]" in verdict.violations[0].message


def test_an_escalation_message_names_the_verbs_and_the_fix() -> None:
    """The message lists the verbs found, the rules granting them and what to do."""
    source = roles(
        role(
            "granter",
            rule(["bind", "escalate"], ["clusterroles"], [RBAC]),
            rule(["impersonate"], ["users"]),
        )
    )
    verdict = judge(binding("granter", user("dev-1"), namespace=None, name="ops"), roles=source)
    message = verdict.violations[0].message
    assert "ClusterRoleBinding ops" in message
    assert "bind, escalate, impersonate" in message
    assert "rules[0], rules[1]" in message
    assert "remove them from the role" in message


@pytest.mark.parametrize(
    ("role_manifest", "role_kind", "found_role"),
    [
        pytest.param(
            role("ops", rule(["*"], ["*"], ["*"]), namespace="team-a"),
            "Role",
            True,
            id="role-same-ns",
        ),
        pytest.param(
            role("ops", rule(["*"], ["*"], ["*"]), namespace="team-b"),
            "Role",
            False,
            id="role-other-ns",
        ),
        pytest.param(role("ops", rule(["*"], ["*"], ["*"])), "ClusterRole", True, id="clusterrole"),
        pytest.param(
            role("ops", rule(["*"], ["*"], ["*"])), "Role", False, id="clusterrole-is-not-a-role"
        ),
    ],
)
def test_the_role_is_looked_up_by_kind_and_the_bindings_namespace(
    role_manifest: dict[str, Any], role_kind: str, found_role: bool
) -> None:
    """A Role is found in the binding's namespace only; a ClusterRole anywhere."""
    verdict = judge(binding("ops", user("dev-1"), role_kind=role_kind), roles=roles(role_manifest))
    assert (("wildcardRole", DEV) in found(verdict)) is found_role
    assert bool(verdict.warnings) is not found_role


def test_a_missing_role_is_judged_by_name_and_the_warning_says_it_is_absent() -> None:
    """A role absent from a complete source: admitted, with a warning that says 'not found'."""
    verdict = judge(binding("pod-reader", user("dev-1"), role_kind="Role"), roles=roles())
    assert verdict.allowed
    assert len(verdict.warnings) == 1
    warning = verdict.warnings[0]
    assert 'Role "pod-reader" was not found in namespace team-a' in warning
    assert "RoleBinding team-a/grant" in warning
    assert "by the role's name only" in warning


def test_an_unreadable_role_source_says_the_role_could_not_be_looked_up() -> None:
    """An incomplete source warns that the role could not be read, not that it is absent."""
    verdict = judge(binding("cluster-admin", user("dev-1")), roles=UnreadableRoles())
    assert found(verdict) == {("forbiddenRole", DEV)}
    assert len(verdict.warnings) == 1
    assert "could not be looked up" in verdict.warnings[0]
    assert "has not read the cluster's roles" in verdict.warnings[0]


def test_the_missing_role_warning_is_given_once_on_update() -> None:
    """The engine re-judges the old object on UPDATE; the warning is not doubled."""
    old = binding("pod-reader", user("dev-1"), role_kind="Role")
    new = binding("pod-reader", user("dev-1"), role_kind="Role", labels={"team": "a"})
    verdict = judge(new, operation="UPDATE", old=old, roles=roles())
    assert len(verdict.warnings) == 1


# Bindings the API server maintains

BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}


@pytest.mark.parametrize(
    ("name", "labels", "username", "allowed"),
    [
        pytest.param(
            "system:service-account-issuer-discovery",
            BOOTSTRAP,
            "system:apiserver",
            True,
            id="api-server-writes-its-own",
        ),
        pytest.param(
            "cluster-admin",
            BOOTSTRAP,
            "system:apiserver",
            True,
            id="api-server-writes-cluster-admin",
        ),
        pytest.param(
            "system:service-account-issuer-discovery",
            BOOTSTRAP,
            "",
            True,
            id="offline-system-name-and-label",
        ),
        pytest.param("system:sneaky", BOOTSTRAP, "dev-1", False, id="a-user-copying-the-label"),
        pytest.param("cluster-admin", BOOTSTRAP, "", False, id="offline-label-without-system-name"),
        pytest.param(
            "system:service-account-issuer-discovery",
            None,
            "system:apiserver",
            False,
            id="no-label",
        ),
    ],
)
def test_bindings_the_api_server_maintains_are_never_blocked(
    name: str, labels: dict[str, str] | None, username: str, allowed: bool
) -> None:
    """The rbac-defaults label exempts what the API server writes (offline: system: names)."""
    obj = binding(
        "cluster-admin", group("system:serviceaccounts"), namespace=None, name=name, labels=labels
    )
    assert judge(obj, username=username).allowed is allowed


# UPDATE grandfathering


def test_label_update_of_an_already_broad_binding_is_admitted() -> None:
    """A binding that already had its violations is not stuck on a label update."""
    old = binding("cluster-admin", group("system:authenticated"), namespace=None)
    new = binding("cluster-admin", group("system:authenticated"), namespace=None, labels={"a": "b"})
    assert judge(new, operation="UPDATE", old=old).allowed


def test_update_adding_a_subject_to_a_forbidden_binding_is_denied_for_that_subject() -> None:
    """Grandfathering is per subject: a new grantee of cluster-admin is denied."""
    old = binding("cluster-admin", user("dev-1"), namespace=None)
    new = binding("cluster-admin", user("dev-1"), user("dev-2"), namespace=None)
    verdict = judge(new, operation="UPDATE", old=old)
    assert {(v.check, v.subject) for v in verdict.violations} == {("forbiddenRole", 'User "dev-2"')}


def test_delete_of_a_broad_binding_is_admitted() -> None:
    """DELETE is always allowed, whatever the binding."""
    obj = binding("cluster-admin", group("system:authenticated"), namespace=None)
    assert judge(obj, operation="DELETE").allowed


# InputRoles, the role source of `bulwark evaluate`


def test_input_roles_put_namespaceless_roles_in_the_evaluation_namespace() -> None:
    """A Role without metadata.namespace is found in the namespace evaluate judges in."""
    manifest = {"apiVersion": RBAC_V1, "kind": "Role", "metadata": {"name": "r"}}
    manifest["rules"] = [rule(["get"], ["pods"])]
    source = InputRoles.from_manifests([manifest], namespace="ns-1")
    assert source.rules("Role", "ns-1", "r") == [rule(["get"], ["pods"])]
    assert source.rules("ClusterRole", "", "r") is None
    assert source.complete()


def test_input_roles_open_lists_and_ignore_other_kinds() -> None:
    """List items are read; non-RBAC objects and other groups are ignored."""
    manifests = [
        {"apiVersion": "v1", "kind": "List", "items": [role("inner", rule(["get"], ["pods"]))]},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ClusterRole"}},
        {"apiVersion": "example.com/v1", "kind": "ClusterRole", "metadata": {"name": "fake"}},
        "not an object",
    ]
    source = InputRoles.from_manifests(manifests)
    assert source.rules("ClusterRole", "", "inner") == [rule(["get"], ["pods"])]
    assert source.rules("ClusterRole", "", "fake") is None


def test_input_roles_follow_cluster_role_aggregation_transitively() -> None:
    """An aggregated ClusterRole gets the rules of the roles it selects, and theirs in turn."""
    top = role("top")
    top["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"to-top": "true"}}]}
    middle = role("middle", rule(["get"], ["pods"]))
    middle["metadata"]["labels"] = {"to-top": "true"}
    middle["aggregationRule"] = {
        "clusterRoleSelectors": [{"matchExpressions": [{"key": "to-middle", "operator": "Exists"}]}]
    }
    bottom = role("bottom", rule(["*"], ["*"], ["*"]))
    bottom["metadata"]["labels"] = {"to-middle": "yes"}
    source = InputRoles.from_manifests([top, middle, bottom])
    assert source.rules("ClusterRole", "", "top") == [
        rule(["get"], ["pods"]),
        rule(["*"], ["*"], ["*"]),
    ]
    verdict = judge(binding("top", user("dev-1"), namespace=None), roles=source)
    assert found(verdict) == {("wildcardRole", DEV)}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True, id="labels-match"),
        pytest.param({"matchLabels": {"a": "1"}}, {"a": "2"}, False, id="labels-differ"),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
            id="in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
            id="not-in",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {},
            True,
            id="not-in-absent",
        ),
        pytest.param(
            {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
            {"a": "1"},
            False,
            id="does-not-exist",
        ),
        pytest.param({}, {"a": "1"}, True, id="empty-selector-matches-all"),
    ],
)
def test_label_selectors_match_like_kubernetes(
    selector: dict[str, Any], labels: dict[str, str], matches: bool
) -> None:
    """matchLabels and the four matchExpressions operators select as the API server does."""
    assert selects(selector, labels) is matches


# The handed cases, in our own words


def test_c15_binding_a_role_to_every_authenticated_user_is_denied() -> None:
    """C15: a RoleBinding of view to system:authenticated is broadSubject."""
    verdict = judge(binding("view", group("system:authenticated"), name="all-viewers"))
    assert not verdict.allowed
    assert {v.check for v in verdict.violations} == {"broadSubject"}


def test_c16_a_binding_to_a_role_not_there_yet_is_admitted() -> None:
    """C16: a RoleBinding to a Role that does not exist yet is admitted with a warning."""
    obj = binding("config-reader", user("dev-7"), role_kind="Role", name="read-config")
    verdict = judge(obj, roles=roles())
    assert verdict.allowed
    assert any('Role "config-reader"' in warning for warning in verdict.warnings)


def test_c17_cluster_admin_for_a_service_account_is_denied() -> None:
    """C17: a ClusterRoleBinding of cluster-admin to a service account is forbiddenRole."""
    obj = binding("cluster-admin", service_account("deployer", "build"), namespace=None)
    verdict = judge(obj)
    assert not verdict.allowed
    assert found(verdict) == {("forbiddenRole", 'ServiceAccount "build/deployer"')}


def test_c18_a_wildcard_role_in_the_same_input_makes_its_binding_denied() -> None:
    """C18: a ClusterRole granting everything, given with its binding, makes it wildcardRole."""
    manifests = [
        role("everything", rule(["*"], ["*"], ["*"])),
        binding("everything", user("ops-2"), namespace=None, name="everything-for-ops"),
    ]
    source = InputRoles.from_manifests(manifests, namespace="team-a")
    verdicts = [judge(obj, roles=source) for obj in manifests if obj["kind"].endswith("Binding")]
    assert [found(v) for v in verdicts] == [{("wildcardRole", 'User "ops-2"')}]
    assert not verdicts[0].allowed
    assert verdicts[0].warnings == []
