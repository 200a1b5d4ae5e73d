"""Writing deliveries: CSV files per group of rows, with room for a few broken lines."""

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def groups(keys: np.ndarray):
    """(key, row indices) for each distinct key, keys in sorted order, rows in their given order."""
    order = np.argsort(keys, kind="stable")
    uniq, starts = np.unique(keys[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    for k, s, e in zip(uniq.tolist(), starts.tolist(), ends.tolist()):
        yield k, order[s:e]


def write_csv(path: Path, header: Sequence[str], columns: Sequence[np.ndarray], rows: np.ndarray, *,
              bad_lines: Sequence[Sequence[str]] = (), bom: bool = False, crlf: bool = False) -> int:
    """Write the given rows of the column arrays; bad lines (wrong column count) go in the middle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = list(zip(*(c[rows].tolist() for c in columns)))
    mid = len(data) // 2
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n" if crlf else "\n")
        w.writerow(header)
        w.writerows(data[:mid])
        w.writerows(bad_lines)
        w.writerows(data[mid:])
    return len(data) + len(bad_lines)


def unique_ints(rng: np.random.Generator, low: int, high: int, n: int) -> np.ndarray:
    """n distinct random integers in [low, high), in random order (the range must be much larger than n)."""
    got = np.unique(rng.integers(low, high, int(n * 1.05) + 16))
    while len(got) < n:
        got = np.unique(np.concatenate([got, rng.integers(low, high, n)]))
    return rng.permutation(got)[:n]


def month_files(local: np.ndarray, as_of: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
    """Month number and file date (the month's last day, or as_of for the running month) per instant."""
    month = local.astype("datetime64[M]")
    last_day = (month + 1).astype("datetime64[D]") - 1
    return month.astype(np.int64), np.minimum(last_day, as_of)
