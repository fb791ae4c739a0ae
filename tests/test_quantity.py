"""Kubernetes quantities: the API server's grammar, its rounding, and exact comparison."""

from __future__ import annotations

from fractions import Fraction

import pytest

from webhook.quantity import InvalidQuantity, is_quantity, parse_quantity, quantity_or_none


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("100m", Fraction(1, 10), id="milli"),
        pytest.param("0.1", Fraction(1, 10), id="decimal-fraction"),
        pytest.param("1e3", Fraction(1000), id="exponent-lower"),
        pytest.param("1E3", Fraction(1000), id="exponent-upper"),
        pytest.param("1e+3", Fraction(1000), id="exponent-plus"),
        pytest.param("1E-3", Fraction(1, 1000), id="exponent-negative"),
        pytest.param("1Ki", Fraction(1024), id="kibi"),
        pytest.param("1.5Gi", Fraction(3 * 2**29), id="fractional-gibi"),
        pytest.param("+1", Fraction(1), id="plus-sign"),
        pytest.param("-1", Fraction(-1), id="minus-sign"),
        pytest.param(".5", Fraction(1, 2), id="no-integer-part"),
        pytest.param("1.", Fraction(1), id="no-fraction-digits"),
        pytest.param("1.G", Fraction(10**9), id="no-fraction-digits-with-suffix"),
        pytest.param("1E", Fraction(10**18), id="exa-not-exponent"),
        pytest.param("1n", Fraction(1, 10**9), id="nano"),
        pytest.param("1u", Fraction(1, 10**6), id="micro"),
        pytest.param("2k", Fraction(2000), id="kilo"),
        pytest.param("3M", Fraction(3 * 10**6), id="mega"),
        pytest.param("1T", Fraction(10**12), id="tera"),
        pytest.param("1P", Fraction(10**15), id="peta"),
        pytest.param("1Mi", Fraction(2**20), id="mebi"),
        pytest.param("1Ti", Fraction(2**40), id="tebi"),
        pytest.param("1Pi", Fraction(2**50), id="pebi"),
        pytest.param("1Ei", Fraction(2**60), id="exbi"),
        pytest.param("007", Fraction(7), id="leading-zeros"),
        pytest.param("0", Fraction(0), id="zero"),
        pytest.param(2, Fraction(2), id="json-integer"),
        pytest.param(0.5, Fraction(1, 2), id="json-float"),
        pytest.param(0.1, Fraction(1, 10), id="json-float-read-as-written"),
    ],
)
def test_every_form_the_api_server_accepts_parses_to_its_value(
    text: str | float, value: Fraction
) -> None:
    """Each spelling the API server accepts is read, with its exact value."""
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1.2.3", id="two-points"),
        pytest.param("Mi", id="suffix-alone-which-upstream-reads-as-zero"),
        pytest.param("1 Gi", id="inner-space"),
        pytest.param(" 1", id="leading-space"),
        pytest.param("--1", id="double-sign"),
        pytest.param("1KiB", id="byte-unit"),
        pytest.param("1K", id="upper-kilo"),
        pytest.param("1ki", id="lower-kibi"),
        pytest.param("1e", id="exponent-without-digits"),
        pytest.param("1e1.5", id="fractional-exponent"),
        pytest.param("", id="empty"),
        pytest.param(".", id="point-alone"),
        pytest.param("+", id="sign-alone-which-upstream-reads-as-zero"),
        pytest.param("0x10", id="hexadecimal"),
        pytest.param("1_000", id="underscore"),
        pytest.param("½", id="unicode-fraction"),
        pytest.param("\u0661", id="non-ascii-digit"),  # ARABIC-INDIC DIGIT ONE
        pytest.param("1e65", id="exponent-beyond-bound"),
        pytest.param("1e-65", id="negative-exponent-beyond-bound"),
    ],
)
def test_invalid_text_is_refused(text: str) -> None:
    """Text that is not a quantity raises InvalidQuantity, never a bare ValueError."""
    with pytest.raises(InvalidQuantity):
        parse_quantity(text)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="boolean"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="infinity"),
    ],
)
def test_non_quantity_numbers_are_refused(value: float) -> None:
    """Booleans and non-finite floats are not quantities, even after 1 or 1.0 was parsed."""
    parse_quantity(1)
    parse_quantity(1.0)
    with pytest.raises(InvalidQuantity):
        parse_quantity(value)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param("1", "1000m", id="cores-and-millicores"),
        pytest.param("1Gi", "1024Mi", id="gibi-and-mebi"),
        pytest.param("0.1", "100m", id="decimal-and-milli"),
        pytest.param("1k", "1e3", id="kilo-and-exponent"),
        pytest.param("0.5Gi", "512Mi", id="half-gibi"),
        pytest.param(1, "1", id="number-and-text"),
        pytest.param("1E", "1e18", id="exa-and-exponent"),
        pytest.param("+1", "1", id="explicit-plus"),
    ],
)
def test_equal_quantities_compare_equal_whatever_the_spelling(left: str | int, right: str) -> None:
    """Quantities compare by value, exactly, not by text."""
    assert parse_quantity(left) == parse_quantity(right)


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        pytest.param("999m", "1", id="milli-below-core"),
        pytest.param("1000Mi", "1Gi", id="mebi-below-gibi"),
        pytest.param("1G", "1Gi", id="decimal-below-binary"),
        pytest.param("0.1", "0.10000001", id="close-decimals"),
    ],
)
def test_quantities_order_exactly(smaller: str, larger: str) -> None:
    """No floating-point rounding blurs an order the API server sees."""
    assert parse_quantity(smaller) < parse_quantity(larger)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("0.1n", Fraction(1, 10**9), id="below-a-nano"),
        pytest.param("3.001n", Fraction(4, 10**9), id="between-nanos"),
        pytest.param("-0.5n", Fraction(-1, 10**9), id="negative-away-from-zero"),
        pytest.param("0.000000000001Ki", Fraction(2, 10**9), id="tiny-binary"),
        pytest.param("0n", Fraction(0), id="zero-stays-zero"),
    ],
)
def test_amounts_finer_than_a_nano_round_up_as_upstream_does(text: str, value: Fraction) -> None:
    """The API server rounds away from zero to whole nanos; comparisons must agree with it."""
    assert parse_quantity(text) == value


def test_binary_amounts_are_capped_at_the_largest_int64() -> None:
    """Upstream caps binary-suffixed amounts at 2^63-1, so 9Ei and 10Ei are equal."""
    assert parse_quantity("9Ei") == parse_quantity("10Ei") == 2**63 - 1


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="null"),
        pytest.param([1], id="list"),
        pytest.param({"cpu": 1}, id="object"),
        pytest.param(False, id="boolean"),
        pytest.param("lots", id="word"),
        pytest.param(float("inf"), id="infinity"),
    ],
)
def test_quantity_or_none_never_raises(value: object) -> None:
    """Whatever a malformed object holds, quantity_or_none answers None instead of raising."""
    assert quantity_or_none(value) is None
    assert not is_quantity(value)


def test_quantity_or_none_reads_a_quantity() -> None:
    """A readable quantity comes back as its value."""
    assert quantity_or_none("250m") == Fraction(1, 4)
    assert is_quantity("250m")
