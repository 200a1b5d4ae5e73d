"""Test helpers for the real PostgreSQL server: availability, throwaway databases and roles, connections."""

import contextlib
import os
import secrets
from collections.abc import Iterator

import psycopg2
import pytest
import sqlalchemy as sa
from psycopg2 import sql

from customer_pipeline.publish.postgres import normalise_pg_url

DEFAULT_TEST_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
ENV_URL = "CUSTOMER_PIPELINE_TEST_PG_URL"


def base_url() -> str:
    """The admin URL tests start from (a superuser on the `postgres` database by default)."""
    return normalise_pg_url(os.environ.get(ENV_URL, "").strip() or DEFAULT_TEST_PG_URL)


def url_for(database: str, user: str | None = None, password: str | None = None, url: str | None = None) -> str:
    """The base URL pointed at another database (and optionally another user)."""
    u = sa.make_url(url or base_url()).set(database=database)
    if user is not None:
        u = u.set(username=user, password=password)
    return u.render_as_string(hide_password=False)


def connect_args(url: str) -> dict:
    """psycopg2.connect keyword arguments for a SQLAlchemy URL."""
    u = sa.make_url(normalise_pg_url(url))
    args = {"host": u.host, "port": u.port, "user": u.username, "password": u.password, "dbname": u.database}
    args.update({k: v for k, v in u.query.items() if isinstance(v, str)})
    return {k: v for k, v in args.items() if v is not None}


def connect(url: str, autocommit: bool = True, **kwargs) -> "psycopg2.extensions.connection":
    conn = psycopg2.connect(connect_timeout=5, **{**connect_args(url), **kwargs})
    conn.autocommit = autocommit
    return conn


def pg_available(url: str | None = None) -> tuple[bool, str]:
    """(True, '') when the server answers, else (False, the error)."""
    try:
        with contextlib.closing(connect(url or base_url())) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        return True, ""
    except psycopg2.Error as exc:
        return False, str(exc).strip()


def require_pg() -> None:
    """Fail under CI=true, skip elsewhere, when the server is not there."""
    ok, error = pg_available()
    if ok:
        return
    where = sa.make_url(base_url()).render_as_string(hide_password=True)
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required under CI=true but {where} is unreachable: {error}", pytrace=False)
    pytest.skip(
        f"PostgreSQL not reachable at {where} ({error}); start PostgreSQL on 127.0.0.1:5432 "
        f"or set {ENV_URL} to run these tests"
    )


def _admin(autocommit: bool = True):
    return connect(base_url(), autocommit=autocommit)


@contextlib.contextmanager
def temp_database(prefix: str = "cp_test") -> Iterator[str]:
    """A fresh database `<prefix>_<random>`; yields its URL and drops it (WITH (FORCE)) afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_for(name)
    finally:
        with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def drop_role(name: str, database_urls: tuple[str, ...] = ()) -> None:
    """Drop a cluster-wide role made by a test, first revoking what it holds in the given databases."""
    with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cur.fetchone() is None:
            return
    for url in database_urls:
        with contextlib.suppress(psycopg2.OperationalError), contextlib.closing(connect(url)) as conn:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
    with contextlib.closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def temp_role_name(prefix: str = "cp_bi", database_urls: tuple[str, ...] = ()) -> Iterator[str]:
    """A unique role name, dropped at the end if something created it (roles are shared by all databases)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        yield name
    finally:
        drop_role(name, database_urls)


def scalar(url_or_conn, query, params=None):
    """The first column of the first row."""
    if isinstance(url_or_conn, str):
        with contextlib.closing(connect(url_or_conn)) as conn:
            return scalar(conn, query, params)
    with url_or_conn.cursor() as cur:
        cur.execute(query, params)
        row = cur.fetchone()
        return None if row is None else row[0]


def rows(conn, query, params=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def synthetic_gold(customers: int, seed: int = 0, xref_per_customer: float = 2.5) -> dict:
    """Gold frames of the pipeline's shape (golden_customers, customer_xref, id history, households, household id
    history, freshness, report)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    ids = np.array([f"C{seed:02x}{i:014x}" for i in range(customers)], dtype=object)
    first = rng.choice(["Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Jonas", "Zoë", "Ömer"], customers)
    last = rng.choice(["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "O'Brien", "Meyer", "Wagner"], customers)
    n = pd.Series(np.arange(customers)).astype(str)
    email = pd.Series(first).str.lower() + "." + pd.Series(last).str.lower() + n + "@example.org"
    email = email.where(rng.random(customers) > 0.1, None)
    phone = ("+4915" + pd.Series(rng.integers(10_000_000, 99_999_999, customers)).astype(str))
    phone = phone.where(rng.random(customers) > 0.2, None)
    seen = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 600 * 86_400, customers), unit="s")
    consent = pd.array(rng.choice([True, False, None], customers), dtype="boolean")
    golden = pd.DataFrame({
        "customer_id": ids,
        "first_name": first,
        "last_name": last,
        "display_name": pd.Series(first) + " " + pd.Series(last),
        "gender": rng.choice(["M", "F", "X", None], customers),
        "birth_date": (pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 20_000, customers), unit="D")).date,
        "email": email,
        "email_suppressed": rng.random(customers) < 0.02,
        "email_unsubscribed": rng.random(customers) < 0.05,
        "email_suppression_reason": rng.choice([None, "bounce", "unsubscribe"], customers, p=[0.93, 0.02, 0.05]),
        "phone": phone,
        "phone_type": rng.choice(["mobile", "fixed_line", None], customers),
        "street": rng.choice(["Hauptstraße 1", "Bahnhofstr. 12a", 'Weg "am See" 3, Hinterhaus'], customers),
        "postcode": rng.choice(["10115", "20095", "80331", "50667", "01067"], customers),
        "city": rng.choice(["Berlin", "Hamburg", "München", "Köln", "Dresden"], customers),
        "country": "DE",
        "marketing_consent": consent,
        "marketing_consent_at": pd.Series(seen).where(pd.Series(consent).notna().to_numpy()),
        "opted_out": rng.random(customers) < 0.03,
        "opted_out_at": pd.Series(seen).where(rng.random(customers) < 0.03),
        "do_not_call": rng.random(customers) < 0.04,
        "sources": rng.choice(["pos", "pos,shop", "app,shop", "call_center,pos,shop"], customers),
        "source_record_count": rng.integers(1, 6, customers),
        "first_seen_at": seen,
        "last_seen_at": seen + pd.to_timedelta(rng.integers(0, 86_400 * 30, customers), unit="s"),
        "loyalty_cards": rng.choice([None, "400012", "400013,400777"], customers),
        "shop_customer_ids": rng.choice([None, "123", "77,912"], customers),
        "data_quality_score": rng.random(customers).round(3),
        "updated_at": pd.Timestamp("2026-01-01 06:00:00"),
    })
    # about two customers in three live in a household, mostly of two
    household_ids = np.array([f"H{seed:02x}{i // 2:014x}" for i in range(customers)], dtype=object)
    golden.insert(1, "household_id", np.where(rng.random(customers) < 0.67, household_ids, None))
    members = golden.dropna(subset=["household_id"]).groupby("household_id")
    households = members.agg(address=("street", "first"), postcode=("postcode", "first"), city=("city", "first"),
                             country=("country", "first"), members=("customer_id", "size"),
                             landline=("phone", "first"), first_seen=("first_seen_at", "min"),
                             last_seen=("last_seen_at", "max")).reset_index()
    household_history = pd.DataFrame({
        "old_id": [f"Hold{seed:02x}{i:012x}" for i in range(3)],
        "new_id": [households["household_id"].iloc[0], households["household_id"].iloc[-1], None],
        "reason": ["merge", "split", "removed"],
        "changed_at": pd.Timestamp("2026-01-01 06:00:00"),
    })
    rows = int(customers * xref_per_customer)
    owner = rng.integers(0, customers, rows)
    source = rng.choice(["pos", "shop", "call_center", "app"], rows)
    xref = pd.DataFrame({
        "customer_id": ids[owner],
        "source": source,
        "source_key": pd.Series(source).map({"pos": "card:", "shop": "customer:", "call_center": "contact:",
                                             "app": "user:"}) + pd.Series(np.arange(rows)).astype(str),
        "match_probability": rng.random(rows).round(4),
        "assigned_at": pd.Timestamp("2026-01-01 06:00:00"),
        "customer_created_at": seen[owner],
    })
    xref["record_id"] = xref["source"] + "|" + xref["source_key"]
    moves = max(1, customers // 100)
    history = pd.DataFrame({
        "old_id": [f"Cold{seed:02x}{i:012x}" for i in range(moves)],
        "new_id": ids[rng.integers(0, customers, moves)],
        "reason": rng.choice(["merge", "split"], moves),
        "changed_at": pd.Timestamp("2026-01-01 06:00:00"),
    })
    freshness = pd.DataFrame({
        "source": ["pos", "shop", "call_center", "app"],
        "last_loaded_at": pd.Timestamp("2026-01-01 05:00:00"),
        "newest_record_at": pd.Timestamp("2026-01-01 04:00:00"),
        "lag_hours": [1.0, 2.0, 24.5, 0.25],
        "is_fresh": [True, True, False, True],
    })
    report = pd.DataFrame({
        "run_id": "run-" + str(seed),
        "measured_at": pd.Timestamp("2026-01-01 06:00:00"),
        "source": ["pos", "pos", "shop", None],
        "metric": ["row_count", "valid_share", "valid_share", "golden_count"],
        "field": [None, "email", "email", None],
        "value": [100.0, 0.93, 0.97, float(customers)],
        "numerator": pd.array([100, 93, 97, customers], dtype="Int64"),
        "denominator": pd.array([None, 100, 100, None], dtype="Int64"),
    })
    return {
        "golden_customers": golden,
        "customer_xref": xref,
        "customer_id_history": history,
        "households": households,
        "household_id_history": household_history,
        "source_freshness": freshness,
        "data_quality_report": report,
        **_synthetic_marts(ids, rng),
    }


def _synthetic_marts(ids, rng) -> dict:
    """The customer-360 marts in their published shape (keys as GOLD_SPECS declares them)."""
    import numpy as np
    import pandas as pd

    lines = len(ids) * 2
    skus = np.array([f"SKU{i}" for i in range(12)])
    purchases = pd.DataFrame({
        "purchase_line_id": [f"pos:R{i}:1" for i in range(lines)],
        "occasion_id": [f"pos:R{i // 2}" for i in range(lines)],
        "customer_id": np.where(rng.random(lines) < 0.8, ids[rng.integers(0, len(ids), lines)], None),
        "channel": rng.choice(["pos", "shop"], lines),
        "purchase_date": pd.Timestamp("2026-01-01") - pd.to_timedelta(rng.integers(0, 300, lines), unit="D"),
        "sku": rng.choice(skus, lines),
        "qty": rng.integers(-1, 4, lines),
        "amount_eur": rng.random(lines).round(2) * 40,
    })
    rfm = pd.DataFrame({"customer_id": ids, "recency_days": rng.integers(0, 400, len(ids)),
                        "frequency": rng.integers(1, 20, len(ids)), "monetary_eur": rng.random(len(ids)) * 500,
                        "segment": rng.choice(["Champions", "Loyal", "Lost"], len(ids))})
    basket = pd.DataFrame({"antecedent_sku": skus[:6], "consequent_sku": skus[6:], "support": 0.02,
                           "confidence": 0.5, "lift": 3.0, "pair_count": 12})
    recommendations = pd.DataFrame({"customer_id": np.repeat(ids[:5], 2), "rank": np.tile([1, 2], 5),
                                    "sku": np.tile(skus[:2], 5)})
    churn = pd.DataFrame({"customer_id": ids, "frequency": rng.integers(0, 20, len(ids)),
                          "p_alive": rng.random(len(ids)), "expected_purchases": rng.random(len(ids)) * 3,
                          "churn_band": rng.choice(["active", "cooling", "at risk", "lapsed"], len(ids))})
    channels = np.tile(["email", "phone", "post"], len(ids))
    audience = pd.DataFrame({"customer_id": np.repeat(ids, 3), "channel": channels,
                             "contact_value": np.where(channels == "email", "x@example.org", "+4915123456"),
                             "may_contact": rng.random(len(channels)) < 0.4,
                             "reason": rng.choice([None, "no consent", "opted out"], len(channels)),
                             "household_id": None})
    demographics = pd.DataFrame({"customer_id": ids, "age_band": rng.choice(["18-24", "25-34", "65+", None], len(ids)),
                                 "gender": rng.choice(["M", "F", None], len(ids)), "country": "DE",
                                 "first_seen_cohort": "2025-Q3", "rfm_segment": rng.choice(["Champions", "Lost"], len(ids))})
    return {"customer_purchases": purchases, "customer_rfm": rfm, "market_basket": basket,
            "customer_recommendations": recommendations, "customer_churn": churn,
            "marketing_audience": audience, "customer_demographics": demographics}
