"""Whole-graph runs through the CLI on a small generated sample: gates, review decisions, stable ids."""

import sqlite3

import duckdb
import pytest

from customer_pipeline.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_landing(tmp_path_factory):
    landing = tmp_path_factory.mktemp("sample") / "landing"
    # seed 12 leaves pairs of different customers on the review queue (9 of them) to decide on
    assert main(["sample", "--persons", "400", "--seed", "12", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    return landing


@pytest.fixture
def env(tmp_path, monkeypatch, sample_landing):
    import shutil

    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(landing))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    return landing, tmp_path / "w.duckdb"


def _query(path, sql):
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_failed_blocking_check_holds_back_downstream_and_run_exits_non_zero(env, capsys):
    landing, wh = env
    with sqlite3.connect(landing / "shop.sqlite") as db:
        db.execute("INSERT INTO email_events VALUES (999999, 'x@example.com', 'spam', '2026-10-30 10:00:00')")
    assert main(["run"]) == 1
    captured = capsys.readouterr()
    assert "blocking check failed: raw/shop_email_events:" in captured.err
    assert "held back (not materialised this run):" in captured.out and "gold/golden_customers" in captured.out
    tables = {r[0] for r in _query(wh, "SELECT table_schema || '.' || table_name FROM information_schema.tables")}
    assert "raw.shop_email_events" in tables
    assert "staging.person_records" not in tables and "gold.golden_customers" not in tables


def test_reruns_keep_ids_and_honour_review_decisions(env):
    _, wh = env
    assert main(["run"]) == 0
    first = dict(_query(wh, "SELECT record_id, customer_id FROM gold.customer_xref"))
    assert len(first) == _query(wh, "SELECT count(*) FROM staging.person_records")[0][0]
    customers = _query(wh, "SELECT count(*), count(DISTINCT customer_id) FROM gold.golden_customers")[0]
    assert customers[0] == customers[1] == len(set(first.values()))

    # same data again: no id changes, no history
    assert main(["run"]) == 0
    assert dict(_query(wh, "SELECT record_id, customer_id FROM gold.customer_xref")) == first
    assert _query(wh, "SELECT count(*) FROM gold.customer_id_history") == [(0,)]

    # a reviewer decides: one queued pair is the same person, another pair (now together) is not
    # (a pair the sample's truth says is one person, as a careful reviewer would confirm)
    landing = env[0]
    queue = _query(wh, f"""SELECT q.record_id_l, q.record_id_r FROM identity.review_queue q
        JOIN read_csv('{landing / "truth.csv"}', all_varchar = true) tl ON tl.source || '|' || tl.source_key = q.record_id_l
        JOIN read_csv('{landing / "truth.csv"}', all_varchar = true) tr ON tr.source || '|' || tr.source_key = q.record_id_r
        WHERE NOT q.same_cluster AND q.reason = 'uncertain' AND tl.person_id = tr.person_id
        ORDER BY q.match_weight DESC, q.record_id_l LIMIT 1""")
    assert queue, "the sample should leave something to review"
    left, right = queue[0]
    assert first[left] != first[right]
    with duckdb.connect(str(wh)) as con:
        con.execute("UPDATE identity.review_queue SET decision = 'match', decided_by = 'test' "
                    "WHERE record_id_l = ? AND record_id_r = ?", [left, right])
    assert main(["run"]) == 0
    after = dict(_query(wh, "SELECT record_id, customer_id FROM gold.customer_xref"))
    assert after[left] == after[right]
    survivor = after[left]
    assert survivor in (first[left], first[right])
    merged_away = first[right] if survivor == first[left] else first[left]
    assert _query(wh, "SELECT old_id, new_id, reason FROM gold.customer_id_history") == [(merged_away, survivor, "merge")]
    # everybody else keeps their id
    unchanged = [r for r in first if first[r] not in (first[left], first[right])]
    assert all(after[r] == first[r] for r in unchanged)
    # the decision survives the rebuild of the queue and still holds on the next run
    assert _query(wh, "SELECT decision FROM identity.review_decisions") == [("match",)]
    assert main(["run"]) == 0
    again = dict(_query(wh, "SELECT record_id, customer_id FROM gold.customer_xref"))
    assert again == after


def test_a_run_with_nothing_new_starts_no_later_stage_and_a_failed_one_is_followed_by_a_complete_one(
        env, monkeypatch, capsys):
    _, wh = env
    assert main(["run"]) == 0
    built = _query(wh, "SELECT count(*), max(updated_at) FROM gold.golden_customers")
    capsys.readouterr()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "later stages: not started, nothing they read changed" in out
    assert "gold__source_freshness" in out and "staging__person_records" not in out
    assert _query(wh, "SELECT count(*), max(updated_at) FROM gold.golden_customers") == built
    # a setting that is not a number: one clear line before anything runs
    monkeypatch.setenv("CUSTOMER_PIPELINE_ACCEPT_WEIGHT", "not-a-number")
    assert main(["run"]) == 2
    assert "CUSTOMER_PIPELINE_ACCEPT_WEIGHT is not a number" in capsys.readouterr().err
    monkeypatch.delenv("CUSTOMER_PIPELINE_ACCEPT_WEIGHT")
    # a later step fails (a pinned model file that is not there): the next run, the setting put back, runs
    # every later stage again although nothing it reads differs from the last complete run
    monkeypatch.setenv("CUSTOMER_PIPELINE_MODEL_PATH", str(wh.parent / "missing-model.json"))
    assert main(["run"]) == 1
    assert "step identity__links failed" in capsys.readouterr().err
    monkeypatch.delenv("CUSTOMER_PIPELINE_MODEL_PATH")
    capsys.readouterr()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "later stages: all of them (changed since their last complete run: " in out
    # the model the first run trained is used, not trained or reloaded by its own step again
    assert "identity/splink_model: not run, the warehouse has its model" in out
    assert "identity__splink_model" not in out and "held back" not in out
    assert _query(wh, "SELECT count(*) FROM identity.splink_models") == [(1,)]
    assert main(["run"]) == 0
    assert "later stages: not started" in capsys.readouterr().out
