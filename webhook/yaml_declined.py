"""How the two fast YAML readers decline a document, and what they never read.

`webhook.yaml_native` (rapidyaml) and `webhook.yaml_subset` (pure Python) each read only
the YAML they are sure of and raise `Unsupported` for the rest, which the next reader
then takes, down to libyaml. This module holds what they share and imports no YAML
library, so that `bulwark evaluate` loads PyYAML only when a document needs it.
"""

from __future__ import annotations

import re

__all__ = ["UNSUPPORTED_CHARACTERS", "Unsupported"]

# Characters that make a whole text the slow path's business: tabs, carriage returns,
# YAML 1.1's other line breaks (NEL, LS, PS), the byte-order mark and non-printables.
# Written as the few ranges they are, not as "anything but the printable ones": a negated
# class over all of Unicode takes 15 ms to compile, a twentieth of `bulwark evaluate`'s start.
UNSUPPORTED_CHARACTERS = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]"
)


class Unsupported(Exception):
    """The text uses YAML outside what this reader is sure of; read it with the next one."""
