"""Do two warehouses hold the same golden layer? The DuckDB and the Spark identity engine, side by side.

    python benchmarks/engine_parity.py [--persons 2000] [--seed 42] [--workdir DIR]
    python benchmarks/engine_parity.py --compare A.duckdb B.duckdb

The first form generates the demo sample (2,000 persons, as `make demo`) and runs `customer-pipeline run`
on it twice, into two warehouses: `CUSTOMER_PIPELINE_ENGINE=duckdb` and `=spark`. The second compares two
warehouses that exist, e.g. a `make demo` and a `CUSTOMER_PIPELINE_ENGINE=spark make demo` of the same
sample (docs/scale-out.md).

Customer ids and household ids are random, so a customer is matched by the set of records
`gold.customer_xref` gives it, a household by the set of (matched) customers in it. Then every column of
`gold.golden_customers` and `gold.households` is compared; `updated_at` (when the run wrote the row) is
the only column left out. Prints the differences; exit status 1 when there are any.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

RUN_TIME_COLUMNS = {"updated_at"}


def _read(warehouse: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        xref = con.execute("SELECT customer_id, record_id FROM gold.customer_xref").df()
        golden = con.execute("SELECT * FROM gold.golden_customers").df()
        households = con.execute("SELECT * FROM gold.households").df()
    return xref, golden, households


def _keys(xref: pd.DataFrame) -> pd.Series:
    """customer_id -> the sorted record ids of the customer, '|'-joined (an id-free name for it)."""
    return xref.sort_values("record_id").groupby("customer_id")["record_id"].agg("|".join)


def _canonical(golden: pd.DataFrame, households: pd.DataFrame, keys: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables with ids replaced by id-free names: a customer by its records, a household by its customers."""
    g = golden.assign(customer=golden["customer_id"].map(keys))
    members = g.dropna(subset=["household_id"]).sort_values("customer").groupby("household_id")["customer"]
    household_key = members.agg(" + ".join)
    g["household"] = g["household_id"].map(household_key)
    h = households.assign(household=households["household_id"].map(household_key))
    drop = ["customer_id", "household_id", *RUN_TIME_COLUMNS]
    g = g.drop(columns=[c for c in drop if c in g.columns]).set_index("customer").sort_index()
    h = h.drop(columns=[c for c in drop if c in h.columns]).set_index("household").sort_index()
    return g, h


def _differences(a: pd.DataFrame, b: pd.DataFrame, what: str) -> dict:
    only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
    both = a.index.intersection(b.index)
    columns = [c for c in a.columns if c in b.columns]
    differing: dict[str, int] = {}
    examples: list[str] = []
    left, right = a.loc[both, columns], b.loc[both, columns]
    for col in columns:
        x, y = left[col], right[col]
        same = (x == y) | (x.isna() & y.isna())
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            same |= (x - y).abs() <= 1e-9
        bad = same[~same.fillna(False).astype(bool)].index
        if len(bad):
            differing[col] = len(bad)
            examples.append(f"{what} {bad[0][:60]}: {col} {x[bad[0]]!r} / {y[bad[0]]!r}")
    return {"rows": len(a), "rows_other": len(b), "only_first": len(only_a), "only_second": len(only_b),
            "same_rows": len(both), "columns_compared": len(columns), "columns_differing": differing,
            "missing_columns": sorted(set(a.columns) ^ set(b.columns)), "examples": examples[:10]}


def compare(first: Path, second: Path) -> dict:
    """The golden layer of two warehouses, compared (see the module docstring)."""
    xa, ga, ha = _read(first)
    xb, gb, hb = _read(second)
    ka, kb = _keys(xa), _keys(xb)
    ga_, ha_ = _canonical(ga, ha, ka)
    gb_, hb_ = _canonical(gb, hb, kb)
    return {"customers": _differences(ga_, gb_, "customer"), "households": _differences(ha_, hb_, "household")}


def identical(result: dict) -> bool:
    return all(r["only_first"] == r["only_second"] == 0 and not r["columns_differing"] and not r["missing_columns"]
               for r in result.values())


def report(result: dict, names: tuple[str, str]) -> None:
    for table, r in result.items():
        print(f"  {table:10s} {r['rows']:>7,} / {r['rows_other']:>7,} rows ({names[0]} / {names[1]}); "
              f"{r['same_rows']:,} matched; only in {names[0]}: {r['only_first']}, only in {names[1]}: "
              f"{r['only_second']}; {r['columns_compared']} columns compared, differing: "
              f"{r['columns_differing'] or 'none'}")
        for line in r["examples"]:
            print(f"      {line}")
        if r["missing_columns"]:
            print(f"      columns on one side only: {r['missing_columns']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--compare", nargs=2, metavar=("FIRST", "SECOND"), default=None,
                        help="compare two existing warehouses instead of running the pipeline")
    args = parser.parse_args()
    if args.compare:
        first, second = map(Path, args.compare)
        names = (first.name, second.name)
    else:
        work = Path(args.workdir or tempfile.mkdtemp(prefix="engine_parity_"))
        landing = work / "landing"
        env = {**os.environ, "CUSTOMER_PIPELINE_LANDING_DIR": str(landing), "SHOP_DB_URL": "",
               "CUSTOMER_PIPELINE_PG_URL": "", "DAGSTER_HOME": ""}
        cli = [sys.executable, "-m", "customer_pipeline.cli"]
        if not (landing / "truth.csv").exists():
            subprocess.run(cli + ["sample", "--persons", str(args.persons), "--seed", str(args.seed),
                                  "--out", str(landing)], env=env, check=True, stdout=subprocess.DEVNULL)
        seconds = {}
        for engine in ("duckdb", "spark"):
            wh = work / f"{engine}.duckdb"
            for p in (wh, wh.with_suffix(".duckdb.wal")):
                p.unlink(missing_ok=True)
            t = time.perf_counter()
            subprocess.run(cli + ["run"], env={**env, "CUSTOMER_PIPELINE_ENGINE": engine,
                                               "CUSTOMER_PIPELINE_WAREHOUSE": str(wh)},
                           check=True, stdout=subprocess.DEVNULL)
            seconds[engine] = time.perf_counter() - t
        print(f"{args.persons:,} persons (seed {args.seed}); customer-pipeline run: duckdb {seconds['duckdb']:.1f}s, "
              f"spark {seconds['spark']:.1f}s; work dir {work}")
        first, second = work / "duckdb.duckdb", work / "spark.duckdb"
        names = ("duckdb", "spark")
    result = compare(first, second)
    report(result, names)
    same = identical(result)
    print("the same golden layer" if same else "the golden layers DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
