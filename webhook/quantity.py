"""Kubernetes resource quantities, parsed and compared exactly.

The grammar is the API server's (k8s.io/apimachinery/pkg/api/resource):

    quantity  = sign? number suffix
    number    = digits | digits "." digits? | "." digits
    suffix    = binarySI (Ki Mi Gi Ti Pi Ei) | decimalSI (n u m "" k M G T P E)
              | ("e" | "E") sign? digits

Values are held as `fractions.Fraction`, so `1` equals `1000m` and `1Gi` equals `1024Mi`
with no floating-point rounding. "1E" is one exa; "1E3" is a thousand: an `E` followed by
digits is an exponent, as upstream reads it.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_PATTERN = re.compile(
    r"(?P<sign>[+-]?)(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exponent>[+-]?[0-9]+)|(?P<decimal>[numkMGTPE]?))"
)
# Upstream caps exponents far below this; the bound keeps "1e999999999" from eating memory.
_MAX_EXPONENT = 64


class InvalidQuantity(ValueError):
    """The text is not a Kubernetes quantity."""


@lru_cache(maxsize=4096)
def parse_quantity(text: str | int | float) -> Fraction:
    """The exact value of a quantity such as `100m`, `1.5Gi`, `1e3` or `+1`.

    Integers (as YAML and JSON write `cpu: 1`) are accepted as their value.
    """
    if isinstance(text, bool):
        raise InvalidQuantity(f"{text!r} is not a quantity")
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        return Fraction(repr(text))
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise InvalidQuantity(f"{text!r} is not a quantity (examples: 100m, 0.5, 128Mi, 1Gi)")
    value = Fraction(match["number"])
    if match["sign"] == "-":
        value = -value
    if match["binary"]:
        return value * _BINARY[match["binary"]]
    if match["exponent"] is not None:
        exponent = int(match["exponent"])
        if abs(exponent) > _MAX_EXPONENT:
            raise InvalidQuantity(f"{text!r} has an exponent out of range")
        return value * Fraction(10) ** exponent
    return value * _DECIMAL[match["decimal"]]


def is_quantity(value: object) -> bool:
    """Whether `value` parses as a quantity."""
    try:
        parse_quantity(value)  # type: ignore[arg-type]
    except (InvalidQuantity, TypeError):
        return False
    return True
