"""Stock keeping and quoting for a parts warehouse."""

from inventory.models import Item, OrderLine, Quote

__all__ = ["Item", "OrderLine", "Quote"]
__version__ = "0.3.1"
