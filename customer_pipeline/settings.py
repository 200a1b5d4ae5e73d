"""Locations and connection settings, read from the environment (an empty variable counts as unset)."""

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    """Return an environment variable, treating an empty value as unset."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


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

    @classmethod
    def from_env(cls) -> "Settings":
        landing = env("CUSTOMER_PIPELINE_LANDING_DIR", "data/landing")
        return cls(
            landing_dir=_resolve(landing),
            shop_db_url=env("SHOP_DB_URL", f"sqlite:///{_resolve(landing) / 'shop.sqlite'}"),
            warehouse_path=_resolve(env("CUSTOMER_PIPELINE_WAREHOUSE", "data/warehouse.duckdb")),
            pg_url=env("CUSTOMER_PIPELINE_PG_URL"),
            bi_role=env("CUSTOMER_PIPELINE_BI_ROLE"),
        )
