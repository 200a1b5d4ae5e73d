"""gold.customer_churn: who is drifting away, from their own rhythm and a BG/NBD model (docs/marts.md)."""

import dagster as dg
import duckdb

from customer_pipeline.defs.automation.sensors import DOWNSTREAM_CONDITION
from customer_pipeline.defs.marts import assets, checks
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.marts import churn, report
from customer_pipeline.marts.settings import MartSettings

CHURN_KEY = dg.AssetKey(["gold", churn.CHURN])
CHURN_VALUES_VALID = "churn_values_valid"

assets.COLUMNS.setdefault(churn.CHURN, {
    "as_of_date": "observation end: the newest sale date in the data (or CUSTOMER_PIPELINE_RFM_AS_OF)",
    "purchase_days": "days with a sale (several receipts or orders on one day count once); returns are none",
    "frequency": "repeat purchase days (purchase_days - 1), as BG/NBD counts them",
    "recency": "days from the first to the last purchase day",
    "t_days": "BG/NBD's T: days from the first purchase day to as_of_date",
    "days_since_last": "days from the last purchase day to as_of_date",
    "expected_gap_days": "median of the customer's own gaps between purchase days; one-time buyers: the population's",
    "mean_gap_days": "mean of the customer's own gaps (NULL for one-time buyers)",
    "gap_source": "own, or population for a one-time buyer",
    "overdue_ratio": "days_since_last / expected_gap_days: 1 = due today",
    "overdue_band": f"active < {churn.OVERDUE_COOLING} <= cooling < {churn.OVERDUE_AT_RISK} <= at risk < "
                    f"{churn.OVERDUE_LAPSED} <= lapsed (overdue_ratio)",
    "p_alive": "BG/NBD probability the customer is still active at as_of_date (pymc-marketing, MAP fit)",
    "probability_band": f"active >= {churn.P_ALIVE_COOLING} > cooling >= {churn.P_ALIVE_AT_RISK} > at risk >= "
                        f"{churn.P_ALIVE_LAPSED} > lapsed (p_alive)",
    "expected_purchases": "purchase days the model expects in the horizon_days after as_of_date",
    "churn_band": "the worse of overdue_band and probability_band",
})


def _churn_metadata(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> dict:
    model = churn.model_figures(con)
    bands = churn.band_figures(con)
    as_of = con.execute("SELECT max(as_of_date) FROM gold.customer_churn").fetchall()[0][0]
    return {
        "as_of_date": dg.MetadataValue.text(str(as_of)),
        "horizon_days": dg.MetadataValue.int(int(model["horizon_days"])),
        "fit_seconds": dg.MetadataValue.float(round(float(model["fit_seconds"]), 3)),
        "parameters": dg.MetadataValue.json({k: None if model[k] is None else round(float(model[k]), 6)
                                             for k in ("r", "alpha", "a", "b")}),
        "bands": dg.MetadataValue.md(report.markdown(bands, {
            "band": "band", "customers": "customers", "share": "share", "median_overdue_ratio": "median overdue ratio",
            "mean_p_alive": "mean p_alive", "expected_purchases": f"expected purchases ({model['horizon_days']} d)"})),
        **{f"customers_{b['band'].replace(' ', '_')}": dg.MetadataValue.int(int(b["customers"])) for b in bands},
    }


@dg.asset(key=CHURN_KEY, group_name=assets.GROUP, kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          deps=[assets.PURCHASES_KEY, dg.AssetKey(["gold", "golden_customers"])],
          automation_condition=DOWNSTREAM_CONDITION,
          description="Per customer: the expected gap between purchases, how overdue they are, the BG/NBD "
                      f"probability of still being active, purchases expected in {churn.HORIZON_DAYS} days, and a "
                      "churn-risk band.")
def customer_churn(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return assets._build(warehouse, churn.CHURN, lambda con, s: churn.build(con, s.rfm_as_of), _churn_metadata)


churn_customers_known = checks._customers_check(CHURN_KEY)


def churn_values_valid(con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """One row per customer; p_alive in [0, 1]; expected purchases, gaps and days not negative; a band on every row."""
    if failed := checks._missing(CHURN_KEY, CHURN_VALUES_VALID, con, "gold.customer_churn"):
        return failed
    counts = con.execute("""
        SELECT count(*) - count(DISTINCT customer_id),
            count(*) FILTER (WHERE p_alive IS NULL OR NOT p_alive BETWEEN 0 AND 1),
            count(*) FILTER (WHERE expected_purchases IS NULL OR isnan(expected_purchases) OR expected_purchases < 0),
            count(*) FILTER (WHERE frequency < 0 OR recency < 0 OR recency > t_days OR days_since_last < 0
                                   OR NOT expected_gap_days >= 1),
            count(*) FILTER (WHERE churn_band IS NULL OR NOT list_contains($bands, churn_band))
        FROM gold.customer_churn""", {"bands": list(churn.BANDS)}).fetchall()[0]
    repeated, bad_p, bad_expected, bad_features, no_band = (int(v) for v in counts)
    return dg.AssetCheckResult(
        asset_key=CHURN_KEY, check_name=CHURN_VALUES_VALID, passed=not any(counts),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "customers_more_than_once": dg.MetadataValue.int(repeated),
            "rows_with_p_alive_outside_0_1": dg.MetadataValue.int(bad_p),
            "rows_with_bad_expected_purchases": dg.MetadataValue.int(bad_expected),
            "rows_with_inconsistent_features": dg.MetadataValue.int(bad_features),
            "rows_without_band": dg.MetadataValue.int(no_band),
        },
    )


@dg.asset_check(asset=CHURN_KEY, name=CHURN_VALUES_VALID, blocking=True,
                description="One row per customer, p_alive in [0, 1], expected purchases not negative, a band on "
                            "every row.")
def customer_churn_values_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return churn_values_valid(con)
