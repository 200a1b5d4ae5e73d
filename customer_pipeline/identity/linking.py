"""Probabilistic record linkage of person records with Splink on DuckDB: train, predict, charts."""

import json
import logging
import time
from pathlib import Path

import pandas as pd

from customer_pipeline.identity import splink_model as sm
from customer_pipeline.identity.clustering import LINK_COLUMNS  # the links frame of docs/staging-contract.md

logger = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).resolve().parent / "model" / "splink_model.json"

# Thresholds on the match weight (log2 odds of "same person"), chosen on generated data scored
# against its truth file (pairwise, after connected components with the deterministic links;
# model trained without labels on a separate sample, 10,000 persons seed 1; docs/identity.md):
#                          >= 5: P / R          >= 5.5: P / R        >= 6: P / R
#   2,000 persons seed 42  0.993 / 0.976        0.994 / 0.972        0.994 / 0.972
#   10,000 seed 42         0.995 / 0.969        0.995 / 0.967        0.996 / 0.965
#   10,000 seed 7          0.994 / 0.967        0.996 / 0.965        0.997 / 0.963
#   100,000 seed 42        0.990 / 0.957        0.993 / 0.956        0.994 / 0.955
# 5 is the lowest weight that keeps precision >= 0.99 at 100,000 persons (namesakes grow with the
# population). Links in [5, 6) are almost all a full name and nothing else against it. Pairs in
# [2, 5) are mostly (~80%) true matches: worth a person's look, so they go to the review queue;
# below 2 they are dropped.
DEFAULT_ACCEPT_WEIGHT = 5.0
DEFAULT_REVIEW_LOW_WEIGHT = 2.0
# A link that rests on the name alone (every other comparison unknown on one side) joins two
# customers that hold more than a name only at this weight, and only when each is the other's
# one such partner; a record that is nothing but a name joins the one customer its name points
# to from the review floor up (clustering.cluster; figures in docs/identity.md).
DEFAULT_NAME_ONLY_ACCEPT_WEIGHT = 6.0

# The prior falls as the data grows, so predict re-estimates it on the records scored (from
# 1,000 records up; below that the counts are too small); the strict rules that estimate it are
# assumed to find this share of all matches.
PRIOR_RULES_RECALL = 0.8
REESTIMATE_PRIOR_FROM_ROWS = 1_000


def settings() -> dict:
    """The Splink settings (untrained) as a DuckDB-dialect settings dict."""
    return sm.settings_creator().create_settings_dict("duckdb")


def train(records: pd.DataFrame, out_path: str | Path = MODEL_PATH, *, seed: int = 42,
          u_max_pairs: float = 5e6, prior_recall: float | None = None) -> dict:
    """Estimate the model without labels and save it.

    Prior from strict rules; u by random sampling; m by EM; then u again on a random sample of pairs
    with each pair counted as a non-match only as far as the model thinks it is one
    (`splink_model.refine_u_on_random_pairs`), so identifiers (email, mobile) are not undervalued.
    """
    started = time.perf_counter()
    prepared = sm.prepare(records)
    with sm.duckdb_session(len(prepared)) as db_api:
        linker = sm.new_linker(db_api, prepared, sm.settings_creator())
        linker.training.estimate_probability_two_random_records_match(
            sm.deterministic_rules_for_prior(), recall=prior_recall or PRIOR_RULES_RECALL
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
        trained_rules = 0
        for rule in sm.em_training_rules():
            # A session edits the linker's model in place before it can fail, so keep a copy.
            snapshot = linker._settings_obj.core_model_settings.copy()
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(rule)
                trained_rules += 1
            except ValueError as exc:
                # Splink rejects m values that underflow (a level almost never seen among the
                # matches of one block); the other sessions still estimate those comparisons.
                linker._settings_obj.core_model_settings = snapshot
                logger.warning("EM session on %s skipped: %s", _rule_sql(rule), exc)
        if trained_rules == 0:
            raise RuntimeError("no EM session converged; the records are too few or too uniform to train on")
        # Floors first (levels EM never saw have no m yet), then u without the matches, then floors again.
        model = sm.regularise(linker.misc.save_model_to_json())
        model = sm.regularise(sm.refine_u_on_random_pairs(db_api, prepared, model, max_pairs=u_max_pairs, seed=seed))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(model, indent=2), encoding="utf-8")
    logger.info("trained Splink model on %d records in %.1fs -> %s", len(prepared), time.perf_counter() - started, out_path)
    return model


def _rule_sql(rule) -> str:
    return rule.create_blocking_rule_dict("duckdb")["blocking_rule"]


def _links_sql(predictions_table: str, comparison_names: list[str], tf_names: set[str]) -> str:
    def detail(name: str) -> str:
        expr = f"mw_{name}" if name not in tf_names else f"mw_{name} + coalesce(mw_tf_adj_{name}, 0)"
        return f'"{name}" := round({expr}, 3)'

    struct = ", ".join(detail(n) for n in comparison_names)
    return f"""
        SELECT
            least(record_id_l, record_id_r) AS record_id_l,
            greatest(record_id_l, record_id_r) AS record_id_r,
            match_weight,
            match_probability,
            'splink' AS link_type,
            CAST(to_json(struct_pack({struct})) AS VARCHAR) AS comparison_detail
        FROM {predictions_table}
        ORDER BY record_id_l, record_id_r
    """


def predict(records: pd.DataFrame, model_path: str | Path = MODEL_PATH,
            threshold_match_weight: float = DEFAULT_REVIEW_LOW_WEIGHT,
            reestimate_prior: bool | None = None) -> pd.DataFrame:
    """Score candidate pairs and return those at or above the threshold as a links frame.

    `links.attrs["pairs_compared"]` holds the number of candidate pairs scored. The prior is
    re-estimated on the records themselves when there are enough of them (or when asked).
    """
    started = time.perf_counter()
    prepared = sm.prepare(records)
    if len(prepared) < 2:
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in LINK_COLUMNS})
        empty.attrs["pairs_compared"] = 0
        return empty
    with sm.duckdb_session(len(prepared)) as db_api:
        linker = sm.new_linker(db_api, prepared, Path(model_path))
        large = len(prepared) >= REESTIMATE_PRIOR_FROM_ROWS
        if reestimate_prior or (reestimate_prior is None and large):
            # The prior (how likely two random records match) falls as the data grows;
            # the thresholds are calibrated against a prior estimated on the data scored.
            linker.training.estimate_probability_two_random_records_match(
                sm.deterministic_rules_for_prior(), recall=PRIOR_RULES_RECALL
            )
        blocked = linker.inference.compute_blocked_pairs_for_predict()
        # Splink tags each pair with the first rule that produced it (match_key = the rule's index).
        by_key = dict(db_api.duckdb_con.execute(
            f"SELECT CAST(match_key AS INTEGER), count(*) FROM {blocked.physical_name} GROUP BY 1").fetchall())
        pairs_compared = sum(by_key.values())
        predictions = linker.inference.predict(threshold_match_weight=threshold_match_weight, warning_mode="never")
        comps = linker._settings_obj.comparisons
        names = [c.output_column_name for c in comps]
        tf_names = {c.output_column_name for c in comps if c._has_tf_adjustments}
        links = db_api.duckdb_con.execute(_links_sql(predictions.physical_name, names, tf_names)).df()
    links["match_weight"] = links["match_weight"].astype("float64")
    links["match_probability"] = links["match_probability"].astype("float64")
    links.attrs["pairs_compared"] = int(pairs_compared)
    links.attrs["pairs_by_rule"] = pairs_by_rule(by_key)
    logger.info(
        "Splink compared %d pairs of %d records, kept %d links with match weight >= %s in %.1fs",
        pairs_compared, len(prepared), len(links), threshold_match_weight, time.perf_counter() - started,
    )
    return links[LINK_COLUMNS]


def pairs_by_rule(by_key: dict[int, int]) -> list[dict]:
    """Pairs each prediction blocking rule added (a pair counts for the first rule that found it),
    with the running total, in rule order."""
    rows, total = [], 0
    for i, rule in enumerate(sm.prediction_blocking_rules()):
        added = int(by_key.get(i, 0))
        total += added
        rows.append({"rule": _rule_sql(rule), "pairs_added": added, "cumulative": total})
    return rows


def count_comparisons(records: pd.DataFrame, model_path: str | Path | None = None) -> pd.DataFrame:
    """Pairs each prediction blocking rule adds (marginal and cumulative), computed exactly.

    The rules are those `predict` uses (`splink_model.prediction_blocking_rules`), whatever rules
    the saved model at `model_path` lists (kept as an argument for callers; not needed).
    """
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    prepared = sm.prepare(records)
    rules = sm.prediction_blocking_rules()
    with sm.duckdb_session(len(prepared)) as db_api:
        table = db_api.register(prepared, dataset_display_name="person_records")
        result = count_comparisons_from_blocking_rules(
            table, blocking_rules=rules, link_type="dedupe_only",
            unique_id_column_name=sm.UNIQUE_ID, record_sample_proportion=1.0,
        )
    return pd.DataFrame(result)


def write_charts(records: pd.DataFrame, model_path: str | Path, out_dir: str | Path,
                 accept_weight: float = DEFAULT_ACCEPT_WEIGHT,
                 review_low_weight: float = DEFAULT_REVIEW_LOW_WEIGHT) -> dict[str, Path]:
    """Write self-contained (offline) HTML: match weights, m/u parameters, comparison viewer, cluster studio."""
    from customer_pipeline.identity import charts

    return charts.write_charts(records, model_path, out_dir, accept_weight, review_low_weight)


def main(argv: list[str] | None = None) -> None:
    """Retrain the packaged model from `staging.person_records` in a warehouse file."""
    import argparse

    import duckdb

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("warehouse", help="DuckDB file holding staging.person_records")
    parser.add_argument("--out", default=str(MODEL_PATH))
    args = parser.parse_args(argv)
    con = duckdb.connect(args.warehouse, read_only=True)
    try:
        records = con.execute("SELECT * FROM staging.person_records").df()
    finally:
        con.close()
    train(records, args.out)
    print(f"trained on {len(records)} records -> {args.out}")


if __name__ == "__main__":
    main()
