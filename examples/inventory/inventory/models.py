"""Plain data records shared by the other modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import List, Tuple

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    unit_price: Decimal
    discount_tiers: Tuple[Tuple[int, Decimal], ...] = ()
    """(minimum quantity, percent off) pairs, sorted by minimum quantity."""
    reorder_level: int = 0


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal
    discount_percent: Decimal
    amount: Decimal


@dataclass
class Quote:
    lines: List[OrderLine] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0")).quantize(CENT)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0")).quantize(CENT)

    @property
    def savings(self) -> Decimal:
        return self.subtotal - self.total
