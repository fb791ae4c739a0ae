"""rbac-binding: no RoleBinding or ClusterRoleBinding hands out a cluster's keys.

RBAC has no deny rules: once a binding grants a role, only deleting the binding takes the
grant back. So the bindings that matter are stopped at the door. A binding is denied when:

* `forbiddenRole`: its roleRef names a role in `rbac.forbiddenRoles` (default
  `cluster-admin`). Names match whatever the roleRef's kind: a RoleBinding to the ClusterRole
  cluster-admin makes its subject admin of the namespace (Roles, RoleBindings, Secrets), and
  a namespaced Role that borrows a forbidden name is a copy or a decoy; both are denied.
* `broadSubject`: a subject is a group that stands for whole populations
  (`system:anonymous`, `system:unauthenticated`, `system:authenticated`, `system:masters`,
  `system:serviceaccounts`) or the user `system:anonymous`, unless the roleRef is one of
  the ClusterRoles the API server itself grants to everyone (`system:discovery`,
  `system:basic-user`, `system:public-info-viewer`). The per-namespace groups
  `system:serviceaccounts:<namespace>` are not broad: granting a role to the service
  accounts of one namespace is a common, scoped pattern, and a dangerous role is still caught
  by the checks on the role itself.
* `wildcardRole`: the role has a rule with `*` verbs on `*` resources, in whatever API
  groups: full control of everything in a group is more than a binding should hand out
  unreviewed. An operator that owns its own CRD group and needs exactly that is the usual
  legitimate case; list its service account in `rbac.exemptSubjects`. Rules on
  nonResourceURLs never count: they reach only read-mostly endpoints such as /metrics.
* `escalationVerbs`: the role grants `escalate` or `bind` (create roles and bindings beyond
  one's own rights) or `impersonate` (act as another user), by name or through a `*` verb
  on the resources those verbs act on (roles and clusterroles; users, groups,
  serviceaccounts, uids, userextras). A rule already reported as wildcardRole is not
  reported again.

The role is found through `context.roles`: a Role in the binding's namespace, a ClusterRole
cluster-wide. Aggregated ClusterRoles need no special case: the API server writes the
aggregated rules into the ClusterRole's `rules`, and those are what is judged. A role that is
not found is judged by its name only, and the response warns so (bindings may arrive before
their role; the rules of a role created later are not judged through the binding).

Every subject is judged, and each violation names one subject (`subject`
'ServiceAccount "team-a/ci"'), so an UPDATE that adds a subject to an already-broad binding is
denied while one that only edits labels is not. Subjects in `rbac.exemptSubjects` are skipped
entirely; a binding whose subjects are all exempt grants nothing to judge. A binding with no
subjects at all is judged by its role alone, with the subject "no subject yet": it is how a
grant is staged, and the subjects an UPDATE adds later are new violations then.

Bindings the API server maintains itself (named `system:...`, labelled
`kubernetes.io/bootstrapping: rbac-defaults`) are never blocked: the API server reconciles
them at every start. The label alone is not trusted, since anyone who may create a binding
may set it: on a live request the writer must be the API server (`system:apiserver`); in
offline evaluation, where there is no writer, the name and the label suffice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.config import Subject
from webhook.request import Request
from webhook.verdict import Object, PolicyContext, Violation

POLICY = "rbac-binding"
RBAC_GROUP = "rbac.authorization.k8s.io"
BINDING_KINDS = frozenset({"ClusterRoleBinding", "RoleBinding"})

# Who each broad subject stands for, for the denial message.
BROAD_GROUPS = {
    "system:anonymous": "requests that carry no credentials",
    "system:unauthenticated": "every request that carries no valid credentials",
    "system:authenticated": "every user and service account with valid credentials",
    "system:masters": "the superuser group, which RBAC never restricts",
    "system:serviceaccounts": "every service account in every namespace",
}
BROAD_USERS = {"system:anonymous": "requests that carry no credentials"}
# ClusterRoles the API server itself binds to everyone; binding them again grants nothing new.
PUBLIC_CLUSTER_ROLES = frozenset(
    {"system:discovery", "system:basic-user", "system:public-info-viewer"}
)

BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
API_SERVER_USER = "system:apiserver"

# (apiGroup, resource) pairs the escalation verbs act on, for rules that grant them via `*`.
ROLE_RESOURCES = ((RBAC_GROUP, "roles"), (RBAC_GROUP, "clusterroles"))
IMPERSONATION_RESOURCES = (
    ("", "users"),
    ("", "groups"),
    ("", "serviceaccounts"),
    ("authentication.k8s.io", "uids"),
    ("authentication.k8s.io", "userextras"),
)


def _mapping(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> set[str]:
    return {str(item) for item in value} if isinstance(value, list) else set()


def _is_escalation_verb(verb: str) -> bool:
    # "impersonate" and the constrained-impersonation family ("impersonate:user-info", ...).
    return verb in ("escalate", "bind") or verb.startswith("impersonate")


def _reaches(rule: Object, targets: Iterable[tuple[str, str]]) -> bool:
    """Whether the rule's apiGroups and resources include any of `targets`."""
    groups, resources = _strings(rule.get("apiGroups")), _strings(rule.get("resources"))
    bases = {resource.split("/", 1)[0] for resource in resources}  # "userextras/scopes"
    return any(
        (group in groups or "*" in groups) and (resource in bases or "*" in bases)
        for group, resource in targets
    )


def is_wildcard_rule(rule: Object) -> bool:
    """`*` verbs on `*` resources, in any API group."""
    return "*" in _strings(rule.get("verbs")) and "*" in _strings(rule.get("resources"))


def escalation_verbs(rule: Object) -> list[str]:
    """The escalation verbs a (non-wildcard) rule grants, by name or through `*`."""
    verbs = _strings(rule.get("verbs"))
    granted = {verb for verb in verbs if _is_escalation_verb(verb)}
    if "*" in verbs:
        if _reaches(rule, ROLE_RESOURCES):
            granted |= {"escalate", "bind"}
        if _reaches(rule, IMPERSONATION_RESOURCES):
            granted.add("impersonate")
    return sorted(granted)


@dataclass(frozen=True, slots=True)
class RoleFindings:
    """What is wrong with a role's rules: the wildcard rules, the escalation verbs."""

    wildcard_rules: tuple[int, ...] = ()
    escalations: tuple[tuple[int, str], ...] = ()  # (rule index, verb)

    @classmethod
    def of(cls, rules: Sequence[Object]) -> RoleFindings:
        wildcard: list[int] = []
        escalations: list[tuple[int, str]] = []
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                continue
            if is_wildcard_rule(rule):
                wildcard.append(index)
            else:
                escalations.extend((index, verb) for verb in escalation_verbs(rule))
        return cls(tuple(wildcard), tuple(escalations))


@dataclass(frozen=True, slots=True)
class Binding:
    """A binding as this policy reads it, with the words its messages use."""

    kind: str
    namespace: str  # "" for a ClusterRoleBinding
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[Object, ...]

    @classmethod
    def read(cls, obj: Object, context: PolicyContext) -> Binding:
        kind = context.request.kind.kind
        namespace = context.namespace if kind == "RoleBinding" else ""
        ref = _mapping(obj.get("roleRef"))
        subjects = obj.get("subjects")
        return cls(
            kind=kind,
            namespace=namespace,
            name=context.name,
            role_kind=str(ref.get("kind") or "ClusterRole"),
            role_name=str(ref.get("name") or ""),
            subjects=tuple(_mapping(s) for s in subjects) if isinstance(subjects, list) else (),
        )

    @property
    def label(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )

    @property
    def role(self) -> str:
        return f'{self.role_kind} "{self.role_name}"'

    def subject_label(self, subject: Object) -> str:
        kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
        if kind == "ServiceAccount":
            return f'ServiceAccount "{subject.get("namespace") or self.namespace}/{name}"'
        return f'{kind} "{name}"'


def _exempt(subject: Object, binding: Binding, exemptions: Sequence[Subject]) -> bool:
    """Whether `rbac.exemptSubjects` lists the subject (namespaces count for service accounts)."""
    kind, name = subject.get("kind"), subject.get("name")
    namespace = subject.get("namespace") or binding.namespace
    return any(
        exempt.kind == kind
        and exempt.name == name
        and (kind != "ServiceAccount" or exempt.namespace == namespace)
        for exempt in exemptions
    )


def maintained_by_api_server(obj: Object, request: Request) -> bool:
    """Whether this is one of the default bindings the API server reconciles at start-up."""
    metadata = _mapping(obj.get("metadata"))
    key, value = BOOTSTRAP_LABEL
    if _mapping(metadata.get("labels")).get(key) != value:
        return False
    user = request.user_info.username
    if user:
        return user == API_SERVER_USER
    return str(metadata.get("name") or request.name).startswith("system:")


def _broad(binding: Binding, index: int, subject: Object) -> Violation | None:
    """A broadSubject violation when the subject stands for a whole population."""
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    table = BROAD_GROUPS if kind == "Group" else BROAD_USERS if kind == "User" else {}
    who = table.get(name)
    if who is None:
        return None
    label = binding.subject_label(subject)
    message = (
        f"{binding.label} grants {binding.role} to {label}, that is to {who}; bind the named "
        "users, groups or service accounts that need it instead, or list the subject in "
        "rbac.exemptSubjects"
    )
    return Violation(POLICY, "broadSubject", message, f"subjects[{index}]", label)


NO_SUBJECT = "no subject yet"


def _role_violations(
    binding: Binding, findings: RoleFindings, forbidden: bool, label: str
) -> list[Violation]:
    """The violations of granting this role to one (non-exempt) subject."""
    found = []
    exemption = "or list the subject in rbac.exemptSubjects"
    grants = f"{binding.label} grants {binding.role} to {label}"
    if forbidden:
        message = (
            f'{grants}, and "{binding.role_name}" is in rbac.forbiddenRoles; bind a narrower '
            f'role (e.g. ClusterRole "edit" or "view" through a RoleBinding) {exemption}'
        )
        found.append(Violation(POLICY, "forbiddenRole", message, "roleRef.name", label))
    if findings.wildcard_rules:
        rules = ", ".join(f"rules[{index}]" for index in findings.wildcard_rules)
        message = (
            f"{grants}, whose {rules} allows every verb on every resource; bind a role that "
            f"lists the resources and verbs the subject needs {exemption}"
        )
        found.append(Violation(POLICY, "wildcardRole", message, "roleRef.name", label))
    if findings.escalations:
        verbs = sorted({verb for _, verb in findings.escalations})
        rules = ", ".join(sorted({f"rules[{index}]" for index, _ in findings.escalations}))
        message = (
            f"{grants}, which allows {', '.join(verbs)} ({rules}): they let the holder create "
            f"grants beyond its own rights or act as someone else; remove them from the role "
            f"or bind a role without them {exemption}"
        )
        found.append(Violation(POLICY, "escalationVerbs", message, "roleRef.name", label))
    return found


def _lookup(binding: Binding, obj: Object, context: PolicyContext) -> RoleFindings:
    """The findings in the referenced role's rules; none, with a warning, if it is not found."""
    rules = context.roles.rules(binding.role_kind, binding.namespace, binding.role_name)
    if rules is not None:
        return RoleFindings.of(rules)

    where = f" in namespace {binding.namespace}" if binding.role_kind == "Role" else ""
    if context.roles.complete():
        problem = f"was not found{where}"
        later = "; create the role before its binding to have its rules checked"
    else:
        problem = (
            f"could not be looked up{where} (Bulwark has not read the cluster's roles: its "
            "role cache is not in sync with the API server yet, or it runs without a cluster)"
        )
        later = ""
    message = (
        f"{binding.label}: {binding.role} {problem}, "
        f"so the binding was judged by the role's name only{later}"
    )
    context.warn(message)
    return RoleFindings()


def judge_binding(obj: Object, context: PolicyContext) -> list[Violation]:
    """Every rbac-binding violation of a RoleBinding or ClusterRoleBinding."""
    if maintained_by_api_server(obj, context.request):
        return []
    binding = Binding.read(obj, context)
    settings = context.settings.rbac
    grants = [
        (index, subject)
        for index, subject in enumerate(binding.subjects)
        if not _exempt(subject, binding, settings.exempt_subjects)
    ]
    if not grants and binding.subjects:
        return []

    public_role = binding.role_kind == "ClusterRole" and binding.role_name in PUBLIC_CLUSTER_ROLES
    forbidden = binding.role_name in settings.forbidden_roles
    findings = _lookup(binding, obj, context)

    if not binding.subjects:
        return _role_violations(binding, findings, forbidden, NO_SUBJECT)
    found: list[Violation] = []
    for index, subject in grants:
        broad = None if public_role else _broad(binding, index, subject)
        if broad is not None:
            found.append(broad)
        found.extend(_role_violations(binding, findings, forbidden, binding.subject_label(subject)))
    return found


class RbacBinding:
    """The rbac-binding policy, as the engine calls it."""

    name = POLICY

    def applies_to(self, request: Request) -> bool:
        return (
            request.kind.group == RBAC_GROUP
            and request.kind.kind in BINDING_KINDS
            and not request.sub_resource
        )

    def check(self, obj: Object, context: PolicyContext) -> list[Violation]:
        return judge_binding(obj, context)
