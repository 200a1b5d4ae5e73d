"""The customer-360 marts alone: every asset of the `marts` group and its checks, on a warehouse already loaded.

    python benchmarks/marts.py --warehouse /tmp/scale/1m/warehouse.duckdb [--copy]

`benchmarks/scale.py --workdir DIR` leaves a loaded warehouse in DIR (its first run builds the marts too, and
reports them as the stage `marts`); this script re-runs only the marts on it, in process, the way a run of the
whole graph executes them, and prints seconds per step, their sum, the wall clock, the BG/NBD fit and the peak
RSS. Issue target: all marts together under 60 s at 1M person records on the 2-core machine. `--copy` works on a
copy of the warehouse (the marts replace their gold tables). PostgreSQL publishing is off. Nothing is asserted.
"""

import argparse
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", required=True, type=Path, help="a warehouse the whole graph has run on")
    parser.add_argument("--copy", action="store_true", help="run on a copy in a temporary folder")
    args = parser.parse_args(argv)
    if not args.warehouse.is_file():
        print(f"{args.warehouse}: no such warehouse (run benchmarks/scale.py --workdir DIR first)", file=sys.stderr)
        return 2
    path = args.warehouse
    if args.copy:
        path = Path(tempfile.mkdtemp(prefix="marts-bench-")) / "warehouse.duckdb"
        shutil.copy(args.warehouse, path)
    os.environ["CUSTOMER_PIPELINE_WAREHOUSE"] = str(path)
    os.environ["CUSTOMER_PIPELINE_PG_URL"] = ""
    logging.disable(logging.WARNING)

    import dagster as dg
    import duckdb

    from customer_pipeline.definitions import defs as lazy_defs

    with duckdb.connect(str(path), read_only=True) as con:
        records = con.execute("SELECT count(*) FROM staging.person_records").fetchall()[0][0]
        lines = con.execute("SELECT count(*) FROM gold.customer_purchases").fetchall()[0][0]
    print(f"warehouse {path}: {records:,} person records, {lines:,} purchase lines before the run")
    defs = dg.Definitions.merge(lazy_defs(), dg.Definitions(jobs=[
        dg.define_asset_job("marts_only", selection=dg.AssetSelection.groups("marts"))]))
    steps: list[tuple[str, float]] = []
    fit_seconds = None
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("marts_only").execute_in_process(instance=instance, raise_on_error=False)
    wall = time.perf_counter() - started
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS" or event.event_type_value == "STEP_FAILURE":
            flag = "" if event.event_type_value == "STEP_SUCCESS" else "  FAILED"
            steps.append((event.step_key + flag, event.event_specific_data.duration_ms / 1000
                          if event.event_type_value == "STEP_SUCCESS" else float("nan")))
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            if mat.asset_key.path[-1] == "customer_churn" and "fit_seconds" in mat.metadata:
                fit_seconds = mat.metadata["fit_seconds"].value
    print(f"\n  {'step':66s} {'seconds':>8s}")
    for key, seconds in steps:
        print(f"  {key:66s} {seconds:8.1f}")
    total = sum(s for _, s in steps if s == s)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"\n  steps together             {total:8.1f}s  (target < {TARGET_SECONDS} s: "
          f"{'met' if total < TARGET_SECONDS else 'NOT met'})")
    print(f"  wall clock                 {wall:8.1f}s  (imports of the first step included)")
    print(f"  BG/NBD fit (pymc-marketing) {fit_seconds if fit_seconds is not None else float('nan'):7.1f}s")
    print(f"  peak RSS                   {peak / 1024 ** 3:8.2f} GB")
    print(f"  load average               {' '.join(f'{x:.2f}' for x in os.getloadavg())}  (1, 5, 15 min)")
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
