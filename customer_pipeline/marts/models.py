"""The SQL models of the marts (`sql/<table>.sql`, one per gold table), run set-based on the DuckDB warehouse.

A model file is one SELECT; `build` turns it into `gold.<table>`, swapped in within a transaction. The files
ship beside the package: the repository's `sql/` and `data/reference/` (source checkout, editable install),
else the copies a wheel installs under `<prefix>/share/customer_pipeline/`.
"""

import sys
from pathlib import Path

import duckdb

from customer_pipeline.marts.settings import SHOP_RETURN_STATUSES, SHOP_VOID_STATUSES, MartSettings
from customer_pipeline.settings import PROJECT_ROOT
from customer_pipeline.warehouse import transaction

PURCHASES, RFM, BASKET = "customer_purchases", "customer_rfm", "market_basket"
RECOMMENDATIONS = "customer_recommendations"
MODELS = (PURCHASES, RFM, BASKET, RECOMMENDATIONS)
FX_RATES_FILE = "data/reference/fx_rates.csv"
_SHARED = Path(sys.prefix) / "share" / "customer_pipeline"


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


def build(con: duckdb.DuckDBPyConnection, model: str, params: dict | None = None) -> int:
    """Replace gold.<model> with the result of its SQL file in one transaction; returns its row count."""
    with transaction(con):
        con.execute(f"CREATE OR REPLACE TABLE gold.{model} AS\n{model_sql(model)}", params or {})
    return int(con.execute(f"SELECT count(*) FROM gold.{model}").fetchall()[0][0])


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


def build_customer_purchases(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> int:
    load_fx_rates(con, fx_rates_path(settings))
    return build(con, PURCHASES, {"void_statuses": list(SHOP_VOID_STATUSES),
                                  "return_statuses": list(SHOP_RETURN_STATUSES)})


def build_customer_rfm(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> int:
    return build(con, RFM, {"window_days": settings.rfm_window_days, "as_of": settings.rfm_as_of})


def build_market_basket(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> int:
    return build(con, BASKET, {"min_support_count": settings.min_support_count,
                               "min_confidence": settings.min_confidence, "min_lift": settings.min_lift})


def build_customer_recommendations(con: duckdb.DuckDBPyConnection, settings: MartSettings) -> int:
    return build(con, RECOMMENDATIONS, {"per_customer": settings.recommendations_per_customer})
