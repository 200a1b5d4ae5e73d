"""The run gate: what makes the later stages run again, and what does not (customer_pipeline/run_gate.py)."""

import datetime as dt

import pytest

from customer_pipeline import run_gate
from customer_pipeline.warehouse import connect

DAY = dt.date(2026, 12, 4)


@pytest.fixture()
def con(tmp_path):
    with connect(tmp_path / "w.duckdb") as c:
        c.execute("CREATE TABLE raw.app_events (message_id VARCHAR)")
        c.execute("INSERT INTO raw.app_events VALUES ('m1'), ('m2')")
        c.execute("CREATE TABLE meta.loaded_files (location VARCHAR, content_hash VARCHAR)")
        c.execute("INSERT INTO meta.loaded_files VALUES ('app_events/a.jsonl', 'h1')")
        c.execute("CREATE TABLE meta.watermarks (source VARCHAR, table_name VARCHAR, watermark TIMESTAMP, "
                  "updated_at TIMESTAMP)")
        c.execute("INSERT INTO meta.watermarks VALUES ('shop', 'customers', '2026-12-01 10:00', now())")
        c.execute("CREATE TABLE meta.extract_log (location VARCHAR, rows_loaded BIGINT, rows_quarantined BIGINT, "
                  "loaded_at TIMESTAMP)")
        c.execute("INSERT INTO meta.extract_log VALUES ('shop:customers', 5, 0, now())")
        c.execute("CREATE TABLE identity.review_queue (record_id_l VARCHAR, record_id_r VARCHAR, decision VARCHAR)")
        c.execute("INSERT INTO identity.review_queue VALUES ('a', 'b', NULL)")
        yield c


def _recorded(con) -> dict:
    parts = run_gate.fingerprint(con, DAY)
    run_gate.record(con, parts, "run-1")
    return parts


def test_nothing_recorded_means_everything_changed(con):
    assert run_gate.changed_parts(con, run_gate.fingerprint(con, DAY)) == [
        "raw", "review", "model", "settings", "code", "date"]


def test_same_data_same_day_is_unchanged_and_an_extract_that_found_nothing_does_not_count(con):
    _recorded(con)
    # an extract that found nothing new rewrites the watermark's updated_at only
    con.execute("UPDATE meta.watermarks SET updated_at = now() + INTERVAL 1 HOUR")
    con.execute("INSERT INTO meta.extract_log VALUES ('shop:customers', 0, 0, now())")
    assert run_gate.changed_parts(con, run_gate.fingerprint(con, DAY)) == []


@pytest.mark.parametrize("change, part", [
    ("INSERT INTO raw.app_events VALUES ('m3')", "raw"),
    ("DELETE FROM raw.app_events WHERE message_id = 'm1'", "raw"),  # an erasure, a replaced file
    ("UPDATE meta.loaded_files SET content_hash = 'h2'", "raw"),  # a corrected file, same row count
    ("UPDATE meta.watermarks SET watermark = '2026-12-02 10:00'", "raw"),
    # a shop row changed without moving the watermark (read again in the overlap), same row count
    ("INSERT INTO meta.extract_log VALUES ('shop:customers', 1, 0, now())", "raw"),
    ("UPDATE identity.review_queue SET decision = 'match'", "review"),
    ("CREATE TABLE identity.splink_models (version INTEGER, trained_at TIMESTAMP)", "model"),
])
def test_each_input_that_changes_opens_the_gate(con, change, part):
    _recorded(con)
    con.execute(change)
    assert run_gate.changed_parts(con, run_gate.fingerprint(con, DAY)) == [part]


def test_a_setting_a_new_day_and_a_forgotten_run_open_it(con, monkeypatch):
    _recorded(con)
    monkeypatch.setenv("CUSTOMER_PIPELINE_ACCEPT_WEIGHT", "9.5")
    assert run_gate.changed_parts(con, run_gate.fingerprint(con, DAY + dt.timedelta(days=1))) == ["settings", "date"]
    monkeypatch.delenv("CUSTOMER_PIPELINE_ACCEPT_WEIGHT")
    assert run_gate.changed_parts(con, run_gate.fingerprint(con, DAY)) == []
    run_gate.forget(con)
    assert len(run_gate.changed_parts(con, run_gate.fingerprint(con, DAY))) == 6


def test_the_gate_keeps_no_personal_data(con):
    con.execute("INSERT INTO raw.app_events VALUES ('anna@example.com')")
    _recorded(con)
    stored = con.execute(f"SELECT * FROM {run_gate.TABLE}").fetchall()
    assert "anna" not in repr(stored)
