"""The SQL models of the marts (`sql/<table>.sql`, one per gold table), run set-based on the DuckDB warehouse.

A model file is one SELECT; `build` turns it into `gold.<table>`, swapped in within a transaction, and
`build_by_difference` brings a large one up to date with the same SELECT by deleting and inserting only the rows
that differ (the same table as `build`'s, without writing it whole). The files ship beside the package: the
repository's `sql/` and `data/reference/` (source checkout, editable install), else the copies a wheel installs
under `<prefix>/share/customer_pipeline/`.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from customer_pipeline.marts.settings import SHOP_RETURN_STATUSES, SHOP_VOID_STATUSES, MartSettings
from customer_pipeline.settings import PROJECT_ROOT
from customer_pipeline.warehouse import table_exists, transaction

PURCHASES, RFM, BASKET = "customer_purchases", "customer_rfm", "market_basket"
RECOMMENDATIONS = "customer_recommendations"
MODELS = (PURCHASES, RFM, BASKET, RECOMMENDATIONS)
FX_RATES_FILE = "data/reference/fx_rates.csv"
_SHARED = Path(sys.prefix) / "share" / "customer_pipeline"
# the order a table's rows are stored in, where it matters: purchases in time order (DuckDB's min/max zone maps
# then skip most row groups for a date range); not by purchase_line_id too, a sort of every line on a string
# that took half the build at 1M records
STORAGE_ORDER = {PURCHASES: "purchased_at"}
# the key of each mart `build_by_difference` keeps up to date: one row per value
DIFFERENCE_KEY = {PURCHASES: "purchase_line_id"}


def shipped_file(relative: str) -> Path:
    """A data file of the project: the repository's copy, else the installed one."""
    for base in (PROJECT_ROOT, _SHARED):
        if (base / relative).is_file():
            return base / relative
    raise FileNotFoundError(f"{relative} is neither in {PROJECT_ROOT} nor in {_SHARED}")


def sql_path(model: str) -> Path:
    return shipped_file(f"sql/{model}.sql")


def model_sql(model: str) -> str:
    return sql_path(model).read_text(encoding="utf-8").strip().rstrip(";")


def _ordered(model: str, select: str) -> str:
    order = STORAGE_ORDER.get(model)
    return f"SELECT * FROM (\n{select}\n) ORDER BY {order}" if order else select


def build(con: duckdb.DuckDBPyConnection, model: str, params: dict | None = None) -> int:
    """Replace gold.<model> with the result of its SQL file in one transaction; returns its row count."""
    with transaction(con):
        con.execute(f"CREATE OR REPLACE TABLE gold.{model} AS\n{_ordered(model, model_sql(model))}", params or {})
    return int(con.execute(f"SELECT count(*) FROM gold.{model}").fetchall()[0][0])


@dataclass
class Applied:
    """How `build_by_difference` brought a mart up to date."""
    rows: int
    mode: str  # "whole": written whole, as `build`; "difference": only the rows that differ
    reason: str = ""  # why it was written whole
    removed: int = 0  # rows deleted (gone, or an old version of a changed row)
    added: int = 0  # rows inserted (new, or the new version of a changed row)

    def describe(self) -> str:
        if self.mode == "whole":
            return f"written whole ({self.reason}): {self.rows:,} rows"
        return f"by difference: {self.removed:,} rows removed, {self.added:,} added, {self.rows:,} in all"


def build_by_difference(con: duckdb.DuckDBPyConnection, model: str, params: dict | None = None, *,
                        whole: bool = False) -> Applied:
    """gold.<model> equal to what `build` would write, changed by difference where it exists.

    The SELECT runs whole, each of its rows hashed (all columns), in a full join with the key and hash of each
    row of the table: only the rows on one side (new or changed, gone or changed) come out of it and are
    deleted and inserted, in one transaction; the rest is neither kept in memory nor written again (at 1M
    customers a new day's receipts change a few thousand of 5.8 million purchase lines, whose rewrite took most
    of the build). A row is told by its key and hash, so rows that share a key are still told apart; only
    identical rows repeated keep their number (a key is one row in the marts built so: a repeated line would
    also fail their revenue check). Written whole instead: the first time, on `whole` (`run --full`), and when
    the columns or their types changed (older code)."""
    table, key = f"gold.{model}", DIFFERENCE_KEY[model]
    reason = "asked for" if whole else "" if table_exists(con, table) else "first build"
    if reason:
        return Applied(build(con, model, params), "whole", reason)
    select = model_sql(model)
    columns = con.execute(f"DESCRIBE SELECT * FROM (\n{select}\n) LIMIT 0", params or {}).fetchall()
    if [c[:2] for c in columns] != [c[:2] for c in con.execute(f"DESCRIBE {table}").fetchall()]:
        return Applied(build(con, model, params), "whole", "its columns changed")
    names = ", ".join(f'"{c[0]}"' for c in columns)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _mart_diff AS
        SELECT n.*, o.k AS _old_key, o.h AS _old_hash
        FROM (SELECT *, hash({names}) AS _row_hash FROM (\n{select}\n)) AS n
        FULL JOIN (SELECT "{key}" AS k, hash({names}) AS h FROM {table}) AS o
            ON o.k = n."{key}" AND o.h = n._row_hash
        WHERE n._row_hash IS NULL OR o.h IS NULL""", params or {})
    try:
        with transaction(con):
            removed = con.execute(f"""DELETE FROM {table} AS t USING _mart_diff AS d
                WHERE d._old_key = t."{key}" AND d._old_hash = hash({', '.join(f't."{c[0]}"' for c in columns)})
                """).fetchall()[0][0]
            arrived = f"SELECT {names} FROM _mart_diff WHERE _row_hash IS NOT NULL"
            added = con.execute(f"INSERT INTO {table} {_ordered(model, arrived)}").fetchall()[0][0]
        rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        return Applied(int(rows), "difference", removed=int(removed), added=int(added))
    finally:
        con.execute("DROP TABLE IF EXISTS _mart_diff")


def fx_rates_path(settings: MartSettings) -> Path:
    return settings.fx_rates_path or shipped_file(FX_RATES_FILE)


def load_fx_rates(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """The rate table (currency, valid_from, eur_per_unit) as the temporary table fx_rates; returns its rows.
    A missing column, an unreadable value, a rate not above zero or a currency given twice for one date fails."""
    con.execute(
        """CREATE OR REPLACE TEMP TABLE fx_rates AS
        SELECT upper(trim(currency)) AS currency, CAST(valid_from AS DATE) AS valid_from,
            CAST(eur_per_unit AS DECIMAL(18, 8)) AS eur_per_unit
        FROM read_csv($path, header = true, all_varchar = true)""",
        {"path": str(path)},
    )
    bad = con.execute(
        """SELECT count(*) FILTER (WHERE currency IS NULL OR valid_from IS NULL OR NOT eur_per_unit > 0),
            count(*) - count(DISTINCT (currency, valid_from)) FROM fx_rates"""
    ).fetchall()[0]
    if bad[0] or bad[1]:
        raise ValueError(f"{path}: {bad[0]} rows without currency, date or a rate above 0, "
                         f"{bad[1]} currencies given twice for one date")
    return int(con.execute("SELECT count(*) FROM fx_rates").fetchall()[0][0])


def update_customer_purchases(con: duckdb.DuckDBPyConnection, settings: MartSettings, whole: bool = False) -> Applied:
    """gold.customer_purchases brought up to date by difference (written whole the first time or on `whole`)."""
    load_fx_rates(con, fx_rates_path(settings))
    return build_by_difference(con, PURCHASES, {"void_statuses": list(SHOP_VOID_STATUSES),
                                                "return_statuses": list(SHOP_RETURN_STATUSES)}, whole=whole)


def build_customer_purchases(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> int:
    """gold.customer_purchases written whole; returns its rows."""
    return update_customer_purchases(con, settings, whole=True).rows


def build_customer_rfm(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> int:
    return build(con, RFM, {"window_days": settings.rfm_window_days, "as_of": settings.rfm_as_of})


def build_market_basket(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> int:
    return build(con, BASKET, {"min_support_count": settings.min_support_count,
                               "min_confidence": settings.min_confidence, "min_lift": settings.min_lift})


def build_customer_recommendations(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> int:
    return build(con, RECOMMENDATIONS, {"per_customer": settings.recommendations_per_customer})
