"""Data quality per source over runs: the headline shares of gold.data_quality_report's history."""

import datetime as dt

import duckdb
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.lines import Line2D

from customer_pipeline.charts.png import data_uri, message, source_panels
from customer_pipeline.warehouse import table_exists

REPORT_TABLE = "gold.data_quality_report"
SOURCE_ORDER = ("pos", "shop", "call_center", "app")
RUNS = 30  # the newest runs drawn
# (metric, field) -> line label; shares of the report (validity: of the values given)
LINES = {
    ("validity", "email"): "valid email",
    ("validity", "phone"): "valid phone",
    ("contactable", None): "contactable",
    ("duplicate_rate", "email_corrected"): "duplicate email",
    ("quarantine_rate", None): "quarantined rows",
}
COLOURS = ("#1565c0", "#6a1b9a", "#2e7d32", "#ef8f00", "#c62828")


def trend(report: pd.DataFrame) -> str:
    """One panel per source, one line per headline share (in %), one point per run.
    Columns: measured_at, source, metric, field, value (the report's long format)."""
    present = set(report["source"]) if len(report) else set()
    sources = [s for s in SOURCE_ORDER if s in present] + sorted(present - set(SOURCE_ORDER) - {"all"})
    fig, axes = source_panels(sources, 2.5, 0.8)
    if not sources:
        message(axes[0], "no data-quality report yet")
        return data_uri(fig)
    runs = report["measured_at"].nunique()
    for ax, source in zip(axes, sources):
        part = report[report["source"] == source]
        for (metric, field), colour in zip(LINES, COLOURS):
            same_field = part["field"].isna() if field is None else part["field"] == field
            line = part[(part["metric"] == metric) & same_field].dropna(subset=["value"]).sort_values("measured_at")
            if len(line):
                ax.plot(line["measured_at"], line["value"] * 100, marker="o", ms=3, lw=1.2, color=colour)
        first, last = pd.Timestamp(part["measured_at"].min()), pd.Timestamp(part["measured_at"].max())
        pad = max((last - first) * 0.05, dt.timedelta(minutes=30))
        ax.set_xlim(first - pad, last + pad)
        locator = AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_ylim(-3, 103)
        ax.set_title(source, fontsize=9)
        ax.set_ylabel("%", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(sources):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=c, marker="o", ms=3, lw=1.2) for c in COLOURS[:len(LINES)]]
    fig.legend(handles, list(LINES.values()), loc="outside lower center", ncols=len(LINES), fontsize=8, frameon=False)
    fig.suptitle(f"Data quality per source, last {runs} run(s)", fontsize=10)
    return data_uri(fig)


def from_warehouse(con: duckdb.DuckDBPyConnection, runs: int = RUNS) -> str:
    """The chart over the newest `runs` runs of gold.data_quality_report."""
    if not table_exists(con, REPORT_TABLE):
        return trend(pd.DataFrame(columns=["measured_at", "source", "metric", "field", "value"]))
    report = con.execute(f"""
        WITH newest AS (SELECT run_id FROM {REPORT_TABLE} GROUP BY run_id ORDER BY max(measured_at) DESC LIMIT ?)
        SELECT measured_at, source, metric, field, value FROM {REPORT_TABLE}
        WHERE run_id IN (SELECT run_id FROM newest)
          AND metric IN ('validity', 'contactable', 'duplicate_rate', 'quarantine_rate')""", [runs]).df()
    return trend(report)
