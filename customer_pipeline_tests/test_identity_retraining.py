"""The deployment's own model: trained on the first run against a warehouse, kept as versions there, retrained on purpose."""

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from customer_pipeline.cli import main
from customer_pipeline.defs.identity.training import ModelConfig, splink_model
from customer_pipeline.defs.resources import WarehouseResource

pytestmark = pytest.mark.slow


def _versions(wh: Path) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute("SELECT version, records, fingerprint FROM identity.splink_models ORDER BY version").fetchall()


def test_first_run_trains_on_the_warehouse_then_runs_load_it_and_retraining_adds_a_version(tmp_path, monkeypatch):
    landing, wh = tmp_path / "landing", tmp_path / "w.duckdb"
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("CUSTOMER_PIPELINE_MODEL_PATH", raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(landing))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(wh))
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    assert main(["sample", "--persons", "800", "--seed", "3", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    assert main(["run"]) == 0
    versions = _versions(wh)
    assert [v[0] for v in versions] == [1]  # trained on this warehouse's records, on its first run
    assert '"fill"' in versions[0][2] and versions[0][1] > 1000
    drawn = {p.name: p.stat().st_mtime for p in (tmp_path / "artifacts" / "identity").glob("*.html")}
    assert set(drawn) == {"match_weights.html", "m_u_parameters.html", "comparison_viewer.html", "cluster_studio.html"}

    assert main(["run"]) == 0
    assert [v[0] for v in _versions(wh)] == [1]  # a run never retrains

    resources = {"warehouse": WarehouseResource(path=str(wh))}
    result = dg.materialize([splink_model], resources=resources,
                            run_config={"ops": {"identity__splink_model": {"config": ModelConfig(retrain=True).model_dump()}}})
    assert result.success
    assert [v[0] for v in _versions(wh)] == [1, 2]
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert meta["trained_this_run"].value is True and meta["model_version"].value == 2
    for name in ("match_weights", "m_u_parameters", "comparison_viewer", "cluster_studio"):
        path = meta[f"chart_{name}"].value.removeprefix("file://")
        html = open(path, encoding="utf-8").read()
        assert len(html) > 10_000 and 'src="http' not in html  # offline: scripts are inlined
        assert Path(path).stat().st_mtime >= drawn[Path(path).name]  # redrawn with the new model
    assert main(["run"]) == 0
    assert [v[0] for v in _versions(wh)] == [1, 2]
