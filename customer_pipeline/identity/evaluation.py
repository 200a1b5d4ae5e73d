"""Pairwise precision / recall of a clustering against ground truth, and the naive baseline to beat."""

import duckdb
import numpy as np
import pandas as pd

from customer_pipeline.identity.clustering import connected_components


def pairwise_scores(con: duckdb.DuckDBPyConnection, predicted: str, truth: str) -> dict:
    """`predicted(record_key, cluster)` vs `truth(record_key, person)`: counts of pairs, P, R, F1.
    Only records present in both are scored (quarantined malformed rows are in neither)."""
    row = con.execute(
        f"""WITH j AS (
            SELECT p.cluster, t.person FROM {predicted} p JOIN {truth} t USING (record_key)
        ), tp AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j GROUP BY cluster, person)),
        pp AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j GROUP BY cluster)),
        ap AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j GROUP BY person))
        SELECT (SELECT count(*) FROM j), tp.v, pp.v, ap.v FROM tp, pp, ap"""
    ).fetchall()[0]
    records, tp, pp, ap = (int(x or 0) for x in row)
    precision = tp / pp if pp else 1.0
    recall = tp / ap if ap else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"records": records, "true_pairs": ap, "predicted_pairs": pp, "correct_pairs": tp,
            "precision": precision, "recall": recall, "f1": f1}


def baseline_clusters(records: pd.DataFrame) -> pd.DataFrame:
    """The naive approach: records sharing an exact normalised email or phone are one person."""
    n = len(records)
    codes = np.arange(n)
    left, right = [], []
    for col in ("email_corrected", "phone_e164"):
        values = records[col].astype("string")
        frame = pd.DataFrame({"v": values, "i": codes}).dropna()
        first = frame.groupby("v")["i"].transform("min")
        mask = first != frame["i"]
        left.append(first[mask].to_numpy())
        right.append(frame["i"][mask].to_numpy())
    root = connected_components(n, np.concatenate(left), np.concatenate(right))
    return pd.DataFrame({"record_key": records["source"] + "|" + records["source_key"], "cluster": root})
