"""Household precision / recall at person level: do the people who live together share a household_id?"""

import duckdb
import pandas as pd

from customer_pipeline.identity.evaluation import pairwise_scores


def predicted_households(record_customers: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Person -> household_id of the golden customer holding most of that person's records.

    `record_customers(person_id, customer_id)`: one row per source record, its true person and the
    customer the pipeline put it in; `customers(customer_id, household_id)`, household_id nullable.
    A tie between customers goes to the smallest customer_id, so the answer is deterministic.
    """
    con = duckdb.connect()
    try:
        con.register("rc", record_customers[["person_id", "customer_id"]].astype("string"))
        con.register("gc", customers[["customer_id", "household_id"]].astype("string"))
        return con.execute("""
            WITH n AS (SELECT person_id, customer_id, count(*) AS records FROM rc GROUP BY ALL),
            best AS (SELECT person_id, customer_id FROM n
                     QUALIFY row_number() OVER (PARTITION BY person_id ORDER BY records DESC, customer_id) = 1)
            SELECT b.person_id, b.customer_id, g.household_id
            FROM best b LEFT JOIN gc g USING (customer_id) ORDER BY b.person_id""").df()
    finally:
        con.close()


def household_pairwise_scores(record_customers: pd.DataFrame, customers: pd.DataFrame,
                              households: pd.DataFrame) -> dict:
    """Pairwise household P / R / F1 over the people whose household is known by a street address.

    `households(person_id, household_id, has_street_address)` is the truth (`households.csv` of the
    sample). A pair of such people is predicted when their predicted household_ids are equal and not
    null (a person whose customer has no household_id lives alone), true when their true
    household_ids are equal. People without any scored record (all quarantined) are left out.
    Returns `persons`, `true_pairs`, `predicted_pairs`, `correct_pairs`, `precision`, `recall`, `f1`.
    """
    predicted = predicted_households(record_customers, customers)
    # bool, or the text of households.csv ('true' / 'false'): astype(bool) would make 'false' true.
    known = households[households["has_street_address"].astype("string").str.lower().isin(["true", "1"])]
    con = duckdb.connect()
    try:
        con.register("pred_in", predicted.astype("string"))
        con.register("truth_in", known[["person_id", "household_id"]].astype("string"))
        # Without a household a person is a cluster of one: a null would group all of them together.
        con.execute("CREATE TEMP VIEW pred AS SELECT person_id AS record_key, "
                    "coalesce('household:' || household_id, 'alone:' || person_id) AS cluster FROM pred_in")
        con.execute("CREATE TEMP VIEW truth AS SELECT person_id AS record_key, household_id AS person FROM truth_in")
        scores = pairwise_scores(con, "pred", "truth")
    finally:
        con.close()
    return {"persons": scores.pop("records"), **scores}
