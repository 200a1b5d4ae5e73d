"""The golden customer table and the households it mails to (docs/survivorship.md, docs/households.md)."""

import datetime as dt

import dagster as dg
import pandas as pd

from customer_pipeline.defs.automation.sensors import DOWNSTREAM_CONDITION
from customer_pipeline.defs.conventions import table_metadata
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.privacy import mask_frame
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.identity import golden_state
from customer_pipeline.identity import households as hh
from customer_pipeline.identity.households import MAX_MEMBERS, build_households_in
from customer_pipeline.identity.survivorship import GOLDEN_COLUMNS, build_golden
from customer_pipeline.warehouse import table_exists, transaction

# What households read of a golden row.
_PLACE_COLUMNS = ("customer_id", "street", "postcode", "city", "country", "first_seen_at", "last_seen_at")


class GoldenConfig(dg.Config):
    # build every golden row again (by default: the customers whose records changed since the last run)
    full_refresh: bool = False


GOLDEN_KEY = dg.AssetKey(["gold", "golden_customers"])
HOUSEHOLDS_KEY = dg.AssetKey(["gold", "households"])
HOUSEHOLD_HISTORY_KEY = dg.AssetKey(["gold", "household_id_history"])
PERSON_RECORDS_KEY = dg.AssetKey(["staging", "person_records"])

HOUSEHOLD_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("household_id", "text", description="stable opaque id (H + 16 hex), kept across runs"),
    dg.TableColumn("address", "text", description="street as most members write it"),
    dg.TableColumn("postcode", "text"),
    dg.TableColumn("city", "text"),
    dg.TableColumn("country", "text", description="ISO 3166-1 alpha-2"),
    dg.TableColumn("members", "bigint", description="golden customers with this household_id"),
    dg.TableColumn("landline", "text", description="the household's fixed-line number (E.164), if any"),
    dg.TableColumn("first_seen", "timestamp", description="earliest record of any member"),
    dg.TableColumn("last_seen", "timestamp", description="latest record of any member"),
])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


_GOLDEN_TABLE_COLUMNS = ["customer_id", "household_id", *GOLDEN_COLUMNS[1:]]


def _write(con, plan: golden_state.GoldenPlan, salt: str, rebuilt: pd.DataFrame, result: hh.Households,
           partial: bool) -> int:
    """Both tables written and the id changes appended in one transaction: household_id always resolves.
    A full run writes `rebuilt` as a new table; an incremental one updates the last table in place (rows of
    removed and rebuilt customers deleted, `rebuilt` inserted, household ids set where decided again), which
    readers see change at commit, like a swap. With `partial` households, `result` holds the customers of
    `_hh_affected` only (and `_hh_old_ids` the ids they held): everyone else keeps household and id."""
    con.register("_rebuilt", rebuilt[GOLDEN_COLUMNS])
    con.register("_household_ids", result.customers[["customer_id", "household_id"]])
    in_place = plan.mode == "incremental" and [r[0] for r in con.execute(
        "DESCRIBE gold.golden_customers").fetchall()] == _GOLDEN_TABLE_COLUMNS
    try:
        with transaction(con):
            if in_place:
                _update_golden(con, partial)
            else:
                _rewrite_golden(con, plan, partial)
            hh.save(con, result, partial)
            golden_state.save(con, plan, salt,
                              households_decided=str(len(result.customers)) if partial else "every customer")
            con.register("_history", result.history)
            con.execute("CREATE TABLE IF NOT EXISTS gold.household_id_history AS SELECT * FROM _history WHERE false")
            con.execute("INSERT INTO gold.household_id_history SELECT * FROM _history")
            con.unregister("_history")
    finally:
        for name in ("_rebuilt", "_household_ids"):
            con.unregister(name)
        con.execute("DROP TABLE IF EXISTS _golden_out")
    return con.execute("SELECT count(*) FROM gold.household_id_history").fetchall()[0][0]


def _typed_rebuilt(con) -> str:
    """The rebuilt rows with the table's types (a frame of no rows has none of its own)."""
    types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'gold' "
                             "AND table_name = 'golden_customers'").fetchall())
    return "SELECT " + ", ".join(f'CAST({c} AS {types[c]}) AS {c}' if c in types else c
                                 for c in GOLDEN_COLUMNS) + " FROM _rebuilt"


def _rewrite_golden(con, plan: golden_state.GoldenPlan, partial: bool) -> None:
    """The whole table written again (a full run, or a table of another column set)."""
    ids = "_household_ids"
    if partial:
        ids = """(SELECT customer_id, household_id FROM _household_ids UNION ALL
                  SELECT customer_id, household_id FROM gold.golden_customers ANTI JOIN _hh_affected USING (customer_id))"""
    columns = ", ".join("h.household_id" if c == "household_id" else f"g.{c}" for c in _GOLDEN_TABLE_COLUMNS)
    rows = "SELECT * FROM _rebuilt"
    if plan.mode == "incremental":
        rows = f"""SELECT {', '.join(GOLDEN_COLUMNS)} FROM gold.golden_customers
            SEMI JOIN _current USING (customer_id) ANTI JOIN _rebuilt USING (customer_id) UNION ALL {_typed_rebuilt(con)}"""
    con.execute(f"""CREATE OR REPLACE TABLE gold.golden_customers AS
        SELECT {columns} FROM ({rows}) AS g
        LEFT JOIN {ids} AS h USING (customer_id) ORDER BY g.customer_id""")


def _update_golden(con, partial: bool) -> None:
    """The rows of removed and rebuilt customers replaced, household ids set for the customers decided again
    (`_hh_affected` and the rebuilt ones when `partial`, else everyone; one not in `_household_ids` has none):
    the rows `_rewrite_golden` gives, without writing the other rows again."""
    con.execute("""CREATE OR REPLACE TEMP TABLE _golden_out AS
        SELECT customer_id FROM gold.golden_customers ANTI JOIN _current USING (customer_id)
        UNION SELECT customer_id FROM _rebuilt""")
    con.execute("DELETE FROM gold.golden_customers WHERE customer_id IN (SELECT customer_id FROM _golden_out)")
    columns = ", ".join("NULL::VARCHAR AS household_id" if c == "household_id" else c for c in _GOLDEN_TABLE_COLUMNS)
    con.execute(f"INSERT INTO gold.golden_customers SELECT {columns} FROM ({_typed_rebuilt(con)}) ORDER BY customer_id")
    decided = ("(SELECT customer_id FROM _hh_affected UNION SELECT customer_id FROM _rebuilt)" if partial
               else "(SELECT customer_id FROM gold.golden_customers)")
    con.execute(f"""UPDATE gold.golden_customers AS g SET household_id = d.household_id
        FROM (SELECT c.customer_id, i.household_id FROM {decided} AS c LEFT JOIN _household_ids AS i USING (customer_id)) AS d
        WHERE g.customer_id = d.customer_id AND g.household_id IS DISTINCT FROM d.household_id""")


# A full build reads the person records of this many xref rows at a time (about 0.6 GB of pandas at 1M records,
# against 3.5 GB for all 976k at once): survivorship is decided per customer, so the parts give the rows one
# build of everything gives.
FULL_PART_RECORDS = 250_000


def build_every_golden(con, now: dt.datetime, part_records: int | None = None) -> pd.DataFrame:
    """Every customer's golden row, built in parts of customers (by a hash of the id) of about `part_records`
    person records each, in customer_id order."""
    size = part_records or FULL_PART_RECORDS
    n = con.execute("SELECT count(*) FROM gold.customer_xref").fetchall()[0][0]
    parts = max(1, -(-n // size))
    built = []
    for i in range(parts):
        customers = con.execute(f"SELECT DISTINCT customer_id FROM gold.customer_xref "
                                f"WHERE hash(customer_id) % {parts} = {i}").df()
        records, xref = golden_state.records_of(con, customers)
        built.append(build_golden(records, xref, now))
        del records, xref
    if len(built) == 1:
        return built[0]
    return pd.concat(built, ignore_index=True).sort_values("customer_id", ignore_index=True)


def _households(con, plan: golden_state.GoldenPlan, now: dt.datetime) -> tuple[hh.Households, bool]:
    """This run's households over `_rebuilt_places` and `_current`; (result, partial)."""
    places = "SELECT * FROM _rebuilt_places"
    if plan.mode == "incremental":
        places = f"""SELECT {', '.join(_PLACE_COLUMNS)} FROM gold.golden_customers
            SEMI JOIN _current USING (customer_id) ANTI JOIN _rebuilt_places USING (customer_id)
            UNION ALL SELECT * FROM _rebuilt_places"""
    previous_customers = previous_households = None
    if table_exists(con, "gold.golden_customers") and "household_id" in {
            r[0] for r in con.execute("DESCRIBE gold.golden_customers").fetchall()}:
        previous_customers = "gold.golden_customers"
    if table_exists(con, "gold.households"):
        previous_households = "gold.households"
    if plan.mode == "incremental" and previous_customers and previous_households and hh.state_exists(con):
        changed = """SELECT customer_id FROM _rebuilt_places
            UNION SELECT customer_id FROM gold.golden_customers ANTI JOIN _current USING (customer_id)"""
        affected = hh.affected_customers(con, places, changed)
        if affected <= hh.INCREMENTAL_MAX_SHARE * plan.customers:
            con.execute("CREATE OR REPLACE TEMP TABLE _hh_old_ids AS SELECT DISTINCT household_id FROM "
                        "gold.golden_customers SEMI JOIN _hh_affected USING (customer_id) WHERE household_id IS NOT NULL")
            mine = "SEMI JOIN _hh_affected USING (customer_id)"
            result = build_households_in(
                con, f"SELECT * FROM ({places}) {mine}", now,
                records=f"(SELECT * FROM staging.person_records SEMI JOIN (SELECT record_id FROM gold.customer_xref {mine}) "
                        "USING (record_id))",
                xref=f"(SELECT * FROM gold.customer_xref {mine})",
                previous_customers=f"(SELECT customer_id, household_id FROM gold.golden_customers {mine})",
                previous_households=previous_households)
            return result, True
    return build_households_in(con, places, now, previous_customers=previous_customers,
                               previous_households=previous_households), False


def _golden_metadata(con) -> dict:
    """Figures of the table as written (read in SQL: an incremental run holds only the rows it rebuilt)."""
    preview = con.execute("SELECT * EXCLUDE (email, phone, street) FROM gold.golden_customers "
                          "ORDER BY customer_id LIMIT 5").df()
    rows, with_household, suppressed, dnc, consent, quality = con.execute("""
        SELECT count(*), count(household_id), count(*) FILTER (WHERE email_suppressed),
               count(*) FILTER (WHERE do_not_call), count(*) FILTER (WHERE marketing_consent),
               avg(data_quality_score)
        FROM gold.golden_customers""").fetchall()[0]
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "preview": dg.MetadataValue.md(mask_frame(preview).to_markdown(index=False)),
        "customers_with_household": dg.MetadataValue.int(int(with_household)),
        "email_suppressed_count": dg.MetadataValue.int(int(suppressed)),
        "do_not_call_count": dg.MetadataValue.int(int(dnc)),
        "marketing_consent_count": dg.MetadataValue.int(int(consent)),
        "mean_data_quality_score": dg.MetadataValue.float(round(float(quality or 0.0), 3)),
    }


def _households_metadata(con, customers: int) -> dict:
    """Figures of gold.households and of every customer's household basis as written (SQL: an incremental run
    decided only some customers)."""
    sizes = con.execute("SELECT members, count(*) FROM gold.households GROUP BY 1 ORDER BY 1").fetchall()
    histogram = "\n".join(["| members | households |", "| ---: | ---: |"] + [f"| {int(k)} | {int(v):,} |" for k, v in sizes])
    largest = con.execute("SELECT members, household_id FROM gold.households ORDER BY members DESC, household_id "
                          "LIMIT 1").fetchall()
    rows = con.execute("SELECT count(*) FROM gold.households").fetchall()[0][0]
    without = con.execute("SELECT count(*) FROM gold.golden_customers WHERE household_id IS NULL").fetchall()[0][0]
    basis = dict(con.execute(f"SELECT basis, count(*) FROM {hh.BASIS_TABLE} GROUP BY 1").fetchall())
    over_cap, at_over_cap = con.execute(f"SELECT count(*), coalesce(sum(customers), 0) FROM {hh.OVER_CAP_TABLE}"
                                        ).fetchall()[0]
    preview = con.execute("SELECT * EXCLUDE (address, landline) FROM gold.households ORDER BY household_id LIMIT 5").df()
    return {
        "dagster/row_count": dg.MetadataValue.int(int(rows)),
        "dagster/column_schema": HOUSEHOLD_SCHEMA,
        "members_histogram": dg.MetadataValue.md(histogram),
        "largest_household": dg.MetadataValue.int(int(largest[0][0]) if largest else 0),
        "largest_household_id": dg.MetadataValue.text(str(largest[0][1]) if largest else "none"),
        "customers_without_household": dg.MetadataValue.int(int(without)),
        "customers_without_household_share": dg.MetadataValue.float(round(without / customers, 4) if customers else 0.0),
        # address: placed by their street; phone: no street, joined through a shared number;
        # over_cap: their address holds more customers than max_members; no_address: no usable street
        "customers_by_basis": dg.MetadataValue.json({str(k): int(v) for k, v in basis.items()}),
        "addresses_over_cap": dg.MetadataValue.int(int(over_cap)),
        "customers_at_addresses_over_cap": dg.MetadataValue.int(int(at_over_cap)),
        "max_members": dg.MetadataValue.int(MAX_MEMBERS),
        "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
    }


# Rebuilt when the xref moves, never on new person records alone: until identity has run on them, the
# xref is older than the records and the golden table would mix new records with old identities.
FOLLOWS_XREF = DOWNSTREAM_CONDITION.ignore(dg.AssetSelection.assets(PERSON_RECORDS_KEY)).with_label(
    "eager after the xref, blocking checks passed")


@dg.multi_asset(
    specs=[
        dg.AssetSpec(GOLDEN_KEY, group_name="gold", kinds={"duckdb"},
                     deps=[dg.AssetKey(["gold", "customer_xref"]), PERSON_RECORDS_KEY],
                     automation_condition=FOLLOWS_XREF,
                     description="One row per resolved person with the best value of every attribute and its "
                                 "household_id (docs/survivorship.md)."),
        dg.AssetSpec(HOUSEHOLDS_KEY, group_name="gold", kinds={"duckdb"}, deps=[GOLDEN_KEY],
                     description="Customers living at one address, the unit database marketing mails "
                                 "(docs/households.md)."),
        dg.AssetSpec(HOUSEHOLD_HISTORY_KEY, group_name="gold", kinds={"duckdb"}, deps=[HOUSEHOLDS_KEY],
                     description="Merged, split and removed household ids, so BI can redirect old ids."),
    ],
    name="golden_customers", pool=WAREHOUSE_POOL,
)
def golden_customers(context: dg.AssetExecutionContext, config: GoldenConfig, warehouse: WarehouseResource):
    now = _now()
    salt = golden_state.salt()
    with warehouse.connect() as con:
        plan = golden_state.plan(con, salt, force_full=config.full_refresh)
        if plan.mode == "full":
            rebuilt = build_every_golden(con, now)
        else:
            # only the customers whose records changed are built again
            records_part, xref_part = golden_state.records_of(con, plan.rebuild)
            rebuilt = build_golden(records_part, xref_part, now)
        # households: every customer in a full run; in an incremental one the customers tied (by place, number or
        # previous household) to those rebuilt or removed, the rest keeping theirs (docs/households.md)
        con.register("_rebuilt_places", rebuilt[list(_PLACE_COLUMNS)])
        con.execute(f"CREATE OR REPLACE TEMP VIEW _current AS SELECT customer_id FROM {golden_state.CURRENT}")
        try:
            result, partial = _households(con, plan, now)
            history_total = _write(con, plan, salt, rebuilt, result, partial)
        finally:
            con.unregister("_rebuilt_places")
            con.execute("DROP VIEW IF EXISTS _current")
            for name in ("_hh_affected", "_hh_affected_places", "_hh_old_ids", "_hh_ties_new", golden_state.CURRENT):
                con.execute(f"DROP TABLE IF EXISTS {name}")
        tables = {t: table_metadata(con, t) for t in ("gold.golden_customers", "gold.household_id_history")}
        golden_metadata = _golden_metadata(con)
        households_metadata = _households_metadata(con, plan.customers)
    customers = plan.customers
    changes = result.history.groupby("reason").size().to_dict() if len(result.history) else {}
    how = (f"full ({plan.reason})" if plan.mode == "full"
           else f"incremental: {len(rebuilt)} rebuilt, {plan.removed} removed, {plan.kept} kept")
    context.log.info(f"{customers} golden customers; households decided for {len(result.customers)} ({how}); "
                     f"household id changes this run {changes}")
    yield dg.MaterializeResult(asset_key=GOLDEN_KEY, metadata={
        **golden_metadata, **tables["gold.golden_customers"],
        "build": dg.MetadataValue.text(how),
        "customers_rebuilt_this_run": dg.MetadataValue.int(len(rebuilt)),
        "customers_removed_this_run": dg.MetadataValue.int(plan.removed),
    })
    households_metadata["decided_this_run"] = dg.MetadataValue.text(
        f"{len(result.customers)} customers tied to the changed ones" if partial else "every customer")
    yield dg.MaterializeResult(asset_key=HOUSEHOLDS_KEY, metadata=households_metadata)
    yield dg.MaterializeResult(asset_key=HOUSEHOLD_HISTORY_KEY, metadata={
        "dagster/row_count": dg.MetadataValue.int(int(history_total)),
        **tables["gold.household_id_history"],
        "changes_this_run": dg.MetadataValue.json({str(k): int(v) for k, v in changes.items()}),
    })
