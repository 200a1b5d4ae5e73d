"""Validate a pandas DataFrame against a suite with one ephemeral GX context per process.

GX is imported on first use (the import costs seconds). DuckDB tables are read into pandas
first: GX's SQL datasource fails on DuckDB (GX issues 10738, 11579).
"""

import functools
import importlib
import json
import math
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from customer_pipeline.quality import thresholds
from customer_pipeline.quality.suites import Rule, Suite


@dataclass(frozen=True)
class Outcome:
    """The result of one rule on one frame."""

    name: str
    success: bool
    blocking: bool
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    examples: list = field(default_factory=list)
    error: str | None = None


def read_frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """A query's result as pandas, with the dtypes `.df()` gives (`warehouse.read_df`)."""
    from customer_pipeline.warehouse import read_df

    return read_df(con, sql)


@functools.cache
def _import_gx():
    """Great Expectations, imported once under the pyspark guard (`compat.pyspark_import_guard`)."""
    from customer_pipeline.compat import pyspark_import_guard

    with _import_lock, pyspark_import_guard():
        import great_expectations
        import great_expectations.expectations  # noqa: F401
    return great_expectations


# Modules GX's import shares with the rest of a run (Dagster's storage and the shop source use SQLAlchemy, the
# alerts requests): imported by `warm_up` in the calling thread before GX's import starts in its own, so the two
# threads never import one of them at the same time. Two threads importing modules that import each other can
# wait on each other, and Python then hands one of them the module half initialised (a CI run failed with
# "partially initialized module 'sqlalchemy.orm.exc' has no attribute 'UnmappedClassError'"). About 0.3 s.
SHARED_MODULES = ("sqlalchemy.orm", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "requests",
                  "jinja2", "jsonschema", "marshmallow")
_import_lock = threading.Lock()  # one import at a time: the guard sets and clears a process-wide flag
_warming: threading.Thread | None = None


def warm_up() -> None:
    """Start importing GX in the background (once per process): a load that brought new rows calls it, so the
    2-3 s import overlaps the other loads instead of delaying the first GX check; a run with nothing new, whose
    checks need no GX, never pays for it. Runs are in process (`defs/resources.py`), so the checks of the same
    run find it imported; a failed import here is retried, and reported, where GX is used."""
    global _warming
    if _warming is None and "great_expectations.expectations" not in sys.modules:
        for name in SHARED_MODULES:  # in this thread first: see SHARED_MODULES
            importlib.import_module(name)

        def load() -> None:
            try:
                _import_gx()
            except BaseException:  # noqa: BLE001 - the import at the point of use raises it with its context
                pass

        _warming = threading.Thread(target=load, name="gx-import", daemon=True)
        _warming.start()


@functools.cache
def _batch_definition():
    """The one ephemeral context and whole-DataFrame batch definition of this process."""
    _import_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch (a hash over all cells, twice per validation: once for
    # `get_batch`, once inside `validate`) for batch markers we never read; at millions of rows
    # that costs more than the expectations. Frames of at least this many bytes are not hashed.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    asset = context.data_sources.add_pandas("frames").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def _present(column: str):
    _import_gx()
    from great_expectations.expectations.row_conditions import Column

    return Column(column).is_not_null() & (Column(column) != "")


def to_expectation(rule: Rule):
    """The GX expectation a rule stands for; its check name travels in `meta`."""
    _import_gx()
    import great_expectations.expectations as gxe

    kwargs = dict(rule.kwargs)
    if rule.where_present:
        kwargs["row_condition"] = _present(rule.where_present)
    return getattr(gxe, rule.expectation)(
        **kwargs,
        meta={"check_name": rule.name},
        severity="critical" if rule.blocking else "warning",
        description=rule.description,
    )


def build_gx_suite(suite: Suite):
    _import_gx()
    import great_expectations as gx

    gx_suite = gx.ExpectationSuite(name=suite.name)
    for rule in suite.rules:
        gx_suite.add_expectation(to_expectation(rule))
    return gx_suite


def referenced_columns(suite: Suite) -> list[str]:
    """The columns some rule of the suite reads values of (the column-set rule reads names only)."""
    seen: dict[str, None] = {}
    for rule in suite.rules:
        if "column" in rule.kwargs:
            seen[rule.kwargs["column"]] = None
        for column in rule.kwargs.get("column_list", ()):
            seen[column] = None
        if rule.where_present:
            seen[rule.where_present] = None
    return list(seen)


def validate(df: pd.DataFrame, suite: Suite) -> list[Outcome]:
    """Run every rule of the suite on the frame; one outcome per rule, in suite order."""
    return [outcome for outcome, _ in _run(df, suite, "SUMMARY")]


def validate_rows(df: pd.DataFrame, suite: Suite) -> list[tuple[Outcome, list[int]]]:
    """Like `validate`, with the positions (0-based, in frame order) of the rows each rule found unexpected."""
    return _run(df.reset_index(drop=True), suite, "COMPLETE")


def _run(df: pd.DataFrame, suite: Suite, result_format: str) -> list[tuple[Outcome, list[int]]]:
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(
        build_gx_suite(suite),
        result_format={"result_format": result_format, "partial_unexpected_count": thresholds.EXAMPLE_COUNT},
    )
    by_name = {r.expectation_config.meta["check_name"]: r for r in result.results}
    out = []
    for rule in suite.rules:
        r = by_name.get(rule.name)
        rows = (r.result or {}).get("unexpected_index_list") if r is not None else None
        out.append((_outcome(rule, r), [int(i) for i in rows or ()]))
    return out


def _outcome(rule: Rule, r) -> Outcome:
    if r is None:
        return Outcome(rule.name, False, rule.blocking, error="GX returned no result")
    error = _error_message(r.exception_info)
    res = r.result or {}
    return Outcome(
        name=rule.name,
        success=bool(r.success) and error is None,
        blocking=rule.blocking,
        observed_value=plain(res.get("observed_value")),
        unexpected_count=_int(res.get("unexpected_count")),
        unexpected_percent=_float(res.get("unexpected_percent")),
        element_count=_int(res.get("element_count")),
        examples=plain(_examples(res)),
        error=error,
    )


def _examples(res: dict) -> list:
    """A few distinct failing values, most frequent first."""
    counts = res.get("partial_unexpected_counts")
    if counts:
        return [_short(c["value"]) for c in counts][: thresholds.EXAMPLE_COUNT]
    unexpected = res.get("partial_unexpected_list") or []
    seen: list = []
    for value in unexpected:
        if value not in seen:
            seen.append(value)
    if not seen and isinstance(res.get("details"), dict):
        mismatched = res["details"].get("mismatched") or {}
        seen = [f"missing: {c}" for c in mismatched.get("missing") or []]
    return [_short(v) for v in seen[: thresholds.EXAMPLE_COUNT]]


def _short(value, limit: int = 200):
    """Long values (JSON traits, notes) cut so the check's metadata stays readable."""
    return value[:limit] + "…" if isinstance(value, str) and len(value) > limit else value


def _error_message(info) -> str | None:
    """GX reports errors either flat or keyed by metric id; return the first message."""
    if not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message") or "GX raised an exception"
    return None


def _int(value) -> int | None:
    return None if value is None else int(value)


def _float(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def plain(value):
    """Numpy scalars, NaN and timestamps as plain JSON-able Python values."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, int, float, bool)):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return json.loads(json.dumps(value, default=str))
