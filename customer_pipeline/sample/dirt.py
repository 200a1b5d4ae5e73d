"""The errors people and systems make when typing customer data, applied to a random few rows.

Every function takes object arrays of str (None = blank) and returns a new array;
only the chosen rows are touched, in plain Python, so the cost follows the rate.
"""

import unicodedata

import numpy as np

_KEYBOARD_NEIGHBOURS = {
    "a": "sq", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo",
    "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "w", "r": "et",
    "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc", "y": "tu", "z": "x",
}
EMAIL_DOMAIN_TYPOS = {"gmail.com": ("gmial.com", "gmail.con", "gmai.com"), "hotmail.co.uk": ("hotmial.co.uk",),
                      "outlook.com": ("outlok.com",), "yahoo.com": ("yaho.com",), "web.de": ("web.dee",),
                      "gmx.de": ("gmx.d",), "orange.fr": ("ornage.fr",)}


def pick(rng: np.random.Generator, n: int, rate: float, where: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of rows to dirty, only among `where` rows (usually: not blank).

    With a positive rate at least one row is picked, so even a small sample shows every kind of dirt.
    """
    m = rng.random(n) < rate
    if where is not None:
        m &= where
    if rate > 0 and not m.any():
        candidates = np.flatnonzero(where) if where is not None else np.arange(n)
        if len(candidates):
            m[candidates[rng.integers(0, len(candidates))]] = True
    return m


def present(values: np.ndarray) -> np.ndarray:
    return np.array([v is not None and v != "" for v in values], dtype=bool)


def typo(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Swap two adjacent letters, drop one, double one, or hit a neighbouring key."""
    out = values.copy()
    rows = np.flatnonzero(pick(rng, len(values), rate, present(values)))
    ops = rng.integers(0, 4, len(rows))
    pos = rng.random(len(rows))
    for r, op, p in zip(rows.tolist(), ops.tolist(), pos.tolist()):
        s = out[r]
        if len(s) < 3:
            continue
        i = 1 + int(p * (len(s) - 2))  # keep the first letter, as real typos mostly do
        if op == 0:
            s = s[:i] + s[i + 1] + s[i] + s[i + 2:]
        elif op == 1:
            s = s[:i] + s[i + 1:]
        elif op == 2:
            s = s[:i] + s[i] + s[i:]
        else:
            near = _KEYBOARD_NEIGHBOURS.get(s[i].lower())
            if near:
                s = s[:i] + near[int(p * 1000) % len(near)] + s[i + 1:]
        out[r] = s
    return out


def case_noise(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """ALL CAPS or all lower case, as typed at a till."""
    out = values.copy()
    rows = np.flatnonzero(pick(rng, len(values), rate, present(values)))
    upper = rng.random(len(rows)) < 0.5
    for r, up in zip(rows.tolist(), upper.tolist()):
        out[r] = out[r].upper() if up else out[r].lower()
    return out


def space_noise(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Leading, trailing or doubled spaces."""
    out = values.copy()
    rows = np.flatnonzero(pick(rng, len(values), rate, present(values)))
    kind = rng.integers(0, 3, len(rows))
    for r, k in zip(rows.tolist(), kind.tolist()):
        s = out[r]
        out[r] = (" " + s) if k == 0 else (s + "  ") if k == 1 else s.replace(" ", "  ", 1) if " " in s else s + " "
    return out


def strip_accents(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Drop diacritics (Müller -> Muller), as keyboards without them do."""
    out = values.copy()
    rows = np.flatnonzero(pick(rng, len(values), rate, present(values)))
    for r in rows.tolist():
        out[r] = ascii_fold(out[r])
    return out


def ascii_fold(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")


def blank(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    out = values.copy()
    out[pick(rng, len(values), rate)] = None
    return out


def swap_names(first: np.ndarray, last: np.ndarray, rng: np.random.Generator, rate: float):
    """First and last name entered in each other's field; returns (first, last, swapped mask)."""
    m = pick(rng, len(first), rate)
    f, l_ = first.copy(), last.copy()
    f[m], l_[m] = last[m], first[m]
    return f, l_, m


def nickname(first: np.ndarray, nicks: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Use the short form (Bob for Robert) where the person has one; `nicks` holds tuples or None."""
    out = first.copy()
    has = np.array([n is not None for n in nicks], dtype=bool)
    rows = np.flatnonzero(pick(rng, len(first), rate, has))
    which = rng.random(len(rows))
    for r, w in zip(rows.tolist(), which.tolist()):
        options = nicks[r]
        out[r] = options[int(w * len(options))]
    return out


def date_text(dates: np.ndarray, style: np.ndarray) -> np.ndarray:
    """Dates as 'YYYY-MM-DD' (style 0), 'DD.MM.YYYY' (1) or 'DD/MM/YYYY' (2); NaT -> None."""
    dates = dates.astype("datetime64[D]")
    missing = np.isnat(dates)
    s = np.datetime_as_string(np.where(missing, np.datetime64("2000-01-01"), dates), unit="D").astype("U10")
    chars = s.view("U1").reshape(len(s), 10)
    out = s.astype(object)
    for st, sep in ((1, "."), (2, "/")):
        m = style == st
        if m.any():
            c = chars[m]
            dmy = np.concatenate([c[:, 8:10], np.full((len(c), 1), sep), c[:, 5:7],
                                  np.full((len(c), 1), sep), c[:, 0:4]], axis=1)
            out[m] = dmy.copy().view("U10").ravel().astype(object)
    out[missing] = None
    return out


def impossible_dates(values: np.ndarray, rng: np.random.Generator, rate: float, style: np.ndarray) -> np.ndarray:
    """Dates that cannot exist (31.02.1980), as a broken form field lets through."""
    out = values.copy()
    rows = np.flatnonzero(pick(rng, len(values), rate, present(values)))
    for r in rows.tolist():
        year = out[r][-4:] if style[r] else out[r][:4]
        day, month = ("31", "02") if r % 3 else ("31", "04")
        out[r] = f"{year}-{month}-{day}" if style[r] == 0 else f"{day}{'.' if style[r] == 1 else '/'}{month}{'.' if style[r] == 1 else '/'}{year}"
    return out


_BAD_EMAIL = ("{l} at {d}", "{l}@@{d}", "{l}@{d0}", "{l}{d}", "{l}@{d},", "{l}@{dc}")


def invalid_emails(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Emails no mail server accepts: missing @, doubled @, no top-level domain, comma for dot."""
    out = values.copy()
    rows = np.flatnonzero(pick(rng, len(values), rate, present(values)))
    kinds = rng.integers(0, len(_BAD_EMAIL), len(rows))
    for r, k in zip(rows.tolist(), kinds.tolist()):
        local, _, domain = out[r].partition("@")
        out[r] = _BAD_EMAIL[k].format(l=local, d=domain, d0=domain.split(".")[0], dc=domain.replace(".", ",", 1))
    return out


def domain_typos(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """Well-formed emails with a misspelt provider (gmial.com): they bounce."""
    out = values.copy()
    rows = np.flatnonzero(pick(rng, len(values), rate, present(values)))
    for r in rows.tolist():
        local, _, domain = out[r].partition("@")
        alts = EMAIL_DOMAIN_TYPOS.get(domain.lower())
        out[r] = f"{local}@{alts[r % len(alts)]}" if alts else f"{local[:-1]}@{domain}" if len(local) > 2 else out[r]
    return out


BAD_PHONES = ("n/a", "12345", "0000000", "+44 12", "unknown", "0", "123-abc", "tel")


def unparseable_phones(values: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    out = values.copy()
    rows = np.flatnonzero(pick(rng, len(values), rate, present(values)))
    out[rows] = np.array(BAD_PHONES, dtype=object)[rng.integers(0, len(BAD_PHONES), len(rows))]
    return out
