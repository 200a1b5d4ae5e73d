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


def _pos_lines(con) -> pd.DataFrame:
    return con.execute("SELECT * FROM staging.pos_transactions ORDER BY ALL").df()


def test_receipt_lines_from_new_files_only_and_the_whole_table_when_a_file_was_replaced(con, tmp_path):
    """Issue 13: `staging.pos_transactions` builds again only the receipts of new file versions (a re-delivered
    line in a later file wins, as in a full build); a corrected file that replaces an earlier one rebuilds it all."""
    from customer_pipeline.ingest.files import load_csv_family
    from customer_pipeline.ingest.formats import POS_TRANSACTIONS
    from customer_pipeline.staging import unify
    from customer_pipeline_tests.landing import csv_bytes, transaction_row, write

    landing = tmp_path / "landing"
    day1 = landing / "pos/transactions_S01_2026-10-01.csv"
    write(day1, csv_bytes(POS_TRANSACTIONS.columns, [transaction_row("R1"), transaction_row("R1", "2"),
                                                     transaction_row("R2", card="")]))
    load_csv_family(con, landing, POS_TRANSACTIONS, "run-1")
    assert unify.build_pos_transactions(con) == "full"
    assert unify.build_pos_transactions(con) == "incremental: 0 receipts built again"

    # the next day: a new receipt and line 2 of R1 delivered again with another quantity
    later = transaction_row("R1", "2")
    later[8] = "5"
    write(landing / "pos/transactions_S01_2026-10-02.csv",
          csv_bytes(POS_TRANSACTIONS.columns, [transaction_row("R3"), later]))
    load_csv_family(con, landing, POS_TRANSACTIONS, "run-2")
    assert unify.build_pos_transactions(con) == "incremental: 2 receipts built again"
    incremental_lines = _pos_lines(con)
    assert unify.build_pos_transactions(con, full=True) == "full"
    pd.testing.assert_frame_equal(incremental_lines, _pos_lines(con))
    assert incremental_lines.set_index(["receipt_id", "line_no"]).loc[("R1", 2), "qty"] == 5
    assert len(incremental_lines) == 4

    # a corrected day-1 file replaces the first version: its rows leave raw, so the whole table is built again
    write(day1, csv_bytes(POS_TRANSACTIONS.columns, [transaction_row("R1")]))
    load_csv_family(con, landing, POS_TRANSACTIONS, "run-3")
    assert unify.build_pos_transactions(con) == "full"
    assert sorted(_pos_lines(con)["receipt_id"]) == ["R1", "R1", "R3"]
