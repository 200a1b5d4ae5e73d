"""The identity stage's scoring on Spark (Splink's Spark backend): the same model, the same links frame.

`linking.predict` / `linking.predict_new` come here when `CUSTOMER_PIPELINE_ENGINE=spark`. The matching
frame (`splink_model.prepare`) is written as Parquet to a work directory and read by Spark; the model
JSON is the DuckDB one, its level conditions turned into Spark SQL by `splink_model.model_in_dialect`
(one definition in `splink_model.comparisons()`, two dialects); the scored pairs go back as Parquet and
DuckDB turns them into the links frame with `linking._links_sql`, so `comparison_detail` is the same
text on both engines. Settings (environment, docs/scale-out.md):

- `SPARK_MASTER` (default `local[2]`; `spark.master` of an existing session, e.g. spark-submit or
  Databricks, wins: an active session is reused as it is);
- `CUSTOMER_PIPELINE_SPARK_DRIVER_MEMORY` (default `2g`), `CUSTOMER_PIPELINE_SPARK_SHUFFLE_PARTITIONS`
  (default 4 in local mode, 200 on a cluster);
- `CUSTOMER_PIPELINE_SPARK_WORK_DIR`: Parquet exchange and Splink's checkpoints (default: the system
  temp dir). On a cluster it must be storage the driver and the executors share.
- `CUSTOMER_PIPELINE_SPARK_CONF`: more Spark settings, `key=value` separated by `;`.
"""

import functools
import glob
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from customer_pipeline.identity import linking
from customer_pipeline.identity import splink_model as sm
from customer_pipeline.identity.clustering import LINK_COLUMNS
from customer_pipeline.settings import env, positive_int

logger = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"
LOCAL_SHUFFLE_PARTITIONS = 4


def similarity_jar(spark_version: str) -> str:
    """Splink's similarity-function jar for this Spark major version (`similarity_jar_location()`
    returns one path; it is checked, and the matching jar of splink's package folder taken if it differs)."""
    import splink
    from splink.backends.spark import similarity_jar_location

    major = spark_version.split(".")[0]
    path = similarity_jar_location()
    if path.endswith(f"_spark{major}.x.jar") and os.path.exists(path):
        return path
    folder = Path(splink.__file__).parent / "internals" / "files" / "spark_jars"
    candidates = sorted(glob.glob(str(folder / f"*_spark{major}.x.jar")))
    if not candidates:
        raise RuntimeError(f"splink ships no similarity jar for Spark {major}.x in {folder}")
    return candidates[-1]


def work_dir() -> Path:
    path = Path(env("CUSTOMER_PIPELINE_SPARK_WORK_DIR") or Path(tempfile.gettempdir()) / "customer_pipeline_spark")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _extra_conf() -> dict[str, str]:
    pairs = [p.split("=", 1) for p in (env("CUSTOMER_PIPELINE_SPARK_CONF") or "").split(";") if "=" in p]
    return {k.strip(): v.strip() for k, v in pairs}


@functools.cache
def session():
    """The Spark session of this process: an active one as it is (spark-submit, Databricks), else one
    built from the settings. Built once: a session costs seconds to start."""
    from customer_pipeline.compat import pyspark_import_guard

    with pyspark_import_guard():
        import pyspark
        from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        spark = active
    else:
        master = env("SPARK_MASTER", DEFAULT_MASTER)
        local = master.startswith("local")
        builder = (
            SparkSession.builder.appName("customer_pipeline identity")
            .master(master)
            .config("spark.jars", similarity_jar(pyspark.__version__))
            .config("spark.driver.memory", env("CUSTOMER_PIPELINE_SPARK_DRIVER_MEMORY", "2g"))
            .config("spark.sql.shuffle.partitions", str(positive_int(
                "CUSTOMER_PIPELINE_SPARK_SHUFFLE_PARTITIONS", LOCAL_SHUFFLE_PARTITIONS if local else 200)))
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            # Every blocking rule joins the whole population with itself: broadcasting it to each of ~45
            # joins ran out of driver memory at 97,000 records (2g); sort-merge joins cost no more at 1,000.
            .config("spark.sql.autoBroadcastJoinThreshold", "-1")
        )
        if local:
            # Python UDF workers run this interpreter (the venv's), not whatever `python3` is on PATH.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = builder.config("spark.local.dir", str(work_dir() / "spark-local"))
        for key, value in _extra_conf().items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
    _register_functions(spark)
    spark.sparkContext.setCheckpointDir(str(work_dir() / "checkpoints"))
    return spark


def _register_functions(spark) -> None:
    """`cp_jaro_winkler`: DuckDB's `jaro_winkler_similarity` (jellyfish gives the same values: checked on
    40,000 typo pairs), null when either side is. Defined here so it is shipped by value: executors need
    pandas and jellyfish, not this package."""
    from pyspark.sql.functions import pandas_udf

    def jaro_winkler(a: pd.Series, b: pd.Series) -> pd.Series:
        import jellyfish

        return pd.Series([jellyfish.jaro_winkler_similarity(x, y) if isinstance(x, str) and isinstance(y, str)
                          else None for x, y in zip(a, b)], dtype="float64")

    spark.udf.register(sm.SPARK_JARO_WINKLER, pandas_udf(jaro_winkler, "double"))


@contextmanager
def spark_job() -> Iterator[tuple[object, Path]]:
    """A SparkAPI over the shared session and a job directory (Parquet exchange, checkpoints), removed after."""
    from splink.backends.spark import SparkAPI

    spark = session()
    job = work_dir() / f"job-{uuid.uuid4().hex[:12]}"
    job.mkdir(parents=True)
    spark.sparkContext.setCheckpointDir(str(job / "checkpoints"))
    try:
        yield SparkAPI(spark_session=spark, break_lineage_method="parquet"), job
    finally:
        for table in spark.catalog.listTables():
            if table.isTemporary and (table.name.startswith("__splink") or table.name in _INPUT_VIEWS):
                spark.catalog.dropTempView(table.name)
        spark.catalog.clearCache()
        shutil.rmtree(job, ignore_errors=True)


_INPUT_VIEWS = {"person_records", "new_records", "existing_records", "cluster_nodes", "cluster_edges"}


def _export(frame: pd.DataFrame, path: Path) -> str:
    frame.to_parquet(path, index=False)
    return str(path)


def _links(db_api, job: Path, predictions, names: list[str], tf_names: set[str], tag: str) -> pd.DataFrame:
    """The links frame of Splink's predictions on Spark: the needed columns written as Parquet, then
    `linking._links_sql` on them in DuckDB (the same SQL, so the same text in `comparison_detail`)."""
    columns = ["record_id_l", "record_id_r", "match_weight", "match_probability",
               *[f"mw_{n}" for n in names], *[f"mw_tf_adj_{n}" for n in sorted(tf_names)]]
    out = job / f"links_{tag}"
    db_api.spark.table(predictions.physical_name).select(*columns).write.mode("overwrite").parquet(str(out))
    con = duckdb.connect()
    try:
        source = f"read_parquet('{out.as_posix()}/*.parquet')"
        if not list(out.glob("*.parquet")):
            return pd.DataFrame({c: pd.Series(dtype="object") for c in LINK_COLUMNS})
        return con.execute(linking._links_sql(source, names, tf_names)).df()
    finally:
        con.close()


def _names(linker) -> tuple[list[str], set[str]]:
    comps = linker._settings_obj.comparisons
    return [c.output_column_name for c in comps], {c.output_column_name for c in comps if c._has_tf_adjustments}


def _typed(links: pd.DataFrame) -> pd.DataFrame:
    links["match_weight"] = links["match_weight"].astype("float64")
    links["match_probability"] = links["match_probability"].astype("float64")
    return links


def predict(records: pd.DataFrame, model_path, threshold_match_weight: float = linking.DEFAULT_REVIEW_LOW_WEIGHT,
            reestimate_prior: bool | None = None, prepared: pd.DataFrame | None = None) -> pd.DataFrame:
    """`linking.predict` on Spark: the same pairs, weights and links frame (attrs included)."""
    started = time.perf_counter()
    model = linking.load_model(model_path)
    prepared = sm.prepare(records) if prepared is None else prepared
    if len(prepared) < 2:
        return linking.no_links()
    scaled = linking.prior_for(model, len(prepared))
    if scaled is not None:
        model = {**model, "probability_two_random_records_match": scaled}
    with spark_job() as (db_api, job):
        frame = db_api.spark.read.parquet(_export(prepared, job / "person_records.parquet"))
        table = db_api.register(frame, dataset_display_name="person_records")
        linker = sm.new_linker(db_api, table, model)
        large = len(prepared) >= linking.REESTIMATE_PRIOR_FROM_ROWS
        if reestimate_prior or (reestimate_prior is None and scaled is None and large):
            linker.training.estimate_probability_two_random_records_match(
                sm.deterministic_rules_for_prior(), recall=linking.PRIOR_RULES_RECALL
            )
        blocked = linker.inference.compute_blocked_pairs_for_predict()
        by_key = {int(k): int(n) for k, n in db_api.spark.sql(
            f"SELECT CAST(match_key AS INT), count(*) FROM {blocked.physical_name} GROUP BY 1").collect()}
        pairs_compared = sum(by_key.values())
        predictions = linker.inference.predict(threshold_match_weight=threshold_match_weight, warning_mode="never")
        names, tf_names = _names(linker)
        links = _typed(_links(db_api, job, predictions, names, tf_names, "all"))
    links.attrs["pairs_compared"] = int(pairs_compared)
    links.attrs["pairs_by_rule"] = linking.pairs_by_rule(by_key, model)
    logger.info("Splink on Spark compared %d pairs of %d records, kept %d links with match weight >= %s in %.1fs",
                pairs_compared, len(prepared), len(links), threshold_match_weight, time.perf_counter() - started)
    return links[LINK_COLUMNS]


def predict_new(records: pd.DataFrame, new_ids, model_path,
                threshold_match_weight: float = linking.DEFAULT_REVIEW_LOW_WEIGHT,
                prepared: pd.DataFrame | None = None) -> pd.DataFrame:
    """`linking.predict_new` on Spark: new records among themselves and against the others, with the
    whole population's term frequencies and prior."""
    started = time.perf_counter()
    model = linking.load_model(model_path)
    prepared = sm.prepare(records) if prepared is None else prepared
    is_new = prepared[sm.UNIQUE_ID].isin(set(new_ids))
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in LINK_COLUMNS})
    empty.attrs["new_records"] = int(is_new.sum())
    if not is_new.any() or len(prepared) < 2:
        return empty
    scaled = linking.prior_for(model, len(prepared))
    if scaled is not None:
        model = {**model, "probability_two_random_records_match": scaled}
    with spark_job() as (db_api, job):
        flagged = prepared.assign(is_new__=is_new.to_numpy())
        frame = db_api.spark.read.parquet(_export(flagged, job / "person_records.parquet"))
        table = db_api.register(frame.drop("is_new__"), dataset_display_name="person_records")
        linker = sm.new_linker(db_api, table, model)
        for column in linker._settings_obj._term_frequency_columns:
            linker.table_management.compute_tf_table(column.unquote().name)
        names, tf_names = _names(linker)
        new = db_api.register(frame.where("is_new__").drop("is_new__"), dataset_display_name="new_records")
        scored = [("within", linker.inference.predict_within(new, threshold_match_weight=threshold_match_weight,
                                                             warning_mode="never"))]
        if (~is_new).any():
            existing = db_api.register(frame.where("NOT is_new__").drop("is_new__"),
                                       dataset_display_name="existing_records")
            scored.append(("between", linker.inference.predict_between(
                existing, new, threshold_match_weight=threshold_match_weight, warning_mode="never")))
        frames = [_links(db_api, job, p, names, tf_names, tag) for tag, p in scored]
    links = pd.concat([f for f in frames if len(f)] or [empty], ignore_index=True)
    links = _typed(links.sort_values(["record_id_l", "record_id_r"], ignore_index=True))
    links.attrs["new_records"] = int(is_new.sum())
    logger.info("Splink on Spark scored %d new of %d records, kept %d links with match weight >= %s in %.1fs",
                int(is_new.sum()), len(prepared), len(links), threshold_match_weight, time.perf_counter() - started)
    return links[LINK_COLUMNS]


# --- clustering on Spark -----------------------------------------------------------------------------------

_PEOPLE_COLUMNS = ["first_name_norm", "first_name_group", "last_name_norm", "birth_date"]
_CLUSTER_OUT = ("kind__ string, record_id string, cluster_key string, match_probability double, "
                "record_id_l string, record_id_r string, match_weight double, link_type string, "
                "comparison_detail string, reason string, cluster_key_l string, cluster_key_r string, "
                "same_cluster boolean")
_CLUSTER_COLUMNS = [c.split(" ")[0] for c in _CLUSTER_OUT.split(", ")]


def _group_clusterer(accept_weight: float, review_low_weight: float, name_only_accept_weight: float | None,
                     with_people: bool):
    """The function each Spark task runs on one group of whole components: `clustering.cluster` on them.
    The rows of a group are its records (`kind__` r), links (l) and decisions (d); out come its clusters
    (c) and review pairs (q) in one frame. Executors need this package (docs/scale-out.md)."""

    def run(frame: pd.DataFrame) -> pd.DataFrame:
        from customer_pipeline.identity import clustering

        recs = frame[frame["kind__"] == "r"]
        links = frame.loc[frame["kind__"] == "l", LINK_COLUMNS]
        decided = frame.loc[frame["kind__"] == "d", ["record_id_l", "record_id_r", "decision", "decided_at", "seq__"]]
        decided = decided.sort_values("seq__").drop(columns="seq__") if len(decided) else None
        clusters, review = clustering.cluster(
            recs["record_id"], links, accept_weight, review_low_weight, decided,
            evidence=recs[["record_id", "evidence"]].dropna(subset=["evidence"]),
            name_only_accept_weight=name_only_accept_weight,
            people=recs[["record_id", *_PEOPLE_COLUMNS]] if with_people else None)
        out = pd.concat([clusters.assign(kind__="c"), review.assign(kind__="q")], ignore_index=True)
        out = out.reindex(columns=_CLUSTER_COLUMNS)
        for c in _CLUSTER_COLUMNS:  # Arrow-backed text (chunked) is not something Spark's converter takes
            if c not in ("match_probability", "match_weight", "same_cluster"):
                out[c] = out[c].astype(object).where(out[c].notna(), None)
        out["same_cluster"] = out["same_cluster"].astype("boolean")
        for c in ("match_probability", "match_weight"):
            out[c] = out[c].astype("float64")
        return out

    return run


def cluster(record_ids, links: pd.DataFrame | None, accept_weight: float, review_low_weight: float,
            decisions: pd.DataFrame | None = None, *, evidence: pd.DataFrame | None = None,
            name_only_accept_weight: float | None = None, people: pd.DataFrame | None = None,
            groups: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`clustering.cluster` on Spark, with the same result.

    The connected components of every link and decision (Splink's `cluster_pairwise_predictions_at_threshold`
    on the SparkAPI, no threshold) are the units the clustering never joins nor cuts across
    (`incremental.components`); they are spread over `groups` groups (default: twice the default
    parallelism), and each group is clustered by `clustering.cluster` in a Spark task (`applyInPandas`).
    Edges are ordered by record id inside the clustering, so a group's result does not depend on which
    other components share it."""
    from pyspark.sql import functions as F
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    from customer_pipeline.identity import clustering

    ids = pd.Series(record_ids, dtype=object).dropna().astype(str).drop_duplicates()
    links = clustering.empty_links() if links is None or links.empty else links.reindex(columns=LINK_COLUMNS)
    if len(ids) == 0:
        return clustering.cluster(ids, links, accept_weight, review_low_weight, decisions, evidence=evidence,
                                  name_only_accept_weight=name_only_accept_weight, people=people)
    started = time.perf_counter()
    recs = pd.DataFrame({"record_id": ids.to_numpy()})
    if evidence is not None and len(evidence):
        recs = recs.merge(evidence[["record_id", "evidence"]].astype({"record_id": str}).drop_duplicates("record_id"),
                          on="record_id", how="left")
    else:
        recs["evidence"] = None
    if people is not None:
        cols = ["record_id", *_PEOPLE_COLUMNS]
        recs = recs.merge(people.reindex(columns=cols).astype("string").astype(object)
                          .drop_duplicates("record_id"), on="record_id", how="left")
    dec = clustering._decisions_frame(decisions).rename(columns={"seq": "seq__"})
    links = links.assign(match_weight=links["match_weight"].astype(float),
                         match_probability=links["match_probability"].astype(float))
    with spark_job() as (db_api, job):
        spark = db_api.spark
        nodes = spark.read.parquet(_export(recs.astype({c: "string" for c in recs.columns}),
                                           job / "cluster_records.parquet"))
        link_frame = spark.read.parquet(_export(clustering.typed_frame(
            links, ["record_id_l", "record_id_r", "link_type", "comparison_detail"], []).assign(
            match_weight=links["match_weight"].to_numpy(), match_probability=links["match_probability"].to_numpy()),
            job / "cluster_links.parquet"))
        dec_frame = spark.read.parquet(_export(dec, job / "cluster_decisions.parquet"))
        edges = (link_frame.select("record_id_l", "record_id_r")
                 .unionByName(dec_frame.select("record_id_l", "record_id_r"))
                 .join(nodes.select(F.col("record_id").alias("record_id_l")), "record_id_l", "left_semi")
                 .join(nodes.select(F.col("record_id").alias("record_id_r")), "record_id_r", "left_semi")
                 .where("record_id_l <> record_id_r").distinct())
        cc = cluster_pairwise_predictions_at_threshold(
            db_api.register(nodes.select("record_id"), dataset_display_name="cluster_nodes"),
            db_api.register(edges, dataset_display_name="cluster_edges"), db_api,
            node_id_column_name="record_id", edge_id_column_name_left="record_id_l",
            edge_id_column_name_right="record_id_r")
        n_groups = groups or max(2 * spark.sparkContext.defaultParallelism, 2)
        comp = spark.table(cc.physical_name).select(
            "record_id", F.pmod(F.xxhash64("cluster_id"), F.lit(n_groups)).alias("group__"))
        by_left = comp.withColumnRenamed("record_id", "record_id_l")
        rows = (nodes.join(comp, "record_id").withColumn("kind__", F.lit("r"))
                .unionByName(link_frame.join(by_left, "record_id_l").withColumn("kind__", F.lit("l")),
                             allowMissingColumns=True)
                .unionByName(dec_frame.join(by_left, "record_id_l").withColumn("kind__", F.lit("d")),
                             allowMissingColumns=True))
        run = _group_clusterer(float(accept_weight), float(review_low_weight),
                               None if name_only_accept_weight is None else float(name_only_accept_weight),
                               people is not None)
        out_path = job / "clusters_out"
        rows.groupBy("group__").applyInPandas(run, _CLUSTER_OUT).write.mode("overwrite").parquet(str(out_path))
        out = (pd.read_parquet(out_path) if list(out_path.glob("*.parquet"))
               else pd.DataFrame(columns=_CLUSTER_COLUMNS))
    clusters = (out.loc[out["kind__"] == "c", ["record_id", "cluster_key", "match_probability"]]
                .sort_values("record_id", ignore_index=True))
    review = out.loc[out["kind__"] == "q", clustering.REVIEW_COLUMNS].sort_values(
        ["reason", "match_weight", "record_id_l", "record_id_r"], ascending=[False, False, True, True],
        ignore_index=True)
    review["same_cluster"] = review["same_cluster"].astype(bool)
    logger.info("clustered %d records (%d links) on Spark in %d groups in %.1fs", len(ids), len(links), n_groups,
                time.perf_counter() - started)
    return clusters, review


def score_files(records_path: str, model_path: str, out_path: str, new_ids_path: str | None = None,
                threshold_match_weight: float = linking.DEFAULT_REVIEW_LOW_WEIGHT) -> pd.DataFrame:
    """The job side of a cluster run: `staging.person_records` rows (Parquet) and a model JSON in, the
    links frame (Parquet, attrs as `<out>.json`) out; with `new_ids_path` (Parquet, column `record_id`)
    only the pairs that touch those records (`predict_new`). Paths on storage the job's driver can read."""
    import json

    records = pd.read_parquet(records_path)
    model = linking.load_model(model_path)
    if new_ids_path:
        links = predict_new(records, pd.read_parquet(new_ids_path)[sm.UNIQUE_ID], model, threshold_match_weight)
    else:
        links = predict(records, model, threshold_match_weight)
    links.to_parquet(out_path, index=False)
    Path(str(out_path) + ".json").write_text(json.dumps(links.attrs), encoding="utf-8")
    return links


def main(argv: list[str] | None = None) -> int:
    """Score on the cluster this runs on (spark-submit, a Databricks or EMR job launched by a Dagster Pipes
    client); with a Pipes context the counts go back to Dagster as a custom message."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--records", required=True, help="staging.person_records as Parquet")
    parser.add_argument("--model", required=True, help="the model JSON (identity.splink_models.model)")
    parser.add_argument("--out", required=True, help="where the links Parquet goes")
    parser.add_argument("--new-ids", default=None, help="Parquet with the new records' record_id (incremental run)")
    parser.add_argument("--threshold", type=float, default=linking.DEFAULT_REVIEW_LOW_WEIGHT)
    args, pipes_args = parser.parse_known_args(argv)  # a Pipes client may add --dagster-pipes-* arguments
    pipes = None
    if os.environ.get("DAGSTER_PIPES_CONTEXT") or any(a.startswith("--dagster-pipes") for a in pipes_args):
        from dagster_pipes import open_dagster_pipes

        pipes = open_dagster_pipes()
    try:
        links = score_files(args.records, args.model, args.out, args.new_ids, args.threshold)
        summary = {"links": len(links), **{k: v for k, v in links.attrs.items() if isinstance(v, int)}}
        if pipes is not None:
            pipes.log.info(f"identity scoring on Spark: {summary}")
            pipes.report_custom_message(summary)
        print(summary)
    finally:
        if pipes is not None:
            pipes.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
