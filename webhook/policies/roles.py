"""A role source without an API server: the Roles and ClusterRoles found in some manifests.

`bulwark evaluate` judges a binding with the roles that appear in the same input, so that
a ClusterRole and its binding applied together are judged as the cluster would see them.
The live webhook uses the watched cache in `webhook.kube` instead; this module stays pure
(no Kubernetes client) so that `evaluate` starts fast.

In a cluster the aggregation controller writes an aggregated ClusterRole's rules into its
`rules`; manifests usually carry the `aggregationRule` with empty rules instead. So here an
aggregated ClusterRole's rules are its own plus those of every ClusterRole in the input its
selectors match, followed transitively (`admin` aggregates `edit`, which aggregates `view`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from webhook.request import as_text
from webhook.verdict import Object

RBAC_GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = frozenset({"Role", "ClusterRole"})


def _mapping(value: Any) -> Object:
    return value if isinstance(value, dict) else {}


def _rules(obj: Object) -> list[Object]:
    rules = obj.get("rules")
    return [rule for rule in rules if isinstance(rule, dict)] if isinstance(rules, list) else []


def selects(selector: Object, labels: Mapping[str, Any]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) matches `labels`."""
    for key, value in _mapping(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for item in selector.get("matchExpressions") or []:
        expression = _mapping(item)
        key, operator = as_text(expression.get("key")), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _objects(manifests: Iterable[Any]) -> Iterator[Object]:
    """Every object, with `List` kinds (List, RoleList, ...) opened up."""
    for obj in manifests:
        if not isinstance(obj, dict):
            continue
        if str(obj.get("kind", "")).endswith("List") and isinstance(obj.get("items"), list):
            yield from _objects(obj["items"])
        else:
            yield obj


class InputRoles:
    """The roles of a set of manifests, as a `RoleSource`.

    `complete()` is True: the input is all there is to know, so a role missing from it is
    reported as not found.
    """

    def __init__(self, roles: Mapping[tuple[str, str, str], Sequence[Object]]) -> None:
        self._roles = dict(roles)

    @classmethod
    def from_manifests(cls, manifests: Iterable[Any], *, namespace: str = "default") -> InputRoles:
        """Collect the roles in `manifests`; a Role without a namespace lands in `namespace`."""
        roles: dict[tuple[str, str, str], Sequence[Object]] = {}
        cluster_roles: dict[str, Object] = {}
        for obj in _objects(manifests):
            kind = obj.get("kind")
            group = str(obj.get("apiVersion") or "").rpartition("/")[0]
            metadata = _mapping(obj.get("metadata"))
            name = as_text(metadata.get("name"))
            if kind not in ROLE_KINDS or group != RBAC_GROUP or not name:
                continue
            if kind == "ClusterRole":
                cluster_roles[name] = obj
            else:
                roles[("Role", as_text(metadata.get("namespace")) or namespace, name)] = _rules(obj)

        for name in cluster_roles:
            roles[("ClusterRole", "", name)] = _aggregated(name, cluster_roles, frozenset())
        return cls(roles)

    def rules(self, kind: str, namespace: str, name: str) -> Sequence[Object] | None:
        return self._roles.get((kind, namespace if kind == "Role" else "", name))

    def complete(self) -> bool:
        return True


def _aggregated(
    name: str, cluster_roles: Mapping[str, Object], seen: frozenset[str]
) -> list[Object]:
    """A ClusterRole's own rules plus those of the roles its aggregationRule selects."""
    role = cluster_roles[name]
    rules = _rules(role)
    selectors = _mapping(role.get("aggregationRule")).get("clusterRoleSelectors")
    if not isinstance(selectors, list):
        return rules

    seen = seen | {name}
    for other, candidate in cluster_roles.items():
        if other in seen:
            continue
        labels = _mapping(_mapping(candidate.get("metadata")).get("labels"))
        if any(selects(_mapping(selector), labels) for selector in selectors):
            rules.extend(_aggregated(other, cluster_roles, seen))
    return rules
