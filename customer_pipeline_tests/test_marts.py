"""The customer-360 marts: each SQL model's numbers on a small hand-made warehouse (a real temporary DuckDB file),
the checks passing and failing, the Dagster assets, and one end-to-end run on a generated sample."""

import datetime as dt
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from customer_pipeline import warehouse as wh
from customer_pipeline.cli import main
from customer_pipeline.defs.marts import assets, checks
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.marts import models
from customer_pipeline.marts.report import channel_figures
from customer_pipeline.marts.settings import MartSettings

FX_CSV = "currency,valid_from,eur_per_unit\nEUR,2000-01-01,1\nGBP,2026-01-01,1.2\nGBP,2026-06-01,1.1\n"
THRESHOLDS = {"min_support_count": 2, "min_confidence": 0.5, "min_lift": 1.2}

# Five products; C1 holds card 100 and shop account 1, C2 card 200, C3 guest order 12, C4 account 4.
# Card 999 is unknown to the xref (its signup never arrived).
INPUTS = """
CREATE TABLE raw.pos_transactions (sku VARCHAR, product_name VARCHAR, category VARCHAR);
INSERT INTO raw.pos_transactions VALUES
    ('SKU-A', 'Coffee Beans', 'Groceries'), ('SKU-A', 'Coffee Beans', 'Groceries'),
    ('SKU-A', 'COFFEE BEANS', 'Groceries'),
    ('SKU-B', 'Mug', 'Home'), ('SKU-C', 'Chocolate', 'Groceries'), ('SKU-D', 'Scarf', 'Clothing');
CREATE TABLE raw.shop_order_items (order_id VARCHAR, line_no VARCHAR, sku VARCHAR, product_name VARCHAR,
    category VARCHAR, qty VARCHAR, unit_price VARCHAR);
INSERT INTO raw.shop_order_items VALUES
    ('10', '1', 'SKU-A', 'Coffee Beans', 'Groceries', '1', '10.00'), ('10', '2', 'SKU-B', 'Mug', 'Home', '1', '5.00'),
    ('11', '1', 'SKU-D', 'Scarf', 'Clothing', '1', '25.00'),
    ('12', '1', 'SKU-A', 'Coffee Beans', 'Groceries', '1', '10.00'),
    ('12', '2', 'SKU-E', 'Socks', 'Clothing', '1', '20.00'),
    ('13', '1', 'SKU-B', 'Mug', 'Home', '1', '5.00'),
    ('14', '1', 'SKU-E', 'Socks', 'Clothing', '2', '20.00');
CREATE TABLE raw.shop_orders (id VARCHAR, updated_at VARCHAR);
INSERT INTO raw.shop_orders VALUES ('10', '2026-09-12 08:00:00'), ('11', '2025-06-03 08:00:00'),
    ('12', '2026-08-16 08:00:00'), ('13', '2026-10-21 08:00:00'), ('14', '2025-05-20 10:00:00');
CREATE TABLE staging.pos_transactions (store_id VARCHAR, receipt_id VARCHAR, line_no INTEGER, sold_at TIMESTAMPTZ,
    source_key VARCHAR, sku VARCHAR, qty INTEGER, unit_price DECIMAL(12, 2), discount DECIMAL(12, 2),
    currency VARCHAR, bonus_points INTEGER);
INSERT INTO staging.pos_transactions VALUES
    ('DE001', 'R1', 1, '2026-03-01 10:00:00+01', 'card:100', 'SKU-A', 1, 10.00, 0.00, 'EUR', 10),
    ('DE001', 'R1', 2, '2026-03-01 10:00:00+01', 'card:100', 'SKU-B', 1, 5.00, 0.00, 'EUR', 5),
    ('DE001', 'R2', 1, '2026-03-02 11:00:00+00', NULL, 'SKU-A', 2, 10.00, 2.00, 'EUR', 0),
    ('DE001', 'R2', 2, '2026-03-02 11:00:00+00', NULL, 'SKU-B', 1, 5.00, 0.00, 'EUR', 0),
    ('GB001', 'R3', 1, '2026-07-01 12:00:00+00', 'card:200', 'SKU-A', 1, 8.00, 0.00, 'GBP', 8),
    ('GB001', 'R3', 2, '2026-07-01 12:00:00+00', 'card:200', 'SKU-C', 1, 4.00, 0.00, 'GBP', 4),
    ('GB001', 'R4', 1, '2026-07-05 12:00:00+00', 'card:200', 'SKU-A', -1, 8.00, 0.00, 'GBP', -8),
    ('DE001', 'R5', 1, '2026-10-01 09:00:00+00', 'card:200', 'SKU-C', 1, 3.00, 0.00, 'EUR', 3),
    ('DE001', 'R6', 1, '2026-05-05 09:00:00+00', NULL, 'SKU-B', 1, 5.00, 0.50, 'EUR', 0),
    ('DE001', 'R7', 1, '2026-04-01 09:00:00+00', 'card:999', 'SKU-D', 1, 25.00, 0.00, 'EUR', 25);
CREATE TABLE staging.shop_orders (order_id BIGINT, source_key VARCHAR, customer_id BIGINT, status VARCHAR,
    placed_at TIMESTAMP, total DECIMAL(12, 2), currency VARCHAR);
INSERT INTO staging.shop_orders VALUES
    (10, 'customer:1', 1, 'delivered', '2026-09-10 08:00:00', 15.00, 'EUR'),
    (11, 'customer:4', 4, 'delivered', '2025-06-01 08:00:00', 25.00, 'EUR'),
    (12, 'guest_order:12', NULL, 'shipped', '2026-08-15 08:00:00', 30.00, 'EUR'),
    (13, 'customer:4', 4, 'cancelled', '2026-10-20 08:00:00', 5.00, 'EUR'),
    (14, 'customer:4', 4, 'returned', '2025-05-01 08:00:00', 40.00, 'EUR');
CREATE TABLE gold.customer_xref (customer_id VARCHAR, source VARCHAR, source_key VARCHAR);
INSERT INTO gold.customer_xref VALUES ('C1', 'pos', 'card:100'), ('C1', 'shop', 'customer:1'),
    ('C2', 'pos', 'card:200'), ('C3', 'shop', 'guest_order:12'), ('C4', 'shop', 'customer:4');
CREATE TABLE gold.golden_customers (customer_id VARCHAR, display_name VARCHAR);
INSERT INTO gold.golden_customers VALUES ('C1', 'Ann'), ('C2', 'Bob'), ('C3', 'Cem'), ('C4', 'Dan');
"""


@pytest.fixture
def fx_csv(tmp_path) -> Path:
    path = tmp_path / "fx_rates.csv"
    path.write_text(FX_CSV)
    return path


@pytest.fixture
def settings(fx_csv) -> MartSettings:
    return MartSettings(fx_rates_path=fx_csv, **THRESHOLDS)


@pytest.fixture
def warehouse_path(tmp_path) -> Path:
    path = tmp_path / "w.duckdb"
    with wh.connect(path) as con:
        con.execute(INPUTS)
    return path


@pytest.fixture
def built(warehouse_path, settings) -> Path:
    """The hand-made warehouse with all four marts built by their SQL files."""
    with wh.connect(warehouse_path) as con:
        for build in (models.build_customer_purchases, models.build_customer_rfm, models.build_market_basket,
                      models.build_customer_recommendations):
            build(con, settings)
    return warehouse_path


def _rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def test_purchases_tie_every_line_to_its_customer_in_receipt_currency_and_eur(built):
    with duckdb.connect(str(built), read_only=True) as con:
        lines = {r["purchase_line_id"]: r for r in _rows(con, "SELECT * FROM gold.customer_purchases")}
    # every POS line; every shop line but the cancelled order's; a returned order twice (sale, then return)
    assert len(lines) == 10 + 7
    assert not any(r["occasion_id"] == "shop:13" for r in lines.values())
    r1 = lines["pos:DE001:R1:1"]
    assert (r1["customer_id"], r1["channel"], r1["store_id"], r1["line_type"]) == ("C1", "pos", "DE001", "sale")
    assert r1["purchased_at"] == dt.datetime(2026, 3, 1, 9, 0)  # UTC
    assert (r1["sku"], r1["product_name"], r1["category"]) == ("SKU-A", "Coffee Beans", "Groceries")  # most lines' name
    # anonymous receipts stay, without a customer; so does a card nobody signed up with
    anonymous = lines["pos:DE001:R2:1"]
    assert anonymous["customer_id"] is None and anonymous["source_key"] is None
    assert float(anonymous["amount"]) == 18.00  # 2 x 10.00 less the 2.00 discount
    assert lines["pos:DE001:R7:1"]["customer_id"] is None and lines["pos:DE001:R7:1"]["source_key"] == "card:999"
    # a POS return is negative, in GBP and in EUR at the rate valid on its date (1.1 from June)
    ret = lines["pos:GB001:R4:1"]
    assert (ret["line_type"], ret["qty"], float(ret["amount"]), ret["currency"]) == ("return", -1, -8.00, "GBP")
    assert (float(ret["fx_rate_eur"]), float(ret["amount_eur"])) == (1.1, -8.80)
    # a guest checkout belongs to the customer its guest record joined; the shop is the store 'web'
    guest = lines["shop:12:2"]
    assert (guest["customer_id"], guest["store_id"], guest["order_status"], float(guest["amount_eur"])) == (
        "C3", "web", "shipped", 20.00)
    # a returned order: sold on placed_at, returned (negative) on its updated_at
    sold, returned = lines["shop:14:1"], lines["shop:14:1:return"]
    assert (sold["qty"], float(sold["amount"]), sold["purchased_at"]) == (2, 40.00, dt.datetime(2025, 5, 1, 8))
    assert (returned["line_type"], returned["qty"], float(returned["amount"]), returned["purchased_at"]) == (
        "return", -2, -40.00, dt.datetime(2025, 5, 20, 10))


def _table(con, table: str) -> list[tuple]:
    return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)


def test_purchases_brought_up_to_date_by_difference_equal_a_whole_build(built, settings, tmp_path):
    """After new receipts, a receipt gone, a card that joined another customer, a product renamed by the majority
    of its lines and a shop order returned, the table changed by difference equals the one written whole."""
    with wh.connect(built) as con:
        before = con.execute("SELECT purchase_line_id, rowid FROM gold.customer_purchases").fetchall()
        con.execute("""
            INSERT INTO staging.pos_transactions VALUES
                ('DE001', 'R8', 1, '2026-10-02 09:00:00+00', 'card:100', 'SKU-D', 1, 25.00, 0.00, 'EUR', 25),
                ('DE001', 'R8', 2, '2026-10-02 09:00:00+00', 'card:100', 'SKU-E', 2, 20.00, 1.00, 'EUR', 40);
            DELETE FROM staging.pos_transactions WHERE receipt_id = 'R6';
            UPDATE gold.customer_xref SET customer_id = 'C1' WHERE source_key = 'card:200';
            INSERT INTO raw.pos_transactions SELECT 'SKU-B', 'Mug, large', 'Home' FROM range(4);
            UPDATE staging.shop_orders SET status = 'returned' WHERE order_id = 10;""")
        done = models.update_customer_purchases(con, settings)
        # new: R8's two lines and order 10's two return lines; gone: R6's line; changed (removed and added again):
        # card 200's four lines (their customer), the Mug lines of R1 and R2 (its name) and order 10's sale lines
        # (their status)
        assert (done.mode, done.rows) == ("difference", 17 + 2 - 1 + 2)
        assert (done.removed, done.added) == (1 + 4 + 2 + 2, 2 + 2 + 4 + 2 + 2)
        by_difference = _table(con, "gold.customer_purchases")
        kept = dict(con.execute("SELECT purchase_line_id, rowid FROM gold.customer_purchases").fetchall())
        assert kept["shop:11:1"] == dict(before)["shop:11:1"]  # an unchanged line is not written again
        models.build_customer_purchases(con, settings)
        assert by_difference == _table(con, "gold.customer_purchases")
        # nothing changed: nothing written
        done = models.update_customer_purchases(con, settings)
        assert (done.mode, done.removed, done.added) == ("difference", 0, 0)
        # a table of other columns (older code) is written whole
        con.execute("ALTER TABLE gold.customer_purchases DROP COLUMN order_status")
        done = models.update_customer_purchases(con, settings)
        assert (done.mode, done.reason) == ("whole", "its columns changed")
        assert _table(con, "gold.customer_purchases") == by_difference
        # a row beside one of the same key (its customer changed by hand): told apart by its hash and removed
        con.execute("""INSERT INTO gold.customer_purchases SELECT * REPLACE ('C9' AS customer_id)
            FROM gold.customer_purchases WHERE purchase_line_id = 'shop:11:1'""")
        done = models.update_customer_purchases(con, settings)
        assert (done.mode, done.removed, done.added) == ("difference", 1, 0)
        assert _table(con, "gold.customer_purchases") == by_difference
        assert models.update_customer_purchases(con, settings, whole=True).reason == "asked for"


def test_channel_figures_give_revenue_and_share_identified(built):
    with duckdb.connect(str(built), read_only=True) as con:
        figures = {f["channel"]: f for f in channel_figures(con)}
    # POS: 15 + 23 + 13.20 - 8.80 + 3 + 4.50 + 25; identified: R1, R3, R4, R5
    assert figures["pos"]["revenue_eur"] == pytest.approx(74.90)
    assert figures["pos"]["identified_share"] == pytest.approx(22.40 / 74.90)
    assert (figures["pos"]["lines"], figures["pos"]["anonymous_lines"], figures["pos"]["sale_occasions"]) == (10, 4, 6)
    assert figures["shop"]["revenue_eur"] == pytest.approx(70.00) and figures["shop"]["identified_share"] == 1.0


def test_rfm_on_the_hand_made_warehouse(built):
    with duckdb.connect(str(built), read_only=True) as con:
        rfm = {r["customer_id"]: r for r in _rows(con, "SELECT * FROM gold.customer_rfm")}
    assert set(rfm) == {"C1", "C2", "C3", "C4"}
    # the reference date is the newest purchase (the cancelled order of 20 October is no purchase)
    assert {r["as_of_date"] for r in rfm.values()} == {dt.date(2026, 10, 1)}
    measured = {c: (r["recency_days"], r["frequency"], float(r["monetary_eur"]), r["in_window"])
                for c, r in rfm.items()}
    assert measured == {
        "C1": (21, 2, 30.00, True),  # card receipt R1 and shop order 10
        "C2": (0, 2, 7.40, True),  # 13.20 in GBP less the 8.80 return, plus 3.00; the return is no occasion
        "C3": (47, 1, 30.00, True),  # the guest order
        "C4": (487, 0, 0.00, False),  # bought only before the window
    }
    # three customers in the window: quintiles 1-3; equal values (F of C1 and C2, M of C1 and C3) share a score
    cells = {c: (r["rfm_cell"], r["segment"]) for c, r in rfm.items()}
    assert cells == {"C1": ("222", "Hibernating"), "C2": ("321", "About to sleep"), "C3": ("112", "Lost"),
                     "C4": ("111", "Lost")}


def _purchases_table(con, rows: list[tuple]) -> None:
    con.execute("CREATE OR REPLACE TABLE gold.customer_purchases (customer_id VARCHAR, occasion_id VARCHAR, "
                "line_type VARCHAR, purchase_date DATE, amount_eur DECIMAL(14, 2))")
    con.executemany("INSERT INTO gold.customer_purchases VALUES (?, ?, ?, ?, ?)", rows)


# (R, F, M) ranks among ten customers, 10 = best; NTILE(5) gives ranks 1-2 score 1, ..., 9-10 score 5
RANKS = {"K01": (10, 10, 10), "K02": (9, 1, 1), "K03": (1, 9, 9), "K04": (2, 2, 2), "K05": (5, 5, 5),
         "K06": (6, 6, 6), "K07": (7, 7, 7), "K08": (8, 3, 3), "K09": (3, 8, 8), "K10": (4, 4, 4)}
AS_OF = dt.date(2026, 6, 30)


def _rfm_population(tmp_path) -> Path:
    """Ten customers whose recency, frequency and monetary value have the ranks above, one who left long ago."""
    rows = []
    for customer, (r, f, m) in RANKS.items():
        last = AS_OF - dt.timedelta(days=(10 - r) * 10)
        for j in range(f):  # f occasions, three days apart, the first carrying most of the money
            amount = m * 100 - (f - 1) if j == 0 else 1
            rows.append((customer, f"{customer}-{j}", "sale", last - dt.timedelta(days=3 * j), amount))
    rows.append(("K11", "K11-0", "sale", dt.date(2025, 1, 1), 900))
    rows.append((None, "anon-0", "sale", AS_OF, 5))
    path = tmp_path / "rfm.duckdb"
    with wh.connect(path) as con:
        _purchases_table(con, rows)
    return path


def test_rfm_quintiles_and_the_segment_grid(tmp_path, fx_csv):
    path = _rfm_population(tmp_path)
    with wh.connect(path) as con:
        models.build_customer_rfm(con, MartSettings(fx_rates_path=fx_csv))
        rfm = {r["customer_id"]: r for r in _rows(con, "SELECT * FROM gold.customer_rfm")}
    for customer, ranks in RANKS.items():
        assert (rfm[customer]["r_score"], rfm[customer]["f_score"], rfm[customer]["m_score"]) == tuple(
            (k + 1) // 2 for k in ranks), customer
    assert rfm["K01"]["recency_days"] == 0 and rfm["K03"]["recency_days"] == 90 and rfm["K07"]["frequency"] == 7
    assert float(rfm["K09"]["monetary_eur"]) == 800.00
    segments = {c: r["segment"] for c, r in rfm.items()}
    assert segments == {"K01": "Champions", "K02": "New", "K03": "Cannot lose them", "K04": "Lost",
                        "K05": "Needs attention", "K06": "Needs attention", "K07": "Loyal",
                        "K08": "Potential loyalist", "K09": "At risk", "K10": "Hibernating", "K11": "Lost"}
    assert (rfm["K11"]["in_window"], rfm["K11"]["rfm_cell"], rfm["K11"]["frequency"]) == (False, "111", 0)
    assert rfm["K11"]["recency_days"] == (AS_OF - dt.date(2025, 1, 1)).days


def test_rfm_window_and_reference_date_are_settings(tmp_path, fx_csv):
    path = _rfm_population(tmp_path)
    with wh.connect(path) as con:
        models.build_customer_rfm(con, MartSettings(fx_rates_path=fx_csv, rfm_window_days=60))
        short = {r[0]: r[1:] for r in con.execute(
            "SELECT customer_id, in_window, frequency, window_days FROM gold.customer_rfm").fetchall()}
        models.build_customer_rfm(con, MartSettings(fx_rates_path=fx_csv, rfm_as_of=dt.date(2026, 6, 1)))
        earlier = con.execute("SELECT max(as_of_date), max(recency_days) FILTER (WHERE customer_id = 'K03') "
                              "FROM gold.customer_rfm").fetchall()[0]
    # K03's last purchase is 90 days back: outside a 60-day window; K01's 10 occasions span 27 days: all inside
    assert short["K03"][:2] == (False, 0) and short["K01"] == (True, 10, 60)
    # as of 1 June, purchases after it do not count: K03 (last on 1 April) is 61 days back
    assert earlier == (dt.date(2026, 6, 1), 61)


def test_market_basket_rule_support_confidence_and_lift(built, settings):
    with wh.connect(built) as con:
        rules = {(r["antecedent_sku"], r["consequent_sku"]): r for r in _rows(con, "SELECT * FROM gold.market_basket")}
        # ten sale baskets: A in 5, B in 4, both in 3 (R1, R2, order 10); every other pair in at most one
        assert set(rules) == {("SKU-A", "SKU-B"), ("SKU-B", "SKU-A")}
        ab, ba = rules["SKU-A", "SKU-B"], rules["SKU-B", "SKU-A"]
        assert (ab["baskets_with_both"], ab["baskets_with_antecedent"], ab["baskets_with_consequent"],
                ab["baskets_total"]) == (3, 5, 4, 10)
        assert (ab["support"], ab["confidence"], ab["lift"]) == pytest.approx((0.3, 0.6, 1.5))
        assert (ba["support"], ba["confidence"], ba["lift"]) == pytest.approx((0.3, 0.75, 1.5))
        assert (ab["antecedent_name"], ab["consequent_name"]) == ("Coffee Beans", "Mug")
        models.build_market_basket(con, MartSettings(fx_rates_path=None, min_support_count=2, min_confidence=0.7,
                                                     min_lift=1.2))
        assert con.execute("SELECT antecedent_sku FROM gold.market_basket").fetchall() == [("SKU-B",)]
        models.build_market_basket(con, MartSettings(fx_rates_path=None, min_support_count=4, min_confidence=0.1,
                                                     min_lift=1.0))
        assert con.execute("SELECT count(*) FROM gold.market_basket").fetchall() == [(0,)]


def test_recommendations_on_the_hand_made_warehouse(built):
    with duckdb.connect(str(built), read_only=True) as con:
        recs = con.execute("SELECT customer_id, rank, sku, product_name, because_of_sku "
                           "FROM gold.customer_recommendations ORDER BY ALL").fetchall()
    # C2 and C3 bought coffee (A) and no mug (B); C1 bought both; C4 bought nothing in the window
    assert recs == [("C2", 1, "SKU-B", "Mug", "SKU-A"), ("C3", 1, "SKU-B", "Mug", "SKU-A")]


def test_recommendations_rank_by_lift_then_confidence_and_skip_what_was_bought(tmp_path):
    path = tmp_path / "recs.duckdb"
    with wh.connect(path) as con:
        con.execute("""
            CREATE TABLE gold.customer_rfm AS SELECT * FROM (VALUES ('X', true), ('Y', true), ('V', true), ('Z', false),
                ('W', true)) v(customer_id, in_window);
            CREATE TABLE gold.customer_purchases AS SELECT * FROM (VALUES
                ('X', 'A', 'sale', 'g'), ('X', 'F', 'sale', 'g'), ('X', 'E', 'sale', 'g'), ('X', 'E', 'return', 'g'),
                ('Y', 'A', 'sale', 'g'), ('Y', 'B', 'sale', 'g'), ('V', 'A', 'sale', 'g'), ('Z', 'A', 'sale', 'g'),
                ('W', 'H', 'sale', 'g'), (NULL, 'B', 'sale', 'g')) v(customer_id, sku, line_type, category);
            CREATE TABLE gold.market_basket AS SELECT * FROM (VALUES
                ('A', 'B', 3.0, 0.5), ('A', 'C', 3.0, 0.6), ('A', 'D', 2.0, 0.4), ('A', 'E', 5.0, 0.3),
                ('F', 'C', 4.0, 0.2), ('A', 'G', 1.6, 0.9)) v(antecedent_sku, consequent_sku, lift, confidence);
            ALTER TABLE gold.market_basket ADD COLUMN antecedent_name VARCHAR;
            ALTER TABLE gold.market_basket ADD COLUMN consequent_name VARCHAR;
            ALTER TABLE gold.market_basket ADD COLUMN support DOUBLE;
        """)
        models.build_customer_recommendations(con, MartSettings(fx_rates_path=None))
        recs = {}
        rows = con.execute("SELECT customer_id, rank, sku, because_of_sku FROM gold.customer_recommendations "
                           "ORDER BY ALL").fetchall()
        for customer, rank, sku, because in rows:
            recs.setdefault(customer, []).append((rank, sku, because))
    # X: E was bought (and returned), C comes by F -> C (lift 4) rather than A -> C (lift 3)
    assert recs["X"] == [(1, "C", "F"), (2, "B", "A"), (3, "D", "A")]
    assert recs["Y"] == [(1, "E", "A"), (2, "C", "A"), (3, "D", "A")]  # B bought
    assert recs["V"] == [(1, "E", "A"), (2, "C", "A"), (3, "B", "A")]  # equal lift: the more confident first
    assert set(recs) == {"X", "Y", "V"}  # Z bought outside the window, W's product has no rule


def _all_checks(con, settings: MartSettings) -> dict[str, dg.AssetCheckResult]:
    return {
        "purchases_known": checks.customers_known(con, assets.PURCHASES_KEY),
        "rfm_known": checks.customers_known(con, assets.RFM_KEY),
        "recommendations_known": checks.customers_known(con, assets.RECOMMENDATIONS_KEY),
        "revenue": checks.revenue_matches_staging(con),
        "fx": checks.fx_rate_for_every_line(con),
        "rfm_valid": checks.rfm_scores_valid(con),
        "rules": checks.rules_in_range(con, settings),
    }


def test_checks_pass_on_sound_marts(built, settings):
    with duckdb.connect(str(built), read_only=True) as con:
        results = _all_checks(con, settings)
    assert {name: r.passed for name, r in results.items()} == dict.fromkeys(results, True)
    assert "| shop | EUR | returns | -40.00 | -40.00 | 0.00 |" in results["revenue"].metadata["reconciliation"].value
    assert results["purchases_known"].metadata["rows_without_customer_id"].value == 4  # anonymous and card 999


def test_checks_fail_on_unknown_customers(built, settings):
    with wh.connect(built) as con:
        con.execute("DELETE FROM gold.golden_customers WHERE customer_id = 'C2'")
        results = _all_checks(con, settings)
    for name in ("purchases_known", "rfm_known", "recommendations_known"):
        assert not results[name].passed and results[name].metadata["unknown_examples"].value == "C2"
        assert results[name].severity == dg.AssetCheckSeverity.ERROR


def test_checks_fail_when_a_mart_row_has_no_customer(built, settings):
    with wh.connect(built) as con:
        con.execute("UPDATE gold.customer_rfm SET customer_id = NULL WHERE customer_id = 'C4'")
        assert not checks.customers_known(con, assets.RFM_KEY).passed


def test_revenue_check_fails_when_purchases_and_staging_disagree(built, settings):
    with wh.connect(built) as con:
        con.execute("UPDATE staging.shop_orders SET total = 16.00 WHERE order_id = 10")  # its lines make 15.00
        shop = checks.revenue_matches_staging(con)
        con.execute("UPDATE staging.shop_orders SET total = 15.00 WHERE order_id = 10")
        con.execute("DELETE FROM gold.customer_purchases WHERE purchase_line_id = 'pos:GB001:R4:1'")
        pos = checks.revenue_matches_staging(con)
    assert not shop.passed and shop.metadata["examples"].value == "10"
    assert "| shop | EUR | sales | 111.00 | 110.00 | -1.00 |" in shop.metadata["reconciliation"].value
    assert not pos.passed and "| pos | GBP | lines | 3 | 2 | -1 |" in pos.metadata["reconciliation"].value


def test_rules_check_fails_out_of_range_or_off_its_counts(built, settings):
    with wh.connect(built) as con:
        con.execute("UPDATE gold.market_basket SET support = 1.5 WHERE antecedent_sku = 'SKU-A'")
        out_of_range = checks.rules_in_range(con, settings)
        con.execute("UPDATE gold.market_basket SET support = 0.3, lift = 2.0 WHERE antecedent_sku = 'SKU-A'")
        off = checks.rules_in_range(con, settings)
        below = checks.rules_in_range(con, MartSettings(fx_rates_path=None, min_support_count=5))
    assert not out_of_range.passed and out_of_range.metadata["rules_out_of_range"].value == 1
    assert not off.passed and off.metadata["rules_disagreeing_with_their_counts"].value == 1
    assert not below.passed and below.metadata["rules_below_thresholds"].value == 2


def test_rfm_check_fails_without_a_segment_or_with_a_bad_score(built, settings):
    with wh.connect(built) as con:
        con.execute("UPDATE gold.customer_rfm SET segment = NULL WHERE customer_id = 'C1'")
        con.execute("UPDATE gold.customer_rfm SET f_score = 6 WHERE customer_id = 'C2'")
        result = checks.rfm_scores_valid(con)
    assert not result.passed
    assert result.metadata["rows_without_segment"].value == 1
    assert result.metadata["rows_with_score_outside_1_5"].value == 1


def test_a_currency_without_rate_is_flagged(warehouse_path, tmp_path):
    no_gbp = tmp_path / "eur_only.csv"
    no_gbp.write_text("currency,valid_from,eur_per_unit\nEUR,2000-01-01,1\n")
    with wh.connect(warehouse_path) as con:
        models.build_customer_purchases(con, MartSettings(fx_rates_path=no_gbp))
        result = checks.fx_rate_for_every_line(con)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["by_currency"].value == {"GBP": 3}


def test_a_broken_rate_table_fails_with_one_line(warehouse_path, tmp_path):
    twice = tmp_path / "twice.csv"
    twice.write_text("currency,valid_from,eur_per_unit\nEUR,2000-01-01,1\nEUR,2000-01-01,1\nGBP,2000-01-01,0\n")
    with wh.connect(warehouse_path) as con, pytest.raises(ValueError, match="1 rows without currency, date or a rate"):
        models.load_fx_rates(con, twice)


def test_checks_fail_when_a_mart_is_missing(warehouse_path, settings):
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        results = _all_checks(con, settings)
    assert not any(r.passed for r in results.values())
    assert results["rules"].metadata["missing_tables"].value == "gold.market_basket"


def test_assets_and_checks_materialise_with_metadata(warehouse_path, fx_csv, monkeypatch):
    monkeypatch.setenv("CUSTOMER_PIPELINE_FX_RATES", str(fx_csv))
    for name, value in THRESHOLDS.items():
        monkeypatch.setenv(f"CUSTOMER_PIPELINE_BASKET_{name.upper()}", str(value))
    defs = [assets.customer_purchases, assets.customer_rfm, assets.market_basket, assets.customer_recommendations,
            checks.purchases_customers_known, checks.rfm_customers_known, checks.recommendations_customers_known,
            checks.purchases_revenue_matches_staging, checks.purchases_fx_rate_for_every_line,
            checks.rfm_scores_and_segments_valid, checks.market_basket_rules_in_range]
    result = dg.materialize(defs, resources={"warehouse": WarehouseResource(path=str(warehouse_path))})
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 7 and all(e.passed for e in evaluations)
    meta = {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["customer_purchases"]["identified_revenue_share_pos"].value == round(22.40 / 74.90, 4)
    assert meta["customer_purchases"]["revenue_eur_shop"].value == 70.0
    assert meta["customer_purchases"]["build"].value == "written whole (first build): 17 rows"
    # materialised again on the same inputs: by difference, nothing written
    again = dg.materialize(defs[:1], resources={"warehouse": WarehouseResource(path=str(warehouse_path))})
    purchases = again.get_asset_materialization_events()[0].materialization.metadata
    assert (purchases["rows_removed"].value, purchases["rows_added"].value) == (0, 0)
    assert purchases["build"].value.startswith("by difference")
    assert "| About to sleep | 1 |" in meta["customer_rfm"]["segments"].value
    assert meta["market_basket"]["rules"].value == 2 and "| Coffee Beans | Mug | 3 |" in meta["market_basket"][
        "strongest_rules"].value
    assert meta["customer_recommendations"]["customers_with_recommendations"].value == 2
    assert all(m["build_seconds"].value >= 0 for m in meta.values())


def test_sql_and_rate_files_are_found_from_the_installed_package(tmp_path):
    # another working directory, the package as installed (`pip install -e .`): the paths do not depend on the cwd
    code = ("from customer_pipeline.marts import models; "
            "print(*[models.sql_path(m) for m in models.MODELS], models.shipped_file(models.FX_RATES_FILE), sep='\\n')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    paths = [Path(p) for p in out.stdout.split()]
    assert [p.name for p in paths] == [f"{m}.sql" for m in models.MODELS] + ["fx_rates.csv"]
    assert all(p.is_file() for p in paths)


@pytest.mark.slow
def test_end_to_end_run_builds_the_marts_and_their_checks_pass(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name in ("SHOP_DB_URL", "CUSTOMER_PIPELINE_PG_URL", "CUSTOMER_PIPELINE_FX_RATES",
                 "CUSTOMER_PIPELINE_RFM_AS_OF"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("CUSTOMER_PIPELINE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    assert main(["sample", "--persons", "800", "--seed", "42", "--out", str(tmp_path / "landing"),
                 "--as-of", "2026-11-01"]) == 0
    assert main(["run"]) == 0  # every blocking check passed, the marts' too
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        counts = {m: con.execute(f"SELECT count(*) FROM gold.{m}").fetchall()[0][0] for m in models.MODELS}
        results = _all_checks(con, MartSettings.from_env())
        segments = {s for (s,) in con.execute("SELECT DISTINCT segment FROM gold.customer_rfm").fetchall()}
        as_of = con.execute("SELECT max(as_of_date) FROM gold.customer_rfm").fetchall()[0][0]
        bundle = con.execute("SELECT lift FROM gold.market_basket WHERE antecedent_name = 'Organic Coffee Beans 500g' "
                             "AND consequent_name = 'Ceramic Mug'").fetchall()
        never = con.execute("SELECT count(*) FROM gold.market_basket WHERE 'Sun Cream SPF 50' IN "
                            "(antecedent_name, consequent_name)").fetchall()[0][0]
        bought = con.execute("SELECT count(*) FROM gold.customer_recommendations r JOIN gold.customer_purchases p "
                             "USING (customer_id, sku)").fetchall()[0][0]
    assert all(n > 0 for n in counts.values()), counts
    assert {name: r.passed for name, r in results.items()} == dict.fromkeys(results, True)
    assert as_of == dt.date(2026, 11, 1) and len(segments) >= 9
    assert bundle and bundle[0][0] > 3 and never == 0 and bought == 0
