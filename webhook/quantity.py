"""Kubernetes resource quantities, parsed and compared as the API server compares them.

The grammar is the API server's (k8s.io/apimachinery/pkg/api/resource):

    quantity  = sign? number suffix
    number    = digits | digits "." digits? | "." digits
    suffix    = binarySI (Ki Mi Gi Ti Pi Ei) | decimalSI (n u m "" k M G T P E)
              | ("e" | "E") sign? digits

Values are held as `fractions.Fraction`, so `1` equals `1000m` and `1Gi` equals `1024Mi`
with no floating-point rounding. "1E" is one exa; "1E3" is a thousand: an `E` followed by
digits is an exponent, as upstream reads it.

Two upstream rules shape the value after parsing, so that comparisons here agree with
the API server's validation: a non-zero amount finer than a nano is rounded away from
zero to the next nano (`0.1n` is `1n`: "if you ask for some, you get some"), and an
amount written with a binary suffix is capped at 2^63-1 (`9Ei` equals `10Ei`).

Two deliberate departures from upstream, both refusing what it would read:

- Upstream's scanner reads a number-less quantity (`Mi`, `+`, `.`) as zero. Those are
  typos, not amounts, and are refused here: a configuration with `memory: Mi` stops.
- Upstream accepts exponents of any size (`1e100`); here an exponent beyond +-64 is
  refused, so that `1e999999999` cannot make us build a billion-digit number. No real
  request for cpu or memory comes near 10^64.

A caller that meets such a value in an object treats it as unreadable and leaves it be.
"""

from __future__ import annotations

import math
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
_NANO = 10**9
_MAX_BINARY = Fraction(2**63 - 1)


class InvalidQuantity(ValueError):
    """The text is not a Kubernetes quantity."""


# Far above any real quantity (2^63 has 19 digits), far below Python's int parsing limit.
_MAX_LENGTH = 100


@lru_cache(maxsize=4096, typed=True)  # typed: True and 1.0 must not share a cache entry
def parse_quantity(text: str | int | float) -> Fraction:
    """The value of a quantity such as `100m`, `1.5Gi`, `1e3` or `+1`, as the API server holds it.

    Integers and floats (as YAML and JSON write `cpu: 1` or `cpu: 0.5`) are accepted as
    their value. Anything else raises InvalidQuantity.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise InvalidQuantity(f"{text!r} is not a quantity")
    if isinstance(text, int):
        return Fraction(text)
    if isinstance(text, float):
        if not math.isfinite(text):
            raise InvalidQuantity(f"{text!r} is not a quantity")
        return _nano_rounded(Fraction(repr(text)))
    if len(text) > _MAX_LENGTH:
        raise InvalidQuantity(f"{text[:20]!r}... is too long to be a quantity")
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise InvalidQuantity(f"{text!r} is not a quantity (examples: 100m, 0.5, 128Mi, 1Gi)")
    value = Fraction(match["number"])
    if match["sign"] == "-":
        value = -value
    if match["binary"]:
        value = _nano_rounded(value * _BINARY[match["binary"]])
        return max(-_MAX_BINARY, min(value, _MAX_BINARY))
    if match["exponent"] is not None:
        exponent = int(match["exponent"])
        if abs(exponent) > _MAX_EXPONENT:
            raise InvalidQuantity(f"{text!r} has an exponent out of range")
        return _nano_rounded(value * Fraction(10) ** exponent)
    return _nano_rounded(value * _DECIMAL[match["decimal"]])


def _nano_rounded(value: Fraction) -> Fraction:
    """`value` rounded away from zero to a whole number of nanos, as upstream stores it."""
    if _NANO % value.denominator == 0:
        return value
    nanos = math.ceil(abs(value) * _NANO)
    return Fraction(nanos if value > 0 else -nanos, _NANO)


def quantity_or_none(value: object) -> Fraction | None:
    """The value of `value` if it is a quantity, else None; never raises."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return parse_quantity(value)
    except InvalidQuantity:
        return None


def is_quantity(value: object) -> bool:
    """Whether `value` parses as a quantity."""
    return quantity_or_none(value) is not None
