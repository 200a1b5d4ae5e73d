"""Alerts: a failed run, a late source, a failed blocking check and a quarantine spike each reach a real webhook
and a real SMTP server (started here) once per incident, with "resolved" when it clears."""

import datetime as dt
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import duckdb
import pytest
from aiosmtpd.controller import Controller

from customer_pipeline import freshness
from customer_pipeline.alerts import delivery, incidents, messages, rules
from customer_pipeline.defs.alerts.check_sensor import blocking_check_alert_sensor
from customer_pipeline.defs.alerts import freshness_sensor
from customer_pipeline.defs.alerts.freshness_sensor import freshness_alert_sensor
from customer_pipeline.defs.alerts.quarantine_sensor import quarantine_alert_sensor
from customer_pipeline.defs.alerts.resources import AlertTargetsResource, alert_targets_from_env
from customer_pipeline.defs.alerts.run_sensors import run_failure_alert_sensor, run_recovery_alert_sensor
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.defs.sources.checks import pos_loyalty_rows_lost
from customer_pipeline.defs.sources.pos.assets import pos_loyalty_signups
from customer_pipeline.definitions import defs as load_defs
from customer_pipeline.ingest.files import load_app_events, load_csv_family
from customer_pipeline.ingest.formats import CALL_CENTER, POS_LOYALTY, POS_TRANSACTIONS
from customer_pipeline.ingest.shop import extract_shop
from customer_pipeline_tests.landing import csv_bytes, loyalty_row, make_landing, write

ALERT_SENSORS = ("run_failure_alert_sensor", "run_recovery_alert_sensor", "blocking_check_alert_sensor",
                 "freshness_alert_sensor", "quarantine_alert_sensor")


# --- the targets: a real HTTP server and a real SMTP server on 127.0.0.1 ---------------------------------------

class Webhook:
    def __init__(self, status: int = 200, delay: float = 0.0):
        self.posts: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                hook.posts.append({"content_type": self.headers["Content-Type"], "path": self.path, **json.loads(body)})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/T0KEN-secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def targets(webhook, mailbox):
    return AlertTargetsResource(webhook_url=webhook.url, smtp_host="127.0.0.1", smtp_port=mailbox.port,
                                smtp_from="pipeline@example.org", smtp_to="oncall@example.org, data@example.org",
                                timeout_seconds=5)


@pytest.fixture
def instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


# the sensors that read the Dagster instance only (the freshness sensor reads the warehouse)
EVENT_SENSORS = (run_failure_alert_sensor, run_recovery_alert_sensor, blocking_check_alert_sensor,
                 quarantine_alert_sensor)


class Ticker:
    """Evaluates sensors the way the daemon does (evaluate_tick), keeping each sensor's cursor between ticks."""

    def __init__(self, instance, resources, definitions=None):
        self.instance, self.resources, self.definitions, self.cursors = instance, resources, definitions, {}

    def __call__(self, *sensors):
        for sensor in sensors:
            context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(sensor.name),
                                              resources=self.resources, definitions=self.definitions)
            result = sensor.evaluate_tick(context)
            assert result.run_requests == [], sensor.name            # alert sensors never start runs
            # a run-status sensor reports an error in its function on the run, not by raising: none allowed
            assert [r.error for r in result.dagster_run_reactions or [] if r.error] == [], sensor.name
            self.cursors[sensor.name] = result.cursor


# --- (1) an injected failing run ---------------------------------------------------------------------------------

@dg.op(config_schema={"fail": bool})
def load_step(context):
    if context.op_config["fail"]:
        raise ValueError("could not parse row for jane.doe@example.com\n  row 12: Jane;Doe;+49 30 1234567")


@dg.job
def tiny_job():
    load_step()


def _run(instance, fail: bool):
    return tiny_job.execute_in_process(instance=instance, raise_on_error=False,
                                       run_config={"ops": {"load_step": {"config": {"fail": fail}}}})


def test_failed_run_alerts_once_until_the_job_succeeds_again(instance, targets, webhook, mailbox):
    tick = Ticker(instance, {"alert_targets": targets}, dg.Definitions(jobs=[tiny_job]))
    run_sensors = (run_failure_alert_sensor, run_recovery_alert_sensor)
    others = (blocking_check_alert_sensor, quarantine_alert_sensor)
    tick(*run_sensors, *others)                          # first tick: run-status sensors start from now
    failed = _run(instance, fail=True)
    assert not failed.success
    tick(*run_sensors, *others)
    tick(*run_sensors, *others)                          # a second tick sends nothing more
    assert len(webhook.posts) == 1 and len(mailbox.mails) == 1
    [post] = webhook.posts
    assert post["content_type"] == "application/json" and post["path"] == "/hooks/T0KEN-secret"
    assert (post["kind"], post["state"], post["key"]) == ("run_failure", "open", "run_failure:tiny_job:load_step")
    assert post["details"]["job"] == "tiny_job" and post["details"]["run_id"] == failed.run_id
    assert post["details"]["failed_step"] == "load_step"
    assert post["details"]["error"] == "ValueError: could not parse row for j***@example.com"
    assert "jane.doe" not in json.dumps(post) and "1234567" not in json.dumps(post) and "Jane" not in json.dumps(post)
    rcpt, mail = mailbox.mails[0]
    assert rcpt == ["oncall@example.org", "data@example.org"]
    assert mail["Subject"] == "[customer-pipeline] ALERT: tiny_job failed at load_step"
    assert failed.run_id in mail.get_content() and "jane.doe" not in mail.get_content()

    _run(instance, fail=True)                            # the same job fails again: the incident is still open
    tick(*run_sensors)
    assert len(webhook.posts) == 1 and len(mailbox.mails) == 1

    ok = _run(instance, fail=False)                      # it succeeds: resolved, once
    tick(*run_sensors)
    tick(*run_sensors)
    assert [(p["state"], p["details"]["run_id"]) for p in webhook.posts[1:]] == [("resolved", ok.run_id)]
    assert mailbox.mails[1][1]["Subject"] == "[customer-pipeline] RESOLVED: tiny_job: load_step succeeds again"

    failed_again = _run(instance, fail=True)             # a new failure after the recovery is a new incident
    tick(*run_sensors)
    assert [p["state"] for p in webhook.posts] == ["open", "resolved", "open"]
    assert webhook.posts[-1]["details"]["run_id"] == failed_again.run_id and len(mailbox.mails) == 3


# --- (2) a late source ----------------------------------------------------------------------------------------------

def _load_sources(wh, landing, pos_at: dt.datetime | None = None):
    """Real loads of the four sources into the warehouse; POS as if it had been loaded at `pos_at`."""
    with duckdb.connect(str(wh)) as con:
        for schema in ("raw", "quarantine", "meta"):
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for family in (POS_LOYALTY, POS_TRANSACTIONS):
            load_csv_family(con, landing, family, "run-pos", now=pos_at)
        load_csv_family(con, landing, CALL_CENTER, "run-cc")
        load_app_events(con, landing, "run-app")
        extract_shop(con, f"sqlite:///{landing / 'shop.sqlite'}", "run-shop")


def test_late_source_alerts_once_and_resolves_when_fresh_again(tmp_path, instance, targets, webhook, mailbox):
    landing, wh = make_landing(tmp_path / "landing"), tmp_path / "w.duckdb"
    warehouse = WarehouseResource(path=str(wh))
    tick = Ticker(instance, {"alert_targets": targets, "warehouse": warehouse})
    tick(freshness_alert_sensor)                         # no warehouse yet: nothing to measure, nothing sent
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _load_sources(wh, landing, pos_at=now - dt.timedelta(hours=31))   # POS fail window: 30 h
    tick(freshness_alert_sensor)
    tick(freshness_alert_sensor)
    assert len(webhook.posts) == 1 and len(mailbox.mails) == 1
    [post] = webhook.posts
    assert (post["key"], post["state"]) == ("freshness:pos", "open")
    assert post["details"]["status"] == "failed" and post["details"]["sla_fail"] == "30h00m"
    assert post["details"]["since_last_load"].startswith("31h")
    assert mailbox.mails[0][1]["Subject"] == "[customer-pipeline] ALERT: source pos is late: last load 31h00m ago"

    write(landing / "pos/loyalty_signups_S01_2026-10-02.csv", csv_bytes(POS_LOYALTY.columns, [loyalty_row("L102")]))
    with duckdb.connect(str(wh)) as con:                 # POS delivers again
        load_csv_family(con, landing, POS_LOYALTY, "run-pos-2")
    tick(freshness_alert_sensor)
    tick(freshness_alert_sensor)
    assert [(p["key"], p["state"]) for p in webhook.posts] == [("freshness:pos", "open"), ("freshness:pos", "resolved")]
    assert webhook.posts[1]["details"]["open_since"] and len(mailbox.mails) == 2


def test_freshness_tick_skips_while_a_run_writes_and_keeps_its_incidents(
        tmp_path, instance, targets, webhook, monkeypatch):
    landing, wh = make_landing(tmp_path / "landing"), tmp_path / "w.duckdb"
    _load_sources(wh, landing, pos_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=31))
    tick = Ticker(instance, {"alert_targets": targets, "warehouse": WarehouseResource(path=str(wh))})
    tick(freshness_alert_sensor)
    cursor = tick.cursors["freshness_alert_sensor"]
    monkeypatch.setattr(freshness_sensor, "LOCK_WAIT_SECONDS", 0.5)
    # another process holds the warehouse's write lock, as a run does
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(wh)!r}); "
                               "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        tick(freshness_alert_sensor)                     # no measurement: the open incident is kept, nothing sent
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert tick.cursors["freshness_alert_sensor"] == cursor and len(webhook.posts) == 1


# --- (3) a failed blocking check --------------------------------------------------------------------------------

def test_failed_blocking_check_alerts_once_and_resolves_when_it_passes(tmp_path, instance, targets, webhook, mailbox):
    landing, wh = tmp_path / "landing", tmp_path / "w.duckdb"
    good = csv_bytes(POS_LOYALTY.columns, [loyalty_row(), loyalty_row("L101", "Bernd", "Meier", "b@x.de")])
    write(landing / "pos/loyalty_signups_S01_2026-10-01.csv", good)
    # a delivery with a renamed column is rejected whole: the blocking check rows_lost_within_threshold fails
    broken = landing / "pos/loyalty_signups_S02_2026-10-01.csv"
    write(broken, csv_bytes(["card_number", *POS_LOYALTY.columns[1:]], [loyalty_row("L200"), loyalty_row("L201")]))
    resources = {"warehouse": WarehouseResource(path=str(wh)),
                 "sources": SourcesResource(landing_dir=str(landing), shop_db_url="sqlite://")}
    graph = dg.Definitions(assets=[pos_loyalty_signups], asset_checks=[pos_loyalty_rows_lost], resources=resources)
    tick = Ticker(instance, {"alert_targets": targets}, graph)
    sensors = EVENT_SENSORS
    tick(*sensors)

    run = dg.materialize([pos_loyalty_signups, pos_loyalty_rows_lost], instance=instance, resources=resources,
                         raise_on_error=False)
    assert not run.success                               # the blocking check fails the run ...
    tick(*sensors)
    tick(*sensors)                                       # ... and that is one alert, the check's, not two
    assert len(webhook.posts) == 1 and len(mailbox.mails) == 1
    [post] = webhook.posts
    assert (post["kind"], post["state"]) == ("blocking_check", "open")
    assert post["key"] == "blocking_check:raw/pos_loyalty_signups:rows_lost_within_threshold"
    assert post["details"]["run_id"] == run.run_id
    assert mailbox.mails[0][1]["Subject"] == (
        "[customer-pipeline] ALERT: blocking check rows_lost_within_threshold failed on raw/pos_loyalty_signups")

    write(broken, csv_bytes(POS_LOYALTY.columns, [loyalty_row("L200"), loyalty_row("L201")]))   # corrected file
    fixed = dg.materialize([pos_loyalty_signups, pos_loyalty_rows_lost], instance=instance, resources=resources)
    tick(*sensors)
    tick(*sensors)
    assert [(p["kind"], p["state"]) for p in webhook.posts] == [
        ("blocking_check", "open"), ("blocking_check", "resolved")]
    assert webhook.posts[1]["details"]["run_id"] == fixed.run_id and len(mailbox.mails) == 2


# --- a quarantine spike -----------------------------------------------------------------------------------------

def test_quarantine_spike_alerts_once_and_resolves_after_a_clean_load(tmp_path, instance, targets, webhook, mailbox):
    landing, wh = tmp_path / "landing", tmp_path / "w.duckdb"
    rows = [loyalty_row(f"L{i}") for i in range(100)]
    bad = [["L9", "S01"]] * 25                           # 25 short rows of 125: quarantined row by row
    write(landing / "pos/loyalty_signups_S01_2026-10-01.csv", csv_bytes(POS_LOYALTY.columns, rows[:50] + bad))
    resources = {"warehouse": WarehouseResource(path=str(wh)),
                 "sources": SourcesResource(landing_dir=str(landing), shop_db_url="sqlite://")}
    tick = Ticker(instance, {"alert_targets": targets})
    dg.materialize([pos_loyalty_signups], instance=instance, resources=resources)
    tick(quarantine_alert_sensor)
    tick(quarantine_alert_sensor)
    assert [(p["key"], p["state"]) for p in webhook.posts] == [("quarantine_spike:pos", "open")]
    details = webhook.posts[0]["details"]
    assert (details["rows_read"], details["rows_quarantined"], details["max_share"]) == (75, 25, 0.02)
    assert len(mailbox.mails) == 1

    write(landing / "pos/loyalty_signups_S01_2026-10-02.csv", csv_bytes(POS_LOYALTY.columns, rows[50:]))
    dg.materialize([pos_loyalty_signups], instance=instance, resources=resources)   # a clean delivery
    tick(quarantine_alert_sensor)
    tick(quarantine_alert_sensor)
    assert [p["state"] for p in webhook.posts] == ["open", "resolved"] and len(mailbox.mails) == 2


def test_quarantine_rule_needs_both_share_and_rows():
    obs = rules.quarantine_observations([rules.SourceLoad("app", "r1", 20, 3),      # 15 % but 3 rows: no spike
                                         rules.SourceLoad("pos", "r2", 5000, 60),   # 1.2 %: no spike
                                         rules.SourceLoad("shop", "r3", 1000, 21),  # 2.1 % and 21 rows: spike
                                         rules.SourceLoad("call_center", "r4", 0, 0)])  # read nothing: no evidence
    assert [(o.key, o.failing) for o in obs] == [
        ("quarantine_spike:app", False), ("quarantine_spike:pos", False), ("quarantine_spike:shop", True)]


# --- incidents and delivery as plain functions --------------------------------------------------------------------

def test_incident_opens_once_and_closes_once():
    late = messages.source_late("app", "failed", 4000, 1800, 3600, None)
    fresh = messages.source_fresh("app", 60)
    sent, open_ = incidents.reconcile({}, [incidents.Observation(late.key, True, late)])
    assert sent == [late] and set(open_) == {"freshness:app"}
    since = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
    state = incidents.load_cursor(incidents.dump_cursor(incidents.CursorState(open_, since)))
    assert state.watching_since == since
    sent, open_ = incidents.reconcile(state.open, [incidents.Observation(late.key, True, late)])
    assert sent == [] and set(open_) == {"freshness:app"}
    sent, open_ = incidents.reconcile(open_, [])                                     # no evidence: stays open
    assert sent == [] and set(open_) == {"freshness:app"}
    sent, open_ = incidents.reconcile(open_, [incidents.Observation(fresh.key, False, fresh)])
    assert [a.state for a in sent] == ["resolved"] and open_ == {} and sent[0].details["open_since"]
    assert incidents.load_cursor("not json").open == {} and incidents.load_cursor(None).open == {}


def test_a_source_never_loaded_is_late_only_after_a_fail_window_of_watching():
    now = dt.datetime(2026, 12, 1, 12, 0)
    sla = freshness.Sla(warn=dt.timedelta(minutes=30), fail=dt.timedelta(hours=1))
    never = freshness.SourceFreshness("app", None, None, sla, now)
    def watched(minutes):
        return (now - dt.timedelta(minutes=minutes)).replace(tzinfo=dt.UTC)
    assert rules.freshness_observations([never], watching_since=watched(59)) == []
    [late] = rules.freshness_observations([never], watching_since=watched(60))
    assert late.failing and late.alert.title == "source app has never been loaded"
    warning = freshness.SourceFreshness("app", now - dt.timedelta(minutes=45), None, sla, now)
    assert rules.freshness_observations([warning]) == []                             # neither opens nor closes


class StagedConfig(dg.Config):
    fail: bool = False


@dg.asset
def staged(config: StagedConfig):
    if config.fail:
        raise RuntimeError("staging broke")


@dg.asset
def freshness_like():
    return 1


@dg.asset_check(asset=staged, blocking=True)
def staged_is_complete():
    return dg.AssetCheckResult(passed=True)


def test_a_check_whose_asset_failed_first_has_no_verdict_and_the_run_alerts_once(instance, targets, webhook):
    # the asset fails, so its blocking check stays planned: no check alert, no crash; one run alert
    graph = dg.Definitions(assets=[staged], asset_checks=[staged_is_complete])
    tick = Ticker(instance, {"alert_targets": targets}, graph)
    sensors = EVENT_SENSORS
    tick(*sensors)
    dg.materialize([staged, staged_is_complete], instance=instance, raise_on_error=False,
                   run_config={"ops": {"staged": {"config": {"fail": True}}}})
    tick(*sensors)
    tick(*sensors)
    assert [(p["kind"], p["details"]["failed_step"], p["details"]["error"]) for p in webhook.posts] == [
        ("run_failure", "staged", "RuntimeError: staging broke")]


def test_ad_hoc_asset_runs_keep_one_incident_per_failing_step(instance, targets, webhook):
    # automation and UI runs share one job name: another asset's success must not resolve staged's failure
    tick = Ticker(instance, {"alert_targets": targets})
    run_sensors = (run_failure_alert_sensor, run_recovery_alert_sensor)
    tick(*run_sensors)
    fail = {"ops": {"staged": {"config": {"fail": True}}}}
    dg.materialize([staged], instance=instance, run_config=fail, raise_on_error=False)
    dg.materialize([freshness_like], instance=instance)
    dg.materialize([staged, freshness_like], instance=instance, run_config=fail, raise_on_error=False)
    tick(*run_sensors)
    assert [(p["state"], p["details"]["failed_step"]) for p in webhook.posts] == [("open", "staged")]
    fixed = dg.materialize([staged], instance=instance)
    tick(*run_sensors)
    assert [(p["state"], p["key"]) for p in webhook.posts] == [
        ("open", "run_failure:__ephemeral_asset_job__:staged"),
        ("resolved", "run_failure:__ephemeral_asset_job__:staged")]
    assert webhook.posts[1]["details"]["run_id"] == fixed.run_id


def test_run_failure_steps_leave_blocking_checks_to_their_own_alert():
    check = ("pos_checks", "DagsterAssetCheckFailedError", "1 blocking asset check failed")
    error = ("shop_database", "DagsterExecutionStepExecutionError", "SourceUnavailable: refused")
    assert rules.run_failure_steps([check]) is None
    assert rules.run_failure_steps([check, error]) == [("shop_database", "SourceUnavailable: refused")]
    assert rules.run_failure_steps([]) == []                                        # failed outside any step
    assert rules.step_outcomes(True, [check, error], ["raw__pos"]) == {"raw__pos": False, "shop_database": True}
    assert rules.step_outcomes(True, [], []) == {rules.RUN_ITSELF: True}
    assert rules.step_outcomes(False, [], ["a"]) == {"a": False, rules.RUN_ITSELF: False}


def test_a_dead_slow_or_refusing_target_never_raises(caplog):
    alert = messages.run_failed("pos_job", "r1", "pos_loyalty_signups", "OSError: disk full")
    closed = free_port()
    slow, refusing = Webhook(delay=2.0), Webhook(status=500)
    try:
        logger = logging.getLogger("alerts-test")
        with caplog.at_level(logging.INFO, logger="alerts-test"):
            results = delivery.deliver(alert, delivery.Targets(
                webhook_url=f"http://127.0.0.1:{closed}/hook/secret-token",
                smtp=delivery.SmtpTarget("127.0.0.1", "a@example.org", ("b@example.org",), port=closed),
                timeout_seconds=0.5), logger)
            assert [(r.target, r.ok) for r in results] == [("webhook", False), ("smtp", False)]
            assert not delivery.post_webhook(alert, slow.url, timeout=0.5).ok
            answer = delivery.post_webhook(alert, refusing.url, timeout=2)
            assert not answer.ok and "500" in answer.detail
    finally:
        slow.close()
        refusing.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2 and all("NOT delivered" in e for e in errors)
    assert "secret-token" not in caplog.text and "ALERT: pos_job failed at pos_loyalty_signups" in caplog.text


def test_dead_targets_do_not_fail_the_sensor(instance):
    closed = free_port()
    dead = AlertTargetsResource(webhook_url=f"http://127.0.0.1:{closed}/x", smtp_host="127.0.0.1", smtp_port=closed,
                                smtp_to="oncall@example.org", timeout_seconds=0.5)
    tick = Ticker(instance, {"alert_targets": dead})
    tick(run_failure_alert_sensor)
    _run(instance, fail=True)
    context = dg.build_sensor_context(instance=instance, cursor=tick.cursors["run_failure_alert_sensor"],
                                      resources={"alert_targets": dead})
    result = run_failure_alert_sensor.evaluate_tick(context)
    assert result.cursor != tick.cursors["run_failure_alert_sensor"]    # the failure was handled, not retried


# --- configuration and the code location ---------------------------------------------------------------------------

def test_targets_come_from_the_environment(monkeypatch):
    for name in ("WEBHOOK_URL", "SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "SMTP_TO", "SMTP_STARTTLS", "SMTP_USER",
                 "SMTP_PASSWORD", "TIMEOUT_SECONDS"):
        monkeypatch.delenv(f"CUSTOMER_PIPELINE_ALERT_{name}", raising=False)
    assert alert_targets_from_env().targets() == delivery.Targets()                  # only the log
    monkeypatch.setenv("CUSTOMER_PIPELINE_ALERT_WEBHOOK_URL", "https://hooks.example.org/services/T0/B0/s3cret")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ALERT_SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ALERT_SMTP_PORT", "587")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ALERT_SMTP_TO", "oncall@example.org")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ALERT_SMTP_STARTTLS", "true")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ALERT_SMTP_USER", "pipeline")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ALERT_SMTP_PASSWORD", "pw")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ALERT_SMTP_FROM", "")                        # empty = unset
    resource = alert_targets_from_env()
    assert isinstance(resource.webhook_url, dg.EnvVar) and isinstance(resource.smtp_password, dg.EnvVar)
    targets = resource.process_config_and_initialize().targets()
    assert targets.webhook_url.endswith("/s3cret") and targets.smtp == delivery.SmtpTarget(
        "smtp.example.org", "customer-pipeline@smtp.example.org", ("oncall@example.org",), port=587, starttls=True,
        user="pipeline", password="pw")
    assert "s3cret" not in targets.describe() and "hooks.example.org" in targets.describe()


def test_definitions_load_with_the_alert_sensors_running():
    defs = load_defs()
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    for name in ALERT_SENSORS:
        assert repo.get_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING, name
    assert "alert_targets" in repo.get_top_level_resources()
