"""Measure `standardize_person_records` throughput on synthetic dirty records.

Usage: python benchmarks/standardize_throughput.py [n_records] [distinct_fraction]
distinct_fraction (default 0) makes that share of names, e-mails and phones unique, as in real data.
"""

import sys
import time
from datetime import datetime

import numpy as np
import pandas as pd

from customer_pipeline.standardize import standardize_person_records

POOL = {
    "default_country": ["DE", "GB", "FR", "NL", "US", None],
    "first_name_raw": ["John", " anna ", "JOSÉ", "\ufeffZoë", "Mr John", "Smith", "", None, "anne-marie", "Dr. Klaus"],
    "last_name_raw": ["Smith", "MÜLLER", "o'brien", "van der berg", "John", "  ", None, "McDonald", "Dupont"],
    "full_name_raw": [None, None, None, "Smith, John", "Mr J. Smith", "john smith", "DUPONT Jean"],
    "email_raw": ["john@gmail.com", " JOHN@GMIAL.COM", "anna@web.de", "x@hotmial.com", "bad@@x", "", None,
                  "zoe@gmx.dee", "a.b@example.org"],
    "phone_raw": ["+44 20 7946 0958", "0044 20 7946 0958", "(030) 1234567", "(201) 555-0123", "06 12 34 56 78",
                  "0171 1234567", "12", "", None, "+31 20 123 4567"],
    "birth_date_raw": ["1980-05-17", "17.05.1980", "17/05/1980", "29.02.2000", "29.02.2001", "31.02.1980",
                       "2099-01-01", "1890-01-01", "1975-03-02T00:00:00Z", "", None],
    "gender_raw": ["M", "F", "X", "", None, "w"],
    "street_raw": ["Hauptstr. 1", "  10 Downing Street ", None],
    "postcode_raw": ["sw1a1aa", "1234ab", "10115", "1067", "123456789", "", None],
    "city_raw": ["BERLIN", "london", "frankfurt am main", "", None],
    "country_raw": ["Germany", "UK", "Nederland", "FR", None, "United States"],
    "marketing_consent_raw": ["Y", "N", "", "true", "0", None],
    "marketing_consent_at_raw": ["2024-01-02T10:00:00+01:00", "2024-01-02 10:00:00", None],
    "opt_out_at_raw": [None, None, None, "2024-03-01T12:00:00Z"],
    "do_not_call_raw": ["Y", "N", "", None],
    "record_created_at_raw": ["2024-01-02T10:00:00+01:00", "2023-12-31T23:59:59Z", "2024-02-29 08:00:00"],
}


def synthetic_records(n: int, distinct_fraction: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Records sampled from POOL; ``distinct_fraction`` of them get unique names, e-mails and phones."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({col: rng.choice(np.array(vals, dtype=object), n) for col, vals in POOL.items()})
    df["source"] = "pos"
    df["source_key"] = [f"card:{i}" for i in range(n)]
    df["record_updated_at_raw"] = df["record_created_at_raw"]
    unique = rng.random(n) < distinct_fraction
    k = int(unique.sum())
    ids = rng.integers(0, 10**7, k).astype(str)
    df.loc[unique, "email_raw"] = [f"user{i}@gmail.com" for i in ids]
    df.loc[unique, "phone_raw"] = [f"+49 171 {i.zfill(7)}" for i in ids]
    df.loc[unique, "last_name_raw"] = [f"Name{i}" for i in ids]
    return df


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    frac = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    raw = synthetic_records(n, frac)
    standardize_person_records(raw.head(100), None, datetime(2024, 6, 1))  # warm caches and lexicons
    start = time.perf_counter()
    out = standardize_person_records(raw, None, datetime(2024, 6, 1))
    elapsed = time.perf_counter() - start
    print(f"{len(out):,} records, distinct_fraction={frac}: {elapsed:.1f} s, {len(out) / elapsed:,.0f} records/s")


if __name__ == "__main__":
    main()
