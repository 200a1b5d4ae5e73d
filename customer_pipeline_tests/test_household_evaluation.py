"""Household scoring at person level, on frames small enough to count the pairs by hand."""

import pandas as pd
import pytest

from customer_pipeline.identity.household_evaluation import household_pairwise_scores, predicted_households

# True households: {1, 2, 3} and {4, 5}; 6 lives alone; 7 belongs to household 10 but has no street
# address on any record, so it is not scored.
HOUSEHOLDS = pd.DataFrame({
    "person_id": [1, 2, 3, 4, 5, 6, 7],
    "household_id": [10, 10, 10, 20, 20, 30, 10],
    "has_street_address": [True, True, True, True, True, True, False],
})


def _records(rows: list[tuple[int, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["person_id", "customer_id"])


def test_majority_customer_decides_and_ties_go_to_the_smallest_customer_id():
    records = _records([(1, "c1"), (1, "c2"), (1, "c2"), (2, "c4"), (2, "c3")])
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3", "c4"], "household_id": ["h1", "h2", None, "h4"]})
    got = predicted_households(records, customers)
    assert got["person_id"].tolist() == ["1", "2"]
    assert got["customer_id"].tolist() == ["c2", "c3"]
    assert got["household_id"].tolist()[0] == "h2" and pd.isna(got["household_id"].tolist()[1])


def test_pairwise_household_scores_count_pairs_among_people_with_a_street_address():
    # 1 and 2 are one customer (an identity merge: still the same household); 3 is its own customer
    # in the same predicted household; 4 is put with 6 (wrong); 5's customer has no household; 7 would
    # add pairs with 1-3 but has no street address.
    records = _records([(1, "a"), (1, "a"), (2, "a"), (2, "b"), (3, "b"), (3, "c"), (3, "c"),
                        (4, "d"), (5, "e"), (6, "f"), (7, "g")])
    customers = pd.DataFrame({"customer_id": list("abcdefg"),
                              "household_id": ["H1", "H1", "H1", "H2", None, "H2", "H1"]})
    # Persons 1..6 -> H1, H1 (a: 1 record each, tie -> a), H1 (c), H2, alone, H2.
    # Predicted pairs: {1,2}, {1,3}, {2,3}, {4,6} = 4; true pairs: 3 in household 10 + {4,5} = 4;
    # correct: the three in household 10.
    s = household_pairwise_scores(records, customers, HOUSEHOLDS)
    assert s["persons"] == 6
    assert (s["true_pairs"], s["predicted_pairs"], s["correct_pairs"]) == (4, 4, 3)
    assert s["precision"] == pytest.approx(0.75) and s["recall"] == pytest.approx(0.75)
    assert s["f1"] == pytest.approx(0.75)


def test_people_without_households_are_not_one_big_household():
    records = _records([(1, "a"), (2, "b"), (3, "c"), (6, "d")])
    customers = pd.DataFrame({"customer_id": list("abcd"), "household_id": [None, None, None, None]})
    s = household_pairwise_scores(records, customers, HOUSEHOLDS)
    assert (s["persons"], s["true_pairs"], s["predicted_pairs"], s["correct_pairs"]) == (4, 3, 0, 0)
    assert s["precision"] == 1.0 and s["recall"] == 0.0


def test_people_without_a_scored_record_are_left_out():
    records = _records([(1, "a"), (4, "b")])
    customers = pd.DataFrame({"customer_id": ["a", "b"], "household_id": ["H", "H"]})
    s = household_pairwise_scores(records, customers, HOUSEHOLDS)
    assert (s["persons"], s["true_pairs"], s["predicted_pairs"], s["correct_pairs"]) == (2, 0, 1, 0)
    assert s["precision"] == 0.0 and s["recall"] == 1.0


def test_the_street_flag_may_be_the_text_of_households_csv():
    records = _records([(1, "a"), (2, "a"), (7, "a")])
    customers = pd.DataFrame({"customer_id": ["a"], "household_id": ["H"]})
    as_text = HOUSEHOLDS.assign(has_street_address=HOUSEHOLDS["has_street_address"].map({True: "true", False: "false"}))
    s = household_pairwise_scores(records, customers, as_text)
    assert (s["persons"], s["true_pairs"], s["predicted_pairs"], s["correct_pairs"]) == (2, 1, 1, 1)
