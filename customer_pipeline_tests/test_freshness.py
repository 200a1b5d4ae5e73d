"""Source freshness: status rules on hand-made timestamps, the warehouse tables, and the Dagster asset."""

import datetime as dt
import re

import dagster as dg
import duckdb
import pytest

from customer_pipeline import freshness
from customer_pipeline.defs.freshness.assets import SOURCES_WITHIN_SLA, source_freshness
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.app.assets import app_events
from customer_pipeline.defs.sources.call_center.assets import call_center_contacts
from customer_pipeline.defs.sources.pos.assets import pos_loyalty_signups, pos_transactions
from customer_pipeline.defs.sources.shop.assets import shop_database
from customer_pipeline.ingest import store
from customer_pipeline_tests.landing import make_landing

H = dt.timedelta(hours=1)
NOW = dt.datetime(2026, 10, 5, 12, 0, 0)
SLAS = {
    "pos": freshness.Sla(warn=26 * H, fail=30 * H),
    "shop": freshness.Sla(warn=2 * H, fail=3 * H),
    "call_center": freshness.Sla(warn=5 * H, fail=8 * H),
    "app": freshness.Sla(warn=dt.timedelta(minutes=30), fail=H),
}


@pytest.mark.parametrize(
    "lag, expected",
    [(None, "never_loaded"), (dt.timedelta(0), "fresh"), (2 * H - dt.timedelta(seconds=1), "fresh"),
     (2 * H, "warning"), (3 * H - dt.timedelta(seconds=1), "warning"), (3 * H, "failed"), (100 * H, "failed")],
)
def test_classify_by_the_sla_windows(lag, expected):
    assert freshness.classify(lag, SLAS["shop"]) == expected


def _loaded_file(source, loaded_at, error=None, family=None):
    return (source, family or source, f"{source}/f.csv", "h", 1, 1, 0, 0, error, loaded_at, "r1")


@pytest.fixture
def con():
    c = duckdb.connect()
    for schema in ("raw", "meta", "gold", "quarantine"):
        c.execute(f"CREATE SCHEMA {schema}")
    store.ensure_meta(c)
    store.insert_records(c, "meta.loaded_files", store.LOADED_FILES_COLUMNS, [
        _loaded_file("pos", NOW - 27 * H),                  # warning (26 h <= lag < 30 h)
        _loaded_file("pos", NOW - 2 * H, error="binary"),   # a quarantined file is no successful load
        _loaded_file("call_center", NOW - 9 * H),           # failed (>= 8 h)
    ])
    c.execute("INSERT INTO meta.extract_log VALUES ('shop', 'shop.customers', NULL, NULL, 0, 0, 0, 0, ?, 'r2')",
              [NOW - dt.timedelta(minutes=10)])               # fresh; a zero-row extract still counts
    c.execute("CREATE TABLE raw.pos_loyalty_signups (signed_up_at VARCHAR)")
    c.execute("INSERT INTO raw.pos_loyalty_signups VALUES ('2026-10-04T10:00:00+02:00'), ('garbage'), (NULL)")
    c.execute("CREATE TABLE raw.pos_transactions (sold_at VARCHAR)")
    c.execute("INSERT INTO raw.pos_transactions VALUES ('2026-10-04T09:30:00')")   # naive = UTC
    c.execute("CREATE TABLE raw.call_center_contacts (started_at VARCHAR)")
    c.execute("INSERT INTO raw.call_center_contacts VALUES ('2026-10-05T01:00:00Z')")
    yield c
    c.close()


def test_measure_reads_loads_and_business_timestamps(con):
    got = {m.source: m for m in freshness.measure(con, SLAS, now=NOW)}
    assert {s: m.status for s, m in got.items()} == {
        "pos": "warning", "shop": "fresh", "call_center": "failed", "app": "never_loaded"}
    assert got["pos"].last_successful_load == NOW - 27 * H
    # the +02:00 offset is applied: 08:00 UTC, older than the naive 09:30 (read as UTC)
    assert got["pos"].newest_record_at == dt.datetime(2026, 10, 4, 9, 30)
    assert got["call_center"].newest_record_at == dt.datetime(2026, 10, 5, 1, 0)
    assert got["call_center"].lag == 9 * H and got["call_center"].record_lag == 11 * H
    assert got["shop"].newest_record_at is None          # no raw shop tables in this warehouse
    assert got["app"].lag is None and got["app"].last_successful_load is None


def test_newest_records_are_read_again_only_when_their_tables_change_or_a_future_one_comes_due(con):
    con.execute("INSERT INTO raw.call_center_contacts VALUES ('2026-10-08T12:00:00Z')")  # beyond NOW + 1 day
    assert freshness.newest_records(con, NOW)["call_center"] == dt.datetime(2026, 10, 5, 1, 0)
    kept = dict(con.execute(f"SELECT source, next_future FROM {freshness.NEWEST_CACHE}").fetchall())
    assert kept["call_center"] == dt.datetime(2026, 10, 8, 12, 0)
    # unchanged tables: the kept figure (the table is not read: a row changed in place goes unseen)
    con.execute("UPDATE raw.call_center_contacts SET started_at = '2026-10-05T03:00:00Z' "
                "WHERE started_at = '2026-10-05T01:00:00Z'")
    assert freshness.newest_records(con, NOW)["call_center"] == dt.datetime(2026, 10, 5, 1, 0)
    # a load of another source: still the kept figure
    store.insert_records(con, "meta.loaded_files", store.LOADED_FILES_COLUMNS,
                         [_loaded_file("pos", NOW, family="pos_transactions")])
    assert freshness.newest_records(con, NOW)["call_center"] == dt.datetime(2026, 10, 5, 1, 0)
    # a load of its own (logged): read again
    store.insert_records(con, "meta.loaded_files", store.LOADED_FILES_COLUMNS,
                         [_loaded_file("call_center", NOW, family="call_center_contacts")])
    assert freshness.newest_records(con, NOW)["call_center"] == dt.datetime(2026, 10, 5, 3, 0)
    # days later the record once in the future is within the tolerance: read again, now the newest
    later = dt.datetime(2026, 10, 8, 0, 0)
    assert freshness.newest_records(con, later)["call_center"] == dt.datetime(2026, 10, 8, 12, 0)


def test_write_replaces_the_table_and_appends_history(con):
    freshness.write(con, freshness.measure(con, SLAS, now=NOW))
    freshness.write(con, freshness.measure(con, SLAS, now=NOW + H))
    rows = con.execute("SELECT source, status, lag_seconds, sla_warn, sla_fail, measured_at FROM gold.source_freshness "
                       "ORDER BY source").fetchall()
    assert [r[0] for r in rows] == ["app", "call_center", "pos", "shop"]
    assert dict((r[0], r[1]) for r in rows) == {"app": "never_loaded", "call_center": "failed",
                                               "pos": "warning", "shop": "fresh"}
    assert rows[2][2] == 28 * 3600 and rows[2][3] == 26 * H and rows[2][4] == 30 * H
    assert {r[5] for r in rows} == {NOW + H}
    history = con.execute("SELECT measured_at, count(*) FROM gold.source_freshness_history GROUP BY 1 ORDER BY 1").fetchall()
    assert history == [(NOW, 4), (NOW + H, 4)]
    # the clearer columns: each lag with its own status, numeric seconds for BI
    got = {r[0]: r[1:] for r in con.execute(
        "SELECT source, load_status, load_lag_seconds, record_status, record_lag_seconds, sla_warn_seconds, "
        "sla_fail_seconds, record_sla_warn_seconds, record_sla_fail_seconds FROM gold.source_freshness").fetchall()}
    # pos: loaded 28 h ago (warning); newest record 2026-10-04 09:30 is 27.5 h old (< 26 h + 1 d: fresh)
    assert got["pos"] == ("warning", 28 * 3600, "fresh", 27.5 * 3600, 26 * 3600, 30 * 3600, 50 * 3600, 54 * 3600)
    # call center: 10 h since the load (failed) and 12 h since its newest record (fresh within 5 h + 1 d)
    assert got["call_center"][:4] == ("failed", 10 * 3600, "fresh", 12 * 3600)
    assert got["shop"][2:4] == ("no_records", None) and got["app"][:3] == ("never_loaded", None, "no_records")


def test_summary_lines_fit_their_columns_and_say_which_lag(con):
    freshness.write(con, freshness.measure(con, SLAS, now=NOW + H))
    lines = freshness.freshness_lines(con)
    assert lines[1] == "Source freshness (measured 2026-10-05 13:00; times UTC)"
    header, rows = lines[2], lines[3:7]
    for name in ("load lag", "load status", "record age", "record status"):
        assert name in header
    # every cell starts under its header: the columns line up, nothing runs into the next column
    starts = [header.index(name) for name in ("last load", "load lag", "load status", "newest record",
                                               "record age", "record status")]
    for line in rows:
        cells = [line[i:j] for i, j in zip(starts, starts[1:] + [len(line) + 1])]
        assert all(c.endswith(" ") or c is cells[-1] for c in cells), line
    pos = next(line for line in rows if line.split()[0] == "pos")
    assert "1 d 4 h  warning" in pos                     # load lag, then its status
    assert pos.endswith("1 d 3 h  fresh")               # record age (two units at most), then its status
    never = next(line for line in rows if line.split()[0] == "app")
    assert "never" in never and "never_loaded" in never and "no_records" in never
    sla = next(line for line in lines if line.strip().startswith("SLA warn / fail"))
    assert "pos 1 d 2 h / 1 d 6 h" in sla and "app 30 min / 1 h" in sla
    assert not any(re.search(r"\bdays\b|\d:\d\d:\d\d|h\d\dm", line) for line in lines)


@pytest.mark.parametrize("seconds, text", [
    (None, "-"), (0, "0 s"), (45, "45 s"), (60, "1 min"), (152.86, "2 min 33 s"), (3600, "1 h"),
    (5 * 3600 + 12 * 60 + 9, "5 h 12 min"), (26 * 3600, "1 d 2 h"), (3 * 86400, "3 d"), (-90, "-1 min 30 s"),
])
def test_durations_read_as_words(seconds, text):
    assert freshness.duration_text(seconds) == text


def test_history_written_before_the_new_columns_gets_them(con):
    old = freshness.frame(freshness.measure(con, SLAS, now=NOW))[list(freshness.COLUMNS[:10])]
    con.register("old_df", old)
    con.execute("CREATE TABLE gold.source_freshness_history AS SELECT * FROM old_df")
    con.execute("CREATE TABLE gold.source_freshness AS SELECT * FROM old_df")
    # the summary reads a table of the old shape too (a run whose freshness step did not run)
    assert any("no_records" in line for line in freshness.freshness_lines(con))
    freshness.write(con, freshness.measure(con, SLAS, now=NOW + H))
    got = con.execute("SELECT measured_at, count(record_status) FROM gold.source_freshness_history "
                      "GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [(NOW, 0), (NOW + H, 4)]


def test_freshness_lines_is_empty_before_the_table_exists():
    with duckdb.connect() as c:
        c.execute("CREATE SCHEMA gold")
        assert freshness.freshness_lines(c) == []


def test_asset_measures_every_source_after_a_load(tmp_path):
    landing = make_landing(tmp_path / "landing")
    wh = tmp_path / "w.duckdb"
    resources = {
        "warehouse": WarehouseResource(path=str(wh)),
        "sources": SourcesResource(landing_dir=str(landing), shop_db_url=f"sqlite:///{landing / 'shop.sqlite'}"),
    }
    # only the app source is loaded: the others are never_loaded and the (warning) check says so
    first = dg.materialize([app_events, source_freshness], resources=resources)
    [check] = first.get_asset_check_evaluations()
    assert check.check_name == SOURCES_WITHIN_SLA and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN and "pos" in check.metadata["late_sources"].value
    everything = [pos_loyalty_signups, pos_transactions, shop_database, call_center_contacts, app_events, source_freshness]
    result = dg.materialize(everything, resources=resources)
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    [mat] = [e.materialization for e in result.get_asset_materialization_events()
             if e.asset_key == dg.AssetKey(["gold", "source_freshness"])]
    meta = mat.metadata
    assert meta["status"].value == {"pos": "fresh", "shop": "fresh", "call_center": "fresh", "app": "fresh"}
    assert set(meta["record_status"].value) == {"pos", "shop", "call_center", "app"}
    preview = meta["preview"].value
    assert "| load lag" in preview and "| record status" in preview and "1 d 2 h / 1 d 6 h" in preview
    assert not re.search(r"\bdays\b|\d:\d\d:\d\d", preview)  # no raw timedeltas (`0 days 00:02:32.862952`)
    with duckdb.connect(str(wh), read_only=True) as c:
        newest = dict(c.execute("SELECT source, newest_record_at FROM gold.source_freshness").fetchall())
        assert newest["app"] == dt.datetime(2026, 10, 3, 12, 0)
        assert newest["call_center"] == dt.datetime(2026, 10, 2, 9, 0)
        assert c.execute("SELECT count(*) FROM gold.source_freshness_history").fetchall() == [(8,)]
