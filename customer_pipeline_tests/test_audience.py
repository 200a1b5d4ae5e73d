"""gold.marketing_audience and gold.customer_demographics on a small hand-made warehouse (a real DuckDB file, the
registers loaded from real files), the blocking check passing and failing, the Dagster assets, and one
end-to-end run on a generated sample whose registers' truth is known."""

import csv
import datetime as dt

import dagster as dg
import duckdb
import pytest

from customer_pipeline import warehouse as wh
from customer_pipeline.cli import main
from customer_pipeline.defs.marts import audience as audience_defs
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.ingest.suppression import load_suppression_registers
from customer_pipeline.marts import audience
from customer_pipeline.staging.suppression import POSTCODE_KEY, STREET_KEY, build_suppression_entries
from customer_pipeline_tests.landing import csv_bytes, write

TODAY = dt.date(2026, 12, 1)

# C1 consented at the till, opted out on the phone; C2's mobile is on the DNC register, written nationally;
# C3 asked the call center not to be called; C4's email bounced; C5 said Y at the till and N at the shop;
# C6 and C7 live together (H1), C6's record is fuller; C8 has no contact value at all; C9 lives at an address
# on the mail-preference register (H2); C10 was never asked.
WAREHOUSE = """
CREATE TABLE gold.golden_customers (customer_id VARCHAR, email VARCHAR, phone VARCHAR, phone_type VARCHAR,
    household_id VARCHAR, data_quality_score DOUBLE, last_seen_at TIMESTAMP, gender VARCHAR, birth_date DATE,
    country VARCHAR, first_seen_at TIMESTAMP, sources VARCHAR);
INSERT INTO gold.golden_customers VALUES
    ('C1', 'c1@example.org', '+447700900001', 'mobile', NULL, 0.8, '2026-10-01', 'F', '1990-06-15', 'GB', '2025-02-01', 'call_center,pos'),
    ('C2', 'c2@example.org', '+447700900123', 'mobile', NULL, 0.8, '2026-10-01', 'M', '1950-12-01', 'GB', '2025-05-01', 'pos'),
    ('C3', 'c3@example.org', '+447700900003', 'mobile', NULL, 0.8, '2026-10-01', 'X', '2010-01-01', 'GB', '2025-08-01', 'call_center,pos'),
    ('C4', 'c4@example.org', '+447700900004', 'mobile', NULL, 0.8, '2026-10-01', NULL, NULL, 'DE', '2026-01-01', 'shop'),
    ('C5', 'c5@example.org', '+447700900005', 'mobile', NULL, 0.8, '2026-10-01', 'F', '1980-01-01', 'GB', '2026-03-01', 'pos,shop'),
    ('C6', 'c6@example.org', '+447700900006', 'mobile', 'H1', 0.9, '2026-09-01', 'F', '1970-01-01', 'GB', '2026-04-01', 'shop'),
    ('C7', 'c7@example.org', '+447700900007', 'mobile', 'H1', 0.7, '2026-10-01', 'M', '1971-01-01', 'GB', '2026-04-01', 'shop'),
    ('C8', NULL, NULL, NULL, NULL, 0.2, '2026-10-01', NULL, NULL, NULL, '2026-07-01', 'pos'),
    ('C9', 'c9@example.org', '+447700900009', 'mobile', 'H2', 0.8, '2026-10-01', 'M', '1985-01-01', 'GB', '2026-10-01', 'shop'),
    ('C10', 'c10@example.org', NULL, NULL, NULL, 0.5, '2026-10-01', NULL, NULL, 'FR', NULL, 'app');
CREATE TABLE gold.households (household_id VARCHAR, address VARCHAR, postcode VARCHAR, city VARCHAR,
    country VARCHAR, members BIGINT);
INSERT INTO gold.households VALUES ('H1', '1 Rose Street', 'SW1A 1AA', 'London', 'GB', 2),
    ('H2', '12 High Street Flat 3', 'N1 9GU', 'London', 'GB', 1);
CREATE TABLE gold.customer_xref (customer_id VARCHAR, source VARCHAR, source_key VARCHAR, record_id VARCHAR);
CREATE TABLE staging.person_records (record_id VARCHAR, marketing_consent BOOLEAN, opted_out BOOLEAN,
    email_unsubscribed BOOLEAN, do_not_call BOOLEAN, email VARCHAR, email_corrected VARCHAR, email_suppressed BOOLEAN);
"""
# (customer, record, consent, opted out, unsubscribed, do not call, email, bounced)
RECORDS = [
    ("C1", "pos|card:1", True, False, False, False, "c1@example.org", False),
    ("C1", "call_center|contact:1", None, True, False, False, None, False),
    ("C2", "pos|card:2", True, False, False, False, "c2@example.org", False),
    ("C3", "pos|card:3", True, False, False, False, "c3@example.org", False),
    ("C3", "call_center|contact:3", None, False, False, True, None, False),
    ("C4", "shop|customer:4", True, False, False, False, "c4@example.org", True),
    ("C5", "pos|card:5", True, False, False, False, "c5@example.org", False),
    ("C5", "shop|customer:5", False, False, False, False, "c5@example.org", False),
    ("C6", "shop|customer:6", True, False, False, False, "c6@example.org", False),
    ("C7", "shop|customer:7", True, False, False, False, "c7@example.org", False),
    ("C8", "pos|card:8", True, False, False, False, None, False),
    ("C9", "shop|customer:9", True, False, False, False, "c9@example.org", False),
    ("C10", "app|user:10", None, False, False, False, "c10@example.org", False),
]
REGISTERS = {
    # C2's number as the register writes it, a number nobody holds, and an old snapshot listing C6
    "dnc_gb_2026-11-01.csv": [["phone", "07700 900123", "", "GB", "2026-01-01"], ["phone", "07700 900999", "", "GB", ""]],
    "dnc_gb_2026-10-01.csv": [["phone", "07700-900006", "", "GB", ""]],
    "mps_gb_2026-11-01.csv": [["postal", "12 HIGH STREET, FLAT 3", "n19gu", "GB", ""]],
}


def _warehouse(tmp_path) -> str:
    path = tmp_path / "w.duckdb"
    landing = tmp_path / "landing"
    for name, rows in REGISTERS.items():
        write(landing / "suppression" / name, csv_bytes(("kind", "value", "postcode", "country", "listed_at"), rows))
    with wh.connect(path) as con:
        con.execute(WAREHOUSE)
        con.executemany("INSERT INTO gold.customer_xref VALUES (?, ?, ?, ?)",
                        [[c, r.split("|")[0], r.split("|")[1], r] for c, r, *_ in RECORDS])
        con.executemany("INSERT INTO staging.person_records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [[r, consent, out, unsub, dnc, email, email, bounced]
                         for _, r, consent, out, unsub, dnc, email, bounced in RECORDS])
        load_suppression_registers(con, landing, "test")
        build_suppression_entries(con)
    return str(path)


@pytest.fixture
def built(tmp_path) -> str:
    path = _warehouse(tmp_path)
    with wh.connect(path) as con:
        audience.build_marketing_audience(con, TODAY)
    return path


def _audience(path) -> dict:
    with duckdb.connect(path, read_only=True) as con:
        rows = con.execute("SELECT customer_id, channel, may_contact, reason, suppression_registers, household_mailing "
                           "FROM gold.marketing_audience").fetchall()
    return {(c, ch): (may, reason, reg, mailing) for c, ch, may, reason, reg, mailing in rows}


def test_one_row_per_customer_and_channel_with_the_strongest_reason(built):
    a = _audience(built)
    assert len(a) == 30
    # an opt-out on the phone wins over the consent given at the till, on every channel
    assert [a[("C1", ch)][:2] for ch in audience.CHANNELS] == [(False, "opted out")] * 3
    # one "N" in one source wins over a "Y" in another
    assert [a[("C5", ch)][:2] for ch in audience.CHANNELS] == [(False, "no consent")] * 3
    assert [a[("C10", ch)][1] for ch in audience.CHANNELS] == ["no consent"] * 3
    assert a[("C3", "phone")][:2] == (False, "do-not-call") and a[("C3", "email")][:2] == (True, None)
    assert a[("C4", "email")][:2] == (False, "email bounced or complained") and a[("C4", "phone")][0]
    assert [a[("C8", ch)][:2] for ch in audience.CHANNELS] == [(False, "no valid value")] * 3


def test_a_phone_on_the_dnc_register_in_another_format_blocks_phone_for_its_holder(built):
    a = _audience(built)
    assert a[("C2", "phone")][:3] == (False, "on suppression register", "dnc_gb")
    assert a[("C2", "email")][:2] == (True, None)
    # the older snapshot of the register listed C6's number: no longer in force
    assert a[("C6", "phone")][:3] == (True, None, None)
    with duckdb.connect(built, read_only=True) as con:
        reasons = con.execute("SELECT reasons FROM gold.marketing_audience WHERE customer_id = 'C2' AND channel = 'phone'"
                              ).fetchall()[0][0]
    assert reasons == "on suppression register"


def test_one_mailing_per_household_and_the_mail_preference_register(built):
    a = _audience(built)
    assert a[("C6", "post")] == (True, None, None, True)                   # fuller record: the addressee
    assert a[("C7", "post")] == (False, "household already mailed", None, False)
    assert a[("C7", "email")][:2] == (True, None)                         # the household rule is for post only
    assert a[("C9", "post")][:3] == (False, "on suppression register", "mps_gb")
    assert a[("C2", "post")][:2] == (False, "no valid value") and a[("C2", "post")][3] is False
    assert a[("C2", "email")][3] is None
    figures = {(r["channel"], r["reason"]): r["customers"] for r in audience.reason_figures(duckdb.connect(built))}
    assert figures[("post", "household already mailed")] == 1


def test_the_check_passes_on_the_built_audience_and_fails_on_a_tampered_one(built):
    with duckdb.connect(built) as con:
        result = audience_defs.audience_check(con)
        assert result.passed, result.metadata
        tampering = {
            "phone_allowed_despite_do_not_call": "UPDATE gold.marketing_audience SET may_contact = true, reason = NULL "
                                                 "WHERE customer_id = 'C3' AND channel = 'phone'",
            "allowed_despite_suppression_register": "UPDATE gold.marketing_audience SET may_contact = true "
                                                    "WHERE customer_id IN ('C2', 'C9')",
            "allowed_despite_opt_out": "UPDATE gold.marketing_audience SET may_contact = true WHERE customer_id = 'C1'",
            "email_allowed_despite_bounce_or_complaint": "UPDATE gold.marketing_audience SET may_contact = true "
                                                         "WHERE customer_id = 'C4'",
            "household_mailed_twice": "UPDATE gold.marketing_audience SET may_contact = true WHERE customer_id = 'C7'",
            "customer_not_in_golden_customers": "INSERT INTO gold.marketing_audience (customer_id, channel, may_contact) "
                                                "VALUES ('C99', 'email', false)",
            "golden_customer_without_its_three_rows": "DELETE FROM gold.marketing_audience WHERE customer_id = 'C10' "
                                                      "AND channel = 'post'",
            "contact_value_not_the_golden_one": "UPDATE gold.marketing_audience SET contact_value = '+447700900000' "
                                                "WHERE customer_id = 'C6' AND channel = 'phone'",
        }
        con.execute("CREATE TABLE gold.audience_built AS SELECT * FROM gold.marketing_audience")
        for rule, sql in tampering.items():
            con.execute("CREATE OR REPLACE TABLE gold.marketing_audience AS SELECT * FROM gold.audience_built")
            con.execute(sql)
            result = audience_defs.audience_check(con)
            assert not result.passed, rule
            assert result.metadata[rule].value > 0, rule
            assert result.severity == dg.AssetCheckSeverity.ERROR


def test_demographics_bands_cohorts_households_and_rfm(built):
    with wh.connect(built) as con:
        con.execute("CREATE TABLE gold.customer_rfm AS SELECT 'C6' AS customer_id, 'Champions' AS segment")
        assert audience.build_customer_demographics(con, TODAY) == 10
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT customer_id, age, age_band, gender, country, first_seen_cohort, household_size_band, rfm_segment "
            "FROM gold.customer_demographics").fetchall()}
    assert rows["C1"] == (36, "35-44", "female", "GB", "2025-Q1", "no household", "no purchase")
    assert rows["C2"] == (76, "65+", "male", "GB", "2025-Q2", "no household", "no purchase")  # birthday today
    assert rows["C3"][:3] == (16, "under 18", "diverse")
    assert rows["C6"] == (56, "55-64", "female", "GB", "2026-Q2", "2", "Champions")
    assert rows["C10"] == (None, "unknown", "unknown", "FR", "unknown", "no household", "no purchase")


def test_assets_and_check_materialise_with_metadata(built):
    result = dg.materialize(
        [audience_defs.marketing_audience, audience_defs.customer_demographics,
         audience_defs.marketing_audience_allows_only_what_is_permitted],
        resources={"warehouse": WarehouseResource(path=built)}, selection=[audience_defs.AUDIENCE_KEY,
                                                                          audience_defs.DEMOGRAPHICS_KEY],
    )
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    meta = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    m = meta[audience_defs.AUDIENCE_KEY]
    assert (m["may_contact_email"].value, m["may_not_contact_email"].value) == (5, 5)
    assert m["households_mailed"].value == 1
    assert "household already mailed" in m["reasons"].value and "mps_gb" in m["registers"].value
    assert meta[audience_defs.DEMOGRAPHICS_KEY]["dagster/row_count"].value == 10


def test_end_to_end_run_blocks_the_registers_people_and_nobody_else(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name in ("SHOP_DB_URL", "CUSTOMER_PIPELINE_PG_URL", "CUSTOMER_PIPELINE_FX_RATES", "CUSTOMER_PIPELINE_RFM_AS_OF"):
        monkeypatch.setenv(name, "")
    landing = tmp_path / "landing"
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(landing))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("CUSTOMER_PIPELINE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    assert main(["sample", "--persons", "300", "--seed", "5", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    assert main(["run"]) == 0  # every blocking check passed, the audience's too
    with open(landing / "suppression_truth.csv", encoding="utf-8", newline="") as f:
        truth = list(csv.DictReader(f))
    # (file, line) of every entry listed for nobody: the header is line 1
    line = {}
    nobody = set()
    for t in truth:
        line[t["file"]] = line.get(t["file"], 1) + 1
        if not t["person_id"]:
            nobody.add((t["file"], str(line[t["file"]]), t["kind"]))
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        golden = con.execute("SELECT count(*) FROM gold.golden_customers").fetchall()[0][0]
        rows = con.execute("SELECT count(*), count(DISTINCT customer_id) FROM gold.marketing_audience").fetchall()[0]
        demographics = con.execute("SELECT count(*) FROM gold.customer_demographics").fetchall()[0][0]
        in_force = con.execute("SELECT _location, _record_ref, kind, match_value FROM staging.suppression_entries "
                               "WHERE matchable").fetchall()
        contacts = {v for (v,) in con.execute("SELECT contact_value FROM gold.marketing_audience "
                                              "WHERE channel IN ('email', 'phone') AND contact_value IS NOT NULL").fetchall()}
        contacts |= {v for (v,) in con.execute(  # the households' addresses as the register's match keys
            f"SELECT {STREET_KEY} || '|' || {POSTCODE_KEY} FROM (SELECT address AS street, postcode FROM gold.households)"
        ).fetchall()}
        blocked = dict(con.execute("SELECT channel, count(*) FROM gold.marketing_audience "
                                   "WHERE suppression_registers IS NOT NULL AND NOT may_contact GROUP BY 1").fetchall())
        allowed_on_register = con.execute("SELECT count(*) FROM gold.marketing_audience "
                                          "WHERE suppression_registers IS NOT NULL AND may_contact").fetchall()[0][0]
    assert rows == (3 * golden, golden) and demographics == golden
    files = {loc.rsplit("/", 1)[-1] for loc, *_ in in_force}
    assert files == {"dnc_national_2026-11-01.csv", "email_optout_2026-11-01.csv", "mps_2026-11-01.csv"}  # newest only
    # the registers' people are blocked on every channel; the entries listed for nobody match no customer
    assert allowed_on_register == 0 and all(blocked.get(ch, 0) > 0 for ch in audience.CHANNELS), blocked
    assert len(nobody) == 12
    for_nobody = {mv for loc, ref, kind, mv in in_force if (loc.rsplit("/", 1)[-1], ref, kind) in nobody}
    assert len(for_nobody) == 12 and not for_nobody & contacts      # 5 phones, 4 emails, 3 addresses


@pytest.mark.postgres
def test_both_tables_publish_to_postgresql_with_their_keys(built, pg_url, bi_role):
    from customer_pipeline.publish.postgres import publish_gold
    from customer_pipeline_tests import pg

    with wh.connect(built) as con:
        audience.build_customer_demographics(con, TODAY)
        frames = {name: con.execute(f"SELECT * FROM gold.{name}").df()
                  for name in (audience.AUDIENCE, audience.DEMOGRAPHICS)}
    result = publish_gold(pg_url, frames, bi_role=bi_role)
    assert {n: r["rows"] for n, r in result.items()} == {audience.AUDIENCE: 30, audience.DEMOGRAPHICS: 10}
    with pg.connect(pg_url) as conn:
        assert pg.scalar(conn, "SELECT count(*) FROM gold.marketing_audience WHERE may_contact") == sum(
            1 for v in _audience(built).values() if v[0])
        assert pg.scalar(conn, "SELECT reason FROM gold.marketing_audience WHERE customer_id = 'C7' "
                               "AND channel = 'post'") == "household already mailed"
        key = pg.rows(conn, """SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
            AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'gold.marketing_audience'::regclass AND i.indisprimary
            ORDER BY a.attname""")
        assert [k for (k,) in key] == ["channel", "customer_id"]


def test_a_customer_on_the_erasure_register_is_blocked_everywhere(tmp_path):
    from customer_pipeline.erasure import register

    path = _warehouse(tmp_path)
    with wh.connect(path) as con:
        audience.build_marketing_audience(con, TODAY)
        assert audience.erased_customers(con) == 0           # nobody erased: nothing blocked for it
        register.ensure(con)
        hashed = register.Hasher(register.secret(con))("email", "c6@example.org")
        con.execute("INSERT INTO meta.erasure_register VALUES (?, 'email', NULL, 'req-1', now())", [hashed])
        audience.build_marketing_audience(con, TODAY)
    a = _audience(path)
    assert [a[("C6", ch)][:2] for ch in audience.CHANNELS] == [(False, "erased")] * 3
    assert a[("C7", "post")] == (True, None, None, True)    # the household's other member is mailed instead
