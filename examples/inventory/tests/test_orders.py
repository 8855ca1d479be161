import unittest
from decimal import Decimal

from inventory.orders import UnknownSku, quote
from tests.helpers import sample_catalog


class QuoteTest(unittest.TestCase):
    def setUp(self):
        self.catalog = sample_catalog()

    def test_totals(self):
        q = quote(self.catalog, {"NUT-M6": 2, "WID-1": 4})
        self.assertEqual([line.sku for line in q.lines], ["NUT-M6", "WID-1"])
        self.assertEqual(q.subtotal, Decimal("18.40"))
        self.assertEqual(q.total, Decimal("18.40"))
        self.assertEqual(q.savings, Decimal("0.00"))

    def test_discounted_line(self):
        q = quote(self.catalog, {"WID-1": 20})
        self.assertEqual(q.lines[0].discount_percent, Decimal("5"))
        self.assertEqual(q.total, Decimal("47.50"))
        self.assertEqual(q.savings, Decimal("2.50"))

    def test_zero_quantity_lines_are_dropped(self):
        q = quote(self.catalog, {"WID-1": 0, "NUT-M6": 1})
        self.assertEqual([line.sku for line in q.lines], ["NUT-M6"])

    def test_unknown_sku(self):
        with self.assertRaises(UnknownSku):
            quote(self.catalog, {"NOPE": 1})


if __name__ == "__main__":
    unittest.main()
