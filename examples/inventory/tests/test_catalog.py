import io
import unittest
from decimal import Decimal

from inventory.catalog import CatalogError, load_catalog, parse_price, parse_tiers
from tests.helpers import sample_catalog


class CatalogTest(unittest.TestCase):
    def test_loads_all_items(self):
        catalog = sample_catalog()
        self.assertEqual(sorted(catalog), ["BOLT-M6", "GEAR-12", "NUT-M6", "WID-1"])
        self.assertEqual(catalog["WID-1"].name, "Widget")
        self.assertEqual(catalog["WID-1"].reorder_level, 20)

    def test_prices_accept_dollar_sign_and_thousands_separator(self):
        self.assertEqual(parse_price("$7.90"), Decimal("7.90"))
        self.assertEqual(parse_price("1,250.00"), Decimal("1250.00"))

    def test_negative_price_rejected(self):
        with self.assertRaises(CatalogError):
            parse_price("-1")

    def test_tiers_are_sorted_by_quantity(self):
        self.assertEqual(
            parse_tiers("50:10;10:5"), ((10, Decimal("5")), (50, Decimal("10")))
        )

    def test_bad_tier_reported_with_sku(self):
        with self.assertRaisesRegex(CatalogError, "WID-9"):
            parse_tiers("ten:5", "WID-9")

    def test_tier_percent_out_of_range(self):
        with self.assertRaises(CatalogError):
            parse_tiers("10:100")

    def test_duplicate_sku_rejected(self):
        csv_text = "sku,name,unit_price\nA,a,1\nA,b,2\n"
        with self.assertRaisesRegex(CatalogError, "duplicate"):
            load_catalog(io.StringIO(csv_text))

    def test_empty_discounts_column(self):
        self.assertEqual(sample_catalog()["NUT-M6"].discount_tiers, ())


if __name__ == "__main__":
    unittest.main()
