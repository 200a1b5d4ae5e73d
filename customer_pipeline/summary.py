"""The run summary a person reads after `customer-pipeline run` / `make demo` (plain SQL over the warehouse)."""

import duckdb

from customer_pipeline.marts import report as marts_report
from customer_pipeline.warehouse import table_exists

SOURCES = ("pos", "shop", "call_center", "app")

LATER_STAGES = [
    ("staging", "staging.person_records", "standardised person records"),
    ("identity", "gold.customer_xref", "source records linked to a customer"),
    ("gold", "gold.golden_customers", "golden customers"),
    ("gold", "gold.customer_id_history", "customer id changes (merges/splits)"),
    ("gold", "gold.households", "households (customers at one address)"),
    ("identity", "identity.review_queue", "pairs waiting for review"),
    ("quality", "gold.data_quality_report", "data-quality metric rows"),
    ("freshness", "gold.source_freshness", "sources tracked for freshness"),
    ("marts", "gold.customer_purchases", "purchase lines tied to customers"),
    ("marts", "gold.customer_rfm", "customers with RFM scores and a segment"),
    ("marts", "gold.market_basket", "product association rules"),
    ("marts", "gold.customer_recommendations", "product recommendations"),
]


def source_counts(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> list[dict]:
    """Per source: rows read, loaded (new or changed), duplicates and quarantined, for one run or all."""
    out = {s: {"source": s, "read": 0, "loaded": 0, "duplicate": 0, "unchanged": 0, "quarantined": 0} for s in SOURCES}
    where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
    if table_exists(con, "meta.loaded_files"):
        for src, read, loaded, dup, quar in con.execute(
            f"""SELECT source, sum(rows_read), sum(rows_loaded), sum(rows_duplicate), sum(rows_quarantined)
            FROM meta.loaded_files {where} GROUP BY source""",
            params,
        ).fetchall():
            out[src].update(read=int(read), loaded=int(loaded), duplicate=int(dup), quarantined=int(quar))
    if table_exists(con, "meta.extract_log"):
        log_where = where if run_id else (
            "WHERE (location, loaded_at) IN (SELECT location, max(loaded_at) FROM meta.extract_log GROUP BY location)"
        )
        for read, loaded, unchanged, quar in con.execute(
            f"""SELECT sum(rows_read), sum(rows_loaded), sum(rows_unchanged), sum(rows_quarantined)
            FROM meta.extract_log {log_where}""",
            params,
        ).fetchall():
            if read is not None:
                out["shop"].update(read=int(read), loaded=int(loaded), unchanged=int(unchanged), quarantined=int(quar))
    return list(out.values())


def warehouse_totals(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows held per raw table and in quarantine."""
    rows = con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema IN ('raw', 'quarantine') ORDER BY 1"
    ).fetchall()
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for (t,) in rows}


def render(con: duckdb.DuckDBPyConnection, run_id: str | None, extra_lines: list[str] | None = None) -> str:
    lines = ["", "Sources (this run)", f"  {'source':12s} {'read':>9s} {'loaded':>9s} {'dup':>7s} {'unchanged':>9s} {'quarant.':>9s}"]
    for c in source_counts(con, run_id):
        lines.append(
            f"  {c['source']:12s} {c['read']:9d} {c['loaded']:9d} {c['duplicate']:7d} {c['unchanged']:9d} {c['quarantined']:9d}"
        )
    lines += ["", "Warehouse (raw layer and quarantine)"]
    lines += [f"  {t:36s} {n:9d}" for t, n in warehouse_totals(con).items()]
    lines += ["", "Later stages"]
    for stage, table, label in LATER_STAGES:
        if table_exists(con, table):
            n = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            lines.append(f"  {table:36s} {n:9d}  {label}")
        else:
            lines.append(f"  {table:36s} {'-':>9s}  {label}: stage '{stage}' not built yet")
    lines += extra_lines or []
    return "\n".join(lines)


def marts_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The customer-360 marts in a few lines: revenue identified per channel, RFM segments, rules, recommendations."""
    if not table_exists(con, "gold.customer_purchases"):
        return ["", "Customer-360 marts: stage 'marts' not built yet"]
    lines = ["", "Customer-360 marts (docs/marts.md)"]
    for c in marts_report.channel_figures(con):
        lines.append(f"  {c['channel']:5s} revenue EUR {c['revenue_eur']:>12,.2f}, {c['identified_share']:.1%} identified "
                     f"({c['sale_occasions']:,} sale occasions, {c['anonymous_lines']:,} anonymous lines)")
    if table_exists(con, "gold.customer_rfm"):
        as_of, window = con.execute("SELECT max(as_of_date), max(window_days) FROM gold.customer_rfm").fetchall()[0]
        segments = ", ".join(f"{s['segment']} {s['customers']:,}" for s in marts_report.segment_figures(con))
        lines.append(f"  RFM ({window} days to {as_of}): {segments}")
    if table_exists(con, "gold.market_basket"):
        n = con.execute("SELECT count(*) FROM gold.market_basket").fetchall()[0][0]
        top = "; ".join(f"{r['antecedent_name']} -> {r['consequent_name']} (lift {r['lift']:.1f})"
                        for r in marts_report.strongest_rules(con, 3))
        lines.append(f"  basket rules: {n:,}" + (f"; strongest {top}" if top else ""))
    if table_exists(con, "gold.customer_recommendations"):
        served, rows = con.execute("SELECT count(DISTINCT customer_id), count(*) "
                                   "FROM gold.customer_recommendations").fetchall()[0]
        lines.append(f"  recommendations: {rows:,} for {served:,} customers")
    return lines
