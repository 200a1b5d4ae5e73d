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
from customer_pipeline.identity.deterministic import LINK_COLUMNS, deterministic_links_sql
from customer_pipeline.identity.ids import assign_ids
from customer_pipeline.identity.splink_model import people_for_clustering, record_evidence
from customer_pipeline.settings import identity_engine
from customer_pipeline.warehouse import read_df, table_exists, transaction

MODEL_KEY = dg.AssetKey(["identity", "splink_model"])
MODEL_FITS_DATA = "identity_model_fits_data"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def model_metadata(version: model_store.ModelVersion, records_fp: dict) -> dict:
    """What a data engineer needs to trust the model: which version, trained on what, and whether
    today's records still look like that (fields filled, sources)."""
    info = version.model.get("customer_pipeline") or {}
    drift = model_store.drift(version.fingerprint, records_fp) if version.fingerprint else []
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
    spark = identity_engine() == "spark"
    # Records, links and prepared records stay in the warehouse: the plan, the deterministic links and the
    # links kept are SQL; only records new or changed since the last run are read out (to prepare them),
    # and the matching frame goes to Splink as Arrow. The Spark engine and a first training read them all.
    with warehouse.connect() as con:
        pinned = settings.pinned_model_path()
        current = model_store.latest(con) if pinned is None else None
        records = read_df(con, "SELECT * FROM staging.person_records") if spark or (current is None and pinned is None) else None
        # the first run against a warehouse trains its model here when identity/splink_model has not run
        version, trained = (current, False) if current is not None else model_store.load_or_train(
            con, records, pinned_path=pinned)
        source = "staging.person_records"
        plan = incremental.plan(con, source, version.version, review_low, force_full=config.full_refresh)
        # incremental on DuckDB: only the new records, the candidates a rule pairs with them and the
        # whole population's term frequencies leave the warehouse
        narrow = plan.mode == "incremental" and not spark
        prepared = incremental.prepared_records(con, source, arrow=not spark, fetch=not narrow)
        tf = population = None
        if narrow:
            prepared, tf, population = linking.scoring_inputs(con, incremental.PREPARED_VIEW, plan.new_ids, version.model)
        n_records = int(con.execute("SELECT count(*) FROM staging.person_records").fetchall()[0][0])
        records_fp = model_store.fingerprint(source, con)
    if plan.mode == "incremental":
        fresh = linking.predict_new(records, plan.new_ids, version.model, threshold_match_weight=review_low,
                                    prepared=prepared, term_frequencies=tf, population=population)
        context.log.info(f"incremental scoring: {len(plan.new_ids)} new or changed records scored against the "
                         f"{fresh.attrs.get('candidates', n_records)} of {n_records} records a blocking rule pairs "
                         f"with them, links of {len(plan.gone_ids)} changed or removed records dropped")
    else:
        context.log.info(f"full scoring: {plan.reason}")
        fresh = linking.predict(records, version.model, threshold_match_weight=review_low, prepared=prepared)
    del prepared
    pairs_compared = fresh.attrs.get("pairs_compared", 0) if plan.mode == "full" else None
    by_rule = fresh.attrs.get("pairs_by_rule", [])
    accept = settings.accept_weight()
    with warehouse.connect() as con:
        present = {r[0] for r in con.execute("DESCRIBE staging.person_records").fetchall()}
        hard_sql = deterministic_links_sql(
            "staging.person_records",
            "staging.app_identity_links" if table_exists(con, "staging.app_identity_links") else None, present)
        touched = pd.DataFrame({"record_id": sorted(plan.new_ids | plan.gone_ids)}, dtype=object)
        with transaction(con):
            con.register("_fresh", fresh[LINK_COLUMNS])
            con.register("_touched", touched)
            if plan.mode == "incremental":
                # the Splink links between two unchanged records stay; every deterministic link is derived again
                # and only those that differ are deleted or inserted (a pair has one deterministic link, its
                # other columns fixed): writing 140k unchanged rows again cost ~1 s at commit at 1M records
                con.execute(f"CREATE OR REPLACE TEMP TABLE _hard AS SELECT {', '.join(LINK_COLUMNS)} FROM ({hard_sql})")
                same = ("h.record_id_l = k.record_id_l AND h.record_id_r = k.record_id_r "
                        "AND h.link_type = k.link_type")
                con.execute(f"""DELETE FROM identity.links AS k WHERE (k.link_type = 'splink' AND (
                        k.record_id_l IN (SELECT record_id FROM _touched) OR k.record_id_r IN (SELECT record_id FROM _touched)))
                    OR (k.link_type <> 'splink' AND NOT EXISTS (SELECT 1 FROM _hard AS h WHERE {same}))""")
                con.execute(f"""INSERT INTO identity.links SELECT * FROM _hard AS h WHERE NOT EXISTS (
                    SELECT 1 FROM identity.links AS k WHERE k.link_type <> 'splink' AND {same})""")
                con.execute("DROP TABLE _hard")
            else:
                con.execute(f"CREATE OR REPLACE TABLE identity.links AS SELECT {', '.join(LINK_COLUMNS)} FROM ({hard_sql})")
            con.execute(f"INSERT INTO identity.links SELECT {', '.join(LINK_COLUMNS)} FROM _fresh")
            con.unregister("_fresh")
            con.unregister("_touched")
            incremental.save(con, source, version.version, review_low, plan)
        links_table = table_metadata(con, "identity.links")
        by_type = dict(con.execute("SELECT link_type, count(*) FROM identity.links GROUP BY 1 ORDER BY 1").fetchall())
        total_links = sum(by_type.values())
        accepted, estimated_precision, band_matches = con.execute("""
            SELECT count(*) FILTER (WHERE match_weight >= $a), avg(match_probability) FILTER (WHERE match_weight >= $a),
                   coalesce(sum(match_probability) FILTER (WHERE match_weight < $a), 0)
            FROM identity.links WHERE link_type = 'splink'""", {"a": accept}).fetchall()[0]
        weights = con.execute("SELECT match_weight FROM identity.links WHERE link_type = 'splink'").fetchnumpy()["match_weight"]
    accepted = int(accepted)
    # the model's own view of its links: mean P(match) of those it accepts, expected matches below them
    estimated_precision = float(estimated_precision) if accepted else 1.0
    band_matches = float(band_matches)
    context.log.info(f"{n_records} records: {pairs_compared} pairs compared, links by type {by_type}")
    rule_table = "\n".join(
        ["| blocking rule | pairs added | cumulative |", "| --- | ---: | ---: |"]
        + [f"| `{r['rule']}` | {r['pairs_added']:,} | {r['cumulative']:,} |" for r in by_rule]
    )
    if by_rule:
        context.log.info("pairs per blocking rule (a pair counts for the first rule that found it):\n" + "\n".join(
            f"  {r['pairs_added']:>12,}  {r['cumulative']:>12,}  {r['rule']}" for r in by_rule))
    drift = model_store.drift(version.fingerprint, records_fp) if version.fingerprint else []
    if drift:
        context.log.warning("the records have drifted from the model's training records (retrain with job "
                            "retrain_identity_model): " + "; ".join(drift))
    fits = dg.AssetCheckResult(
        check_name=MODEL_FITS_DATA, passed=not drift, severity=dg.AssetCheckSeverity.WARN,
        description="retrain with job retrain_identity_model" if drift else None,
        metadata={"model_version": version.version, "drift": dg.MetadataValue.json(drift)},
    )
    return dg.MaterializeResult(check_results=[fits], metadata={
        "dagster/row_count": dg.MetadataValue.int(total_links),
        **links_table,
        "match_weights_chart": picture(charts.match_weights(weights, accept, review_low)),
        "records": dg.MetadataValue.int(n_records),
        "scoring": dg.MetadataValue.text("full: " + plan.reason if plan.mode == "full" else "incremental"),
        "records_scored_this_run": dg.MetadataValue.int(n_records if plan.mode == "full" else len(plan.new_ids)),
        # incremental: the existing records some blocking rule pairs with a new one (the others cannot match it)
        "records_scored_against": dg.MetadataValue.int(int(fresh.attrs.get("candidates", n_records))),
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
        **model_metadata(version, records_fp),
    })


def _records_of(con, ids) -> pd.DataFrame:
    """The staging rows of these record ids (read in SQL: the others stay in the warehouse)."""
    con.register("_ids_in", pd.DataFrame({"record_id": pd.Series(pd.unique(pd.Series(ids, dtype=object)), dtype=object)}))
    try:
        return read_df(con, "SELECT * FROM staging.person_records SEMI JOIN _ids_in USING (record_id) ORDER BY record_id")
    finally:
        con.unregister("_ids_in")


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
        decisions = store.collect_decisions(con)
        staged_with = dict(con.execute("SELECT key, value FROM meta.staging_state").fetchall()).get(
            "standardiser_version") if table_exists(con, "meta.staging_state") else None
        salt = incremental.clustering_salt(*weights, staged_with)
        # only the components holding a record, link or decision changed since the last clustering are read
        # and clustered again; without usable snapshots, every component is compared by its fingerprint
        touched = None if config.full_refresh else incremental.cluster_touched(
            con, decisions, salt, cluster_part, records_for=lambda ids: _records_of(con, ids))
        if touched is not None:
            con.register("_reclustered_ids", touched.record_ids)
            previous = read_df(con, "SELECT * FROM gold.customer_xref SEMI JOIN _reclustered_ids USING (record_id)")
            con.unregister("_reclustered_ids")
            delta = touched.delta
        else:
            records = read_df(con, "SELECT * FROM staging.person_records")
            # in one order whatever order the table was written in (clustering breaks ties by a link's position)
            all_links = read_df(con, "SELECT * FROM identity.links ORDER BY record_id_l, record_id_r, link_type")
            previous = store.read_table(con, "gold.customer_xref")
            clusters, queue, state, queue_state, delta = incremental.cluster_changed(
                con, records, all_links, decisions, salt, cluster_part, force_full=config.full_refresh)
    context.log.info(f"clustering ({'changed records, links and decisions' if touched is not None else 'every component'}"
                     f"): {delta.reclustered_components} of {delta.components} components "
                     f"({delta.reclustered_records} records) clustered again, the others kept")
    if touched is not None:
        # the ids of the customers of the components clustered again; every other xref row stays as it is
        xref_part, history = assign_ids(touched.clusters, previous, now)
    else:
        xref, history = assign_ids(clusters, previous, now)
        queue = store.review_queue_with_records(queue, records)
    with warehouse.connect() as con:
        with transaction(con):
            if touched is not None:
                incremental.save_touched_clustering(con, touched, decisions, salt)
                con.register("_reclustered_ids", touched.record_ids)
                con.register("_xref_part", xref_part)
                con.execute("DELETE FROM gold.customer_xref WHERE record_id IN (SELECT record_id FROM _reclustered_ids)")
                con.execute("INSERT INTO gold.customer_xref BY NAME SELECT * FROM _xref_part")
                con.unregister("_xref_part")
                con.unregister("_reclustered_ids")
                pairs = con.execute(f"SELECT * EXCLUDE (fingerprint) FROM {incremental.REVIEW_STATE}").df()
                shown = pd.concat([pairs["record_id_l"], pairs["record_id_r"]], ignore_index=True)
                queue = store.review_queue_with_records(pairs, _records_of(con, shown))
                con.register("_frame", queue)
                con.execute("CREATE OR REPLACE TABLE identity.review_queue AS SELECT * FROM _frame")
                con.unregister("_frame")
            else:
                incremental.save_clustering(con, state, queue_state, delta, decisions, salt)
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
        sizes = con.execute("SELECT count(*) AS n FROM gold.customer_xref GROUP BY customer_id").df()["n"]
    xref_rows = int(sizes.sum())
    customers = len(sizes)
    reasons = history.groupby("reason").size().to_dict() if len(history) else {}
    context.log.info(f"{xref_rows} records -> {customers} customers; id changes this run {reasons}; review queue {len(queue)}")
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
        "dagster/row_count": dg.MetadataValue.int(xref_rows),
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
