"""The run summary a person reads after `customer-pipeline run` / `make demo` (plain SQL over the warehouse,
and the run's own steps and check evaluations as `progress.RunLog` collected them from its event log)."""

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from customer_pipeline.erasure.register import arrival_lines
from customer_pipeline.marts import report as marts_report
from customer_pipeline.warehouse import table_exists

SOURCES = ("pos", "shop", "call_center", "app", "suppression")

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
    ("marts", "gold.customer_churn", "customers with a churn-risk band (BG/NBD)"),
    ("staging", "staging.suppression_entries", "preference-register entries in force"),
    ("marts", "gold.marketing_audience", "customer x channel permissions"),
    ("marts", "gold.customer_demographics", "customers with demographic segments"),
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
    lines += arrival_lines(con, run_id)  # rows of erased persons delivered again
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


def marts_lines(con: duckdb.DuckDBPyConnection, ran: bool = True) -> list[str]:
    """The customer-360 marts in a few lines: revenue identified per channel, RFM segments, rules, recommendations.
    Not `ran` (no mart rebuilt this run): one line, the figures are those the run that built them printed."""
    if not table_exists(con, "gold.customer_purchases"):
        return ["", "Customer-360 marts: stage 'marts' not built yet"]
    if not ran:
        return ["", "Customer-360 marts: not rebuilt this run (the tables as the last run that built them left them)"]
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
    if table_exists(con, "gold.customer_churn"):
        from customer_pipeline.marts import churn

        bands = ", ".join(f"{b['band']} {b['customers']:,}" for b in churn.band_figures(con))
        as_of = con.execute("SELECT max(as_of_date) FROM gold.customer_churn").fetchall()[0][0]
        lines.append(f"  churn risk (as of {as_of}): {bands}")
    if table_exists(con, "gold.marketing_audience"):
        from customer_pipeline.marts import audience

        reasons: dict[str, list[str]] = {}
        for r in audience.reason_figures(con):
            reasons.setdefault(r["channel"], []).append(f"{r['reason']} {r['customers']:,}")
        for c in audience.channel_figures(con):
            lines.append(f"  audience {c['channel']:5s}: may contact {c['may_contact']:,}, may not {c['may_not']:,} "
                         f"({', '.join(reasons.get(c['channel'], [])) or 'none'})")
    return lines


# --- the run itself: steps and checks (from its event log) ---------------------------------------------------------


def step_lines(log) -> list[str]:
    """Steps of the run by outcome, and the slowest ones."""
    steps = list(log.steps.values())
    if not steps:
        return ["", "Steps: none recorded for this run"]
    by = {o: [s for s in steps if s.outcome == o] for o in ("ok", "failed", "skipped")}
    counts = ", ".join(f"{len(v)} {k}" for k, v in by.items() if v)
    slowest = sorted((s for s in steps if s.seconds is not None), key=lambda s: -s.seconds)[:3]
    line = f"Steps: {len(steps)} ({counts})"
    if slowest:
        line += "; slowest " + ", ".join(f"{s.key} {s.seconds:.1f} s" for s in slowest)
    lines = ["", line]
    lines += [f"  failed: {s.key}: {s.reason}" for s in by["failed"]]
    if by["skipped"]:
        lines.append(f"  skipped ({len(by['skipped'])}): " + ", ".join(s.key for s in by["skipped"]))
    return lines


def check_lines(log) -> list[str]:
    """How many asset checks ran, passed, warned (WARN) and failed (ERROR, blocking) in this run, naming those that
    did not pass."""
    checks = log.checks
    failed = [c for c in checks if c.failed]
    warned = [c for c in checks if c.warned]
    lines = ["", f"Asset checks (this run): {len(checks)} ran, {sum(c.passed for c in checks)} passed, "
                 f"{len(warned)} warned, {len(failed)} failed"]
    if failed:
        lines.append("  failed (ERROR, blocks what is downstream): " + ", ".join(c.label for c in failed))
    if warned:
        lines.append("  warned (WARN, blocks nothing): " + ", ".join(c.label for c in warned))
    return lines


# --- identity ----------------------------------------------------------------------------------------------------


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchall()[0][0]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


def identity_lines(
    con: duckdb.DuckDBPyConnection,
    *,
    since: dt.datetime | None,
    ran: bool,
    accept_weight: float,
    charts_dir: Path | None = None,
    truth_csv: Path | None = None,
) -> list[str]:
    """What identity resolution did: links, review queue, multi-record customers, id changes since `since` (naive
    UTC: the run's start), where the charts are and, with a ground-truth file and identity `ran`, pairwise
    precision and recall."""
    if not table_exists(con, "gold.customer_xref"):
        return ["", "Identity: stage 'identity' not built yet"]
    title = "Identity (this run)" if ran else "Identity (did not run this run: the tables as the last run left them)"
    lines = ["", title]
    queue = table_exists(con, "identity.review_queue")
    if table_exists(con, "identity.links"):
        # a strong pair that rests on the name alone or a shared household waits in the queue instead
        held = ("LEFT JOIN (SELECT DISTINCT record_id_l, record_id_r, true AS queued FROM identity.review_queue) q "
                "USING (record_id_l, record_id_r)") if queue else "LEFT JOIN (SELECT NULL AS queued) q ON false"
        det, scored, accepted = con.execute(
            f"""SELECT count(*) FILTER (WHERE link_type LIKE 'deterministic%'), count(*) FILTER (WHERE link_type = 'splink'),
                      count(*) FILTER (WHERE link_type = 'splink' AND match_weight >= ? AND q.queued IS NULL)
               FROM identity.links {held}""", [accept_weight]).fetchall()[0]
        lines.append(f"  links auto-accepted: {det:,} deterministic, {accepted:,} Splink (match weight >= "
                     f"{accept_weight:g}, of {scored:,} pairs scored)")
    if queue:
        cols = _columns(con, "identity.review_queue")
        open_only = "WHERE decision IS NULL OR trim(decision) = ''" if "decision" in cols else ""
        reason = "reason" if "reason" in cols else "'pairs'"
        by_reason = con.execute(f"SELECT {reason}, count(*) FROM identity.review_queue {open_only} "
                                "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
        waiting = sum(n for _, n in by_reason)
        detail = f" ({', '.join(f'{r} {n:,}' for r, n in by_reason)})" if by_reason else ""
        decided = _scalar(con, "SELECT count(*) FROM identity.review_decisions") if table_exists(
            con, "identity.review_decisions") else 0
        lines.append(f"  review queue: {waiting:,} pairs waiting for a decision{detail}; {decided:,} earlier decisions "
                     "honoured")
    records, customers, multi, largest = con.execute(
        """SELECT sum(n), count(*), count(*) FILTER (WHERE n > 1), max(n)
           FROM (SELECT customer_id, count(*) AS n FROM gold.customer_xref GROUP BY 1)""").fetchall()[0]
    lines.append(f"  customers: {customers or 0:,} from {records or 0:,} records; {multi or 0:,} with several records "
                 f"(largest {largest or 0})")
    if table_exists(con, "gold.customer_id_history") and since is not None:
        changes = dict(con.execute("SELECT reason, count(*) FROM gold.customer_id_history WHERE changed_at >= ? "
                                   "GROUP BY 1", [since]).fetchall())
        names = {"merge": "merges", "split": "splits", "removed": "ids removed"}
        parts = [f"{changes.pop(k, 0):,} {v}" for k, v in names.items()] + [f"{n:,} {k}" for k, n in changes.items()]
        lines.append(f"  customer id changes since the last run: {', '.join(parts)} (gold.customer_id_history)")
    lines.append(_charts_line(charts_dir))
    if ran and truth_csv is not None and truth_csv.is_file():
        # scored when identity ran (1.3 s at 1M records): otherwise as the run that resolved them printed it
        lines.append(_accuracy_line(con, truth_csv))
    return lines


def _charts_line(charts_dir: Path | None) -> str:
    files = sorted(p.name for p in charts_dir.glob("*.html")) if charts_dir is not None and charts_dir.is_dir() else []
    if not files:
        return f"  charts: none yet in {charts_dir} (materialise identity/model_charts)"
    return f"  charts: {charts_dir}/ ({', '.join(files)})"


def _accuracy_line(con: duckdb.DuckDBPyConnection, truth_csv: Path) -> str:
    """Pairwise precision and recall of gold.customer_xref against the sample's ground truth."""
    from customer_pipeline.identity.evaluation import pairwise_scores

    truth = pd.read_csv(truth_csv, dtype=str)
    if not {"source", "source_key", "person_id"} <= set(truth.columns):
        return f"  accuracy: {truth_csv.name} lacks source, source_key, person_id: not scored"
    frame = pd.DataFrame({"record_key": truth["source"] + "|" + truth["source_key"], "person": truth["person_id"]})
    con.register("_summary_truth", frame)
    try:
        s = pairwise_scores(con, "(SELECT record_id AS record_key, customer_id AS cluster FROM gold.customer_xref)",
                            "_summary_truth")
    finally:
        con.unregister("_summary_truth")
    return (f"  accuracy against {truth_csv}: pairwise precision {s['precision']:.4f}, recall {s['recall']:.4f}, "
            f"F1 {s['f1']:.4f} ({s['records']:,} records scored, {s['true_pairs']:,} true pairs, "
            f"{s['correct_pairs']:,} of {s['predicted_pairs']:,} predicted pairs correct)")
