"""Stable customer ids across runs: unchanged, grown, merged, split and removed clusters."""

import itertools
import re
from datetime import datetime

import pandas as pd

from customer_pipeline.identity.ids import HISTORY_COLUMNS, XREF_COLUMNS, assign_ids, new_customer_id

T1, T2, T3 = datetime(2025, 1, 1), datetime(2025, 2, 1), datetime(2025, 3, 1)


def counter(prefix: str = "C"):
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers):04d}"


def clusters(*groups: list[str], prob: float = 1.0) -> pd.DataFrame:
    """Clusters as `cluster` returns them; the key is deliberately unstable (a run-specific label)."""
    rows = [
        dict(record_id=r, cluster_key=f"run-label-{min(group)}", match_probability=prob)
        for group in groups
        for r in group
    ]
    return pd.DataFrame(rows, columns=["record_id", "cluster_key", "match_probability"])


def ids_of(xref: pd.DataFrame) -> dict[str, str]:
    return dict(zip(xref["record_id"], xref["customer_id"]))


def history_rows(history: pd.DataFrame) -> set[tuple]:
    rows = zip(history["old_id"], history["new_id"], history["reason"])
    return {(old, None if pd.isna(new) else new, reason) for old, new, reason in rows}


def test_first_run_mints_one_id_per_cluster():
    xref, history = assign_ids(clusters(["shop|customer:1", "pos|card:1"], ["app|anon:x"]), None, T1, counter())
    assert list(xref.columns) == XREF_COLUMNS
    assert list(history.columns) == HISTORY_COLUMNS and history.empty
    ids = ids_of(xref)
    assert ids["shop|customer:1"] == ids["pos|card:1"] != ids["app|anon:x"]
    assert set(ids.values()) == {"C0001", "C0002"}
    assert (xref["assigned_at"] == pd.Timestamp(T1)).all()
    assert (xref["customer_created_at"] == pd.Timestamp(T1)).all()
    row = xref.set_index("record_id").loc["shop|customer:1"]
    assert (row["source"], row["source_key"]) == ("shop", "customer:1")


def test_same_data_twice_keeps_every_id_and_timestamp():
    groups = (["shop|customer:1", "pos|card:1"], ["app|anon:x"], ["call_center|contact:7"])
    first, _ = assign_ids(clusters(*groups), None, T1, counter())
    second, history = assign_ids(clusters(*groups), first, T2, counter("X"))
    pd.testing.assert_frame_equal(first, second)
    assert history.empty


def test_grown_data_keeps_existing_ids():
    first, _ = assign_ids(clusters(["shop|customer:1"], ["pos|card:2"]), None, T1, counter())
    grown = clusters(["shop|customer:1", "app|user:1"], ["pos|card:2"], ["pos|card:3"])
    second, history = assign_ids(grown, first, T2, counter("N"))
    before, after = ids_of(first), ids_of(second)
    assert after["shop|customer:1"] == after["app|user:1"] == before["shop|customer:1"]
    assert after["pos|card:2"] == before["pos|card:2"]
    assert after["pos|card:3"] == "N0001"
    assigned = second.set_index("record_id")["assigned_at"]
    assert assigned["shop|customer:1"] == pd.Timestamp(T1)
    assert assigned["app|user:1"] == pd.Timestamp(T2)
    assert history.empty


def test_merge_keeps_the_older_id_and_records_the_other():
    old, _ = assign_ids(clusters(["shop|customer:1"]), None, T1, counter("A"))
    both, _ = assign_ids(clusters(["shop|customer:1"], ["pos|card:1", "pos|card:2"]), old, T2, counter("B"))
    older, newer = ids_of(both)["shop|customer:1"], ids_of(both)["pos|card:1"]
    # The newer customer has more records, yet the older id survives.
    merged, history = assign_ids(clusters(["shop|customer:1", "pos|card:1", "pos|card:2"]), both, T3, counter("Z"))
    assert set(merged["customer_id"]) == {older}
    assert history_rows(history) == {(newer, older, "merge")}
    assert (history["changed_at"] == pd.Timestamp(T3)).all()
    created = merged.set_index("record_id")["customer_created_at"]
    assert (created == pd.Timestamp(T1)).all()
    assigned = merged.set_index("record_id")["assigned_at"]
    assert assigned["shop|customer:1"] == pd.Timestamp(T1) and assigned["pos|card:1"] == pd.Timestamp(T3)


def test_merge_of_equally_old_ids_keeps_the_smaller_id():
    first, _ = assign_ids(clusters(["a|1"], ["a|2"]), None, T1, counter())
    merged, history = assign_ids(clusters(["a|1", "a|2"]), first, T2, counter("Z"))
    assert set(merged["customer_id"]) == {"C0001"}
    assert history_rows(history) == {("C0002", "C0001", "merge")}


def test_split_gives_the_larger_part_the_id():
    first, _ = assign_ids(clusters(["s|1", "s|2", "s|3"]), None, T1, counter())
    split, history = assign_ids(clusters(["s|1"], ["s|2", "s|3"]), first, T2, counter("N"))
    ids = ids_of(split)
    assert ids["s|2"] == ids["s|3"] == "C0001"
    assert ids["s|1"] == "N0001"
    assert history_rows(history) == {("C0001", "N0001", "split")}
    created = split.set_index("record_id")["customer_created_at"]
    assert created["s|2"] == pd.Timestamp(T1) and created["s|1"] == pd.Timestamp(T2)


def test_split_into_equal_parts_keeps_the_id_with_the_smallest_record():
    first, _ = assign_ids(clusters(["t|2", "t|1"]), None, T1, counter())
    split, history = assign_ids(clusters(["t|2"], ["t|1"]), first, T2, counter("N"))
    assert ids_of(split) == {"t|1": "C0001", "t|2": "N0001"}
    assert history_rows(history) == {("C0001", "N0001", "split")}


def test_part_split_off_into_another_customer_is_a_split_into_that_id():
    first, _ = assign_ids(clusters(["a|1", "a|2", "a|3"], ["b|1"]), None, T1, counter())
    moved, history = assign_ids(clusters(["a|1", "a|2"], ["a|3", "b|1"]), first, T2, counter("N"))
    ids = ids_of(moved)
    assert ids["a|1"] == "C0001" and ids["a|3"] == ids["b|1"] == "C0002"
    assert history_rows(history) == {("C0001", "C0002", "split")}


def test_vanished_customer_is_recorded_as_removed():
    first, _ = assign_ids(clusters(["r|1"], ["r|2", "r|3"]), None, T1, counter())
    later, history = assign_ids(clusters(["r|3"]), first, T2, counter("N"))
    assert ids_of(later) == {"r|3": "C0002"}
    assert history_rows(history) == {("C0001", None, "removed")}


def test_previous_xref_without_created_column_uses_earliest_assignment():
    prev = pd.DataFrame({
        "customer_id": ["OLD1", "OLD2"],
        "record_id": ["x|1", "x|2"],
        "assigned_at": [datetime(2024, 6, 1), datetime(2024, 1, 1)],
    })
    merged, history = assign_ids(clusters(["x|1", "x|2"]), prev, T1, counter())
    assert set(merged["customer_id"]) == {"OLD2"}
    assert history_rows(history) == {("OLD1", "OLD2", "merge")}


def test_minted_ids_never_reuse_a_previous_id():
    prev = pd.DataFrame({"customer_id": ["C0001"], "record_id": ["p|1"], "assigned_at": [T1]})
    xref, _ = assign_ids(clusters(["p|1"], ["p|2"]), prev, T2, counter())
    assert ids_of(xref) == {"p|1": "C0001", "p|2": "C0002"}


def test_default_ids_are_opaque_and_unique():
    assert re.fullmatch(r"C[0-9a-f]{16}", new_customer_id())
    xref, _ = assign_ids(clusters(*[[f"k|{i}"] for i in range(2000)]), None, T1)
    assert xref["customer_id"].str.fullmatch(r"C[0-9a-f]{16}").all()
    assert xref["customer_id"].is_unique


def test_probability_passes_through():
    xref, _ = assign_ids(clusters(["m|1", "m|2"], prob=0.97), None, T1, counter())
    assert (xref["match_probability"] == 0.97).all()
