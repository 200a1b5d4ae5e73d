"""A small product catalogue shared by the stores and the web shop, and what goes in one basket."""

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
# Price factor from the euro list price (data/reference/fx_rates.csv holds the inverse, EUR per unit).
_FX = {"EUR": 1.0, "GBP": 0.86, "USD": 1.08}

# What gold.market_basket looks for. A share of baskets is built around one of these sets (the first two
# products always, each further one often): products bought together. Products of a NEVER_TOGETHER pair
# never share a basket (summer and winter goods): a line that would join its partner is left out.
BUNDLES = (
    ("Organic Coffee Beans 500g", "Ceramic Mug", "Dark Chocolate 85%"),
    ("Phone Case", "USB-C Cable 1m", "Power Bank 10000mAh"),
    ("Potting Soil 20l", "Flower Seeds Mix", "Garden Gloves"),
    ("Dish Soap Lemon", "Sponges, pack of 5"),
    ("Knitted Scarf", "Wool Socks, 3 pairs"),
    ("Cotton Bath Towel", "Scented Candle Vanilla"),
)
NEVER_TOGETHER = (
    ("Sun Cream SPF 50", "Knitted Scarf"),
    ("Sun Cream SPF 50", "Wool Socks, 3 pairs"),
    ("Watering Can 5l", "Rain Jacket"),
)
BUNDLE_SHARE = 0.2  # of baskets
BUNDLE_EXTRA_MEMBER = 0.6  # chance of each member after the first two


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

    def index(self, name: str) -> int:
        return int(np.flatnonzero(self.name == name)[0])

    def with_bundles(self, basket: np.ndarray, item: np.ndarray, n_baskets: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lines (basket, item) with bundles added to a share of the baskets and never-together partners
        left out; returns basket, item and each line's index in the input (-1 for an added line), grouped
        by basket in input order, added lines after a basket's own. Every basket keeps at least one line."""
        size = max(len(b) for b in BUNDLES)
        members = np.array([[self.index(n) for n in b] + [-1] * (size - len(b)) for b in BUNDLES])
        chosen = np.flatnonzero(rng.random(n_baskets) < BUNDLE_SHARE)
        grid = members[rng.integers(0, len(BUNDLES), len(chosen))]
        keep = (grid >= 0) & ((np.arange(size) < 2) | (rng.random(grid.shape) < BUNDLE_EXTRA_MEMBER))
        basket = np.concatenate([basket, np.repeat(chosen, keep.sum(axis=1))])
        item = np.concatenate([item, grid[keep]])
        origin = np.concatenate([np.arange(len(item) - int(keep.sum())), np.full(int(keep.sum()), -1)])
        order = np.argsort(basket, kind="stable")
        basket, item, origin = basket[order], item[order], origin[order]
        # of a never-together pair in one basket, the product that comes first stays, the other goes
        line = np.arange(len(item))
        drop = np.zeros(len(item), dtype=bool)
        for a, b in NEVER_TOGETHER:
            first = []
            for product in (self.index(a), self.index(b)):
                at = np.full(n_baskets, len(item))
                hit = (item == product) & ~drop
                np.minimum.at(at, basket[hit], line[hit])
                first.append(at)
            drop |= ((item == self.index(b)) & (first[0] < first[1])[basket]) | (
                (item == self.index(a)) & (first[1] < first[0])[basket])
        return basket[~drop], item[~drop], origin[~drop]


def build_catalog(rng: np.random.Generator) -> Catalog:
    rows = [(cat, name, price) for cat, items in _PRODUCTS.items() for name, price in items]
    sku = np.array([f"SKU-{1000 + 37 * i}" for i in range(len(rows))], dtype=object)
    # a bestseller sells some ten times more than a slow item, not most of every basket (Pareto alone would)
    pop = np.minimum(rng.pareto(1.0, len(rows)) + 0.2, 3.0)
    return Catalog(sku=sku, name=np.array([r[1] for r in rows], dtype=object),
                   category=np.array([r[0] for r in rows], dtype=object),
                   price_eur=np.array([r[2] for r in rows]), p=pop / pop.sum())


def line_numbers(basket: np.ndarray) -> np.ndarray:
    """1, 2, ... within each run of equal basket numbers (lines grouped by basket)."""
    starts = np.flatnonzero(np.r_[True, basket[1:] != basket[:-1]]) if len(basket) else np.zeros(0, dtype=np.int64)
    return np.arange(len(basket)) - np.repeat(starts, np.diff(np.r_[starts, len(basket)])) + 1


def money(cents: np.ndarray) -> np.ndarray:
    """Cents as decimal text: 1299 -> '12.99', -500 -> '-5.00'."""
    return np.array([f"{c / 100:.2f}" for c in cents.tolist()], dtype=object)
