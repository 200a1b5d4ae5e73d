"""gold.customer_churn: each customer's rhythm and how overdue they are (SQL), and a BG/NBD model's probability
that they are still active, fitted with pymc-marketing (MAP). What the columns and bands mean: docs/marts.md.

pymc-marketing is the optional extra `churn` (`pip install -e ".[churn]"`); it is imported inside `fit`, as its
import takes seconds.
"""

import datetime as dt
import time
import warnings
from dataclasses import dataclass

import duckdb
import pandas as pd

from customer_pipeline.marts import models

CHURN, FEATURES = "customer_churn", "customer_churn_features"
HORIZON_DAYS = 90  # expected purchases are counted over this many days after the observation end
# Bands: the worse of the overdue reading (days since the last purchase / the customer's own median gap) and the
# model's reading (p_alive). Weekly buyer, nothing for a month: ratio 4.3, at risk.
OVERDUE_COOLING, OVERDUE_AT_RISK, OVERDUE_LAPSED = 1.5, 3.0, 6.0
P_ALIVE_COOLING, P_ALIVE_AT_RISK, P_ALIVE_LAPSED = 0.7, 0.4, 0.15
BANDS = ("active", "cooling", "at risk", "lapsed")
FEATURE_COLUMNS = ("customer_id", "frequency", "recency", "t_days")
# The model counts time in weeks, the unit pymc-marketing's default priors are scaled for (r ~ Weibull(2, 1),
# alpha ~ Weibull(2, 10); a and b pooled through phi ~ Uniform(0, 1), kappa ~ Pareto(1, 1)). They are weak enough
# that 700 customers decide (p_alive moves by under 0.003 against flat priors on the demo sample) and strong enough
# that a handful of customers cannot push the MAP to infinity (flat priors gave NaN predictions for four).
WEEK_DAYS = 7.0


@dataclass(frozen=True)
class Fit:
    """The fitted BG/NBD model's parameters and its predictions, one row per customer."""

    params: dict[str, float]  # r, alpha (in weeks), a, b
    predictions: pd.DataFrame  # customer_id, p_alive, expected_purchases
    seconds: float
    horizon_days: int


def features(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None) -> int:
    """Compute the features (sql/customer_churn_features.sql) into the temporary table churn_features; its rows."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE churn_features AS\n{models.model_sql(FEATURES)}",
                {"as_of": as_of, "overdue_cooling": OVERDUE_COOLING, "overdue_at_risk": OVERDUE_AT_RISK,
                 "overdue_lapsed": OVERDUE_LAPSED})
    return int(con.execute("SELECT count(*) FROM churn_features").fetchall()[0][0])


def fit(data: pd.DataFrame, horizon_days: int = HORIZON_DAYS) -> Fit:
    """Fit BG/NBD by MAP on (customer_id, frequency, recency, t_days: BG/NBD's T; days, the model counts in weeks);
    predict p_alive at T and the purchase days expected in the next `horizon_days`."""
    try:
        with warnings.catch_warnings():  # arviz announces its coming refactor on import
            warnings.simplefilter("ignore", FutureWarning)
            from pymc_marketing.clv import BetaGeoModel
    except ImportError as e:  # the extra was not installed
        raise ImportError('gold.customer_churn needs pymc-marketing: pip install -e ".[churn]"') from e
    frame = data.loc[:, list(FEATURE_COLUMNS)].rename(columns={"t_days": "T"}).astype(
        {"frequency": "int64", "recency": "float64", "T": "float64"})
    frame["customer_id"] = frame["customer_id"].astype(object)
    frame["recency"], frame["T"] = frame["recency"] / WEEK_DAYS, frame["T"] / WEEK_DAYS
    if frame.empty:
        return Fit({}, pd.DataFrame({"customer_id": [], "p_alive": [], "expected_purchases": []}), 0.0, horizon_days)
    started = time.perf_counter()
    model = BetaGeoModel()
    with warnings.catch_warnings():  # pymc's notes on the MAP's missing uncertainty and its API's future
        for category in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.simplefilter("ignore", category)
        model.fit(data=frame, method="map", progressbar=False)
    posterior = model.fit_result
    params = {k: float(posterior[k].values.mean()) for k in ("r", "alpha", "a", "b")}
    p_alive = model.expected_probability_alive(frame).mean(("chain", "draw"))
    expected = model.expected_purchases(frame, future_t=horizon_days / WEEK_DAYS).mean(("chain", "draw"))
    seconds = time.perf_counter() - started
    predictions = pd.DataFrame({
        "customer_id": frame["customer_id"].to_numpy(),
        "p_alive": p_alive.sel(customer_id=frame["customer_id"].to_numpy()).to_numpy(),
        "expected_purchases": expected.sel(customer_id=frame["customer_id"].to_numpy()).to_numpy(),
    })
    return Fit(params, predictions, seconds, horizon_days)


def record(con: duckdb.DuckDBPyConnection, result: Fit) -> None:
    """The fit as temporary tables: churn_fit (one row per customer) and churn_model (parameters, seconds)."""
    con.register("_churn_fit_df", result.predictions)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE churn_fit AS SELECT CAST(customer_id AS VARCHAR) AS customer_id, "
                    "CAST(p_alive AS DOUBLE) AS p_alive, CAST(expected_purchases AS DOUBLE) AS expected_purchases "
                    "FROM _churn_fit_df")
    finally:
        con.unregister("_churn_fit_df")
    con.execute("CREATE OR REPLACE TEMP TABLE churn_model (fit_seconds DOUBLE, horizon_days INTEGER, r DOUBLE, "
                "alpha DOUBLE, a DOUBLE, b DOUBLE)")
    con.execute("INSERT INTO churn_model VALUES (?, ?, ?, ?, ?, ?)",
                [result.seconds, result.horizon_days, *(result.params.get(k) for k in ("r", "alpha", "a", "b"))])


def score(con: duckdb.DuckDBPyConnection, horizon_days: int = HORIZON_DAYS) -> int:
    """gold.customer_churn from churn_features and churn_fit (sql/customer_churn.sql), in one transaction."""
    return models.build(con, CHURN, {"p_cooling": P_ALIVE_COOLING, "p_at_risk": P_ALIVE_AT_RISK,
                                     "p_lapsed": P_ALIVE_LAPSED, "horizon_days": horizon_days})


def build(con: duckdb.DuckDBPyConnection, as_of: dt.date | None = None, horizon_days: int = HORIZON_DAYS) -> int:
    """Features, fit, then gold.customer_churn; returns its rows. The fit stays in the connection's churn_model."""
    features(con, as_of)
    record(con, fit(con.execute("SELECT * FROM churn_features").df(), horizon_days))
    return score(con, horizon_days)


def model_figures(con: duckdb.DuckDBPyConnection) -> dict:
    """The last fit on this connection: seconds, horizon and parameters (temporary table churn_model)."""
    cur = con.execute("SELECT * FROM churn_model")
    return dict(zip([d[0] for d in cur.description], cur.fetchall()[0]))


def band_figures(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per churn band: customers, share, median overdue ratio, mean p_alive, expected purchases (all four bands)."""
    cur = con.execute("""
        SELECT b.band, count(c.customer_id) AS customers,
            coalesce(count(c.customer_id) / nullif(sum(count(c.customer_id)) OVER (), 0), 0) AS share,
            coalesce(CAST(median(c.overdue_ratio) AS DOUBLE), 0) AS median_overdue_ratio,
            coalesce(avg(c.p_alive), 0) AS mean_p_alive,
            coalesce(sum(c.expected_purchases), 0) AS expected_purchases
        FROM (SELECT unnest($bands) AS band, generate_subscripts($bands, 1) AS i) AS b
        LEFT JOIN gold.customer_churn AS c ON c.churn_band = b.band
        GROUP BY b.band, b.i ORDER BY b.i""", {"bands": list(BANDS)})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]
