"""Loading the product catalog from CSV.

Columns: ``sku,name,unit_price,reorder_level,discounts``. ``discounts`` lists volume
tiers as ``min_qty:percent`` pairs separated by ``;`` (e.g. ``10:5;50:10``), in any order.
"""

from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation
from typing import Dict, Iterable, TextIO, Tuple

from inventory.models import Item


class CatalogError(ValueError):
    pass


def parse_tiers(text: str, sku: str = "") -> Tuple[Tuple[int, Decimal], ...]:
    tiers = []
    for chunk in (text or "").split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        try:
            qty, percent = chunk.split(":")
            tiers.append((int(qty), Decimal(percent)))
        except (ValueError, InvalidOperation):
            raise CatalogError(f"{sku}: bad discount tier {chunk!r} (expected min_qty:percent)")
    for qty, percent in tiers:
        if qty < 1 or not (Decimal(0) <= percent < Decimal(100)):
            raise CatalogError(f"{sku}: discount tier {qty}:{percent} out of range")
    return tuple(sorted(tiers))


def parse_price(text: str, sku: str = "") -> Decimal:
    cleaned = (text or "").strip().lstrip("$").replace(",", "")
    try:
        price = Decimal(cleaned)
    except InvalidOperation:
        raise CatalogError(f"{sku}: bad unit price {text!r}")
    if price < 0:
        raise CatalogError(f"{sku}: negative unit price {text!r}")
    return price


def read_items(rows: Iterable[Dict[str, str]]) -> Dict[str, Item]:
    items: Dict[str, Item] = {}
    for row in rows:
        sku = (row.get("sku") or "").strip()
        if not sku:
            continue
        if sku in items:
            raise CatalogError(f"duplicate sku {sku}")
        items[sku] = Item(
            sku=sku,
            name=(row.get("name") or "").strip(),
            unit_price=parse_price(row.get("unit_price", ""), sku),
            discount_tiers=parse_tiers(row.get("discounts", ""), sku),
            reorder_level=int(row.get("reorder_level") or 0),
        )
    return items


def load_catalog(stream: TextIO) -> Dict[str, Item]:
    """Read a catalog CSV; returns items keyed by SKU."""
    return read_items(csv.DictReader(stream))
