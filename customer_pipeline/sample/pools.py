"""Per-country pools of names, streets and places, drawn once from seeded Faker and sampled with numpy."""

from dataclasses import dataclass

import numpy as np
from faker import Faker

from customer_pipeline.sample.nicknames import NICKNAMES, formal_names

COUNTRIES = ("GB", "DE", "FR", "NL", "US")
LOCALES = {"GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "NL": "nl_NL", "US": "en_US"}
# Share of the population living in each country, in COUNTRIES order.
COUNTRY_SHARE = np.array([0.30, 0.25, 0.15, 0.10, 0.20])
CURRENCY = {"GB": "GBP", "DE": "EUR", "FR": "EUR", "NL": "EUR", "US": "USD"}
APP_LOCALE = {"GB": "en-GB", "DE": "de-DE", "FR": "fr-FR", "NL": "nl-NL", "US": "en-US"}
# Street number before the street name (GB, FR, US) or after it (DE, NL).
NUMBER_FIRST = {"GB": True, "DE": False, "FR": True, "NL": False, "US": True}
EMAIL_DOMAINS = {
    "GB": (("gmail.com", 0.35), ("hotmail.co.uk", 0.2), ("outlook.com", 0.15), ("btinternet.com", 0.15), ("yahoo.co.uk", 0.15)),
    "DE": (("gmail.com", 0.25), ("web.de", 0.3), ("gmx.de", 0.3), ("t-online.de", 0.15)),
    "FR": (("gmail.com", 0.35), ("orange.fr", 0.25), ("free.fr", 0.2), ("laposte.net", 0.2)),
    "NL": (("gmail.com", 0.4), ("ziggo.nl", 0.25), ("kpnmail.nl", 0.2), ("hotmail.nl", 0.15)),
    "US": (("gmail.com", 0.45), ("yahoo.com", 0.25), ("outlook.com", 0.15), ("aol.com", 0.15)),
}


@dataclass(frozen=True)
class Weighted:
    """Values with sampling probabilities (Zipf-like, so common names recur and namesakes happen)."""

    values: np.ndarray
    p: np.ndarray

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.values[rng.choice(len(self.values), size=n, p=self.p)]


@dataclass(frozen=True)
class CountryPool:
    first_m: Weighted
    first_f: Weighted
    last: Weighted
    streets: np.ndarray
    cities: np.ndarray  # city of each place
    postcodes: np.ndarray  # postcode of each place (a city has several)
    regions: np.ndarray  # state for US places, "" elsewhere
    nicknames: dict[str, tuple[str, ...]]


def _provider_names(fake: Faker, attr: str) -> tuple[list[str], np.ndarray | None]:
    """A locale's name list straight from its Faker provider, with its frequency weights where it has them."""
    for provider in fake.get_providers():
        names = getattr(provider, attr, None) or (getattr(provider, "first_names", None) if attr.startswith("first") else None)
        if names:
            if isinstance(names, dict):
                return list(names), np.array(list(names.values()), dtype=float)
            return list(dict.fromkeys(names)), None
    raise LookupError(f"{fake} has no {attr}")


def _weighted(fake: Faker, attr: str, extra: list[str], rng: np.random.Generator) -> Weighted:
    names, w = _provider_names(fake, attr)
    # Skew the frequencies so a few names are very common, as in real populations.
    skew = rng.pareto(1.2, len(names)).clip(0.05, 20)
    w = skew if w is None else w * np.sqrt(skew)
    have = dict(zip(names, w.tolist()))
    top = float(np.quantile(w, 0.9))
    for name in extra:
        have[name] = max(have.get(name, 0.0), top)
    values = np.array(list(have), dtype=object)
    p = np.array(list(have.values()))
    return Weighted(values, p / p.sum())


def _country_pool(country: str, seed: int, rng: np.random.Generator) -> CountryPool:
    fake = Faker(LOCALES[country])
    fake.seed_instance(seed)
    streets = np.unique(np.array([fake.street_name() for _ in range(700)], dtype=object))
    cities = np.unique(np.array([fake.city() for _ in range(250)], dtype=object))
    # Each city gets one to four postcodes.
    per_city = rng.integers(1, 5, len(cities))
    place_city = np.repeat(cities, per_city)
    postcodes = np.array([fake.postcode() for _ in range(len(place_city))], dtype=object)
    if country == "US":
        states = np.array([fake.state_abbr(include_territories=False) for _ in range(len(cities))], dtype=object)
        regions = np.repeat(states, per_city)
    else:
        regions = np.full(len(place_city), "", dtype=object)
    return CountryPool(
        first_m=_weighted(fake, "first_names_male", formal_names(country, "M"), rng),
        first_f=_weighted(fake, "first_names_female", formal_names(country, "F"), rng),
        last=_weighted(fake, "last_names", [], rng),
        streets=streets,
        cities=place_city,
        postcodes=postcodes,
        regions=regions,
        nicknames=NICKNAMES[country],
    )


def build_pools(seed: int, rng: np.random.Generator) -> dict[str, CountryPool]:
    """One pool per country; Faker seeded per locale so the pools depend only on the seed."""
    return {c: _country_pool(c, seed * 7919 + i, rng) for i, c in enumerate(COUNTRIES)}
