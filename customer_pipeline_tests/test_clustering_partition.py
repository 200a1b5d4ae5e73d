"""Clustering a subset of whole components gives those components the clusters that clustering everything
gives them: what an incremental run (only changed components clustered again) and the Spark engine (groups of
components on executors) rely on. It did not hold while the edges came out of DuckDB in join order: the conflict
split breaks ties between equal probabilities by an edge's position (found on 2 groups: 8 of 980 records)."""

import pandas as pd
import pytest

from customer_pipeline.defs.identity import settings
from customer_pipeline.identity import incremental, linking
from customer_pipeline.identity.clustering import cluster
from customer_pipeline.identity.splink_model import people_for_clustering, record_evidence
from customer_pipeline_tests.test_identity_linking import household_and_namesakes, make_fixture

WEIGHTS = (settings.accept_weight(), settings.review_low_weight(), settings.name_only_accept_weight())


def _cluster(ids, links, records, decisions=None):
    return cluster(ids, links, WEIGHTS[0], WEIGHTS[1], decisions, evidence=record_evidence(records),
                   name_only_accept_weight=WEIGHTS[2], people=people_for_clustering(records))


@pytest.fixture(scope="module")
def scored():
    records, _ = make_fixture()
    records = pd.concat([records, household_and_namesakes()], ignore_index=True)
    records = records.assign(record_id=records["source"] + "|" + records["source_key"])
    model = linking.train(records, u_max_pairs=2e5)
    links = linking.predict(records, model, threshold_match_weight=WEIGHTS[1], engine="duckdb")
    # as in the pipeline, deterministic links (an app user id joined to a shop account) beside Splink's
    ids = sorted(records["record_id"])
    hard = pd.DataFrame({"record_id_l": ids[0:40:4], "record_id_r": ids[1:41:4], "match_weight": float("inf"),
                         "match_probability": 1.0, "link_type": "deterministic:shop_app_user",
                         "comparison_detail": None})
    links = pd.concat([hard, links], ignore_index=True)
    # and a reviewer's `match` on three uncertain pairs (equal probabilities 1.0: the ties of the conflict split)
    _, review = _cluster(records["record_id"], links, records)
    uncertain = review[review["reason"] == "uncertain"].head(3)
    decisions = pd.DataFrame({"record_id_l": uncertain["record_id_l"], "record_id_r": uncertain["record_id_r"],
                              "decision": "match"}).reset_index(drop=True)
    return records, links, decisions


@pytest.mark.parametrize("groups", [2, 3, 5])
def test_clusters_of_a_subset_of_components_equal_those_of_all(scored, groups):
    records, links, decisions = scored
    whole, whole_review = _cluster(records["record_id"], links, records, decisions)
    comp = incremental.components(records["record_id"], links, decisions)
    code = pd.Series(pd.factorize(comp["component"], sort=True)[0], index=comp["record_id"])
    parts, reviews = [], []
    for g in range(groups):
        ids = set(code[code % groups == g].index)
        c, r = _cluster(pd.Series(sorted(ids)), links[links["record_id_l"].isin(ids)],
                        records[records["record_id"].isin(ids)], decisions[decisions["record_id_l"].isin(ids)])
        parts.append(c)
        reviews.append(r)
    got = pd.concat(parts).sort_values("record_id").reset_index(drop=True)
    merged = whole.merge(got, on="record_id", how="outer", suffixes=("_all", "_part"))
    differ = merged[merged["cluster_key_all"] != merged["cluster_key_part"]]
    assert differ.empty, differ.head(20).to_string()
    key = ["record_id_l", "record_id_r", "reason"]
    assert sorted(map(tuple, pd.concat(reviews)[key].to_numpy().tolist())) == \
        sorted(map(tuple, whole_review[key].to_numpy().tolist()))
