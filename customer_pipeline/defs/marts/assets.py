"""Customer-360 marts: purchases tied to golden customers, RFM segments, basket rules, recommendations.

What each table holds and why: docs/marts.md.
"""

import time

import dagster as dg
import duckdb

from customer_pipeline.charts import marts as charts
from customer_pipeline.defs.automation.sensors import DOWNSTREAM_CONDITION
from customer_pipeline.defs.conventions import column_schema, picture
from customer_pipeline.defs.quality.gx_factory import full_refresh_asked
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.marts import history, models, report
from customer_pipeline.marts.settings import REPORTING_CURRENCY, MartSettings

GROUP = "marts"
PURCHASES_KEY = dg.AssetKey(["gold", models.PURCHASES])
RFM_KEY = dg.AssetKey(["gold", models.RFM])
BASKET_KEY = dg.AssetKey(["gold", models.BASKET])
RECOMMENDATIONS_KEY = dg.AssetKey(["gold", models.RECOMMENDATIONS])
# what gold.customer_purchases reads (sql/customer_purchases.sql); golden customers so that its check compares
# with the golden table of this very run
PURCHASES_DEPS = [dg.AssetKey(k) for k in (
    ["staging", "pos_transactions"], ["staging", "shop_orders"], ["raw", "pos_transactions"], ["raw", "shop_orders"],
    ["raw", "shop_order_items"], ["gold", "customer_xref"], ["gold", "golden_customers"])]

COLUMNS = {
    models.PURCHASES: {
        "purchase_line_id": "unique: <occasion_id>:<line_no>, ':return' added for a shop order's return line",
        "customer_id": "golden customer (gold.golden_customers); NULL for an anonymous receipt or an unknown card",
        "channel": "pos or shop",
        "occasion_id": "the basket: pos:<store_id>:<receipt_id> or shop:<order id>",
        "line_type": "sale or return (qty and amounts negative)",
        "source_key": "card:<card_no>, customer:<id> or guest_order:<order id>, as in gold.customer_xref",
        "store_id": "the store; 'web' for the shop",
        "purchased_at": "UTC; a shop return is dated by the order's updated_at",
        "amount": "qty x unit_price less the discount, in the receipt currency",
        "fx_rate_eur": "EUR per unit of the currency on the purchase date (data/reference/fx_rates.csv)",
        "amount_eur": f"amount in {REPORTING_CURRENCY}, the reporting currency",
        "order_status": "shop order status; NULL for POS",
    },
    models.RFM: {
        "as_of_date": "the reference date: newest purchase date in the data, or CUSTOMER_PIPELINE_RFM_AS_OF",
        "recency_days": "days from the last sale to as_of_date",
        "frequency": "distinct sale occasions (receipts, orders) in the window",
        "monetary_eur": "net EUR (sales less returns) in the window",
        "in_window": "bought in the window; customers who did not score 1-1-1",
        "r_score": "1-5, quintile among customers who bought in the window; higher = more recent",
        "fm_score": "(f_score + m_score) / 2, rounded half up",
        "segment": "RFM grid segment (docs/marts.md)",
    },
    models.BASKET: {
        "baskets_with_both": "sale occasions holding both SKUs",
        "support": "baskets_with_both / baskets_total",
        "confidence": "baskets_with_both / baskets_with_antecedent",
        "lift": "confidence / (baskets_with_consequent / baskets_total)",
    },
    models.RECOMMENDATIONS: {
        "rank": "1 = best (lift, then confidence, then sku)",
        "sku": "a product the customer has not bought",
        "because_of_sku": "the product they bought whose rule points here",
    },
}


def _schema(con: duckdb.DuckDBPyConnection, model: str) -> dg.TableSchema:
    return column_schema(con, f"gold.{model}", COLUMNS.get(model))


# the pictures on each mart's page (customer_pipeline/charts/marts.py); a chart returning None is left out
PICTURES = {
    models.RFM: {"rfm_grid_chart": charts.rfm_grid_from_warehouse,
                 "segment_sizes_chart": lambda con: charts.segment_sizes_over_runs(history.segment_history(con))},
    models.BASKET: {"top_rules_chart": charts.top_rules_from_warehouse},
    "customer_churn": {"churn_risk_chart": charts.churn_risk_from_warehouse},  # once gold.customer_churn exists
}


def _pictures(con: duckdb.DuckDBPyConnection, model: str) -> dict:
    return {name: picture(uri) for name, draw in PICTURES.get(model, {}).items() if (uri := draw(con))}


def _common(con: duckdb.DuckDBPyConnection, model: str, rows: int, seconds: float) -> dict:
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/table_name": dg.MetadataValue.text(f"gold.{model}"),
        "dagster/column_schema": _schema(con, model),
        "build_seconds": dg.MetadataValue.float(round(seconds, 3)),
        "sql": dg.MetadataValue.path(str(models.sql_path(model))),
    }


def _build(warehouse: WarehouseResource, model: str, builder, metadata) -> dg.MaterializeResult:
    """Run one model and describe it; `metadata(con, settings)` adds the model's own figures."""
    settings = MartSettings.from_env()
    with warehouse.connect() as con:
        started = time.perf_counter()
        built = builder(con, settings)
        seconds = time.perf_counter() - started
        # a builder returns the rows it wrote, or how `models.build_by_difference` brought the table up to date
        how = {}
        if isinstance(built, models.Applied):
            how = {"build": dg.MetadataValue.text(built.describe()),
                   "rows_removed": dg.MetadataValue.int(built.removed), "rows_added": dg.MetadataValue.int(built.added)}
            built = built.rows
        return dg.MaterializeResult(metadata={**_common(con, model, built, seconds), **how, **metadata(con, settings),
                                              **_pictures(con, model)})


def _purchases_metadata(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> dict:
    channels = report.channel_figures(con)
    rates = con.execute("SELECT currency, valid_from, eur_per_unit FROM fx_rates ORDER BY ALL").fetchall()
    metadata = {
        "channels": dg.MetadataValue.md(report.markdown(channels, {
            "channel": "channel", "lines": "lines", "sale_occasions": "sale occasions", "return_lines": "return lines",
            "anonymous_lines": "anonymous lines", "customers": "customers", "revenue_eur": "revenue EUR",
            "identified_share": "share of revenue identified"})),
        "fx_rates": dg.MetadataValue.md("| currency | valid from | EUR per unit |\n| --- | --- | ---: |\n"
                                        + "\n".join(f"| {c} | {d} | {r} |" for c, d, r in rates)),
        "fx_rates_file": dg.MetadataValue.path(str(models.fx_rates_path(settings))),
        "lines_without_fx_rate": dg.MetadataValue.int(int(con.execute(
            "SELECT count(*) FROM gold.customer_purchases WHERE amount_eur IS NULL").fetchall()[0][0])),
    }
    for c in channels:
        metadata[f"revenue_eur_{c['channel']}"] = dg.MetadataValue.float(round(c["revenue_eur"], 2))
        metadata[f"identified_revenue_share_{c['channel']}"] = dg.MetadataValue.float(round(c["identified_share"], 4))
    return metadata


def _rfm_metadata(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> dict:
    as_of, in_window = con.execute(
        "SELECT max(as_of_date), count(*) FILTER (WHERE in_window) FROM gold.customer_rfm").fetchall()[0]
    return {
        "as_of_date": dg.MetadataValue.text(str(as_of)),
        "window_days": dg.MetadataValue.int(settings.rfm_window_days),
        "customers_in_window": dg.MetadataValue.int(int(in_window)),
        "segment_history_runs": dg.MetadataValue.int(history.record_segments(con)),  # for segment_sizes_chart
        "segments": dg.MetadataValue.md(report.markdown(report.segment_figures(con), {
            "segment": "segment", "customers": "customers", "share": "share", "revenue_eur": "revenue EUR (window)",
            "median_recency_days": "median recency (days)", "median_frequency": "median frequency"})),
    }


def _basket_metadata(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> dict:
    baskets = con.execute("SELECT count(DISTINCT occasion_id) FROM gold.customer_purchases "
                          "WHERE line_type = 'sale'").fetchall()[0][0]
    return {
        "rules": dg.MetadataValue.int(int(con.execute("SELECT count(*) FROM gold.market_basket").fetchall()[0][0])),
        "baskets": dg.MetadataValue.int(int(baskets)),
        "strongest_rules": dg.MetadataValue.md(report.markdown(report.strongest_rules(con, 5), {
            "antecedent_name": "bought", "consequent_name": "also bought", "baskets_with_both": "baskets",
            "support": "support", "confidence": "confidence", "lift": "lift"})),
        "thresholds": dg.MetadataValue.json({"min_support_count": settings.min_support_count,
                                             "min_confidence": settings.min_confidence,
                                             "min_lift": settings.min_lift}),
    }


def _recommendations_metadata(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> dict:
    eligible, served = con.execute(
        "SELECT (SELECT count(*) FROM gold.customer_rfm WHERE in_window), "
        "(SELECT count(DISTINCT customer_id) FROM gold.customer_recommendations)").fetchall()[0]
    top = con.execute(
        "SELECT product_name, count(*) AS n FROM gold.customer_recommendations GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5"
    ).fetchall()
    return {
        "customers_in_rfm_window": dg.MetadataValue.int(int(eligible)),
        "customers_with_recommendations": dg.MetadataValue.int(int(served)),
        "per_customer": dg.MetadataValue.int(settings.recommendations_per_customer),
        "most_recommended": dg.MetadataValue.md("| product | customers |\n| --- | ---: |\n"
                                                + "\n".join(f"| {p} | {n:,} |" for p, n in top)),
    }


@dg.asset(key=PURCHASES_KEY, group_name=GROUP, kinds={"duckdb"}, deps=PURCHASES_DEPS, pool=WAREHOUSE_POOL,
          automation_condition=DOWNSTREAM_CONDITION,
          description="Every POS receipt line and shop order line tied to its golden customer, in the receipt "
                      f"currency and in {REPORTING_CURRENCY}; returns negative, anonymous receipts kept.")
def customer_purchases(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    # brought up to date by difference; `run --full` writes it whole (marts/models.py, build_by_difference)
    return _build(warehouse, models.PURCHASES,
                  lambda con, s: models.update_customer_purchases(con, s, whole=full_refresh_asked(context)),
                  _purchases_metadata)


@dg.asset(key=RFM_KEY, group_name=GROUP, kinds={"duckdb"}, deps=[PURCHASES_KEY], pool=WAREHOUSE_POOL,
          automation_condition=DOWNSTREAM_CONDITION,
          description="Recency, frequency and monetary value per customer over the RFM window, quintile scores "
                      "and a named segment (docs/marts.md).")
def customer_rfm(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return _build(warehouse, models.RFM, models.build_customer_rfm, _rfm_metadata)


@dg.asset(key=BASKET_KEY, group_name=GROUP, kinds={"duckdb"}, deps=[PURCHASES_KEY], pool=WAREHOUSE_POOL,
          automation_condition=DOWNSTREAM_CONDITION,
          description="Product association rules between SKUs (support, confidence, lift) from receipts and orders.")
def market_basket(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return _build(warehouse, models.BASKET, models.build_market_basket, _basket_metadata)


@dg.asset(key=RECOMMENDATIONS_KEY, group_name=GROUP, kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          deps=[BASKET_KEY, RFM_KEY, PURCHASES_KEY], automation_condition=DOWNSTREAM_CONDITION,
          description="For each customer who bought in the RFM window, the top products that go with what they "
                      "bought and that they have not bought yet.")
def customer_recommendations(warehouse: WarehouseResource) -> dg.MaterializeResult:
    return _build(warehouse, models.RECOMMENDATIONS, models.build_customer_recommendations, _recommendations_metadata)
