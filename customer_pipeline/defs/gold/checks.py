"""Checks on the gold layer: what BI joins on must hold (blocking), what looks wrong is flagged (warning)."""

import dagster as dg
import duckdb

from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.identity.households import MAX_MEMBERS
from customer_pipeline.warehouse import table_exists

GOLDEN_KEY = dg.AssetKey(["gold", "golden_customers"])
XREF_KEY = dg.AssetKey(["gold", "customer_xref"])
HOUSEHOLDS_KEY = dg.AssetKey(["gold", "households"])

CUSTOMER_ID_UNIQUE = "customer_id_unique_not_null"
GOLDEN_MATCHES_XREF = "one_golden_row_per_xref_customer"
EVERY_RECORD_ONCE = "every_record_in_xref_once"
NO_OVERSIZED_CUSTOMER = "no_oversized_customer"
HOUSEHOLDS_CONSISTENT = "household_ids_consistent"

# A person has a few loyalty cards, an account, some guest orders and calls; in the sample 1-10 records,
# in a real base a frequent caller may reach a few dozen. A customer of more than 50 records is far more
# likely a chain of wrong links (a shared device, a store's phone typed for walk-ins, a placeholder email)
# than one person: a reviewer should look, but it does not stop the run (it may be real).
MAX_RECORDS_PER_CUSTOMER = 50
LARGEST_SHOWN = 10


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0])


def _missing(check_name: str, asset_key: dg.AssetKey, tables: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=check_name, passed=False, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"missing_tables": dg.MetadataValue.text(", ".join(tables))},
    )


def _absent(con: duckdb.DuckDBPyConnection, *tables: str) -> list[str]:
    return [t for t in tables if not table_exists(con, t)]


def customer_id_unique(con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """gold.golden_customers: every row has a customer_id and no id appears twice."""
    if absent := _absent(con, "gold.golden_customers"):
        return _missing(CUSTOMER_ID_UNIQUE, GOLDEN_KEY, absent)
    rows, nulls, distinct = con.execute(
        "SELECT count(*), count(*) - count(customer_id), count(DISTINCT customer_id) FROM gold.golden_customers"
    ).fetchall()[0]
    duplicated = _count(con, "SELECT count(*) FROM (SELECT customer_id FROM gold.golden_customers "
                             "WHERE customer_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1)")
    examples = [r[0] for r in con.execute(
        "SELECT customer_id FROM gold.golden_customers WHERE customer_id IS NOT NULL "
        "GROUP BY 1 HAVING count(*) > 1 ORDER BY count(*) DESC, 1 LIMIT 5").fetchall()]
    return dg.AssetCheckResult(
        asset_key=GOLDEN_KEY, check_name=CUSTOMER_ID_UNIQUE, passed=nulls == 0 and duplicated == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows": dg.MetadataValue.int(int(rows)),
            "distinct_customer_ids": dg.MetadataValue.int(int(distinct)),
            "null_customer_ids": dg.MetadataValue.int(int(nulls)),
            "duplicated_customer_ids": dg.MetadataValue.int(duplicated),
            "duplicated_examples": dg.MetadataValue.text(", ".join(examples) or "none"),
        },
    )


def golden_matches_xref(con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """Every customer of gold.customer_xref has a golden row and every golden row has records."""
    if absent := _absent(con, "gold.golden_customers", "gold.customer_xref"):
        return _missing(GOLDEN_MATCHES_XREF, GOLDEN_KEY, absent)
    without_row = _count(con, "SELECT count(DISTINCT customer_id) FROM gold.customer_xref WHERE customer_id "
                              "NOT IN (SELECT customer_id FROM gold.golden_customers WHERE customer_id IS NOT NULL)")
    without_records = _count(con, "SELECT count(*) FROM gold.golden_customers WHERE customer_id NOT IN "
                                  "(SELECT customer_id FROM gold.customer_xref WHERE customer_id IS NOT NULL)")
    return dg.AssetCheckResult(
        asset_key=GOLDEN_KEY, check_name=GOLDEN_MATCHES_XREF, passed=without_row == 0 and without_records == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "xref_customers_without_golden_row": dg.MetadataValue.int(without_row),
            "golden_rows_without_xref_records": dg.MetadataValue.int(without_records),
        },
    )


def every_record_once(con: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    """Every staging.person_records row is in gold.customer_xref exactly once, with a customer."""
    if absent := _absent(con, "staging.person_records", "gold.customer_xref"):
        return _missing(EVERY_RECORD_ONCE, XREF_KEY, absent)
    # one full join of the xref's keys (with their counts) and the staged ones: only the keys at fault are kept
    con.execute("""CREATE OR REPLACE TEMP TABLE _xref_once AS
        SELECT coalesce(x.source, r.source) AS source, x.n, x.with_id, r.source_key IS NOT NULL AS staged
        FROM (SELECT source, source_key, count(*) AS n, count(customer_id) AS with_id
              FROM gold.customer_xref GROUP BY ALL) AS x
        FULL JOIN (SELECT DISTINCT source, source_key FROM staging.person_records) AS r
            ON r.source = x.source AND r.source_key = x.source_key
        WHERE x.n IS NULL OR r.source_key IS NULL OR x.n > 1 OR x.with_id < x.n""")
    try:
        counts = con.execute("""SELECT (SELECT count(*) FROM staging.person_records),
            count(*) FILTER (WHERE n IS NULL), count(*) FILTER (WHERE n > 1), count(*) FILTER (WHERE with_id < n),
            count(*) FILTER (WHERE n IS NOT NULL AND NOT staged) FROM _xref_once""").fetchall()[0]
        missing_by_source = dict(con.execute(
            "SELECT source, count(*) FROM _xref_once WHERE n IS NULL GROUP BY 1 ORDER BY 1").fetchall())
    finally:
        con.execute("DROP TABLE IF EXISTS _xref_once")
    records, missing, repeated, without_id, unknown = (int(v) for v in counts)
    return dg.AssetCheckResult(
        asset_key=XREF_KEY, check_name=EVERY_RECORD_ONCE,
        passed=missing == 0 and repeated == 0 and without_id == 0 and unknown == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "person_records": dg.MetadataValue.int(records),
            "records_missing_from_xref": dg.MetadataValue.int(missing),
            "missing_by_source": dg.MetadataValue.json({str(k): int(v) for k, v in missing_by_source.items()}),
            "records_in_xref_more_than_once": dg.MetadataValue.int(repeated),
            "xref_rows_without_customer_id": dg.MetadataValue.int(without_id),
            "xref_rows_for_unknown_records": dg.MetadataValue.int(unknown),
        },
    )


def no_oversized_customer(con: duckdb.DuckDBPyConnection, limit: int = MAX_RECORDS_PER_CUSTOMER) -> dg.AssetCheckResult:
    """No customer holds more than `limit` records; names the largest by id and counts (no personal data)."""
    if absent := _absent(con, "gold.customer_xref"):
        return _missing(NO_OVERSIZED_CUSTOMER, XREF_KEY, absent)
    # one grouping pass over the xref; sources counted for the largest customers only
    con.execute("CREATE OR REPLACE TEMP TABLE _xref_sizes AS SELECT customer_id, count(*) AS n FROM gold.customer_xref GROUP BY 1")
    try:
        over = _count(con, f"SELECT count(*) FROM _xref_sizes WHERE n > {int(limit)}")
        largest = con.execute(f"""
            WITH top AS (SELECT customer_id, n FROM _xref_sizes ORDER BY n DESC, customer_id LIMIT {LARGEST_SHOWN}),
            per AS (SELECT customer_id, source, count(*) AS n FROM gold.customer_xref SEMI JOIN top USING (customer_id)
                    GROUP BY ALL)
            SELECT customer_id, sum(n)::BIGINT AS records, string_agg(source || ' ' || n, ', ' ORDER BY source)
            FROM per GROUP BY customer_id ORDER BY records DESC, customer_id""").fetchall()
    finally:
        con.execute("DROP TABLE IF EXISTS _xref_sizes")
    table = "\n".join(["| customer_id | records | by source |", "| --- | ---: | --- |"]
                      + [f"| {c} | {n} | {s} |" for c, n, s in largest])
    return dg.AssetCheckResult(
        asset_key=XREF_KEY, check_name=NO_OVERSIZED_CUSTOMER, passed=over == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "limit": dg.MetadataValue.int(int(limit)),
            "customers_over_limit": dg.MetadataValue.int(over),
            "largest_customer_records": dg.MetadataValue.int(int(largest[0][1]) if largest else 0),
            "largest_customers": dg.MetadataValue.md(table),
        },
    )


def households_consistent(con: duckdb.DuckDBPyConnection, max_members: int = MAX_MEMBERS) -> dg.AssetCheckResult:
    """gold.households and golden_customers.household_id agree: ids unique, members counted right, within the cap.

    A null household_id is not an error (a customer without a usable street has none); a household_id
    that points nowhere, or a household nobody belongs to, is.
    """
    if absent := _absent(con, "gold.households", "gold.golden_customers"):
        return _missing(HOUSEHOLDS_CONSISTENT, HOUSEHOLDS_KEY, absent)
    counts = con.execute(f"""
        WITH g AS (SELECT household_id, count(*) AS n FROM gold.golden_customers
                   WHERE household_id IS NOT NULL GROUP BY 1)
        SELECT
            (SELECT count(*) FROM gold.households),
            (SELECT count(*) - count(household_id) FROM gold.households),
            (SELECT count(*) FROM (SELECT household_id FROM gold.households GROUP BY 1 HAVING count(*) > 1)),
            (SELECT count(*) FROM g ANTI JOIN gold.households AS h USING (household_id)),
            (SELECT count(*) FROM gold.households AS h ANTI JOIN g USING (household_id)
             WHERE h.household_id IS NOT NULL),
            (SELECT count(*) FROM gold.households AS h JOIN g USING (household_id) WHERE h.members <> g.n),
            (SELECT count(*) FROM gold.households WHERE members > {int(max_members)}),
            (SELECT count(*) FROM gold.golden_customers WHERE household_id IS NULL)
    """).fetchall()[0]
    households, null_ids, duplicated, dangling, empty, miscounted, over_cap, without = (int(v) for v in counts)
    passed = not (null_ids or duplicated or dangling or empty or miscounted or over_cap)
    return dg.AssetCheckResult(
        asset_key=HOUSEHOLDS_KEY, check_name=HOUSEHOLDS_CONSISTENT, passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "households": dg.MetadataValue.int(households),
            "null_household_ids": dg.MetadataValue.int(null_ids),
            "duplicated_household_ids": dg.MetadataValue.int(duplicated),
            "customer_household_ids_not_in_households": dg.MetadataValue.int(dangling),
            "households_without_members": dg.MetadataValue.int(empty),
            "households_with_wrong_member_count": dg.MetadataValue.int(miscounted),
            "households_over_cap": dg.MetadataValue.int(over_cap),
            "max_members": dg.MetadataValue.int(int(max_members)),
            "customers_without_household": dg.MetadataValue.int(without),
        },
    )


@dg.asset_check(asset=GOLDEN_KEY, name=CUSTOMER_ID_UNIQUE, blocking=True,
                description="customer_id is never null and never repeated: BI joins on it.")
def golden_customer_id_unique(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return customer_id_unique(con)


@dg.asset_check(asset=GOLDEN_KEY, name=GOLDEN_MATCHES_XREF, blocking=True,
                description="Every customer of gold.customer_xref has exactly one golden row, and no golden row "
                            "lacks records.")
def golden_customers_match_xref(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return golden_matches_xref(con)


@dg.asset_check(asset=XREF_KEY, name=EVERY_RECORD_ONCE, blocking=True,
                description="Every staging.person_records row (source, source_key) is in gold.customer_xref "
                            "exactly once, with a customer_id, and the xref holds no other record.")
def xref_every_record_once(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return every_record_once(con)


@dg.asset_check(asset=XREF_KEY, name=NO_OVERSIZED_CUSTOMER,
                description=f"Warns when a customer holds more than {MAX_RECORDS_PER_CUSTOMER} records "
                            "(likely a chain of wrong links); lists the largest by id and counts.")
def xref_no_oversized_customer(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return no_oversized_customer(con)


@dg.asset_check(asset=HOUSEHOLDS_KEY, name=HOUSEHOLDS_CONSISTENT, blocking=True,
                description="Every household_id on gold.golden_customers is one row of gold.households, whose "
                            f"members count it; ids unique; no household over {MAX_MEMBERS} members.")
def households_ids_consistent(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        return households_consistent(con)
