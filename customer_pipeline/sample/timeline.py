"""The generator's clock: the two years up to `as_of`, as numpy datetime64[s], and its text forms."""

import datetime as dt

import numpy as np

DAY_S = 86_400
HISTORY_DAYS = 730


class Timeline:
    """Records fall between `start` (two years before as_of) and `end` (18:00 on as_of)."""

    def __init__(self, as_of: dt.date):
        self.as_of = np.datetime64(as_of, "D")
        self.start = (self.as_of - HISTORY_DAYS).astype("datetime64[s]")
        self.end = self.as_of.astype("datetime64[s]") + np.timedelta64(18 * 3600, "s")

    def days_before(self, days: int) -> np.datetime64:
        return self.end - np.timedelta64(days * DAY_S, "s")


def uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A random instant in [lo, hi] per row."""
    lo_i = lo.astype("datetime64[s]").astype(np.int64)
    hi_i = hi.astype("datetime64[s]").astype(np.int64)
    span = np.maximum(hi_i - lo_i, 0)
    return (lo_i + (rng.random(len(lo_i)) * span).astype(np.int64)).astype("datetime64[s]")


def at_opening_hours(rng: np.random.Generator, ts: np.ndarray, open_h: int = 8, close_h: int = 20) -> np.ndarray:
    """Move each instant to a random time of its day between opening and closing."""
    day = ts.astype("datetime64[D]").astype("datetime64[s]")
    secs = rng.integers(open_h * 3600, close_h * 3600, len(ts))
    return day + secs.astype("timedelta64[s]")


def iso(ts: np.ndarray, sep: str = "T") -> np.ndarray:
    """'YYYY-MM-DDTHH:MM:SS' (or with a space) as an object array of str."""
    s = np.datetime_as_string(ts.astype("datetime64[s]"), unit="s")
    if sep != "T":
        chars = s.view("U1").reshape(len(s), -1).copy()
        chars[:, 10] = sep
        s = chars.view(f"U{chars.shape[1]}").ravel()
    return s.astype(object)


def iso_date(d: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(d.astype("datetime64[D]"), unit="D").astype(object)


def eu_summer(ts: np.ndarray) -> np.ndarray:
    """True where EU summer time applies (last Sunday of March to last Sunday of October, 01:00 UTC)."""
    years = ts.astype("datetime64[Y]").astype(int) + 1970
    out = np.zeros(len(ts), dtype=bool)
    for y in np.unique(years).tolist():
        start, end = _last_sunday(y, 3), _last_sunday(y, 10)
        m = years == y
        out[m] = (ts[m] >= start) & (ts[m] < end)
    return out


def us_summer(ts: np.ndarray) -> np.ndarray:
    """True where US daylight time applies (second Sunday of March to first Sunday of November)."""
    years = ts.astype("datetime64[Y]").astype(int) + 1970
    out = np.zeros(len(ts), dtype=bool)
    for y in np.unique(years).tolist():
        march = dt.date(y, 3, 1)
        start = march + dt.timedelta(days=(6 - march.weekday()) % 7 + 7)
        nov = dt.date(y, 11, 1)
        end = nov + dt.timedelta(days=(6 - nov.weekday()) % 7)
        m = years == y
        out[m] = (ts[m] >= np.datetime64(start, "s") + np.timedelta64(7 * 3600, "s")) & (
            ts[m] < np.datetime64(end, "s") + np.timedelta64(6 * 3600, "s"))
    return out


def _last_sunday(year: int, month: int) -> np.datetime64:
    last = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
    day = last - dt.timedelta(days=(last.weekday() - 6) % 7)
    return np.datetime64(day, "s") + np.timedelta64(3600, "s")
