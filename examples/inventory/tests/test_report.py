import unittest

from inventory.report import format_low_stock, low_stock
from inventory.stock import Stock
from tests.helpers import sample_catalog


class ReportTest(unittest.TestCase):
    def test_low_stock_counts_reservations(self):
        catalog = sample_catalog()
        stock = Stock()
        stock.receive("WID-1", 25)
        stock.receive("BOLT-M6", 50)
        stock.receive("NUT-M6", 5)
        stock.receive("GEAR-12", 3)
        self.assertEqual(low_stock(catalog, stock), ["NUT-M6"])
        stock.reserve("WID-1", "o1", 10)
        self.assertEqual(low_stock(catalog, stock), ["NUT-M6", "WID-1"])
        text = format_low_stock(catalog, stock)
        self.assertIn("WID-1", text)
        self.assertEqual(len(text.splitlines()), 3)


if __name__ == "__main__":
    unittest.main()
