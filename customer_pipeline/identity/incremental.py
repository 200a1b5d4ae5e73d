"""Incremental scoring: new and changed records are scored against everyone, links of removed ones go.

The links of the last scoring stay valid for every pair of records that did not change: a pair's
comparison depends only on its two records and on the model. Two things drift as the population
grows, the prior (scaled to the number of records, `linking.prior_for`) and the term frequencies,
so the whole population is scored again once it has grown or shrunk by `FULL_RESCORE_GROWTH` since
the last full scoring, and whenever the model or the review floor changed.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from customer_pipeline.identity.clustering import connected_components
from customer_pipeline.staging.incremental import HASH_COLUMN
from customer_pipeline.warehouse import table_exists

SCORED_TABLE = "identity.scored_records"
STATE_TABLE = "identity.scoring_state"
# A tenth more (or fewer) records since the last full scoring moves the prior by about 0.14 in match
# weight (log2 1.1): small against the 3-point review band, and the term frequencies as little.
FULL_RESCORE_GROWTH = 0.10


@dataclass
class ScoringPlan:
    mode: str  # "full" or "incremental"
    reason: str
    new_ids: set[str]  # records to score against everyone (incremental only)
    gone_ids: set[str]  # records whose old links are dropped (removed or changed)


def _state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    if not table_exists(con, STATE_TABLE):
        return {}
    return dict(con.execute(f"SELECT key, value FROM {STATE_TABLE}").fetchall())


def plan(con: duckdb.DuckDBPyConnection, records: pd.DataFrame, model_version: int, review_low: float,
         force_full: bool = False) -> ScoringPlan:
    """Full or incremental scoring for these records, and which records are new or gone."""
    state = _state(con)
    full_at = int(state.get("records_at_full_scoring", "0") or 0)
    reason = (
        "full run asked for" if force_full
        else "no earlier scoring" if not (state and table_exists(con, SCORED_TABLE) and table_exists(con, "identity.links"))
        else "records carry no input hash" if HASH_COLUMN not in records.columns
        else "model changed" if state.get("model_version") != str(model_version)
        else "review floor changed" if float(state.get("review_low_weight", "nan")) != float(review_low)
        else f"records changed by more than {FULL_RESCORE_GROWTH:.0%} since the last full scoring"
        if not full_at or abs(len(records) - full_at) > FULL_RESCORE_GROWTH * full_at
        else ""
    )
    if reason:
        return ScoringPlan("full", reason, set(), set())
    current = pd.DataFrame({"record_id": records["record_id"], HASH_COLUMN: records[HASH_COLUMN]})
    con.register("_current_scored", current)
    try:
        new = con.execute(f"""SELECT c.record_id FROM _current_scored c ANTI JOIN {SCORED_TABLE} s
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN}""").fetchall()
        gone = con.execute(f"""SELECT s.record_id FROM {SCORED_TABLE} s ANTI JOIN _current_scored c
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN}""").fetchall()
    finally:
        con.unregister("_current_scored")
    return ScoringPlan("incremental", "", {r[0] for r in new}, {r[0] for r in gone})


def kept_links(old_links: pd.DataFrame, plan_: ScoringPlan) -> pd.DataFrame:
    """The earlier Splink links between two records that are both unchanged."""
    splink = old_links[old_links["link_type"] == "splink"]
    touched = plan_.new_ids | plan_.gone_ids
    return splink[~(splink["record_id_l"].isin(touched) | splink["record_id_r"].isin(touched))]


def save(con: duckdb.DuckDBPyConnection, records: pd.DataFrame, model_version: int, review_low: float,
         plan_: ScoringPlan) -> None:
    """Remember what was scored (inside the caller's transaction)."""
    state = _state(con)
    state.update(model_version=str(model_version), review_low_weight=repr(float(review_low)), last_mode=plan_.mode,
                 last_new_records=str(len(plan_.new_ids) if plan_.mode == "incremental" else len(records)))
    if plan_.mode == "full":
        state["records_at_full_scoring"] = str(len(records))
    scored = pd.DataFrame({"record_id": records["record_id"],
                           HASH_COLUMN: records[HASH_COLUMN] if HASH_COLUMN in records.columns else 0})
    con.register("_scored", scored)
    con.execute(f"CREATE OR REPLACE TABLE {SCORED_TABLE} AS SELECT * FROM _scored")
    con.unregister("_scored")
    con.execute(f"CREATE OR REPLACE TABLE {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.executemany(f"INSERT INTO {STATE_TABLE} VALUES (?, ?)", list(state.items()))


# --- clustering: only the components that changed ------------------------------------------------------

CLUSTER_STATE = "identity.cluster_state"  # the last clustering: record -> cluster, with its component's fingerprint
REVIEW_STATE = "identity.review_state"  # the last review pairs, with their component's fingerprint


def clustering_salt(*settings) -> str:
    """What else a clustering depends on: its settings and the clustering code itself."""
    from customer_pipeline.identity import clustering

    digest = hashlib.sha256(Path(clustering.__file__).read_bytes())
    digest.update(repr(settings).encode())
    return digest.hexdigest()[:16]


def components(record_ids: pd.Series, links: pd.DataFrame, decisions: pd.DataFrame | None) -> pd.DataFrame:
    """`record_id, component` (the component's smallest record id) over every link and decision.

    The clustering never joins or cuts across these components (its edges, name-only candidates,
    conflict splits, bridges and review pairs are all links or decisions), so each can be clustered
    on its own and an unchanged one keeps its earlier result."""
    ids = pd.Index(pd.unique(pd.Series(record_ids, dtype=object).dropna())).sort_values()
    pairs = [links[["record_id_l", "record_id_r"]]]
    if decisions is not None and len(decisions):
        pairs.append(decisions[["record_id_l", "record_id_r"]])
    edges = pd.concat(pairs, ignore_index=True)
    left, right = ids.get_indexer(edges["record_id_l"]), ids.get_indexer(edges["record_id_r"])
    keep = (left >= 0) & (right >= 0)
    root = connected_components(len(ids), left[keep], right[keep])
    return pd.DataFrame({"record_id": ids.to_numpy(), "component": ids.to_numpy()[root]})


def fingerprints(con: duckdb.DuckDBPyConnection, comp: pd.DataFrame, hashes: pd.DataFrame, links: pd.DataFrame,
                 decisions: pd.DataFrame | None, salt: str) -> pd.DataFrame:
    """`component, fingerprint`: a hash of the component's records (ids and input hashes), its links
    (pair, weight, type, detail) and decisions, and the salt. Sums, so the order of rows does not count."""
    dec = decisions if decisions is not None else pd.DataFrame(columns=["record_id_l", "record_id_r", "decision"])
    frames = {"_fp_comp": comp, "_fp_hashes": hashes[["record_id", HASH_COLUMN]],
              "_fp_links": links[["record_id_l", "record_id_r", "match_weight", "link_type", "comparison_detail"]],
              "_fp_dec": dec[["record_id_l", "record_id_r", "decision"]].astype(object)}
    for name, frame in frames.items():
        con.register(name, frame)
    try:
        return con.execute(f"""
            WITH rec AS (SELECT c.component, sum(hash(c.record_id, h.{HASH_COLUMN})) AS x, count(*) AS n
                         FROM _fp_comp c LEFT JOIN _fp_hashes h USING (record_id) GROUP BY 1),
                 lk AS (SELECT c.component, sum(hash(l.record_id_l, l.record_id_r, round(l.match_weight, 6),
                                                     l.link_type, l.comparison_detail)) AS x
                        FROM _fp_links l JOIN _fp_comp c ON c.record_id = l.record_id_l GROUP BY 1),
                 dc AS (SELECT c.component, sum(hash(least(d.record_id_l, d.record_id_r),
                                                     greatest(d.record_id_l, d.record_id_r), d.decision)) AS x
                        FROM _fp_dec d JOIN _fp_comp c ON c.record_id = d.record_id_l GROUP BY 1)
            SELECT rec.component, hash(rec.x::VARCHAR, rec.n, coalesce(lk.x, 0)::VARCHAR,
                                       coalesce(dc.x, 0)::VARCHAR, $salt) AS fingerprint
            FROM rec LEFT JOIN lk USING (component) LEFT JOIN dc USING (component)""", {"salt": salt}).df()
    finally:
        for name in frames:
            con.unregister(name)


@dataclass
class ClusteringDelta:
    components: int
    reclustered_components: int
    reclustered_records: int


def cluster_changed(con: duckdb.DuckDBPyConnection, records: pd.DataFrame, links: pd.DataFrame,
                    decisions: pd.DataFrame | None, salt: str, cluster_fn, force_full: bool = False):
    """`cluster_fn(record_ids, links, decisions, records)` run only on the components whose fingerprint the
    last clustering did not see; the others keep its clusters and review pairs. Returns
    (clusters, review, clusters_with_fingerprints, review_with_fingerprints, ClusteringDelta)."""
    comp = components(records["record_id"], links, decisions)
    hashes = records[["record_id"]].assign(**{HASH_COLUMN: records[HASH_COLUMN] if HASH_COLUMN in records else 0})
    fps = fingerprints(con, comp, hashes, links, decisions, salt)
    comp = comp.merge(fps, on="component")
    seen = set()
    if not force_full and table_exists(con, CLUSTER_STATE) and table_exists(con, REVIEW_STATE):
        seen = {r[0] for r in con.execute(f"SELECT DISTINCT fingerprint FROM {CLUSTER_STATE}").fetchall()}
    reuse = comp["fingerprint"].isin(seen)
    todo_ids = comp.loc[~reuse, "record_id"]
    todo = set(todo_ids)
    sub_links = links[links["record_id_l"].isin(todo)]
    sub_dec = decisions[decisions["record_id_l"].isin(todo)] if decisions is not None and len(decisions) else decisions
    if todo:
        clusters, review = cluster_fn(todo_ids, sub_links, sub_dec, records[records["record_id"].isin(todo)])
    else:
        from customer_pipeline.identity.clustering import REVIEW_COLUMNS

        clusters = pd.DataFrame({"record_id": pd.Series(dtype=object), "cluster_key": pd.Series(dtype=object),
                                 "match_probability": pd.Series(dtype=float)})
        review = pd.DataFrame({c: pd.Series(dtype=object) for c in REVIEW_COLUMNS})
    kept_fps = pd.DataFrame({"fingerprint": pd.unique(comp.loc[reuse, "fingerprint"])})
    if len(kept_fps):
        con.register("_kept_fps", kept_fps)
        old_clusters = con.execute(f"SELECT * EXCLUDE (fingerprint) FROM {CLUSTER_STATE} "
                                   "WHERE fingerprint IN (SELECT fingerprint FROM _kept_fps)").df()
        old_review = con.execute(f"SELECT * EXCLUDE (fingerprint) FROM {REVIEW_STATE} "
                                 "WHERE fingerprint IN (SELECT fingerprint FROM _kept_fps)").df()
        con.unregister("_kept_fps")
        clusters = pd.concat([old_clusters, clusters], ignore_index=True) if len(clusters) else old_clusters
        review = pd.concat([old_review, review], ignore_index=True) if len(review) else old_review
    by_record = comp.set_index("record_id")["fingerprint"]
    clusters = clusters.sort_values("record_id", ignore_index=True)
    state = clusters.assign(fingerprint=clusters["record_id"].map(by_record).to_numpy())
    review_state = review.assign(fingerprint=review["record_id_l"].map(by_record).to_numpy())
    delta = ClusteringDelta(int(comp["component"].nunique()), int(comp.loc[~reuse, "component"].nunique()), len(todo))
    return clusters, review, state, review_state, delta


def save_clustering(con: duckdb.DuckDBPyConnection, state: pd.DataFrame, review_state: pd.DataFrame,
                    delta: ClusteringDelta) -> None:
    """Keep the clustering for the next run (inside the caller's transaction)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.executemany(f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?)", [
        ("last_components", str(delta.components)), ("last_components_clustered", str(delta.reclustered_components)),
        ("last_records_clustered", str(delta.reclustered_records))])
    for table, frame in ((CLUSTER_STATE, state), (REVIEW_STATE, review_state)):
        con.register("_state", frame)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _state")
        con.unregister("_state")


# --- the matching frame, prepared once per record ---------------------------------------------------------

PREPARED_TABLE = "identity.prepared_records"


def prepare_salt() -> str:
    """What `splink_model.prepare` depends on besides the record: its code and the nickname tables."""
    import nicknames

    from customer_pipeline.identity import splink_model

    digest = hashlib.sha256(Path(splink_model.__file__).read_bytes())
    digest.update(str(getattr(nicknames, "__version__", "")).encode())
    return digest.hexdigest()[:16]


def prepared_records(con: duckdb.DuckDBPyConnection, records: pd.DataFrame) -> pd.DataFrame:
    """`splink_model.prepare(records)`, preparing only the records new or changed since the last call
    (kept in `identity.prepared_records` with their input hash; everything again when the code changed)."""
    from customer_pipeline.identity import splink_model as sm

    salt = prepare_salt()
    state = _state(con)
    usable = (HASH_COLUMN in records.columns and table_exists(con, PREPARED_TABLE)
              and state.get("prepare_salt") == salt)
    if not usable:
        prepared = sm.prepare(records)
        stored = prepared.assign(**{HASH_COLUMN: _hashes_for(prepared, records)})
        con.register("_prepared", stored)
        con.execute(f"CREATE OR REPLACE TABLE {PREPARED_TABLE} AS SELECT * FROM _prepared")
        con.unregister("_prepared")
        _set_state(con, prepare_salt=salt)
        return prepared
    current = pd.DataFrame({sm.UNIQUE_ID: records["record_id"], HASH_COLUMN: records[HASH_COLUMN]})
    con.register("_current_prep", current)
    try:
        con.execute(f"""DELETE FROM {PREPARED_TABLE} p WHERE NOT EXISTS (SELECT 1 FROM _current_prep c
            WHERE c.{sm.UNIQUE_ID} = p.{sm.UNIQUE_ID} AND c.{HASH_COLUMN} = p.{HASH_COLUMN})""")
        todo = con.execute(f"""SELECT c.{sm.UNIQUE_ID} FROM _current_prep c ANTI JOIN {PREPARED_TABLE} p
            ON c.{sm.UNIQUE_ID} = p.{sm.UNIQUE_ID} AND c.{HASH_COLUMN} = p.{HASH_COLUMN}""").df()[sm.UNIQUE_ID]
    finally:
        con.unregister("_current_prep")
    if len(todo):
        part = records[records["record_id"].isin(set(todo))]
        fresh = sm.prepare(part)
        fresh[HASH_COLUMN] = _hashes_for(fresh, part)
        con.register("_fresh_prep", fresh)
        con.execute(f"INSERT INTO {PREPARED_TABLE} BY NAME SELECT * FROM _fresh_prep")
        con.unregister("_fresh_prep")
    return con.execute(f"SELECT * EXCLUDE ({HASH_COLUMN}) FROM {PREPARED_TABLE} ORDER BY {sm.UNIQUE_ID}").df()


def _hashes_for(prepared: pd.DataFrame, records: pd.DataFrame):
    from customer_pipeline.identity import splink_model as sm

    if HASH_COLUMN not in records.columns:
        return 0
    return prepared[sm.UNIQUE_ID].map(records.set_index("record_id")[HASH_COLUMN]).to_numpy()


def _set_state(con: duckdb.DuckDBPyConnection, **values: str) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.executemany(f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?)", list(values.items()))
