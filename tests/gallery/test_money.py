"""gallery.money: exact prices in minor units, tiny cases."""

from decimal import Decimal

import pytest

from gallery.money import (
    InvalidAmount,
    UnknownCurrency,
    currency,
    format_minor,
    from_legacy_real,
    line_amount,
    to_minor,
)

EUR, JPY, KWD = currency("EUR"), currency("jpy"), currency("KWD")


@pytest.mark.parametrize(
    "value, money, minor",
    [
        ("2.35", EUR, 235),
        ("2.350", EUR, 235),
        ("0", EUR, 0),
        (" 7 ", EUR, 700),
        (7, EUR, 700),
        (Decimal("0.10"), EUR, 10),
        (Decimal(1000000000), EUR, 100_000_000_000),
        ("235", JPY, 235),
        ("1.005", KWD, 1005),
        (2.35, EUR, 235),
        (0.1, EUR, 10),
    ],
)
def test_to_minor(value, money, minor):
    assert to_minor(value, money) == minor
    assert isinstance(to_minor(value, money), int)


@pytest.mark.parametrize(
    "value, money, says",
    [
        ("-1", EUR, "negative"),
        (-0.01, EUR, "negative"),
        ("NaN", EUR, "not a finite"),
        (Decimal("Infinity"), EUR, "not a finite"),
        (float("inf"), EUR, "not a finite"),
        ("2.351", EUR, "more decimals than EUR has (2)"),
        (Decimal("2.3500000000000000001"), EUR, "more decimals"),
        ("2.5", JPY, "more decimals than JPY has (0)"),
        (Decimal("1e-9"), EUR, "more decimals"),
        ("1000000000.01", EUR, "above the largest"),
        ("two", EUR, "not a decimal number"),
        ("", EUR, "not a decimal"),
        (True, EUR, "not a number"),
        ([1], EUR, "not a decimal string or number"),
    ],
)
def test_bad_prices_are_refused_quoting_the_value(value, money, says):
    with pytest.raises(InvalidAmount) as info:
        to_minor(value, money)
    assert says in str(info.value)
    shown = str(value) if isinstance(value, Decimal) else repr(value)
    assert shown in str(info.value)


@pytest.mark.parametrize(
    "value, money, says",
    [
        (
            "2.35000000000000000000000000001",
            EUR,
            "more decimals than EUR has (2)",
        ),  # 30 digits: Decimal's 28 rounded it
        ("999999999.999999999999999999999", EUR, "more decimals than EUR has (2)"),
        ("0.0000000000000000000000000000000000001", EUR, "more decimals"),
        (Decimal("1e-999999999999999999"), EUR, "more decimals than EUR has (2)"),
        (Decimal("1e999999999999999999"), EUR, "above the largest accepted, 1000000000 EUR"),
        (Decimal("1000000000.000000000000000000000000000001"), EUR, "more decimals"),
        (Decimal("1000000000.01"), EUR, "above the largest"),
        (Decimal(12345678901), JPY, "above the largest"),
        ("1_000.5", EUR, "plain decimal"),
        ("\u0661\u0662", EUR, "plain decimal"),  # Arabic-Indic digits
        ("1e-2", EUR, "plain decimal"),
        ("1E2", EUR, "plain decimal"),
        ("+5", EUR, "plain decimal"),
        ("-0", EUR, "plain decimal"),
        (".5", EUR, "plain decimal"),
        ("5.", EUR, "plain decimal"),
        ("\uff15", EUR, "plain decimal"),  # fullwidth 5
    ],
)
def test_over_precise_absurd_or_non_ascii_prices_are_refused(value, money, says):
    with pytest.raises(InvalidAmount) as info:
        to_minor(value, money)
    assert says in str(info.value)
    assert (str(value) if isinstance(value, Decimal) else repr(value)) in str(info.value)


@pytest.mark.parametrize(
    "value, money, minor",
    [
        ("999999999.99", EUR, 99_999_999_999),
        ("1000000000", EUR, 100_000_000_000),
        ("1000000000.000", EUR, 100_000_000_000),
        (Decimal("1E+9"), EUR, 100_000_000_000),
        (Decimal("0E-40"), EUR, 0),
        (Decimal("1e-2"), EUR, 1),
        (Decimal("2.350000000000000000000000000000000"), EUR, 235),
        ("0000000000000002.35", EUR, 235),
        ("1000000000", JPY, 1_000_000_000),
        ("0.001", KWD, 1),
    ],
)
def test_exact_amounts_at_the_edges(value, money, minor):
    assert to_minor(value, money) == minor


def test_format_and_arithmetic_are_exact():
    assert format_minor(235, EUR) == "2.35" and format_minor(5, EUR) == "0.05" and format_minor(0, EUR) == "0.00"
    assert format_minor(235, JPY) == "235" and format_minor(1005, KWD) == "1.005" and format_minor(-5, EUR) == "-0.05"
    # ten times 0.10 is exactly 1.00 (a float sum is 0.9999999999999999)
    assert format_minor(sum(line_amount(to_minor("0.10", EUR), 1) for _ in range(10)), EUR) == "1.00"
    assert line_amount(to_minor("0.10", EUR), 3) + line_amount(to_minor("0.20", EUR), 1) == 50
    with pytest.raises(TypeError):
        format_minor(2.35, EUR)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        line_amount(100, -1)


def test_currency_table():
    assert (EUR.exponent, JPY.exponent, KWD.exponent) == (2, 0, 3)
    with pytest.raises(UnknownCurrency, match="'XYZ'"):
        currency("XYZ")


def test_legacy_real_prices():
    assert from_legacy_real(1.35, EUR) == (135, None)  # not 134 (1.35 * 100 = 135.00000000000003 as floats)
    assert from_legacy_real(0.29, EUR) == (29, None)  # 0.29 * 100 = 28.999999999999996
    assert from_legacy_real(1e9, EUR) == (100_000_000_000, None) and from_legacy_real(450.0, JPY) == (450, None)
    assert from_legacy_real(-1.0, EUR)[0] is None and from_legacy_real(float("inf"), EUR)[0] is None


@pytest.mark.parametrize("value, money", [(0.125, EUR), (0.004, EUR), (1e-300, EUR), (450.5, JPY), (1.0005, KWD)])
def test_a_legacy_price_that_needs_rounding_becomes_no_price(value, money):
    """Never rounded silently (0.004 EUR would be charged 0.00): no price, which checkout lists in
    needs_attention, and a note saying what was stored and why it was dropped."""
    minor, note = from_legacy_real(value, money)
    assert minor is None
    assert repr(value) in note and f"more decimals than {money.code} has" in note and "no price" in note
