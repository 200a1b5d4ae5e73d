"""Issue 13: staging standardises only new and changed source records; removed ones leave staging."""

import datetime as dt

import pandas as pd
import pytest

from customer_pipeline import warehouse
from customer_pipeline.staging import incremental
from customer_pipeline.standardize.person_records import INPUT_COLUMNS, standardize_person_records

NOW = dt.datetime(2026, 11, 1)


def _source(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        row = {c: None for c in INPUT_COLUMNS}
        row.update(source="pos", default_country="DE", record_created_at_raw="2026-10-01T10:00:00")
        row.update(r)
        out.append(row)
    return pd.DataFrame(out).astype(object)


BASE = [
    {"source_key": "card:1", "first_name_raw": "anna", "last_name_raw": "SCHMIDT", "email_raw": "anna@example.de"},
    {"source_key": "card:2", "first_name_raw": "Bernd", "last_name_raw": "Meier", "phone_raw": "030 1234567"},
    {"source_key": "card:3", "first_name_raw": "Clara", "last_name_raw": "Vogel"},
]


@pytest.fixture
def con(tmp_path):
    with warehouse.connect(tmp_path / "w.duckdb") as c:
        yield c


def _staged(con) -> pd.DataFrame:
    return con.execute("SELECT * FROM staging.person_records ORDER BY record_id").df()


def test_first_run_is_full_then_nothing_new_standardises_nothing(con):
    first = incremental.stage(con, _source(BASE), None, NOW)
    assert (first.mode, first.standardised, first.reason) == ("full", 3, "no staging table yet")
    before = _staged(con)
    second = incremental.stage(con, _source(BASE), None, NOW)
    assert (second.mode, second.standardised, second.reused, second.removed) == ("incremental", 0, 3, 0)
    pd.testing.assert_frame_equal(_staged(con), before)


def test_new_changed_and_removed_records(con):
    incremental.stage(con, _source(BASE), None, NOW)
    rows = [dict(BASE[0], email_raw="anna.schmidt@example.de"), BASE[1],
            {"source_key": "card:4", "first_name_raw": "Dora", "last_name_raw": "Koch", "email_raw": "x@y"}]
    delta = incremental.stage(con, _source(rows), None, NOW)
    assert (delta.mode, delta.standardised, delta.reused, delta.removed) == ("incremental", 2, 1, 1)
    assert delta.changed_ids == ["pos|card:1", "pos|card:4"]
    staged = _staged(con).set_index("record_id")
    assert list(staged.index) == ["pos|card:1", "pos|card:2", "pos|card:4"]
    assert staged.loc["pos|card:1", "email"] == "anna.schmidt@example.de"
    assert not staged.loc["pos|card:4", "email_valid"]
    # the incremental result equals standardising everything from scratch
    full = standardize_person_records(_source(rows), None, NOW)
    assert staged["first_name"].tolist() == full["first_name"].tolist()
    assert staged["email_corrected"].fillna("").tolist() == full["email_corrected"].fillna("").tolist()


def test_null_only_columns_take_text_later(con):
    incremental.stage(con, _source(BASE), None, NOW)  # opt_out_at_raw etc. all null in the first run
    rows = BASE + [{"source_key": "card:9", "first_name_raw": "Emil", "last_name_raw": "Roth",
                    "opt_out_at_raw": "2026-10-05", "non_text_fields_raw": "first_name"}]
    delta = incremental.stage(con, _source(rows), None, NOW)
    assert delta.standardised == 1
    assert _staged(con).set_index("record_id").loc["pos|card:9", "opt_out_at_raw"] == "2026-10-05"


def test_email_events_or_new_code_restandardise_everything(con, monkeypatch):
    incremental.stage(con, _source(BASE), None, NOW)
    events = pd.DataFrame({"email": ["anna@example.de"], "kind": ["bounce"],
                           "occurred_at": [pd.Timestamp("2026-10-20")]})
    delta = incremental.stage(con, _source(BASE), events, NOW)
    assert (delta.mode, delta.reason, delta.standardised) == ("full", "email events changed", 3)
    assert bool(_staged(con).set_index("record_id").loc["pos|card:1", "email_suppressed"])
    monkeypatch.setattr(incremental, "standardiser_version", lambda: "another")
    assert incremental.stage(con, _source(BASE), events, NOW).reason == "standardiser code changed"
    assert incremental.stage(con, _source(BASE), events, NOW, force_full=True).reason == "full run asked for"
