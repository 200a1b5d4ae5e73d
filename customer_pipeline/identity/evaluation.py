"""Pairwise precision / recall of a clustering against ground truth, and the naive baseline to beat."""

import re

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


def _swap_sides(sql: str) -> str:
    """The condition with the l and r records exchanged."""
    return re.sub(r"\b([lr])\.", lambda m: ("r." if m.group(1) == "l" else "l."), sql)


def _near(column: str, edits: int = 1) -> str:
    """Both records fill `column` and it differs by at most `edits` edits (a transposition is one)."""
    return f"coalesce(damerau_levenshtein(l.{column}, r.{column}) <= {edits}, false)"


# What the blocking design promises (docs/identity.md, "Typo-tolerant blocking"): two records of one person
# that agree, up to a typo each, on two of these five fields meet in some rule. A name agrees when first and
# last name each do (or they are swapped); a birth date also with day and month swapped; the place by its
# postcode or its city. Pairs that agree on fewer share too little for any blocking key to find (a
# call-center contact that gave only a first name; FEBRL duplicates whose every name was replaced).
TWO_FIELDS_SQL = " + ".join([
    f"(({_near('first_name_norm')} AND {_near('last_name_norm')}) OR "
    "coalesce(damerau_levenshtein(l.first_name_norm, r.last_name_norm) <= 1 "
    "AND damerau_levenshtein(l.last_name_norm, r.first_name_norm) <= 1, false))::INT",
    f"({_near('birth_date')} OR coalesce(l.birth_date_dm = r.birth_date OR r.birth_date_dm = l.birth_date, false))::INT",
    f"({_near('postcode')} OR {_near('city_norm')})::INT",
    f"{_near('email_norm')}::INT",
    f"{_near('phone_e164')}::INT",
]) + " >= 2"


def blocking_recall(records: pd.DataFrame, truth: pd.DataFrame, rules: list | None = None) -> dict:
    """Share of the true pairs that some prediction blocking rule brings together (a pair no rule
    compares can never be linked, whatever the model says).

    `records`: `staging.person_records` rows; `truth(record_id, person)`. Only the true pairs are
    checked (each rule's condition evaluated on both records of the pair), so this is cheap at any
    size. Returns `true_pairs`, `blocked_pairs`, `recall` and `missed` (up to 20 record-id pairs), and the
    same over the pairs the blocking design promises to find (`promised_pairs`, `promised_blocked`,
    `promised_recall`: pairs that agree, up to a typo each, on two of {name, birth date, postcode/city,
    email, phone}; `TWO_FIELDS_SQL`).
    """
    from customer_pipeline.identity import splink_model as sm

    rules = sm.prediction_blocking_rules() if rules is None else rules
    prepared = sm.prepare(records)
    conditions = [rule.create_blocking_rule_dict("duckdb")["blocking_rule"] for rule in rules]
    con = duckdb.connect()
    try:
        con.register("prepared", prepared)
        con.register("truth_in", truth[["record_id", "person"]].astype("string"))
        con.execute(f"""CREATE TEMP TABLE true_pairs AS
            SELECT a.record_id AS l_id, b.record_id AS r_id
            FROM truth_in a JOIN truth_in b ON a.person = b.person AND a.record_id < b.record_id
            WHERE a.record_id IN (SELECT {sm.UNIQUE_ID} FROM prepared)
              AND b.record_id IN (SELECT {sm.UNIQUE_ID} FROM prepared)""")
        any_rule = " OR ".join(f"coalesce(({c}), false)" for c in conditions) or "false"
        # Splink compares each unordered pair once, whichever side is l: test both orientations.
        row = con.execute(f"""
            WITH checked AS (
                SELECT t.l_id, t.r_id,
                       ({any_rule}) OR ({_swap_sides(any_rule)}) AS blocked,
                       {TWO_FIELDS_SQL} AS promised
                FROM true_pairs t
                JOIN prepared l ON l.{sm.UNIQUE_ID} = t.l_id
                JOIN prepared r ON r.{sm.UNIQUE_ID} = t.r_id
            )
            SELECT count(*), count(*) FILTER (WHERE blocked),
                   list([l_id, r_id]) FILTER (WHERE NOT blocked)[1:20],
                   count(*) FILTER (WHERE promised), count(*) FILTER (WHERE promised AND blocked)
            FROM checked""").fetchall()[0]
    finally:
        con.close()
    total, blocked, missed = int(row[0]), int(row[1] or 0), row[2] or []
    promised, promised_blocked = int(row[3] or 0), int(row[4] or 0)
    return {"true_pairs": total, "blocked_pairs": blocked,
            "recall": blocked / total if total else 1.0, "missed": [tuple(m) for m in missed],
            "promised_pairs": promised, "promised_blocked": promised_blocked,
            "promised_recall": promised_blocked / promised if promised else 1.0}
