"""Incremental scoring: new and changed records are scored against everyone, links of removed ones go.

The links of the last scoring stay valid for every pair of records that did not change: a pair's
comparison depends only on its two records and on the model. Two things drift as the population
grows, the prior (scaled to the number of records, `linking.prior_for`) and the term frequencies,
so the whole population is scored again once it has grown or shrunk by `FULL_RESCORE_GROWTH` since
the last full scoring, and whenever the model or the review floor changed.
"""

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from customer_pipeline.identity.clustering import connected_components
from customer_pipeline.staging.incremental import HASH_COLUMN
from customer_pipeline.warehouse import isin, table_exists

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


@contextmanager
def _relation(con: duckdb.DuckDBPyConnection, records: pd.DataFrame | str, name: str) -> Iterator[str]:
    """A name `con` can query the records by: a table's own name, or a frame registered for the block."""
    if isinstance(records, str):
        yield records
        return
    con.register(name, records)
    try:
        yield name
    finally:
        con.unregister(name)


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()}


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])


def plan(con: duckdb.DuckDBPyConnection, records: pd.DataFrame | str, model_version: int, review_low: float,
         force_full: bool = False) -> ScoringPlan:
    """Full or incremental scoring for these records (a frame, or a table of `con` such as
    `staging.person_records`, compared in SQL), and which records are new or gone."""
    with _relation(con, records, "_current_scored") as rel:
        state = _state(con)
        full_at = int(state.get("records_at_full_scoring", "0") or 0)
        n = _count(con, rel)
        reason = (
            "full run asked for" if force_full
            else "no earlier scoring" if not (state and table_exists(con, SCORED_TABLE) and table_exists(con, "identity.links"))
            else "records carry no input hash" if HASH_COLUMN not in _columns(con, rel)
            else "model changed" if state.get("model_version") != str(model_version)
            else "review floor changed" if float(state.get("review_low_weight", "nan")) != float(review_low)
            else f"records changed by more than {FULL_RESCORE_GROWTH:.0%} since the last full scoring"
            if not full_at or abs(n - full_at) > FULL_RESCORE_GROWTH * full_at
            else ""
        )
        if reason:
            return ScoringPlan("full", reason, set(), set())
        new = con.execute(f"""SELECT c.record_id FROM {rel} c ANTI JOIN {SCORED_TABLE} s
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN}""").fetchall()
        gone = con.execute(f"""SELECT s.record_id FROM {SCORED_TABLE} s ANTI JOIN {rel} c
            ON s.record_id = c.record_id AND s.{HASH_COLUMN} = c.{HASH_COLUMN}""").fetchall()
    return ScoringPlan("incremental", "", {r[0] for r in new}, {r[0] for r in gone})


def kept_links(old_links: pd.DataFrame, plan_: ScoringPlan) -> pd.DataFrame:
    """The earlier Splink links between two records that are both unchanged."""
    splink = old_links[old_links["link_type"] == "splink"]
    touched = plan_.new_ids | plan_.gone_ids
    return splink[~(isin(splink["record_id_l"], touched) | isin(splink["record_id_r"], touched))]


def save(con: duckdb.DuckDBPyConnection, records: pd.DataFrame | str, model_version: int, review_low: float,
         plan_: ScoringPlan) -> None:
    """Remember what was scored (inside the caller's transaction); `records` as for `plan`."""
    with _relation(con, records, "_scored") as rel:
        n = _count(con, rel)
        state = _state(con)
        state.update(model_version=str(model_version), review_low_weight=repr(float(review_low)), last_mode=plan_.mode,
                     last_new_records=str(len(plan_.new_ids) if plan_.mode == "incremental" else n))
        if plan_.mode == "full":
            state["records_at_full_scoring"] = str(n)
        hashed = HASH_COLUMN if HASH_COLUMN in _columns(con, rel) else f"0 AS {HASH_COLUMN}"
        con.execute(f"CREATE OR REPLACE TABLE {SCORED_TABLE} AS SELECT record_id, {hashed} FROM {rel}")
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
    # (warehouse.isin: pandas' own test on Arrow text took 4.3 s per call at 1M records)
    sub_links = links[isin(links["record_id_l"], todo)]
    sub_dec = decisions[isin(decisions["record_id_l"], todo)] if decisions is not None and len(decisions) else decisions
    if todo:
        clusters, review = cluster_fn(todo_ids, sub_links, sub_dec, records[isin(records["record_id"], todo)])
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


# --- clustering from what changed, without the whole link graph ------------------------------------------

CLUSTERED_RECORDS = "identity.clustered_records"  # record_id, input hash: the records the last clustering saw
CLUSTERED_LINKS = "identity.clustered_links"  # record_id_l, record_id_r, h: its links (h: weight, type, detail)
CLUSTERED_DECISIONS = "identity.clustered_decisions"  # record_id_l, record_id_r, decision: its decisions
COMPONENT_SIZES = "identity.cluster_component_sizes"  # fingerprint, records: to see records erased since
_LINK_HASH = "hash(round(match_weight, 6), link_type, comparison_detail)"


@dataclass
class TouchedClustering:
    """A clustering of only the components that hold a record, link or decision changed since the last one."""
    clusters: pd.DataFrame  # record_id, cluster_key, match_probability of the records clustered again
    review: pd.DataFrame  # their review pairs
    state: pd.DataFrame  # clusters with their component's fingerprint
    review_state: pd.DataFrame
    affected: pd.DataFrame  # fingerprint: the earlier components clustered again
    record_ids: pd.DataFrame  # record_id: records clustered again and the earlier records of those components
    delta: ClusteringDelta


def _register_decisions(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame | None, name: str) -> None:
    """The decisions as a temp table of text columns (an empty frame has no types of its own)."""
    frame = decisions if decisions is not None else pd.DataFrame(columns=["record_id_l", "record_id_r", "decision"])
    con.register("_decisions_in", frame[["record_id_l", "record_id_r", "decision"]].astype(object))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {name} AS SELECT CAST(record_id_l AS VARCHAR) AS record_id_l,
        CAST(record_id_r AS VARCHAR) AS record_id_r, CAST(decision AS VARCHAR) AS decision FROM _decisions_in""")
    con.unregister("_decisions_in")


def cluster_touched(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame | None, salt: str, cluster_fn,
                    records_for) -> TouchedClustering | None:
    """`cluster_changed` without reading every record and link: the records, links and decisions that
    differ from those the last clustering saw (SQL against its snapshots) name the components to cluster
    again; those components, their records and the links among them are all that is read. None when the
    snapshots are missing or do not describe `gold.customer_xref` (the caller clusters as before).

    The set is closed: a link unchanged since the last clustering joins two records of one earlier component,
    and a changed link has both ends touched, so no link leaves the records read. `records_for(ids)` gives the
    staging rows the clustering needs. A component whose record count fell (an erasure removes rows from every
    table naming a record) is clustered again too."""
    from customer_pipeline.warehouse import read_df

    tables = (CLUSTER_STATE, REVIEW_STATE, CLUSTERED_RECORDS, CLUSTERED_LINKS, CLUSTERED_DECISIONS, COMPONENT_SIZES,
              "gold.customer_xref")
    if not all(table_exists(con, t) for t in tables) or _state(con).get("cluster_salt") != salt:
        return None
    if HASH_COLUMN not in _columns(con, "staging.person_records"):
        return None
    # the xref and the clustering state must hold the same records (a hand-edited xref: cluster as before)
    mismatch = con.execute(f"""SELECT (SELECT count(*) FROM gold.customer_xref ANTI JOIN {CLUSTER_STATE} USING (record_id))
        + (SELECT count(*) FROM {CLUSTER_STATE} ANTI JOIN gold.customer_xref USING (record_id))""").fetchall()[0][0]
    if mismatch:
        return None
    _register_decisions(con, decisions, "_now_decisions")
    try:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _touched AS
            WITH rec AS (  -- one full join per snapshot: the rows either side lacks
                SELECT coalesce(n.record_id, o.record_id) AS record_id
                FROM (SELECT record_id, {HASH_COLUMN} FROM staging.person_records) AS n
                FULL JOIN {CLUSTERED_RECORDS} AS o ON o.record_id = n.record_id AND o.{HASH_COLUMN} = n.{HASH_COLUMN}
                WHERE n.record_id IS NULL OR o.record_id IS NULL),
            lk AS (
                SELECT coalesce(n.record_id_l, o.record_id_l) AS record_id_l,
                       coalesce(n.record_id_r, o.record_id_r) AS record_id_r
                FROM (SELECT record_id_l, record_id_r, {_LINK_HASH} AS h FROM identity.links) AS n
                FULL JOIN {CLUSTERED_LINKS} AS o
                    ON o.record_id_l = n.record_id_l AND o.record_id_r = n.record_id_r AND o.h = n.h
                WHERE n.record_id_l IS NULL OR o.record_id_l IS NULL),
            dc AS (
                (SELECT * FROM _now_decisions EXCEPT SELECT * FROM {CLUSTERED_DECISIONS})
                UNION ALL (SELECT * FROM {CLUSTERED_DECISIONS} EXCEPT SELECT * FROM _now_decisions)),
            shrunk AS (
                SELECT s.record_id FROM {CLUSTER_STATE} s JOIN (
                    SELECT fingerprint FROM (SELECT fingerprint, count(*) AS n FROM {CLUSTER_STATE} GROUP BY 1) c
                    JOIN {COMPONENT_SIZES} z USING (fingerprint) WHERE c.n <> z.records) USING (fingerprint))
            SELECT record_id FROM rec
            UNION SELECT record_id_l FROM lk UNION SELECT record_id_r FROM lk
            UNION SELECT record_id_l FROM dc UNION SELECT record_id_r FROM dc
            UNION SELECT record_id FROM shrunk""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _affected AS
            SELECT DISTINCT fingerprint FROM {CLUSTER_STATE} SEMI JOIN _touched USING (record_id)""")
        # records clustered again: the touched ones still present and every record of an affected component
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _reclustered AS
            SELECT record_id FROM {CLUSTER_STATE} SEMI JOIN _affected USING (fingerprint)
            UNION SELECT record_id FROM _touched""")
        affected = con.execute("SELECT fingerprint FROM _affected").df()
        record_ids = con.execute("SELECT record_id FROM _reclustered ORDER BY 1").df()
        present = read_df(con, f"""SELECT record_id, {HASH_COLUMN} FROM staging.person_records
            SEMI JOIN _reclustered USING (record_id) ORDER BY record_id""")
        sub_links = read_df(con, """SELECT * FROM identity.links WHERE record_id_l IN (SELECT record_id FROM _reclustered)
            ORDER BY record_id_l, record_id_r, link_type""")
        sub_dec = con.execute("""SELECT * FROM _now_decisions
            WHERE record_id_l IN (SELECT record_id FROM _reclustered)""").df() if decisions is not None else None
        components_before = int(con.execute(f"SELECT count(DISTINCT fingerprint) FROM {CLUSTER_STATE}").fetchall()[0][0])
    finally:
        for name in ("_now_decisions", "_touched", "_affected", "_reclustered"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    comp = components(present["record_id"], sub_links, sub_dec)
    fps = fingerprints(con, comp, present, sub_links, sub_dec, salt)
    comp = comp.merge(fps, on="component")
    if len(present):
        clusters, review = cluster_fn(present["record_id"], sub_links, sub_dec, records_for(present["record_id"]))
    else:
        from customer_pipeline.identity.clustering import REVIEW_COLUMNS

        clusters = pd.DataFrame({"record_id": pd.Series(dtype=object), "cluster_key": pd.Series(dtype=object),
                                 "match_probability": pd.Series(dtype=float)})
        review = pd.DataFrame({c: pd.Series(dtype=object) for c in REVIEW_COLUMNS})
    by_record = comp.set_index("record_id")["fingerprint"]
    clusters = clusters.sort_values("record_id", ignore_index=True)
    state = clusters.assign(fingerprint=clusters["record_id"].map(by_record).to_numpy())
    review_state = review.assign(fingerprint=review["record_id_l"].map(by_record).to_numpy())
    new_components = int(comp["component"].nunique())
    delta = ClusteringDelta(components_before - len(affected) + new_components, new_components, len(present))
    return TouchedClustering(clusters, review, state, review_state, affected, record_ids, delta)


def save_touched_clustering(con: duckdb.DuckDBPyConnection, result: TouchedClustering, decisions: pd.DataFrame | None,
                            salt: str) -> None:
    """Swap the affected components' state for the new one (inside the caller's transaction)."""
    con.register("_affected_fps", result.affected)
    con.register("_new_state", result.state)
    con.register("_new_review_state", result.review_state)
    try:
        for table in (CLUSTER_STATE, REVIEW_STATE):
            con.execute(f"DELETE FROM {table} WHERE fingerprint IN (SELECT fingerprint FROM _affected_fps)")
        # records gone since (their component is affected) and any row of a record clustered again
        con.execute(f"DELETE FROM {CLUSTER_STATE} WHERE record_id IN (SELECT record_id FROM _new_state)")
        con.execute(f"INSERT INTO {CLUSTER_STATE} BY NAME SELECT * FROM _new_state")
        con.execute(f"INSERT INTO {REVIEW_STATE} BY NAME SELECT * FROM _new_review_state")
    finally:
        for name in ("_affected_fps", "_new_state", "_new_review_state"):
            con.unregister(name)
    _save_snapshots(con, decisions, salt)
    _set_state(con, last_components=str(result.delta.components),
               last_components_clustered=str(result.delta.reclustered_components),
               last_records_clustered=str(result.delta.reclustered_records), last_clustering="touched")


def _save_snapshots(con: duckdb.DuckDBPyConnection, decisions: pd.DataFrame | None, salt: str) -> None:
    """What this clustering saw, for the next run's `cluster_touched`."""
    hashed = HASH_COLUMN if HASH_COLUMN in _columns(con, "staging.person_records") else f"0::UBIGINT AS {HASH_COLUMN}"
    con.execute(f"CREATE OR REPLACE TABLE {CLUSTERED_RECORDS} AS SELECT record_id, {hashed} FROM staging.person_records")
    con.execute(f"""CREATE OR REPLACE TABLE {CLUSTERED_LINKS} AS
        SELECT record_id_l, record_id_r, {_LINK_HASH} AS h FROM identity.links""")
    _register_decisions(con, decisions, "_saved_decisions")
    con.execute(f"CREATE OR REPLACE TABLE {CLUSTERED_DECISIONS} AS SELECT * FROM _saved_decisions")
    con.execute("DROP TABLE _saved_decisions")
    con.execute(f"""CREATE OR REPLACE TABLE {COMPONENT_SIZES} AS
        SELECT fingerprint, count(*) AS records FROM {CLUSTER_STATE} GROUP BY 1""")
    _set_state(con, cluster_salt=salt)


def save_clustering(con: duckdb.DuckDBPyConnection, state: pd.DataFrame, review_state: pd.DataFrame,
                    delta: ClusteringDelta, decisions: pd.DataFrame | None, salt: str) -> None:
    """Keep the clustering for the next run (inside the caller's transaction), with the snapshots
    `cluster_touched` compares the next run's records, links and decisions with."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.executemany(f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?)", [
        ("last_components", str(delta.components)), ("last_components_clustered", str(delta.reclustered_components)),
        ("last_records_clustered", str(delta.reclustered_records)), ("last_clustering", "components")])
    for table, frame in ((CLUSTER_STATE, state), (REVIEW_STATE, review_state)):
        con.register("_state", frame)
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _state")
        con.unregister("_state")
    _save_snapshots(con, decisions, salt)


# --- the matching frame, prepared once per record ---------------------------------------------------------

PREPARED_TABLE = "identity.prepared_records"
# the matching frame as Splink sees it (a query over the table, for `linking.scoring_inputs`)
PREPARED_VIEW = f"(SELECT * EXCLUDE ({HASH_COLUMN}) FROM {PREPARED_TABLE})"


def prepare_salt() -> str:
    """What `splink_model.prepare` depends on besides the record: its code and the nickname tables."""
    import nicknames

    from customer_pipeline.identity import splink_model

    digest = hashlib.sha256(Path(splink_model.__file__).read_bytes())
    digest.update(str(getattr(nicknames, "__version__", "")).encode())
    return digest.hexdigest()[:16]


def prepared_records(con: duckdb.DuckDBPyConnection, records: pd.DataFrame | str, *, arrow: bool = False,
                     fetch: bool = True):
    """`splink_model.prepare(records)`, preparing only the records new or changed since the last call
    (kept in `identity.prepared_records` with their input hash; everything again when the code changed).

    `records`: a frame, or a table of `con` (then only the new or changed records are read out of it).
    Returns a frame ordered by record id, or with `arrow` the same as a pyarrow Table (no pandas copy:
    Splink registers it as it is); with `fetch=False` nothing (the table is brought up to date only:
    `PREPARED_VIEW` reads it)."""
    from customer_pipeline.identity import splink_model as sm
    from customer_pipeline.warehouse import read_df

    salt = prepare_salt()
    state = _state(con)
    with _relation(con, records, "_current_prep") as rel:
        usable = (HASH_COLUMN in _columns(con, rel) and table_exists(con, PREPARED_TABLE)
                  and state.get("prepare_salt") == salt)
        if not usable:
            frame = read_df(con, f"SELECT * FROM {rel}") if isinstance(records, str) else records
            prepared = sm.prepare(frame)
            stored = prepared.assign(**{HASH_COLUMN: _hashes_for(prepared, frame)})
            con.register("_prepared", stored)
            con.execute(f"CREATE OR REPLACE TABLE {PREPARED_TABLE} AS SELECT * FROM _prepared")
            con.unregister("_prepared")
            _set_state(con, prepare_salt=salt)
            if not arrow and fetch:
                return prepared
        else:
            # one full join of ids and hashes: records not prepared in this version, prepared rows of no record
            uid = sm.UNIQUE_ID
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _prep_diff AS
                SELECT c.record_id AS input_id, c.{HASH_COLUMN} AS input_hash,
                       p.{uid} AS prepared_id, p.{HASH_COLUMN} AS prepared_hash
                FROM (SELECT record_id, {HASH_COLUMN} FROM {rel}) c
                FULL JOIN (SELECT {uid}, {HASH_COLUMN} FROM {PREPARED_TABLE}) p
                    ON p.{uid} = c.record_id AND p.{HASH_COLUMN} = c.{HASH_COLUMN}
                WHERE c.record_id IS NULL OR p.{uid} IS NULL""")
            try:
                con.execute(f"""DELETE FROM {PREPARED_TABLE} p WHERE EXISTS (SELECT 1 FROM _prep_diff d
                    WHERE d.prepared_id = p.{uid} AND d.prepared_hash = p.{HASH_COLUMN})""")
                part = read_df(con, f"""SELECT r.* FROM {rel} r SEMI JOIN _prep_diff d
                    ON d.input_id = r.record_id AND d.input_hash = r.{HASH_COLUMN}""")
            finally:
                con.execute("DROP TABLE IF EXISTS _prep_diff")
            if len(part):
                fresh = sm.prepare(part)
                fresh[HASH_COLUMN] = _hashes_for(fresh, part)
                con.register("_fresh_prep", fresh)
                con.execute(f"INSERT INTO {PREPARED_TABLE} BY NAME SELECT * FROM _fresh_prep")
                con.unregister("_fresh_prep")
    if not fetch:
        return None
    query = f"SELECT * EXCLUDE ({HASH_COLUMN}) FROM {PREPARED_TABLE} ORDER BY {sm.UNIQUE_ID}"
    return con.sql(query).to_arrow_table() if arrow else con.execute(query).df()


def _hashes_for(prepared: pd.DataFrame, records: pd.DataFrame):
    from customer_pipeline.identity import splink_model as sm

    if HASH_COLUMN not in records.columns:
        return 0
    return prepared[sm.UNIQUE_ID].map(records.set_index("record_id")[HASH_COLUMN]).to_numpy()


def _set_state(con: duckdb.DuckDBPyConnection, **values: str) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.executemany(f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?)", list(values.items()))
