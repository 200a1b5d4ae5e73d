"""Resources shared by every stage: the warehouse, the landing folder and the shop database."""

import contextlib
from collections.abc import Iterator

import dagster as dg
import duckdb

from customer_pipeline import warehouse
from customer_pipeline.settings import Settings


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (`CUSTOMER_PIPELINE_WAREHOUSE`)."""

    path: str

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.path, read_only=read_only) as con:
            yield con


class SourcesResource(dg.ConfigurableResource):
    """Where the sources deliver: landing folder for files, SQLAlchemy URL for the shop."""

    landing_dir: str
    shop_db_url: str


def resources_from_env() -> dict:
    s = Settings.from_env()
    return {
        "warehouse": WarehouseResource(path=str(s.warehouse_path)),
        "sources": SourcesResource(landing_dir=str(s.landing_dir), shop_db_url=s.shop_db_url),
    }


@dg.definitions
def resources() -> dg.Definitions:
    # DuckDB allows one writing process: a run's steps execute one after another in its process
    return dg.Definitions(resources=resources_from_env(), executor=dg.in_process_executor)
