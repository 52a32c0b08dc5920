"""Money, exactly: an amount is an ``int`` of the currency's minor units (ISO 4217 exponent).

Text in, text out: a price arrives as a decimal string (``"2.35"``) or a JSON number read as its
decimal text (``decimal.Decimal``, never a float), is checked (finite, not negative, no more
decimals than the currency has, not absurdly large) and becomes minor units (``235``); it leaves
as a decimal string again. Arithmetic is on ``int`` only. Pure: no I/O, no framework.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

#: ISO 4217 minor-unit exponents of the currencies a till may use. Codes not listed are refused
#: rather than guessed (an exponent of 2 is wrong for JPY, KWD, ...).
EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        (
            "EUR",
            "USD",
            "GBP",
            "CHF",
            "SEK",
            "NOK",
            "DKK",
            "PLN",
            "CZK",
            "HUF",
            "RON",
            "BGN",
            "TRY",
            "CAD",
            "AUD",
            "NZD",
            "MXN",
            "BRL",
            "ARS",
            "COP",
            "PEN",
            "ZAR",
            "INR",
            "CNY",
            "HKD",
            "SGD",
            "TWD",
            "THB",
            "MYR",
            "PHP",
            "IDR",
            "ILS",
            "AED",
            "SAR",
            "QAR",
            "EGP",
            "MAD",
            "NGN",
            "KES",
            "RUB",
            "UAH",
            "RSD",
            "MKD",
            "ALL",
            "BAM",
            "GEL",
            "AMD",
            "AZN",
            "KZT",
            "PKR",
            "BDT",
            "LKR",
            "NPR",
        ),
        2,
    ),
    **dict.fromkeys(
        ("JPY", "KRW", "ISK", "CLP", "VND", "PYG", "UGX", "RWF", "XOF", "XAF", "XPF", "KMF", "GNF", "DJF", "VUV"), 0
    ),
    **dict.fromkeys(("BHD", "KWD", "OMR", "JOD", "IQD", "LYD", "TND"), 3),
}
MAX_MAJOR_UNITS = 10**9  # the largest price accepted, in major units (a typo guard; fits int64 in any currency)
#: A price written as text: ASCII digits, optionally a '.' and more digits ("2.35", "7"); no sign,
#: exponent, '_' separator or other scripts' digits (all of which ``Decimal()`` would accept).
PRICE_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class InvalidAmount(ValueError):
    """A price that is not a finite, non-negative amount of at most the currency's decimals."""


class UnknownCurrency(ValueError):
    pass


@dataclass(frozen=True)
class Currency:
    code: str
    exponent: int  # digits after the decimal point (ISO 4217 minor unit)

    @property
    def scale(self) -> int:
        return int(10**self.exponent)


def currency(code: str) -> Currency:
    """The ``Currency`` of an ISO 4217 code (case-insensitive); ``UnknownCurrency`` if not in the table."""
    upper = str(code).strip().upper()
    if upper not in EXPONENTS:
        raise UnknownCurrency(
            f"unknown currency {code!r}: expected an ISO 4217 code such as "
            f"EUR, USD, GBP, JPY or KWD (known: {', '.join(sorted(EXPONENTS))})"
        )
    return Currency(upper, EXPONENTS[upper])


def _as_decimal(value: object) -> Decimal:
    """A price given as text or a number, as a ``Decimal`` of its decimal text."""
    if isinstance(value, bool):  # a bool is an int to Python, never a price
        raise InvalidAmount(f"price {value!r} is not a number")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):  # only where no text is left: its shortest round-tripping text
        return Decimal(repr(value))
    if isinstance(value, str):
        text = value.strip(" \t")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise InvalidAmount(f'price {value!r} is not a decimal number such as "2.35"') from None
        if not PRICE_TEXT.fullmatch(text) and amount.is_finite() and not (amount.is_signed() and amount != 0):
            # NaN, infinities and negative amounts are left to to_minor, which says what is wrong with them
            raise InvalidAmount(
                f"price {value!r} is not a plain decimal number: ASCII digits 0-9 with an optional "
                "'.' and decimals, such as \"2.35\" (no sign, exponent, '_' or other digits)"
            )
        return amount
    raise InvalidAmount(f"price {value!r} (a {type(value).__name__}) is not a decimal string or number")


def to_minor(value: object, money: Currency) -> int:
    """``value`` (``"2.35"``, ``2``, ``Decimal("2.35")``) in minor units of ``money`` (``235``).

    ``InvalidAmount``, quoting the value received, for NaN, infinities, negative amounts, more
    decimals than the currency has (``"2.351"`` in EUR; ``"2.350"`` is fine) and amounts above
    ``MAX_MAJOR_UNITS``.
    """
    amount = _as_decimal(value)
    return _minor_units(amount, money, str(value) if isinstance(value, Decimal) else repr(value))


def _minor_units(amount: Decimal, money: Currency, shown: str) -> int:
    """``amount`` in minor units, decided on its digits and exponent with integers only: no rounding
    context (``Decimal`` arithmetic keeps 28 significant digits, so ``scaleb`` would round
    ``2.35000000000000000000000000001`` to ``235``), and no huge power of ten built for an absurd
    exponent (``1e-999999999999999999``)."""
    if not amount.is_finite():
        raise InvalidAmount(f"price {shown} is not a finite number")
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)  # finite
    if sign and any(digits):
        raise InvalidAmount(f"price {shown} is negative")
    end = len(digits)
    while end and digits[end - 1] == 0:  # 2.350 is 235 x 10^-2: trailing zeros are no decimals
        end -= 1
    exponent += len(digits) - end
    start = 0
    while start < end and digits[start] == 0:
        start += 1
    significant = digits[start:end]
    if not significant:
        return 0
    if exponent < -money.exponent:
        raise InvalidAmount(f"price {shown} has more decimals than {money.code} has ({money.exponent})")
    largest = f"price {shown} is above the largest accepted, {MAX_MAJOR_UNITS} {money.code}"
    if len(significant) + exponent > len(str(MAX_MAJOR_UNITS)):  # more integer digits than the largest has
        raise InvalidAmount(largest)
    minor: int = int("".join(map(str, significant))) * 10 ** (exponent + money.exponent)
    if minor > MAX_MAJOR_UNITS * money.scale:
        raise InvalidAmount(largest)
    return minor


def format_minor(minor: int, money: Currency) -> str:
    """Minor units as a decimal string with exactly the currency's decimals: ``235`` → ``"2.35"``."""
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise TypeError(f"an amount is an int of minor units, got {minor!r}")
    sign = "-" if minor < 0 else ""
    major, rest = divmod(abs(minor), money.scale)
    return f"{sign}{major}.{rest:0{money.exponent}d}" if money.exponent else f"{sign}{major}"


def line_amount(unit_minor: int, quantity: int) -> int:
    """A line's amount: unit price times quantity, in minor units (exact)."""
    if quantity < 0:
        raise ValueError(f"quantity must not be negative, got {quantity}")
    return unit_minor * quantity


def from_legacy_real(value: float, money: Currency) -> tuple[int | None, str | None]:
    """A price stored as a REAL by an older catalogue: ``(minor units or None, what was done or None)``.

    Read through its shortest decimal text (1.35 stays 1.35, not 1.350000000000000088...). A value
    that is not exactly a price of ``money`` (more decimals than it has: 0.004 EUR; negative,
    infinite, above ``MAX_MAJOR_UNITS``) becomes None, no price, said in the note: never rounded,
    which could charge a positive price as 0.00. Checkout then lists the SKU in ``needs_attention``.
    """
    try:
        return _minor_units(Decimal(repr(float(value))), money, f"stored price {value!r}"), None
    except InvalidAmount as exc:
        why = str(exc).removeprefix("price ")
        return None, f"{why}: not rounded, removed (the SKU has no price now; set it again)"
