"""The policy configuration: one YAML file, read into a strict pydantic model.

Every key of the file is declared here with its default, so running without `--config`
gives the documented behaviour. An unknown key, a wrong type or an invalid quantity
stops the program with a message naming the key's full path (`mutation.defaults.limits.cpu`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from webhook.errors import ConfigError
from webhook.quantity import InvalidQuantity, parse_quantity
from webhook.verdict import Enforcement

Level = Literal["privileged", "baseline", "restricted"]
POLICY_NAMES = ("pod-security", "ingress-tls", "rbac-binding")
# The API server accepts group ids 0 to 2^31 - 1 (apimachinery's IsValidGroupID).
MAX_GROUP_ID = 2**31 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


class PodSecuritySettings(_Strict):
    default_level: Level = Field("baseline", alias="defaultLevel")
    namespaces: dict[str, Level] = Field(default_factory=lambda: {"kube-system": "privileged"})  # type: ignore[arg-type]

    def level_for(self, namespace: str) -> Level:
        return self.namespaces.get(namespace, self.default_level)


class IngressSettings(_Strict):
    plaintext_entrypoints: list[str] = Field(["web"], alias="plaintextEntrypoints")
    tls_entrypoints: list[str] = Field(["websecure"], alias="tlsEntrypoints")


class Subject(_Strict):
    kind: Literal["User", "Group", "ServiceAccount"]
    name: str
    namespace: str = ""


class RbacSettings(_Strict):
    forbidden_roles: list[str] = Field(["cluster-admin"], alias="forbiddenRoles")
    exempt_subjects: list[Subject] = Field([], alias="exemptSubjects")


class ResourceAmounts(_Strict):
    cpu: str | int | float | None = None
    memory: str | int | float | None = None

    @field_validator("cpu", "memory")
    @classmethod
    def _is_quantity(cls, value: str | float | None) -> str | float | None:
        if value is not None:
            try:
                amount = parse_quantity(value)
            except InvalidQuantity as error:
                raise ValueError(str(error)) from None
            if amount < 0:
                raise ValueError(f"{value!r} is negative; the API server refuses such pods")
        return value


class ResourceDefaults(_Strict):
    requests: ResourceAmounts = ResourceAmounts(cpu="100m", memory="128Mi")
    limits: ResourceAmounts = ResourceAmounts(cpu="500m", memory="512Mi")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ResourceDefaults:
        for resource in ("cpu", "memory"):
            request, limit = getattr(self.requests, resource), getattr(self.limits, resource)
            if (
                request is not None
                and limit is not None
                and parse_quantity(request) > parse_quantity(limit)
            ):
                raise ValueError(
                    f"the default {resource} request {request} is above the limit {limit}"
                )
        return self


class MutationOverride(_Strict):
    fs_group: int | None = Field(None, alias="fsGroup", ge=0, le=MAX_GROUP_ID)
    defaults: ResourceDefaults | None = None


class MutationSettings(_Strict):
    fs_group: int = Field(1000, alias="fsGroup", ge=0, le=MAX_GROUP_ID)
    defaults: ResourceDefaults = ResourceDefaults()
    namespaces: dict[str, MutationOverride] = Field(default_factory=dict)

    def fs_group_for(self, namespace: str) -> int:
        override = self.namespaces.get(namespace)
        return override.fs_group if override and override.fs_group is not None else self.fs_group

    def defaults_for(self, namespace: str) -> ResourceDefaults:
        override = self.namespaces.get(namespace)
        return override.defaults if override and override.defaults else self.defaults


class EnforcementSettings(_Strict):
    pod_security: Enforcement = Field("deny", alias="pod-security")
    ingress_tls: Enforcement = Field("deny", alias="ingress-tls")
    rbac_binding: Enforcement = Field("deny", alias="rbac-binding")

    def for_policy(self, policy: str) -> Enforcement:
        value: Enforcement = getattr(self, policy.replace("-", "_"), "deny")
        return value


class Settings(_Strict):
    """The whole configuration file."""

    pod_security: PodSecuritySettings = Field(PodSecuritySettings(), alias="podSecurity")
    ingress: IngressSettings = IngressSettings()
    rbac: RbacSettings = RbacSettings()
    mutation: MutationSettings = MutationSettings()
    exempt_namespaces: list[str] = Field([], alias="exemptNamespaces")
    enforcement: EnforcementSettings = EnforcementSettings()


def _key_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def settings_from_mapping(data: Any, *, source: str = "configuration") -> Settings:
    """Validate a parsed configuration document, naming the first bad key on failure."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the configuration must be a mapping, not {type(data).__name__}"
        )
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            key = _key_path(tuple(p for p in detail["loc"] if not str(p).startswith("function-")))
            message = detail["msg"].removeprefix("Value error, ")
            if detail["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{source}: {key}: {message}")
        raise ConfigError("\n".join(problems)) from None


def load_settings(path: str | Path | None) -> Settings:
    """The settings in `path`, or the built-in defaults when no file is given."""
    if path is None:
        return Settings()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the configuration: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from None
    import yaml  # only with a configuration file: it costs a tenth of `evaluate`'s start-up

    try:
        data = yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return settings_from_mapping(data, source=str(path))


@cache
def _unique_key_loader() -> type[Any]:
    """A safe loader that refuses a key given twice, instead of keeping the last one."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    hash(key)
                except TypeError:  # `? [a, b]`: PyYAML's own words, before `seen` trips on it
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "found unhashable key",
                        key_node.start_mark,
                    ) from None
                if key in seen:
                    line = key_node.start_mark.line + 1
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice (again at line {line})"
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader
