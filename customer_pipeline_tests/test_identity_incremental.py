"""Issue 13: a new file is scored against the existing records, not the whole population again."""

import datetime as dt

import duckdb
import pytest

from customer_pipeline import run_gate
from customer_pipeline.cli import main
from customer_pipeline.defs.identity import settings
from customer_pipeline.identity import linking, model_store
from customer_pipeline.identity.clustering import cluster
from customer_pipeline.identity.households import build_households
from customer_pipeline.identity.survivorship import GOLDEN_COLUMNS, build_golden
from customer_pipeline.identity.splink_model import people_for_clustering, record_evidence
from customer_pipeline.ingest.formats import POS_LOYALTY
from customer_pipeline_tests.landing import csv_bytes, loyalty_row, write

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    return tmp_path


def _golden_state(wh) -> dict:
    with duckdb.connect(str(wh), read_only=True) as con:
        return dict(con.execute("SELECT key, value FROM meta.golden_state").fetchall())


def _state(wh) -> dict:
    with duckdb.connect(str(wh), read_only=True) as con:
        return dict(con.execute("SELECT key, value FROM identity.scoring_state").fetchall())


def test_new_file_is_scored_incrementally_and_matches_a_full_scoring(env):
    landing, wh = env / "landing", env / "w.duckdb"
    assert main(["sample", "--persons", "300", "--seed", "4", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    assert main(["run"]) == 0
    assert _state(wh)["last_mode"] == "full"
    with duckdb.connect(str(wh), read_only=True) as con:
        # someone already known signs up for a second card in another store
        known = con.execute("""SELECT first_name, last_name, email_corrected, r.record_id, strftime(birth_date, '%Y-%m-%d'),
            phone_e164, postcode, city, country FROM staging.person_records r
            JOIN gold.customer_xref x USING (record_id) WHERE r.source = 'shop' AND email_valid AND first_name IS NOT NULL
            AND last_name IS NOT NULL AND birth_date IS NOT NULL ORDER BY record_id LIMIT 1""").fetchall()[0]
    first, last, email, known_id, birth, phone, postcode, city, country = known
    again = loyalty_row("NEW1", first=first, last=last, email=email)
    again[2], again[7], again[8], again[10], again[11] = country or "DE", birth, phone or "", postcode or "", city or ""
    rows = [again,
            loyalty_row("NEW2", first="Quirin", last="Zwetschke", email="quirin.zwetschke@example.de"),
            loyalty_row("NEW3", first="Ottilie", last="Farnbauer", email="ottilie.f@example.de")]
    write(landing / "pos/loyalty_signups_S90_2026-11-02.csv", csv_bytes(POS_LOYALTY.columns, rows))
    assert main(["run"]) == 0
    state = _state(wh)
    assert (state["last_mode"], state["last_new_records"]) == ("incremental", "3")

    with duckdb.connect(str(wh), read_only=True) as con:
        records = con.execute("SELECT * FROM staging.person_records").df()
        stored = con.execute("SELECT record_id_l, record_id_r, match_weight FROM identity.links "
                             "WHERE link_type = 'splink'").df()
        xref = dict(con.execute("SELECT record_id, customer_id FROM gold.customer_xref").fetchall())
        version = model_store.latest(con)
    assert xref["pos|card:NEW1"] == xref[known_id]
    assert xref["pos|card:NEW2"] != xref["pos|card:NEW3"]
    # the same links as scoring everything again; weights differ only by the drift of the prior and the term
    # frequencies with three more records (on 600 records: up to a quarter point; FULL_RESCORE_GROWTH bounds it)
    full = linking.predict(records, version.model)
    key = lambda f: set(zip(f["record_id_l"], f["record_id_r"]))  # noqa: E731
    assert any("NEW1" in a or "NEW1" in b for a, b in key(stored))
    diff = key(stored) ^ key(full)
    near_floor = full[(full["match_weight"] - linking.DEFAULT_REVIEW_LOW_WEIGHT).abs() < 0.5]
    assert diff <= key(near_floor), sorted(diff)[:5]
    merged = stored.merge(full, on=["record_id_l", "record_id_r"])
    assert (merged["match_weight_x"] - merged["match_weight_y"]).abs().max() < 0.5

    # clustering only the changed components gives the partition and review queue of clustering everything
    assert int(state["last_records_clustered"]) < 0.2 * len(records)
    with duckdb.connect(str(wh), read_only=True) as con:
        all_links = con.execute("SELECT * FROM identity.links").df()
        queue = set(con.execute("SELECT record_id_l, record_id_r, reason FROM identity.review_queue").fetchall())
    clusters, review = cluster(records["record_id"], all_links, settings.accept_weight(), settings.review_low_weight(),
                               None, evidence=record_evidence(records),
                               name_only_accept_weight=settings.name_only_accept_weight(),
                               people=people_for_clustering(records))
    by_customer = {}
    for record_id, customer in xref.items():
        by_customer.setdefault(customer, set()).add(record_id)
    assert {frozenset(g) for _, g in clusters.groupby("cluster_key")["record_id"]} == {
        frozenset(g) for g in by_customer.values()}
    assert set(zip(review["record_id_l"], review["record_id_r"], review["reason"])) == queue

    # golden rows built again only for the customers whose records changed; the table equals building every
    # row (updated_at aside: a kept row keeps the time it last changed), households and their ids too
    with duckdb.connect(str(wh), read_only=True) as con:
        golden = _golden_state(wh)
        xref_rows = con.execute("SELECT * FROM gold.customer_xref").df()
        stored_ids = con.execute("SELECT customer_id, household_id FROM gold.golden_customers").df()
        stored_hh = con.execute("SELECT * FROM gold.households").df()
    customers = xref_rows["customer_id"].nunique()
    assert golden["last_mode"] == "incremental" and 3 <= int(golden["last_rebuilt"]) <= 0.05 * customers, golden
    assert int(golden["last_kept"]) + int(golden["last_rebuilt"]) == customers
    full = build_golden(records, xref_rows, dt.datetime(2026, 11, 2))
    columns = [c for c in GOLDEN_COLUMNS if c != "updated_at"]
    with duckdb.connect(str(wh), read_only=True) as con:
        types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = "
                                 "'golden_customers' AND schema_name = 'gold'").fetchall())
        con.register("_full", full)
        typed = ", ".join(f"CAST({c} AS {types[c]}) AS {c}" for c in columns)
        differ = con.execute(f"""SELECT count(*) FROM (
            (SELECT {', '.join(columns)} FROM gold.golden_customers EXCEPT SELECT {typed} FROM _full)
            UNION ALL (SELECT {typed} FROM _full EXCEPT SELECT {', '.join(columns)} FROM gold.golden_customers))""").fetchone()[0]
    assert len(full) == customers and differ == 0
    again_hh = build_households(full, records, xref_rows, dt.datetime(2026, 11, 2), stored_ids, stored_hh)
    assert dict(zip(again_hh.customers["customer_id"], again_hh.customers["household_id"])) == dict(
        zip(stored_ids["customer_id"], stored_ids["household_id"]))
    assert len(again_hh.history) == 0

    before = (_state(wh), _golden_state(wh))
    assert main(["run"]) == 0  # nothing new: the later stages are not started (runner.py), their state stays
    assert (_state(wh), _golden_state(wh)) == before
    # asked to run on the same data (the gate forgotten): nothing scored, nothing clustered, no golden row built
    with duckdb.connect(str(wh)) as con:
        run_gate.forget(con)
    assert main(["run"]) == 0
    assert (_state(wh)["last_mode"], _state(wh)["last_new_records"]) == ("incremental", "0")
    assert _state(wh)["last_records_clustered"] == "0"
    assert (_golden_state(wh)["last_rebuilt"], _golden_state(wh)["last_kept"]) == ("0", str(customers))


def test_clustering_what_changed_equals_clustering_everything(env):
    """Issue 13: `cluster_touched` reads only the components whose records, links or decisions changed
    (snapshots of the last clustering, compared in SQL) and gives the partition and review pairs of clustering
    every record: after an erasure (every row naming a customer's records deleted, as erasure/remove.py does,
    so only the component's size tells), a new review decision and a new link between two unchanged records."""
    from customer_pipeline.identity import incremental, store
    from customer_pipeline.warehouse import read_df

    landing, wh = env / "landing", env / "w.duckdb"
    assert main(["sample", "--persons", "300", "--seed", "5", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    assert main(["run"]) == 0
    weights = (settings.accept_weight(), settings.review_low_weight(), settings.name_only_accept_weight())

    def cluster_part(ids, links_part, decisions_part, records_part):
        return cluster(ids, links_part, weights[0], weights[1], decisions_part, evidence=record_evidence(records_part),
                       name_only_accept_weight=weights[2], people=people_for_clustering(records_part))

    assert _state(wh)["last_clustering"] == "components"
    with duckdb.connect(str(wh)) as con:
        sizes = con.execute("SELECT customer_id, list(record_id ORDER BY record_id) FROM gold.customer_xref "
                            "GROUP BY 1 ORDER BY len(list(record_id)) DESC, 1").fetchall()
        # erased: a customer whose component holds another customer too (its records are clustered again)
        erased, neighbours = con.execute("""
            WITH c AS (SELECT fingerprint, cluster_key, list(record_id ORDER BY record_id) AS ids
                       FROM identity.cluster_state GROUP BY ALL),
                 shared AS (SELECT fingerprint FROM c GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1)
            SELECT (SELECT ids FROM c SEMI JOIN shared USING (fingerprint) ORDER BY cluster_key LIMIT 1),
                   (SELECT flatten(list(ids ORDER BY cluster_key))[1:] FROM c SEMI JOIN shared USING (fingerprint))
            """).fetchall()[0]
        neighbours = [r for r in neighbours if r not in erased]
        decided = next(ids for _, ids in sizes if len(ids) >= 2 and not set(ids) & (set(erased) | set(neighbours)))
        singles = [ids[0] for _, ids in sizes if len(ids) == 1]
        con.register("_gone", __import__("pandas").DataFrame({"v": erased}))
        for table in ("staging.person_records", "identity.cluster_state", "identity.clustered_records", "gold.customer_xref"):
            con.execute(f"DELETE FROM {table} WHERE record_id IN (SELECT v FROM _gone)")
        for table in ("identity.links", "identity.review_state", "identity.clustered_links"):
            con.execute(f"DELETE FROM {table} WHERE record_id_l IN (SELECT v FROM _gone) OR record_id_r IN (SELECT v FROM _gone)")
        con.execute("INSERT INTO identity.review_decisions VALUES (?, ?, 'no_match', 'test', now()::TIMESTAMP)",
                    [min(decided[:2]), max(decided[:2])])
        a, b = sorted(singles[:2])
        con.execute("INSERT INTO identity.links VALUES (?, ?, 'inf'::DOUBLE, 1.0, 'deterministic:test', NULL)", [a, b])
        decisions = store.collect_decisions(con)
        staged_with = dict(con.execute("SELECT key, value FROM meta.staging_state").fetchall()).get("standardiser_version")
        salt = incremental.clustering_salt(*weights, staged_with)

        def records_for(ids):
            con.register("_ids", __import__("pandas").DataFrame({"record_id": list(ids)}))
            return read_df(con, "SELECT * FROM staging.person_records SEMI JOIN _ids USING (record_id)")

        touched = incremental.cluster_touched(con, decisions, salt, cluster_part, records_for)
        con.register("_affected_fps", touched.affected)
        kept = con.execute("SELECT record_id, cluster_key FROM identity.cluster_state "
                           "WHERE fingerprint NOT IN (SELECT fingerprint FROM _affected_fps)").df()
        kept_review = set(con.execute("SELECT record_id_l, record_id_r, reason FROM identity.review_state "
                                      "WHERE fingerprint NOT IN (SELECT fingerprint FROM _affected_fps)").fetchall())
        records = read_df(con, "SELECT * FROM staging.person_records")
        all_links = read_df(con, "SELECT * FROM identity.links ORDER BY record_id_l, record_id_r, link_type")
    assert touched is not None and 0 < touched.delta.reclustered_records < 0.2 * len(records)
    clusters, review = cluster_part(records["record_id"], all_links, decisions, records)
    partition = lambda f: {frozenset(g) for _, g in f.groupby("cluster_key")["record_id"]}  # noqa: E731
    combined = __import__("pandas").concat([kept, touched.clusters[["record_id", "cluster_key"]]])
    assert len(combined) == len(records) and partition(combined) == partition(clusters)
    assert not set(erased) & set(combined["record_id"]) and neighbours
    assert set(neighbours) <= set(touched.clusters["record_id"])  # known only by the component's size
    together = {frozenset(g) for g in partition(combined) if a in g}
    assert together == {g for g in partition(clusters) if a in g} and any(b in g for g in together)
    assert kept_review | set(zip(touched.review["record_id_l"], touched.review["record_id_r"], touched.review["reason"])) == \
        set(zip(review["record_id_l"], review["record_id_r"], review["reason"]))
