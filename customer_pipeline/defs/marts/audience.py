"""Who may be contacted on which channel today (`gold.marketing_audience`), with a blocking check that no row
allows what an opt-out, a bounce, a do-not-call request or a register forbids; and the demographic columns BI
pivots on (`gold.customer_demographics`). Rules: docs/marts.md, "Marketing audience"."""

import datetime as dt
import time

import dagster as dg

from customer_pipeline.defs.automation.sensors import DOWNSTREAM_CONDITION
from customer_pipeline.defs.marts.assets import GROUP, RFM_KEY
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.marts import audience, models, report
from customer_pipeline.warehouse import table_exists

AUDIENCE_KEY = dg.AssetKey(["gold", audience.AUDIENCE])
DEMOGRAPHICS_KEY = dg.AssetKey(["gold", audience.DEMOGRAPHICS])
AUDIENCE_ALLOWED_ONLY_WHAT_IS_PERMITTED = "audience_allows_only_what_is_permitted"
GOLDEN = [dg.AssetKey(["gold", "golden_customers"]), dg.AssetKey(["gold", "households"])]
AUDIENCE_DEPS = [*GOLDEN, dg.AssetKey(["gold", "customer_xref"]), dg.AssetKey(["staging", "person_records"]),
                 dg.AssetKey(["staging", "suppression_entries"])]

AUDIENCE_COLUMNS = {
    "channel": "email, phone (calls and SMS) or post",
    "contact_value": "golden email, phone (E.164) or the household's postal address; NULL when none is valid",
    "phone_type": "phone rows: mobile, fixed_line or fixed_line_or_mobile (SMS needs a mobile)",
    "household_id": "post rows: the household mailed (gold.households)",
    "household_mailing": "post rows: this customer is the household's one addressee",
    "may_contact": "may be contacted on this channel today",
    "reason": "when not: the strongest reason (erased > opted out > on suppression register > do-not-call > "
              "email bounced or complained > no consent > no valid value > household already mailed)",
    "reasons": "every reason that applies, '; '-separated",
    "suppression_registers": "the registers (file name prefix) listing this contact value",
    "evaluated_on": "the day the permissions were evaluated",
}
DEMOGRAPHICS_COLUMNS = {
    "age_band": "under 18, 18-24, 25-34, 35-44, 45-54, 55-64, 65+ or unknown (age on evaluated_on)",
    "gender": "male, female, diverse or unknown",
    "first_seen_cohort": "YYYY-Qn of the customer's earliest record",
    "household_size_band": "1, 2, 3, 4+ or no household",
    "rfm_segment": "gold.customer_rfm segment; 'no purchase' without one",
}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _schema(con, table: str, described: dict) -> dg.TableSchema:
    return dg.TableSchema(columns=[
        dg.TableColumn(name, str(kind).lower(), description=described.get(name))
        for name, kind, *_ in con.execute(f"DESCRIBE gold.{table}").fetchall()])


def _audience_metadata(con, rows: int, seconds: float) -> dict:
    channels = audience.channel_figures(con)
    reasons = audience.reason_figures(con)
    registers = audience.register_figures(con)
    households = con.execute("SELECT count(DISTINCT household_id) FILTER (WHERE household_mailing), "
                             "count(*) FILTER (WHERE channel = 'post' AND reason = 'household already mailed') "
                             "FROM gold.marketing_audience").fetchall()[0]
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/column_schema": _schema(con, audience.AUDIENCE, AUDIENCE_COLUMNS),
        "build_seconds": dg.MetadataValue.float(round(seconds, 3)),
        "sql": dg.MetadataValue.path(str(models.sql_path(audience.AUDIENCE))),
        "channels": dg.MetadataValue.md(report.markdown(channels, {
            "channel": "channel", "may_contact": "may contact", "may_not": "may not"})),
        "reasons": dg.MetadataValue.md(report.markdown(reasons, {
            "channel": "channel", "reason": "reason (strongest)", "customers": "customers"})
            if reasons else "_none_"),
        "registers": dg.MetadataValue.md(report.markdown(registers, {
            "register": "register", "channel": "channel", "customers": "customers matched"})
            if registers else "_no register matches a customer_"),
        "households_mailed": dg.MetadataValue.int(int(households[0])),
        "members_not_mailed_household_already_mailed": dg.MetadataValue.int(int(households[1])),
    }
    # plotted over runs in the UI
    for c in channels:
        metadata[f"may_contact_{c['channel']}"] = dg.MetadataValue.int(int(c["may_contact"]))
        metadata[f"may_not_contact_{c['channel']}"] = dg.MetadataValue.int(int(c["may_not"]))
    return metadata


@dg.asset(key=AUDIENCE_KEY, group_name=GROUP, kinds={"duckdb"}, deps=AUDIENCE_DEPS, pool=WAREHOUSE_POOL,
          automation_condition=DOWNSTREAM_CONDITION,
          description="One row per golden customer and channel (email, phone/SMS, post): the contact value, whether "
                      "it may be used today and, when not, why; one mailing per household.")
def marketing_audience(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        if missing := audience.missing_inputs(con):
            raise dg.Failure(f"inputs missing (build them first): {', '.join(missing)}")
        started = time.perf_counter()
        rows = audience.build_marketing_audience(con, _today())
        return dg.MaterializeResult(metadata=_audience_metadata(con, rows, time.perf_counter() - started))


@dg.asset(key=DEMOGRAPHICS_KEY, group_name=GROUP, kinds={"duckdb"}, deps=[*GOLDEN, RFM_KEY], pool=WAREHOUSE_POOL,
          automation_condition=DOWNSTREAM_CONDITION,
          description="Per golden customer the segmentation columns BI pivots on: age band, gender, country, "
                      "first-seen cohort, household size, RFM segment.")
def customer_demographics(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        started = time.perf_counter()
        rows = audience.build_customer_demographics(con, _today())
        seconds = time.perf_counter() - started
        bands = con.execute("SELECT age_band, count(*) FROM gold.customer_demographics "
                            "GROUP BY 1 ORDER BY 1").fetchall()
        cohorts = con.execute("SELECT count(DISTINCT first_seen_cohort) "
                              "FROM gold.customer_demographics").fetchall()[0][0]
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(rows),
            "dagster/column_schema": _schema(con, audience.DEMOGRAPHICS, DEMOGRAPHICS_COLUMNS),
            "build_seconds": dg.MetadataValue.float(round(seconds, 3)),
            "sql": dg.MetadataValue.path(str(models.sql_path(audience.DEMOGRAPHICS))),
            "age_bands": dg.MetadataValue.md("| age band | customers |\n| --- | ---: |\n"
                                             + "\n".join(f"| {b} | {n:,} |" for b, n in bands)),
            "cohorts": dg.MetadataValue.int(int(cohorts)),
            "rfm_joined": dg.MetadataValue.bool(table_exists(con, "gold.customer_rfm")),
        })


def audience_check(con) -> dg.AssetCheckResult:
    """Recomputed from staging, the registers and the golden values (docs/marts.md): nothing forbidden is allowed,
    every customer is a golden customer with one row per channel, one mailing per household."""
    if absent := audience.missing_inputs(con, "gold.marketing_audience"):
        return dg.AssetCheckResult(asset_key=AUDIENCE_KEY, check_name=AUDIENCE_ALLOWED_ONLY_WHAT_IS_PERMITTED,
                                   passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   metadata={"missing_tables": dg.MetadataValue.text(", ".join(absent))})
    found = audience.violations(con)
    failing = {name: v for name, v in found.items() if v[0]}
    return dg.AssetCheckResult(
        asset_key=AUDIENCE_KEY, check_name=AUDIENCE_ALLOWED_ONLY_WHAT_IS_PERMITTED, passed=not failing,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            **{name: dg.MetadataValue.int(n) for name, (n, _) in found.items()},
            # customer ids and channels only: no contact value in the event log
            "examples": dg.MetadataValue.md("\n".join(f"- {name}: {', '.join(ex)}" for name, (_, ex) in failing.items())
                                            or "none"),
        },
    )


@dg.asset_check(asset=AUDIENCE_KEY, name=AUDIENCE_ALLOWED_ONLY_WHAT_IS_PERMITTED, blocking=True,
                description="No row allows a channel that an opt-out, a refused or missing consent, a bounce or "
                            "complaint, a do-not-call request or a preference register forbids (recomputed from "
                            "staging and the registers); every customer is in gold.golden_customers with one row per "
                            "channel; contact values are the golden ones; one mailing per household.")
def marketing_audience_allows_only_what_is_permitted(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return audience_check(con)
