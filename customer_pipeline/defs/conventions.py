"""The Dagster conventions every asset follows, in one place (applied in `definitions.py`, used by the assets).

- Owners: every asset is owned by `team:data-engineering` (the pipeline's on-call) and by the team of its
  group (`GROUP_OWNERS`), shown on the asset page and filterable in the catalog.
- Automation: every asset the downstream automation sensor evaluates carries its condition on its own spec
  (the sensor's default made explicit), so the asset page shows it; raw assets have none, their schedules and
  landing sensors start them (also on their page).
- Code references: each asset links to the file and line that defines it; with `CUSTOMER_PIPELINE_GIT_URL`
  (and `CUSTOMER_PIPELINE_GIT_BRANCH`, default `main`) set, to that repository's page instead.
- Column schemas (`dagster/column_schema`): each table asset reports its columns and types as DuckDB's
  information_schema has them after the materialisation (`table_metadata`).
- Pictures: a chart from `customer_pipeline.charts` is a markdown image (`picture`) the UI shows inline.
- Order: assets nothing on the way to `gold/golden_customers` reads (the quality report, freshness, the
  preference registers' staging, the identity charts) carry `AFTER_GOLDEN` (op tag `dagster/priority` -1), so
  a run updates the golden table first and draws these once it is done.
"""

import warnings
from pathlib import Path

import dagster as dg
import duckdb

from customer_pipeline.defs.automation.sensors import DOWNSTREAM_CONDITION
from customer_pipeline.settings import env

AFTER_GOLDEN = {"dagster/priority": "-1"}

OWNER = "team:data-engineering"
GROUP_OWNERS = {
    "raw": "team:source-integrations",      # the feeds: landing files, the shop extract
    "staging": "team:data-quality",          # standardisation and the GX gates
    "identity": "team:identity-resolution",  # linking, the Splink model, the review queue
    "gold": "team:customer-data",            # golden customers, households, freshness, quality report
    "marts": "team:marketing-analytics",     # customer 360: purchases, RFM, churn, baskets, audiences
    "publish": "team:bi-platform",           # PostgreSQL for BI
}
RAW_GROUP = "raw"


def _owned(spec: dg.AssetSpec) -> list[str]:
    team = GROUP_OWNERS.get(spec.group_name or "default")
    return list(dict.fromkeys([*spec.owners, OWNER, *([team] if team else [])]))


def _automated(spec: dg.AssetSpec) -> dg.AutomationCondition | None:
    if spec.automation_condition is not None or spec.group_name == RAW_GROUP:
        return spec.automation_condition
    if spec.tags.get("automation") == "manual":  # what the sensor leaves out (sensors.MANUAL)
        return None
    return DOWNSTREAM_CONDITION


def _code_references(assets: list) -> list:
    referenced = dg.with_source_code_references(assets)
    git_url = env("CUSTOMER_PIPELINE_GIT_URL")
    if not git_url:  # no known remote: keep the local file references
        return list(referenced)
    anchor = Path(__file__).resolve().parents[1] / "definitions.py"
    return list(dg.link_code_references_to_git(
        referenced, git_url=git_url, git_branch=env("CUSTOMER_PIPELINE_GIT_BRANCH", "main"),
        file_path_mapping=dg.AnchorBasedFilePathMapping(
            local_file_anchor=anchor, file_anchor_path_in_repository="customer_pipeline/definitions.py"),
    ))


def with_conventions(defs: dg.Definitions) -> dg.Definitions:
    """Owners, automation conditions on the specs and code references on every asset of `defs`."""
    # code references and spec mapping are beta/preview in 1.13: chosen knowingly, their warnings silenced here
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        mapped = defs.map_resolved_asset_specs(
            func=lambda spec: spec.replace_attributes(owners=_owned(spec), automation_condition=_automated(spec)))
        referenced = _code_references(list(mapped.assets or []))
        metadata = {spec.key: spec.metadata for a in referenced
                    for spec in (a.specs if isinstance(a, dg.AssetsDefinition) else [a])}
        return mapped.map_resolved_asset_specs(
            func=lambda spec: spec.replace_attributes(metadata=metadata.get(spec.key, spec.metadata)))


def column_schema(con: duckdb.DuckDBPyConnection, table: str,
                  descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """The columns and types of `schema.table` as DuckDB's information_schema has them, in table order."""
    schema, name = table.split(".", 1)
    described = descriptions or {}
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, name]).fetchall()
    return dg.TableSchema(columns=[dg.TableColumn(c, str(t).lower(), description=described.get(c)) for c, t in rows])


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, descriptions: dict[str, str] | None = None) -> dict:
    """What every table asset adds to its materialisation: the table's name and its column schema (nothing when
    the table does not exist)."""
    schema = column_schema(con, table, descriptions)
    if not schema.columns:
        return {}
    return {"dagster/table_name": dg.MetadataValue.text(table),
            "dagster/column_schema": dg.MetadataValue.table_schema(schema)}


def picture(uri: str, caption: str = "") -> dg.MetadataValue:
    """A chart (PNG data URI from `customer_pipeline.charts`) as markdown the UI renders as an image."""
    return dg.MetadataValue.md(f"![{caption}]({uri})" + (f"\n\n{caption}" if caption else ""))
