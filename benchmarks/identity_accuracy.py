"""Identity accuracy: generate a sample with ground truth, run the whole pipeline, score gold.customer_xref.

    python benchmarks/identity_accuracy.py [--persons 10000] [--seed 42]

Prints pairwise precision, recall and F1 of the pipeline and of a naive baseline (exact normalised
email or phone), the blocking recall (share of true pairs some prediction blocking rule compares),
and household pairwise precision and recall at person level among the people known by a street
address (`households.csv` of the sample against `gold.golden_customers.household_id`; each person
takes the household of the customer holding most of their records).
Targets at 10,000 persons: identity precision >= 0.995, recall >= 0.98; household precision >= 0.97,
recall >= 0.8.
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

from customer_pipeline.identity.evaluation import baseline_clusters, blocking_recall, pairwise_scores
from customer_pipeline.identity.household_evaluation import household_pairwise_scores

TARGETS = {"identity": (0.995, 0.98), "household": (0.97, 0.8)}


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
        blocking = blocking_recall(con.execute("SELECT * FROM staging.person_records").df(),
                                   con.execute("SELECT record_key AS record_id, person FROM truth").df())
        household, why_not = _households(con, landing)
    print(f"persons {args.persons} (seed {args.seed}); records scored {ours['records']}; "
          f"golden customers {customers}; true pairs {ours['true_pairs']}")
    print(f"sample {generated - started:.1f}s, pipeline run {finished - generated:.1f}s")
    print(f"{'':10s} {'precision':>10s} {'recall':>8s} {'f1':>7s} {'pairs':>9s}")
    for name, s in (("pipeline", ours), ("baseline", base)):
        print(f"{name:10s} {s['precision']:10.4f} {s['recall']:8.4f} {s['f1']:7.4f} {s['predicted_pairs']:9d}")
    print(_verdict("identity", ours))
    print(f"blocking recall {blocking['recall']:.4f}: {blocking['blocked_pairs']} of {blocking['true_pairs']} "
          f"true pairs compared by some blocking rule; {blocking['promised_recall']:.4f} of the "
          f"{blocking['promised_pairs']} that agree, up to a typo each, on two of name, birth date, postcode/city, "
          f"email, phone")
    for left, right in blocking["missed"][:5]:
        print(f"  never compared: {left}  {right}")
    if household is None:
        print(f"household: not scored: {why_not}")
    else:
        print(f"household (persons with a street address: {household['persons']}; true pairs "
              f"{household['true_pairs']}): precision {household['precision']:.4f} recall {household['recall']:.4f} "
              f"f1 {household['f1']:.4f} pairs {household['predicted_pairs']}")
        print(_verdict("household", household))
    return 0


def _households(con: duckdb.DuckDBPyConnection, landing: Path) -> tuple[dict | None, str]:
    """Household scores, or None and the reason they cannot be computed."""
    if not (landing / "households.csv").exists():
        return None, f"{landing / 'households.csv'} is missing (a sample from before household truth: regenerate it)"
    columns = {c for (c,) in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'gold' AND table_name = 'golden_customers'").fetchall()}
    if "household_id" not in columns:
        return None, "gold.golden_customers has no household_id column (this pipeline does not publish households yet)"
    record_customers = con.execute("SELECT t.person AS person_id, x.customer_id FROM truth t "
                                   "JOIN gold.customer_xref x ON x.record_id = t.record_key").df()
    customers = con.execute("SELECT customer_id, household_id FROM gold.golden_customers").df()
    truth = pd.read_csv(landing / "households.csv", dtype={"person_id": "string", "household_id": "string"})
    return household_pairwise_scores(record_customers, customers, truth), ""


def _verdict(kind: str, s: dict) -> str:
    p_min, r_min = TARGETS[kind]
    ok = s["precision"] >= p_min and s["recall"] >= r_min
    return f"{kind} target P >= {p_min} R >= {r_min}: {'met' if ok else 'NOT met'}"


if __name__ == "__main__":
    sys.exit(main())
