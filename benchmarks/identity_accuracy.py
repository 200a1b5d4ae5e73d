"""Identity accuracy: generate a sample with ground truth, run the whole pipeline, score gold.customer_xref.

    python benchmarks/identity_accuracy.py [--persons 10000] [--seed 42]

Prints pairwise precision, recall and F1 of the pipeline and of a naive baseline (exact normalised
email or phone). Targets at 10,000 persons: precision >= 0.99, recall >= 0.97.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from customer_pipeline.identity.evaluation import baseline_clusters, pairwise_scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default="2026-11-01")
    parser.add_argument("--workdir", default=None, help="keep the data here instead of a temporary folder")
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="identity_accuracy_"))
    landing, wh = work / "landing", work / "warehouse.duckdb"
    env = {**os.environ, "CUSTOMER_PIPELINE_LANDING_DIR": str(landing), "CUSTOMER_PIPELINE_WAREHOUSE": str(wh),
           "SHOP_DB_URL": "", "CUSTOMER_PIPELINE_PG_URL": "", "DAGSTER_HOME": ""}
    cli = [sys.executable, "-m", "customer_pipeline.cli"]
    started = time.perf_counter()
    if not (landing / "truth.csv").exists():
        subprocess.run(cli + ["sample", "--persons", str(args.persons), "--seed", str(args.seed),
                              "--out", str(landing), "--as-of", args.as_of], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    generated = time.perf_counter()
    run = subprocess.run(cli + ["run"], env=env, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:])
        return run.returncode
    finished = time.perf_counter()
    with duckdb.connect(str(wh), read_only=True) as con:
        con.execute(f"CREATE TEMP VIEW truth AS SELECT source || '|' || source_key AS record_key, person_id AS person "
                    f"FROM read_csv('{landing / 'truth.csv'}', all_varchar = true)")
        con.execute("CREATE TEMP VIEW pipeline AS SELECT record_id AS record_key, customer_id AS cluster FROM gold.customer_xref")
        ours = pairwise_scores(con, "pipeline", "truth")
        records = con.execute("SELECT source, source_key, email_corrected, phone_e164 FROM staging.person_records").df()
        con.register("baseline", baseline_clusters(records))
        base = pairwise_scores(con, "baseline", "truth")
        customers = con.execute("SELECT count(*) FROM gold.golden_customers").fetchall()[0][0]
    print(f"persons {args.persons} (seed {args.seed}); records scored {ours['records']}; "
          f"golden customers {customers}; true pairs {ours['true_pairs']}")
    print(f"sample {generated - started:.1f}s, pipeline run {finished - generated:.1f}s")
    print(f"{'':10s} {'precision':>10s} {'recall':>8s} {'f1':>7s} {'pairs':>9s}")
    for name, s in (("pipeline", ours), ("baseline", base)):
        print(f"{name:10s} {s['precision']:10.4f} {s['recall']:8.4f} {s['f1']:7.4f} {s['predicted_pairs']:9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
