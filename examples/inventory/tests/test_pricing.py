import unittest
from decimal import Decimal

from inventory.pricing import discount_percent, line_amount
from tests.helpers import sample_catalog


class PricingTest(unittest.TestCase):
    def setUp(self):
        self.catalog = sample_catalog()

    def test_no_discount_below_first_tier(self):
        widget = self.catalog["WID-1"]
        self.assertEqual(discount_percent(widget, 9), Decimal("0"))
        self.assertEqual(line_amount(widget, 4), Decimal("10.00"))

    def test_first_tier(self):
        widget = self.catalog["WID-1"]
        self.assertEqual(discount_percent(widget, 10), Decimal("5"))
        self.assertEqual(line_amount(widget, 12), Decimal("28.50"))

    def test_single_tier_item(self):
        bolt = self.catalog["BOLT-M6"]
        self.assertEqual(discount_percent(bolt, 24), Decimal("0"))
        self.assertEqual(discount_percent(bolt, 400), Decimal("8"))

    def test_item_without_tiers(self):
        nut = self.catalog["NUT-M6"]
        self.assertEqual(line_amount(nut, 1000), Decimal("4200.00"))

    def test_rounding_half_up_to_cents(self):
        bolt = self.catalog["BOLT-M6"]
        # 25 * 7.90 = 197.50, minus 8% = 181.70
        self.assertEqual(line_amount(bolt, 25), Decimal("181.70"))

    def test_negative_quantity_rejected(self):
        with self.assertRaises(ValueError):
            line_amount(self.catalog["NUT-M6"], -1)


if __name__ == "__main__":
    unittest.main()
