"""The figures a person reads about the marts (asset metadata, the run summary): plain SQL over the warehouse."""

import duckdb


def _dicts(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> list[dict]:
    cur = con.execute(sql, params or {})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def channel_figures(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per channel: lines, sale occasions, net revenue (EUR) and the share of it tied to a golden customer."""
    return _dicts(con, """
        SELECT channel,
            count(*) AS lines,
            count(DISTINCT occasion_id) FILTER (WHERE line_type = 'sale') AS sale_occasions,
            count(*) FILTER (WHERE line_type = 'return') AS return_lines,
            count(*) FILTER (WHERE customer_id IS NULL) AS anonymous_lines,
            count(DISTINCT customer_id) AS customers,
            CAST(coalesce(sum(amount_eur), 0) AS DOUBLE) AS revenue_eur,
            CAST(coalesce(sum(amount_eur) FILTER (WHERE customer_id IS NOT NULL), 0) AS DOUBLE)
                AS identified_revenue_eur,
            coalesce(sum(amount_eur) FILTER (WHERE customer_id IS NOT NULL) / nullif(sum(amount_eur), 0), 0)
                AS identified_share
        FROM gold.customer_purchases GROUP BY channel ORDER BY channel""")


def segment_figures(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Per RFM segment: customers, their share, revenue in the window (EUR) and typical R/F/M, largest first."""
    return _dicts(con, """
        SELECT segment, count(*) AS customers, count(*) / sum(count(*)) OVER () AS share,
            CAST(sum(monetary_eur) AS DOUBLE) AS revenue_eur,
            CAST(median(recency_days) AS DOUBLE) AS median_recency_days,
            CAST(median(frequency) AS DOUBLE) AS median_frequency
        FROM gold.customer_rfm GROUP BY segment ORDER BY customers DESC, segment""")


def strongest_rules(con: duckdb.DuckDBPyConnection, n: int = 5) -> list[dict]:
    return _dicts(con, """
        SELECT antecedent_name, consequent_name, baskets_with_both, support, confidence, lift
        FROM gold.market_basket ORDER BY lift DESC, confidence DESC, antecedent_sku, consequent_sku LIMIT $n""",
                  {"n": n})


def _cell(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4f}" if abs(value) < 1 else f"{value:,.2f}"


def markdown(rows: list[dict], columns: dict[str, str]) -> str:
    """A markdown table of the given columns (key -> heading)."""
    numeric = [bool(rows) and isinstance(rows[0][k], (int, float)) and not isinstance(rows[0][k], bool)
               for k in columns]
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "".join(" ---: |" if n else " --- |" for n in numeric)]
    lines += ["| " + " | ".join(_cell(r[k]) for k in columns) + " |" for r in rows]
    return "\n".join(lines)
