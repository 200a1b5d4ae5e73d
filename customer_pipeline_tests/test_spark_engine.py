"""The Spark engine (Splink's Spark backend, local mode) scores like the DuckDB engine: same pairs, same
weights, same customers. One Spark session for the module (it costs seconds to start)."""

import json

import duckdb
import pandas as pd
import pyspark  # the `spark` extra (pip install -e ".[spark]"; `make install` includes it)
import pytest

from benchmarks import engine_parity
from customer_pipeline.identity import linking
from customer_pipeline.identity import spark_engine
from customer_pipeline.identity import splink_model as sm
from customer_pipeline_tests.test_identity_linking import household_and_namesakes, make_fixture

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")]


@pytest.fixture(scope="module", autouse=True)
def spark_work_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CUSTOMER_PIPELINE_SPARK_WORK_DIR", str(tmp_path_factory.mktemp("spark")))
        mp.delenv("SPARK_MASTER", raising=False)
        yield


@pytest.fixture(scope="module")
def trained():
    records, _ = make_fixture()
    records = pd.concat([records, household_and_namesakes()], ignore_index=True)
    return records, linking.train(records, u_max_pairs=2e5)


def _compare(duck: pd.DataFrame, spark: pd.DataFrame, accept: float = linking.DEFAULT_ACCEPT_WEIGHT) -> dict:
    keys = ["record_id_l", "record_id_r"]
    merged = duck.merge(spark, on=keys, how="outer", suffixes=("_d", "_s"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    accepted_d = set(map(tuple, duck.loc[duck["match_weight"] >= accept, keys].to_numpy()))
    accepted_s = set(map(tuple, spark.loc[spark["match_weight"] >= accept, keys].to_numpy()))
    return {
        "only_duckdb": merged.loc[merged["_merge"] == "left_only", keys].to_numpy().tolist(),
        "only_spark": merged.loc[merged["_merge"] == "right_only", keys].to_numpy().tolist(),
        "max_weight_diff": float((both["match_weight_d"] - both["match_weight_s"]).abs().max()),
        "detail_differs": both.loc[both["comparison_detail_d"] != both["comparison_detail_s"], keys].to_numpy().tolist(),
        "accepted_agreement": len(accepted_d & accepted_s) / max(len(accepted_d | accepted_s), 1),
        "accepted_differences": sorted(accepted_d ^ accepted_s),
    }


def test_the_similarity_jar_matches_the_spark_major_version():
    jar = spark_engine.similarity_jar(pyspark.__version__)
    assert jar.endswith(f"_spark{pyspark.__version__.split('.')[0]}.x.jar")


def test_every_level_has_a_spark_form_and_duckdb_sql_is_unchanged():
    mapping = sm.level_sql_in_dialect("spark")
    duck = [lvl["sql_condition"] for c in linking.settings()["comparisons"] for lvl in c["comparison_levels"]]
    assert set(duck) == set(mapping)
    spark_sql = " ".join(mapping.values())
    for duckdb_only in ("jaro_winkler_similarity", "list_has_any", "regexp_matches", "//", "'g')"):
        assert duckdb_only not in spark_sql
    assert sm.EMAIL_TYPO_SQL in duck and sm.SWAPPED_NAMES_SQL in " ".join(duck)


def test_an_unknown_level_is_refused_on_spark(trained):
    _, model = trained
    model = {**model, "comparisons": [{**model["comparisons"][0], "comparison_levels": [
        {**model["comparisons"][0]["comparison_levels"][1], "sql_condition": "soundex(a_l) = soundex(a_r)"}]}]}
    with pytest.raises(ValueError, match="retrain"):
        sm.model_in_dialect(model, "spark")


def test_spark_jaro_winkler_equals_duckdbs():
    pairs = [("martha", "marhta"), ("hhpkcifct", "hhpkcitfc"), ("johannes", "vanorleans"), ("müller", "muller"),
             ("dixon", "dicksonx"), ("a", "a"), (None, "anna"), ("luzia", "luciano"), ("katharina", "catharina")]
    spark = spark_engine.session()
    frame = spark.createDataFrame(pairs, "a string, b string")
    frame.createOrReplaceTempView("jw_pairs")
    got = spark.sql(f"SELECT a, b, {sm.SPARK_JARO_WINKLER}(a, b) AS jw FROM jw_pairs").toPandas()
    con = duckdb.connect()
    con.register("got", got)
    rows = con.execute("SELECT a, b, jw, jaro_winkler_similarity(a, b) FROM got").fetchall()
    for a, b, jw, expected in rows:
        assert (jw is None and expected is None) or abs(jw - expected) < 1e-12, (a, b, jw, expected)


def test_spark_and_duckdb_score_the_same_pairs_with_the_same_weights(trained, tmp_path):
    """Every candidate pair (threshold -50), scored through the job entrypoint a cluster run uses
    (records and model as files in, links Parquet out); the pipeline's own dispatch is covered below."""
    records, model = trained
    (tmp_path / "model.json").write_text(json.dumps(model), encoding="utf-8")
    records.to_parquet(tmp_path / "records.parquet", index=False)
    assert spark_engine.main(["--records", str(tmp_path / "records.parquet"), "--model", str(tmp_path / "model.json"),
                              "--out", str(tmp_path / "links.parquet"), "--threshold", "-50"]) == 0
    spark = pd.read_parquet(tmp_path / "links.parquet")
    attrs = json.loads((tmp_path / "links.parquet.json").read_text())
    duck = linking.predict(records, model, threshold_match_weight=-50, engine="duckdb")
    diff = _compare(duck, spark)
    assert list(spark.columns) == list(duck.columns) == linking.LINK_COLUMNS
    assert diff["only_duckdb"] == [] and diff["only_spark"] == [], diff
    assert diff["max_weight_diff"] <= 1e-6, diff
    assert diff["detail_differs"] == [], diff
    assert diff["accepted_agreement"] >= 0.999, diff["accepted_differences"]
    assert attrs["pairs_compared"] == duck.attrs["pairs_compared"] == len(duck) > 1000
    assert attrs["pairs_by_rule"] == duck.attrs["pairs_by_rule"]
    assert (spark["link_type"] == "splink").all() and spark["match_probability"].dtype == "float64"


def test_predict_new_on_spark_equals_duckdbs(trained, monkeypatch):
    records, model = trained
    ids = sm.prepare(records)[sm.UNIQUE_ID]
    new_ids = set(ids.sample(60, random_state=3))
    duck = linking.predict_new(records, new_ids, model, engine="duckdb")
    monkeypatch.setenv("CUSTOMER_PIPELINE_ENGINE", "spark")  # the setting, as the pipeline reads it
    spark = linking.predict_new(records, new_ids, model)
    diff = _compare(duck, spark)
    assert len(duck) > 20
    assert diff["only_duckdb"] == [] and diff["only_spark"] == [] and diff["detail_differs"] == [], diff
    assert diff["max_weight_diff"] <= 1e-6
    assert spark.attrs["new_records"] == duck.attrs["new_records"] == 60
    assert list(spark[["record_id_l", "record_id_r"]].itertuples(index=False)) == \
        list(duck[["record_id_l", "record_id_r"]].itertuples(index=False))


def _review_set(review: pd.DataFrame) -> set[tuple]:
    return {(r.record_id_l, r.record_id_r, r.reason, r.same_cluster, round(float(r.match_weight), 9))
            for r in review.itertuples(index=False)}


@pytest.mark.parametrize("groups", [None, 7])
def test_clustering_on_spark_equals_clustering_in_process(trained, groups):
    """Links, decisions, evidence and people as the pipeline gives them: the same clusters and the same review
    pairs, also when the components are spread over more groups than the default."""
    from customer_pipeline.identity import clustering

    records, model = trained
    records = records.assign(record_id=records["source"].astype(str) + "|" + records["source_key"].astype(str))
    links = linking.predict(records, model, engine="duckdb")
    accepted = links[links["match_weight"] >= linking.DEFAULT_ACCEPT_WEIGHT]
    band = links[links["match_weight"] < linking.DEFAULT_ACCEPT_WEIGHT]
    decisions = pd.DataFrame({
        "record_id_l": [accepted["record_id_l"].iloc[0], band["record_id_l"].iloc[0]],
        "record_id_r": [accepted["record_id_r"].iloc[0], band["record_id_r"].iloc[0]],
        "decision": ["no_match", "match"],
        "decided_at": pd.to_datetime(["2026-11-02", "2026-11-03"], utc=True)})
    args = (records["record_id"], links, linking.DEFAULT_ACCEPT_WEIGHT, linking.DEFAULT_REVIEW_LOW_WEIGHT, decisions)
    kwargs = {"evidence": sm.record_evidence(records), "people": sm.people_for_clustering(records)}
    duck_clusters, duck_review = clustering.cluster(*args, **kwargs)
    spark_clusters, spark_review = spark_engine.cluster(*args, **kwargs, groups=groups)
    assert duck_clusters["cluster_key"].nunique() < len(duck_clusters)
    assert set(duck_review["reason"]) >= {"uncertain", "no_match_conflict"} or len(duck_review) > 5
    pd.testing.assert_frame_equal(spark_clusters.reset_index(drop=True), duck_clusters.reset_index(drop=True),
                                  check_dtype=False)
    assert _review_set(spark_review) == _review_set(duck_review)
    assert list(spark_review.columns) == list(duck_review.columns)


def test_an_unknown_engine_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CUSTOMER_PIPELINE_ENGINE", "polars")
    with pytest.raises(ValueError, match="CUSTOMER_PIPELINE_ENGINE"):
        linking.predict(household_and_namesakes(), {})


def _partition(warehouse) -> set[frozenset]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        xref = con.execute("SELECT customer_id, record_id FROM gold.customer_xref").df()
    return {frozenset(g) for _, g in xref.groupby("customer_id")["record_id"]}


def test_the_pipeline_on_spark_gives_the_same_customers(tmp_path, monkeypatch, capsys):
    from customer_pipeline.cli import main

    landing = tmp_path / "landing"
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(landing))
    monkeypatch.setenv("SHOP_DB_URL", "")
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    assert main(["sample", "--persons", "200", "--seed", "7", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    partitions = {}
    for engine in ("duckdb", "spark"):
        monkeypatch.setenv("CUSTOMER_PIPELINE_ENGINE", engine)
        monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / f"{engine}.duckdb"))
        assert main(["run"]) == 0, capsys.readouterr().err
        partitions[engine] = _partition(tmp_path / f"{engine}.duckdb")
    assert len(partitions["duckdb"]) > 50
    assert partitions["spark"] == partitions["duckdb"], partitions["spark"] ^ partitions["duckdb"]
    # the same golden layer: every column of golden_customers and households (ids matched by their records)
    result = engine_parity.compare(tmp_path / "duckdb.duckdb", tmp_path / "spark.duckdb")
    assert engine_parity.identical(result), result
    assert result["customers"]["same_rows"] == len(partitions["duckdb"]) and result["households"]["same_rows"] > 20
    # ... and the comparison sees a difference where there is one
    changed = tmp_path / "changed.duckdb"
    changed.write_bytes((tmp_path / "spark.duckdb").read_bytes())
    with duckdb.connect(str(changed)) as con:
        con.execute("UPDATE gold.golden_customers SET city = 'Elsewhere' WHERE customer_id = "
                    "(SELECT min(customer_id) FROM gold.golden_customers)")
    result = engine_parity.compare(tmp_path / "duckdb.duckdb", changed)
    assert not engine_parity.identical(result) and result["customers"]["columns_differing"] == {"city": 1}

