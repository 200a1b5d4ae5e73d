"""Time `publish_gold` for 100,000 golden customers and ~250,000 xref rows of the pipeline's shape.

Usage: python benchmarks/publish_postgres.py [--customers 100000] [--repeat 2] [--pg-url URL]
Without --pg-url a throwaway database is created on CUSTOMER_PIPELINE_TEST_PG_URL's server (default
127.0.0.1:5432) and dropped afterwards. The second round is a republish (swap over existing tables).
"""

import argparse
import contextlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from customer_pipeline.publish.postgres import publish_gold  # noqa: E402
from customer_pipeline_tests import pg  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pg-url", default=None, help="publish here instead of a throwaway database")
    args = parser.parse_args()

    started = time.perf_counter()
    frames = pg.synthetic_gold(args.customers, seed=1)
    print(f"generated frames in {time.perf_counter() - started:.2f}s: "
          + ", ".join(f"{name} {len(df):,}" for name, df in frames.items()))

    target = contextlib.nullcontext(args.pg_url) if args.pg_url else pg.temp_database("cp_bench")
    with target as url, pg.temp_role_name("cp_bench_bi", database_urls=(url,)) as role:
        for round_no in range(1, args.repeat + 1):
            started = time.perf_counter()
            result = publish_gold(url, frames, bi_role=role)
            total = time.perf_counter() - started
            kind = "first publish" if round_no == 1 else "republish"
            print(f"round {round_no} ({kind}): total {total:.2f}s, swap+grants {result['golden_customers']['swap_seconds']:.3f}s")
            for name, res in result.items():
                print(f"  {name:<22} {res['rows']:>9,} rows  {res['seconds']:7.2f}s  "
                      f"({res['rows'] / max(res['seconds'], 1e-9):,.0f} rows/s)")


if __name__ == "__main__":
    main()
