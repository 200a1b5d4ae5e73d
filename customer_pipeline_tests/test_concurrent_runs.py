"""Two runs writing the DuckDB warehouse at the same time both succeed: the second waits for the file lock."""

import json
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from customer_pipeline_tests.landing import make_landing

RUN_JOB = textwrap.dedent("""
    import json, sys, time, warnings
    warnings.simplefilter("ignore")
    import dagster as dg
    from customer_pipeline.definitions import defs
    from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
    job_name, wh, landing = sys.argv[1:4]
    job = defs().resolve_job_def(job_name)
    print("READY", flush=True)
    sys.stdin.readline()                      # both processes start their run on the same signal
    started = time.time()
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        resources={"warehouse": WarehouseResource(path=wh),
                   "sources": SourcesResource(landing_dir=landing, shop_db_url=f"sqlite:///{landing}/shop.sqlite")},
        raise_on_error=False,
    )
    checks = result.get_asset_check_evaluations()
    print(json.dumps({"success": result.success, "started": started, "ended": time.time(),
                      "checks_passed": all(c.passed for c in checks), "checks": len(checks)}), flush=True)
""")


@pytest.mark.slow
def test_two_source_runs_on_one_warehouse_file_both_succeed(tmp_path):
    landing = make_landing(tmp_path / "landing")
    wh = tmp_path / "w.duckdb"
    # a script file, not `python -c`: pyspark (the spark extra), imported by Great Expectations, takes a main
    # module without a file for a doctest run and exits
    script = tmp_path / "run_job.py"
    script.write_text(RUN_JOB)
    procs = {
        job: subprocess.Popen([sys.executable, str(script), job, str(wh), str(landing)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for job in ("pos_job", "app_job")
    }
    try:
        for proc in procs.values():
            assert proc.stdout.readline().strip() == "READY"
        # a third writer holds the file while both runs start: each must wait for the lock, not fail
        with duckdb.connect(str(wh)) as holder:
            holder.execute("CREATE SCHEMA IF NOT EXISTS meta")
            for proc in procs.values():
                proc.stdin.write("go\n")
                proc.stdin.flush()
            time.sleep(3)
        out = {job: json.loads(proc.communicate(timeout=120)[0].strip().splitlines()[-1]) for job, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    assert all(o["success"] and o["checks_passed"] and o["checks"] > 0 for o in out.values()), out
    # the two runs were live at the same time (each began before the other ended)
    assert out["pos_job"]["started"] < out["app_job"]["ended"] and out["app_job"]["started"] < out["pos_job"]["ended"]
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.pos_loyalty_signups").fetchall() == [(2,)]
        assert con.execute("SELECT count(*) FROM raw.app_events").fetchall() == [(4,)]
        assert dict(con.execute("SELECT source, count(*) FROM meta.loaded_files GROUP BY 1").fetchall()) == {
            "pos": 2, "app": 2}
