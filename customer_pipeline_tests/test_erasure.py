"""Right to erasure: a person is gone from every table (DuckDB and PostgreSQL) and artefact, the next runs pass
their checks, everyone else keeps their customer id, and a later delivery of the person is suppressed."""

import datetime as dt
import re
import sqlite3
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from customer_pipeline.cli import main
from customer_pipeline.erasure import register
from customer_pipeline.erasure.arrival import screen_arrivals
from customer_pipeline.erasure.identifiers import Person
from customer_pipeline.erasure.resolve import ErasureError, Request, resolve
from customer_pipeline.ingest.accounting import account_files, account_shop
from customer_pipeline_tests import pg

# --- plain parts --------------------------------------------------------------------------------------------------


def _register_person(con, person: Person) -> None:
    from customer_pipeline.erasure.service import _register

    register.ensure(con)
    _register(con, person, "req-1")


def test_register_holds_keyed_hashes_only():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA meta")
    _register_person(con, Person(emails={"jane.doe@web.de"}, phones={"+4917512345678": "DE"}, cards={"400012"}))
    rows = con.execute("SELECT identifier_hash, kind, region FROM meta.erasure_register ORDER BY kind").fetchall()
    assert [r[1] for r in rows] == ["card", "email", "email_local", "phone", "phone_tail"]
    text = " ".join(str(v) for r in rows for v in r)
    assert "jane" not in text and "12345678" not in text and "400012" not in text
    key = register.secret(con)
    assert len(key) == 32 and register.Hasher(key)("email", "jane.doe@web.de") in {r[0] for r in rows}
    # another deployment's secret gives other hashes: the register cannot be matched against a list elsewhere
    assert register.Hasher(b"x" * 32)("email", "jane.doe@web.de") not in {r[0] for r in rows}


def test_arrivals_of_an_erased_person_are_dropped_or_kept_without_them():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA meta")
    data = pa.table({"card_no": ["400012", "400099"], "email": ["Jane.Doe@WEB.de ", "x@y.de"],
                     "phone": ["0175 1234 5678", None], "country": ["DE", "DE"], "_source": ["pos", "pos"]})
    assert screen_arrivals(con, "pos_loyalty_signups", data, "pos/a.csv", "h", "run")[1] == 0  # no register yet
    _register_person(con, Person(emails={"jane.doe@web.de"}))
    kept, erased = screen_arrivals(con, "pos_loyalty_signups", data, "pos/a.csv", "h1", "run")
    assert erased == 1 and kept.column("card_no").to_pylist() == ["400099"]
    # by phone in its national form (the register knows the region it was read in), and by card
    _register_person(con, Person(phones={"+4917512345678": "DE"}, cards={"400099"}))
    data2 = data.set_column(1, "email", pa.array([None, None], pa.string()))
    assert screen_arrivals(con, "pos_loyalty_signups", data2, "pos/b.csv", "h2", "run")[1] == 2
    receipts = pa.table({"card_no": ["400099", None, "5"], "qty": ["1", "2", "3"], "_source": ["pos"] * 3})
    kept, erased = screen_arrivals(con, "pos_transactions", receipts, "pos/t.csv", "h3", "run")
    assert erased == 0 and kept.column("card_no").to_pylist() == [None, None, "5"] and kept.num_rows == 3
    counted = con.execute("SELECT location, how, rows FROM meta.erased_rows ORDER BY location").fetchall()
    assert counted == [("pos/a.csv", "erased", 1), ("pos/b.csv", "erased", 2), ("pos/t.csv", "anonymised", 1)]


def test_accounting_counts_erased_rows_as_erased_not_lost():
    from customer_pipeline.ingest import store
    from customer_pipeline.ingest.formats import CSV_FAMILIES

    con = duckdb.connect()
    for schema in ("raw", "meta", "quarantine"):
        con.execute(f"CREATE SCHEMA {schema}")
    store.ensure_meta(con)
    family = CSV_FAMILIES["pos_loyalty_signups"]
    store.ensure_raw_table(con, family.name, family.columns)
    con.execute("INSERT INTO meta.loaded_files (source, family, location, content_hash, rows_read, rows_loaded, "
                "rows_duplicate, rows_quarantined) VALUES ('pos', 'pos_loyalty_signups', 'pos/a.csv', 'h1', 3, 3, 0, 0)")
    for card in ("1", "2"):
        con.execute("INSERT INTO raw.pos_loyalty_signups (card_no, _location, _content_hash) VALUES (?, 'pos/a.csv', 'h1')",
                    [card])
    assert account_files(con, family.name)["mismatches"] == ["pos/a.csv: read 3, stored 2, quarantined 0, erased 0"]
    register.record_rows(con, "req", register.ERASED, "pos", "pos/a.csv", "h1", "raw.pos_loyalty_signups", 1, None)
    report = account_files(con, family.name)
    assert report["mismatches"] == [] and report["rows_erased"] == 1 and report["files_losing_rows"] == []
    # a corrected file (another content hash) does not inherit what was erased from the earlier version
    con.execute("UPDATE meta.loaded_files SET content_hash = 'h2'")
    assert account_files(con, family.name)["mismatches"] != []


def test_a_request_must_name_someone_usable(tmp_path, monkeypatch):
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    con = duckdb.connect()
    with pytest.raises(ErasureError):
        resolve(con, Request())
    with pytest.raises(ErasureError, match="country"):
        resolve(con, Request(phone="0175 1234 5678"))
    with pytest.raises(ErasureError, match="SOURCE:KEY"):
        resolve(con, Request(source_key="card-12"))
    assert main(["erase", "--phone", "0175 1234"]) == 2


# --- end to end ---------------------------------------------------------------------------------------------------


def _person_values(con, customer: str) -> dict:
    """Everything that identifies one customer, read before erasure: what must not be found afterwards."""
    records = [r[0] for r in con.execute("SELECT record_id FROM gold.customer_xref WHERE customer_id = ?",
                                         [customer]).fetchall()]
    staged = con.execute("SELECT email, email_corrected, phone_e164, phone_raw, email_raw FROM staging.person_records "
                         "WHERE record_id IN ?", [records]).fetchall()
    keys = [r.partition("|")[2] for r in records]
    bare = {k.partition(":")[2] for k in keys if not k.startswith(("customer:", "user:", "guest_order:"))}
    texts = {v.strip().lower() for row in staged for v in row if v and len(v.strip()) >= 6}
    first, last, birth = con.execute("SELECT first_name, last_name, birth_date FROM gold.golden_customers "
                                     "WHERE customer_id = ?", [customer]).fetchall()[0]
    return {"customer": customer, "records": records, "texts": texts | {k.lower() for k in keys} | {b.lower() for b in bare},
            "bare": bare, "name": (first, last, birth)}


def _birth_forms(birth) -> list[str]:
    return [] if birth is None else [birth.isoformat(), birth.strftime("%d.%m.%Y"), birth.strftime("%d/%m/%Y")]


def _hits_in(cells: list[str], person: dict) -> list[str]:
    """The person's values found in one row's text cells (names only together with the birth date)."""
    joined = " \x1f ".join(c.lower() for c in cells if c)
    found = [t for t in person["texts"] if re.search(rf"(?<![0-9a-z]){re.escape(t)}(?![0-9a-z])", joined)]
    first, last, birth = person["name"]
    if first and last and birth and first.lower() in joined and last.lower() in joined:
        found += [f"name+birth {b}" for b in _birth_forms(birth) if b in joined]
    return found


def _scan_duckdb(path: Path, persons: list[dict]) -> list[tuple]:
    hits = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_catalog = current_database()").fetchall()
        for schema, table in tables:
            cols = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "AND table_catalog = current_database()", [schema, table]).fetchall()]
            sel = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in cols)
            for row in con.execute(f'SELECT {sel} FROM "{schema}"."{table}"').fetchall():
                for p in persons:
                    hits += [(f"{schema}.{table}", p["customer"], h) for h in _hits_in(list(row), p)]
    return hits


def _scan_pg(url: str, persons: list[dict]) -> list[tuple]:
    hits = []
    conn = pg.connect(url)
    try:
        tables = pg.rows(conn, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema "
                               "NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'")
        assert ("gold", "golden_customers") in tables
        for schema, table in tables:
            for row in pg.rows(conn, f'SELECT t::text FROM "{schema}"."{table}" t'):
                for p in persons:
                    hits += [(f"pg {schema}.{table}", p["customer"], h) for h in _hits_in(list(row), p)]
    finally:
        conn.close()
    return hits


def _scan_files(folder: Path, persons: list[dict]) -> list[tuple]:
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for p in persons:
            hits += [(path.name, p["customer"], h) for h in _hits_in([text], {**p, "name": (None, None, None)})]
    return hits


def _choose(con) -> list[str]:
    """Four customers with records in several sources whose emails and phones nobody else holds, and that
    no preference register lists (those snapshots are kept: docs/erasure.md)."""
    listed = set()
    for table in ("raw.suppression_entries", "staging.suppression_entries"):
        schema, name = table.split(".")
        cols = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                                          "AND table_name = ?", [schema, name]).fetchall()}
        for col in cols & {"value", "phone_e164", "email", "match_value"}:
            listed |= {str(v).strip().lower() for (v,) in con.execute(f"SELECT {col} FROM {table}").fetchall() if v}
    candidates = [r[0] for r in con.execute("""
        WITH own AS (
            SELECT x.customer_id, v FROM gold.customer_xref x JOIN staging.person_records p USING (record_id),
                unnest([p.email, p.email_corrected, p.phone_e164]) AS u(v) WHERE v IS NOT NULL
        ), shared AS (SELECT v FROM own GROUP BY v HAVING count(DISTINCT customer_id) > 1)
        SELECT x.customer_id FROM gold.customer_xref x JOIN gold.golden_customers g USING (customer_id)
        WHERE x.customer_id NOT IN (SELECT customer_id FROM own WHERE v IN (SELECT v FROM shared))
          AND g.email IS NOT NULL AND g.phone IS NOT NULL AND g.birth_date IS NOT NULL
        GROUP BY x.customer_id HAVING count(DISTINCT x.source) >= 3 AND bool_or(x.source = 'pos')
        ORDER BY count(*) DESC, x.customer_id LIMIT 40""").fetchall()]
    return [c for c in candidates if not (_person_values(con, c)["texts"] & listed)][:4]


def _failed_checks(home: Path) -> tuple[bool, list[str]]:
    """(latest run succeeded, failed asset checks of that run) from the Dagster instance in `home`; a failed
    check of severity WARN is named `WARN <name>` (the sample's own data may trip one: see the base run)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_runs(limit=1)[0]
        records = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        evaluations = [r.dagster_event.asset_check_evaluation_data for r in records]
        failed = sorted(("WARN " if e.severity == dg.AssetCheckSeverity.WARN else "") + e.asset_check_key.name
                        for e in evaluations if not e.passed)
        return run.status == dg.DagsterRunStatus.SUCCESS, failed


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 300-person pipeline run published to a throwaway PostgreSQL database, then four persons erased,
    one per kind of identifier (the customer id through the Dagster job, the others through the CLI)."""
    pg.require_pg()
    tmp = tmp_path_factory.mktemp("erasure")
    landing, wh, home = tmp / "landing", tmp / "w.duckdb", tmp / "dagster_home"
    with pg.temp_database() as pg_url, pytest.MonkeyPatch.context() as mp:
        for name, value in {"CUSTOMER_PIPELINE_LANDING_DIR": str(landing), "CUSTOMER_PIPELINE_WAREHOUSE": str(wh),
                            "SHOP_DB_URL": "", "CUSTOMER_PIPELINE_PG_URL": pg_url, "DAGSTER_HOME": str(home),
                            "CUSTOMER_PIPELINE_ARTIFACTS_DIR": ""}.items():
            mp.setenv(name, value)
        assert main(["sample", "--persons", "300", "--seed", "3", "--out", str(landing)]) == 0
        assert main(["run"]) == 0
        base_ok, base_failed = _failed_checks(home)
        assert base_ok
        with duckdb.connect(str(wh), read_only=True) as con:
            receipts = con.execute("SELECT count(*) FROM raw.pos_transactions").fetchall()[0][0]
            chosen = _choose(con)
            assert len(chosen) == 4
            persons = [_person_values(con, c) for c in chosen]
            xref_before = dict(con.execute("SELECT record_id, customer_id FROM gold.customer_xref").fetchall())
            a, b, c, d = persons
            email = con.execute("SELECT email FROM gold.golden_customers WHERE customer_id = ?", [b["customer"]]).fetchall()[0][0]
            phone = con.execute("SELECT phone FROM gold.golden_customers WHERE customer_id = ?", [c["customer"]]).fetchall()[0][0]
            card_record = next(r for r in d["records"] if r.startswith("pos|"))
        before_hits = _scan_duckdb(wh, persons)
        assert {h[1] for h in before_hits} == set(chosen), "the scan must find every person before erasure"
        assert _scan_pg(pg_url, persons), "the scan must find the persons in PostgreSQL before erasure"

        from customer_pipeline.definitions import defs

        job = defs().resolve_job_def("erase_person")
        result = job.execute_in_process(
            run_config={"ops": {"erase_person_op": {"config": {"customer_id": a["customer"]}}}},
            instance=dg.DagsterInstance.ephemeral())
        assert result.success
        started = dt.datetime.now()
        assert main(["erase", "--email", email.upper(), "--no-redraw"]) == 0  # the later ones redraw
        assert main(["erase", "--phone", phone]) == 0
        assert main(["erase", "--source-key", card_record.replace("|", ":", 1)]) == 0
        yield {"tmp": tmp, "landing": landing, "wh": wh, "home": home, "pg_url": pg_url, "persons": persons,
               "xref_before": xref_before, "receipts": receipts, "base_failed": base_failed, "erase_seconds": (dt.datetime.now() - started).total_seconds()}


@pytest.mark.slow
@pytest.mark.postgres
def test_no_trace_of_the_persons_in_any_table_or_artefact(world):
    persons = world["persons"]
    assert _scan_duckdb(world["wh"], persons) == []
    assert _scan_pg(world["pg_url"], persons) == []
    artefacts = world["tmp"] / "w.artifacts"
    assert (artefacts / "identity" / "cluster_studio.html").is_file(), "the dashboards are redrawn without them"
    assert _scan_files(artefacts, persons) == []
    with duckdb.connect(str(world["wh"]), read_only=True) as con:
        kinds = dict(con.execute("SELECT kind, count(*) FROM meta.erasure_register GROUP BY 1").fetchall())
        assert kinds.get("email", 0) >= 4 and kinds.get("phone", 0) >= 4 and kinds.get("source_key", 0) >= 8
        assert con.execute("SELECT count(*) FROM meta.erasure_requests").fetchall()[0][0] == 4
        # the households' own state (the customer's basis, its postcode and house numbers) names them no more
        erased = [p["customer"] for p in persons]
        for table in ("meta.household_basis", "meta.household_ties"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] > 0
            assert con.execute(f"SELECT count(*) FROM {table} WHERE customer_id IN ?", [erased]).fetchall()[0][0] == 0
        # sales stay as anonymous figures: receipts lost the card, not the revenue
        assert con.execute("SELECT count(*) FROM raw.pos_transactions").fetchall()[0][0] == world["receipts"]
    assert world["erase_seconds"] < 60


@pytest.mark.slow
@pytest.mark.postgres
def test_next_run_passes_keeps_other_ids_and_suppresses_a_redelivery(world, monkeypatch):
    for name, value in {"CUSTOMER_PIPELINE_LANDING_DIR": str(world["landing"]), "SHOP_DB_URL": "",
                        "CUSTOMER_PIPELINE_WAREHOUSE": str(world["wh"]), "CUSTOMER_PIPELINE_PG_URL": world["pg_url"],
                        "DAGSTER_HOME": str(world["home"]), "CUSTOMER_PIPELINE_ARTIFACTS_DIR": ""}.items():
        monkeypatch.setenv(name, value)
    persons = world["persons"]
    # before the run, the person is delivered again: their signup row in a new POS file, and a change to
    # their shop account
    d = persons[3]
    card = next(r for r in d["records"] if r.startswith("pos|")).split(":", 1)[1]
    line, header = None, None
    for path in sorted((world["landing"] / "pos").glob("loyalty_signups_*.csv")):
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        line = next((x for x in lines[1:] if x.startswith(card + ",")), line)
        header = lines[0]
    assert line is not None
    redelivered = world["landing"] / "pos" / "loyalty_signups_ZZ001_2026-11-21.csv"
    redelivered.write_text(f"{header}\n{line}\n", encoding="utf-8")
    shop_ids = [r.split(":", 1)[1] for p in persons for r in p["records"] if r.startswith("shop|customer:")]
    assert shop_ids, "one of the persons has a shop account"
    shop_id = shop_ids[0]
    with sqlite3.connect(world["landing"] / "shop.sqlite") as shop:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert shop.execute("UPDATE customers SET updated_at = ? WHERE id = ?", [now, int(shop_id)]).rowcount == 1

    assert main(["run"]) == 0
    assert _failed_checks(world["home"]) == (True, world["base_failed"])
    assert not [c for c in world["base_failed"] if not c.startswith("WARN ")]
    erased = {r for p in persons for r in p["records"]}
    with duckdb.connect(str(world["wh"]), read_only=True) as con:
        after = dict(con.execute("SELECT record_id, customer_id FROM gold.customer_xref").fetchall())
        rel = "pos/" + redelivered.name
        assert con.execute("SELECT rows_read, rows_loaded FROM meta.loaded_files WHERE location = ?",
                           [rel]).fetchall() == [(1, 0)]
        assert account_files(con, "pos_loyalty_signups")["mismatches"] == []
        shop = account_shop(con, "customers")
        assert shop["mismatches"] == [] and shop["rows_erased"] == 1
        assert con.execute("SELECT count(*) FROM raw.shop_customers WHERE id = ?", [shop_id]).fetchall()[0][0] == 0
    expected = {r: c for r, c in world["xref_before"].items() if r not in erased}
    assert after == expected, "everyone else keeps their records and customer ids"
    with dg.DagsterInstance.from_config(str(world["home"])) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "pos_loyalty_signups"]))
        assert event.asset_materialization.metadata["rows_erased"].value == 1
    # gold was rebuilt and published again: still no trace
    assert _scan_duckdb(world["wh"], persons) == [] and _scan_pg(world["pg_url"], persons) == []
