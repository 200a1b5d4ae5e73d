"""The BI role, connected as itself: one per deployment, reads `gold` of its own database and nothing else."""

import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy as sa
from psycopg2 import sql

from customer_pipeline.publish.postgres import GOLD_SPECS, bi_role_for, default_bi_role, publish_gold
from customer_pipeline_tests import pg


def _db(url: str) -> str:
    return sa.make_url(url).database


def _scram_matches(verifier: str, password: str) -> bool:
    """Whether a stored SCRAM-SHA-256 verifier (pg_authid.rolpassword) was made from `password` (ASCII)."""
    _, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hmac.compare_digest(base64.b64decode(stored_key), hashlib.sha256(client_key).digest())


def _verifier(role: str) -> str | None:
    return pg.scalar(pg.base_url(), "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role])


def _denied(conn, statement: str) -> None:
    with pytest.raises(psycopg2.errors.InsufficientPrivilege), conn.cursor() as cur:
        cur.execute(statement)


@dataclass
class Deployments:
    a_url: str  # database owned and published by `publisher`, a non-superuser with CREATEROLE
    b_url: str  # a second deployment on the same server, published by the superuser
    publisher: str
    publisher_url: str
    role_a: str
    role_b: str


@pytest.fixture
def deployments():
    pg.require_pg()
    publisher = f"cp_pub_{secrets.token_hex(6)}"
    with pg.temp_database() as a_url, pg.temp_database() as b_url:
        role_a, role_b = default_bi_role(_db(a_url)), default_bi_role(_db(b_url))
        try:
            with contextlib.closing(pg.connect(pg.base_url())) as admin, admin.cursor() as cur:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(publisher)))
                cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(_db(a_url)), sql.Identifier(publisher)))
            publisher_url = pg.url_for(_db(a_url), user=publisher)
            with contextlib.closing(pg.connect(a_url)) as admin, admin.cursor() as cur:
                # Personal data outside gold: a superuser's table in `public`, the publisher's own schema.
                cur.execute("CREATE TABLE public.secret (national_id text); INSERT INTO public.secret VALUES ('1')")
            with contextlib.closing(pg.connect(publisher_url)) as own, own.cursor() as cur:
                cur.execute("CREATE SCHEMA staging; CREATE TABLE staging.x (email text);"
                            " INSERT INTO staging.x VALUES ('someone@example.org')")
            publish_gold(publisher_url, pg.synthetic_gold(100, seed=1), bi_password="pw-a")
            publish_gold(b_url, pg.synthetic_gold(100, seed=2), bi_password="pw-b")
            yield Deployments(a_url, b_url, publisher, publisher_url, role_a, role_b)
        finally:
            for role in (role_a, role_b):
                pg.drop_role(role, (a_url, b_url))
            with contextlib.closing(pg.connect(pg.base_url())) as admin, admin.cursor() as cur:
                cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(sql.Identifier(_db(a_url))))
            pg.drop_role(publisher, (a_url,))


# --- plain functions -----------------------------------------------------------------------------------------


def test_default_role_is_per_database_and_a_valid_identifier():
    assert default_bi_role("customers") == "bi_reader_customers"
    assert default_bi_role("customer_demo") == "bi_reader_customer_demo"
    # Names that had to change carry a hash of the original, so they cannot meet another database's role.
    assert default_bi_role("cust-demo") != default_bi_role("cust_demo")
    assert default_bi_role("Customers") != default_bi_role("customers")
    for name in ("cust-demo", "Kunden Ö", "x" * 63, "y" * 63, "_"):
        role = default_bi_role(name)
        assert role.startswith("bi_reader_") and len(role.encode()) <= 63, role
        assert set(role) <= set("abcdefghijklmnopqrstuvwxyz0123456789_"), role
    assert default_bi_role("x" * 63) != default_bi_role("x" * 62 + "y")


def test_the_setting_overrides_the_default():
    url = "postgresql+psycopg2://pipeline@db.internal:5432/customers"
    assert bi_role_for(url) == "bi_reader_customers"
    assert bi_role_for(url, "") == "bi_reader_customers"
    assert bi_role_for(url, "bi_team") == "bi_team"


# --- as the BI role, against the server ----------------------------------------------------------------------


@pytest.mark.postgres
def test_two_deployments_get_two_roles_and_passwords(deployments):
    d = deployments
    assert d.role_a != d.role_b
    assert pg.scalar(pg.base_url(), "SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s) AND rolcanlogin",
                     [[d.role_a, d.role_b]]) == 2
    before_b = _verifier(d.role_b)
    publish_gold(d.publisher_url, {"source_freshness": pg.synthetic_gold(5)["source_freshness"]},
                 bi_password="pw-a-rotated")
    assert _scram_matches(_verifier(d.role_a), "pw-a-rotated")
    assert _verifier(d.role_b) == before_b and _scram_matches(before_b, "pw-b")
    assert not _scram_matches(before_b, "pw-a-rotated")


@pytest.mark.postgres
def test_bi_role_reads_gold_after_a_republish_and_nothing_else(deployments):
    d = deployments
    with contextlib.closing(pg.connect(d.publisher_url)) as own, own.cursor() as cur:
        # A careless grant by the publisher; the next publish takes it back.
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA staging TO {0}; GRANT SELECT ON staging.x TO {0}").format(
            sql.Identifier(d.role_a)))
    publish_gold(d.publisher_url, pg.synthetic_gold(150, seed=3))  # tables replaced by the swap

    bi_url = pg.url_for(_db(d.a_url), user=d.role_a, password="pw-a")
    with contextlib.closing(pg.connect(bi_url)) as bi:
        assert pg.scalar(bi, "SELECT current_user") == d.role_a
        for name in GOLD_SPECS:
            assert pg.scalar(bi, f"SELECT count(*) FROM gold.{name}") > 0, name
        assert pg.scalar(bi, "SELECT count(*) FROM gold.golden_customers") == 150
        for statement in (
            "CREATE TEMP TABLE scratch (a int)",
            "CREATE TEMPORARY TABLE scratch AS SELECT * FROM gold.golden_customers",
            "SELECT * FROM public.secret",
            "SELECT * FROM staging.x",
            "CREATE TABLE public.mine (a int)",
            "CREATE TABLE gold.mine (a int)",
            "CREATE SCHEMA mine",
            "INSERT INTO gold.golden_customers (customer_id) VALUES ('Cx')",
            "DELETE FROM gold.customer_xref",
        ):
            _denied(bi, statement)

    with contextlib.closing(pg.connect(d.a_url)) as admin:
        assert not pg.scalar(admin, "SELECT has_database_privilege(%s, current_database(), 'TEMPORARY')",
                             [d.role_a])
        for schema in ("public", "staging"):
            for right in ("USAGE", "CREATE"):
                assert not pg.scalar(admin, "SELECT has_schema_privilege(%s, %s, %s)", [d.role_a, schema, right])


@pytest.mark.postgres
def test_bi_role_cannot_connect_to_another_deployments_database(deployments):
    d = deployments
    for role, password, other in ((d.role_a, "pw-a", d.b_url), (d.role_b, "pw-b", d.a_url)):
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            pg.connect(pg.url_for(_db(other), user=role, password=password)).close()
        assert not pg.scalar(pg.base_url(), "SELECT has_database_privilege(%s, %s, 'CONNECT')", [role, _db(other)])
    # ... while each connects to its own.
    assert pg.scalar(pg.url_for(_db(d.b_url), user=d.role_b, password="pw-b"), "SELECT current_database()") == \
        _db(d.b_url)


@pytest.mark.postgres
def test_public_defaults_are_revoked_and_the_owner_keeps_its_rights(deployments, caplog):
    d = deployments
    for url in (d.a_url, d.b_url):
        with contextlib.closing(pg.connect(url)) as admin:
            assert not pg.scalar(admin, "SELECT has_database_privilege('public', current_database(), 'CONNECT')")
            assert not pg.scalar(admin, "SELECT has_database_privilege('public', current_database(), 'TEMPORARY')")
            assert not pg.scalar(admin, "SELECT has_schema_privilege('public', 'public', 'USAGE')")
            assert not pg.scalar(admin, "SELECT has_schema_privilege('public', 'public', 'CREATE')")

    # The side effect, as documented: a role holding no grant of its own can no longer connect.
    stranger = f"cp_other_{secrets.token_hex(6)}"
    with contextlib.closing(pg.connect(pg.base_url())) as admin, admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(stranger)))
    try:
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            pg.connect(pg.url_for(_db(d.a_url), user=stranger)).close()
    finally:
        pg.drop_role(stranger)

    # The non-superuser owner that publishes keeps everything: connect, temp tables, `public`, `gold`.
    with caplog.at_level(logging.WARNING, logger="customer_pipeline.publish.postgres"):
        publish_gold(d.publisher_url, {"source_freshness": pg.synthetic_gold(5)["source_freshness"]})
    assert not [r for r in caplog.records if "least privilege" in r.getMessage()]
    with contextlib.closing(pg.connect(d.publisher_url)) as own, own.cursor() as cur:
        cur.execute("CREATE TEMP TABLE t AS SELECT count(*) FROM gold.golden_customers")
        cur.execute("CREATE TABLE public.owner_table (a int); DROP TABLE public.owner_table")
        cur.execute("CREATE TABLE gold.owner_table (a int); DROP TABLE gold.owner_table")
        assert pg.scalar(own, "SELECT count(*) FROM staging.x") == 1


@pytest.mark.postgres
def test_a_bi_role_with_powers_grants_cannot_limit_is_refused(pg_url):
    with pg.temp_role_name(database_urls=(pg_url,)) as role:
        with contextlib.closing(pg.connect(pg_url)) as admin, admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(role)))
        with pytest.raises(ValueError, match="CREATEDB"):
            publish_gold(pg_url, {"source_freshness": pg.synthetic_gold(5)["source_freshness"]}, bi_role=role)
        assert not pg.scalar(pg_url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'gold'")
