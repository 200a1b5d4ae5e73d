"""gold.customer_churn: the SQL features on a hand-made purchases table, the band rule, the BG/NBD fit on a generated
sample (does it see the customers the generator made stop?), and the Dagster asset with its checks."""

import datetime as dt
import math
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from benchmarks.churn_check import generate_with_truth, holdout_check
from customer_pipeline import warehouse as wh
from customer_pipeline.defs.marts import assets, checks
from customer_pipeline.defs.marts import churn as churn_defs
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.marts import churn
from customer_pipeline_tests.test_marts import FX_CSV, INPUTS

AS_OF = dt.date(2026, 6, 30)


def _day(days_before: int) -> dt.date:
    return AS_OF - dt.timedelta(days=days_before)


# (customer, days before AS_OF of each sale occasion); W has two receipts on one day, M one long break
HISTORIES = {
    "W": [56, 49, 49, 42, 35, 28],  # weekly, then nothing for four weeks: 28 / 7 = 4, at risk
    "M": [220, 190, 160, 40, 10],  # gaps 30, 30, 120, 30: median 30 (mean 52.5); 10 / 30, active
    "C": [75, 55, 35],  # gaps 20, 20; 35 / 20 = 1.75, cooling
    "L": [90, 80, 70],  # gaps 10, 10; 70 / 10 = 7, lapsed
    "O": [100],  # one purchase: no gap of their own
}


def _purchases(con, rows: list[tuple]) -> None:
    con.execute("CREATE OR REPLACE TABLE gold.customer_purchases (customer_id VARCHAR, occasion_id VARCHAR, "
                "line_type VARCHAR, purchase_date DATE, amount_eur DECIMAL(14, 2))")
    con.executemany("INSERT INTO gold.customer_purchases VALUES (?, ?, ?, ?, ?)", rows)


@pytest.fixture
def hand_made(tmp_path) -> Path:
    rows = [(c, f"{c}-{i}", "sale", _day(d), 10) for c, days in HISTORIES.items() for i, d in enumerate(days)]
    rows += [("W", "W-ret", "return", _day(3), -10),  # a return is no purchase, and not the newest sale date
             ("O", "O-ret", "return", _day(1), -10),
             (None, "anon", "sale", _day(0), 5),  # anonymous: in no customer's history, but it is the newest sale
             ("M", "M-later", "sale", AS_OF + dt.timedelta(days=5), 10)]  # after the observation end (as_of given)
    path = tmp_path / "churn.duckdb"
    with wh.connect(path) as con:
        _purchases(con, rows)
    return path


def _rows(con, sql: str) -> dict[str, dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return {r[0]: dict(zip(names, r)) for r in cur.fetchall()}


def test_features_gaps_overdue_and_band(hand_made):
    with wh.connect(hand_made) as con:
        assert churn.features(con, AS_OF) == 5
        f = _rows(con, "SELECT * FROM churn_features")
    measured = {c: (r["purchase_days"], r["frequency"], r["recency"], r["t_days"], r["days_since_last"])
                for c, r in f.items()}
    assert measured == {
        "W": (5, 4, 28, 56, 28), "M": (5, 4, 210, 220, 10), "C": (3, 2, 40, 75, 35), "L": (3, 2, 20, 90, 70),
        "O": (1, 0, 0, 100, 100)}
    assert (f["W"]["expected_gap_days"], f["M"]["expected_gap_days"], f["M"]["mean_gap_days"]) == (7, 30, 52.5)
    assert {c: round(r["overdue_ratio"], 4) for c, r in f.items() if c != "O"} == {
        "W": 4.0, "M": round(10 / 30, 4), "C": 1.75, "L": 7.0}
    assert {c: r["overdue_band"] for c, r in f.items()} == {
        "W": "at risk", "M": "active", "C": "cooling", "L": "lapsed", "O": "lapsed"}
    # a one-time buyer is measured against the median of everyone's own gaps (7, 30, 20, 10 -> 15)
    assert (f["O"]["gap_source"], f["O"]["expected_gap_days"], f["O"]["mean_gap_days"]) == ("population", 15, None)
    assert f["O"]["overdue_ratio"] == pytest.approx(100 / 15)
    assert {r["as_of_date"] for r in f.values()} == {AS_OF}


def test_features_default_to_the_newest_sale_date_and_agree_with_rfm_summary(hand_made):
    from pymc_marketing.clv import rfm_summary

    with wh.connect(hand_made) as con:
        con.execute("DELETE FROM gold.customer_purchases WHERE occasion_id = 'M-later'")
        churn.features(con)  # as_of: the anonymous sale of AS_OF, not the later returns
        ours = con.execute('SELECT customer_id, frequency, recency, t_days AS "T", as_of_date FROM churn_features '
                           "ORDER BY 1").df()
        sales = con.execute("SELECT customer_id, purchase_date FROM gold.customer_purchases "
                            "WHERE customer_id IS NOT NULL AND line_type = 'sale'").df()
    assert set(ours.as_of_date) == {pd.Timestamp(AS_OF)}
    theirs = rfm_summary(sales, "customer_id", "purchase_date", observation_period_end=str(AS_OF)).sort_values(
        "customer_id").reset_index(drop=True)
    assert ours.customer_id.tolist() == theirs.customer_id.tolist()
    for column in ("frequency", "recency", "T"):
        assert ours[column].astype(float).tolist() == theirs[column].astype(float).tolist(), column


def test_band_is_the_worse_of_overdue_and_probability(hand_made):
    p_alive = {"W": 0.95, "M": 0.2, "C": 0.5, "L": 0.99, "O": 1.0}
    with wh.connect(hand_made) as con:
        churn.features(con, AS_OF)
        con.execute("CREATE TEMP TABLE churn_fit (customer_id VARCHAR, p_alive DOUBLE, expected_purchases DOUBLE)")
        con.executemany("INSERT INTO churn_fit VALUES (?, ?, 1.0)", list(p_alive.items()))
        assert churn.score(con, 90) == 5
        rows = _rows(con, "SELECT customer_id, overdue_band, probability_band, churn_band, horizon_days "
                          "FROM gold.customer_churn")
    assert {c: (r["overdue_band"], r["probability_band"], r["churn_band"]) for c, r in rows.items()} == {
        "W": ("at risk", "active", "at risk"),  # four weeks late: the model's confidence does not hide it
        "M": ("active", "at risk", "at risk"),  # on time by the median gap, but the model doubts
        "C": ("cooling", "cooling", "cooling"),
        "L": ("lapsed", "active", "lapsed"),
        "O": ("lapsed", "active", "lapsed"),  # p_alive 1 for a one-time buyer: the overdue reading decides
    }
    assert {r["horizon_days"] for r in rows.values()} == {90}


def _card_purchases(con, landing: Path) -> None:
    """gold.customer_purchases with one customer per loyalty card, straight from the generated receipts."""
    con.execute("""
        CREATE OR REPLACE TABLE gold.customer_purchases AS
        SELECT 'card:' || card_no AS customer_id, store_id || ':' || receipt_id AS occasion_id,
            CASE WHEN try_cast(qty AS INTEGER) < 0 THEN 'return' ELSE 'sale' END AS line_type,
            try_cast(left(sold_at, 10) AS DATE) AS purchase_date
        FROM read_csv($glob, header = true, all_varchar = true, ignore_errors = true)
        WHERE card_no IS NOT NULL AND try_cast(left(sold_at, 10) AS DATE) IS NOT NULL""",
                {"glob": str(landing / "pos" / "transactions_*.csv")})


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    """A generated sample (800 persons), its truth, and the churn table fitted on its cards' receipts."""
    work = tmp_path_factory.mktemp("churn_sample")
    truth = generate_with_truth(work / "landing", persons=800, seed=7, as_of=dt.date(2026, 11, 1))
    with wh.connect(work / "w.duckdb") as con:
        _card_purchases(con, work / "landing")
        churn.build(con)
    return work / "w.duckdb", truth


def test_fit_gives_customers_the_generator_made_stop_a_lower_p_alive(generated):
    path, truth = generated
    assert len(truth["lapsed_cards"]) >= 5 and truth["stale_persons"]
    with duckdb.connect(str(path)) as con:
        con.register("_lapsed", pd.DataFrame({"customer_id": truth["lapsed_cards"]}))
        lapsed, others, n = con.execute("""
            SELECT avg(p_alive) FILTER (WHERE customer_id IN (SELECT customer_id FROM _lapsed)),
                avg(p_alive) FILTER (WHERE customer_id NOT IN (SELECT customer_id FROM _lapsed)), count(*)
            FROM gold.customer_churn WHERE frequency > 0""").fetchall()[0]
        expected = con.execute("SELECT min(expected_purchases), max(expected_purchases), min(p_alive), max(p_alive) "
                               "FROM gold.customer_churn").fetchall()[0]
        result = churn_defs.churn_values_valid(con)
    assert n > 50 and lapsed < others - 0.1, (lapsed, others)
    assert expected[0] >= 0 and math.isfinite(expected[1]) and 0 <= expected[2] <= expected[3] <= 1
    assert result.passed, result.metadata


def test_holdout_prediction_on_the_generated_sample(generated):
    path, _ = generated
    with duckdb.connect(str(path)) as con:
        # 90 days ending 90 days before the data's end: the generator's persons all fade out near the end
        h = holdout_check(con, 90, 90)
    # the holdout's total within 30 % of what happened; who bought follows p_alive at the cutoff
    assert 0.7 < h["predicted_total"] / h["actual_total"] < 1.3, h
    shares = [b["bought_in_holdout"] for b in h["p_alive_bands"] if b["customers"] >= 10]
    assert len(shares) >= 3 and shares == sorted(shares) and shares[-1] > shares[0] + 0.2, h["p_alive_bands"]


def test_asset_materialises_with_its_checks_on_the_marts_fixture(tmp_path, monkeypatch):
    fx = tmp_path / "fx_rates.csv"
    fx.write_text(FX_CSV)
    path = tmp_path / "w.duckdb"
    with wh.connect(path) as con:
        con.execute(INPUTS)
    monkeypatch.setenv("CUSTOMER_PIPELINE_FX_RATES", str(fx))
    monkeypatch.setenv("CUSTOMER_PIPELINE_RFM_AS_OF", "")
    result = dg.materialize([assets.customer_purchases, churn_defs.customer_churn, churn_defs.churn_customers_known,
                             churn_defs.customer_churn_values_valid],
                            resources={"warehouse": WarehouseResource(path=str(path))})
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {checks.CUSTOMERS_KNOWN, churn_defs.CHURN_VALUES_VALID}
    assert all(e.passed for e in evaluations.values())
    meta = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}[
        churn_defs.CHURN_KEY]
    assert meta["dagster/row_count"].value == 4  # C1-C4, each with a sale
    assert meta["as_of_date"].value == "2026-10-01"  # the newest sale, not today
    assert sum(meta[f"customers_{b.replace(' ', '_')}"].value for b in churn.BANDS) == 4
    assert set(meta["parameters"].value) == {"r", "alpha", "a", "b"} and meta["fit_seconds"].value > 0
    assert "| lapsed |" in meta["bands"].value
    with duckdb.connect(str(path), read_only=True) as con:
        c4 = con.execute("SELECT frequency, days_since_last, churn_band FROM gold.customer_churn "
                         "WHERE customer_id = 'C4'").fetchall()
    assert c4 == [(1, 487, "lapsed")]  # sales on 1 May (later returned) and 1 June 2025


def test_checks_fail_on_an_unknown_customer_or_a_probability_out_of_range(tmp_path, hand_made):
    with wh.connect(hand_made) as con:
        con.execute("CREATE TABLE gold.golden_customers AS SELECT unnest(['W', 'M', 'C', 'L', 'O']) AS customer_id")
        churn.build(con, AS_OF)
        assert churn_defs.churn_values_valid(con).passed
        assert checks.customers_known(con, churn_defs.CHURN_KEY).passed
        con.execute("UPDATE gold.customer_churn SET p_alive = 1.5 WHERE customer_id = 'W'")
        con.execute("UPDATE gold.customer_churn SET customer_id = 'X' WHERE customer_id = 'O'")
        values, known = churn_defs.churn_values_valid(con), checks.customers_known(con, churn_defs.CHURN_KEY)
    assert not values.passed and values.metadata["rows_with_p_alive_outside_0_1"].value == 1
    assert not known.passed and known.metadata["unknown_examples"].value == "X"


def test_the_asset_and_its_checks_are_in_the_definitions():
    from customer_pipeline.definitions import defs

    loaded = defs() if callable(defs) else defs
    graph = loaded.resolve_asset_graph()
    assert churn_defs.CHURN_KEY in graph.get_all_asset_keys()
    assert graph.get(churn_defs.CHURN_KEY).group_name == "marts"
    check_names = {k.name for k in graph.asset_check_keys if k.asset_key == churn_defs.CHURN_KEY}
    assert check_names == {checks.CUSTOMERS_KNOWN, churn_defs.CHURN_VALUES_VALID}
