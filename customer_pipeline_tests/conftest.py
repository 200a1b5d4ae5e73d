"""Shared fixtures: a throwaway PostgreSQL database per test, and a throwaway BI role."""

import datetime as dt

import pytest

from customer_pipeline import run_gate
from customer_pipeline_tests import pg

# the date the whole test session runs as of: a test whose runs straddle midnight UTC would otherwise see the
# run gate's `date` part change between two runs and start the later stages again (as it should in production)
SESSION_DAY = run_gate.utc_today()


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


@pytest.fixture(autouse=True)
def _run_gate_day(monkeypatch):
    """The run gate's today is the session's first day (see SESSION_DAY)."""
    monkeypatch.setattr(run_gate, "utc_today", lambda: SESSION_DAY)
