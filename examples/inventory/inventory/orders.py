"""Quoting orders against the catalog."""

from __future__ import annotations

from typing import Dict, Mapping

from inventory.models import Item, OrderLine, Quote
from inventory.pricing import discount_percent, line_amount


class UnknownSku(KeyError):
    pass


def quote(catalog: Mapping[str, Item], order: Dict[str, int]) -> Quote:
    """Price an order given as {sku: quantity}. Lines keep the order's SKU order."""
    result = Quote()
    for sku, quantity in order.items():
        item = catalog.get(sku)
        if item is None:
            raise UnknownSku(sku)
        if quantity <= 0:
            continue
        result.lines.append(
            OrderLine(
                sku=sku,
                quantity=quantity,
                unit_price=item.unit_price,
                discount_percent=discount_percent(item, quantity),
                amount=line_amount(item, quantity),
            )
        )
    return result
