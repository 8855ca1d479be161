"""Unit prices and volume discounts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from inventory.models import CENT, Item


def discount_percent(item: Item, quantity: int) -> Decimal:
    """The volume discount (percent) an order of ``quantity`` units earns."""
    percent = Decimal("0")
    for min_qty, tier_percent in item.discount_tiers:
        if quantity >= min_qty:
            percent = tier_percent
            break
    return percent


def line_amount(item: Item, quantity: int) -> Decimal:
    """Price of ``quantity`` units after the volume discount, rounded to the cent."""
    if quantity < 0:
        raise ValueError("quantity must not be negative")
    gross = item.unit_price * quantity
    factor = (Decimal(100) - discount_percent(item, quantity)) / Decimal(100)
    return (gross * factor).quantize(CENT, rounding=ROUND_HALF_UP)
