"""The deployment's Splink model: trained on this warehouse's own records, kept as versions in the warehouse.

`identity.splink_models(version, trained_at, records, fingerprint, model)` holds every model this
warehouse has trained; the newest is the one in use. The installed package carries no model: the
first run against a warehouse trains one on its `staging.person_records`, and later runs load it
(retraining is a deliberate job). A training fingerprint (records, sources, how full each matching
field was) lets a run say when the data no longer looks like what the model learnt from.
"""

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from customer_pipeline.warehouse import table_exists

logger = logging.getLogger(__name__)

TABLE = "identity.splink_models"
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    version INTEGER PRIMARY KEY, trained_at TIMESTAMP, records BIGINT, fingerprint VARCHAR, model VARCHAR
)"""

# The fields of `staging.person_records` the comparisons read, by the comparison that uses them.
FIELDS = {
    "first_name": "first_name_norm",
    "last_name": "last_name_norm",
    "birth_date": "birth_date",
    "email": "email_corrected",
    "phone": "phone_e164",
    "street": "street",
    "postcode": "postcode",
    "city": "city",
}
# Drift: a field counts as used when at least this share of records fills it; a field that crosses
# this line either way, or whose share moves by more than DRIFT_SHARE_CHANGE, changes what the
# model's weights mean (an empty field was never trained, a newly empty one is weighed for nothing).
FIELD_USED_SHARE = 0.01
DRIFT_SHARE_CHANGE = 0.25


@dataclass(frozen=True)
class ModelVersion:
    version: int
    trained_at: dt.datetime
    model: dict
    fingerprint: dict
    source: str  # "warehouse" or the path of a pinned model file


# What counts as an empty field: NULL, or nothing but whitespace.
_WHITESPACE = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"


# types whose values are never blank as text: not null is filled
_NEVER_BLANK = ("DATE", "TIMESTAMP", "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                "USMALLINT", "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE")


def _filled(col: str, type_: str) -> str:
    """SQL: the value is not null and, as text, not blank. A text whose first and last characters are not
    whitespace is not blank, which spares trimming nearly every value (0.5 -> 0.15 s at 1M); dates and numbers
    never are."""
    if type_.split("(")[0] in _NEVER_BLANK or type_.startswith(("TIMESTAMP", "DECIMAL")):
        return f"{col} IS NOT NULL"
    text = f"CAST({col} AS VARCHAR)"
    return (f"CASE WHEN {col} IS NULL THEN false "
            f"WHEN NOT contains({_WHITESPACE}, {text}[1]) AND NOT contains({_WHITESPACE}, {text}[-1]) THEN true "
            f"ELSE nullif(trim({text}, {_WHITESPACE}), '') IS NOT NULL END")


def fingerprint(records: pd.DataFrame | str, con: duckdb.DuckDBPyConnection | None = None) -> dict:
    """What the model is trained on: record count, records per source, share of records filling each field.

    `records` is a frame, or the name of a table `con` holds (counted in SQL: nothing is read out)."""
    own = None
    if isinstance(records, pd.DataFrame):
        own = con = duckdb.connect()
        con.register("_fp_records", records)
        relation = "_fp_records"
    else:
        relation = records
    try:
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {relation}").fetchall()}
        present = set(types)
        cols = {name: col for name, col in FIELDS.items() if col in present}
        counts = ", ".join([f"count(*) FILTER (WHERE {_filled(col, types[col])})" for col in cols.values()]
                           + ["count(*)"])
        row = con.execute(f"SELECT {counts} FROM {relation}").fetchall()[0]
        n = int(row[-1])
        filled = dict(zip(cols, row[:-1]))
        sources = (con.execute(f"SELECT CAST(source AS VARCHAR), count(*) FROM {relation} WHERE source IS NOT NULL "
                               "GROUP BY 1").fetchall() if "source" in present else [])
    finally:
        if own is not None:
            own.close()
    fill = {name: round(float(filled[name]) / n, 4) if name in filled and n else 0.0 for name in FIELDS}
    return {"records": n, "sources": {str(k): int(v) for k, v in sorted(sources)}, "fill": fill}


def used_fields(fp: dict) -> set[str]:
    return {name for name, share in fp.get("fill", {}).items() if share >= FIELD_USED_SHARE}


def drift(trained: dict, current: dict) -> list[str]:
    """Plain-language reasons the current records differ from the model's training records (empty: none)."""
    reasons = []
    before, now = trained.get("fill", {}), current.get("fill", {})
    for name in FIELDS:
        a, b = float(before.get(name, 0.0)), float(now.get(name, 0.0))
        if (a >= FIELD_USED_SHARE) != (b >= FIELD_USED_SHARE):
            state = "now filled" if b >= FIELD_USED_SHARE else "now empty"
            reasons.append(f"{name}: {state} ({a:.0%} of records at training, {b:.0%} now)")
        elif abs(a - b) > DRIFT_SHARE_CHANGE:
            reasons.append(f"{name}: filled in {b:.0%} of records, {a:.0%} at training")
    new_sources = sorted(set(current.get("sources", {})) - set(trained.get("sources", {})))
    if new_sources:
        reasons.append(f"sources not seen at training: {', '.join(new_sources)}")
    return reasons


def latest(con: duckdb.DuckDBPyConnection) -> ModelVersion | None:
    """The model in use: the newest version trained on this warehouse (None before the first training)."""
    if not table_exists(con, TABLE):
        return None
    rows = con.execute(f"SELECT version, trained_at, fingerprint, model FROM {TABLE} ORDER BY version DESC LIMIT 1").fetchall()
    if not rows:
        return None
    version, trained_at, fp, model = rows[0]
    return ModelVersion(int(version), trained_at, json.loads(model), json.loads(fp), "warehouse")


def save(con: duckdb.DuckDBPyConnection, model: dict, fp: dict, now: dt.datetime | None = None) -> ModelVersion:
    """Keep a newly trained model as the next version (older versions stay, for audit and rollback)."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute(DDL)
    version = con.execute(f"SELECT coalesce(max(version), 0) + 1 FROM {TABLE}").fetchall()[0][0]
    con.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?)",
                [version, now, fp.get("records", 0), json.dumps(fp), json.dumps(model)])
    return ModelVersion(int(version), now, model, fp, "warehouse")


def pinned(path: str | Path) -> ModelVersion:
    """A model file a deployment chose to pin (`CUSTOMER_PIPELINE_MODEL_PATH`) instead of its own training."""
    path = Path(path)
    model = json.loads(path.read_text(encoding="utf-8"))
    fp = model.get("customer_pipeline", {}).get("fingerprint", {})
    trained_at = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).replace(tzinfo=None)
    return ModelVersion(0, trained_at, model, fp, str(path))


def load_or_train(con: duckdb.DuckDBPyConnection, records: pd.DataFrame, *, pinned_path: str | Path | None = None,
                  retrain: bool = False) -> tuple[ModelVersion, bool]:
    """The model to score with, and whether it was trained just now.

    A pinned file wins; otherwise the warehouse's newest version; a warehouse without one (its first
    run) or a deliberate retrain trains on `records` and keeps the result as the next version.
    """
    if pinned_path is not None:
        return pinned(pinned_path), False
    current = latest(con)
    if current is not None and not retrain:
        return current, False
    from customer_pipeline.identity import linking

    model = linking.train(records)
    version = save(con, model, model["customer_pipeline"]["fingerprint"])
    logger.info("identity model version %d trained on %d records", version.version, len(records))
    return version, True
