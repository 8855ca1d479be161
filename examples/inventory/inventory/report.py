"""Plain-text reports."""

from __future__ import annotations

from typing import List, Mapping

from inventory.models import Item
from inventory.stock import Stock


def low_stock(catalog: Mapping[str, Item], stock: Stock) -> List[str]:
    """SKUs whose available quantity is at or below their reorder level, sorted."""
    return sorted(
        sku
        for sku, item in catalog.items()
        if item.reorder_level and stock.available(sku) <= item.reorder_level
    )


def format_low_stock(catalog: Mapping[str, Item], stock: Stock) -> str:
    lines = [f"{'SKU':<10} {'available':>9} {'reorder at':>10}"]
    for sku in low_stock(catalog, stock):
        lines.append(f"{sku:<10} {stock.available(sku):>9} {catalog[sku].reorder_level:>10}")
    return "\n".join(lines)
