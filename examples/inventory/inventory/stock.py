"""The stock ledger: on-hand quantities and reservations per SKU."""

from __future__ import annotations

from collections import defaultdict
from typing import DefaultDict, Dict


class StockError(RuntimeError):
    pass


class Stock:
    def __init__(self) -> None:
        self._on_hand: DefaultDict[str, int] = defaultdict(int)
        self._reserved: Dict[str, Dict[str, int]] = defaultdict(dict)

    def receive(self, sku: str, quantity: int) -> None:
        if quantity <= 0:
            raise StockError("received quantity must be positive")
        self._on_hand[sku] += quantity

    def on_hand(self, sku: str) -> int:
        return self._on_hand[sku]

    def reserved(self, sku: str) -> int:
        return sum(self._reserved[sku].values())

    def available(self, sku: str) -> int:
        return self._on_hand[sku] - self.reserved(sku)

    def reserve(self, sku: str, order_id: str, quantity: int) -> None:
        if quantity <= 0:
            raise StockError("reserved quantity must be positive")
        if quantity > self.available(sku):
            raise StockError(
                f"cannot reserve {quantity} x {sku}: only {self.available(sku)} available"
            )
        self._reserved[sku][order_id] = self._reserved[sku].get(order_id, 0) + quantity

    def release(self, sku: str, order_id: str) -> int:
        """Cancel an order's reservation; returns the quantity released."""
        return self._reserved[sku].pop(order_id, 0)

    def ship(self, sku: str, order_id: str) -> int:
        """Ship an order's reserved quantity: it leaves both the reservation and the shelf."""
        quantity = self._reserved[sku].pop(order_id, 0)
        if quantity == 0:
            raise StockError(f"order {order_id} has nothing reserved for {sku}")
        self._on_hand[sku] -= quantity
        return quantity
