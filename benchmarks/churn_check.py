"""Churn model check: does gold.customer_churn's BG/NBD fit predict what customers do next, and does it see who stopped?

    python benchmarks/churn_check.py [--persons 800] [--seed 42] [--as-of 2026-11-01] [--holdout-days 90]
                                     [--workdir DIR] [--scale-customers 100000]

What runs:
  1. The sample generator (as `customer-pipeline sample`), watched: `_card_visits` of the POS generator is run a
     second time on a copy of its random stream with LAPSE_SHARE = 0; a card with fewer visits in the real run
     than in that one is a regular the generator made stop ("lapsed"). The generator's stale persons (quiet
     everywhere for over a year) are the other ones who stopped. The real output is byte for byte the usual one.
  2. `customer-pipeline run` on it (temporary DAGSTER_HOME, warehouse and landing folder in the work dir).
  3. Calibration and holdout on gold.customer_purchases, twice: a holdout of the last `--holdout-days` of the
     data, and one as long ending as many days before the end. The features and the fit as of the cutoff (the
     holdout's first day - 1); the purchase days each customer was predicted to make in the holdout against those
     they made, per frequency group and overall, and the share buying in the holdout per p_alive band at the cutoff.
  4. gold.customer_churn (fitted on everything) per truth group: mean p_alive and bands of customers who
     stopped (lapsed regulars, stale persons) and of those who kept buying.
  5. With --scale-customers N: the fit's time on N synthetic customers (BG/NBD draws, not the pipeline).

Nothing is asserted; the figures are printed. Results: docs/marts.md ("How the churn model was checked").
"""

import argparse
import copy
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from customer_pipeline.marts import churn
from customer_pipeline.sample import pos as sample_pos
from customer_pipeline.sample.generator import generate

TRUTH_FILE = "churn_truth.json"
FREQUENCY_GROUPS = ((0, 0), (1, 1), (2, 3), (4, 7), (8, 15), (16, 10**9))


def generate_with_truth(out: Path, persons: int, seed: int, as_of: dt.date) -> dict:
    """Generate the sample; also write churn_truth.json: per POS card whether the generator made it lapse, and per
    person whether they are stale. Returns the truth."""
    cards: dict[str, bool] = {}
    stale: dict[str, bool] = {}
    real = sample_pos._card_visits

    def watched(P, held, card_local, rng):
        shadow, saved = copy.deepcopy(rng), sample_pos.LAPSE_SHARE
        sample_pos.LAPSE_SHARE = 0.0
        try:
            never_lapsing, _, _ = real(P, held, card_local, shadow)
        finally:
            sample_pos.LAPSE_SHARE = saved
        visits = real(P, held, card_local, rng)
        n = len(held.card_no)
        lapsed = np.bincount(visits[0], minlength=n) < np.bincount(never_lapsing, minlength=n)
        cards.update({f"card:{c}": bool(x) for c, x in zip(held.card_no.tolist(), lapsed.tolist())})
        stale.update({str(p): bool(s) for p, s in zip(P.person_id.tolist(), P.stale.tolist())})
        return visits

    sample_pos._card_visits = watched
    try:
        generate(out, persons=persons, seed=seed, as_of=as_of)
    finally:
        sample_pos._card_visits = real
    truth = {"lapsed_cards": sorted(c for c, x in cards.items() if x),
             "stale_persons": sorted(p for p, s in stale.items() if s), "cards": len(cards), "persons": len(stale)}
    (out / TRUTH_FILE).write_text(json.dumps(truth))
    return truth


def run_pipeline(work: Path) -> int:
    from customer_pipeline.cli import main

    os.environ.update({"DAGSTER_HOME": "", "SHOP_DB_URL": "", "CUSTOMER_PIPELINE_PG_URL": "",
                       "CUSTOMER_PIPELINE_RFM_AS_OF": "", "CUSTOMER_PIPELINE_LANDING_DIR": str(work / "landing"),
                       "CUSTOMER_PIPELINE_WAREHOUSE": str(work / "w.duckdb"),
                       "CUSTOMER_PIPELINE_ARTIFACTS_DIR": str(work / "artifacts")})
    return main(["run"])


def truth_groups(con: duckdb.DuckDBPyConnection, landing: Path) -> pd.DataFrame:
    """customer_id -> group: 'stale' (the person went quiet everywhere), 'lapsed regular' (holds a card the
    generator made stop, the person may still buy online) or 'kept buying'."""
    truth = json.loads((landing / TRUTH_FILE).read_text())
    keys = pd.read_csv(landing / "truth.csv", dtype=str)
    con.register("_truth_keys", keys)
    con.register("_lapsed", pd.DataFrame({"source_key": truth["lapsed_cards"]}))
    con.register("_stale", pd.DataFrame({"person_id": truth["stale_persons"]}))
    return con.execute("""
        SELECT x.customer_id,
            CASE WHEN bool_or(t.person_id IN (SELECT person_id FROM _stale)) THEN 'stale'
                 WHEN bool_or(x.source = 'pos' AND x.source_key IN (SELECT source_key FROM _lapsed))
                     THEN 'lapsed regular'
                 ELSE 'kept buying' END AS truth
        FROM gold.customer_xref AS x
        JOIN _truth_keys AS t ON t.source = x.source AND t.source_key = x.source_key
        GROUP BY x.customer_id""").df()


def holdout_check(con: duckdb.DuckDBPyConnection, holdout_days: int, days_before_end: int = 0) -> dict:
    """Fit on the purchases up to cutoff = end - holdout_days, where end = the last sale date - days_before_end;
    the purchase days predicted for the holdout (cutoff, end] against those made. Later purchases are not used."""
    last = con.execute("SELECT max(purchase_date) FROM gold.customer_purchases "
                       "WHERE line_type = 'sale'").fetchall()[0][0]
    end = last - dt.timedelta(days=days_before_end)
    cutoff = end - dt.timedelta(days=holdout_days)
    churn.features(con, cutoff)
    calibration = con.execute("SELECT * FROM churn_features").df()
    fitted = churn.fit(calibration, holdout_days)
    actual = con.execute("""
        SELECT customer_id, count(DISTINCT purchase_date) AS actual FROM gold.customer_purchases
        WHERE customer_id IS NOT NULL AND line_type = 'sale' AND purchase_date > $cutoff AND purchase_date <= $end
        GROUP BY 1""", {"cutoff": cutoff, "end": end}).df()
    frame = (calibration.merge(fitted.predictions, on="customer_id")
             .merge(actual, on="customer_id", how="left").fillna({"actual": 0}))
    groups = []
    for lo, hi in FREQUENCY_GROUPS:
        g = frame[(frame.frequency >= lo) & (frame.frequency <= hi)]
        if len(g):
            groups.append({"frequency": f"{lo}" if lo == hi else (f"{lo}+" if hi >= 10**9 else f"{lo}-{hi}"),
                           "customers": len(g), "predicted_mean": g.expected_purchases.mean(),
                           "actual_mean": g.actual.mean(), "predicted_total": g.expected_purchases.sum(),
                           "actual_total": int(g.actual.sum())})
    bought = frame.actual > 0
    bands = []
    edges = (0.0, churn.P_ALIVE_LAPSED, churn.P_ALIVE_AT_RISK, churn.P_ALIVE_COOLING, 1.0)
    for lo, hi in zip(edges, edges[1:]):  # the probability bands' edges; the last one holds p_alive = 1
        m = (frame.p_alive >= lo) & ((frame.p_alive < hi) | (hi == 1.0)) & (frame.frequency > 0)
        bands.append({"p_alive": f"{lo:g}-{hi:g}", "customers": int(m.sum()),
                      "bought_in_holdout": float(bought[m].mean()) if m.any() else 0.0})
    return {"end": end, "cutoff": cutoff, "customers": len(frame), "params": fitted.params,
            "fit_seconds": fitted.seconds,
            "predicted_total": float(frame.expected_purchases.sum()), "actual_total": int(frame.actual.sum()),
            "mae": float((frame.expected_purchases - frame.actual).abs().mean()),
            "correlation": float(np.corrcoef(frame.expected_purchases, frame.actual)[0, 1]),
            "groups": groups, "p_alive_bands": bands}


def synthetic_frame(n: int, seed: int = 0, days: int = 730) -> pd.DataFrame:
    """n customers drawn from a BG/NBD population (r 0.5, alpha 20 days, a 1, b 2.5) over up to `days` days."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.5, 1 / 20.0, n)
    p = rng.beta(1.0, 2.5, n)
    T = rng.integers(1, days, n).astype(float)
    frequency, recency = np.zeros(n, dtype=np.int64), np.zeros(n)
    for i in range(n):  # a simulation, not the pipeline: per-customer loops are fine here
        t, alive = 0.0, True
        while alive:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            frequency[i] += 1
            recency[i] = t
            alive = rng.random() >= p[i]
    return pd.DataFrame({"customer_id": [f"S{i:07d}" for i in range(n)], "frequency": frequency,
                         "recency": np.floor(recency), "t_days": T})


def _table(rows: list[dict], columns: list[str]) -> str:
    def cell(v):
        return f"{v:,.3f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=800)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    ap.add_argument("--holdout-days", type=int, default=churn.HORIZON_DAYS)
    ap.add_argument("--workdir", type=Path, help="keep the sample and warehouse here (reused when it holds both)")
    ap.add_argument("--scale-customers", type=int, default=0, help="also time the fit on this many synthetic customers")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="churn_check_"))
    landing, warehouse = work / "landing", work / "w.duckdb"
    if not ((landing / TRUTH_FILE).is_file() and warehouse.is_file()):
        started = time.perf_counter()
        truth = generate_with_truth(landing, args.persons, args.seed, args.as_of)
        print(f"sample: {args.persons} persons, seed {args.seed}, as of {args.as_of}: {truth['cards']} cards, "
              f"{len(truth['lapsed_cards'])} lapsed by the generator, {len(truth['stale_persons'])} stale persons")
        rc = run_pipeline(work)
        print(f"customer-pipeline run: exit {rc} in {time.perf_counter() - started:.0f} s")
        if rc != 0:
            print("the run failed: figures come from the tables it built", file=sys.stderr)
    with duckdb.connect(str(warehouse)) as con:
        # the last days of the data, and as many days ending that long before the end: the generator's persons all
        # go quiet around the end (last activity = as_of - Exp(70 days)), which no model fitted before can foresee
        for before in (0, args.holdout_days):
            h = holdout_check(con, args.holdout_days, before)
            print(f"\nCalibration up to {h['cutoff']}, holdout {h['cutoff']} < day <= {h['end']} ({args.holdout_days} "
                  f"days, ending {before} days before the last sale); {h['customers']} customers; fit "
                  f"{h['fit_seconds']:.2f} s; parameters (alpha in weeks) "
                  + ", ".join(f"{k} {v:.3f}" for k, v in h["params"].items()))
            print(f"purchase days in the holdout: predicted {h['predicted_total']:,.1f}, actual {h['actual_total']:,} "
                  f"({h['predicted_total'] / max(h['actual_total'], 1) - 1:+.1%}); per customer MAE {h['mae']:.3f}, "
                  f"correlation {h['correlation']:.3f}")
            print(_table(h["groups"], ["frequency", "customers", "predicted_mean", "actual_mean", "predicted_total",
                                       "actual_total"]))
            print("Repeat customers by p_alive at the cutoff: share who bought in the holdout")
            print(_table(h["p_alive_bands"], ["p_alive", "customers", "bought_in_holdout"]))
        groups = truth_groups(con, landing)
        con.register("_groups", groups)
        rows = con.execute("""
            SELECT g.truth, count(*) AS customers, avg(c.p_alive) AS mean_p_alive,
                CAST(median(c.p_alive) AS DOUBLE) AS median_p_alive,
                count(*) FILTER (WHERE c.churn_band = 'active') AS active,
                count(*) FILTER (WHERE c.churn_band = 'cooling') AS cooling,
                count(*) FILTER (WHERE c.churn_band = 'at risk') AS at_risk,
                count(*) FILTER (WHERE c.churn_band = 'lapsed') AS lapsed
            FROM gold.customer_churn AS c JOIN _groups AS g USING (customer_id)
            WHERE c.frequency > 0 GROUP BY 1 ORDER BY 1""").df().to_dict("records")
        print("\ngold.customer_churn (repeat customers) by what the generator did")
        print(_table([{k: (int(v) if isinstance(v, np.integer) else v) for k, v in r.items()} for r in rows],
                     ["truth", "customers", "mean_p_alive", "median_p_alive", "active", "cooling", "at_risk",
                      "lapsed"]))
    if args.scale_customers:
        frame = synthetic_frame(args.scale_customers)
        fitted = churn.fit(frame)
        print(f"\nBG/NBD MAP fit on {args.scale_customers:,} synthetic customers: {fitted.seconds:.1f} s (fit and both "
              f"predictions); parameters r {fitted.params['r']:.3f}, "
              f"alpha {fitted.params['alpha'] * churn.WEEK_DAYS:.2f} days, a {fitted.params['a']:.3f}, "
              f"b {fitted.params['b']:.3f} (drawn with r 0.5, alpha 20 days, a 1, b 2.5)")
    print(f"\nwork dir: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
