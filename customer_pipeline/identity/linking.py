"""Probabilistic record linkage of person records with Splink on DuckDB: train, predict, charts."""

import json
import logging
import math
import re
import time
from pathlib import Path

import pandas as pd

from customer_pipeline.identity import splink_model as sm
from customer_pipeline.identity.clustering import LINK_COLUMNS  # the links frame of docs/staging-contract.md

logger = logging.getLogger(__name__)

# Thresholds on the match weight: the log2 posterior odds of "same person", with the prior the model
# estimated on this deployment's own records (`self_consistent_prior`, scaled to the records scored),
# so the same number means the same probability on every population. They state costs, not a fit to
# one data set: a link is accepted when it is at least 2^5 = 32 times likelier a match than not
# (P >= 0.97: a wrong merge is taken to cost about 30 missed ones: it mixes two people's contact and
# consent data); pairs from 2^2 = 4 to 1 (P >= 0.8) up are worth a person's look and go to the review
# queue; below that they are dropped. Each run reports the model's own estimate of the precision of
# the links it accepts and of the matches left in the review band (`identity/links` metadata).
# (On 2026-11-22, with a model fitted to the generator, weights 5 / 5.5 / 6 gave P 0.990-0.995 at
# 10,000-100,000 generated persons; on FEBRL the pipeline's precision is 0.998-1.000 at 5.)
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


# Training works on at most this many records (a uniform sample by record id); the prior and the
# blocking budget are scaled back to the whole population.
TRAIN_MAX_RECORDS = 100_000


def _training_sample(prepared: pd.DataFrame, max_records: int) -> pd.DataFrame:
    if len(prepared) <= max_records:
        return prepared
    import zlib

    keys = prepared[sm.UNIQUE_ID].map(lambda rid: zlib.crc32(str(rid).encode()) / 2**32)
    return prepared[keys < max_records / len(prepared)].reset_index(drop=True)


def _logit2(p: float) -> float:
    return math.log2(p / (1 - p))


def self_consistent_prior(db_api, linker, n_records: int, start: float, iterations: int = 100) -> float:
    """The share of all record pairs that match, estimated from the model's own scores.

    Every candidate pair is scored once; the prior is then the expected number of matches among
    them (the sum of their match probabilities) over all n(n-1)/2 pairs, recomputed with the new
    prior until it settles. Pairs no blocking rule compares are taken to be non-matches (blocking
    recall is measured separately). This replaces a guess of how many matches some strict rules find.
    """
    predictions = linker.inference.predict(warning_mode="never")
    con = db_api.duckdb_con
    con.execute(f"CREATE OR REPLACE TEMP TABLE __prior_w AS SELECT match_weight - {_logit2(start)!r} AS w "
                f"FROM {predictions.physical_name}")
    predictions.drop_table_from_database_and_remove_from_cache()
    total_pairs = n_records * (n_records - 1) / 2
    prior = start
    for _ in range(iterations):
        expected = con.execute(f"SELECT coalesce(sum(1 / (1 + pow(2, -(w + {_logit2(prior)!r})))), 0) FROM __prior_w").fetchall()[0][0]
        new = min(max(float(expected) / total_pairs, 1e-12), 0.5)
        if abs(math.log2(new / prior)) < 1e-4:
            prior = new
            break
        prior = new
    con.execute("DROP TABLE IF EXISTS __prior_w")
    return prior


def train(records: pd.DataFrame, out_path: str | Path | None = None, *, seed: int = 42,
          u_max_pairs: float = 1e6, max_records: int = TRAIN_MAX_RECORDS) -> dict:
    """Estimate the model without labels on these records (the deployment's own), optionally save it.

    1. blocking keys: the candidates this data can afford (`splink_model.select_blocking_rules`);
    2. a starting prior from strict rules on the fields the data fills;
    3. u by random sampling; m by EM, with training rules chosen from the fields the data fills
       (a session that finds no pairs or does not converge is skipped, never fatal);
    4. u again on a random sample of pairs counted as non-matches only as far as they are
       (`splink_model.refine_u_on_random_pairs`), floors (`regularise`), and comparisons whose
       fields the data leaves empty weigh nothing (`neutralise`);
    5. the prior, self-consistently from the model's scores of every candidate pair.
    The model carries `customer_pipeline`: fingerprint, population, blocking keys, EM rules.
    """
    from splink.internals.exceptions import SplinkException

    from customer_pipeline.identity import model_store

    started = time.perf_counter()
    prepared_all = sm.prepare(records)
    population = len(prepared_all)
    prepared = _training_sample(prepared_all, max_records)
    if len(prepared) < 2:
        raise RuntimeError(f"{len(prepared)} person records: too few to train an identity model on")
    keys, counts = sm.select_blocking_rules(prepared, population)
    used = {c for c in prepared.columns if prepared[c].notna().mean() >= model_store.FIELD_USED_SHARE}
    em_rules = sm.em_training_rules(prepared)
    untrained = sm.untrained_comparisons(prepared)
    creator = sm.settings_creator(keys)
    with sm.duckdb_session(len(prepared)) as db_api:
        linker = sm.new_linker(db_api, prepared, creator)
        prior_rules = sm.deterministic_rules_for_prior(used)
        start_prior = 1.0 / max(len(prepared), 2)
        if prior_rules:
            try:
                linker.training.estimate_probability_two_random_records_match(prior_rules, recall=PRIOR_RULES_RECALL)
                start_prior = float(linker._settings_obj._probability_two_random_records_match)
            except (SplinkException, ValueError, ZeroDivisionError) as exc:
                logger.warning("starting prior left at 1/records: %s", exc)
        if not 0 < start_prior < 1:
            start_prior = 1.0 / max(len(prepared), 2)
        linker._settings_obj._probability_two_random_records_match = start_prior
        linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
        trained_rules = []
        for rule in em_rules:
            # A session edits the linker's model in place before it can fail, so keep a copy.
            snapshot = linker._settings_obj.core_model_settings.copy()
            try:
                linker.training.estimate_parameters_using_expectation_maximisation(rule)
                trained_rules.append(_rule_sql(rule))
            except (SplinkException, ValueError) as exc:
                # No pairs in the block (EMTrainingException), or m values that underflow (a level
                # almost never seen among the matches of one block): the other sessions go on.
                linker._settings_obj.core_model_settings = snapshot
                logger.warning("EM session on %s skipped: %s", _rule_sql(rule), exc)
        if not trained_rules:
            raise RuntimeError("no EM session could be trained: the records are too few or fill too few fields "
                               f"(fields filled: {sorted(used)})")
        # Floors first (levels EM never saw have no m yet), then u without the matches, then floors again.
        model = sm.regularise(linker.misc.save_model_to_json())
        model = sm.regularise(sm.refine_u_on_random_pairs(db_api, prepared, model, max_pairs=u_max_pairs, seed=seed))
        model = sm.neutralise(model, untrained)
        scorer = sm.new_linker(db_api, linker._input_tables_dict["person_records"],
                               {**model, "customer_pipeline": {"blocking_keys": keys}})
        prior = self_consistent_prior(db_api, scorer, len(prepared), float(model["probability_two_random_records_match"]))
    model["probability_two_random_records_match"] = prior
    model["customer_pipeline"] = {
        "fingerprint": model_store.fingerprint(records),
        "population_records": int(population),
        "trained_on_records": int(len(prepared)),
        "blocking_keys": [list(k) for k in keys],
        "blocking_keys_left_out": [list(k) for k, kept in zip(counts["keys"], counts["kept"]) if not kept],
        "em_rules": trained_rules,
        "untrained_comparisons": untrained,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out_path is not None:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(model, indent=2), encoding="utf-8")
    logger.info("trained Splink model on %d of %d records in %.1fs (prior %.3g, EM on %s, %d blocking keys)",
                len(prepared), population, time.perf_counter() - started, prior, trained_rules, len(keys))
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


def _engine(engine: str | None) -> str:
    from customer_pipeline.settings import IDENTITY_ENGINES, identity_engine

    if engine is None:
        return identity_engine()
    if engine not in IDENTITY_ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {', '.join(IDENTITY_ENGINES)}")
    return engine


def no_links() -> pd.DataFrame:
    """An empty links frame, as `predict` returns for fewer than two records."""
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in LINK_COLUMNS})
    empty.attrs["pairs_compared"] = 0
    empty.attrs["pairs_by_rule"] = []
    return empty


def load_model(model: str | Path | dict) -> dict:
    return json.loads(Path(model).read_text(encoding="utf-8")) if isinstance(model, (str, Path)) else model


def prior_for(model: dict, n_records: int) -> float | None:
    """The prior for scoring `n_records` records with a model trained by `train`: matches grow with the
    records, pairs with their square, so the share of pairs that match falls as 1/(n - 1). None for a
    model without the training population (saved by an older version)."""
    info = model.get("customer_pipeline") or {}
    population = info.get("population_records")
    if not population or n_records < 2:
        return None
    prior = float(model["probability_two_random_records_match"]) * (population - 1) / (n_records - 1)
    return min(prior, 0.5)


def predict(records: pd.DataFrame, model_path: str | Path | dict,
            threshold_match_weight: float = DEFAULT_REVIEW_LOW_WEIGHT,
            reestimate_prior: bool | None = None, prepared: pd.DataFrame | None = None, *,
            engine: str | None = None) -> pd.DataFrame:
    """Score candidate pairs and return those at or above the threshold as a links frame.

    `model_path` is a saved model (path) or a model dict. `links.attrs["pairs_compared"]` holds the
    number of candidate pairs scored. The prior follows the number of records scored (`prior_for`);
    a model without its training population re-estimates it on the records from 1,000 records up.
    `engine`: `duckdb` or `spark` (default: `CUSTOMER_PIPELINE_ENGINE`; spark: identity/spark_engine.py).
    """
    if _engine(engine) == "spark":
        from customer_pipeline.identity import spark_engine

        return spark_engine.predict(records, model_path, threshold_match_weight, reestimate_prior, prepared)
    started = time.perf_counter()
    model = load_model(model_path)
    prepared = sm.prepare(records) if prepared is None else prepared
    if len(prepared) < 2:
        return no_links()
    scaled = prior_for(model, len(prepared))
    if scaled is not None:
        model = {**model, "probability_two_random_records_match": scaled}
    with sm.duckdb_session(len(prepared)) as db_api:
        linker = sm.new_linker(db_api, prepared, model)
        large = len(prepared) >= REESTIMATE_PRIOR_FROM_ROWS
        if reestimate_prior or (reestimate_prior is None and scaled is None and large):
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
    links.attrs["pairs_by_rule"] = pairs_by_rule(by_key, model)
    logger.info(
        "Splink compared %d pairs of %d records, kept %d links with match weight >= %s in %.1fs",
        pairs_compared, len(prepared), len(links), threshold_match_weight, time.perf_counter() - started,
    )
    return links[LINK_COLUMNS]


def tf_columns(model: dict) -> list[str]:
    """The columns the model adjusts for term frequency (each comparison level's `tf_adjustment_column`)."""
    out: list[str] = []
    for comparison in model.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            col = level.get("tf_adjustment_column")
            if col and col not in out:
                out.append(col)
    return out


_EQUALITY = re.compile(r'^\(?\s*l\."?(\w+)"?\s*=\s*r\."?(\w+)"?\s*\)?$')


def _rule_equalities(sql: str) -> list[tuple[str, str]] | None:
    """`l.a = r.b AND ...` as [(a, b), ...]; None for a rule of any other form."""
    out = []
    for part in re.split(r"\s+AND\s+", sql.strip(), flags=re.IGNORECASE):
        match = _EQUALITY.match(part.strip())
        if match is None:
            return None
        out.append((match.group(1), match.group(2)))
    return out


def candidates_sql(model: dict, population: str, new: str) -> str | None:
    """The record ids of `population` outside `new` that some prediction blocking rule of the model pairs
    with a record of `new` (either side of the rule), as SQL; None when a rule is not a conjunction of
    column equalities (then every record is a candidate). Only these can form a scored pair with a new
    record, so scoring the new records against them finds exactly the pairs scoring against all finds.

    One pass over `population`: a record is a candidate when the hash of its key under some rule is among
    the keys of the new records under that rule (no key with a NULL part, as the rule's equality has it). A
    hash collision only adds a candidate, which Splink's blocking then pairs with nothing."""
    keys = []
    for rule in model_blocking_rules(model):
        equalities = _rule_equalities(_rule_sql(rule))
        if equalities is None:
            return None
        for mine, theirs in ((0, 1), (1, 0)):
            keys.append((tuple(eq[mine] for eq in equalities), tuple(eq[theirs] for eq in equalities)))
    tests = []
    for mine, theirs in dict.fromkeys(keys):
        present = " AND ".join(f"p.{c} IS NOT NULL" for c in mine)
        given = " AND ".join(f"n.{c} IS NOT NULL" for c in theirs)
        tests.append(f"({present} AND hash({', '.join(f'p.{c}' for c in mine)}) IN "
                     f"(SELECT hash({', '.join(f'n.{c}' for c in theirs)}) FROM {new} AS n WHERE {given}))")
    return (f"SELECT p.{sm.UNIQUE_ID} FROM {population} AS p WHERE ({' OR '.join(tests) or 'false'}) "
            f"AND p.{sm.UNIQUE_ID} NOT IN (SELECT {sm.UNIQUE_ID} FROM {new})")


def scoring_inputs(con, population: str, new_ids, model: dict):
    """What `predict_new` needs of a population held in `con` (a table or view of prepared records):
    (the new records and the candidates any rule pairs with them, as a pyarrow Table; the term-frequency
    table of each TF column over the whole population, by column; the population's size). Computed in
    SQL where the records are: nothing else of the population is read out."""
    import pyarrow as pa

    from splink.internals.input_column import InputColumn
    from splink.internals.term_frequencies import term_frequencies_for_single_column_sql

    con.register("__new_ids", pa.table({sm.UNIQUE_ID: pa.array(sorted({str(i) for i in new_ids}), pa.string())}))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __new_prepared AS SELECT * FROM {population} "
                    f"WHERE {sm.UNIQUE_ID} IN (SELECT {sm.UNIQUE_ID} FROM __new_ids)")
        found = candidates_sql(model, population, "__new_prepared")
        where = (f"{sm.UNIQUE_ID} IN (SELECT {sm.UNIQUE_ID} FROM __new_prepared) OR {sm.UNIQUE_ID} IN ({found})"
                 if found else "true")
        subset = con.sql(f"SELECT * FROM {population} WHERE {where} ORDER BY {sm.UNIQUE_ID}").to_arrow_table()
        tf = {}
        for col in tf_columns(model):
            column = InputColumn(col, sqlglot_dialect_str="duckdb")
            tf[col] = con.sql(term_frequencies_for_single_column_sql(column, population)).to_arrow_table()
        n = int(con.execute(f"SELECT count(*) FROM {population}").fetchall()[0][0])
    finally:
        con.execute("DROP TABLE IF EXISTS __new_prepared")
        con.unregister("__new_ids")
    return subset, tf, n


def predict_new(records: pd.DataFrame | None, new_ids, model_path: str | Path | dict,
                threshold_match_weight: float = DEFAULT_REVIEW_LOW_WEIGHT,
                prepared=None, *, engine: str | None = None, term_frequencies: dict | None = None,
                population: int | None = None) -> pd.DataFrame:
    """The links `predict` would find among pairs with at least one record in `new_ids`, scored the same
    way: the same blocking rules, the term frequencies and the prior of the whole population.

    Splink's `predict_within` scores the new records among themselves and `predict_between` scores them
    against the others that a blocking rule pairs with one of them (`candidates_sql`; never two existing
    records with each other). `prepared`: the matching frame of everyone (a frame or a pyarrow Table), or,
    with `term_frequencies` and `population` from `scoring_inputs`, only the new records and their
    candidates. `links.attrs["new_records"]` holds how many records were new. `engine` as for `predict`.
    """
    if _engine(engine) == "spark":
        from customer_pipeline.identity import spark_engine

        return spark_engine.predict_new(records, new_ids, model_path, threshold_match_weight, prepared)
    started = time.perf_counter()
    model = load_model(model_path)
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in LINK_COLUMNS})
    empty.attrs["new_records"] = 0
    if term_frequencies is None:
        import duckdb

        prepared = sm.prepare(records) if prepared is None else prepared
        con = duckdb.connect()
        try:
            con.register("__population", prepared)
            prepared, term_frequencies, population = scoring_inputs(con, "__population", new_ids, model)
        finally:
            con.close()
    new_ids = {str(i) for i in new_ids}
    if not new_ids or population < 2:
        return empty
    scaled = prior_for(model, population)
    if scaled is not None:
        model = {**model, "probability_two_random_records_match": scaled}
    with sm.duckdb_session(len(prepared)) as db_api:
        con = db_api.duckdb_con
        linker = sm.new_linker(db_api, prepared, model)
        for col, table in term_frequencies.items():
            linker.table_management.register_term_frequency_lookup(
                db_api.register(table, dataset_display_name=f"__tf_lookup_{col}"), col)
        subset = linker._input_tables_dict["person_records"].physical_name
        con.register("__new_ids", pd.DataFrame({sm.UNIQUE_ID: sorted(new_ids)}, dtype=object))
        con.execute(f"CREATE TABLE __new_records AS SELECT * FROM {subset} "
                    f"WHERE {sm.UNIQUE_ID} IN (SELECT {sm.UNIQUE_ID} FROM __new_ids) ORDER BY {sm.UNIQUE_ID}")
        con.execute(f"CREATE VIEW __existing_records AS SELECT * FROM {subset} "
                    f"WHERE {sm.UNIQUE_ID} NOT IN (SELECT {sm.UNIQUE_ID} FROM __new_ids)")
        n_new = int(con.execute("SELECT count(*) FROM __new_records").fetchall()[0][0])
        n_existing = len(prepared) - n_new
        empty.attrs["new_records"] = n_new
        if not n_new:
            return empty
        comps = linker._settings_obj.comparisons
        names = [c.output_column_name for c in comps]
        tf_names = {c.output_column_name for c in comps if c._has_tf_adjustments}
        new = db_api.register("__new_records", dataset_display_name="new_records")
        scored = [linker.inference.predict_within(new, threshold_match_weight=threshold_match_weight,
                                                  warning_mode="never")]
        if n_existing:
            existing = db_api.register("__existing_records", dataset_display_name="existing_records")
            scored.append(linker.inference.predict_between(existing, new, threshold_match_weight=threshold_match_weight,
                                                           warning_mode="never"))
        frames = [con.execute(_links_sql(p.physical_name, names, tf_names)).df() for p in scored]
    links = pd.concat([f for f in frames if len(f)] or [empty], ignore_index=True)
    links = links.sort_values(["record_id_l", "record_id_r"], ignore_index=True)
    links["match_weight"] = links["match_weight"].astype("float64")
    links["match_probability"] = links["match_probability"].astype("float64")
    links.attrs["new_records"] = n_new
    links.attrs["candidates"] = n_existing
    logger.info("Splink scored %d new of %d records against %d candidates, kept %d links with match weight >= %s "
                "in %.1fs", n_new, population, n_existing, len(links), threshold_match_weight,
                time.perf_counter() - started)
    return links[LINK_COLUMNS]


def model_blocking_rules(model: dict | None) -> list:
    """The prediction blocking rules a model is scored with (its own keys, or every candidate)."""
    info = (model or {}).get("customer_pipeline") or {}
    return sm.prediction_blocking_rules([tuple(k) for k in info["blocking_keys"]] if "blocking_keys" in info else None)


def pairs_by_rule(by_key: dict[int, int], model: dict | None = None) -> list[dict]:
    """Pairs each prediction blocking rule added (a pair counts for the first rule that found it),
    with the running total, in rule order."""
    rows, total = [], 0
    for i, rule in enumerate(model_blocking_rules(model)):
        added = int(by_key.get(i, 0))
        total += added
        rows.append({"rule": _rule_sql(rule), "pairs_added": added, "cumulative": total})
    return rows


def count_comparisons(records: pd.DataFrame, model_path: str | Path | None = None) -> pd.DataFrame:
    """Pairs each prediction blocking rule adds (marginal and cumulative), computed exactly.

    The rules are those `predict` uses with the model at `model_path` (its own blocking keys; every
    candidate rule without a model).
    """
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    prepared = sm.prepare(records)
    rules = model_blocking_rules(load_model(model_path) if model_path is not None else None)
    with sm.duckdb_session(len(prepared)) as db_api:
        table = db_api.register(prepared, dataset_display_name="person_records")
        result = count_comparisons_from_blocking_rules(
            table, blocking_rules=rules, link_type="dedupe_only",
            unique_id_column_name=sm.UNIQUE_ID, record_sample_proportion=1.0,
        )
    return pd.DataFrame(result)


def write_charts(records: pd.DataFrame, model_path: str | Path | dict, out_dir: str | Path,
                 accept_weight: float = DEFAULT_ACCEPT_WEIGHT,
                 review_low_weight: float = DEFAULT_REVIEW_LOW_WEIGHT) -> dict[str, Path]:
    """Write self-contained (offline) HTML: match weights, m/u parameters, comparison viewer, cluster studio."""
    from customer_pipeline.identity import charts

    return charts.write_charts(records, model_path, out_dir, accept_weight, review_low_weight)


def main(argv: list[str] | None = None) -> None:
    """Retrain the identity model of a warehouse on its `staging.person_records` (kept as a new version)."""
    import argparse

    from customer_pipeline import warehouse
    from customer_pipeline.identity import model_store

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("warehouse", help="DuckDB file holding staging.person_records")
    parser.add_argument("--out", default=None, help="also write the model JSON here")
    args = parser.parse_args(argv)
    with warehouse.connect(args.warehouse) as con:
        records = con.execute("SELECT * FROM staging.person_records").df()
        version, _ = model_store.load_or_train(con, records, retrain=True)
    if args.out:
        Path(args.out).write_text(json.dumps(version.model, indent=2), encoding="utf-8")
    print(f"trained on {len(records)} records -> {args.warehouse} identity.splink_models version {version.version}")


if __name__ == "__main__":
    main()
