"""The run summary: steps with outcome and duration, asset checks by severity from the run's event log, what
identity did (links, review queue, customers, id changes, charts, accuracy against truth.csv)."""

import datetime as dt
import re
import uuid

import dagster as dg
import duckdb
import pandas as pd
import pytest

from customer_pipeline import progress, summary
from customer_pipeline import warehouse as wh

# --- a tiny graph with a passing, a warning and a failing blocking check -------------------------------------


@dg.asset(check_specs=[dg.AssetCheckSpec("has_rows", asset="numbers"),
                       dg.AssetCheckSpec("all_even", asset="numbers")])
def numbers():
    yield dg.MaterializeResult(metadata={"dagster/row_count": dg.MetadataValue.int(3)})
    yield dg.AssetCheckResult(check_name="has_rows", passed=True)
    yield dg.AssetCheckResult(check_name="all_even", passed=False, severity=dg.AssetCheckSeverity.WARN)


@dg.asset(deps=[numbers], check_specs=[dg.AssetCheckSpec("total_positive", asset="total", blocking=True)])
def total():
    yield dg.MaterializeResult(metadata={"dagster/row_count": dg.MetadataValue.int(1)})
    yield dg.AssetCheckResult(check_name="total_positive", passed=False, severity=dg.AssetCheckSeverity.ERROR)


@dg.asset(deps=[total])
def report():
    return dg.MaterializeResult()


def _job():
    return dg.Definitions(assets=[numbers, total, report],
                          jobs=[dg.define_asset_job("all_of_it")]).resolve_job_def("all_of_it")


def test_listener_prints_each_step_with_its_outcome_and_keeps_the_run_log(capsys):
    run_id = str(uuid.uuid4())
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_event_listener(run_id, progress.listener)
        result = _job().execute_in_process(instance=instance, run_id=run_id, raise_on_error=False,
                                           run_config=progress.QUIET_RUN_CONFIG)
        stored = progress.RunLog.from_entries(run_id, instance.all_logs(run_id))
    assert not result.success
    out = capsys.readouterr().out.splitlines()
    steps = [line for line in out if line.startswith("- ")]
    # no bare step names: every step line says how it ended, and how long it took when it ran
    assert len(steps) == 3 and all(re.match(r"- (ok|FAILED|skipped)\s", line) for line in steps), out
    numbers_line = next(line for line in steps if " numbers  " in line)
    assert re.fullmatch(r"- ok\s+\d+\.\d s  numbers  numbers 3 rows; 2 checks \(1 passed, 1 warned\)", numbers_line)
    total_line = next(line for line in steps if " total  " in line)
    assert total_line.startswith("- FAILED ") and "1 check (1 failed)" in total_line
    report_line = next(line for line in steps if " report  " in line)
    assert report_line.startswith("- skipped ") and "an upstream step failed" in report_line
    assert "    check numbers:all_even warned (WARN)" in out and "    check total:total_positive FAILED (ERROR)" in out

    log = progress.take_run_log(run_id)
    assert progress.take_run_log(run_id).steps == {}  # released once taken
    # the listener's log and a replay of the instance's stored event log agree
    assert log.checks == stored.checks and set(log.steps) == set(stored.steps) == {"numbers", "total", "report"}
    assert {s.key: s.outcome for s in log.steps.values()} == {"numbers": "ok", "total": "failed", "report": "skipped"}
    assert log.materialized["numbers"]["dagster/row_count"] == 3

    lines = summary.check_lines(log)
    assert lines[1] == "Asset checks (this run): 3 ran, 1 passed, 1 warned, 1 failed"
    assert lines[2] == "  failed (ERROR, blocks what is downstream): total:total_positive"
    assert lines[3] == "  warned (WARN, blocks nothing): numbers:all_even"
    steps_summary = summary.step_lines(log)
    assert steps_summary[1].startswith("Steps: 3 (1 ok, 1 failed, 1 skipped); slowest ")
    assert steps_summary[3] == "  skipped (1): report"


def test_check_lines_when_everything_passed():
    log = progress.RunLog("r", checks=[progress.CheckOutcome("a", "c1", True, "ERROR"),
                                       progress.CheckOutcome("a", "c2", True, "WARN")])
    assert summary.check_lines(log) == ["", "Asset checks (this run): 2 ran, 2 passed, 0 warned, 0 failed"]


# --- identity ---------------------------------------------------------------------------------------------------

SINCE = dt.datetime(2026, 11, 20, 6, 0)


def _identity_warehouse(path):
    links = pd.DataFrame({
        "record_id_l": ["pos|1", "shop|1", "pos|2", "app|1"], "record_id_r": ["shop|1", "app|1", "shop|2", "pos|3"],
        "match_weight": [None, 14.2, 8.0, 11.0], "match_probability": [1.0, 0.999, 0.9, 0.99],
        "link_type": ["deterministic:account", "splink", "splink", "splink"], "comparison_detail": [None] * 4})
    queue = pd.DataFrame({"record_id_l": ["pos|2", "app|1", "pos|9"], "record_id_r": ["shop|2", "pos|3", "shop|9"],
                          "reason": ["uncertain", "name_only", "uncertain"],
                          "decision": pd.Series([None, None, "match"], dtype="string")})
    xref = pd.DataFrame({"customer_id": ["C1", "C1", "C1", "C2", "C3", "C4"],
                         "record_id": ["pos|1", "shop|1", "app|1", "pos|2", "shop|2", "pos|3"]})
    history = pd.DataFrame({"old_id": ["C8", "C9", "C7", "C6"], "new_id": ["C1", "C2", "C1", None],
                            "reason": ["merge", "split", "merge", "removed"],
                            "changed_at": [SINCE + dt.timedelta(minutes=3)] * 2 + [SINCE - dt.timedelta(days=1)] * 2})
    with wh.connect(path) as con:
        wh.replace_table(con, "identity.links", links)
        wh.replace_table(con, "identity.review_queue", queue)
        wh.replace_table(con, "identity.review_decisions", queue[queue["decision"].notna()])
        wh.replace_table(con, "gold.customer_xref", xref)
        wh.replace_table(con, "gold.customer_id_history", history)


def test_identity_lines_say_what_identity_did(tmp_path):
    path = tmp_path / "w.duckdb"
    _identity_warehouse(path)
    charts = tmp_path / "w.artifacts" / "identity"
    charts.mkdir(parents=True)
    for name in ("match_weights.html", "cluster_studio.html"):
        (charts / name).write_text("<html></html>")
    # truth: pos|1, shop|1, app|1 and pos|2 are one person; shop|2 and pos|3 another
    truth = tmp_path / "truth.csv"
    truth.write_text("source,source_key,person_id\npos,1,P1\nshop,1,P1\napp,1,P1\npos,2,P1\nshop,2,P2\npos,3,P2\n"
                     "call_center,77,P3\n")
    with wh.connect(path) as con:
        lines = summary.identity_lines(con, since=SINCE, ran=True, accept_weight=10.0, charts_dir=charts,
                                       truth_csv=truth)
    assert lines[1] == "Identity (this run)"
    # 14.2 is accepted; 11.0 is strong but rests on the name alone (in the queue); 8.0 is below the accept weight
    assert lines[2] == "  links auto-accepted: 1 deterministic, 1 Splink (match weight >= 10, of 3 pairs scored)"
    assert lines[3] == "  review queue: 2 pairs waiting for a decision (name_only 1, uncertain 1); 1 earlier decisions honoured"
    assert lines[4] == "  customers: 4 from 6 records; 1 with several records (largest 3)"
    # only the changes made since the run started; the day-old merge and removal are an earlier run's
    assert lines[5] == "  customer id changes since the last run: 1 merges, 1 splits, 0 ids removed (gold.customer_id_history)"
    assert lines[6] == f"  charts: {charts}/ (cluster_studio.html, match_weights.html)"
    # pairs: predicted C1 = 3 pairs, all true; true pairs P1 = 6 (4 records), P2 = 1: recall 3/7
    assert lines[7].startswith(f"  accuracy against {truth}: pairwise precision 1.0000, recall 0.4286, F1 0.6000 "
                               "(6 records scored, 7 true pairs, 3 of 3 predicted pairs correct)")
    with wh.connect(path) as con:  # identity did not run: not scored again (the run that resolved them printed it)
        idle = summary.identity_lines(con, since=None, ran=False, accept_weight=10.0, charts_dir=charts, truth_csv=truth)
    assert idle[1].startswith("Identity (did not run this run") and not any("accuracy" in line for line in idle)


def test_identity_lines_without_charts_truth_or_a_run(tmp_path):
    path = tmp_path / "w.duckdb"
    _identity_warehouse(path)
    with wh.connect(path) as con:
        lines = summary.identity_lines(con, since=None, ran=False, accept_weight=10.0,
                                       charts_dir=tmp_path / "nowhere", truth_csv=tmp_path / "truth.csv")
    assert lines[1].startswith("Identity (did not run this run")
    assert not any("id changes" in line or "accuracy" in line for line in lines)
    assert lines[-1] == f"  charts: none yet in {tmp_path / 'nowhere'} (materialise identity/model_charts)"
    with duckdb.connect() as con:
        assert summary.identity_lines(con, since=None, ran=False, accept_weight=10.0) == [
            "", "Identity: stage 'identity' not built yet"]


# --- the whole CLI on a small sample ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_summary_matches_the_instance_event_log(tmp_path, monkeypatch, capsys):
    from customer_pipeline.cli import main

    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    monkeypatch.delenv("CUSTOMER_PIPELINE_ARTIFACTS_DIR", raising=False)
    assert main(["sample", "--persons", "300", "--seed", "7", "--out", str(tmp_path / "landing"),
                 "--as-of", "2026-11-01"]) == 0
    assert main(["run"]) == 0
    out = capsys.readouterr().out.splitlines()

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 2  # the raw layer, then the later stages (customer_pipeline/runner.py)
        checks = [e.dagster_event.event_specific_data for run in runs
                  for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
        steps = {e.step_key for run in runs
                 for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)}
    passed = sum(c.passed for c in checks)
    warned = sum(not c.passed and c.severity == dg.AssetCheckSeverity.WARN for c in checks)
    assert len(checks) > 50
    assert f"Asset checks (this run): {len(checks)} ran, {passed} passed, {warned} warned, 0 failed" in out
    step_lines = [re.match(r"- ok\s+(?:\d+\.\d s|\d+ min \d+ s)  (\S+)", line) for line in out if line.startswith("- ")]
    assert all(step_lines) and {m.group(1) for m in step_lines} == steps  # every step: outcome and duration
    identity = out.index("Identity (this run)")
    assert out[identity + 4].startswith("  customer id changes since the last run: 0 merges, 0 splits")
    assert out[identity + 5].startswith(f"  charts: {tmp_path / 'w.artifacts' / 'identity'}/ (")
    accuracy = out[identity + 6]
    precision, recall = map(float, re.search(r"precision ([\d.]+), recall ([\d.]+)", accuracy).groups())
    assert accuracy.startswith(f"  accuracy against {tmp_path / 'landing' / 'truth.csv'}")
    assert precision > 0.9 and recall > 0.8, accuracy
    assert any(line.startswith("Source freshness (measured ") for line in out)
