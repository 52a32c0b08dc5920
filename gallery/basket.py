"""A checkout basket priced exactly: recognised items in, lines grouped by SKU and a total out.

An item that is unknown, or whose SKU has no price, is never priced silently: it goes to
``attention`` (with its index and why) and stays out of the total. Amounts are ``int`` minor
units (``gallery.money``). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from gallery.money import line_amount

UNKNOWN, NO_PRICE, NOTHING_FOUND = "unknown", "no_price", "no_items_found"


@dataclass(frozen=True)
class BasketItem:
    """One item as recognised, with what the catalogue says of its SKU (``None`` when unknown)."""

    sku: str | None
    name: str | None
    score: float
    known: bool
    unit_minor: int | None  # the SKU's price in minor units, None when it has none


@dataclass(frozen=True)
class Line:
    sku: str
    name: str
    quantity: int
    unit_minor: int
    amount_minor: int


@dataclass(frozen=True)
class Attention:
    index: int | None  # the item's index in reading order; None for the whole request
    reason: str  # UNKNOWN, NO_PRICE or NOTHING_FOUND
    message: str


@dataclass(frozen=True)
class Basket:
    lines: tuple[Line, ...]  # in order of each SKU's first item
    attention: tuple[Attention, ...]
    total_minor: int  # the sum of the lines' amounts


def price_basket(items: list[BasketItem]) -> Basket:
    """Group known, priced items by SKU (quantity = items of it); list the rest as needing attention."""
    counts: dict[str, int] = {}
    first: dict[str, BasketItem] = {}
    attention: list[Attention] = []
    for index, item in enumerate(items):
        if not item.known or item.sku is None:
            attention.append(
                Attention(
                    index,
                    UNKNOWN,
                    f"item {index} is not recognised (best score {item.score:.3f} "
                    "is below the threshold): a person must identify it",
                )
            )
        elif item.unit_minor is None:
            attention.append(
                Attention(
                    index,
                    NO_PRICE,
                    f"item {index} is SKU {item.sku!r}, which has no price in the catalogue: left out of the total",
                )
            )
        else:
            counts[item.sku] = counts.get(item.sku, 0) + 1
            first.setdefault(item.sku, item)
    lines = []
    for sku, quantity in counts.items():
        unit = first[sku].unit_minor
        assert unit is not None
        lines.append(Line(sku, first[sku].name or sku, quantity, unit, line_amount(unit, quantity)))
    return Basket(tuple(lines), tuple(attention), sum(line.amount_minor for line in lines))
