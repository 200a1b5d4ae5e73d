"""Plain-function tests of the delivered-format parsers."""

import gzip

from customer_pipeline.ingest.formats import CALL_CENTER, POS_LOYALTY, POS_TRANSACTIONS
from customer_pipeline.ingest.parsing import parse_csv, parse_jsonl, parse_timestamp
from customer_pipeline_tests.landing import app_event, contact_row, csv_bytes, loyalty_row, transaction_row


def test_csv_with_bom_and_quoted_newlines_parses():
    data = csv_bytes(CALL_CENTER.columns, [contact_row(), contact_row("K2")], bom=True)
    result = parse_csv(data, CALL_CENTER)
    assert result.file_error is None and not result.rejects
    assert [r[0] for r in result.rows] == ["K1", "K2"]
    assert result.rows[0][-1] == "called about order,\nwants refund"
    # the record ref is the line a record starts on (header = line 1, first record spans lines 2-3)
    assert result.refs == ["2", "4"]


def test_csv_columns_in_any_order_map_to_contract_order():
    header = list(reversed(POS_LOYALTY.columns))
    data = csv_bytes(header, [list(reversed(loyalty_row()))])
    result = parse_csv(data, POS_LOYALTY)
    assert result.rows[0][0] == "L100" and result.rows[0][POS_LOYALTY.columns.index("city")] == "Berlin"


def test_blank_values_become_null():
    row = loyalty_row(email="")
    result = parse_csv(csv_bytes(POS_LOYALTY.columns, [row]), POS_LOYALTY)
    assert result.rows[0][POS_LOYALTY.columns.index("email")] is None


def test_wrong_column_count_is_rejected_with_reason():
    rows = [loyalty_row(), loyalty_row("L2")[:-2], loyalty_row("L3") + ["extra"]]
    result = parse_csv(csv_bytes(POS_LOYALTY.columns, rows), POS_LOYALTY)
    assert [r[0] for r in result.rows] == ["L100"]
    assert [r.record_ref for r in result.rejects] == ["3", "4"]
    assert "wrong column count: 11 instead of 13" in result.rejects[0].reason
    assert result.rows_read == 3


def test_wrong_types_and_missing_keys_are_rejected():
    rows = [transaction_row(), transaction_row(line="two"), transaction_row(receipt=""),
            transaction_row("R9")[:3] + ["yesterday"] + transaction_row("R9")[4:]]
    result = parse_csv(csv_bytes(POS_TRANSACTIONS.columns, rows), POS_TRANSACTIONS)
    reasons = [r.reason for r in result.rejects]
    assert len(result.rows) == 1
    assert "not an integer" in reasons[0]
    assert "required field 'receipt_id' is blank" in reasons[1]
    assert "not an ISO 8601 timestamp" in reasons[2]


def test_invalid_utf8_record_is_rejected_others_kept():
    good = csv_bytes(POS_LOYALTY.columns, [loyalty_row()])
    bad_line = "L2,S01,DE,2026-10-01T10:00:00,M\xfcller".encode("latin-1") + b",X,M,,,,,,\r\n"
    result = parse_csv(good + bad_line, POS_LOYALTY)
    assert len(result.rows) == 1
    assert result.rejects[0].reason == "invalid UTF-8 bytes in the record"
    assert "\\xfc" in result.rejects[0].raw_record


def test_foreign_header_and_binary_files_are_file_errors():
    foreign = parse_csv(b"id,name\n1,x\n", POS_LOYALTY)
    assert foreign.file_error.startswith("foreign header for pos_loyalty_signups")
    binary = parse_csv(b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", POS_LOYALTY)
    assert binary.file_error == "binary content: NUL bytes in the file"
    assert parse_csv(b"", POS_LOYALTY).file_error == "empty file: no header row"


def test_jsonl_rejects_invalid_json_and_missing_keys():
    lines = [
        app_event("m1", traits={"email": "a@b.de"}),
        '{"type": "track", "anonymousId": "d", "timestamp": "2026-10-03T12:00:00Z"}',
        "{not json",
        app_event("m3", "teleport"),
        "",
        app_event("m4", "track", user=7),
    ]
    result = parse_jsonl("\n".join(lines).encode(), gzipped=False)
    assert [r[0] for r in result.rows] == ["m1", "m4"]
    assert result.rows[1][3] == "7"  # numeric userId kept as text
    reasons = {r.record_ref: r.reason for r in result.rejects}
    assert "messageId" in reasons["2"] and reasons["3"].startswith("invalid JSON") and "type" in reasons["4"]
    assert result.rows_read == 5  # the blank line is not a record


def test_gzip_and_corrupt_gzip():
    ok = parse_jsonl(gzip.compress(app_event("m1").encode()), gzipped=True)
    assert len(ok.rows) == 1
    bad = parse_jsonl(b"this is not gzip", gzipped=True)
    assert bad.file_error.startswith("corrupt gzip file")


def test_parse_timestamp_offsets_to_utc():
    assert str(parse_timestamp("2026-10-01T10:05:00+02:00")) == "2026-10-01 08:05:00"
    assert str(parse_timestamp("2026-10-01T10:05:00")) == "2026-10-01 10:05:00"
    assert str(parse_timestamp("2026-10-01T10:05:00Z")) == "2026-10-01 10:05:00"
    assert parse_timestamp("01.10.2026") is None and parse_timestamp("  ") is None
