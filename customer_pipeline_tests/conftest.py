"""Shared fixtures: a throwaway PostgreSQL database per test, and a throwaway BI role."""

import pytest

from customer_pipeline_tests import pg


def pytest_configure(config):
    # Declared in pyproject.toml too; registering here keeps `--strict-markers` happy from any rootdir.
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL server on 127.0.0.1:5432")


@pytest.fixture
def pg_url():
    """URL of a fresh database `cp_test_<random>` (fails under CI=true, skips elsewhere, without a server)."""
    pg.require_pg()
    with pg.temp_database() as url:
        yield url


@pytest.fixture
def bi_role(pg_url):
    """A unique BI role name; the role (if a test created it) and its grants are removed afterwards."""
    with pg.temp_role_name(database_urls=(pg_url,)) as name:
        yield name
