"""Scale: generate a large sample, run the whole graph once, report seconds per stage, pairs, peak RSS.

    python benchmarks/scale.py [--persons 520000] [--seed 42] [--workdir DIR] [--skip-bare]

The issue's figure is "1,000,000 person records across the four sources": the generator writes about
1.9 person-describing records per person, so the default of 520,000 persons gives about 1,000,000 rows
in `staging.person_records`; both numbers are printed.

What runs:
  1. `customer-pipeline sample` (skipped when the work dir already holds a sample).
  2. Job `materialize_all` in a child process (this script with `--_child`), the way `customer-pipeline run`
     runs it: in process, ephemeral Dagster instance (DAGSTER_HOME empty), the same run config. An
     instance event listener records every step's start and end; the parent samples the RSS of the
     child's whole process tree (psutil, every 0.25 s) and keeps the peak, overall and per step.
  3. Bare Splink in this process: `linking.predict` on `staging.person_records` read back from the
     warehouse, then Splink's own clustering at the accept weight; the ratio
     identity-stage seconds / bare-Splink seconds is printed.

Targets on a 2-core, 24 GB machine: the whole run in under 10 minutes, peak RSS under 8 GB, identity
stage within 2x of bare Splink. Nothing is asserted; the figures are printed (and written as JSON with
`--json`). Results: docs/benchmarks.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Steps of job `materialize_all` (step keys: asset keys joined by "__", or the op name) by stage.
STAGES = {
    "sources": ("raw__", "shop_database", "shop_rows_accounted"),
    "quality": ("gx_", "gold__data_quality_report"),
    "staging": ("staging_link_tables", "staging__person_records"),
    "identity": ("identity__links", "resolve_customers"),
    # the first run against a warehouse trains its model (later runs load it): reported apart
    "training": ("identity__splink_model",),
    "gold": ("golden_customers", "gold__source_freshness", "publish__"),
    # the customer-360 marts (group `marts`): issue target, all of them together < 60 s at 1M records
    # (each asset's step and its checks' steps: `gold__<table>` and `gold__<table>_<check>`)
    "marts": tuple(k for m in ("customer_purchases", "customer_rfm", "market_basket", "customer_recommendations",
                               "customer_churn", "marketing_audience", "customer_demographics")
                   for k in (f"gold__{m}", f"gold__{m}_")),
}
STAGE_ORDER = ("sources", "quality", "staging", "training", "identity", "gold", "marts", "other")
MARTS_TARGET_SECONDS = 60
IDENTITY_STEPS = STAGES["identity"]
IDENTITY_ASSETS = ("identity/links", "identity/review_queue", "gold/customer_xref", "gold/customer_id_history")
IDENTITY_ONLY_ENV = "SCALE_BENCHMARK_IDENTITY_ONLY"


def stage_of(step_key: str) -> str:
    for stage, prefixes in STAGES.items():
        if any(step_key == p or (p.endswith(("_", "__")) and step_key.startswith(p)) for p in prefixes):
            return stage
    return "other"


# ---------------------------------------------------------------------------------------------
# memory sampling
# ---------------------------------------------------------------------------------------------

class RssSampler:
    """Samples the summed RSS of a process and its descendants in a thread; keeps (time, bytes)."""

    def __init__(self, pid: int, interval: float = 0.25):
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> int:
        import psutil

        total = 0
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._tree_rss()
            if rss:
                self.samples.append((time.time(), rss))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak(self, start: float | None = None, end: float | None = None) -> int:
        window = [r for t, r in self.samples if (start is None or t >= start) and (end is None or t <= end)]
        return max(window, default=0)


# ---------------------------------------------------------------------------------------------
# child: the job in process, with step timings
# ---------------------------------------------------------------------------------------------

def child(out_path: str) -> int:
    """Run job `materialize_all` like `customer-pipeline run`; write step timings and metadata as JSON."""
    started = time.time()
    import uuid

    import dagster as dg

    from customer_pipeline import runner
    from customer_pipeline.cli import preflight
    from customer_pipeline.definitions import defs
    from customer_pipeline.progress import QUIET_RUN_CONFIG, describe
    from customer_pipeline.settings import Settings

    preflight(Settings.from_env())
    identity_only = os.environ.get(IDENTITY_ONLY_ENV) == "1"
    run_config = dict(QUIET_RUN_CONFIG)
    selection = None
    if identity_only:  # `--also-engine`: the identity steps again, everything scored and clustered
        job = defs().resolve_job_def("materialize_all")
        selection = [dg.AssetKey(k.split("/")) for k in IDENTITY_ASSETS]
        run_config["ops"] = {op: {"config": {"full_refresh": True}} for op in IDENTITY_STEPS}
    imported = time.time()
    steps: dict[str, dict] = {}
    materialisations: dict[str, dict] = {}
    failed_checks: list[str] = []

    def listen(entry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind, key = event.event_type_value, event.step_key
        if kind == "STEP_START":
            steps[key] = {"start": entry.timestamp}
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED") and key:
            steps.setdefault(key, {"start": entry.timestamp})
            steps[key].update(end=entry.timestamp, status=kind)
        elif kind == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            materialisations[mat.asset_key.to_user_string()] = {
                k: v.value for k, v in mat.metadata.items() if isinstance(v.value, (int, float)) and not isinstance(v.value, bool)
            }
        elif kind == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            if not ev.passed and ev.severity.value == "ERROR":
                failed_checks.append(f"{ev.asset_key.to_user_string()}:{ev.check_name}")
        line = describe(event)
        if line:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    with dg.DagsterInstance.ephemeral() as instance:
        if identity_only:
            run_id = str(uuid.uuid4())
            instance.add_event_listener(run_id, listen)
            success = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False,
                                             run_id=run_id, asset_selection=selection).success
            gate = "identity steps only"
        else:  # as `customer-pipeline run` does: the raw layer, then the later stages if anything changed
            out = runner.run(instance, Settings.from_env().warehouse_path, listener=listen, run_config=run_config)
            success, gate = out.success, out.gate
    finished = time.time()
    print(gate, flush=True)
    Path(out_path).write_text(json.dumps({
        "started": started, "imported": imported, "finished": finished, "success": bool(success), "gate": gate,
        "failed_checks": failed_checks, "steps": steps, "materialisations": materialisations,
    }), encoding="utf-8")
    return 0 if success and not failed_checks else 1


# ---------------------------------------------------------------------------------------------
# bare Splink on the same records
# ---------------------------------------------------------------------------------------------

def bare_splink(warehouse: Path) -> dict:
    """`linking.predict` + Splink's clustering at the accept weight on staging.person_records."""
    import duckdb
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    from customer_pipeline.defs.identity import settings
    from customer_pipeline.identity import linking, model_store

    out: dict = {}
    t0 = time.perf_counter()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        records = con.execute("SELECT * FROM staging.person_records").df()
        model = model_store.latest(con).model  # the model the pipeline run trained on this warehouse
    t1 = time.perf_counter()
    links = linking.predict(records, model, threshold_match_weight=settings.review_low_weight())
    t2 = time.perf_counter()
    db_api = DuckDBAPI()
    nodes = records[["record_id"]]
    edges = links[["record_id_l", "record_id_r", "match_weight", "match_probability"]]
    clusters = cluster_pairwise_predictions_at_threshold(
        nodes, edges, db_api, node_id_column_name="record_id",
        edge_id_column_name_left="record_id_l", edge_id_column_name_right="record_id_r",
        threshold_match_weight=settings.accept_weight(),
    ).as_pandas_dataframe()
    t3 = time.perf_counter()
    out.update(
        records=len(records), links=len(links), pairs_compared=int(links.attrs.get("pairs_compared", 0)),
        clusters=int(clusters["cluster_id"].nunique()),
        read_seconds=t1 - t0, predict_seconds=t2 - t1, cluster_seconds=t3 - t2, seconds=t3 - t0,
    )
    return out


# ---------------------------------------------------------------------------------------------
# the identity stage again with the other engine
# ---------------------------------------------------------------------------------------------

def other_engine(engine: str, env: dict, warehouse: Path, work: Path) -> dict:
    """The identity steps (full refresh: every pair scored, every record clustered) on a copy of the
    warehouse with `engine`, then what both runs accepted and clustered, compared."""
    import shutil

    import duckdb

    from customer_pipeline.defs.identity import settings

    copy = work / f"warehouse_{engine}.duckdb"
    print(f"\nidentity stage again on {engine} (copy of the warehouse: {copy}) ...", flush=True)
    shutil.copyfile(warehouse, copy)
    timings = work / f"step_timings_{engine}.json"
    timings.unlink(missing_ok=True)
    child_env = {**env, "CUSTOMER_PIPELINE_WAREHOUSE": str(copy), "CUSTOMER_PIPELINE_ENGINE": engine,
                 IDENTITY_ONLY_ENV: "1"}
    proc = subprocess.Popen([sys.executable, __file__, "--_child", str(timings)], env=child_env)
    with RssSampler(proc.pid) as sampler:
        rc = proc.wait()
    run = json.loads(timings.read_text()) if timings.exists() else {"steps": {}, "materialisations": {}}
    seconds = {k: s.get("end", run.get("finished", 0)) - s["start"] for k, s in run["steps"].items()}
    accept = settings.accept_weight()
    sql_pairs = (f"SELECT record_id_l, record_id_r FROM identity.links WHERE link_type = 'splink' "
                 f"AND match_weight >= {accept}")
    with duckdb.connect(str(warehouse), read_only=True) as a, duckdb.connect(str(copy), read_only=True) as b:
        pa_, pb = a.execute(sql_pairs).df(), b.execute(sql_pairs).df()
        xa = a.execute("SELECT customer_id, record_id FROM gold.customer_xref").df()
        xb = b.execute("SELECT customer_id, record_id FROM gold.customer_xref").df()
    this, that = set(zip(pa_["record_id_l"], pa_["record_id_r"])), set(zip(pb["record_id_l"], pb["record_id_r"]))
    sets_a = {frozenset(g) for _, g in xa.groupby("customer_id")["record_id"]}
    sets_b = {frozenset(g) for _, g in xb.groupby("customer_id")["record_id"]}
    return {
        "engine": engine, "exit_code": rc, "links_seconds": seconds.get("identity__links", 0.0),
        "resolve_seconds": seconds.get("resolve_customers", 0.0),
        "identity_seconds": sum(seconds.get(k, 0.0) for k in IDENTITY_STEPS), "peak_rss": sampler.peak(),
        "pairs_compared": int(run["materialisations"].get("identity/links", {}).get("pairs_compared", 0)),
        "accepted_both": len(this & that), "accepted_only_this": len(this - that),
        "accepted_only_other": len(that - this),
        "accepted_agreement": len(this & that) / max(len(this | that), 1),
        "customers": len(sets_a), "same_customers": len(sets_a & sets_b),
        "customers_only_this": len(sets_a - sets_b), "customers_only_other": len(sets_b - sets_a),
    }


# ---------------------------------------------------------------------------------------------
# parent
# ---------------------------------------------------------------------------------------------

def gb(n: int) -> str:
    return f"{n / 1024 ** 3:.2f} GB"


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 1024 ** 3:.0f} GB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=520_000,
                        help="generator persons (default 520,000 ~ 1,000,000 person records)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default="2026-11-01")
    parser.add_argument("--workdir", default=None, help="keep sample and warehouse here (a sample there is reused)")
    parser.add_argument("--fresh-warehouse", action="store_true", default=True,
                        help="delete the warehouse before the run (default; a first, full load)")
    parser.add_argument("--keep-warehouse", dest="fresh_warehouse", action="store_false",
                        help="run against the existing warehouse (an incremental run)")
    parser.add_argument("--skip-bare", action="store_true", help="do not run bare Splink")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default=None,
                        help="identity engine of the run (sets CUSTOMER_PIPELINE_ENGINE for it; docs/scale-out.md)")
    parser.add_argument("--also-engine", choices=("duckdb", "spark"), default=None,
                        help="after the run, the identity stage again on a copy of the warehouse with this engine "
                             "(same records, same model): seconds, peak RSS, pairs and agreement side by side")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        from customer_pipeline.cli import exit_now

        exit_now(child(args._child))  # as the `customer-pipeline` command ends

    work = Path(args.workdir or tempfile.mkdtemp(prefix="scale_"))
    work.mkdir(parents=True, exist_ok=True)
    landing, wh = work / "landing", work / "warehouse.duckdb"
    env = {**os.environ, "CUSTOMER_PIPELINE_LANDING_DIR": str(landing), "CUSTOMER_PIPELINE_WAREHOUSE": str(wh),
           "SHOP_DB_URL": "", "CUSTOMER_PIPELINE_PG_URL": "", "DAGSTER_HOME": ""}
    if args.engine:
        env["CUSTOMER_PIPELINE_ENGINE"] = args.engine
    engine = env.get("CUSTOMER_PIPELINE_ENGINE") or "duckdb"
    os.environ.update({k: env[k] for k in ("CUSTOMER_PIPELINE_LANDING_DIR", "CUSTOMER_PIPELINE_WAREHOUSE")})
    print(f"scale benchmark: {args.persons:,} persons (seed {args.seed}), identity engine {engine}, work dir {work}")
    print(f"machine: {machine()}", flush=True)

    # 1. sample
    sample_seconds = None
    if not (landing / "truth.csv").exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "customer_pipeline.cli", "sample", "--persons", str(args.persons),
                        "--seed", str(args.seed), "--out", str(landing), "--as-of", args.as_of],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        sample_seconds = time.perf_counter() - t
        print(f"sample generated in {sample_seconds:.1f}s", flush=True)
    else:
        print("sample: reusing the one in the work dir", flush=True)
    if args.fresh_warehouse:
        for p in (wh, wh.with_suffix(".duckdb.wal")):
            p.unlink(missing_ok=True)

    if not args.skip_bare:
        # import the identity code now, as the child does, so both measure the same version of it
        import customer_pipeline.identity.linking  # noqa: F401
        import splink.clustering  # noqa: F401

    # 2. the pipeline, in a child process whose process tree is sampled
    timings_path = work / "step_timings.json"
    timings_path.unlink(missing_ok=True)
    t = time.time()
    proc = subprocess.Popen([sys.executable, __file__, "--_child", str(timings_path)], env=env)
    with RssSampler(proc.pid) as sampler:
        rc = proc.wait()
    wall = time.time() - t
    if not timings_path.exists():
        print(f"pipeline run failed (exit {rc}) before writing its timings")
        return rc or 1
    run = json.loads(timings_path.read_text())
    if rc != 0:
        print(f"WARNING: pipeline run exit {rc}; failed checks: {run['failed_checks']}")

    steps = sorted(run["steps"].items(), key=lambda kv: kv[1]["start"])
    rows = []
    for key, s in steps:
        end = s.get("end", run["finished"])
        rows.append((key, stage_of(key), end - s["start"], sampler.peak(s["start"], end), s.get("status", "?"),
                     s["start"] - run["started"]))
    stage_seconds = {st: 0.0 for st in STAGE_ORDER}
    stage_peak = {st: 0 for st in STAGE_ORDER}
    for _, st, sec, peak, _, _ in rows:
        stage_seconds[st] += sec
        stage_peak[st] = max(stage_peak[st], peak)
    mats = run["materialisations"]
    person_records = int(mats.get("staging/person_records", {}).get("dagster/row_count", 0))
    pairs = int(mats.get("identity/links", {}).get("pairs_compared", 0))
    identity_seconds = sum(sec for key, _, sec, _, _, _ in rows if key in IDENTITY_STEPS)
    peak_total = sampler.peak()
    startup = run["imported"] - run["started"]
    overhead = wall - sum(r[2] for r in rows)

    print("\nSteps (in execution order)")
    print(f"  {'step':44s} {'stage':9s} {'seconds':>8s} {'peak RSS':>10s}")
    for key, st, sec, peak, status, _ in rows:
        flag = "" if status == "STEP_SUCCESS" else f"  {status}"
        print(f"  {key:44s} {st:9s} {sec:8.1f} {gb(peak):>10s}{flag}")
    print("\nStages")
    print(f"  {'stage':10s} {'seconds':>8s} {'peak RSS':>10s}")
    for st in STAGE_ORDER:
        if stage_seconds[st]:
            print(f"  {st:10s} {stage_seconds[st]:8.1f} {gb(stage_peak[st]):>10s}")
    print(f"  {'startup':10s} {startup:8.1f}   (imports, definitions, preflight)")
    print(f"  {'total':10s} {wall:8.1f} {gb(peak_total):>10s}   (wall clock of the run; "
          f"{overhead:.1f}s outside steps)")

    bare = None
    if not args.skip_bare:
        print("\nbare Splink on the same records ...", flush=True)
        with RssSampler(os.getpid()) as self_sampler:
            bare = bare_splink(wh)
        bare["peak_rss"] = self_sampler.peak()

    other = None
    if args.also_engine:
        other = other_engine(args.also_engine, env, wh, work)
        other["this_engine_identity_seconds"] = identity_seconds

    print("\nSummary")
    print(f"  persons generated          {args.persons:>12,}")
    print(f"  person records (staging)   {person_records:>12,}")
    for name in ("raw/pos_transactions", "raw/app_events", "gold/golden_customers"):
        if name in mats:
            print(f"  {name:26s} {int(mats[name].get('dagster/row_count', 0)):>12,}")
    print(f"  pairs compared (Splink)    {pairs:>12,}")
    print(f"  links written              {int(mats.get('identity/links', {}).get('dagster/row_count', 0)):>12,}")
    print(f"  whole run                  {wall:>11.1f}s  (target < 600 s: {'met' if wall < 600 else 'NOT met'})")
    print(f"  peak RSS (process tree)    {gb(peak_total):>12s}  "
          f"(target < 8 GB: {'met' if peak_total < 8 * 1024 ** 3 else 'NOT met'})")
    print(f"  identity stage             {identity_seconds:>11.1f}s  (links + resolve_customers; engine {engine})")
    marts_seconds = stage_seconds["marts"]
    print(f"  marts (7 assets)           {marts_seconds:>11.1f}s  (target < {MARTS_TARGET_SECONDS} s: "
          f"{'met' if marts_seconds < MARTS_TARGET_SECONDS else 'NOT met'}; BG/NBD fit "
          f"{float(mats.get('gold/customer_churn', {}).get('fit_seconds', 0)):.1f}s)")
    ratio = None
    if bare:
        ratio = identity_seconds / bare["seconds"] if bare["seconds"] else float("nan")
        print(f"  bare Splink                {bare['seconds']:>11.1f}s  (read {bare['read_seconds']:.1f}s, predict "
              f"{bare['predict_seconds']:.1f}s, cluster {bare['cluster_seconds']:.1f}s; {bare['pairs_compared']:,} "
              f"pairs, {bare['clusters']:,} clusters, peak {gb(bare['peak_rss'])})")
        print(f"  identity / bare Splink     {ratio:>12.2f}x  (target <= 2: {'met' if ratio <= 2 else 'NOT met'})")
    if other:
        print(f"  identity on {other['engine']:>6s}          {other['identity_seconds']:>11.1f}s  (links "
              f"{other['links_seconds']:.1f}s + resolve {other['resolve_seconds']:.1f}s; peak {gb(other['peak_rss'])}; "
              f"{other['pairs_compared']:,} pairs; {engine}: {identity_seconds:.1f}s)")
        print(f"  agreement {engine} / {other['engine']:<6s}    {other['accepted_agreement']:>12.4%}  pairs at the "
              f"accept weight ({other['accepted_both']:,} on both, {other['accepted_only_this']:,} only {engine}, "
              f"{other['accepted_only_other']:,} only {other['engine']}); customers: "
              f"{other['same_customers']:,} of {other['customers']:,} the same record sets")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d"), "machine": machine(), "persons": args.persons, "seed": args.seed,
            "person_records": person_records, "pairs_compared": pairs, "wall_seconds": wall,
            "peak_rss_bytes": peak_total, "sample_seconds": sample_seconds, "startup_seconds": startup,
            "steps": [dict(zip(("step", "stage", "seconds", "peak_rss_bytes", "status", "started_after"), r)) for r in rows],
            "stages": {st: {"seconds": stage_seconds[st], "peak_rss_bytes": stage_peak[st]} for st in STAGE_ORDER},
            "identity_seconds": identity_seconds, "engine": engine, "bare_splink": bare, "identity_over_bare": ratio,
            "exit_code": rc, "also_engine": other, "gate": run.get("gate"),
            # from the child's start (imports included) to the end of the golden step
            "to_golden_seconds": (run["steps"]["golden_customers"].get("end", run["finished"]) - run["started"]
                                  if "golden_customers" in run["steps"] else None),
        }, indent=2), encoding="utf-8")
    return rc


if __name__ == "__main__":
    sys.exit(main())
