import unittest

from inventory.stock import Stock, StockError


class StockTest(unittest.TestCase):
    def setUp(self):
        self.stock = Stock()
        self.stock.receive("WID-1", 100)

    def test_reserve_reduces_available_not_on_hand(self):
        self.stock.reserve("WID-1", "o1", 30)
        self.assertEqual(self.stock.available("WID-1"), 70)
        self.assertEqual(self.stock.on_hand("WID-1"), 100)

    def test_cannot_overbook(self):
        self.stock.reserve("WID-1", "o1", 80)
        with self.assertRaisesRegex(StockError, "only 20 available"):
            self.stock.reserve("WID-1", "o2", 30)

    def test_release_returns_stock(self):
        self.stock.reserve("WID-1", "o1", 30)
        self.assertEqual(self.stock.release("WID-1", "o1"), 30)
        self.assertEqual(self.stock.available("WID-1"), 100)

    def test_ship_removes_from_shelf(self):
        self.stock.reserve("WID-1", "o1", 30)
        self.assertEqual(self.stock.ship("WID-1", "o1"), 30)
        self.assertEqual(self.stock.on_hand("WID-1"), 70)
        self.assertEqual(self.stock.available("WID-1"), 70)

    def test_ship_without_reservation(self):
        with self.assertRaises(StockError):
            self.stock.ship("WID-1", "o9")

    def test_receive_must_be_positive(self):
        with self.assertRaises(StockError):
            self.stock.receive("WID-1", 0)


if __name__ == "__main__":
    unittest.main()
