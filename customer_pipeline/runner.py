"""`customer-pipeline run` as Dagster runs of job `materialize_all`: the raw layer, then the later stages.

1. The raw assets and their checks: one Dagster run. The shop database is always read; a raw asset loaded
   from a landing folder runs only when a file in that folder is new or corrected (`unchanged_raw`: a stat
   of each file, hashed only when its stat changed), so a run with nothing new reads no file.
   `gold/source_freshness` (it reads only what the loads write) is measured in this run too.
2. The later stages (staging, quality, identity, gold, marts, freshness, publishing): a second run, with
   - every later asset when something they read changed (`run_gate`), or with `full`;
   - only `publish/postgres_gold` when publishing is on (BI reads freshness there) when nothing did, so a
     run with nothing new rebuilds nothing and says so (and is one Dagster run when publishing is off);
   - without `identity/splink_model` once the warehouse has a model (trained when missing, as under automation;
     retraining is job `retrain_identity_model`);
   - without the assets below a raw asset whose step failed or whose blocking check did not pass (held back,
     as one run of the whole graph would hold them back).
The fingerprint is recorded only when the second run built every later asset and every blocking check passed,
so a failed or partial run is followed by a complete one.
"""

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from customer_pipeline import memory, run_gate, warehouse
from customer_pipeline.identity import model_store
from customer_pipeline.settings import Settings

APP_DERIVED = ("raw.app_identifies", "raw.app_aliases")  # rebuilt by raw/app_events from every event

# `full`: every step that works incrementally does everything again (after a model retrain, a rules or suite
# change): staging standardises every record, identity scores every pair and clusters every record,
# survivorship builds every golden row (config `full_refresh`), the GX suites validate every row (run tag)
FULL_REFRESH_OPS = ("staging_link_tables", "staging__person_records", "identity__links", "resolve_customers",
                    "golden_customers")
MODEL = dg.AssetKey(["identity", "splink_model"])
# run also when nothing changed: freshness measures the time since each load, and BI reads it from PostgreSQL
FRESHNESS = dg.AssetKey(["gold", "source_freshness"])
ALWAYS = (FRESHNESS, dg.AssetKey(["publish", "postgres_gold"]))


def full_refresh_run_config() -> tuple[dict, dict]:
    """The run config and tags of a full rebuild."""
    from customer_pipeline.defs.quality.gx_factory import FULL_REFRESH_TAG

    return ({"ops": {op: {"config": {"full_refresh": True}} for op in FULL_REFRESH_OPS}},
            {FULL_REFRESH_TAG: "true"})


@dataclass
class Outcome:
    results: list = field(default_factory=list)  # ExecuteInProcessResult of each Dagster run, in order
    run_ids: list[str] = field(default_factory=list)
    planned: set[str] = field(default_factory=set)  # every asset of the job
    not_started: list[str] = field(default_factory=list)  # later assets left alone: nothing they read changed
    held_back_by_raw: list[str] = field(default_factory=list)  # below a failed raw step or blocking check
    raw_unchanged: list[str] = field(default_factory=list)  # raw assets not run: no new or corrected file
    model_kept: bool = False  # identity/splink_model not run: the warehouse has its model
    gate: str = ""  # one line: why the later stages ran, or did not

    @property
    def success(self) -> bool:
        return all(r.success for r in self.results)

    @property
    def materialized(self) -> set[str]:
        return {e.asset_key.to_user_string() for r in self.results for e in r.get_asset_materialization_events()}

    @property
    def succeeded_steps(self) -> set[str]:
        return {e.step_key for r in self.results for e in r.all_events if e.event_type_value == "STEP_SUCCESS"}

    def failed_blocking_checks(self) -> list[str]:
        return [f"{ev.asset_key.to_user_string()}:{ev.check_name}" for r in self.results
                for ev in r.get_asset_check_evaluations() if not ev.passed and ev.severity.value == "ERROR"]

    def step_failures(self) -> list:
        return [e for r in self.results for e in r.all_events if e.event_type_value == "STEP_FAILURE"]


def _run_config(run_config: dict, graph, keys) -> dict:
    """The run config with op config only for the ops that run these assets (Dagster refuses config for an
    op that is not in the run)."""
    ops = {graph.assets_def_for_key(k).node_def.name for k in keys}
    out = {k: v for k, v in run_config.items() if k != "ops"}
    chosen = {op: c for op, c in (run_config.get("ops") or {}).items() if op in ops}
    return {**out, "ops": chosen} if chosen else out


def unchanged_raw(warehouse_path, landing_dir: Path, raw: list[dg.AssetKey]) -> set[dg.AssetKey]:
    """The raw assets loaded from landing folders in which no file is new or corrected since the warehouse
    loaded it (a stat of each file, hashed only when its stat changed): their loads would find nothing. The
    shop database is always read (its extract proves the shop current, `freshness.py`), and a raw asset
    whose tables are not all in the warehouse always runs."""
    from customer_pipeline.ingest.files import pending_files, raw_asset_folder

    folders = {k: raw_asset_folder(k.path[-1]) for k in raw}
    if not any(folders.values()) or not Path(warehouse_path).is_file():
        return set()
    unchanged = set()
    with warehouse.connect(warehouse_path) as con:
        quiet = {f: not pending_files(con, landing_dir, f) for f in set(folders.values()) if f}
        for key, folder in folders.items():
            tables = [f"raw.{key.path[-1]}"] + (list(APP_DERIVED) if key.path[-1] == "app_events" else [])
            if folder and quiet[folder] and all(warehouse.table_exists(con, t) for t in tables):
                unchanged.add(key)
    return unchanged


def warm_gx_for(raw: list[dg.AssetKey]) -> bool:
    """Start importing GX (2-3 s of Python) in the background when the raw run loads a landing folder: it holds a
    new or corrected file whose rows go to GX. From the run's start the import overlaps the run's set-up and every
    load (from the first load that brought rows, as `defs/sources/metadata.py` starts it, it slowed the loads
    after it by ~2 s at 1M). A raw run of the shop alone may bring nothing: it leaves that to the load."""
    from customer_pipeline.ingest.files import raw_asset_folder

    if not any(raw_asset_folder(k.path[-1]) for k in raw):
        return False
    from customer_pipeline.quality.gx_runner import warm_up

    warm_up()
    return True


def run(instance: dg.DagsterInstance, warehouse_path, *, full: bool = False, listener=None,
        run_config: dict | None = None, tags: dict | None = None) -> Outcome:
    from customer_pipeline.definitions import defs

    definitions = defs()
    job = definitions.resolve_job_def("materialize_all")
    graph = definitions.resolve_asset_graph()
    base_config, base_tags = full_refresh_run_config() if full else ({}, {})
    config = {**(run_config or {}), **base_config}
    tags = {**(tags or {}), **base_tags}
    keys = set(job.asset_layer.selected_asset_keys)
    raw = sorted(k for k in keys if k.path[0] == "raw")
    later = sorted(keys - set(raw))
    out = Outcome(planned={k.to_user_string() for k in keys})
    if not full:
        unchanged = unchanged_raw(warehouse_path, Settings.from_env().landing_dir, raw)
        raw = [k for k in raw if k not in unchanged]
        out.raw_unchanged = sorted(k.to_user_string() for k in unchanged)
    warm_gx_for(raw)

    def execute(selection) -> None:
        run_id = str(uuid.uuid4())
        if listener is not None:
            instance.add_event_listener(run_id, listener)
        # steps run in this process: freed memory goes back to the OS as each ends (customer_pipeline/memory.py)
        instance.add_event_listener(run_id, memory.step_end_listener)
        out.results.append(job.execute_in_process(
            run_config=_run_config(config, graph, selection), instance=instance, raise_on_error=False, run_id=run_id, tags=tags,
            asset_selection=list(selection)))
        out.run_ids.append(run_id)

    # freshness reads only what the loads write: measured in the raw run, so a run with nothing new is one run
    measured = [FRESHNESS] if FRESHNESS in keys else []
    bad = set()
    if raw:
        execute(raw + measured)
        first = out.results[0]
        bad = {e.asset_key for e in first.get_asset_check_evaluations() if not e.passed and e.severity.value == "ERROR"}
        done = {e.asset_key for e in first.get_asset_materialization_events()}
        bad |= set(raw) - done  # a raw step that failed materialises nothing
    held = set()
    if bad:
        held = (dg.AssetSelection.assets(*bad).downstream(include_self=False)).resolve(graph) & set(later)
        out.held_back_by_raw = sorted(k.to_user_string() for k in held)
    with warehouse.connect(warehouse_path) as con:
        parts = run_gate.fingerprint(con)
        changed = run_gate.changed_parts(con, parts)
        model_exists = model_store.latest(con) is not None
    if full:
        out.gate = "later stages: all of them (--full)"
    elif changed:
        out.gate = f"later stages: all of them (changed since their last complete run: {', '.join(changed)})"
    else:
        out.gate = ("later stages: not started, nothing they read changed since their last complete run "
                    "(raw tables and load logs, review decisions, model, settings, code, date)")
    selection = later if (full or changed) else [k for k in ALWAYS if k in keys]
    if not full and not changed:
        out.not_started = sorted(k.to_user_string() for k in later if k not in ALWAYS)
    if MODEL in selection and model_exists:
        # as under automation (trained when missing): retraining is job retrain_identity_model
        selection = [k for k in selection if k != MODEL]
        out.model_kept = True
    selection = [k for k in selection if k not in held and (k not in measured or not raw)]
    if selection:
        execute(selection)
    complete = (full or changed) and not held and bool(selection) and out.success and not out.failed_blocking_checks()
    with warehouse.connect(warehouse_path) as con:
        if complete:
            # the review queue and the model are the later stages' own output: as they left them; the rest as
            # the later stages found it when they started
            after = run_gate.fingerprint(con)
            run_gate.record(con, {**parts, **{p: after[p] for p in run_gate.WRITTEN_BY_LATER_STAGES}},
                            out.run_ids[-1])
        elif full or changed:
            run_gate.forget(con)
    return out
