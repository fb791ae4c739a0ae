"""The policy configuration: one YAML file, read into strict, frozen settings.

Every key of the file is declared here once, as a field of a plain frozen dataclass with its
default, so running without `--config` gives the documented behaviour without importing
pydantic (it is most of `bulwark evaluate`'s start-up). A file is validated by pydantic,
which reads these same dataclasses (`settings_from_mapping`): strictly typed, camelCase
keys (`fsGroup`), and an unknown key, a wrong type or an invalid quantity stops the
program with a message naming the key's full path (`mutation.defaults.limits.cpu`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, cast

from webhook.errors import UNBUILDABLE, ConfigError, unbuildable_value, value_kind
from webhook.quantity import InvalidQuantity, parse_quantity
from webhook.verdict import Enforcement

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, TypeAdapter
    from pydantic_core import CoreSchema

Level = Literal["privileged", "baseline", "restricted"]
POLICY_NAMES = ("pod-security", "ingress-tls", "rbac-binding")
# The API server accepts group ids 0 to 2^31 - 1 (apimachinery's IsValidGroupID).
MAX_GROUP_ID = 2**31 - 1


def _camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


class _Settings:
    """What pydantic needs to validate a file into one of the dataclasses below."""

    __slots__ = ()
    # pydantic reads this config from any dataclass; the dataclasses need no import of it.
    __pydantic_config__: ClassVar[dict[str, Any]] = {
        "extra": "forbid",
        "frozen": True,
        "strict": True,
        "alias_generator": _camel_case,
        "populate_by_name": True,
    }

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        if schema["type"] != "dataclass":
            return schema
        # Strict, a dataclass takes only an instance of itself, where the file gives a
        # mapping. Its fields stay strict.
        return cast("CoreSchema", {**schema, "strict": False})


class _Quantity:
    """A Kubernetes quantity (`100m`, `1.5Gi`, 2) that is not negative."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(_checked_quantity, handler(source))


def _checked_quantity(value: str | float | None) -> str | float | None:
    if value is not None:
        try:
            amount = parse_quantity(value)
        except InvalidQuantity as error:
            raise ValueError(str(error)) from None
        if amount < 0:
            raise ValueError(f"{value!r} is negative; the API server refuses such pods")
    return value


class _GroupId:
    """An integer the API server takes as a group id."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        return core_schema.int_schema(ge=0, le=MAX_GROUP_ID)


Quantity = Annotated[str | int | float | None, _Quantity()]
GroupId = Annotated[int, _GroupId()]


@dataclass(frozen=True, slots=True, kw_only=True)
class PodSecuritySettings(_Settings):
    default_level: Level = "baseline"
    namespaces: dict[str, Level] = field(default_factory=lambda: {"kube-system": "privileged"})

    def level_for(self, namespace: str) -> Level:
        return self.namespaces.get(namespace, self.default_level)


@dataclass(frozen=True, slots=True, kw_only=True)
class IngressSettings(_Settings):
    plaintext_entrypoints: list[str] = field(default_factory=lambda: ["web"])
    tls_entrypoints: list[str] = field(default_factory=lambda: ["websecure"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject(_Settings):
    kind: Literal["User", "Group", "ServiceAccount"]
    name: str
    namespace: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RbacSettings(_Settings):
    forbidden_roles: list[str] = field(default_factory=lambda: ["cluster-admin"])
    exempt_subjects: list[Subject] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceAmounts(_Settings):
    cpu: Quantity = None
    memory: Quantity = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceDefaults(_Settings):
    requests: ResourceAmounts = ResourceAmounts(cpu="100m", memory="128Mi")
    limits: ResourceAmounts = ResourceAmounts(cpu="500m", memory="512Mi")

    def __post_init__(self) -> None:
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


@dataclass(frozen=True, slots=True, kw_only=True)
class MutationOverride(_Settings):
    fs_group: GroupId | None = None
    defaults: ResourceDefaults | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MutationSettings(_Settings):
    fs_group: GroupId = 1000
    defaults: ResourceDefaults = ResourceDefaults()
    namespaces: dict[str, MutationOverride] = field(default_factory=dict)

    def fs_group_for(self, namespace: str) -> int:
        override = self.namespaces.get(namespace)
        return override.fs_group if override and override.fs_group is not None else self.fs_group

    def defaults_for(self, namespace: str) -> ResourceDefaults:
        override = self.namespaces.get(namespace)
        return override.defaults if override and override.defaults else self.defaults


@dataclass(frozen=True, slots=True, kw_only=True)
class EnforcementSettings(_Settings):
    # Keyed by policy name (`pod-security`), not in camelCase.
    __pydantic_config__: ClassVar[dict[str, Any]] = {
        **_Settings.__pydantic_config__,
        "alias_generator": lambda name: name.replace("_", "-"),
    }
    pod_security: Enforcement = "deny"
    ingress_tls: Enforcement = "deny"
    rbac_binding: Enforcement = "deny"

    def for_policy(self, policy: str) -> Enforcement:
        value: Enforcement = getattr(self, policy.replace("-", "_"), "deny")
        return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings(_Settings):
    """The whole configuration file."""

    pod_security: PodSecuritySettings = PodSecuritySettings()
    ingress: IngressSettings = IngressSettings()
    rbac: RbacSettings = RbacSettings()
    mutation: MutationSettings = MutationSettings()
    exempt_namespaces: list[str] = field(default_factory=list)
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
    from pydantic import ValidationError

    try:
        return _validator().validate_python(data)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            key = _key_path(tuple(p for p in detail["loc"] if not str(p).startswith("function-")))
            message = detail["msg"].removeprefix("Value error, ")
            if detail["type"] in _UNKNOWN_KEY:
                message = "unknown key"
            elif detail["type"] in _MISSING_KEY:
                message = "missing: this key is required"
            elif detail["type"] == "dataclass_type":
                message = f"must be a mapping, not {value_kind(detail['input'])}"
            problems.append(f"{source}: {key}: {message}")
        raise ConfigError("\n".join(problems)) from None


# How pydantic words a key the dataclasses do not have, or a required one that is missing.
_UNKNOWN_KEY = frozenset({"unexpected_keyword_argument", "extra_forbidden"})
_MISSING_KEY = frozenset({"missing_keyword_only_argument", "missing_argument", "missing"})


@cache
def _validator() -> TypeAdapter[Settings]:
    from pydantic import TypeAdapter

    return TypeAdapter(Settings)


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

    from webhook.yaml_compat import ReadApart

    loader = _unique_key_loader()(text)
    loader.name = str(path)  # named in the marks of its errors, not "<unicode string>"
    try:
        data = loader.get_single_data()
    except ReadApart as error:
        raise ConfigError(f"{path}: refused: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    except UNBUILDABLE as error:
        raise ConfigError(f"{path}: not valid YAML: {unbuildable_value(error)}") from None
    finally:
        loader.dispose()
    return settings_from_mapping(data, source=str(path))


@cache
def _unique_key_loader() -> type[Any]:
    """A safe loader that refuses a key given twice, instead of keeping the last one."""
    import yaml

    from webhook.yaml_compat import kubectl_loader

    class UniqueKeyLoader(kubectl_loader(yaml.SafeLoader, kubectl_scalars=False)):  # type: ignore[misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            self.flatten_mapping(node)  # merge keys first: `<<` is not a key of its own
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
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

    return UniqueKeyLoader
