"""Time from a new landing file to a new gold.golden_customers through the sensor path (dagster dev).

    python benchmarks/sensor_latency.py [--persons 2000] [--port 3999]
    python benchmarks/sensor_latency.py --workdir /tmp/scale1m --settle 300   # the 1M warehouse of scale.py

Generates the demo sample into a work folder, loads it once in process (the warehouse is warm, as in
production); with `--workdir`, copies the landing folder, warehouse and artefacts a `scale.py` run left there
and builds them once with `customer-pipeline run --full` into this run's Dagster instance (so that the
automation finds every asset materialised, as on a deployment that has been running). Then it starts
`dagster dev` (webserver + daemon, QueuedRunCoordinator) on that folder, drops one new POS loyalty file into
pos/ and prints when the landing sensor's run, the downstream run and the new
golden_customers materialisation happen. Not a test: it prints figures.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--port", type=int, default=3999)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--workdir", default=None, help="copy landing/ and warehouse.duckdb from here (scale.py)")
    parser.add_argument("--settle", type=float, default=120,
                        help="seconds dagster dev runs before the new file (first ticks and runs settle)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sensor_latency_"))
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "CUSTOMER_PIPELINE_LANDING_DIR": str(work / "landing"),
           "CUSTOMER_PIPELINE_WAREHOUSE": str(work / "warehouse.duckdb"), "SHOP_DB_URL": "",
           "CUSTOMER_PIPELINE_PG_URL": "", "DAGSTER_HOME": str(home)}
    cli = [sys.executable, "-m", "customer_pipeline.cli"]
    if args.workdir:
        source = Path(args.workdir)
        shutil.copytree(source / "landing", work / "landing")
        shutil.copy(source / "warehouse.duckdb", work / "warehouse.duckdb")
        if (source / "warehouse.artifacts").is_dir():
            shutil.copytree(source / "warehouse.artifacts", work / "warehouse.artifacts")
        started = time.perf_counter()
        subprocess.run(cli + ["run", "--full"], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"work folder {work}: copied from {source}, built once with run --full in "
              f"{time.perf_counter() - started:.0f}s", flush=True)
    else:
        subprocess.run(cli + ["sample", "--persons", str(args.persons), "--out", str(work / "landing")],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(cli + ["run"], env=env, check=True, stdout=subprocess.DEVNULL)

    import dagster as dg

    dev = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(args.port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), signal.signal(signal.SIGTERM, signal.SIG_DFL)),
    )
    try:
        time.sleep(args.settle)  # webserver, daemon, first sensor ticks and the automation's first runs settle
        pos = work / "landing" / "pos"
        template = max(pos.glob("loyalty_signups_*.csv"), key=lambda p: p.stat().st_size)
        lines = template.read_text(encoding="utf-8").splitlines()
        new_rows = [lines[0]] + ["9" + line[1:] for line in lines[1:]]  # new card numbers, same people
        staged = work / "new.csv"
        staged.write_text("\n".join(new_rows) + "\n", encoding="utf-8")
        t0 = time.time()
        os.replace(staged, pos / "loyalty_signups_ZZ999_2099-01-01.csv")  # writers move files in atomically
        print(f"dropped a POS file with {len(new_rows) - 1} rows at t0")
        seen: dict[str, float] = {}
        key = dg.AssetKey(["gold", "golden_customers"])
        while time.time() - t0 < args.timeout:
            with dg.DagsterInstance.from_config(str(home)) as instance:
                for record in instance.get_run_records(limit=20):
                    created, run = record.create_timestamp.timestamp(), record.dagster_run
                    if created < t0 - 1:
                        continue
                    name = f"run {run.job_name} {run.run_id[:8]}"
                    seen.setdefault(f"{name} created", created - t0)
                    if record.start_time:
                        seen.setdefault(f"{name} started", record.start_time - t0)
                    if record.end_time and run.status.value == "SUCCESS":
                        seen.setdefault(f"{name} succeeded", record.end_time - t0)
                pos_done = [v for k, v in seen.items() if k.startswith("run pos_job") and k.endswith("succeeded")]
                event = instance.get_latest_materialization_event(key)
                # only a golden table built after the new file was loaded counts
                if pos_done and event is not None and event.timestamp - t0 > min(pos_done):
                    seen.setdefault("gold/golden_customers materialised", event.timestamp - t0)
            if "gold/golden_customers materialised" in seen:
                break
            time.sleep(2)
        for label, seconds in sorted(seen.items(), key=lambda kv: kv[1]):
            print(f"  +{seconds:6.1f}s  {label}")
        if "gold/golden_customers materialised" not in seen:
            print("golden table not refreshed within the timeout")
            return 1
        return 0
    finally:
        import psutil

        # dagster dev's code server and run workers may sit in process groups of their own: stop them all
        family = psutil.Process(dev.pid).children(recursive=True)
        os.killpg(dev.pid, signal.SIGTERM)
        dev.wait(timeout=30)
        for child in family:
            if child.is_running():
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
