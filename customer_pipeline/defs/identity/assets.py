"""Identity resolution: deterministic links, Splink scoring, clustering with review decisions, stable ids."""

import datetime as dt

import dagster as dg
import pandas as pd

from customer_pipeline.charts import identity as charts
from customer_pipeline.defs.conventions import picture, table_metadata
from customer_pipeline.defs.identity import settings
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.identity import incremental, linking, model_store, store
from customer_pipeline.identity.clustering import cluster
from customer_pipeline.identity.deterministic import deterministic_links
from customer_pipeline.identity.ids import assign_ids
from customer_pipeline.identity.splink_model import people_for_clustering, record_evidence
from customer_pipeline.settings import identity_engine
from customer_pipeline.warehouse import read_df, table_exists, transaction

MODEL_KEY = dg.AssetKey(["identity", "splink_model"])
MODEL_FITS_DATA = "identity_model_fits_data"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def model_metadata(version: model_store.ModelVersion, records: pd.DataFrame) -> dict:
    """What a data engineer needs to trust the model: which version, trained on what, and whether
    today's records still look like that (fields filled, sources)."""
    info = version.model.get("customer_pipeline") or {}
    drift = model_store.drift(version.fingerprint, model_store.fingerprint(records)) if version.fingerprint else []
    return {
        "model_version": dg.MetadataValue.int(version.version),
        "model_source": dg.MetadataValue.text(version.source),
        "model_trained_at": dg.MetadataValue.text(str(version.trained_at)),
        "model_trained_on_records": dg.MetadataValue.int(int(version.fingerprint.get("records", 0))),
        "model_em_rules": dg.MetadataValue.json(info.get("em_rules", [])),
        "model_untrained_comparisons": dg.MetadataValue.json(info.get("untrained_comparisons", [])),
        "model_blocking_keys": dg.MetadataValue.int(len(info.get("blocking_keys", []))),
        "model_drift": dg.MetadataValue.md("\n".join(f"- {d}" for d in drift) if drift else "none: the records look like "
                                           "the training records"),
        "model_drifted": dg.MetadataValue.bool(bool(drift)),
    }


class LinksConfig(dg.Config):
    # score every pair and cluster every record again (by default: pairs touching new or changed records,
    # components of the link graph that changed)
    full_refresh: bool = False


@dg.asset(
    key=["identity", "links"], group_name="identity", kinds={"duckdb", "splink"}, pool=WAREHOUSE_POOL,
    deps=[dg.AssetKey(["staging", "person_records"]), dg.AssetKey(["staging", "app_identity_links"]), MODEL_KEY],
    check_specs=[dg.AssetCheckSpec(MODEL_FITS_DATA, asset=["identity", "links"],
                                   description="The records scored look like those the model was trained on (WARN)")],
    description="Evidence that two records are one person: deterministic links and Splink-scored pairs.",
)
def links(context: dg.AssetExecutionContext, config: LinksConfig, warehouse: WarehouseResource) -> dg.MaterializeResult:
    review_low = settings.review_low_weight()
    with warehouse.connect() as con:
        records = read_df(con, "SELECT * FROM staging.person_records")
        app_links = con.execute("SELECT anonymous_id, user_id FROM staging.app_identity_links").df()
        # the first run against a warehouse trains its model here when identity/splink_model has not run
        version, trained = model_store.load_or_train(con, records, pinned_path=settings.pinned_model_path())
        plan = incremental.plan(con, records, version.version, review_low, force_full=config.full_refresh)
        prepared = incremental.prepared_records(con, records)
        old_links = read_df(con, "SELECT * FROM identity.links") if plan.mode == "incremental" else None
    hard = deterministic_links(records, app_links)
    if plan.mode == "incremental":
        fresh = linking.predict_new(records, plan.new_ids, version.model, threshold_match_weight=review_low,
                                    prepared=prepared)
        scored = pd.concat([f for f in (incremental.kept_links(old_links, plan), fresh) if len(f)] or [fresh],
                           ignore_index=True)
        context.log.info(f"incremental scoring: {len(plan.new_ids)} new or changed records scored against "
                         f"{len(records)}, links of {len(plan.gone_ids)} changed or removed records dropped")
    else:
        context.log.info(f"full scoring: {plan.reason}")
        scored = linking.predict(records, version.model, threshold_match_weight=review_low, prepared=prepared)
    pairs_compared = scored.attrs.get("pairs_compared", 0) if plan.mode == "full" else None
    frames = [f for f in (hard, scored) if len(f)]
    all_links = pd.concat(frames, ignore_index=True) if frames else hard
    with warehouse.connect() as con:
        with transaction(con):
            con.register("_links", all_links)
            con.execute("CREATE OR REPLACE TABLE identity.links AS SELECT * FROM _links")
            con.unregister("_links")
            incremental.save(con, records, version.version, review_low, plan)
        links_table = table_metadata(con, "identity.links")
    by_type = all_links.groupby("link_type").size().to_dict() if len(all_links) else {}
    accepted_mask = scored["match_weight"] >= settings.accept_weight() if len(scored) else None
    accepted = int(accepted_mask.sum()) if len(scored) else 0
    # the model's own view of its links: mean P(match) of those it accepts, expected matches below them
    estimated_precision = float(scored.loc[accepted_mask, "match_probability"].mean()) if accepted else 1.0
    band_matches = float(scored.loc[~accepted_mask, "match_probability"].sum()) if len(scored) else 0.0
    context.log.info(f"{len(records)} records: {pairs_compared} pairs compared, links by type {by_type}")
    by_rule = scored.attrs.get("pairs_by_rule", [])
    rule_table = "\n".join(
        ["| blocking rule | pairs added | cumulative |", "| --- | ---: | ---: |"]
        + [f"| `{r['rule']}` | {r['pairs_added']:,} | {r['cumulative']:,} |" for r in by_rule]
    )
    if by_rule:
        context.log.info("pairs per blocking rule (a pair counts for the first rule that found it):\n" + "\n".join(
            f"  {r['pairs_added']:>12,}  {r['cumulative']:>12,}  {r['rule']}" for r in by_rule))
    drift = model_store.drift(version.fingerprint, model_store.fingerprint(records)) if version.fingerprint else []
    if drift:
        context.log.warning("the records have drifted from the model's training records (retrain with job "
                            "retrain_identity_model): " + "; ".join(drift))
    fits = dg.AssetCheckResult(
        check_name=MODEL_FITS_DATA, passed=not drift, severity=dg.AssetCheckSeverity.WARN,
        description="retrain with job retrain_identity_model" if drift else None,
        metadata={"model_version": version.version, "drift": dg.MetadataValue.json(drift)},
    )
    return dg.MaterializeResult(check_results=[fits], metadata={
        "dagster/row_count": dg.MetadataValue.int(len(all_links)),
        **links_table,
        "match_weights_chart": picture(charts.match_weights(scored["match_weight"] if len(scored) else [],
                                                            settings.accept_weight(), review_low)),
        "records": dg.MetadataValue.int(len(records)),
        "scoring": dg.MetadataValue.text("full: " + plan.reason if plan.mode == "full" else "incremental"),
        "records_scored_this_run": dg.MetadataValue.int(len(records) if plan.mode == "full" else len(plan.new_ids)),
        # pairs compared: the blocked pairs of a full scoring (an incremental one scores far fewer)
        **({"pairs_compared": dg.MetadataValue.int(int(pairs_compared))} if pairs_compared is not None else {}),
        "pairs_by_blocking_rule": dg.MetadataValue.md(rule_table),
        "splink_links_accepted": dg.MetadataValue.int(accepted),
        "estimated_precision_of_accepted_links": dg.MetadataValue.float(round(estimated_precision, 5)),
        "estimated_matches_in_review_band": dg.MetadataValue.float(round(band_matches, 1)),
        "links_by_type": dg.MetadataValue.json({k: int(v) for k, v in by_type.items()}),
        "accept_weight": dg.MetadataValue.float(settings.accept_weight()),
        "review_low_weight": dg.MetadataValue.float(settings.review_low_weight()),
        "model_trained_this_run": dg.MetadataValue.bool(trained),
        **model_metadata(version, records),
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["identity", "review_queue"], group_name="identity", kinds={"duckdb"},
                     deps=[dg.AssetKey(["identity", "links"])],
                     description="Pairs in the uncertain band, both records side by side: write `match` or `no_match` in `decision`."),
        dg.AssetSpec(["gold", "customer_xref"], group_name="gold", kinds={"duckdb"},
                     deps=[dg.AssetKey(["identity", "links"])],
                     description="One row per person-describing source record: the customer it belongs to."),
        dg.AssetSpec(["gold", "customer_id_history"], group_name="gold", kinds={"duckdb"},
                     deps=[dg.AssetKey(["identity", "links"])],
                     description="Merged, split and removed customer ids, so BI can redirect old ids."),
    ],
    name="resolve_customers", pool=WAREHOUSE_POOL,
)
def resolve_customers(context: dg.AssetExecutionContext, config: LinksConfig, warehouse: WarehouseResource):
    now = _now()
    with warehouse.connect() as con:
        records = read_df(con, "SELECT * FROM staging.person_records")
        all_links = read_df(con, "SELECT * FROM identity.links")
        decisions = store.collect_decisions(con)
        previous = store.read_table(con, "gold.customer_xref")
    weights = (settings.accept_weight(), settings.review_low_weight(), settings.name_only_accept_weight())

    # on Spark (CUSTOMER_PIPELINE_ENGINE=spark) the components are spread over Spark tasks: the same clusters
    cluster_fn = cluster
    if identity_engine() == "spark":
        from customer_pipeline.identity import spark_engine

        cluster_fn = spark_engine.cluster

    def cluster_part(ids, links_part, decisions_part, records_part):
        return cluster_fn(ids, links_part, weights[0], weights[1], decisions_part,
                       evidence=record_evidence(records_part), name_only_accept_weight=weights[2],
                       people=people_for_clustering(records_part))

    with warehouse.connect() as con:
        staged_with = dict(con.execute("SELECT key, value FROM meta.staging_state").fetchall()).get(
            "standardiser_version") if table_exists(con, "meta.staging_state") else None
        clusters, queue, state, queue_state, delta = incremental.cluster_changed(
            con, records, all_links, decisions, incremental.clustering_salt(*weights, staged_with), cluster_part,
            force_full=config.full_refresh)
    context.log.info(f"clustering: {delta.reclustered_components} of {delta.components} components "
                     f"({delta.reclustered_records} records) clustered again, the others kept")
    xref, history = assign_ids(clusters, previous, now)
    queue = store.review_queue_with_records(queue, records)
    with warehouse.connect() as con:
        with transaction(con):
            incremental.save_clustering(con, state, queue_state, delta)
            for table, frame in (("identity.review_queue", queue), ("gold.customer_xref", xref)):
                con.register("_frame", frame)
                con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _frame")
                con.unregister("_frame")
            con.register("_history", history)
            con.execute("CREATE TABLE IF NOT EXISTS gold.customer_id_history AS SELECT * FROM _history WHERE false")
            con.execute("INSERT INTO gold.customer_id_history SELECT * FROM _history")
            con.unregister("_history")
        history_total = con.execute("SELECT count(*) FROM gold.customer_id_history").fetchall()[0][0]
        tables = {t: table_metadata(con, t)
                  for t in ("identity.review_queue", "gold.customer_xref", "gold.customer_id_history")}
    customers = xref["customer_id"].nunique()
    sizes = xref.groupby("customer_id").size()
    reasons = history.groupby("reason").size().to_dict() if len(history) else {}
    context.log.info(f"{len(xref)} records -> {customers} customers; id changes this run {reasons}; review queue {len(queue)}")
    yield dg.MaterializeResult(asset_key=["identity", "review_queue"], metadata={
        "dagster/row_count": dg.MetadataValue.int(len(queue)),
        **tables["identity.review_queue"],
        "decisions_honoured": dg.MetadataValue.int(len(decisions)),
        # uncertain: in the band; name_only: a strong link on the name alone that several customers share;
        # no_match_conflict: a rejected pair still joined through other links
        "pairs_by_reason": dg.MetadataValue.json(
            {str(k): int(v) for k, v in queue.groupby("reason").size().items()} if len(queue) else {}),
    })
    yield dg.MaterializeResult(asset_key=["gold", "customer_xref"], metadata={
        "dagster/row_count": dg.MetadataValue.int(len(xref)),
        **tables["gold.customer_xref"],
        "cluster_sizes_chart": picture(charts.cluster_sizes(sizes)),
        "customers": dg.MetadataValue.int(int(customers)),
        "components_clustered_again": dg.MetadataValue.int(delta.reclustered_components),
        "records_clustered_again": dg.MetadataValue.int(delta.reclustered_records),
        "multi_record_customers": dg.MetadataValue.int(int((sizes > 1).sum())),
        "largest_cluster": dg.MetadataValue.int(int(sizes.max()) if len(sizes) else 0),
    })
    yield dg.MaterializeResult(asset_key=["gold", "customer_id_history"], metadata={
        "dagster/row_count": dg.MetadataValue.int(int(history_total)),
        **tables["gold.customer_id_history"],
        "changes_this_run": dg.MetadataValue.json({k: int(v) for k, v in reasons.items()}),
    })
