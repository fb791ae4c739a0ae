"""An admission request as the engine and the policies read it, without pydantic.

The Protocols are what the engine reads. The pydantic models of `webhook.review` satisfy
them, and so do the plain classes here, which the common review is decoded into
(`webhook.review.plain_review`) and which `bulwark evaluate` builds for each object: the
dry run imports no pydantic unless it is given a configuration file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

# A namespace's (or a Service's) name: an RFC 1123 label, as the API server requires.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


def as_text(value: Any) -> str:
    """A name, namespace or key read from an object, as text: a string as it is, another
    scalar as `str` writes it, and "" for null, a mapping or a list. The API server sends
    none of the last two where a name belongs, and `str` of one nested a thousand deep
    overflows the stack."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


class Kind(Protocol):
    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def kind(self) -> str: ...


class Resource(Protocol):
    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def resource(self) -> str: ...


class User(Protocol):
    @property
    def username(self) -> str: ...
    @property
    def groups(self) -> list[str]: ...


class Request(Protocol):
    """An admission request as the engine and the policies read it."""

    @property
    def uid(self) -> str: ...
    @property
    def kind(self) -> Kind: ...
    @property
    def resource(self) -> Resource: ...
    @property
    def sub_resource(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def operation(self) -> Operation: ...
    @property
    def user_info(self) -> User: ...
    @property
    def object(self) -> dict[str, Any] | None: ...
    @property
    def old_object(self) -> dict[str, Any] | None: ...
    @property
    def dry_run(self) -> bool: ...


@dataclass(slots=True)
class PlainKind:
    group: str
    version: str
    kind: str


@dataclass(slots=True)
class PlainResource:
    group: str
    version: str
    resource: str


@dataclass(slots=True)
class PlainUser:
    username: str
    uid: str
    groups: list[str]


@dataclass(slots=True)  # not frozen, for speed; nothing writes to it once built
class PlainRequest:
    uid: str
    kind: PlainKind
    resource: PlainResource
    sub_resource: str
    name: str
    namespace: str
    operation: Operation
    user_info: PlainUser
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    dry_run: bool
