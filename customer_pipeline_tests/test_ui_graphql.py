"""The UI, verified through its GraphQL API: a real `dagster-webserver` over the project's workspace."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from customer_pipeline.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 90

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
    internalFreshnessPolicy { __typename ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } }
    automationCondition { label }
  }
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on PythonError { message }
          ... on RepositoryLocation {
            repositories {
              name
              jobs { name }
              schedules { name cronSchedule executionTimezone scheduleState { status } }
              sensors { name sensorType sensorState { status } }
            }
          }
        }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_signals():
    # a background `dagster` process otherwise ignores SIGINT/SIGTERM (STACK-NOTES)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


# the code location only reads the URL's variable (the resource holds EnvVar): no connection is made
PUBLISHING_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/cp_ui_never_connected"


def _env(tmp_path: Path, pg_url: str) -> dict:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ, "DAGSTER_HOME": str(home),
        "CUSTOMER_PIPELINE_WAREHOUSE": str(tmp_path / "w.duckdb"),
        "CUSTOMER_PIPELINE_LANDING_DIR": str(tmp_path / "landing"),
        "CUSTOMER_PIPELINE_PG_URL": pg_url,
    }


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)      # the webserver's own group (start_new_session): nothing else
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextlib.contextmanager
def _webserver(tmp_path: Path, pg_url: str) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT, env=_env(tmp_path, pg_url), stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=_reset_signals, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert proc.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "webserver did not answer /server_info"
            time.sleep(0.5)
        yield base
    finally:
        _stop(proc)
        log.close()
    assert proc.poll() is not None


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """The UI of a deployment that does not publish (CUSTOMER_PIPELINE_PG_URL empty), like `make ui`."""
    with _webserver(tmp_path_factory.mktemp("ui"), "") as base:
        yield base


def _graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        body = json.loads(r.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def _ui(base: str) -> dict:
    data = _graphql(base, QUERY)
    [entry] = data["workspaceOrError"]["locationEntries"]
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    [repo] = location["repositories"]
    return {"assets": {"/".join(a["assetKey"]["path"]): a for a in data["assetNodes"]}, "repo": repo}


@pytest.fixture(scope="module")
def ui(webserver):
    return _ui(webserver)


def test_asset_graph_is_grouped_by_stage(ui):
    groups = {key: a["groupName"] for key, a in ui["assets"].items()}
    assert {groups[k] for k in groups if k.startswith("raw/")} == {"raw"}
    assert groups["staging/person_records"] == "staging"
    assert groups["gold/data_quality_report"] == "gold" and groups["gold/source_freshness"] == "gold"
    # publishing is off: no publish asset that would show "Materialized" while nothing reaches PostgreSQL
    assert "publish/postgres_gold" not in groups and "publish" not in groups.values()
    # identity: links, the review queue, the model (retrained on purpose) and its charts
    for key in ("identity/links", "identity/review_queue", "identity/splink_model", "identity/model_charts"):
        assert groups[key] == "identity", key
    assert {"raw", "staging", "identity", "gold"} <= set(groups.values())


def test_with_publishing_on_the_publish_asset_follows_every_gold_table(tmp_path):
    with _webserver(tmp_path, PUBLISHING_URL) as base:
        assets = _ui(base)["assets"]
    publish = assets["publish/postgres_gold"]
    assert publish["groupName"] == "publish"
    assert {"/".join(k["path"]) for k in publish["dependencyKeys"]} == {
        f"gold/{name}" for name in ("golden_customers", "customer_xref", "customer_id_history", "households",
                                    "household_id_history", "source_freshness", "data_quality_report",
                                    "customer_purchases", "customer_rfm", "market_basket",
                                    "customer_recommendations", "customer_churn", "marketing_audience",
                                    "customer_demographics")}


def test_asset_checks_and_freshness_policies_are_there(ui):
    assets = ui["assets"]
    loyalty = assets["raw/pos_loyalty_signups"]
    checks = {c["name"]: c["blocking"] for c in loyalty["assetChecksOrError"]["checks"]}
    assert checks["rows_accounted_for"] is True and len(checks) > 1
    assert any(c["blocking"] for c in assets["staging/person_records"]["assetChecksOrError"]["checks"])
    assert [c["name"] for c in assets["gold/source_freshness"]["assetChecksOrError"]["checks"]] == ["sources_within_sla"]
    # preference registers arrive when a register publishes a snapshot: no SLA, never "late"
    policies = {k: a["internalFreshnessPolicy"] for k, a in assets.items()
                if k.startswith("raw/") and k != "raw/suppression_entries"}
    assert assets["raw/suppression_entries"]["internalFreshnessPolicy"] is None
    assert all(p and p["__typename"] == "TimeWindowFreshnessPolicy" for p in policies.values()), policies
    assert policies["raw/app_events"] == {"__typename": "TimeWindowFreshnessPolicy",
                                          "failWindowSeconds": 3600, "warnWindowSeconds": 1800}
    assert assets["gold/source_freshness"]["automationCondition"]["label"] == "after_any_load_or_every_15_minutes"


def test_schedules_sensors_and_jobs_are_there_and_running(ui):
    repo = ui["repo"]
    schedules = {s["name"]: s for s in repo["schedules"]}
    assert set(schedules) == {"pos_schedule", "shop_schedule", "call_center_schedule", "app_schedule",
                              "suppression_schedule"}
    assert schedules["app_schedule"]["cronSchedule"] == "*/15 * * * *"
    assert {s["executionTimezone"] for s in schedules.values()} == {"UTC"}
    assert {s["scheduleState"]["status"] for s in schedules.values()} == {"RUNNING"}
    sensors = {s["name"]: s for s in repo["sensors"]}
    assert set(sensors) == {"pos_landing_sensor", "call_center_landing_sensor", "app_landing_sensor",
                            "suppression_landing_sensor", "downstream_automation_sensor", "run_failure_alert_sensor",
                            "run_recovery_alert_sensor", "blocking_check_alert_sensor", "freshness_alert_sensor",
                            "quarantine_alert_sensor"}
    assert sensors["downstream_automation_sensor"]["sensorType"] == "AUTOMATION"
    assert {s["sensorState"]["status"] for s in sensors.values()} == {"RUNNING"}
    assert {"pos_job", "shop_job", "call_center_job", "app_job", "materialize_all"} <= {j["name"] for j in repo["jobs"]}


def test_definitions_validate_exits_zero():
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=180, preexec_fn=_reset_signals,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
