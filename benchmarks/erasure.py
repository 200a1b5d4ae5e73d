"""Erasure: seconds to erase one person from a large warehouse, and what suppression on arrival costs.

    python benchmarks/scale.py --persons 100000 --workdir /tmp/scale --skip-bare   # builds the warehouse
    python benchmarks/erasure.py --warehouse /tmp/scale/warehouse.duckdb [--persons 3] [--no-redraw] [--pg-url URL]

Each erasure runs on a copy of the warehouse (the copy is not timed), so the figure can be taken again.
Persons are taken from the customers with the most source records (the most rows to find and remove).
Printed per person: seconds to resolve, to remove from every layer and register, to redraw the
identity dashboards, and in total; then the time to screen every POS signup row against the register
(what a load pays once somebody has been erased). Nothing is asserted. Results: docs/erasure.md.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", required=True, help="a warehouse built by benchmarks/scale.py")
    parser.add_argument("--persons", type=int, default=3, help="persons erased, one after another")
    parser.add_argument("--no-redraw", action="store_true", help="delete the dashboards without redrawing them")
    parser.add_argument("--pg-url", default=None, help="a scratch PostgreSQL database: gold is published there "
                        "first (not timed), then each erasure removes the person there too")
    args = parser.parse_args()
    source = Path(args.warehouse)
    os.environ["CUSTOMER_PIPELINE_PG_URL"] = ""
    with duckdb.connect(str(source), read_only=True) as con:
        customers, records = con.execute(
            "SELECT count(DISTINCT customer_id), count(*) FROM gold.customer_xref").fetchall()[0]
        chosen = [r[0] for r in con.execute(
            "SELECT customer_id FROM gold.customer_xref GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT ?",
            [args.persons]).fetchall()]
    print(f"warehouse {source}: {customers:,} customers, {records:,} source records")

    from customer_pipeline.erasure.arrival import screen_arrivals
    from customer_pipeline.erasure.resolve import Request
    from customer_pipeline.erasure.service import erase

    work = Path(tempfile.mkdtemp(prefix="erasure_bench_"))
    copy = work / "warehouse.duckdb"
    try:
        t = time.perf_counter()
        shutil.copyfile(source, copy)
        artefacts = source.with_name(source.stem + ".artifacts")
        if artefacts.is_dir():
            shutil.copytree(artefacts, work / "warehouse.artifacts")
        print(f"copied in {time.perf_counter() - t:.1f}s (not counted)")
        if args.pg_url:
            publish_first(copy, args.pg_url)
        print(f"\n  {'customer':20s} {'records':>7s} {'rows':>7s} {'resolve':>8s} {'remove':>8s} {'postgres':>8s} "
              f"{'charts':>8s} {'total':>8s}")
        totals = []
        for customer in chosen:
            report = erase(copy, Request(customer_id=customer), redraw_charts=not args.no_redraw, pg_url=args.pg_url)
            s = report.seconds
            totals.append(s["total"])
            print(f"  {customer:20s} {report.records:7d} {sum(report.removed.values()):7d} {s['resolve']:8.2f} "
                  f"{s['warehouse']:8.2f} {s.get('postgres', 0):8.2f} {s['artefacts']:8.2f} {s['total']:8.2f}")
        print(f"\nerase one person in a warehouse of {customers:,} customers: median {statistics.median(totals):.2f}s "
              f"(max {max(totals):.2f}s){' without redrawing the dashboards' if args.no_redraw else ''}")
        with duckdb.connect(str(copy)) as con:
            rel = con.sql("SELECT * FROM raw.pos_loyalty_signups")
            batch = (getattr(rel, "to_arrow_table", None) or rel.arrow)()
            if not hasattr(batch, "num_rows"):  # a RecordBatchReader
                batch = batch.read_all()
            t = time.perf_counter()
            kept, dropped = screen_arrivals(con, "pos_loyalty_signups", batch, "bench", None, None)
            seconds = time.perf_counter() - t
            con.execute("DELETE FROM meta.erased_rows WHERE location = 'bench'")
        print(f"suppression on arrival: {batch.num_rows:,} POS signup rows screened in {seconds:.2f}s "
              f"({batch.num_rows / seconds:,.0f} rows/s; {dropped} suppressed)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def publish_first(warehouse: Path, pg_url: str) -> None:
    """The warehouse's gold tables, published as the pipeline publishes them."""
    from customer_pipeline.publish import publish_gold
    from customer_pipeline.publish.postgres import GOLD_SPECS

    t = time.perf_counter()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'gold'").fetchall()}
        tables = {name: con.execute(f"SELECT * FROM gold.{name}").df() for name in GOLD_SPECS if name in present}
    publish_gold(pg_url, tables)
    print(f"gold published to PostgreSQL in {time.perf_counter() - t:.1f}s (not counted)")


if __name__ == "__main__":
    raise SystemExit(main())
