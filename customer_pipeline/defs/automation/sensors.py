"""Landing-folder sensors (a new or corrected file starts its source's job at once) and the automation sensor
that makes every downstream stage follow its upstreams."""

import hashlib
import json
import warnings
from pathlib import Path

import dagster as dg

from customer_pipeline.defs.automation.jobs import SOURCE_JOBS, WAREHOUSE_TAGS
from customer_pipeline.defs.automation.schedules import default_status
from customer_pipeline.defs.resources import SourcesResource, WarehouseResource
from customer_pipeline.ingest import store
from customer_pipeline.ingest.file_stats import sha256_file
from customer_pipeline.ingest.files import landing_files
from customer_pipeline.ingest.formats import APP_EVENTS_FOLDER, CSV_FAMILIES
from customer_pipeline.warehouse import table_exists

LANDING_FOLDERS = {"pos": "pos", "call_center": "call_center", "app": "app_events", "suppression": "suppression"}
# A landing sensor's tick is a stat() of its folder's files (hashes only for new sizes or times): every 10 s.
# The automation sensor evaluates every downstream asset's condition: every 15 s. At 30 s each, waiting for
# the two ticks was most of the time from a new file to the golden table (docs/benchmarks.md, 2026-12-07).
SENSOR_INTERVAL_SECONDS = 10
AUTOMATION_INTERVAL_SECONDS = 15
HASH_CHARS = 16

# Everything that is not a raw load: staging, quality report, identity, gold, freshness, publish; not assets
# tagged automation=manual. The Splink model is in: its own condition trains it only when missing (a
# retrain is a deliberate job, never a side effect of new data).
MANUAL = dg.AssetSelection.tag("automation", "manual")
DOWNSTREAM = dg.AssetSelection.all() - dg.AssetSelection.groups("raw") - MANUAL
# Run when any upstream updated (once per update, coalescing several loads into one run), never while an
# upstream is missing or in progress, and never past a failed blocking check: the golden layer holds back.
DOWNSTREAM_CONDITION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager_after_blocking_checks")


# Built once when missing, whenever the sensor started: Dagster's on_missing() fires only on a change to
# "missing" that the sensor saw happen, so an asset missing before its first tick would wait for good. Not
# again while a run builds it, nor after its last run failed (that run's failure is what the UI shows).
WHEN_MISSING = (
    dg.AutomationCondition.missing() & ~dg.AutomationCondition.in_progress()
    & ~dg.AutomationCondition.execution_failed() & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress() & dg.AutomationCondition.all_deps_blocking_checks_passed()
)


def _sensor_status() -> dg.DefaultSensorStatus:
    running = default_status() == dg.DefaultScheduleStatus.RUNNING
    return dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED


def folder_families(folder: str) -> list[str]:
    """The file families the loader records for a landing folder (in `meta.loaded_files`)."""
    families = [f.name for f in CSV_FAMILIES.values() if f.folder == folder]
    return families + (["app_events"] if folder == APP_EVENTS_FOLDER else [])


def warehouse_hashes(warehouse: WarehouseResource, folder: str) -> dict[str, str]:
    """Relative name -> SHA-256 of every file of this folder whose version the warehouse already holds, read
    read-only; nothing when the warehouse or its file bookkeeping does not exist yet."""
    if not Path(warehouse.path).is_file():
        return {}
    with warehouse.connect(read_only=True) as con:
        if not table_exists(con, "meta.loaded_files"):
            return {}
        return {rel: digest for family in folder_families(folder)
                for rel, digest in store.loaded_hashes(con, family).items()}


def scan(
    landing_dir: Path, folder: str, seen: dict[str, list], loaded: dict[str, str] | None = None
) -> tuple[dict[str, list], list[str]]:
    """Every file's [size, mtime_ns, content hash] now, and the names that are new or whose content changed.

    A file whose size and mtime are unchanged is not read again; a touched or re-delivered identical file
    (new mtime, same hash) is remembered without counting as changed. A file the cursor does not know counts
    as seen when `loaded` (relative name -> SHA-256 in the warehouse) holds this very version.
    """
    loaded = loaded or {}
    current: dict[str, list] = {}
    changed: list[str] = []
    for rel, path in landing_files(landing_dir, folder):
        st = path.stat()
        before = seen.get(rel)
        if before and before[0] == st.st_size and before[1] == st.st_mtime_ns:
            current[rel] = before
            continue
        digest = sha256_file(path)
        current[rel] = [st.st_size, st.st_mtime_ns, digest[:HASH_CHARS]]
        new_version = before[2] != digest[:HASH_CHARS] if before else loaded.get(rel) != digest
        if new_version:
            changed.append(rel)
    return current, changed


def run_key(source: str, current: dict[str, list], changed: list[str]) -> str:
    """The same file set never starts two runs; a later correction (new mtime and hash) gets its own key."""
    state = json.dumps([[rel, *current[rel]] for rel in sorted(changed)])
    return f"{source}:{hashlib.sha1(state.encode()).hexdigest()[:20]}"


def landing_sensor(source: str) -> dg.SensorDefinition:
    folder = LANDING_FOLDERS[source]

    @dg.sensor(
        name=f"{source}_landing_sensor", job=SOURCE_JOBS[source], minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=_sensor_status(),
        description=f"Starts {source}_job as soon as a new or corrected file lands in {folder}/.",
    )
    def _sensor(context: dg.SensorEvaluationContext, sources: SourcesResource, warehouse: WarehouseResource):
        # First tick (no cursor: a new deployment, `make ui` after `make demo`, a reset sensor): the file versions
        # the warehouse already holds count as seen, so they start no run (it would load nothing and rebuild
        # everything downstream); new and corrected files do.
        first = not context.cursor
        seen = {} if first else json.loads(context.cursor)
        loaded = warehouse_hashes(warehouse, folder) if first else {}
        current, changed = scan(Path(sources.landing_dir), folder, seen, loaded)
        cursor = json.dumps(current, sort_keys=True)
        if first:
            context.log.info(f"first tick: {len(current) - len(changed)} of {len(current)} file(s) in {folder}/ "
                             "already in the warehouse, taken as seen")
        if not changed:
            held = f" ({len(current)} already in the warehouse)" if first and current else ""
            return dg.SensorResult(skip_reason=f"no new or corrected file in {folder}/{held}", cursor=cursor)
        context.log.info(f"{len(changed)} new or corrected file(s) in {folder}/: {changed[:10]}")
        request = dg.RunRequest(
            run_key=run_key(source, current, changed),
            tags={"landing_files": str(len(changed)), "landing_first_file": changed[0]},
        )
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return _sensor


pos_landing_sensor = landing_sensor("pos")
call_center_landing_sensor = landing_sensor("call_center")
app_landing_sensor = landing_sensor("app")
suppression_landing_sensor = landing_sensor("suppression")


def downstream_sensor(name: str = "downstream_automation_sensor") -> dg.AutomationConditionSensorDefinition:
    # default_condition and use_user_code_server are beta in 1.13: chosen knowingly (docs/automation.md)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.AutomationConditionSensorDefinition(
            name,
            target=DOWNSTREAM,
            run_tags=WAREHOUSE_TAGS,
            default_status=_sensor_status(),
            minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
            use_user_code_server=True,
            default_condition=DOWNSTREAM_CONDITION,
            description="Staging, quality, identity, gold, freshness and publish follow their upstreams (eager, "
            "held back by failed blocking checks); an asset's own automation_condition wins over this default.",
        )


downstream_automation_sensor = downstream_sensor()
