"""End-to-end accuracy floor: the real pipeline on a generated sample, scored against its truth file.

The floors sit a little below what the packaged model measures on this sample (800 persons, seed 11:
see docs/identity.md), so a change that costs accuracy fails here before it reaches the benchmark.
"""

import duckdb
import pytest

from customer_pipeline.cli import main
from customer_pipeline.identity.evaluation import baseline_clusters, pairwise_scores

PERSONS, SEED = 800, 11
MIN_PRECISION = 0.98
MIN_RECALL = 0.97


@pytest.fixture
def settings_env(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for name in ("CUSTOMER_PIPELINE_MODEL_PATH", "CUSTOMER_PIPELINE_ACCEPT_WEIGHT",
                 "CUSTOMER_PIPELINE_REVIEW_LOW_WEIGHT", "CUSTOMER_PIPELINE_NAME_ONLY_ACCEPT_WEIGHT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    return tmp_path


@pytest.mark.slow
def test_pipeline_accuracy_floor_and_beats_the_baseline(settings_env):
    landing = settings_env / "landing"
    assert main(["sample", "--persons", str(PERSONS), "--seed", str(SEED), "--out", str(landing),
                 "--as-of", "2026-11-01"]) == 0
    assert main(["run"]) == 0
    with duckdb.connect(str(settings_env / "w.duckdb"), read_only=True) as con:
        con.execute(f"CREATE TEMP VIEW truth AS SELECT source || '|' || source_key AS record_key, person_id AS person "
                    f"FROM read_csv('{landing / 'truth.csv'}', all_varchar = true)")
        con.execute("CREATE TEMP VIEW pipeline AS "
                    "SELECT record_id AS record_key, customer_id AS cluster FROM gold.customer_xref")
        ours = pairwise_scores(con, "pipeline", "truth")
        records = con.execute("SELECT source, source_key, email_corrected, phone_e164 FROM staging.person_records").df()
        con.register("baseline", baseline_clusters(records))
        base = pairwise_scores(con, "baseline", "truth")
    summary = (f"pipeline P {ours['precision']:.4f} R {ours['recall']:.4f} F1 {ours['f1']:.4f}; "
               f"baseline P {base['precision']:.4f} R {base['recall']:.4f} F1 {base['f1']:.4f}")
    assert ours["records"] > PERSONS, summary
    assert ours["true_pairs"] > 0, summary
    assert ours["precision"] >= MIN_PRECISION, summary
    assert ours["recall"] >= MIN_RECALL, summary
    assert ours["f1"] > base["f1"] + 0.03, summary
    assert ours["recall"] > base["recall"], summary
