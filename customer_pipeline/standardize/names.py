"""Person names: titles, free-text parsing, swap detection, display and matching forms, gender."""

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from customer_pipeline.standardize._text import (
    clean_text, is_missing, map_unique, parallel_map, safe_call, strip_accents,
)

# token (casefolded, no trailing dot) -> (canonical title, gender the title implies)
TITLES: dict[str, tuple[str, str | None]] = {
    "mr": ("Mr", "M"), "mister": ("Mr", "M"), "mrs": ("Mrs", "F"), "ms": ("Ms", "F"),
    "miss": ("Miss", "F"), "mx": ("Mx", None), "sir": ("Sir", "M"), "dame": ("Dame", "F"),
    "lord": ("Lord", "M"), "lady": ("Lady", "F"), "dr": ("Dr", None), "doctor": ("Dr", None),
    "prof": ("Prof", None), "professor": ("Prof", None), "rev": ("Rev", None),
    "m": ("M.", "M"), "monsieur": ("M.", "M"), "mme": ("Mme", "F"), "madame": ("Mme", "F"),
    "mlle": ("Mlle", "F"), "mademoiselle": ("Mlle", "F"),
    "herr": ("Herr", "M"), "hr": ("Herr", "M"), "frau": ("Frau", "F"), "fr": ("Frau", "F"),
    "dhr": ("Dhr.", "M"), "mevr": ("Mevr.", "F"), "mw": ("Mevr.", "F"),
    "sr": ("Sr.", "M"), "sra": ("Sra.", "F"), "sig": ("Sig.", "M"), "sigra": ("Sig.ra", "F"),
}
# One-letter or ambiguous abbreviations are titles only when a name still follows them.
_WEAK_TITLES = frozenset({"m", "fr", "sr"})
_SUFFIXES = frozenset({"jr", "jun", "junior", "sr", "sen", "senior", "ii", "iii", "iv", "phd", "md", "esq"})
# Surname particles written in lower case ("van der Berg", "de Vries", "von Trapp").
_PARTICLES = frozenset({"van", "von", "der", "den", "ter", "ten", "te", "het", "zu", "zum", "zur", "vom", "de", "'t"})
_MAC_NAMES = frozenset({
    "donald", "kenzie", "kay", "leod", "lean", "millan", "intosh", "gregor", "arthur", "neil",
    "pherson", "donnell", "aulay", "farlane", "kinnon", "lachlan", "allister", "dougall", "queen",
    "kenna", "innes", "ewan", "iver", "lennan", "naughton", "kinlay", "laren", "askill",
})
_GENDERS = {
    "m": "M", "male": "M", "man": "M", "mann": "M", "maennlich": "M", "mannlich": "M", "h": "M",
    "homme": "M", "masculin": "M", "herr": "M", "1": "M",
    "f": "F", "female": "F", "woman": "F", "w": "F", "weiblich": "F", "frau": "F", "femme": "F",
    "feminin": "F", "v": "F", "vrouw": "F", "2": "F",
    "x": "X", "d": "X", "divers": "X", "diverse": "X", "nonbinary": "X", "non-binary": "X", "other": "X",
}
_LEXICON_LOCALES = (
    "en_US", "en_GB", "en_IE", "de_DE", "de_AT", "de_CH", "fr_FR", "fr_CH", "nl_NL", "nl_BE",
    "es_ES", "it_IT", "pt_PT", "da_DK", "sv_SE", "pl_PL",
)
_JUNK_NAMES = frozenset({"test", "xxx", "xx", "x", "asdf", "unknown", "unbekannt", "inconnu", "anonymous", "nobody"})
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'"})
_DOT_JOIN = re.compile(r"\.(?=[^\s.\-,])")  # "J.Smith" -> "J. Smith"
_NON_NAME = re.compile(r"[^\w\s'\-.,]")
_NORM_DROP = re.compile(r"[^\w ]")


@dataclass(frozen=True)
class NameResult:
    """One standardised name; field order matches NAME_COLUMNS."""

    first_name: str | None
    last_name: str | None
    first_name_norm: str | None
    last_name_norm: str | None
    name_key: str | None
    name_swapped: bool
    title: str | None


NAME_COLUMNS = [
    "first_name", "last_name", "first_name_norm", "last_name_norm", "name_key", "name_swapped", "title",
]


@lru_cache(maxsize=1)
def name_lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names) in matching form, built once from Faker's locale providers."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in _LEXICON_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for attr in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"):
            first.update(_norm(str(n)) for n in getattr(provider, attr, ()) or ())
        for n in getattr(provider, "last_names", ()) or ():
            key = _norm(str(n))
            last.add(key)
            last.add(key.rsplit(" ", 1)[-1])
    first.discard("")
    last.discard("")
    return frozenset(first), frozenset(last)


@lru_cache(maxsize=200_000)
def _norm(text: str | None) -> str:
    if not text:
        return ""
    folded = strip_accents(text.casefold()).replace("-", " ")
    return " ".join(_NORM_DROP.sub("", folded).split())


def name_norm(text: str | None) -> str | None:
    """Matching form: lower case, no accents, no punctuation, hyphens as spaces."""
    return _norm(text) or None


def _title_of(token: str) -> tuple[str, str | None] | None:
    return TITLES.get(token.casefold().rstrip(".").replace(".", ""))


def _split_titles(tokens: list[str], min_rest: int) -> tuple[list[str], list[str]]:
    """Remove leading title tokens; weak titles need ``min_rest`` tokens after them."""
    titles: list[str] = []
    while tokens:
        found = _title_of(tokens[0])
        key = tokens[0].casefold().rstrip(".")
        if found is None or (key in _WEAK_TITLES and len(tokens) - 1 < min_rest):
            break
        titles.append(found[0])
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1].casefold().rstrip(".") in _SUFFIXES:
        tokens = tokens[:-1]
    return titles, tokens


def _tokens(text: str | None) -> list[str]:
    if text is None:
        return []
    text = _NON_NAME.sub(" ", _DOT_JOIN.sub(". ", text.translate(_APOSTROPHES)))
    tokens = [t.strip(",") for t in text.split()]
    return [t for t in tokens if t.strip(".'-")]


def _part(text: str | None, min_rest: int = 1) -> tuple[list[str], list[str]]:
    """Titles and remaining tokens of one name field."""
    titles, tokens = _split_titles(_tokens(text), min_rest)
    if len(tokens) == 1 and tokens[0].casefold().strip(".") in _JUNK_NAMES:
        tokens = []
    return titles, tokens


def _is_upper_word(token: str) -> bool:
    letters = [c for c in token if c.isalpha()]
    return len(letters) > 1 and all(c.isupper() for c in letters)


def parse_full_name(text: str | None) -> tuple[list[str], str | None, str | None, bool]:
    """Split free text (`Smith, John`, `Mr J. Smith`, `DUPONT Jean`, `john smith`) into
    (titles, first, last, explicit); explicit means the order was stated, so no swap check."""
    text = clean_text(text)
    if text is None:
        return [], None, None, False
    if "," in text:
        head, _, tail = text.partition(",")
        t_head, last = _part(head)
        t_tail, first = _part(tail.replace(",", " "))
        if last and first:
            return t_head + t_tail, " ".join(first), " ".join(last), True
        text = " ".join(first or last)
        titles = t_head + t_tail
    else:
        titles = []
    more_titles, tokens = _part(text, min_rest=2)
    titles += more_titles
    if not tokens:
        return titles, None, None, False
    if len(tokens) == 1:
        first_names, _ = name_lexicon()
        if _norm(tokens[0]) in first_names:
            return titles, tokens[0], None, False
        return titles, None, tokens[0], False
    upper = [_is_upper_word(t) for t in tokens]
    if any(upper) and not all(upper):
        # French/administrative convention: the surname is written in capitals.
        first = [t for t, u in zip(tokens, upper) if not u]
        last = [t for t, u in zip(tokens, upper) if u]
        return titles, " ".join(first), " ".join(last), True
    if tokens[0].casefold() in _PARTICLES:
        return titles, None, " ".join(tokens), False
    for i in range(1, len(tokens) - 1):
        if tokens[i].casefold() in _PARTICLES:
            return titles, " ".join(tokens[:i]), " ".join(tokens[i:]), False
    return titles, " ".join(tokens[:-1]), tokens[-1], False


def _cap_piece(piece: str, surname: bool) -> str:
    if not piece:
        return piece
    low = piece.lower()
    if surname and low.startswith("mc") and len(low) > 3:
        return "Mc" + low[2].upper() + low[3:]
    if surname and low.startswith("mac") and low[3:] in _MAC_NAMES:
        return "Mac" + low[3].upper() + low[4:]
    return "'".join(p[:1].upper() + p[1:] for p in low.split("'"))


@lru_cache(maxsize=200_000)
def proper_case(text: str | None, surname: bool = False) -> str | None:
    """Display form: McDonald, O'Brien, Anne-Marie, van der Berg; deliberate mixed case (DeShawn) is kept."""
    if not text:
        return None
    words = text.split()
    out = []
    for i, word in enumerate(words):
        if any(c.isupper() for c in word[1:]) and any(c.islower() for c in word):
            out.append(word)  # already mixed case on purpose (McDonald, DeShawn)
        elif surname and word.lower() in _PARTICLES and i < len(words) - 1:
            out.append(word.lower())
        else:
            out.append("-".join(_cap_piece(p, surname) for p in word.split("-")))
    return " ".join(out)


@lru_cache(maxsize=200_000)
def _field(text: str | None, free_text: bool) -> tuple[tuple[str, ...], str | None, str | None, bool]:
    if free_text:
        titles, first, last, explicit = parse_full_name(text)
        return tuple(titles), first, last, explicit
    titles, tokens = _part(clean_text(text))
    return tuple(titles), " ".join(tokens) or None, None, False


def _looks_swapped(first: str | None, last: str | None) -> bool:
    """First field holds a known surname that is no first name, last field a known first name."""
    if not first or not last:
        return False
    first_full, last_key = _norm(first), _norm(last)
    first_key = first_full.split(" ")[0]
    if len(first_key) < 2 or len(last_key) < 2:
        return False
    firsts, lasts = name_lexicon()
    first_is_surname = first_full in lasts or first_key in _PARTICLES
    return first_key not in firsts and first_is_surname and last_key in firsts


def standardize_name(first_raw, last_raw, full_raw=None) -> NameResult:
    """Standardise one person's name from separate fields, falling back to free text."""
    first_raw = None if is_missing(first_raw) else first_raw
    last_raw = None if is_missing(last_raw) else last_raw
    t_first, first, _, _ = _field(first_raw, False)
    t_last, last, _, _ = _field(last_raw, False)
    titles = list(t_first + t_last)
    explicit = False
    if first is None and last is None:
        t_full, first, last, explicit = _field(None if is_missing(full_raw) else str(full_raw), True)
        titles += t_full
    elif first is None and " " in last and last.split(" ")[0].casefold() not in _PARTICLES:
        # whole name typed into the last-name field
        t_full, first, last, explicit = _field(last, True)
        titles += t_full
    elif last is None and " " in first:
        t_full, first, last, explicit = _field(first, True)
        titles += t_full
    swapped = not explicit and _looks_swapped(first, last)
    if swapped:
        first, last = last, first
    first_disp, last_disp = proper_case(first), proper_case(last, surname=True)
    first_norm, last_norm = name_norm(first), name_norm(last)
    key = " ".join(p for p in (last_norm, first_norm) if p) or None
    title = " ".join(dict.fromkeys(titles)) or None
    return NameResult(first_disp, last_disp, first_norm, last_norm, key, swapped, title)


# distinct (first, last, full) triples above which they are parsed in worker processes
PARALLEL_MIN_NAMES = 100_000


def _standardize_packed(packed: list[str]) -> list[tuple]:
    """NAME_COLUMNS values for each packed "first\x1flast\x1ffull" triple ("\x00" = missing)."""
    empty = standardize_name(None, None, None)
    out = []
    for text in packed:
        parts = [None if p == "\x00" else p for p in text.split("\x1f")]
        r = safe_call(standardize_name, *parts, default=empty)
        out.append((r.first_name, r.last_name, r.first_name_norm, r.last_name_norm, r.name_key, r.name_swapped, r.title))
    return out


def standardize_names(first_raw: pd.Series, last_raw: pd.Series, full_raw: pd.Series | None = None) -> pd.DataFrame:
    """Vectorised ``standardize_name``: each distinct (first, last, full) triple is parsed once."""
    if full_raw is None:
        full_raw = pd.Series(None, index=first_raw.index, dtype=object)
    sep = "\x1f"

    def text(s: pd.Series) -> pd.Series:
        return s.astype(object).where(s.notna(), "\x00").astype(str).str.replace(sep, " ", regex=False)

    codes, uniques = pd.factorize(text(first_raw) + sep + text(last_raw) + sep + text(full_raw))
    table = np.empty((len(uniques), len(NAME_COLUMNS)), dtype=object)
    if len(uniques):
        table[:] = parallel_map(_standardize_packed, uniques.tolist(), PARALLEL_MIN_NAMES)
    picked = table[codes] if len(uniques) else np.empty((0, len(NAME_COLUMNS)), dtype=object)
    out = pd.DataFrame(picked, index=first_raw.index, columns=NAME_COLUMNS)
    out["name_swapped"] = out["name_swapped"].fillna(False).astype(bool)
    return out


def normalize_gender(value) -> str | None:
    """`M`/`F`/`X` from the usual spellings in English, German, French and Dutch; anything else None."""
    text = clean_text(value)
    if text is None:
        return None
    return _GENDERS.get(strip_accents(text.casefold()).rstrip("."))


def title_gender(title: str | None) -> str | None:
    """Gender implied by a (possibly multi-word) canonical title, None if neutral."""
    if not title:
        return None
    genders = {TITLES[k][1] for k in map(lambda t: t.casefold().rstrip(".").replace(".", ""), title.split()) if k in TITLES}
    genders.discard(None)
    return genders.pop() if len(genders) == 1 else None


def title_gender_conflicts(title: pd.Series, gender: pd.Series) -> pd.Series:
    """True where a gendered title contradicts a recorded M/F gender (Mrs + M)."""
    implied = map_unique(title, title_gender)
    g = gender.astype(object)
    return (implied.notna() & g.isin(["M", "F"]) & (implied != g)).astype(bool)
