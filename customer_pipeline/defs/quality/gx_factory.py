"""Turn an expectation suite into Dagster asset checks: one check per expectation.

Blocking expectations get `AssetCheckSpec(blocking=True)` and fail with severity ERROR;
Dagster then fails the check step and skips every asset downstream of the checked asset in
the same run. Warning expectations fail with severity WARN and block nothing.
"""

from collections.abc import Callable

import dagster as dg
import duckdb
import pandas as pd

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.privacy import mask_value
from customer_pipeline.quality import gx_runner, incremental
from customer_pipeline.quality.suites import Rule, Suite

Loader = Callable[[duckdb.DuckDBPyConnection], pd.DataFrame]


def check_spec(rule: Rule, asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        rule.name,
        asset=asset_key,
        description=rule.description,
        blocking=rule.blocking,
        metadata={"expectation": rule.expectation, "severity": "ERROR" if rule.blocking else "WARN"},
    )


def check_result(
    outcome: gx_runner.Outcome, rule: Rule, asset_key: dg.AssetKey, extra: dict | None = None
) -> dg.AssetCheckResult:
    """One expectation's outcome as a check result with its evidence (and `extra`) as metadata."""
    metadata: dict = {"expectation": rule.expectation, **(extra or {})}
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

    By default only the rows added or changed since the table's last validation go through GX; every
    check's figures are over the whole table (customer_pipeline/quality/incremental.py). A run tagged
    `FULL_REFRESH_TAG` validates every row. With `loader(con)` (a frame read from a read-only
    connection) that frame is validated whole instead, and nothing is remembered.
    """
    rules = {rule.name: rule for rule in suite.rules}

    @dg.multi_asset_check(
        name=name or f"gx_{suite.name}",
        specs=[check_spec(rule, asset_key) for rule in suite.rules],
        description=f"Great Expectations suite `{suite.name}` on `{suite.table}` (new and changed rows).",
        can_subset=True,
        compute_kind="great_expectations",
        pool=pool,
    )
    def _gx_checks(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource):
        selected = {key.name for key in context.selected_asset_check_keys if key.asset_key == asset_key}
        if loader is not None:
            with warehouse.connect(read_only=True) as con:
                df = loader(con)
            outcomes, extra = gx_runner.validate(df, suite), {"rows_validated": dg.MetadataValue.int(len(df))}
            summary = f"validated all {len(df):,} rows"
        else:
            with warehouse.connect() as con:
                done = incremental.validate_table(con, suite, full=full_refresh_asked(context))
            outcomes, summary = done.outcomes, done.summary()
            extra = {
                "validated": dg.MetadataValue.text(summary),
                "rows_validated": dg.MetadataValue.int(done.rows_validated),
                "rows_in_table": dg.MetadataValue.int(done.rows_total),
                "validated_only_new_rows": dg.MetadataValue.bool(not done.full),
            }
            if done.reason:
                extra["why_all_rows"] = dg.MetadataValue.text(done.reason)
        failed = [o.name for o in outcomes if not o.success and o.name in selected]
        context.log.info(f"{suite.name}: {summary}, {len(failed)} failed expectation(s) {failed}")
        for outcome in outcomes:
            if outcome.name in selected:
                yield check_result(outcome, rules[outcome.name], asset_key, extra)

    return _gx_checks


# A run with this tag set to "true" validates every row again (`customer-pipeline run --full`).
FULL_REFRESH_TAG = "customer_pipeline/full_refresh"


def full_refresh_asked(context) -> bool:
    return str(context.run.tags.get(FULL_REFRESH_TAG, "")).lower() == "true"
