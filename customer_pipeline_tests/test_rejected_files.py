"""Issue 11, defect 3: a file rejected whole counts the records it held, and losing them blocks the run."""

import gzip
import json

import dagster as dg
import duckdb
import pandas as pd
import pytest

from customer_pipeline.defs.sources import checks
from customer_pipeline.ingest.formats import POS_LOYALTY
from customer_pipeline.ingest.parsing import count_records, parse_csv
from customer_pipeline.quality import report
from customer_pipeline_tests.landing import app_event, csv_bytes, loyalty_row, write
from customer_pipeline_tests.test_raw_assets import RAW_ASSETS, RAW_CHECKS, env  # noqa: F401 (fixture)

LOSS_CHECKS = [checks.pos_loyalty_rows_lost, checks.pos_transactions_rows_lost,
               checks.call_center_rows_lost, checks.app_events_rows_lost]


def _events(n: int) -> bytes:
    return "".join(app_event(f"big-{i}", "track", event="Tap") + "\n" for i in range(n)).encode()


def _signups(n: int, header=POS_LOYALTY.columns) -> bytes:
    return csv_bytes(header, [loyalty_row(f"R{i}", email=f"r{i}@example.de") for i in range(n)])


def test_count_records_of_rejected_files():
    whole = gzip.compress(_events(2_000))
    truncated = count_records(whole[: len(whole) // 2], "app_events/events_2026-10-03T14.jsonl.gz")
    assert 0 < truncated < 2_000  # the events decoded before the break
    assert count_records(whole, "app_events/x.jsonl.gz") == 2_000
    renamed = _signups(500, ("card_number",) + POS_LOYALTY.columns[1:])
    assert count_records(renamed, "pos/loyalty_signups_S09_2026-10-01.csv") == 500
    assert count_records(b"\x00" + _signups(40), "pos/x.csv") == 40


def test_nul_after_the_first_64_kib_rejects_its_record_not_silently_stored():
    rows = [loyalty_row(f"N{i}", email=f"n{i}@example.de") for i in range(2_000)]
    rows[1_500][4] = "Ann\x00a"
    data = csv_bytes(POS_LOYALTY.columns, rows)
    assert data.index(b"\x00") > 65_536
    parsed = parse_csv(data, POS_LOYALTY)
    assert len(parsed.rows) == 1_999 and [r.reason for r in parsed.rejects] == ["NUL byte in the record"]
    assert all("\x00" not in (v or "") for row in parsed.rows for v in row)


def test_rejected_files_count_their_rows_report_them_and_block(env):  # noqa: F811
    landing, wh, resources = env
    write(landing / "pos/loyalty_signups_S09_2026-10-01.csv",
          _signups(500, ("card_number",) + POS_LOYALTY.columns[1:]))          # a renamed column
    whole = gzip.compress(_events(2_000))
    write(landing / "app_events/events_2026-10-03T14.jsonl.gz", whole[: len(whole) // 2])  # truncated gzip
    write(landing / "call_center/contacts_2026-10-04.csv", b"\x00junk\n" + b"a,b\n" * 30)  # early NUL: binary
    result = dg.materialize(RAW_ASSETS + RAW_CHECKS + LOSS_CHECKS, resources=resources, raise_on_error=False)

    with duckdb.connect(str(wh), read_only=True) as con:
        held = dict(con.execute("SELECT location, rows_read FROM meta.loaded_files WHERE file_error IS NOT NULL").fetchall())
        people, rejected, raw_counts = report.load_inputs(con, ["raw.pos_loyalty_signups", "raw.app_events",
                                                                "raw.call_center_contacts"])
    assert held["pos/loyalty_signups_S09_2026-10-01.csv"] == 500
    assert 0 < held["app_events/events_2026-10-03T14.jsonl.gz"] < 2_000
    assert held["call_center/contacts_2026-10-04.csv"] == 30

    evaluations = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    # the books still balance: every row read is stored or quarantined
    assert all(e.passed for (_, name), e in evaluations.items() if name == checks.ROWS_ACCOUNTED_FOR)
    for asset in ("raw/pos_loyalty_signups", "raw/app_events", "raw/call_center_contacts"):
        lost = evaluations[(asset, checks.ROWS_LOST_WITHIN_THRESHOLD)]
        assert not lost.passed and lost.severity == dg.AssetCheckSeverity.ERROR
    assert "lost 500 of 500 rows" in evaluations[("raw/pos_loyalty_signups", checks.ROWS_LOST_WITHIN_THRESHOLD)].metadata["details"].value
    assert evaluations[("raw/pos_transactions", checks.ROWS_LOST_WITHIN_THRESHOLD)].passed

    metrics, markdown = report.build_report(people, rejected, raw_counts, now=pd.Timestamp("2026-10-05"), run_id="r")
    lost = metrics[(metrics["metric"] == "rows_lost") & (metrics["source"] == "pos")]
    assert dict(zip(lost["field"], lost["numerator"])) == {"foreign header for pos_loyalty_signups": 500}
    gz = metrics[(metrics["metric"] == "rows_lost") & (metrics["source"] == "app")]
    assert gz["field"].tolist() == ["corrupt gzip file"] and gz["numerator"].iloc[0] == held["app_events/events_2026-10-03T14.jsonl.gz"]
    q = metrics[(metrics["metric"] == "quarantine_rate") & (metrics["source"] == "pos")].iloc[0]
    assert q["numerator"] == 500 and "rows_lost" in markdown


def test_a_few_bad_rows_in_small_files_do_not_block(env):  # noqa: F811
    landing, _, resources = env
    rows = [loyalty_row(f"S{i}") for i in range(20)] + [loyalty_row("S99")[:4]]
    write(landing / "pos/loyalty_signups_S05_2026-10-01.csv", csv_bytes(POS_LOYALTY.columns, rows))
    result = dg.materialize([*RAW_ASSETS[:1], checks.pos_loyalty_rows_lost], resources=resources)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed


@pytest.mark.parametrize("n_bad", [10, 30])
def test_many_bad_rows_in_one_file_block(env, n_bad):  # noqa: F811
    landing, _, resources = env
    rows = [loyalty_row(f"S{i}") for i in range(100)] + [loyalty_row(f"B{i}")[:4] for i in range(n_bad)]
    write(landing / "pos/loyalty_signups_S05_2026-10-01.csv", csv_bytes(POS_LOYALTY.columns, rows))
    result = dg.materialize([*RAW_ASSETS[:1], checks.pos_loyalty_rows_lost], resources=resources, raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and f"lost {n_bad} of {100 + n_bad} rows" in evaluation.metadata["details"].value
