"""The data-quality report: one long metrics frame (source x metric x field) and its markdown.

`build_report` is plain computation on DataFrames; `load_inputs`, `write_report` and
`headline_figures` are the thin warehouse side (`gold.data_quality_report` keeps the runs of the
retention window, `CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS`, `gold.data_quality_report_latest` the newest).
`trend` is what PostgreSQL receives: the newest run and the newest run of each recent day.
"""

import datetime as dt

import duckdb
import pandas as pd

from customer_pipeline import warehouse as wh
from customer_pipeline.quality import thresholds

REPORT_TABLE = "gold.data_quality_report"
LATEST_TABLE = "gold.data_quality_report_latest"
COLUMNS = ("run_id", "measured_at", "source", "metric", "field", "value", "numerator", "denominator")
ALL = "all"  # the source value of totals over every source
SOURCE_ORDER = ("pos", "shop", "call_center", "app")

# Completeness: a field counts as complete when it holds a non-blank value.
COMPLETENESS_FIELDS = (
    "first_name", "last_name", "email", "phone_raw", "birth_date_raw", "gender",
    "street", "postcode", "city", "country",
)
# Validity: (field label, flag column, column that says a value was given).
VALIDITY = (("email", "email_valid", "email"), ("phone", "phone_valid", "phone_raw"),
            ("birth_date", "birth_date_valid", "birth_date_raw"))
DUPLICATE_FIELDS = ("email_corrected", "phone_e164")
# Guards at staging (docs/staging-contract.md): metric name -> flag column listing the fields per record.
GUARD_FLAGS = {
    "oversized": "oversized_fields",
    "formula_neutralised": "formula_fields",
    "future_dated": "future_dated_fields",
    "non_text_value": "non_text_fields",
}
PERSON_COLUMNS = tuple(dict.fromkeys((
    "source", *COMPLETENESS_FIELDS, *(c for v in VALIDITY for c in v[1:]), *DUPLICATE_FIELDS,
    "has_contact_channel", "email_suppressed", "email_unsubscribed", "opted_out", "do_not_call",
    "record_updated_at", *GUARD_FLAGS.values(),
)))

METRIC_HELP = {
    "records": "Person records per source.",
    "completeness": "Share of records with a non-blank value.",
    "validity": "Share of given values that are valid (email syntax, phone parses, birth date plausible).",
    "contactable": "Share of records with a valid email or a valid phone.",
    "duplicate_rate": "Share of records sharing the value with another record of the same source.",
    "quarantine_rate": "Rows rejected at load, as a share of rows rejected + rows in the raw layer "
                       "(a file rejected whole counts every record it held).",
    "rows_lost": "Rows rejected at load per reason (a file rejected whole counts every record it held).",
    "oversized": "Records with a value over its length limit (nulled), per field.",
    "formula_neutralised": "Records with a value starting like a spreadsheet formula (prefixed with ').",
    "future_dated": "Records with a business timestamp in the future (nulled), per field.",
    "non_text_value": "Records whose delivered value was not text, e.g. a JSON object as a name (nulled).",
    "email_suppressed": "Records whose email bounced or complained, as a share of records with an email.",
    "email_unsubscribed": "Records whose email unsubscribed, as a share of records with an email.",
    "opted_out": "Records of people who opted out of marketing.",
    "do_not_call": "Records of people who asked not to be called.",
    "stale": f"Records not updated for over {thresholds.STALE_AFTER_DAYS} days (of records with an update time).",
}


# --- computation ------------------------------------------------------------------------------


def _present(s: pd.Series) -> pd.Series:
    if pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
        return s.notna() & (s.astype(str).str.strip() != "")
    return s.notna()


def _flag(s: pd.Series) -> pd.Series:
    return pd.Series(s.astype("boolean").fillna(False).to_numpy(dtype=bool), index=s.index)


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)


def _row(source, metric, field, numerator, denominator) -> dict:
    """A count (no denominator: value = numerator) or a share (value = numerator / denominator)."""
    if denominator is None:
        value = float(numerator)
    else:
        value = numerator / denominator if denominator else None
    return {"source": source, "metric": metric, "field": field, "value": value,
            "numerator": int(numerator), "denominator": None if denominator is None else int(denominator)}


def _duplicates(values: pd.Series) -> tuple[int, int]:
    """(records sharing the value with another record, records with a value)."""
    given = values[_present(values)].astype(str).str.strip().str.lower()
    counts = given.value_counts()
    return int(counts[counts > 1].sum()), int(len(given))


def validity_counts(df: pd.DataFrame, label: str) -> tuple[int, int]:
    """(valid, given) for `email`, `phone` or `birth_date`: the one definition of "valid X" (share of the
    values given), used by the report and by every asset that shows the figure."""
    _, flag, given_col = next(v for v in VALIDITY if v[0] == label)
    given = _present(_column(df, given_col))
    return int((_flag(_column(df, flag)) & given).sum()), int(given.sum())


def _person_metrics(df: pd.DataFrame, source: str, now: pd.Timestamp) -> list[dict]:
    rows = [_row(source, "records", None, len(df), None)]
    n = len(df)
    for field in COMPLETENESS_FIELDS:
        rows.append(_row(source, "completeness", field, _present(_column(df, field)).sum(), n))
    for label, flag, given_col in VALIDITY:
        given = _present(_column(df, given_col))
        rows.append(_row(source, "validity", label, (_flag(_column(df, flag)) & given).sum(), given.sum()))
    rows.append(_row(source, "contactable", None, _flag(_column(df, "has_contact_channel")).sum(), n))
    if source == ALL:  # duplicates count within a source, never across sources
        for field in DUPLICATE_FIELDS:
            pairs = [_duplicates(_column(g, field)) for _, g in df.groupby("source", dropna=False)]
            rows.append(_row(source, "duplicate_rate", field, sum(p[0] for p in pairs), sum(p[1] for p in pairs)))
    else:
        for field in DUPLICATE_FIELDS:
            rows.append(_row(source, "duplicate_rate", field, *_duplicates(_column(df, field))))
    with_email = _present(_column(df, "email"))
    rows.append(_row(source, "email_suppressed", None, _flag(_column(df, "email_suppressed")).sum(), with_email.sum()))
    rows.append(_row(source, "email_unsubscribed", None, _flag(_column(df, "email_unsubscribed")).sum(), with_email.sum()))
    rows.append(_row(source, "opted_out", None, _flag(_column(df, "opted_out")).sum(), n))
    rows.append(_row(source, "do_not_call", None, _flag(_column(df, "do_not_call")).sum(), n))
    for metric, flag in GUARD_FLAGS.items():
        fields = _column(df, flag)
        listed = fields[_present(fields)].astype(str).str.split(",").explode()
        for field, count in listed.value_counts().sort_index().items():
            rows.append(_row(source, metric, field, int(count), None))
    updated = pd.to_datetime(_column(df, "record_updated_at"), errors="coerce", utc=True)
    cutoff = now - pd.Timedelta(days=thresholds.STALE_AFTER_DAYS)
    rows.append(_row(source, "stale", "record_updated_at", (updated < cutoff).sum(), updated.notna().sum()))
    return rows


def reason_kind(reason) -> str:
    """The reason without its particulars: `wrong column count: 14 instead of 13` -> `wrong column count`."""
    return "unknown" if reason is None or pd.isna(reason) else str(reason).split(":", 1)[0].strip()


def _quarantine_metrics(rejected: pd.DataFrame, raw_counts: pd.DataFrame, sources: list[str]) -> list[dict]:
    rejected = rejected.assign(rows=_column(rejected, "rows").fillna(1).astype("int64") if "rows" in rejected
                               else 1)
    quarantined = rejected.groupby("source")["rows"].sum() if len(rejected) else pd.Series(dtype=int)
    loaded = raw_counts.groupby("source")["rows"].sum() if len(raw_counts) else pd.Series(dtype=int)
    rows = []
    for source in sources:
        q, n = int(quarantined.get(source, 0)), int(loaded.get(source, 0))
        rows.append(_row(source, "quarantine_rate", None, q, q + n))
    q, n = int(quarantined.sum()), int(loaded.sum())
    rows.append(_row(ALL, "quarantine_rate", None, q, q + n))
    if len(rejected) and "reason" in rejected:
        kinds = rejected.assign(kind=rejected["reason"].map(reason_kind))
        for source in sources + [ALL]:
            part = kinds if source == ALL else kinds[kinds["source"] == source]
            for kind, lost in part.groupby("kind")["rows"].sum().sort_index().items():
                if lost:
                    rows.append(_row(source, "rows_lost", kind, int(lost), None))
    return rows


def _ordered_sources(*frames: pd.Series) -> list[str]:
    seen = {str(s) for f in frames for s in f.dropna().unique()}
    return [s for s in SOURCE_ORDER if s in seen] + sorted(seen - set(SOURCE_ORDER))


def build_report(
    person_records: pd.DataFrame,
    rejected: pd.DataFrame,
    raw_counts: pd.DataFrame,
    *,
    now: dt.datetime,
    run_id: str,
) -> tuple[pd.DataFrame, str]:
    """Metrics per source and in total, as a long frame (`COLUMNS`) and as markdown.

    `person_records`: `staging.person_records` (any subset of `PERSON_COLUMNS`);
    `rejected`: `quarantine.rejected_records` (needs `source`);
    `raw_counts`: rows in the raw layer as `source, rows` (one row per table and source).
    """
    now_utc = pd.Timestamp(now)
    now_utc = now_utc.tz_localize("UTC") if now_utc.tzinfo is None else now_utc.tz_convert("UTC")
    sources = _ordered_sources(
        _column(person_records, "source"), _column(rejected, "source"), _column(raw_counts, "source")
    )
    rows: list[dict] = []
    for source in sources:
        rows += _person_metrics(person_records[person_records["source"] == source], source, now_utc)
    rows += _person_metrics(person_records, ALL, now_utc)
    rows += _quarantine_metrics(rejected, raw_counts, sources)
    metrics = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("run_id", "measured_at")])
    metrics.insert(0, "measured_at", now_utc.tz_convert(None).to_pydatetime())
    metrics.insert(0, "run_id", run_id)
    metrics["value"] = metrics["value"].astype("float64")
    metrics["numerator"] = metrics["numerator"].astype("int64")
    metrics["denominator"] = metrics["denominator"].astype("Int64")
    return metrics, to_markdown(metrics)


# --- markdown ---------------------------------------------------------------------------------


def _cell(row) -> str:
    if pd.isna(row["denominator"]):
        return f"{int(row['numerator']):,}"
    if not row["denominator"]:
        return "–"
    return f"{row['value']:.1%} ({int(row['numerator']):,}/{int(row['denominator']):,})"


def _pivot(metrics: pd.DataFrame, names: tuple[str, ...]) -> str:
    part = metrics[metrics["metric"].isin(names)]
    sources = [s for s in dict.fromkeys(part["source"])]
    header = "| metric | field | " + " | ".join(sources) + " |"
    lines = [header, "|" + " --- |" * (len(sources) + 2)]
    for (metric, field), group in part.groupby(["metric", "field"], dropna=False, sort=False):
        cells = {r["source"]: _cell(r) for _, r in group.iterrows()}
        lines.append(
            f"| {metric} | {'' if pd.isna(field) else field} | "
            + " | ".join(cells.get(s, "") for s in sources) + " |"
        )
    return "\n".join(lines)


SECTIONS = (
    ("Records", ("records",)),
    ("Completeness", ("completeness",)),
    ("Validity and contactability", ("validity", "contactable")),
    ("Duplicates within each source", ("duplicate_rate",)),
    ("Quarantined rows", ("quarantine_rate", "rows_lost")),
    ("Values guarded at staging", tuple(GUARD_FLAGS)),
    ("Suppression and opt-out", ("email_suppressed", "email_unsubscribed", "opted_out", "do_not_call")),
    ("Stale records", ("stale",)),
)


def to_markdown(metrics: pd.DataFrame) -> str:
    if metrics.empty:
        return "# Data quality\n\nNo records."
    first = metrics.iloc[0]
    out = [f"# Data quality\n\nRun `{first['run_id']}`, measured {first['measured_at']:%Y-%m-%d %H:%M} UTC."]
    for title, names in SECTIONS:
        notes = " ".join(METRIC_HELP[n] for n in names)
        out.append(f"## {title}\n\n{notes}\n\n{_pivot(metrics, names)}")
    return "\n\n".join(out)


# --- warehouse side -----------------------------------------------------------------------------


def load_inputs(con: duckdb.DuckDBPyConnection, raw_tables: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(person records, quarantined rows, raw row counts) as `build_report` takes them."""
    if wh.table_exists(con, "staging.person_records"):
        have = set(wh.read_df(con, "SELECT * FROM staging.person_records LIMIT 0").columns)
        cols = ", ".join(f'"{c}"' for c in PERSON_COLUMNS if c in have)
        people = wh.read_df(con, f"SELECT {cols} FROM staging.person_records")
    else:
        people = pd.DataFrame({"source": pd.Series(dtype=object)})
    if wh.table_exists(con, "quarantine.rejected_records"):
        # a file rejected whole is one quarantine record standing for every record it held
        files = wh.table_exists(con, "meta.loaded_files")
        have = set(wh.read_df(con, "SELECT * FROM quarantine.rejected_records LIMIT 0").columns)
        files = files and {"reason", "record_ref", "location"} <= have
        rejected = wh.read_df(con, f"""
            SELECT q.source, {"q.reason" if "reason" in have else "NULL AS reason"}, {"coalesce(f.rows_read, 1)" if files else "1"} AS rows
            FROM quarantine.rejected_records q
            {"LEFT JOIN meta.loaded_files f ON q.record_ref = 'file' AND f.location = q.location AND f.file_error IS NOT NULL" if files else ""}""")
    else:
        rejected = pd.DataFrame({"source": pd.Series(dtype=object)})
    counts = [
        wh.read_df(con, f"SELECT _source AS source, count(*) AS rows FROM {t} GROUP BY 1")
        for t in raw_tables if wh.table_exists(con, t)
    ]
    raw_counts = pd.concat(counts, ignore_index=True) if counts else pd.DataFrame(
        {"source": pd.Series(dtype=object), "rows": pd.Series(dtype="int64")}
    )
    return people, rejected, raw_counts


def write_report(con: duckdb.DuckDBPyConnection, metrics: pd.DataFrame, retention_days: int | None = None) -> int:
    """Append this run's metrics to the history (replacing a retried run), delete the runs measured more than
    `retention_days` before the newest (None: keep all) and refresh `latest`; returns the runs deleted."""
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {REPORT_TABLE} (
            run_id VARCHAR, measured_at TIMESTAMP, source VARCHAR, metric VARCHAR, field VARCHAR,
            value DOUBLE, numerator BIGINT, denominator BIGINT)"""
    )
    con.register("_dq_metrics", metrics[list(COLUMNS)])
    try:
        with wh.transaction(con):
            for run_id in metrics["run_id"].unique():
                con.execute(f"DELETE FROM {REPORT_TABLE} WHERE run_id = ?", [str(run_id)])
            con.execute(f"INSERT INTO {REPORT_TABLE} SELECT {', '.join(COLUMNS)} FROM _dq_metrics")
            removed = 0
            if retention_days is not None:
                # a run is kept or deleted whole: judged by its own (first) measurement time
                old_runs = f"""SELECT run_id FROM {REPORT_TABLE} GROUP BY run_id HAVING min(measured_at) <
                    (SELECT max(measured_at) FROM {REPORT_TABLE}) - to_days(CAST(? AS INTEGER))"""
                removed = con.execute(f"SELECT count(*) FROM ({old_runs})", [retention_days]).fetchall()[0][0]
                con.execute(f"DELETE FROM {REPORT_TABLE} WHERE run_id IN ({old_runs})", [retention_days])
            con.execute(
                f"""CREATE OR REPLACE TABLE {LATEST_TABLE} AS SELECT * FROM {REPORT_TABLE}
                WHERE run_id = (SELECT run_id FROM {REPORT_TABLE} ORDER BY measured_at DESC LIMIT 1)"""
            )
    finally:
        con.unregister("_dq_metrics")
    return int(removed)


def trend(history: pd.DataFrame, days: int) -> pd.DataFrame:
    """The bounded trend of `history` (gold.data_quality_report rows): the newest run of each UTC day among the
    `days` days up to the newest measurement, so also the newest run; at most `days` runs whatever the cadence."""
    if history.empty:
        return history
    measured = pd.to_datetime(history["measured_at"])
    runs = measured.groupby(history["run_id"], sort=False).min().sort_values()
    newest = runs.max()
    recent = runs[runs.dt.normalize() > newest.normalize() - pd.Timedelta(days=days)]
    kept = recent.groupby(recent.dt.normalize()).tail(1).index
    return history[history["run_id"].isin(kept)].reset_index(drop=True)


def _pct(metrics: pd.DataFrame, metric: str, field: str | None = None, source: str = ALL) -> str:
    m = metrics[(metrics["metric"] == metric) & (metrics["source"] == source)]
    m = m[m["field"].isna()] if field is None else m[m["field"] == field]
    if m.empty or pd.isna(m.iloc[0]["value"]):
        return "n/a"
    return f"{m.iloc[0]['value']:.1%}"


def _count(metrics: pd.DataFrame, metric: str, source: str = ALL) -> int:
    m = metrics[(metrics["metric"] == metric) & (metrics["source"] == source)]
    return 0 if m.empty else int(m["numerator"].sum())


def headline_figures(con: duckdb.DuckDBPyConnection) -> list[str]:
    """A few lines on the newest data-quality report, for the CLI to print after a run."""
    if not wh.table_exists(con, LATEST_TABLE):
        return []
    m = wh.read_df(con, f"SELECT * FROM {LATEST_TABLE}")
    if m.empty:
        return []
    records = m[(m["metric"] == "records") & (m["source"] != ALL) & (m["numerator"] > 0)]
    counts = dict(zip(records["source"], records["numerator"]))
    order = [s for s in SOURCE_ORDER if s in counts] + sorted(set(counts) - set(SOURCE_ORDER))
    by_source = ", ".join(f"{s} {int(counts[s]):,}" for s in order)
    q = m[(m["metric"] == "quarantine_rate") & (m["source"] == ALL)]
    return [
        f"Person records: {_count(m, 'records'):,}" + (f" ({by_source})" if by_source else ""),
        f"Valid emails {_pct(m, 'validity', 'email')}, valid phones {_pct(m, 'validity', 'phone')}, "
        f"plausible birth dates {_pct(m, 'validity', 'birth_date')} (of values given)",
        f"Contactable (valid email or phone): {_pct(m, 'contactable')}",
        f"Duplicates within a source: email {_pct(m, 'duplicate_rate', 'email_corrected')}, "
        f"phone {_pct(m, 'duplicate_rate', 'phone_e164')}",
        f"Quarantined rows: {_count(m, 'quarantine_rate'):,} ({_pct(m, 'quarantine_rate')} of rows read)"
        if not q.empty else "Quarantined rows: 0",
        f"Suppressed emails: {_count(m, 'email_suppressed'):,}, unsubscribed {_count(m, 'email_unsubscribed'):,}, "
        f"opted out {_count(m, 'opted_out'):,}, do-not-call {_count(m, 'do_not_call'):,}",
        f"Stale records (no update for over {thresholds.STALE_AFTER_DAYS} days): "
        f"{_pct(m, 'stale', 'record_updated_at')}",
    ]


def history_line(con: duckdb.DuckDBPyConnection, retention_days: int, trend_days: int | None) -> list[str]:
    """One line on the report's history: runs kept, the retention, and (publishing on) the trend PostgreSQL gets."""
    if not wh.table_exists(con, REPORT_TABLE):
        return []
    runs, first = con.execute(f"SELECT count(DISTINCT run_id), min(measured_at) FROM {REPORT_TABLE}").fetchall()[0]
    line = (f"History: {runs:,} run(s) kept since {first:%Y-%m-%d} (runs older than {retention_days} days are deleted; "
            "CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS)")
    if trend_days is not None:
        line += f"; PostgreSQL gets the newest run of each of the last {trend_days} days"
    return [line] if runs else []
