"""Retraining the Splink model is its own job: it writes the model JSON and offline HTML charts."""

import json
from pathlib import Path

import dagster as dg
import pytest

from customer_pipeline.cli import main
from customer_pipeline.defs.identity.training import splink_model
from customer_pipeline.defs.resources import WarehouseResource

pytestmark = pytest.mark.slow


def test_retrain_writes_model_and_charts_then_runs_use_it(tmp_path, monkeypatch):
    landing, wh = tmp_path / "landing", tmp_path / "w.duckdb"
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(landing))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(wh))
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_MODEL_PATH", str(tmp_path / "model" / "splink_model.json"))
    monkeypatch.setenv("CUSTOMER_PIPELINE_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    assert main(["sample", "--persons", "800", "--seed", "3", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    # the first run needs a model: the repo's (copied, so the test never rewrites the shipped one)
    from customer_pipeline.identity.linking import MODEL_PATH

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "splink_model.json").write_text(MODEL_PATH.read_text())
    assert main(["run"]) == 0
    # a plain run already draws the charts of the model in use (asset identity/model_charts)
    drawn = {p.name: p.stat().st_mtime for p in (tmp_path / "artifacts" / "identity").glob("*.html")}
    assert set(drawn) == {"match_weights.html", "m_u_parameters.html", "comparison_viewer.html", "cluster_studio.html"}

    result = dg.materialize([splink_model], resources={"warehouse": WarehouseResource(path=str(wh))})
    assert result.success
    model = json.loads((tmp_path / "model" / "splink_model.json").read_text())
    assert model["link_type"] == "dedupe_only" and model["comparisons"]
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    for name in ("match_weights", "m_u_parameters", "comparison_viewer", "cluster_studio"):
        url = meta[f"chart_{name}"].value
        path = url.removeprefix("file://")
        html = open(path, encoding="utf-8").read()
        assert url.startswith("file://") and len(html) > 10_000
        assert 'src="http' not in html  # offline: scripts are inlined
        assert Path(path).stat().st_mtime >= drawn[Path(path).name]  # redrawn with the new model
    assert main(["run"]) == 0
