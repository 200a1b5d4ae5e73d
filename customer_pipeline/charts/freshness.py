"""Freshness per source over time: the lag since the last successful load against the source's SLA windows."""

import datetime as dt

import duckdb
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

from customer_pipeline.charts.png import BAD, GOOD, NEUTRAL, WARN, data_uri, message, source_panels
from customer_pipeline.warehouse import table_exists

HISTORY_TABLE = "gold.source_freshness_history"
DAYS = 14  # the window drawn: enough to see a pattern, small enough to read


def lag_over_time(history: pd.DataFrame) -> str:
    """One panel per source: load lag in hours at each measurement, coloured by status, with the warn (orange)
    and fail (red) windows. Columns: source, measured_at, lag_seconds, sla_warn_seconds, sla_fail_seconds."""
    sources = list(dict.fromkeys(history["source"])) if len(history) else []
    fig, axes = source_panels(sources, 2.4, 0.6)
    if not sources:
        message(axes[0], "no freshness measurement yet")
        return data_uri(fig)
    for ax, source in zip(axes, sources):
        h = history[history["source"] == source].sort_values("measured_at")
        lag = h["lag_seconds"].astype("float64") / 3600
        warn, fail = h["sla_warn_seconds"].iloc[-1] / 3600, h["sla_fail_seconds"].iloc[-1] / 3600
        if lag.isna().all():
            message(ax, "never loaded")
            ax.set_title(source, fontsize=9)
            continue
        colours = [BAD if v >= fail else WARN if v >= warn else GOOD for v in lag.fillna(0)]
        ax.plot(h["measured_at"], lag, color=NEUTRAL, lw=1)
        ax.scatter(h["measured_at"], lag, c=colours, s=14, zorder=3)
        ax.axhline(warn, color=WARN, ls="--", lw=1)
        ax.axhline(fail, color=BAD, ls="--", lw=1)
        ax.set_ylim(0, max(fail * 1.15, float(lag.max()) * 1.1))
        first, last = pd.Timestamp(h["measured_at"].min()), pd.Timestamp(h["measured_at"].max())
        pad = max((last - first) * 0.05, dt.timedelta(minutes=30))
        ax.set_xlim(first - pad, last + pad)
        locator = AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_title(f"{source}: {lag.iloc[-1]:.1f} h since the last load (warn {warn:g} h, fail {fail:g} h)",
                     fontsize=9)
        ax.set_ylabel("hours", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(sources):]:
        ax.set_visible(False)
    fig.suptitle(f"Source freshness, last {DAYS} days (green fresh, orange warning, red failed)", fontsize=10)
    return data_uri(fig)


def from_warehouse(con: duckdb.DuckDBPyConnection, days: int = DAYS) -> str:
    """The chart over the last `days` days of gold.source_freshness_history."""
    if not table_exists(con, HISTORY_TABLE):
        return lag_over_time(pd.DataFrame(columns=["source"]))
    history = con.execute(f"""
        SELECT source, measured_at, lag_seconds, epoch(sla_warn) AS sla_warn_seconds,
            epoch(sla_fail) AS sla_fail_seconds
        FROM {HISTORY_TABLE}
        WHERE measured_at >= (SELECT max(measured_at) FROM {HISTORY_TABLE}) - INTERVAL (?) DAY
        ORDER BY source, measured_at""", [days]).df()
    return lag_over_time(history)
