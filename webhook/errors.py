"""The exceptions Bulwark raises, in one small tree.

    BulwarkError                 anything Bulwark itself reports to a person
    ├── ConfigError              the configuration file is unreadable or invalid
    ├── BadReview                an HTTP body is not a usable AdmissionReview (HTTP 400)
    ├── ManifestError            a manifest given to `evaluate` cannot be read (exit 2)
    ├── CertificateError         a certificate or key cannot be made, read or used
    └── KubeUnavailable          the Kubernetes API cannot be configured or reached

Third-party errors (pydantic, yaml, ssl, kubernetes.client.ApiException) are translated
into these where they enter: the configuration loader, the review decoder, the manifest
reader, the certificate store and the Kubernetes edge.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any


class BulwarkError(Exception):
    """An error with a message meant for the person running Bulwark."""


class ConfigError(BulwarkError):
    """The configuration cannot be used; the message names the key."""


class BadReview(BulwarkError):
    """The request body is not an AdmissionReview Bulwark can answer."""


class ManifestError(BulwarkError):
    """A manifest cannot be read; the message names the file, document and line."""


class CertificateError(BulwarkError):
    """A certificate or key cannot be made, read or served."""


class KubeUnavailable(BulwarkError):
    """The Kubernetes API cannot be configured or reached (kubeconfig, network, auth)."""


# What PyYAML's constructors raise, instead of a YAMLError, for a value they cannot build:
# ValueError for a date that does not exist (`2024-13-45`) or an integer longer than
# Python converts (4300 digits); KeyError, IndexError or AttributeError for a tag its
# value does not fit (`!!bool 1`, `!!int ''`, `!!timestamp x`).
UNBUILDABLE = (ValueError, LookupError, AttributeError)


def unbuildable_value(error: Exception) -> str:
    """What an `UNBUILDABLE` error raised while PyYAML builds a value means, for a message."""
    if "integer string conversion" in str(error):
        return "a value that cannot be read (an integer of more than 4300 digits)"
    if isinstance(error, ValueError):
        return f"a value that cannot be read ({error})"
    return "a value that cannot be read as its tag says (such as !!bool 1 or !!int '')"


def value_kind(value: Any) -> str:
    """What a YAML reader made of a value, in a manifest writer's words ("a list")."""
    if value is None:
        return "empty (null)"
    for kind, name in _VALUE_KINDS:
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


_VALUE_KINDS = (
    (bool, "a boolean"),  # before int: a bool is one
    (int | float, "a number"),
    (str, "a string"),
    (list | tuple, "a list"),
    (dict, "a mapping"),
    (set, "a set (!!set)"),
    (bytes, "binary data (!!binary)"),
    (date, "a date"),  # a datetime is one too
)


# C0 and C1 controls and DEL; the line and paragraph separators (a line break to some
# readers); the invisible and direction-changing marks, which make text read otherwise than
# it is ("Trojan Source"); and what XML 1.0 cannot hold (surrogates, U+FFFE, U+FFFF).
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    r"\ud800-\udfff\ufffe\uffff]"
)


def quoted(value: Any, most: int) -> str:
    """`value` as Python writes it (text in quotes), escaped and cut to about `most`
    characters: for a message that quotes input, which may be long or nested past the
    stack's depth."""
    if isinstance(value, str):
        shown = repr(value[:most])
        return printable(shown if len(value) <= most else shown[:-1] + "..." + shown[-1])
    try:
        shown = repr(value)
    except RecursionError:
        return "nested too deeply to show"
    return printable(shown if len(shown) <= most else shown[: most - 3] + "...")


def printable(text: str, *, keep_line_breaks: bool = False) -> str:
    """`text` with each control character written as its escape: `\\u001b` for ESC.

    For messages printed to a person: names and keys come from input that nothing has
    checked yet, and must neither break a line nor reach a terminal as an escape sequence.
    With `keep_line_breaks`, a message of several lines keeps its own line breaks.
    """
    if _UNPRINTABLE.search(text) is None:
        return text
    if keep_line_breaks:
        return "\n".join(printable(line) for line in text.split("\n"))
    return _UNPRINTABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
