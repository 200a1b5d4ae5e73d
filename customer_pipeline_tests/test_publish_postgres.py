"""Publishing gold to PostgreSQL: tables, keys, indexes, atomic swap under concurrent readers, BI role rights."""

import contextlib
import datetime as dt
import threading
import time

import pandas as pd
import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy as sa

from customer_pipeline.publish import postgres as publish
from customer_pipeline.publish.postgres import GOLD_SPECS, normalise_pg_url, publish_gold
from customer_pipeline_tests import pg

GOLD_TABLES = set(GOLD_SPECS)


def _counts(conn, names=("golden_customers", "customer_xref")) -> tuple[int, ...]:
    """Row counts of several gold tables read in one statement (one snapshot)."""
    query = "SELECT " + ", ".join(f"(SELECT count(*) FROM gold.{n})" for n in names)
    return tuple(pg.rows(conn, query)[0])


def _primary_key(conn, table: str) -> list[str] | None:
    found = pg.rows(conn, """
        SELECT a.attname FROM pg_constraint c
        JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) ON true
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.contype = 'p' AND c.conrelid = %s::regclass ORDER BY k.ord""", [f"gold.{table}"])
    return [r[0] for r in found] or None


def _indexed_columns(conn, table: str) -> set[tuple[str, ...]]:
    found = pg.rows(conn, """
        SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i
        JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = %s::regclass GROUP BY i.indexrelid""", [f"gold.{table}"])
    return {tuple(r[0]) for r in found}


def _plain(values) -> list:
    """Values with every kind of missing (None, NaN, NA, NaT) as None, numpy scalars as Python ones."""
    return [None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in values]


def _relations_outside_gold(conn) -> set[str]:
    found = pg.rows(conn, """
        SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname <> 'gold'
          AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'""")
    return {r[0] for r in found}


# --- plain functions (no server) -----------------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("postgresql://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
    ("postgres://u@h/db?sslmode=require", "postgresql+psycopg2://u@h/db?sslmode=require"),
    ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
])
def test_normalise_pg_url_selects_psycopg2(url, expected):
    assert normalise_pg_url(url) == expected


def test_column_types_follow_pandas_dtypes():
    df = pd.DataFrame({
        "s": ["a", None], "b": [True, False], "nb": pd.array([True, None], dtype="boolean"),
        "i": [1, 2], "ni": pd.array([1, None], dtype="Int64"), "f": [0.5, None],
        "ts": pd.to_datetime(["2024-01-01", None]), "tz": pd.to_datetime(["2024-01-01", None], utc=True),
        "d": [dt.date(2024, 1, 1), None], "j": [{"a": 1}, None],
    })
    types = {c: publish._pg_type(df[c]) for c in df.columns}
    assert types == {
        "s": "text", "b": "boolean", "nb": "boolean", "i": "bigint", "ni": "bigint", "f": "double precision",
        "ts": "timestamp", "tz": "timestamp with time zone", "d": "date", "j": "jsonb",
    }


def test_duplicate_customer_ids_are_refused_before_touching_the_database():
    frames = pg.synthetic_gold(10)
    golden = pd.concat([frames["golden_customers"], frames["golden_customers"].head(2)])
    with pytest.raises(ValueError, match="duplicate the key"):
        publish_gold("postgresql://nobody@127.0.0.1:1/none", {"golden_customers": golden})


def test_unknown_table_is_refused():
    with pytest.raises(ValueError, match="no gold table spec"):
        publish_gold("postgresql://nobody@127.0.0.1:1/none", {"secret_stuff": pd.DataFrame({"a": [1]})})


# --- against the server ---------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_publish_lands_every_table_with_keys_indexes_and_values(pg_url, bi_role):
    frames = pg.synthetic_gold(2_000, seed=3)
    result = publish_gold(pg_url, frames, bi_role=bi_role)

    assert {name: r["rows"] for name, r in result.items()} == {name: len(df) for name, df in frames.items()}
    assert all(r["seconds"] >= 0 for r in result.values())
    with contextlib.closing(pg.connect(pg_url)) as conn:
        for name, df in frames.items():
            assert pg.scalar(conn, f"SELECT count(*) FROM gold.{name}") == len(df)
        assert _primary_key(conn, "golden_customers") == ["customer_id"]
        assert _primary_key(conn, "customer_xref") == ["source", "source_key"]
        assert _primary_key(conn, "customer_id_history") == ["old_id", "new_id", "changed_at"]
        assert _primary_key(conn, "source_freshness") == ["source"]
        # The report's key holds nulls (table-level metrics have no field): a unique index stands in for the PK.
        assert _primary_key(conn, "data_quality_report") is None
        assert ("run_id", "source", "metric", "field") in _indexed_columns(conn, "data_quality_report")
        assert result["data_quality_report"]["unique_key"] == ["run_id", "source", "metric", "field"]
        assert {("email",), ("phone",), ("postcode",), ("last_name",)} <= _indexed_columns(conn, "golden_customers")
        assert ("customer_id",) in _indexed_columns(conn, "customer_xref")
        assert ("new_id",) in _indexed_columns(conn, "customer_id_history")

        types = dict(pg.rows(conn, """SELECT column_name, data_type FROM information_schema.columns
                                      WHERE table_schema = 'gold' AND table_name = 'golden_customers'"""))
        assert types["customer_id"] == "text"
        assert types["birth_date"] == "date"
        assert types["marketing_consent"] == "boolean"
        assert types["source_record_count"] == "bigint"
        assert types["data_quality_score"] == "double precision"
        assert types["first_seen_at"] == "timestamp without time zone"

        # Values survive the CSV round trip: nulls stay null, quotes/commas/umlauts stay as they were.
        golden = frames["golden_customers"].set_index("customer_id")
        sample = golden.index[:50].tolist()
        back = pd.DataFrame(
            pg.rows(conn, "SELECT customer_id, email, street, last_name, birth_date, marketing_consent, first_seen_at"
                          " FROM gold.golden_customers WHERE customer_id = ANY(%s)", [sample]),
            columns=["customer_id", "email", "street", "last_name", "birth_date", "marketing_consent",
                     "first_seen_at"]).set_index("customer_id").loc[sample]
        expected = golden.loc[sample]
        for column in ("email", "street", "last_name", "birth_date", "marketing_consent"):
            assert _plain(back[column]) == _plain(expected[column]), column
        assert [pd.Timestamp(v) for v in back["first_seen_at"]] == expected["first_seen_at"].tolist()
        assert not pg.rows(conn, "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                 " WHERE n.nspname = 'gold' AND c.relname LIKE '\\_new\\_%%'")


@pytest.mark.postgres
def test_empty_strings_and_nulls_are_kept_apart(pg_url, bi_role):
    df = pd.DataFrame({"source": ["pos", "shop", "app"], "note": ["", None, '\\N "quoted", comma']})
    publish_gold(pg_url, {"source_freshness": df}, bi_role=bi_role)
    with contextlib.closing(pg.connect(pg_url)) as conn:
        got = dict(pg.rows(conn, "SELECT source, note FROM gold.source_freshness"))
    assert got == {"pos": "", "shop": None, "app": '\\N "quoted", comma'}


@pytest.mark.postgres
def test_absent_key_columns_publish_without_the_key_and_say_so(pg_url, bi_role):
    report = pd.DataFrame({"metric": ["row_count"], "value": [1.0]})
    result = publish_gold(pg_url, {"data_quality_report": report}, bi_role=bi_role)
    res = result["data_quality_report"]
    assert res["primary_key"] is None and res["unique_key"] is None
    assert any("absent" in note for note in res["notes"])
    with contextlib.closing(pg.connect(pg_url)) as conn:
        assert pg.scalar(conn, "SELECT count(*) FROM gold.data_quality_report") == 1
        assert _primary_key(conn, "data_quality_report") is None


@pytest.mark.postgres
def test_failed_publish_leaves_every_old_table_in_place(pg_url, bi_role, monkeypatch):
    old = pg.synthetic_gold(300, seed=1)
    publish_gold(pg_url, old, bi_role=bi_role)
    new = pg.synthetic_gold(500, seed=2)
    real_swap_one, swapped = publish._swap_one, []

    def swap_then_fail(cur, plan):
        real_swap_one(cur, plan)
        swapped.append(plan.name)
        if len(swapped) == 2:
            raise RuntimeError("connection lost mid-swap")

    monkeypatch.setattr(publish, "_swap_one", swap_then_fail)
    with pytest.raises(RuntimeError, match="mid-swap"):
        publish_gold(pg_url, new, bi_role=bi_role)
    with contextlib.closing(pg.connect(pg_url)) as conn:
        for name, df in old.items():
            assert pg.scalar(conn, f"SELECT count(*) FROM gold.{name}") == len(df)
        assert _primary_key(conn, "golden_customers") == ["customer_id"]


@pytest.mark.postgres
def test_republish_is_atomic_for_concurrent_readers(pg_url, bi_role):
    old, new = pg.synthetic_gold(20_000, seed=1), pg.synthetic_gold(30_000, seed=2)
    publish_gold(pg_url, old, bi_role=bi_role)
    old_counts = (len(old["golden_customers"]), len(old["customer_xref"]))
    new_counts = (len(new["golden_customers"]), len(new["customer_xref"]))

    seen: list[tuple[int, ...]] = []
    errors: list[BaseException] = []
    publishing = threading.Event()
    done = threading.Event()

    def reader():
        try:
            with contextlib.closing(pg.connect(pg_url)) as conn:
                while not done.is_set():
                    seen.append(_counts(conn) + (publishing.is_set(),))
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    publishing.set()
    publish_gold(pg_url, new, bi_role=bi_role)
    publishing.clear()
    time.sleep(0.2)
    done.set()
    thread.join(timeout=30)

    assert not errors, errors
    observed = {s[:2] for s in seen}
    assert observed <= {old_counts, new_counts}, f"a reader saw a partial or mixed state: {observed}"
    during = [s for s in seen if s[2]]
    assert len(during) > 5, "the reader never ran while the publish did"
    assert seen[0][:2] == old_counts and seen[-1][:2] == new_counts


@pytest.mark.postgres
def test_repeatable_read_reader_keeps_its_snapshot_and_publish_waits_for_it(pg_url, bi_role):
    old, new = pg.synthetic_gold(1_000, seed=1), pg.synthetic_gold(1_500, seed=2)
    publish_gold(pg_url, old, bi_role=bi_role)
    old_counts = (len(old["golden_customers"]), len(old["customer_xref"]))
    new_counts = (len(new["golden_customers"]), len(new["customer_xref"]))

    reader = pg.connect(pg_url, autocommit=False)
    reader.set_session(isolation_level="REPEATABLE READ")
    outcome: dict = {}
    try:
        assert _counts(reader) == old_counts
        thread = threading.Thread(target=lambda: outcome.update(result=publish_gold(pg_url, new, bi_role=bi_role)))
        thread.start()
        with contextlib.closing(pg.connect(pg_url)) as watcher:
            waited = False
            for _ in range(300):  # the publish reaches the swap and queues behind the reader's lock
                waited = bool(pg.scalar(watcher, """
                    SELECT count(*) FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock'"""))
                if waited:
                    break
                time.sleep(0.05)
        assert waited, "the publish never waited for the reader"
        for _ in range(5):
            assert _counts(reader) == old_counts
            time.sleep(0.05)
        assert thread.is_alive()
    finally:
        reader.rollback()
        reader.close()
    thread.join(timeout=60)
    assert outcome["result"]["golden_customers"]["rows"] == new_counts[0]
    with contextlib.closing(pg.connect(pg_url)) as conn:
        assert _counts(conn) == new_counts


@pytest.mark.postgres
def test_bi_role_reads_gold_and_nothing_else(pg_url, bi_role):
    with contextlib.closing(pg.connect(pg_url)) as admin:
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{bi_role}" LOGIN PASSWORD %s', ["bi-test-pw"])
            cur.execute("CREATE TABLE public.secret (national_id text)")
            cur.execute("INSERT INTO public.secret VALUES ('123-45-6789')")
            cur.execute("CREATE SCHEMA staging")
            cur.execute("CREATE TABLE staging.x (email text)")
            cur.execute("INSERT INTO staging.x VALUES ('someone@example.org')")
            # Rights a careless DBA might have handed out, and PostgreSQL < 15's default for `public`.
            cur.execute(f'GRANT SELECT ON staging.x TO "{bi_role}"')
            cur.execute(f'GRANT USAGE, CREATE ON SCHEMA staging TO "{bi_role}"')
            cur.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")

    frames = pg.synthetic_gold(200, seed=5)
    publish_gold(pg_url, frames, bi_role=bi_role)
    publish_gold(pg_url, pg.synthetic_gold(250, seed=6), bi_role=bi_role)  # new tables keep the grants

    bi_url = pg.url_for(sa.make_url(pg_url).database, user=bi_role, password="bi-test-pw", url=pg_url)
    with contextlib.closing(pg.connect(bi_url)) as bi:
        for name in GOLD_TABLES:
            assert pg.scalar(bi, f"SELECT count(*) FROM gold.{name}") > 0
        denied = [
            "INSERT INTO gold.golden_customers (customer_id) VALUES ('Cx')",
            "UPDATE gold.golden_customers SET email = NULL",
            "DELETE FROM gold.customer_xref",
            "TRUNCATE gold.customer_xref",
            "CREATE TABLE gold.mine (a int)",
            "ALTER TABLE gold.golden_customers ADD COLUMN x int",
            "DROP TABLE gold.source_freshness",
            "CREATE TABLE public.mine (a int)",
            "CREATE SCHEMA mine",
            "SELECT * FROM public.secret",
            "SELECT * FROM staging.x",
            "CREATE TABLE staging.mine (a int)",
        ]
        for statement in denied:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege), bi.cursor() as cur:
                cur.execute(statement)

    with contextlib.closing(pg.connect(pg_url)) as admin:
        rights = pg.rows(admin, """
            SELECT n.nspname, c.relname,
                   has_table_privilege(%(r)s, c.oid, 'SELECT'), has_table_privilege(%(r)s, c.oid, 'INSERT'),
                   has_table_privilege(%(r)s, c.oid, 'UPDATE'), has_table_privilege(%(r)s, c.oid, 'DELETE')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')""", {"r": bi_role})
        for schema, table, can_select, *can_write in rights:
            assert can_select == (schema == "gold"), (schema, table)
            assert not any(can_write), (schema, table)
        assert not pg.scalar(admin, "SELECT has_schema_privilege(%s, 'gold', 'CREATE')", [bi_role])
        # Nobody may create in `public` through PUBLIC (grantee 0) any more.
        assert not pg.scalar(admin, """SELECT bool_or(acl.privilege_type = 'CREATE')
                                      FROM pg_namespace n, aclexplode(n.nspacl) acl
                                      WHERE n.nspname = 'public' AND acl.grantee = 0""")


@pytest.mark.postgres
def test_bi_role_is_created_nologin_unless_a_password_is_given(pg_url, bi_role):
    publish_gold(pg_url, {"source_freshness": pg.synthetic_gold(5)["source_freshness"]}, bi_role=bi_role)
    assert pg.scalar(pg_url, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [bi_role]) is False
    publish_gold(pg_url, {"source_freshness": pg.synthetic_gold(5)["source_freshness"]}, bi_role=bi_role,
                 bi_password="s3cret-for-test")
    assert pg.scalar(pg_url, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [bi_role]) is True
    bi_url = pg.url_for(sa.make_url(pg_url).database, user=bi_role, password="s3cret-for-test", url=pg_url)
    assert pg.scalar(bi_url, "SELECT count(*) FROM gold.source_freshness") == 4


@pytest.mark.postgres
def test_personal_data_is_published_only_in_gold(pg_url, bi_role):
    with contextlib.closing(pg.connect(pg_url)) as admin:
        before = _relations_outside_gold(admin)
    frames = pg.synthetic_gold(500, seed=7)
    publish_gold(pg_url, frames, bi_role=bi_role)
    publish_gold(pg_url, frames, bi_role=bi_role)
    with contextlib.closing(pg.connect(pg_url)) as admin:
        assert _relations_outside_gold(admin) == before
        in_gold = {r[0] for r in pg.rows(admin, """SELECT c.relname FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'gold' AND c.relkind = 'r'""")}
        assert in_gold == GOLD_TABLES
        emails = frames["golden_customers"]["email"].dropna().head(20).tolist()
        text_columns = pg.rows(admin, """SELECT table_schema, table_name, column_name FROM information_schema.columns
            WHERE table_schema NOT IN ('gold', 'pg_catalog', 'information_schema')
              AND data_type IN ('text', 'character varying')""")
        for schema, table, column in text_columns:
            hits = pg.scalar(admin, f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}" = ANY(%s)', [emails])
            assert hits == 0, f"{schema}.{table}.{column} holds published e-mails"
