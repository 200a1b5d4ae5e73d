"""Postal addresses: country as ISO alpha-2, postcode per country, city in proper case."""

import re
from functools import lru_cache

import pandas as pd
import phonenumbers

from customer_pipeline.standardize._text import clean_text, map_unique, strip_accents

ADDRESS_COLUMNS = ["street", "postcode", "city", "country"]
# Names phonenumbers' locale data lacks: common short forms, parts of the UK, ISO alpha-3 of our markets.
_COUNTRY_ALIASES = {
    "uk": "GB", "u k": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "britain": "GB", "gbr": "GB", "grossbritannien": "GB",
    "usa": "US", "u s a": "US", "u s": "US", "america": "US", "united states of america": "US",
    "holland": "NL", "the netherlands": "NL", "nederland": "NL", "nld": "NL",
    "deutschland": "DE", "deu": "DE", "brd": "DE", "frankreich": "FR", "fra": "FR",
    "osterreich": "AT", "aut": "AT", "schweiz": "CH", "suisse": "CH", "che": "CH",
    "belgie": "BE", "belgique": "BE", "bel": "BE", "esp": "ES", "ita": "IT", "irl": "IE",
    "lux": "LU", "dnk": "DK", "swe": "SE", "pol": "PL", "prt": "PT", "can": "CA", "aus": "AU",
}
_GB = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_NL = re.compile(r"^([1-9][0-9]{3})([A-Z]{2})$")
_US = re.compile(r"^([0-9]{5})([0-9]{4})?$")
_FIVE_DIGIT = frozenset({"DE", "FR", "ES", "IT", "FI", "EE", "HR", "MC"})
_FOUR_DIGIT = frozenset({"AT", "CH", "BE", "DK", "LU", "NO", "HU", "SI", "BG", "CY", "LI", "AU", "NZ", "ZA"})
_CITY_LOWER = frozenset({"am", "an", "im", "in", "der", "die", "dem", "bei", "ob", "vor", "upon", "on", "the",
                         "under", "le", "la", "les", "sur", "sous", "en", "de", "du", "des", "aan", "den", "op",
                         "and", "et", "und"})
_KEY_DROP = re.compile(r"[^a-z ]")


def _country_key(text: str) -> str:
    return " ".join(_KEY_DROP.sub(" ", strip_accents(text.casefold())).split())


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Normalised country name in every language phonenumbers knows -> region code."""
    from phonenumbers.geodata.locale import LOCALE_DATA

    names: dict[str, str] = {}
    for region, by_lang in LOCALE_DATA.items():
        # "aa" holds the English name and wins a clash; "*xx" entries only point at another language
        for lang in sorted(by_lang, key=lambda k: k != "aa"):
            name = by_lang[lang]
            key = "" if name.startswith("*") else _country_key(name)
            if key:
                names.setdefault(key, region)
    names.update(_COUNTRY_ALIASES)
    return names


@lru_cache(maxsize=10_000)
def normalize_country(value) -> str | None:
    """ISO 3166-1 alpha-2 from a code or a country name in many languages (Germany, Deutschland, UK)."""
    text = clean_text(value)
    if text is None:
        return None
    code = text.upper()
    if code == "UK":
        return "GB"
    if len(code) == 2 and code in phonenumbers.SUPPORTED_REGIONS:
        return code
    key = _country_key(text)
    return _country_names().get(key) or _country_names().get(key.removeprefix("the "))


def normalize_postcode(value, country: str | None) -> str | None:
    """Postcode in the country's written form (GB `SW1A 1AA`, NL `1234 AB`, US `12345-6789`)."""
    text = clean_text(value)
    if text is None:
        return None
    text = text.upper()
    compact = re.sub(r"[\s\-.]", "", text)
    if country == "GB" and (m := _GB.match(compact)):
        return f"{m.group(1)} {m.group(2)}"
    if country == "NL" and (m := _NL.match(compact)):
        return f"{m.group(1)} {m.group(2)}"
    if country == "US" and compact.isdigit() and len(compact) in (3, 4, 5, 7, 8, 9):
        # leading zeros lost to spreadsheets: 2134 -> 02134
        compact = compact.zfill(9 if len(compact) > 5 else 5)
        m = _US.match(compact)
        return f"{m.group(1)}-{m.group(2)}" if m.group(2) else m.group(1)
    if country in _FIVE_DIGIT and compact.isdigit() and len(compact) in (4, 5):
        return compact.zfill(5)
    if country in _FOUR_DIGIT and compact.isdigit() and len(compact) == 4:
        return compact
    return text  # unknown country or unrecognised shape: keep, cleaned and upper-cased


@lru_cache(maxsize=50_000)
def proper_case_city(value) -> str | None:
    """City in proper case: `FRANKFURT AM MAIN` -> `Frankfurt am Main`, `stoke-on-trent` -> `Stoke-on-Trent`."""
    text = clean_text(value)
    if text is None:
        return None
    if any(c.isupper() for c in text) and any(c.islower() for c in text):
        return text  # already mixed case: trust it ('s-Hertogenbosch, McAllen)
    words = re.split(r"([\s\-/])", text.lower())
    out = []
    for i, w in enumerate(words):
        if i > 0 and w in _CITY_LOWER:
            out.append(w)
        else:
            out.append("'".join(p[:1].upper() + p[1:] for p in w.split("'")))
    return "".join(out)


def standardize_addresses(street: pd.Series, postcode: pd.Series, city: pd.Series,
                          country: pd.Series, default_country: pd.Series) -> pd.DataFrame:
    """Address columns; the country falls back to ``default_country`` when the record has an address but no country."""
    street_c = map_unique(street, clean_text)
    city_c = map_unique(city, proper_case_city)
    country_c = map_unique(country, normalize_country)
    fallback = map_unique(default_country, normalize_country)
    has_address = street_c.notna() | city_c.notna() | map_unique(postcode, clean_text).notna()
    country_c = country_c.where(country_c.notna(), fallback.where(has_address))
    pairs = pd.DataFrame({"p": postcode.astype(object), "c": country_c.astype(object)})
    pairs["k"] = pairs["p"].astype(str) + "\x1f" + pairs["c"].fillna("").astype(str)
    postcode_c = map_unique(pairs["k"].where(pairs["p"].notna()),
                            lambda k: normalize_postcode(*(k.split("\x1f", 1)[0], k.split("\x1f", 1)[1] or None)))
    return pd.DataFrame({
        "street": street_c, "postcode": postcode_c, "city": city_c,
        "country": country_c.astype(object).where(country_c.notna(), None),
    }, index=street.index)
