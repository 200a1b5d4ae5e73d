"""Turn an expectation suite into Dagster asset checks: one check per expectation.

Blocking expectations get `AssetCheckSpec(blocking=True)` and fail with severity ERROR;
Dagster then fails the check step and skips every asset downstream of the checked asset in
the same run. Warning expectations fail with severity WARN and block nothing.
"""

from collections.abc import Callable, Sequence

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from customer_pipeline import warehouse as wh
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.privacy import mask_value
from customer_pipeline.quality import gx_runner
from customer_pipeline.quality.suites import Rule, Suite

Loader = Callable[[duckdb.DuckDBPyConnection], pd.DataFrame]


def table_loader(qualified: str, columns: Sequence[str] | None = None) -> Loader:
    """Read a table; a missing table reads as an empty frame (the column check fails).

    With `columns`, only those columns are read with their values; every other column of the
    table is there by name only (all null, as a categorical: ~1 byte per row), so a check of
    the column set sees the table's columns while the expectations read only what they need.
    """

    def load(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
        if not wh.table_exists(con, qualified):
            return pd.DataFrame()
        if columns is None:
            return read_frame(con, f"SELECT * FROM {qualified}")
        names = [row[0] for row in con.execute(f"DESCRIBE {qualified}").fetchall()]
        wanted = [c for c in names if c in set(columns)]
        frame = read_frame(con, f"SELECT {', '.join(_quote(c) for c in wanted)} FROM {qualified}") if wanted else None
        n = len(frame) if frame is not None else con.execute(f"SELECT count(*) FROM {qualified}").fetchall()[0][0]
        placeholder = pd.Categorical.from_codes(np.full(n, -1, dtype=np.int8), categories=pd.Index([], dtype=object))
        return pd.DataFrame({c: frame[c] if c in wanted else placeholder for c in names})

    return load


def read_frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """A query's result as pandas, with the dtypes `.df()` gives, text handed over through Arrow.

    `.df()` converts text cell by cell (about 10x slower than Arrow for millions of rows); Arrow
    gives the same dtype for text (pandas `str`), so only the other columns go through `.df()`.
    """
    table = con.sql(sql).arrow()
    if hasattr(table, "read_all"):  # a RecordBatchReader in some DuckDB versions
        table = table.read_all()
    text = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    if len(text) == table.num_columns:
        return table.to_pandas()
    frame = table.select(text).to_pandas() if text else pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    others = con.from_arrow(table.drop_columns(text)).df() if len(text) < table.num_columns else None
    return pd.DataFrame({n: (frame[n] if n in text else others[n]) for n in table.column_names})


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def check_spec(rule: Rule, asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        rule.name,
        asset=asset_key,
        description=rule.description,
        blocking=rule.blocking,
        metadata={"expectation": rule.expectation, "severity": "ERROR" if rule.blocking else "WARN"},
    )


def check_result(outcome: gx_runner.Outcome, rule: Rule, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """One expectation's outcome as a check result with its evidence as metadata."""
    metadata: dict = {"expectation": rule.expectation}
    if "mostly" in rule.kwargs:
        metadata["threshold"] = dg.MetadataValue.float(float(rule.kwargs["mostly"]))
    if outcome.element_count is not None:
        metadata["rows_checked"] = dg.MetadataValue.int(outcome.element_count)
    if outcome.unexpected_count is not None:
        metadata["unexpected_count"] = dg.MetadataValue.int(outcome.unexpected_count)
    if outcome.unexpected_percent is not None:
        metadata["unexpected_percent"] = dg.MetadataValue.float(round(outcome.unexpected_percent, 4))
    if outcome.observed_value is not None:
        metadata["observed_value"] = _metadata_value(outcome.observed_value)
    if outcome.examples:
        # masked: the event log keeps check results for good (customer_pipeline.privacy)
        column = str(rule.kwargs.get("column", ""))
        metadata["unexpected_examples"] = dg.MetadataValue.json([mask_value(column, v) for v in outcome.examples])
    if outcome.error:
        metadata["error"] = dg.MetadataValue.text(outcome.error)
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=rule.name,
        passed=outcome.success,
        severity=dg.AssetCheckSeverity.ERROR if rule.blocking else dg.AssetCheckSeverity.WARN,
        description=rule.description,
        metadata=metadata,
    )


def _metadata_value(value) -> dg.MetadataValue:
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, (list, dict)):
        return dg.MetadataValue.json(value)
    return dg.MetadataValue.text(str(value))


def build_gx_checks(
    suite: Suite,
    asset_key: dg.AssetKey,
    loader: Loader | None = None,
    *,
    name: str | None = None,
    pool: str | None = None,
) -> dg.AssetChecksDefinition:
    """A `multi_asset_check` validating the table behind `asset_key` against `suite`.

    `loader(con)` reads the frame to validate from a read-only warehouse connection
    (default: the whole `suite.table`). The connection is closed before GX runs.
    """
    load = loader or table_loader(suite.table, gx_runner.referenced_columns(suite))
    rules = {rule.name: rule for rule in suite.rules}

    @dg.multi_asset_check(
        name=name or f"gx_{suite.name}",
        specs=[check_spec(rule, asset_key) for rule in suite.rules],
        description=f"Great Expectations suite `{suite.name}` on `{suite.table}`.",
        can_subset=True,
        compute_kind="great_expectations",
        pool=pool,
    )
    def _gx_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        with warehouse.connect(read_only=True) as con:
            df = load(con)
        selected = {key.name for key in context.selected_asset_check_keys if key.asset_key == asset_key}
        outcomes = gx_runner.validate(df, suite)
        failed = [o.name for o in outcomes if not o.success and o.name in selected]
        context.log.info(f"{suite.name}: {len(df)} rows, {len(failed)} failed expectation(s) {failed}")
        for outcome in outcomes:
            if outcome.name in selected:
                yield check_result(outcome, rules[outcome.name], asset_key)

    return _gx_checks
