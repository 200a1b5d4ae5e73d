"""Shared text cleaning and the parse-each-distinct-value-once helper of the standardisers."""

import logging
import multiprocessing
import os
import re
import unicodedata
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

# BOM, zero-width and bidi marks that survive NFKC and break equality.
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u2060\u200e\u200f\u00ad\x00-\x08\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_NULL_TOKENS = frozenset({"", "nan", "none", "null", "n/a", "na", "-", "--", "?", "unknown", "nat"})

# Letters NFKD does not decompose into base letter + accent.
_FOLD_EXTRA = str.maketrans({
    "ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
    "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th",
    "Þ": "Th", "ı": "i", "ħ": "h", "Ħ": "H",
})


def is_missing(value: Any) -> bool:
    """True for None, NaN/NA and other scalar nulls."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def clean_text(value: Any) -> str | None:
    """NFKC-normalise, drop invisible characters, collapse whitespace; blank or junk becomes None."""
    if is_missing(value):
        return None
    text = unicodedata.normalize("NFKC", str(value))
    text = _SPACES.sub(" ", _INVISIBLE.sub("", text)).strip()
    if text.casefold() in _NULL_TOKENS:
        return None
    return text


def strip_accents(text: str) -> str:
    """Remove diacritics (José -> Jose, Müller -> Muller, Łódź -> Lodz)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD_EXTRA))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def factorize_values(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct values) as `pd.factorize`, the distinct values as an object array: iterating pandas 3's
    Arrow-backed text one value at a time is about seven times slower than iterating Python strings."""
    try:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
    except TypeError:  # unhashable junk (a list or dict from a JSON trait): compare by its text
        codes, uniques = pd.factorize(values.map(lambda v: v if is_missing(v) else str(v)), use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object)


def safe_call(func: Callable[..., Any], *args: Any, default: Any = None) -> Any:
    """``func(*args)``, or ``default`` if one odd value makes it raise: a bad value must not stop a batch."""
    try:
        return func(*args)
    except Exception:  # noqa: BLE001 - deliberate: one value's failure becomes a null result
        logger.warning("standardisation failed for %r with %s", args, func.__name__, exc_info=True)
        return default


def map_unique(values: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """Apply ``func`` once per distinct non-null value and broadcast back (nulls map to None)."""
    codes, uniques = factorize_values(values)
    results = np.empty(len(uniques) + 1, dtype=object)
    results[:-1] = [safe_call(func, u) for u in uniques]
    results[-1] = None
    # code -1 (null input) picks the trailing None
    return pd.Series(results[codes], index=values.index, dtype=object)


def map_unique_tuple(values: pd.Series, func: Callable[[Any], tuple], width: int) -> list[pd.Series]:
    """Like ``map_unique`` for a function returning a fixed-width tuple; returns one Series per field."""
    codes, uniques = factorize_values(values)
    empty = func(None)
    table = np.empty((len(uniques) + 1, width), dtype=object)
    for i, u in enumerate(uniques):
        table[i, :] = safe_call(func, u, default=empty)
    table[-1, :] = empty
    picked = table[codes]
    return [pd.Series(picked[:, j], index=values.index, dtype=object) for j in range(width)]


def worker_count() -> int:
    """Worker processes for large batches: `CUSTOMER_PIPELINE_WORKERS` (0 = none), else up to 2 (cores)."""
    configured = os.environ.get("CUSTOMER_PIPELINE_WORKERS", "").strip()
    if configured:
        return max(0, int(configured))
    return min(2, os.cpu_count() or 1)


def parallel_map(func: Callable[[list], list], items: list, min_items: int, workers: int | None = None) -> list:
    """``func(items)`` for a module-level ``func`` mapping a list to an equally long list; with at least
    ``min_items`` items and two or more workers, the list is cut into chunks parsed in spawned
    processes and the results are joined back in order (same output as one call)."""
    workers = worker_count() if workers is None else workers
    if workers < 2 or len(items) < min_items:
        return func(items)
    size = -(-len(items) // (workers * 4))  # a few chunks per worker evens out uneven chunks
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [result for part in pool.map(func, chunks) for result in part]
