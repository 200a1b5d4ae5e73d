"""Publish the gold tables to schema `gold` of a PostgreSQL database, swapped in atomically, readable by BI.

How a publish works (one transaction, serialised per database by an advisory lock):

1. every table is COPYed (CSV built from the DataFrame) into `gold._new_<name>`, gets its primary key and
   indexes and is ANALYZEd; none of this is visible to anyone else, and the live tables stay readable;
2. the swap: `DROP TABLE gold.<name>` and `ALTER TABLE gold._new_<name> RENAME TO <name>` for every table,
   then the grants for the BI role; COMMIT. DROP/ALTER take ACCESS EXCLUSIVE locks, so a reader that
   arrives during the swap waits until the commit (milliseconds) and then reads the new table; a reader
   never sees a half-loaded table or a mix of old and new tables. A transaction that already read a gold
   table holds its lock until it ends, and the swap waits for it (`lock_timeout`, retried from a savepoint,
   so a long report query delays the publish instead of failing it or deadlocking with it).

Caveat (PostgreSQL's own, as for TRUNCATE): a REPEATABLE READ / SERIALIZABLE transaction whose snapshot
was taken before the swap and that touches a gold table for the first time after it sees that table empty.
READ COMMITTED readers (the default, and what BI tools use) are not affected.

The quality report is published as a bounded trend, not its whole history: the newest run of each of the last
`CUSTOMER_PIPELINE_QUALITY_TREND_DAYS` days (default 30; `quality.report.trend`), and the view
`gold.data_quality_report_latest` shows its newest run (dropped and recreated with the table in the swap).

Personal data is written only to schema `gold`. The BI role (one per database by default, `bi_reader_<database>`,
so two deployments on one server never share a role or its password) gets CONNECT on this database only, USAGE
on `gold`, SELECT on its tables (and on the tables each publish swaps in, by default privileges) and nothing else:
no TEMP, nothing in `public` or any other schema. What PostgreSQL grants PUBLIC here by default is revoked:
CONNECT and TEMP on the database, USAGE (and CREATE before PostgreSQL 15) on schema `public`. That concerns
every role, so afterwards only the database owner, superusers, the BI role (and the login roles it is granted
to) and roles granted CONNECT explicitly may connect. The owner keeps all its rights. A publishing user that
is neither owner nor superuser cannot revoke PUBLIC's rights; the publish then logs a warning saying so.
"""

import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import psycopg2.errors
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from psycopg2 import sql
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

SCHEMA = "gold"
STAGING_PREFIX = "_new_"
COPY_CHUNK_ROWS = 200_000
# The swap waits at most this long for readers' locks per attempt, so BI queries queued behind it stall briefly.
SWAP_LOCK_TIMEOUT_MS = 3_000
SWAP_ATTEMPTS = 20
MAINTENANCE_WORK_MEM = "256MB"
_ADVISORY_LOCK_KEY = "customer_pipeline.publish_gold"
_PG_IDENT_MAX = 63
BI_ROLE_PREFIX = "bi_reader_"
QUALITY_TABLE = "data_quality_report"
QUALITY_LATEST_VIEW = "data_quality_report_latest"
# Role attributes that override grants: a BI role holding one of them is refused rather than granted to.
_BI_ROLE_FORBIDDEN = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")


@dataclass(frozen=True)
class TableSpec:
    """Primary key and BI lookup indexes of one gold table (indexes on absent columns are skipped)."""

    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    # False: duplicate keys publish the table without its key (with a note) instead of failing the publish.
    strict_key: bool = True


GOLD_SPECS: dict[str, TableSpec] = {
    "golden_customers": TableSpec(
        primary_key=("customer_id",),
        indexes=(("email",), ("phone",), ("postcode",), ("last_name",), ("household_id",)),
    ),
    "customer_xref": TableSpec(primary_key=("source", "source_key"), indexes=(("customer_id",),)),
    "customer_id_history": TableSpec(primary_key=("old_id", "new_id", "changed_at"), indexes=(("new_id",),)),
    "households": TableSpec(primary_key=("household_id",), indexes=(("postcode",),)),
    "household_id_history": TableSpec(primary_key=("old_id", "new_id", "changed_at"), indexes=(("new_id",),)),
    "source_freshness": TableSpec(primary_key=("source",)),
    "data_quality_report": TableSpec(
        primary_key=("run_id", "source", "metric", "field"),
        indexes=(("measured_at",),),
        strict_key=False,
    ),
    # customer-360 marts (docs/marts.md)
    "customer_purchases": TableSpec(
        primary_key=("purchase_line_id",),
        indexes=(("customer_id",), ("purchase_date",), ("sku",), ("occasion_id",)),
    ),
    "customer_rfm": TableSpec(primary_key=("customer_id",), indexes=(("segment",),)),
    "market_basket": TableSpec(primary_key=("antecedent_sku", "consequent_sku"), indexes=(("consequent_sku",),)),
    "customer_recommendations": TableSpec(primary_key=("customer_id", "rank"), indexes=(("sku",),)),
    "customer_churn": TableSpec(primary_key=("customer_id",), indexes=(("churn_band",),)),
    "marketing_audience": TableSpec(primary_key=("customer_id", "channel"),
                                    indexes=(("channel", "may_contact"), ("household_id",))),
    "customer_demographics": TableSpec(primary_key=("customer_id",),
                                       indexes=(("age_band",), ("country",), ("rfm_segment",))),
}


def normalise_pg_url(url: str) -> str:
    """A SQLAlchemy URL for psycopg2 (SQLAlchemy 2.1 reads a plain `postgresql://` as psycopg 3)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def default_bi_role(database: str) -> str:
    """The BI role of one database: `bi_reader_<database>`, a hash added when the name had to be changed."""
    safe = re.sub(r"[^a-z0-9_]+", "_", database.lower()).strip("_") or "db"
    name = BI_ROLE_PREFIX + safe
    # Lower-casing, replacing or cutting could make two databases' names meet: the hash keeps them apart.
    if safe != database or len(name) > _PG_IDENT_MAX:
        digest = hashlib.sha1(database.encode()).hexdigest()[:8]
        name = f"{name[:_PG_IDENT_MAX - len(digest) - 1]}_{digest}"
    return name


def bi_role_for(pg_url: str, bi_role: str | None = None) -> str:
    """The role BI reads a publish target with: `bi_role` when given, else the database's own role."""
    if bi_role and bi_role.strip():
        return bi_role.strip()
    database = sa.make_url(normalise_pg_url(pg_url)).database
    if not database:
        raise ValueError("the PostgreSQL URL names no database")
    return default_bi_role(database)


def publish_gold(
    pg_url: str,
    tables: Mapping[str, pd.DataFrame],
    bi_role: str | None = None,
    specs: Mapping[str, TableSpec] = GOLD_SPECS,
    *,
    bi_password: str | None = None,
    quality_trend_days: int | None = None,
) -> dict[str, dict]:
    """Replace the given gold tables in one transaction; return per table rows, seconds, keys, indexes, notes.

    The BI role (default: `default_bi_role(<database>)`) is created if missing: NOLOGIN, or LOGIN with
    `bi_password` when one is given (an existing role's password is then set to it). The quality report is
    cut to its trend of `quality_trend_days` days (default: `CUSTOMER_PIPELINE_QUALITY_TREND_DAYS`).
    """
    unknown = sorted(set(tables) - set(specs))
    if unknown:
        raise ValueError(f"no gold table spec for {unknown}; known: {sorted(specs)}")
    tables, trend_note = _quality_trend(tables, quality_trend_days)
    plans = {name: _plan(name, df, specs[name]) for name, df in tables.items()}
    if trend_note:
        plans[QUALITY_TABLE].notes.append(trend_note)

    engine = sa.create_engine(normalise_pg_url(pg_url), poolclass=NullPool)
    raw = engine.raw_connection()
    conn = raw.driver_connection
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_ADVISORY_LOCK_KEY])
            # Index builds sort in memory instead of spilling to disk (a session setting, no privilege needed).
            cur.execute("SET LOCAL maintenance_work_mem = %s", [MAINTENANCE_WORK_MEM])
            bi_role = bi_role.strip() if bi_role and bi_role.strip() else default_bi_role(conn.info.dbname)
            _ensure_role(cur, bi_role, bi_password)
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            nulls_not_distinct = conn.server_version >= 150000
            results = {}
            for name, plan in plans.items():
                started = time.perf_counter()
                _load_staging(cur, plan, nulls_not_distinct)
                results[name] = plan.result(time.perf_counter() - started)
            swap_started = time.perf_counter()
            _swap(cur, list(plans.values()))
            _grant(cur, bi_role, conn.info.dbname)
        conn.commit()
        swap_seconds = time.perf_counter() - swap_started
    except BaseException:
        conn.rollback()
        raise
    finally:
        raw.close()
        engine.dispose()
    for name, res in results.items():
        res["swap_seconds"] = round(swap_seconds, 3)
        for note in res["notes"]:
            log.info("gold.%s: %s", name, note)
    return results


# --- planning: names, types, keys (no database needed) -------------------------------------------------------


def _has_runs(df: pd.DataFrame) -> bool:
    return {"run_id", "measured_at"} <= set(map(str, df.columns))


def _quality_trend(tables: Mapping[str, pd.DataFrame], days: int | None) -> tuple[dict, str | None]:
    """The tables with the quality report's history cut to its trend (BI needs the trend, not every run)."""
    report = tables.get(QUALITY_TABLE)
    if report is None or not _has_runs(report):
        return dict(tables), None
    from customer_pipeline.quality.report import trend
    from customer_pipeline.settings import Settings

    days = Settings.from_env().quality_trend_days if days is None else days
    kept = trend(report, days)
    note = (f"quality trend: {kept['run_id'].nunique()} of {report['run_id'].nunique()} runs "
            f"(the newest of each of the last {days} days)")
    return {**tables, QUALITY_TABLE: kept}, note


@dataclass
class _Plan:
    name: str
    df: pd.DataFrame
    columns: list[tuple[str, str]]  # (column, PostgreSQL type)
    key: tuple[str, ...]
    indexes: list[tuple[str, ...]]
    notes: list[str]
    unique_key: bool = False  # key holds nulls: a unique index instead of a primary key

    @property
    def staging(self) -> str:
        return STAGING_PREFIX + self.name

    def result(self, seconds: float) -> dict:
        return {
            "rows": len(self.df),
            "seconds": round(seconds, 3),
            "columns": len(self.columns),
            "primary_key": list(self.key) if self.key and not self.unique_key else None,
            "unique_key": list(self.key) if self.key and self.unique_key else None,
            "indexes": [list(cols) for cols in self.indexes],
            "notes": list(self.notes),
        }


def _plan(name: str, df: pd.DataFrame, spec: TableSpec) -> _Plan:
    df = df.rename(columns=str)
    if df.columns.duplicated().any():
        raise ValueError(f"gold.{name}: duplicate column names {sorted(df.columns[df.columns.duplicated()])}")
    too_long = [c for c in df.columns if len(c.encode()) > _PG_IDENT_MAX]
    if too_long or len((STAGING_PREFIX + name).encode()) > _PG_IDENT_MAX:
        raise ValueError(f"gold.{name}: names longer than {_PG_IDENT_MAX} bytes: {too_long or [name]}")
    if len(df.columns) == 0:
        raise ValueError(f"gold.{name}: the frame has no columns")
    notes: list[str] = []
    key = tuple(spec.primary_key)
    missing = [c for c in key if c not in df.columns]
    if missing:
        notes.append(f"key columns {missing} absent: published without the key {list(key)}")
        key = ()
    unique_key = False
    if key:
        dupes = int(df.duplicated(subset=list(key)).sum())
        if dupes and spec.strict_key:
            raise ValueError(f"gold.{name}: {dupes} rows duplicate the key {list(key)}; nothing was published")
        if dupes:
            notes.append(f"{dupes} rows duplicate the key {list(key)}: published without the key")
            key = ()
        elif df[list(key)].isna().any().any():
            notes.append(f"key {list(key)} holds nulls: a unique index instead of a primary key")
            unique_key = True
    indexes = []
    for cols in spec.indexes:
        absent = [c for c in cols if c not in df.columns]
        if absent:
            notes.append(f"index on {list(cols)} skipped: columns absent")
        elif tuple(cols) != key[: len(cols)]:
            indexes.append(tuple(cols))
    columns = [(c, _pg_type(df[c])) for c in df.columns]
    return _Plan(name, df, columns, key, indexes, notes, unique_key)


def _pg_type(s: pd.Series) -> str:
    """The PostgreSQL column type for a pandas column."""
    dt = s.dtype
    if isinstance(dt, pd.ArrowDtype):
        return _arrow_pg_type(dt.pyarrow_dtype)
    if isinstance(dt, pd.CategoricalDtype):
        return "text"
    if pd.api.types.is_bool_dtype(dt):
        return "boolean"
    if pd.api.types.is_integer_dtype(dt):
        return "numeric(20)" if str(dt).lower() == "uint64" else "bigint"
    if pd.api.types.is_float_dtype(dt):
        return "double precision"
    if isinstance(dt, pd.DatetimeTZDtype):
        return "timestamp with time zone"
    if pd.api.types.is_datetime64_dtype(dt):
        return "timestamp"
    if pd.api.types.is_timedelta64_dtype(dt):
        return "interval"
    if pd.api.types.is_string_dtype(dt) and not pd.api.types.is_object_dtype(dt):
        return "text"
    inferred = pd.api.types.infer_dtype(s, skipna=True)
    if inferred == "boolean":
        return "boolean"
    if inferred == "integer":
        return "bigint"
    if inferred in ("floating", "mixed-integer-float"):
        return "double precision"
    if inferred == "date":
        return "date"
    if inferred in ("datetime", "datetime64"):
        first = s.dropna().iloc[0]
        return "timestamp with time zone" if getattr(first, "tzinfo", None) is not None else "timestamp"
    if inferred == "decimal":
        return "numeric"
    if inferred == "mixed" and s.dropna().map(lambda v: isinstance(v, (dict, list))).all():
        return "jsonb"
    return "text"


def _arrow_pg_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "numeric(20)" if t == pa.uint64() else "bigint"
    if pa.types.is_floating(t):
        return "double precision"
    if pa.types.is_timestamp(t):
        return "timestamp with time zone" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_decimal(t):
        return "numeric"
    return "text"


# --- loading: CSV COPY into the staging table ----------------------------------------------------------------


def _arrow_column(s: pd.Series, pg_type: str) -> pa.Array:
    """One column as an Arrow array whose CSV text PostgreSQL reads back as `pg_type`."""
    if pg_type == "text":
        if pd.api.types.is_object_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object).map(str, na_action="ignore")
        # PostgreSQL text cannot hold NUL characters.
        return pc.replace_substring(pa.array(s, type=pa.string(), from_pandas=True), "\x00", "")
    if pg_type == "jsonb":
        return pa.array(s.map(lambda v: json.dumps(v, default=str), na_action="ignore"), pa.string(), from_pandas=True)
    if pg_type in ("interval", "numeric"):
        return pa.array(s.astype(object).map(str, na_action="ignore"), pa.string(), from_pandas=True)
    if pg_type == "timestamp with time zone":
        return pa.array(pd.to_datetime(s, utc=True), from_pandas=True)
    if pg_type == "timestamp" and not pd.api.types.is_datetime64_any_dtype(s.dtype):
        return pa.array(pd.to_datetime(s), from_pandas=True)
    arrow_type = {"boolean": pa.bool_(), "bigint": pa.int64(), "numeric(20)": pa.uint64(),
                  "double precision": pa.float64(), "date": pa.date32()}.get(pg_type)
    return pa.array(s, type=arrow_type, from_pandas=True)


def _copy(cur, table: sql.Composable, plan: _Plan) -> None:
    """COPY the frame in as CSV: every non-null value quoted (so '' stays ''), nulls as unquoted empty fields."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c, _ in plan.columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(table, names).as_string(cur)
    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    df = plan.df
    for start in range(0, len(df), COPY_CHUNK_ROWS):
        chunk = df.iloc[start:start + COPY_CHUNK_ROWS]
        arrays = [_arrow_column(chunk[c], t) for c, t in plan.columns]
        buffer = io.BytesIO()
        pacsv.write_csv(pa.table(arrays, names=[c for c, _ in plan.columns]), buffer, options)
        buffer.seek(0)
        cur.copy_expert(statement, buffer, size=1 << 20)


def _load_staging(cur, plan: _Plan, nulls_not_distinct: bool) -> None:
    staging = sql.Identifier(SCHEMA, plan.staging)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in plan.columns
    )
    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(staging, cols))
    if len(plan.df):
        _copy(cur, staging, plan)
    if plan.key:
        key_cols = sql.SQL(", ").join(sql.Identifier(c) for c in plan.key)
        if plan.unique_key:
            nnd = sql.SQL(" NULLS NOT DISTINCT" if nulls_not_distinct else "")
            cur.execute(sql.SQL("CREATE UNIQUE INDEX {} ON {} ({}){}").format(
                sql.Identifier(_index_name(plan.staging, plan.key, "key")), staging, key_cols, nnd))
        else:
            cur.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
                staging, sql.Identifier(_index_name(plan.staging, (), "pkey")), key_cols))
    for cols in plan.indexes:
        cur.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
            sql.Identifier(_index_name(plan.staging, cols, "idx")), staging,
            sql.SQL(", ").join(sql.Identifier(c) for c in cols)))
    cur.execute(sql.SQL("ANALYZE {}").format(staging))


def _index_name(table: str, cols: Sequence[str], suffix: str) -> str:
    name = "_".join([table, *cols, suffix])
    if len(name.encode()) > _PG_IDENT_MAX:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{table[:_PG_IDENT_MAX - len(suffix) - 10]}_{digest}_{suffix}"
    return name


# --- the swap and the grants ----------------------------------------------------------------------------------


def _swap(cur, plans: list[_Plan]) -> None:
    """Drop the live tables and rename the staging ones, retried from a savepoint while readers hold locks."""
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        cur.execute("SAVEPOINT gold_swap")
        try:
            cur.execute("SET LOCAL lock_timeout = %s", [f"{SWAP_LOCK_TIMEOUT_MS}ms"])
            quality = next((p for p in plans if p.name == QUALITY_TABLE), None)
            if quality is not None:  # the view depends on the table it replaces
                cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(SCHEMA, QUALITY_LATEST_VIEW)))
            for plan in plans:
                _swap_one(cur, plan)
            if quality is not None and _has_runs(quality.df):
                cur.execute(sql.SQL(
                    "CREATE VIEW {view} AS SELECT * FROM {table} WHERE run_id = "
                    "(SELECT run_id FROM {table} ORDER BY measured_at DESC LIMIT 1)").format(
                    view=sql.Identifier(SCHEMA, QUALITY_LATEST_VIEW), table=sql.Identifier(SCHEMA, QUALITY_TABLE)))
            cur.execute("SET LOCAL lock_timeout = DEFAULT")
            cur.execute("RELEASE SAVEPOINT gold_swap")
            return
        except (psycopg2.errors.LockNotAvailable, psycopg2.errors.DeadlockDetected) as exc:
            cur.execute("ROLLBACK TO SAVEPOINT gold_swap")
            if attempt == SWAP_ATTEMPTS:
                raise RuntimeError(
                    f"gold swap gave up after {attempt} attempts: readers kept locks on gold tables") from exc
            log.info("gold swap attempt %s waited on readers (%s); retrying", attempt, type(exc).__name__)
            time.sleep(min(0.2 * attempt, 2.0))


def _swap_one(cur, plan: _Plan) -> None:
    live = sql.Identifier(SCHEMA, plan.name)
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(live))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
        sql.Identifier(SCHEMA, plan.staging), sql.Identifier(plan.name)))
    if plan.key and not plan.unique_key:
        cur.execute(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
            live, sql.Identifier(_index_name(plan.staging, (), "pkey")),
            sql.Identifier(_index_name(plan.name, (), "pkey"))))
    renames = [(plan.key, "key")] if plan.unique_key else []
    renames += [(cols, "idx") for cols in plan.indexes]
    for cols, suffix in renames:
        cur.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
            sql.Identifier(SCHEMA, _index_name(plan.staging, cols, suffix)),
            sql.Identifier(_index_name(plan.name, cols, suffix))))


def _ensure_role(cur, role: str, password: str | None) -> None:
    cur.execute("SELECT " + ", ".join(_BI_ROLE_FORBIDDEN) + " FROM pg_roles WHERE rolname = %s", [role])
    found = cur.fetchone()
    if found is not None and any(found):
        held = [attr[3:].upper() for attr, on in zip(_BI_ROLE_FORBIDDEN, found) if on]
        raise ValueError(f"BI role {role!r} has {', '.join(held)}, which grants cannot limit: use a plain role")
    if found is None:
        cur.execute("SAVEPOINT bi_role")
        try:
            if password:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), [password])
            else:
                cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            cur.execute("RELEASE SAVEPOINT bi_role")
            return
        except psycopg2.errors.DuplicateObject:
            # Another publish created it meanwhile (roles are cluster-wide).
            cur.execute("ROLLBACK TO SAVEPOINT bi_role")
    if password:
        cur.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), [password])


# Direct grants to the BI role outside `gold` (on schemas, relations, routines, default privileges), to revoke.
_STRAY_GRANTS = """
SELECT 'schema', format('%%I', n.nspname), NULL, NULL
  FROM pg_namespace n, aclexplode(n.nspacl) a WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(r)s) AND n.nspname <> %(gold)s
UNION
SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, format('%%I.%%I', n.nspname, c.relname), NULL, NULL
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
 WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(r)s) AND n.nspname <> %(gold)s
UNION
SELECT 'routine', p.oid::regprocedure::text, NULL, NULL
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
 WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(r)s) AND n.nspname <> %(gold)s
UNION
SELECT 'default', quote_ident(pg_get_userbyid(d.defaclrole)), format('%%I', n.nspname), d.defaclobjtype::text
  FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a
 WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %(r)s) AND n.nspname IS DISTINCT FROM %(gold)s
"""
_DEFAULT_ACL_KINDS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


def _grant(cur, role: str, dbname: str) -> None:
    """BI reads `gold` of this database and nothing else; PUBLIC loses its default rights here."""
    r, gold, db = sql.Identifier(role), sql.Identifier(SCHEMA), sql.Identifier(dbname)
    cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'public'")
    has_public = cur.fetchone() is not None
    statements = [
        # PUBLIC's defaults let every role of the server connect here and create temporary tables; the owner's
        # own entry stays (REVOKE writes out the default ACL without PUBLIC's part).
        sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db, r),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, r),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC, {}").format(gold, r),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(gold, r),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM PUBLIC, {}").format(gold, r),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(gold, r),
        # Tables this user creates in gold (each publish's `_new_*`, renamed in the swap) are readable at once.
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(gold, r),
    ]
    if has_public:
        # USAGE (PostgreSQL 15+) and CREATE (older): `public` is for the owner (pg_database_owner) only.
        statements.insert(0, sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
    for statement in statements:
        cur.execute(statement)

    cur.execute(_STRAY_GRANTS, {"r": role, "gold": SCHEMA})
    problems = []
    for kind, target, schema, objtype in cur.fetchall():
        if kind == "default":
            statement = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {}{} REVOKE ALL ON {} FROM {}").format(
                sql.SQL(target), sql.SQL(f" IN SCHEMA {schema}" if schema else ""),
                sql.SQL(_DEFAULT_ACL_KINDS[objtype]), r)
        else:
            statement = sql.SQL("REVOKE ALL ON {} {} FROM {}").format(sql.SQL(kind.upper()), sql.SQL(target), r)
        # Someone else's object: this user may not be allowed to revoke; say so instead of failing the publish.
        cur.execute("SAVEPOINT bi_revoke")
        try:
            cur.execute(statement)
            cur.execute("RELEASE SAVEPOINT bi_revoke")
        except psycopg2.errors.InsufficientPrivilege:
            cur.execute("ROLLBACK TO SAVEPOINT bi_revoke")
            problems.append(f"could not revoke {role}'s rights on {kind} {target}")

    cur.execute(
        "SELECT has_database_privilege('public', current_database(), 'CONNECT'),"
        " has_database_privilege('public', current_database(), 'TEMPORARY')")
    if any(cur.fetchone()):
        problems.append(f"database {dbname} still grants CONNECT/TEMPORARY to PUBLIC (only its owner or a "
                        f"superuser can revoke that: REVOKE CONNECT, TEMPORARY ON DATABASE {dbname} FROM PUBLIC)")
    for problem in problems:
        log.warning("BI role least privilege: %s", problem)
