"""Issue 13: loading a sample in increments gives the customers one full run on all of it gives.

A property over random splits: the landing files (POS days, app-event files, call-center exports) are
shuffled with a seed and delivered in four increments (about 92%, 3%, 3%, 2% of the files), with a
pipeline run after each; then the golden layer is compared with that of one run on every file in a fresh
warehouse: the same customers (record sets of `gold.customer_xref`) and the same golden rows and
households, column by column (`benchmarks/engine_parity.compare`; `updated_at` aside). Both sides use one
model (pinned), so a difference could only come from the incremental path. The increments stay under
`FULL_RESCORE_GROWTH` of growth, so they are scored incrementally (asserted).
"""

import json
import random
import shutil

import duckdb
import pandas as pd
import pytest

from benchmarks import engine_parity
from customer_pipeline.cli import main
from customer_pipeline.identity import model_store

pytestmark = pytest.mark.slow

SPLIT = (0.92, 0.03, 0.03, 0.02)
FOLDERS = ("pos", "app_events", "call_center")


def _use(monkeypatch, landing, warehouse) -> None:
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(landing))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(warehouse))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One sample, one run on all of it; the model it trained, as a file to pin."""
    base = tmp_path_factory.mktemp("equivalence")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("DAGSTER_HOME", raising=False)
        mp.setenv("SHOP_DB_URL", "")
        mp.setenv("CUSTOMER_PIPELINE_PG_URL", "")
        landing = base / "all"
        assert main(["sample", "--persons", "300", "--seed", "11", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
        _use(mp, landing, base / "full.duckdb")
        assert main(["run"]) == 0
        model_path = base / "model.json"
        with duckdb.connect(str(base / "full.duckdb"), read_only=True) as con:
            model_path.write_text(json.dumps(model_store.latest(con).model), encoding="utf-8")
    return base, landing, model_path


@pytest.mark.parametrize("seed", [1, 2])
def test_increments_give_the_customers_of_one_full_run(full_run, seed, tmp_path, monkeypatch):
    base, everything, model_path = full_run
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_MODEL_PATH", str(model_path))
    # the full side with the same pinned model: a fresh warehouse, one run
    full_wh = tmp_path / "full.duckdb"
    _use(monkeypatch, everything, full_wh)
    assert main(["run"]) == 0

    files = sorted(p.relative_to(everything) for folder in FOLDERS for p in (everything / folder).rglob("*") if p.is_file())
    random.Random(seed).shuffle(files)
    landing, wh = tmp_path / "landing", tmp_path / "increments.duckdb"
    landing.mkdir()
    for p in everything.iterdir():  # the shop database, suppression registers, truth files: from the start
        if p.name not in FOLDERS:
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, landing / p.name)
    _use(monkeypatch, landing, wh)
    bounds = [round(sum(SPLIT[: i + 1]) * len(files)) for i in range(len(SPLIT))]
    bounds[-1] = len(files)
    modes, clusterings, households, start = [], [], [], 0
    for end in bounds:
        for rel in files[start:end]:
            (landing / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(everything / rel, landing / rel)
        start = end
        assert main(["run"]) == 0
        with duckdb.connect(str(wh), read_only=True) as con:
            state = dict(con.execute("SELECT key, value FROM identity.scoring_state").fetchall())
            golden = dict(con.execute("SELECT key, value FROM meta.golden_state").fetchall())
        modes.append(state["last_mode"])
        clusterings.append(state["last_clustering"])
        households.append(golden["last_households_decided"])
    assert modes[0] == "full" and "incremental" in modes[1:], modes
    # later increments cluster only what changed, read from the snapshots of the last clustering
    assert clusterings[0] == "components" and set(clusterings[1:]) == {"touched"}, clusterings
    # and households are decided again only for the customers tied to the changed ones
    assert households[0] == "every customer" and all(h.isdigit() for h in households[1:]), households

    result = engine_parity.compare(full_wh, wh)
    assert result["customers"]["rows"] > 250
    assert engine_parity.identical(result), result
    # receipt lines built from the receipts of each increment's new files: the lines of one full build
    lines = []
    for path in (full_wh, wh):
        with duckdb.connect(str(path), read_only=True) as con:
            lines.append(con.execute("SELECT * FROM staging.pos_transactions ORDER BY ALL").df())
    assert len(lines[0]) > 1000
    pd.testing.assert_frame_equal(lines[0], lines[1])
