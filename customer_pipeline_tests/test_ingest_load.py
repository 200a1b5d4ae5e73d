"""Loading landing files into the raw layer: lineage, idempotency, corrections, quarantine."""

import shutil

import pytest

from customer_pipeline import warehouse
from customer_pipeline.ingest.accounting import account_files
from customer_pipeline.ingest.files import load_app_events, load_csv_family, rebuild_app_identities
from customer_pipeline.ingest.formats import CALL_CENTER, POS_LOYALTY, POS_TRANSACTIONS
from customer_pipeline_tests.landing import (
    app_event, contact_row, csv_bytes, loyalty_row, make_landing, write,
)


@pytest.fixture
def landing(tmp_path):
    return make_landing(tmp_path / "landing")


@pytest.fixture
def con(tmp_path):
    with warehouse.connect(tmp_path / "w.duckdb") as c:
        yield c


def _rows(con, sql):
    return con.execute(sql).fetchall()


def test_rows_carry_lineage(con, landing):
    stats = load_csv_family(con, landing, POS_LOYALTY, "run-1")
    assert (stats.files_loaded, stats.rows_loaded, stats.rows_quarantined) == (1, 2, 0)
    row = _rows(con, "SELECT card_no, _source, _location, _record_ref, _content_hash, _run_id, _ingested_at FROM raw.pos_loyalty_signups ORDER BY card_no")[0]
    assert row[:4] == ("L100", "pos", "pos/loyalty_signups_S01_2026-10-01.csv", "2")
    assert len(row[4]) == 64 and row[5] == "run-1" and row[6] is not None


def test_reload_of_same_file_adds_nothing_even_from_another_folder(con, landing, tmp_path):
    load_csv_family(con, landing, POS_LOYALTY, "run-1")
    again = load_csv_family(con, landing, POS_LOYALTY, "run-2")
    assert (again.files_skipped, again.rows_loaded) == (1, 0)
    moved = tmp_path / "elsewhere"
    shutil.copytree(landing, moved)
    third = load_csv_family(con, moved, POS_LOYALTY, "run-3")
    assert third.files_skipped == 1
    assert _rows(con, "SELECT count(*), count(DISTINCT _run_id) FROM raw.pos_loyalty_signups") == [(2, 1)]


def test_corrected_file_under_same_name_replaces_earlier_version(con, landing):
    load_csv_family(con, landing, POS_LOYALTY, "run-1")
    write(landing / "pos/loyalty_signups_S01_2026-10-01.csv",
          csv_bytes(POS_LOYALTY.columns, [loyalty_row(first="Anne"), loyalty_row("L102")[:5]]))
    stats = load_csv_family(con, landing, POS_LOYALTY, "run-2")
    assert (stats.files_replaced, stats.rows_loaded, stats.rows_quarantined) == (1, 1, 1)
    assert _rows(con, "SELECT card_no, first_name, _run_id FROM raw.pos_loyalty_signups") == [("L100", "Anne", "run-2")]
    assert _rows(con, "SELECT count(*) FROM meta.loaded_files") == [(1,)]
    assert account_files(con, "pos_loyalty_signups")["mismatches"] == []


def test_bad_rows_and_unreadable_files_are_quarantined_and_others_still_load(con, landing):
    write(landing / "pos/loyalty_signups_S02_2026-10-01.csv", b"\x00\x01binary junk\x00")
    write(landing / "pos/loyalty_signups_S03_2026-10-01.csv", b"name;email\nx;y\n")
    write(landing / "pos/readme.txt", b"not a delivery")
    write(landing / "pos/loyalty_signups_S04_2026-10-01.csv",
          csv_bytes(POS_LOYALTY.columns, [loyalty_row("L400"), loyalty_row("L401")[:4], loyalty_row("")]))
    stats = load_csv_family(con, landing, POS_LOYALTY, "run-1", claim_unknown=True)
    assert stats.files_quarantined == 3
    assert stats.rows_loaded == 3
    rejected = dict(
        ((loc, ref), reason)
        for loc, ref, reason in _rows(con, "SELECT location, record_ref, reason FROM quarantine.rejected_records")
    )
    assert rejected[("pos/loyalty_signups_S02_2026-10-01.csv", "file")] == "binary content: NUL bytes in the file"
    assert rejected[("pos/loyalty_signups_S03_2026-10-01.csv", "file")].startswith("foreign header")
    assert "matches no pos file family" in rejected[("pos/readme.txt", "file")]
    assert "wrong column count" in rejected[("pos/loyalty_signups_S04_2026-10-01.csv", "3")]
    assert "card_no" in rejected[("pos/loyalty_signups_S04_2026-10-01.csv", "4")]
    report = account_files(con, "pos_loyalty_signups")
    # 2 rows of the clean file, the records the rejected files held (binary: none after its first
    # line, S03: 1 after its header, readme: none after its first line), 3 rows of S04
    assert report["mismatches"] == [] and report["rows_read"] == 2 + 0 + 1 + 0 + 3
    # quarantining is idempotent too
    again = load_csv_family(con, landing, POS_LOYALTY, "run-2", claim_unknown=True)
    assert again.files_skipped == 5 and _rows(con, "SELECT count(*) FROM quarantine.rejected_records") == [(5,)]


def test_transactions_family_ignores_loyalty_files(con, landing):
    stats = load_csv_family(con, landing, POS_TRANSACTIONS, "run-1")
    assert (stats.files_seen, stats.rows_loaded) == (1, 2)


def test_call_center_rows_reappearing_in_next_export_are_kept_with_their_file(con, landing):
    write(landing / "call_center/contacts_2026-10-03.csv", csv_bytes(CALL_CENTER.columns, [contact_row(), contact_row("K2")]))
    load_csv_family(con, landing, CALL_CENTER, "run-1")
    assert _rows(con, "SELECT contact_id, _location FROM raw.call_center_contacts ORDER BY 2, 1") == [
        ("K1", "call_center/contacts_2026-10-02.csv"),
        ("K1", "call_center/contacts_2026-10-03.csv"),
        ("K2", "call_center/contacts_2026-10-03.csv"),
    ]


def test_app_messages_deduplicated_by_message_id(con, landing):
    write(landing / "app_events/events_2026-10-03T14.jsonl",
          (app_event("m1", traits={"email": "anna@example.de"}) + "\n" + app_event("m9", "page") + "\n{broken\n").encode())
    stats = load_app_events(con, landing, "run-1")
    assert (stats.rows_loaded, stats.rows_duplicate, stats.rows_quarantined) == (5, 1, 1)
    assert _rows(con, "SELECT count(*), count(DISTINCT message_id) FROM raw.app_events") == [(5, 5)]
    assert _rows(con, "SELECT message_id, _location FROM raw.app_event_duplicates") == [
        ("m1", "app_events/events_2026-10-03T14.jsonl")
    ]
    assert account_files(con, "app_events")["mismatches"] == []
    derived = rebuild_app_identities(con)
    assert derived == {"identifies": 1, "aliases": 1}
    assert _rows(con, "SELECT email, first_name, city FROM raw.app_identifies") == [("anna@example.de", "Anna", "Berlin")]
    assert _rows(con, "SELECT previous_id, user_id FROM raw.app_aliases") == [("dev-1", "1")]


def test_corrected_app_file_promotes_the_redelivered_message(con, landing):
    write(landing / "app_events/events_2026-10-03T14.jsonl", (app_event("m1", traits={"email": "x@y.de"}) + "\n").encode())
    load_app_events(con, landing, "run-1")
    # the first delivery's file is corrected and no longer carries m1: the re-delivery becomes m1
    write(landing / "app_events/events_2026-10-03T12.jsonl", (app_event("m2", "track") + "\n").encode())
    load_app_events(con, landing, "run-2")
    assert _rows(con, "SELECT _location FROM raw.app_events WHERE message_id = 'm1'") == [
        ("app_events/events_2026-10-03T14.jsonl",)
    ]
    assert _rows(con, "SELECT count(*) FROM raw.app_event_duplicates") == [(0,)]
    assert account_files(con, "app_events")["mismatches"] == []


def test_app_identifies_brought_up_to_date_equal_a_whole_extraction(con, landing):
    """New files, a corrected file whose message is promoted from its re-delivery, and an erasure's delete:
    after each, raw.app_identifies updated by difference holds what extracting every message again gives."""
    identifies = "SELECT * EXCLUDE (_ingested_at) FROM raw.app_identifies ORDER BY message_id"

    def both() -> list:
        rebuild_app_identities(con)
        updated = _rows(con, identifies)
        rebuild_app_identities(con, whole=True)
        assert _rows(con, identifies) == updated
        return updated

    load_app_events(con, landing, "run-1")
    assert [r[0] for r in both()] == ["m1"]
    write(landing / "app_events/events_2026-10-03T14.jsonl", "\n".join([
        app_event("m1", traits={"email": "second@example.de"}),  # a re-delivery of m1: aside as a duplicate
        app_event("m7", anon="dev-7", traits={"firstName": "Bea", "phone": 491701234567, "address": {"city": ["x"]}}),
        app_event("m8", anon="dev-8", traits={}),  # no traits: not an identity
    ]).encode() + b"\n")
    load_app_events(con, landing, "run-2")
    assert [(r[0], r[4], r[5]) for r in both()] == [("m1", "anna@example.de", "Anna"), ("m7", None, "Bea")]
    # the first file is corrected without m1: its re-delivery (another email) becomes m1
    write(landing / "app_events/events_2026-10-03T12.jsonl", (app_event("m2", "track") + "\n").encode())
    load_app_events(con, landing, "run-3")
    assert [(r[0], r[4]) for r in both()] == [("m1", "second@example.de"), ("m7", None)]
    con.execute("DELETE FROM raw.app_events WHERE anonymous_id = 'dev-7'")  # as an erasure does
    assert [r[0] for r in both()] == ["m1"]


def _table_dump(con):
    """Every raw, quarantine and bookkeeping row except load time and run id, in a fixed order."""
    dump = {}
    for (schema, table) in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('raw', 'quarantine', 'meta') ORDER BY 1, 2"
    ).fetchall():
        cols = [c for (c,) in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema, table]).fetchall()
            if c not in ("_ingested_at", "_run_id", "rejected_at", "run_id", "loaded_at",
                         "mtime_ns", "ctime_ns", "inode", "hashed_at_ns")]  # meta.file_stats: this file system's stat
        sel = ", ".join(f'"{c}"' for c in cols)
        dump[f"{schema}.{table}"] = con.execute(f"SELECT {sel} FROM {schema}.{table} ORDER BY ALL").fetchall()
    return dump


def _messy_landing(landing):
    """Several files per family with rejects, a foreign file, a gzip, a multi-line record and re-deliveries."""
    import gzip

    for day in range(1, 5):
        write(landing / f"pos/loyalty_signups_S0{day}_2026-10-0{day}.csv", csv_bytes(
            POS_LOYALTY.columns,
            [loyalty_row(f"L{day}{i}") for i in range(30)] + [loyalty_row(f"L{day}x")[:4], loyalty_row("")],
            bom=day == 2))
        write(landing / f"call_center/contacts_2026-10-1{day}.csv", csv_bytes(
            CALL_CENTER.columns, [contact_row(f"K{day}{i}", notes=f"line one\nline two, {i}") for i in range(20)]
            + [contact_row(f"K{day}bad")[:-2], contact_row("")]))
        events = [app_event(f"m{day}-{i}", traits={"email": f"u{i}@x.de"}) for i in range(25)]
        events += [app_event(f"m1-{i}") for i in range(5)]  # re-deliveries of the first file's messages
        events += ["{broken", app_event("", "track"), app_event(f"a{day}", "alias")]
        body = ("\n".join(events) + "\n").encode()
        write(landing / (f"app_events/events_2026-10-0{day}T1{day}.jsonl" + (".gz" if day % 2 else "")),
              gzip.compress(body, mtime=0) if day % 2 else body)  # mtime=0: the same bytes on every write
    write(landing / "pos/loyalty_signups_S09_2026-10-09.csv", b"\x00binary\x00")
    write(landing / "app_events/notes.txt", b"not a delivery")


def _load_everything(path, landing):
    with warehouse.connect(path) as c:
        load_csv_family(c, landing, POS_LOYALTY, "run-1", claim_unknown=True)
        load_csv_family(c, landing, CALL_CENTER, "run-1", claim_unknown=True)
        load_app_events(c, landing, "run-1")
        # a corrected file and a new one on the next run
        write(landing / "pos/loyalty_signups_S01_2026-10-01.csv",
              csv_bytes(POS_LOYALTY.columns, [loyalty_row("L10", first="Anne"), loyalty_row("L1y")[:3]]))
        write(landing / "app_events/events_2026-10-02T12.jsonl", (app_event("m2-0") + "\n").encode())
        load_csv_family(c, landing, POS_LOYALTY, "run-2", claim_unknown=True)
        load_app_events(c, landing, "run-2")
        for family in ("pos_loyalty_signups", "call_center_contacts", "app_events"):
            assert account_files(c, family)["mismatches"] == []
        return _table_dump(c)


def test_parsing_in_worker_processes_loads_exactly_what_a_serial_load_does(tmp_path, monkeypatch):
    from customer_pipeline.ingest import workers

    serial_landing, pooled_landing = tmp_path / "serial", tmp_path / "pooled"
    for root in (serial_landing, pooled_landing):
        make_landing(root)
        _messy_landing(root)
    monkeypatch.setenv("CUSTOMER_PIPELINE_WORKERS", "0")
    serial = _load_everything(tmp_path / "serial.duckdb", serial_landing)
    monkeypatch.setenv("CUSTOMER_PIPELINE_WORKERS", "2")
    monkeypatch.setattr(workers, "PARALLEL_MIN_BYTES", 1)  # every file parsed in the pool
    pooled = _load_everything(tmp_path / "pooled.duckdb", pooled_landing)
    assert pooled == serial
    assert len(serial["quarantine.rejected_records"]) > 10 and len(serial["raw.app_event_duplicates"]) > 0


def test_file_parser_returns_results_in_submission_order():
    import datetime as dt

    from customer_pipeline.ingest.workers import FileParser

    now = dt.datetime(2026, 10, 1)
    with FileParser(workers=2, min_bytes=1) as parser:
        seen = []
        for i in range(12):
            data = csv_bytes(POS_LOYALTY.columns, [loyalty_row(f"L{i}-{j}") for j in range(i * 50 + 1)])
            if i == 5:
                parser.passthrough(i, "reason")
            else:
                parser.submit(i, POS_LOYALTY.name, data, "pos", f"f{i}", "h", now, "r")
            seen.extend(parser.ready())
        seen.extend(parser.drain())
    assert [k for k, _ in seen] == list(range(12))
    assert [v.rows_loaded for k, v in seen if k != 5] == [i * 50 + 1 for i in range(12) if i != 5]
    assert seen[5][1] == "reason"


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_always_is(con, landing, monkeypatch):
    """meta.file_stats: a file whose stat is the one it was hashed under is not read; a rewrite with the same
    size and mtime is still seen (ctime); a file changed right after it was hashed is read again (racy)."""
    from customer_pipeline.ingest import file_stats, files

    hashed = []
    real_hash = files.file_hash
    monkeypatch.setattr(files, "file_hash", lambda data: hashed.append(data) or real_hash(data))
    path = landing / "pos/loyalty_signups_S01_2026-10-01.csv"
    load_csv_family(con, landing, POS_LOYALTY, "run-1")
    assert len(hashed) == 1
    load_csv_family(con, landing, POS_LOYALTY, "run-2")  # written and hashed within 2 s: not trusted yet
    assert len(hashed) == 2
    monkeypatch.setattr(file_stats, "STABLE_NS", 0)  # as if the file had been stable for longer
    again = load_csv_family(con, landing, POS_LOYALTY, "run-3")
    assert len(hashed) == 2 and (again.files_seen, again.files_skipped) == (1, 1)
    # the same size, the mtime set back: the content is new, and ctime says so
    st = path.stat()
    body = path.read_bytes()
    path.write_bytes(body.replace(b"Anna", b"Anne"))
    import os
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    fixed = load_csv_family(con, landing, POS_LOYALTY, "run-4")
    assert fixed.files_replaced == 1 and len(hashed) == 3
    assert _rows(con, "SELECT DISTINCT first_name FROM raw.pos_loyalty_signups WHERE card_no = 'L100'") == [("Anne",)]


def test_landing_folders_without_a_new_or_corrected_file_are_not_loaded_by_a_run(tmp_path, landing):
    """runner.unchanged_raw: the raw assets of a folder whose every file the warehouse holds are left out of
    the raw run; the shop always runs; a new file, a corrected one or a missing raw table brings an asset back."""
    import dagster as dg

    from customer_pipeline import runner
    from customer_pipeline.ingest.files import pending_files
    from customer_pipeline.ingest.formats import SUPPRESSION
    from customer_pipeline.ingest.suppression import load_suppression_registers

    raw = [dg.AssetKey(["raw", t]) for t in ("pos_loyalty_signups", "pos_transactions", "call_center_contacts",
                                              "app_events", "suppression_entries", "shop_customers")]
    wh = tmp_path / "w.duckdb"
    assert runner.unchanged_raw(wh, landing, raw) == set()  # no warehouse yet: everything loads
    with warehouse.connect(wh) as c:
        for family in (POS_LOYALTY, POS_TRANSACTIONS, CALL_CENTER):
            load_csv_family(c, landing, family, "run-1", claim_unknown=family is not POS_TRANSACTIONS)
        load_app_events(c, landing, "run-1")
        rebuild_app_identities(c)
        load_suppression_registers(c, landing, "run-1")
    assert {k.path[-1] for k in runner.unchanged_raw(wh, landing, raw)} == {
        "pos_loyalty_signups", "pos_transactions", "call_center_contacts", "app_events", "suppression_entries"}
    write(landing / "pos/transactions_S01_2026-10-02.csv", csv_bytes(POS_TRANSACTIONS.columns, []))  # a new file
    write(landing / "call_center/contacts_2026-10-02.csv", csv_bytes(CALL_CENTER.columns, []))  # a corrected one
    write(landing / f"{SUPPRESSION.folder}/notes.txt", b"a stray file")
    assert {k.path[-1] for k in runner.unchanged_raw(wh, landing, raw)} == {"app_events"}
    with warehouse.connect(wh) as c:
        assert pending_files(c, landing, "pos") == ["pos/transactions_S01_2026-10-02.csv"]
        c.execute("DROP TABLE raw.app_aliases")
    assert runner.unchanged_raw(wh, landing, raw) == set()
