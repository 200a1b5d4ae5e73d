"""Locations and connection settings, read from the environment (an empty variable counts as unset)."""

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# gold.data_quality_report keeps this many days of runs in the warehouse (older runs are deleted by the next run)
DEFAULT_QUALITY_RETENTION_DAYS = 90
# PostgreSQL receives the quality report's trend of this many days: the newest run of each day
DEFAULT_QUALITY_TREND_DAYS = 30


def env(name: str, default: str | None = None) -> str | None:
    """Return an environment variable, treating an empty value as unset."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def positive_int(name: str, default: int) -> int:
    """A whole number of at least 1 from the environment; a clear error for anything else."""
    value = env(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{name}={value!r}: expected a whole number of at least 1")
    return number


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else (Path.cwd() / p)


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    shop_db_url: str
    warehouse_path: Path
    pg_url: str | None
    bi_role: str | None  # None: the per-database default (publish.postgres.default_bi_role)
    quality_retention_days: int = DEFAULT_QUALITY_RETENTION_DAYS
    quality_trend_days: int = DEFAULT_QUALITY_TREND_DAYS

    @classmethod
    def from_env(cls) -> "Settings":
        landing = env("CUSTOMER_PIPELINE_LANDING_DIR", "data/landing")
        return cls(
            landing_dir=_resolve(landing),
            shop_db_url=env("SHOP_DB_URL", f"sqlite:///{_resolve(landing) / 'shop.sqlite'}"),
            warehouse_path=_resolve(env("CUSTOMER_PIPELINE_WAREHOUSE", "data/warehouse.duckdb")),
            pg_url=env("CUSTOMER_PIPELINE_PG_URL"),
            bi_role=env("CUSTOMER_PIPELINE_BI_ROLE"),
            quality_retention_days=positive_int("CUSTOMER_PIPELINE_QUALITY_RETENTION_DAYS", DEFAULT_QUALITY_RETENTION_DAYS),
            quality_trend_days=positive_int("CUSTOMER_PIPELINE_QUALITY_TREND_DAYS", DEFAULT_QUALITY_TREND_DAYS),
        )


IDENTITY_ENGINES = ("duckdb", "spark")


def identity_engine() -> str:
    """Where the identity stage scores pairs: `duckdb` (in process, the default) or `spark` (Splink's Spark
    backend, for populations one machine cannot hold; docs/scale-out.md). `CUSTOMER_PIPELINE_ENGINE`."""
    value = (env("CUSTOMER_PIPELINE_ENGINE", "duckdb") or "duckdb").lower()
    if value not in IDENTITY_ENGINES:
        raise ValueError(f"CUSTOMER_PIPELINE_ENGINE={value!r}: expected one of {', '.join(IDENTITY_ENGINES)}")
    return value
