"""A small product catalogue shared by the stores and the web shop."""

from dataclasses import dataclass

import numpy as np

_PRODUCTS = {
    "Groceries": (("Organic Coffee Beans 500g", 8.99), ("Earl Grey Tea 50 bags", 3.49), ("Dark Chocolate 85%", 2.29),
                  ("Olive Oil 1l", 7.99), ("Basmati Rice 1kg", 2.99), ("Muesli Crunch 750g", 4.49)),
    "Household": (("Laundry Detergent 2l", 9.99), ("Kitchen Towels 4 rolls", 3.99), ("Dish Soap Lemon", 1.89),
                  ("Bin Bags 30l", 2.49), ("Sponges, pack of 5", 1.99)),
    "Beauty": (("Shampoo Repair 250ml", 4.99), ("Hand Cream Shea", 3.79), ("Face Serum Vitamin C", 19.99),
               ("Toothpaste Mint", 2.19), ("Sun Cream SPF 50", 12.49)),
    "Clothing": (("Cotton T-Shirt White", 12.99), ("Denim Jeans Slim", 49.99), ("Wool Socks, 3 pairs", 14.99),
                 ("Rain Jacket", 79.99), ("Knitted Scarf", 24.99)),
    "Electronics": (("USB-C Cable 1m", 9.99), ("Wireless Earbuds", 59.99), ("Power Bank 10000mAh", 29.99),
                    ("LED Bulb E27 3-pack", 11.99), ("Phone Case", 19.99)),
    "Home": (("Scented Candle Vanilla", 8.99), ("Cotton Bath Towel", 16.99), ("Ceramic Mug", 6.99),
             ("Cushion Cover Linen", 14.99), ("Photo Frame 13x18", 9.49)),
    "Toys": (("Wooden Puzzle", 14.99), ("Building Bricks Set", 39.99), ("Plush Bear", 19.99), ("Card Game", 9.99)),
    "Garden": (("Flower Seeds Mix", 2.99), ("Garden Gloves", 7.99), ("Potting Soil 20l", 6.49), ("Watering Can 5l", 12.99)),
}
# Price factor from the euro list price.
_FX = {"EUR": 1.0, "GBP": 0.86, "USD": 1.08}


@dataclass(frozen=True)
class Catalog:
    sku: np.ndarray
    name: np.ndarray
    category: np.ndarray
    price_eur: np.ndarray
    p: np.ndarray  # popularity

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(len(self.sku), size=n, p=self.p)

    def price_cents(self, item: np.ndarray, currency: np.ndarray) -> np.ndarray:
        fx = np.array([_FX[c] for c in currency.tolist()], dtype=float)
        # Shelf prices end in 9: 8.99 EUR -> 7.69 GBP.
        return np.maximum(np.round(self.price_eur[item] * fx * 10).astype(np.int64) * 10 - 1, 9)


def build_catalog(rng: np.random.Generator) -> Catalog:
    rows = [(cat, name, price) for cat, items in _PRODUCTS.items() for name, price in items]
    sku = np.array([f"SKU-{1000 + 37 * i}" for i in range(len(rows))], dtype=object)
    pop = rng.pareto(1.0, len(rows)) + 0.2
    return Catalog(sku=sku, name=np.array([r[1] for r in rows], dtype=object),
                   category=np.array([r[0] for r in rows], dtype=object),
                   price_eur=np.array([r[2] for r in rows]), p=pop / pop.sum())


def money(cents: np.ndarray) -> np.ndarray:
    """Cents as decimal text: 1299 -> '12.99', -500 -> '-5.00'."""
    return np.array([f"{c / 100:.2f}" for c in cents.tolist()], dtype=object)
