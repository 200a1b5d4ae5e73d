"""Checks on the marts: what BI joins on and sums must hold (blocking), a missing exchange rate is flagged (warning)."""

import dagster as dg
import duckdb

from customer_pipeline.defs.marts.assets import BASKET_KEY, PURCHASES_KEY, RECOMMENDATIONS_KEY, RFM_KEY
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.marts.settings import SHOP_RETURN_STATUSES, SHOP_VOID_STATUSES, MartSettings
from customer_pipeline.warehouse import table_exists

CUSTOMERS_KNOWN = "customer_ids_in_golden_customers"
REVENUE_MATCHES_STAGING = "revenue_matches_staging"
FX_RATE_FOR_EVERY_LINE = "fx_rate_for_every_line"
RFM_SCORES_VALID = "scores_and_segments_valid"
RULES_IN_RANGE = "rules_in_range"
EXAMPLES = 5
# support, confidence and lift are recomputed from the counts; doubles agree to far better than this
TOLERANCE = 1e-9


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None):
    return con.execute(sql, params or {}).fetchall()[0][0]


def _missing(asset_key: dg.AssetKey, check_name: str, con: duckdb.DuckDBPyConnection, *tables: str):
    """A failed result naming the absent tables, or None when all are there."""
    absent = [t for t in tables if not table_exists(con, t)]
    if not absent:
        return None
    return dg.AssetCheckResult(asset_key=asset_key, check_name=check_name, passed=False,
                               severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"missing_tables": dg.MetadataValue.text(", ".join(absent))})


def customers_known(con: duckdb.DuckDBPyConnection, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """Every customer_id of the mart is a row of gold.golden_customers; only purchases may lack one (anonymous)."""
    table = "gold." + asset_key.path[-1]
    if failed := _missing(asset_key, CUSTOMERS_KNOWN, con, table, "gold.golden_customers"):
        return failed
    unknown_sql = (f"SELECT DISTINCT m.customer_id FROM {table} AS m WHERE m.customer_id IS NOT NULL AND NOT EXISTS "
                   "(SELECT 1 FROM gold.golden_customers AS g WHERE g.customer_id = m.customer_id)")
    unknown = int(_scalar(con, f"SELECT count(*) FROM ({unknown_sql})"))
    examples = [r[0] for r in con.execute(f"{unknown_sql} ORDER BY 1 LIMIT {EXAMPLES}").fetchall()]
    nulls = int(_scalar(con, f"SELECT count(*) FROM {table} WHERE customer_id IS NULL"))
    nulls_allowed = asset_key == PURCHASES_KEY
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=CUSTOMERS_KNOWN, passed=unknown == 0 and (nulls_allowed or nulls == 0),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "customers": dg.MetadataValue.int(int(_scalar(con, f"SELECT count(DISTINCT customer_id) FROM {table}"))),
            "unknown_customer_ids": dg.MetadataValue.int(unknown),
            "unknown_examples": dg.MetadataValue.text(", ".join(examples) or "none"),
            "rows_without_customer_id": dg.MetadataValue.int(nulls),
            "rows_without_customer_id_allowed": dg.MetadataValue.bool(nulls_allowed),
        },
    )


# The staging side of the reconciliation, derived independently of sql/customer_purchases.sql, per channel and
# currency: POS lines and their net amount from staging.pos_transactions, shop sales and returns from the
# order totals of staging.shop_orders (so an order whose lines do not add up to its total fails too).
RECONCILIATION = """
WITH staged AS (
    SELECT 'pos' AS channel, currency, 'lines' AS measure, CAST(count(*) AS DECIMAL(18, 2)) AS staging
    FROM staging.pos_transactions GROUP BY currency
    UNION ALL
    SELECT 'pos', currency, 'net amount', sum(qty * unit_price - sign(qty) * coalesce(discount, 0))
    FROM staging.pos_transactions GROUP BY currency
    UNION ALL
    SELECT 'shop', currency, 'sales', sum(total) FROM staging.shop_orders
    WHERE NOT list_contains($void_statuses, coalesce(status, '')) GROUP BY currency
    UNION ALL
    SELECT 'shop', currency, 'returns', -sum(total) FROM staging.shop_orders
    WHERE list_contains($return_statuses, status) GROUP BY currency
), built AS (
    SELECT channel, currency, 'lines' AS measure, CAST(count(*) AS DECIMAL(18, 2)) AS purchases
    FROM gold.customer_purchases WHERE channel = 'pos' GROUP BY ALL
    UNION ALL
    SELECT channel, currency, 'net amount', sum(amount) FROM gold.customer_purchases
    WHERE channel = 'pos' GROUP BY ALL
    UNION ALL
    SELECT channel, currency, CASE line_type WHEN 'sale' THEN 'sales' ELSE 'returns' END, sum(amount)
    FROM gold.customer_purchases WHERE channel = 'shop' GROUP BY ALL
)
SELECT coalesce(s.channel, b.channel) AS channel, coalesce(s.currency, b.currency, '(none)') AS currency,
    coalesce(s.measure, b.measure) AS measure, coalesce(s.staging, 0) AS staging, coalesce(b.purchases, 0) AS purchases
FROM staged AS s
FULL JOIN built AS b ON b.channel = s.channel AND b.measure = s.measure AND b.currency IS NOT DISTINCT FROM s.currency
ORDER BY ALL
"""

UNBALANCED_ORDERS = """
SELECT o.order_id FROM staging.shop_orders AS o
LEFT JOIN (SELECT occasion_id, sum(amount) AS amount FROM gold.customer_purchases
           WHERE channel = 'shop' AND line_type = 'sale' GROUP BY 1) AS p ON p.occasion_id = 'shop:' || o.order_id
WHERE NOT list_contains($void_statuses, coalesce(o.status, '')) AND p.amount IS DISTINCT FROM o.total
ORDER BY o.order_id
"""


def _num(value, measure: str) -> str:
    return f"{value:,.0f}" if measure == "lines" else f"{value:,.2f}"


def revenue_matches_staging(con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """gold.customer_purchases holds, per channel, exactly the revenue of the staging tables it is built from."""
    if failed := _missing(PURCHASES_KEY, REVENUE_MATCHES_STAGING, con, "gold.customer_purchases",
                          "staging.pos_transactions", "staging.shop_orders"):
        return failed
    statuses = {"void_statuses": list(SHOP_VOID_STATUSES), "return_statuses": list(SHOP_RETURN_STATUSES)}
    rows = con.execute(RECONCILIATION, statuses).fetchall()
    unbalanced = [r[0] for r in con.execute(UNBALANCED_ORDERS, {"void_statuses": statuses["void_statuses"]}).fetchall()]
    table = "\n".join(["| channel | currency | measure | staging | customer_purchases | difference |",
                       "| --- | --- | --- | ---: | ---: | ---: |"]
                      + [f"| {c} | {cur} | {m} | {_num(s, m)} | {_num(p, m)} | {_num(p - s, m)} |"
                         for c, cur, m, s, p in rows])
    return dg.AssetCheckResult(
        asset_key=PURCHASES_KEY, check_name=REVENUE_MATCHES_STAGING, passed=all(s == p for *_, s, p in rows),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "reconciliation": dg.MetadataValue.md(table),
            "staging_tables": dg.MetadataValue.text("staging.pos_transactions, staging.shop_orders"),
            "shop_orders_not_matching_their_lines": dg.MetadataValue.int(len(unbalanced)),
            "examples": dg.MetadataValue.text(", ".join(str(o) for o in unbalanced[:EXAMPLES]) or "none"),
        },
    )


def fx_rate_for_every_line(con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """Every line has an amount in the reporting currency (its currency has a rate valid on its date)."""
    if failed := _missing(PURCHASES_KEY, FX_RATE_FOR_EVERY_LINE, con, "gold.customer_purchases"):
        return failed
    missing = con.execute("""
        SELECT coalesce(currency, '(none)'), count(*) FROM gold.customer_purchases
        WHERE amount_eur IS NULL AND amount IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()
    return dg.AssetCheckResult(
        asset_key=PURCHASES_KEY, check_name=FX_RATE_FOR_EVERY_LINE, passed=not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"lines_without_rate": dg.MetadataValue.int(sum(int(n) for _, n in missing)),
                  "by_currency": dg.MetadataValue.json({c: int(n) for c, n in missing})},
    )


def rfm_scores_valid(con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """One row per customer, scores 1-5, a segment for every row, measures that agree with in_window."""
    if failed := _missing(RFM_KEY, RFM_SCORES_VALID, con, "gold.customer_rfm"):
        return failed
    counts = con.execute("""
        SELECT count(*) - count(DISTINCT customer_id),
            count(*) FILTER (WHERE NOT (r_score BETWEEN 1 AND 5 AND f_score BETWEEN 1 AND 5 AND m_score BETWEEN 1 AND 5
                                        AND fm_score BETWEEN 1 AND 5)),
            count(*) FILTER (WHERE segment IS NULL),
            count(*) FILTER (WHERE recency_days < 0 OR frequency < 0 OR in_window IS DISTINCT FROM (frequency > 0)),
            count(*) FILTER (WHERE NOT in_window AND (r_score, f_score, m_score) <> (1, 1, 1))
        FROM gold.customer_rfm""").fetchall()[0]
    repeated, bad_scores, no_segment, bad_measures, bad_outside = (int(v) for v in counts)
    return dg.AssetCheckResult(
        asset_key=RFM_KEY, check_name=RFM_SCORES_VALID, passed=not any(counts),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "customers_more_than_once": dg.MetadataValue.int(repeated),
            "rows_with_score_outside_1_5": dg.MetadataValue.int(bad_scores),
            "rows_without_segment": dg.MetadataValue.int(no_segment),
            "rows_with_inconsistent_measures": dg.MetadataValue.int(bad_measures),
            "rows_outside_window_not_scored_111": dg.MetadataValue.int(bad_outside),
        },
    )


def rules_in_range(con: duckdb.DuckDBPyConnection, settings: MartSettings | None = None) -> dg.AssetCheckResult:
    """Every rule: support and confidence in (0, 1], lift > 0, each agreeing with its counts, thresholds met."""
    if failed := _missing(BASKET_KEY, RULES_IN_RANGE, con, "gold.market_basket"):
        return failed
    s = settings or MartSettings.from_env()
    counts = con.execute("""
        SELECT
            count(*),
            count(*) FILTER (WHERE NOT (support > 0 AND support <= 1 AND confidence > 0 AND confidence <= 1
                                        AND lift > 0)),
            count(*) FILTER (WHERE antecedent_sku = consequent_sku
                OR NOT baskets_with_both <= least(baskets_with_antecedent, baskets_with_consequent)
                OR NOT greatest(baskets_with_antecedent, baskets_with_consequent) <= baskets_total
                OR abs(support - baskets_with_both / baskets_total) > $tol
                OR abs(confidence - baskets_with_both / baskets_with_antecedent) > $tol
                OR abs(lift - confidence * baskets_total / baskets_with_consequent) > $tol * lift),
            count(*) FILTER (WHERE baskets_with_both < $min_count OR confidence < $min_confidence - $tol
                                   OR lift < $min_lift - $tol),
            count(*) - count(DISTINCT (antecedent_sku, consequent_sku))
        FROM gold.market_basket""",
        {"tol": TOLERANCE, "min_count": s.min_support_count, "min_confidence": s.min_confidence,
         "min_lift": s.min_lift}).fetchall()[0]
    rules, out_of_range, inconsistent, below, repeated = (int(v) for v in counts)
    return dg.AssetCheckResult(
        asset_key=BASKET_KEY, check_name=RULES_IN_RANGE, passed=not (out_of_range or inconsistent or below or repeated),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rules": dg.MetadataValue.int(rules),
            "rules_out_of_range": dg.MetadataValue.int(out_of_range),
            "rules_disagreeing_with_their_counts": dg.MetadataValue.int(inconsistent),
            "rules_below_thresholds": dg.MetadataValue.int(below),
            "rules_repeated": dg.MetadataValue.int(repeated),
        },
    )


def _customers_check(asset_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset_key, name=CUSTOMERS_KNOWN, blocking=True,
                    description="Every customer_id is a row of gold.golden_customers (purchases: or NULL, anonymous).")
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            return customers_known(con, asset_key)

    return _check


purchases_customers_known = _customers_check(PURCHASES_KEY)
rfm_customers_known = _customers_check(RFM_KEY)
recommendations_customers_known = _customers_check(RECOMMENDATIONS_KEY)


@dg.asset_check(asset=PURCHASES_KEY, name=REVENUE_MATCHES_STAGING, blocking=True,
                description="Per channel and currency, the lines and net amount of staging.pos_transactions and the "
                            "sales and returns of staging.shop_orders (order totals) equal those of "
                            "gold.customer_purchases.")
def purchases_revenue_matches_staging(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return revenue_matches_staging(con)


@dg.asset_check(asset=PURCHASES_KEY, name=FX_RATE_FOR_EVERY_LINE,
                description="Warns when a line's currency has no rate valid on its date in the rate table "
                            "(its amount_eur is NULL and is missing from RFM monetary values).")
def purchases_fx_rate_for_every_line(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return fx_rate_for_every_line(con)


@dg.asset_check(asset=RFM_KEY, name=RFM_SCORES_VALID, blocking=True,
                description="One row per customer; R, F, M and FM scores 1-5; a segment on every row.")
def rfm_scores_and_segments_valid(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return rfm_scores_valid(con)


@dg.asset_check(asset=BASKET_KEY, name=RULES_IN_RANGE, blocking=True,
                description="Support and confidence in (0, 1], lift > 0, all three agreeing with the rule's counts, "
                            "and every rule at or above the thresholds.")
def market_basket_rules_in_range(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return rules_in_range(con)
