"""Households from golden customers: who lives together, the cap, phone joins and stable ids (docs/households.md)."""

import datetime as dt
import itertools
import re

import pandas as pd
import pytest

from customer_pipeline.identity.households import (
    HISTORY_COLUMNS, HOUSEHOLD_COLUMNS, MAX_MEMBERS, build_households, new_household_id, with_household_ids,
)

NOW = dt.datetime(2026, 6, 1)
LATER = dt.datetime(2026, 7, 1)


def person(cid, street=None, postcode="10115", city="Berlin", country="DE", phones=(), seen=("2025-01-01", "2026-01-01"),
           older=()):
    """A golden customer living at (street, postcode, city, country), with one record per address it used.

    `phones`: (number, type) pairs on its records; `older`: earlier addresses as (street, postcode, city, country).
    """
    return {"customer_id": cid, "address": (street, postcode, city, country), "phones": list(phones),
            "seen": tuple(pd.Timestamp(s) for s in seen), "older": list(older)}


def world(*people):
    """golden, records and xref frames for the given people."""
    golden, records, xref = [], [], []
    for p in people:
        street, postcode, city, country = p["address"]
        first, last = p["seen"]
        golden.append({"customer_id": p["customer_id"], "street": street, "postcode": postcode, "city": city,
                       "country": country, "first_seen_at": first, "last_seen_at": last})
        places = [(a, first - pd.Timedelta(days=30 * (i + 1))) for i, a in enumerate(p["older"])]
        places.append((p["address"], last))
        for i, ((s, pc, ci, co), ts) in enumerate(places):
            rid = f"shop|customer:{p['customer_id']}-{i}"
            records.append({"record_id": rid, "street": s, "postcode": pc, "city": ci, "country": co,
                            "record_created_at": ts, "record_updated_at": ts})
            xref.append({"customer_id": p["customer_id"], "record_id": rid})
        for j, (number, kind) in enumerate(p["phones"]):
            rid = f"call_center|contact:{p['customer_id']}-{j}"
            records.append({"record_id": rid, "phone_e164": number, "phone_valid": True, "phone_type": kind,
                            "record_created_at": last, "record_updated_at": last})
            xref.append({"customer_id": p["customer_id"], "record_id": rid})
    return pd.DataFrame(golden), pd.DataFrame(records), pd.DataFrame(xref)


def counter():
    numbers = itertools.count(1)
    return lambda: f"H{next(numbers):016x}"


def run(*people, previous=None, now=NOW, max_members=MAX_MEMBERS, id_factory=None):
    golden, records, xref = world(*people)
    prev_customers, prev_households = (previous.customers, previous.households) if previous else (None, None)
    return build_households(golden, records, xref, now, prev_customers, prev_households,
                            max_members=max_members, id_factory=id_factory or counter())


def ids(result) -> dict:
    return dict(zip(result.customers["customer_id"], result.customers["household_id"].astype(object)))


def basis(result) -> dict:
    return dict(zip(result.customers["customer_id"], result.customers["basis"]))


def same(result, *cids) -> bool:
    got = ids(result)
    return got[cids[0]] is not None and not pd.isna(got[cids[0]]) and len({got[c] for c in cids}) == 1


def none(result, cid) -> bool:
    return pd.isna(ids(result)[cid])


# --- who lives together ------------------------------------------------------------------------------


def test_two_people_at_one_address_are_one_household_whatever_the_spelling():
    r = run(person("a", "Hauptstraße 5", seen=("2024-03-01", "2025-05-01")),
            person("b", "hauptstr. 5", postcode="10 115", seen=("2024-01-01", "2025-02-01")))
    assert same(r, "a", "b")
    [row] = r.households.to_dict("records")
    assert list(r.households.columns) == HOUSEHOLD_COLUMNS
    assert row["members"] == 2 and row["country"] == "DE" and row["city"] == "Berlin"
    assert row["address"] in ("Hauptstraße 5", "hauptstr. 5")
    assert row["first_seen"] == pd.Timestamp("2024-01-01") and row["last_seen"] == pd.Timestamp("2025-05-01")
    assert basis(r) == {"a": "address", "b": "address"}


def test_same_street_with_another_postcode_or_number_is_another_household():
    r = run(person("a", "Hauptstraße 5", "10115"), person("b", "Hauptstraße 5", "20095"),
            person("c", "Hauptstraße 7", "10115"), person("d", "Hauptstraße 5", "10115", country="AT"))
    assert len(set(ids(r).values())) == 4 and len(r.households) == 4


def test_flats_of_one_building_are_separate_households():
    r = run(person("a", "12 High Street Flat 3", "SW1A 1AA", "London", "GB"),
            person("b", "12 High St Flat 4", "SW1A1AA", "London", "GB"),
            person("c", "12 High St. Flat 3", "sw1a 1aa", "London", "GB"))
    assert same(r, "a", "c") and not same(r, "a", "b")


def test_without_a_usable_street_there_is_no_household():
    r = run(person("none", None), person("no_number", "Hauptstraße"), person("no_place", "Hauptstraße 5", None, None),
            person("ok", "Hauptstraße 5"))
    assert all(none(r, c) for c in ("none", "no_number", "no_place"))
    assert basis(r)["none"] == "no_address" and basis(r)["ok"] == "address"
    assert r.households["members"].tolist() == [1]


def test_without_a_postcode_street_and_city_place_the_address():
    r = run(person("a", "Dorfstraße 3", None, "Kleinkleckersdorf"),
            person("b", "Dorfstrasse 3", None, "Kleinkleckersdorf"),
            person("c", "Dorfstraße 3", None, "Großkleckersdorf"))
    assert same(r, "a", "b") and not same(r, "a", "c")
    row = r.households.set_index("household_id").loc[ids(r)["a"]]
    assert pd.isna(row["postcode"]) and row["city"] == "Kleinkleckersdorf"


def test_an_address_without_postcode_joins_the_one_address_with_a_postcode_on_that_street():
    r = run(person("a", "Hauptstraße 5", "10115"), person("b", "Hauptstraße 5", None),
            person("c", "Hauptstraße 5", "10115", country=None))
    assert same(r, "a", "b", "c")
    row = r.households.iloc[0]
    assert row["postcode"] == "10115" and row["country"] == "DE" and row["members"] == 3
    # two postcodes on that street in that city: which one is meant is unknown, so it stays apart
    r = run(person("a", "Hauptstraße 5", "10115"), person("b", "Hauptstraße 5", None),
            person("c", "Hauptstraße 5", "10117"))
    assert not same(r, "a", "b") and not same(r, "b", "c")


def test_a_typo_in_the_street_at_one_postcode_is_the_same_address():
    r = run(person("a", "Heidelinde-Geißler-Ring 2"), person("b", "Heidelinde-Geßler-Ring 2"),
            person("c", "Heidelinde-Geißler-Ring 2"), person("d", "Heidelinde-Geßler-Ring 4"))
    assert same(r, "a", "b", "c") and not same(r, "a", "d")
    assert r.households.set_index("household_id").loc[ids(r)["a"], "address"] == "Heidelinde-Geißler-Ring 2"
    # the same spelling at another postcode is another place
    r = run(person("a", "Heidelinde-Geißler-Ring 2", "10115"), person("b", "Heidelinde-Geßler-Ring 2", "10117"))
    assert not same(r, "a", "b")


def test_a_street_from_an_older_record_at_the_same_postcode_completes_the_address():
    # the newest record (a loyalty questionnaire) has postcode and city only; the shop account has the street
    r = run(person("a", None, "10115", older=[("Hauptstraße 5", "10115", "Berlin", "DE")]), person("b", "Hauptstraße 5"))
    assert same(r, "a", "b") and basis(r)["a"] == "address"


def test_a_mover_belongs_to_the_household_of_the_current_address():
    partner = person("p", "Hauptstraße 5", "10115")
    moved = person("m", "Lindenweg 1", "80331", "München", older=[("Hauptstraße 5", "10115", "Berlin", "DE")])
    r = run(partner, moved)
    assert not same(r, "p", "m")
    assert r.households.set_index("household_id").loc[ids(r)["m"], "city"] == "München"
    # moved with only the new postcode known: the old street does not make the old household
    r = run(partner, person("m", None, "80331", "München", older=[("Hauptstraße 5", "10115", "Berlin", "DE")]))
    assert none(r, "m")


# --- joining through a shared phone ------------------------------------------------------------------------

LANDLINE = ("+493012345678", "fixed_line")


def test_a_customer_without_a_street_joins_the_household_of_its_shared_landline():
    r = run(person("a", "Hauptstraße 5", phones=[LANDLINE]), person("b", "Hauptstraße 5"),
            person("c", None, phones=[LANDLINE]))
    assert same(r, "a", "b", "c") and basis(r)["c"] == "phone"
    row = r.households.iloc[0]
    assert row["members"] == 3 and row["landline"] == LANDLINE[0]


def test_a_landline_given_at_two_addresses_joins_nobody():
    r = run(person("a", "Hauptstraße 5", phones=[LANDLINE]), person("b", "Lindenweg 1", phones=[LANDLINE]),
            person("c", None, phones=[LANDLINE]))
    assert none(r, "c") and not same(r, "a", "b")


def test_numbers_pointing_at_two_households_join_nobody():
    other = ("+493087654321", "fixed_line")
    r = run(person("a", "Hauptstraße 5", phones=[LANDLINE]), person("b", "Lindenweg 1", phones=[other]),
            person("c", None, phones=[LANDLINE, other]))
    assert none(r, "c")


def test_a_phone_join_needs_a_place_that_does_not_contradict_the_household():
    r = run(person("a", "Hauptstraße 5", "10115", phones=[LANDLINE]),
            person("same_pc", None, "10115", phones=[LANDLINE]),
            person("other_pc", None, "80331", "München", phones=[LANDLINE]),
            person("other_country", None, None, None, "FR", phones=[LANDLINE]))
    assert same(r, "a", "same_pc")
    assert none(r, "other_pc") and none(r, "other_country")


def test_landline_of_a_household():
    mobile = ("+4915112345678", "mobile")
    shared = ("+12125550123", "fixed_line_or_mobile")
    # a mobile is never the landline; a fixed_line_or_mobile number only when members share it
    r = run(person("a", "Hauptstraße 5", phones=[mobile, ("+12125550999", "fixed_line_or_mobile")]))
    assert pd.isna(r.households.iloc[0]["landline"])
    r = run(person("a", "Hauptstraße 5", phones=[shared]), person("b", "Hauptstraße 5", phones=[shared]))
    assert r.households.iloc[0]["landline"] == shared[0]
    # a mobile the family shares still joins a member without a street
    r = run(person("a", "Hauptstraße 5", phones=[mobile]), person("kid", None, phones=[mobile]))
    assert same(r, "a", "kid") and pd.isna(r.households.iloc[0]["landline"])


# --- the cap ---------------------------------------------------------------------------------------------


def test_an_address_with_more_customers_than_the_cap_is_no_household():
    crowd = [person(f"c{i:02d}", "Postfach 1234", "10115") for i in range(MAX_MEMBERS + 1)]
    r = run(*crowd, person("home", "Hauptstraße 5"))
    assert all(none(r, f"c{i:02d}") for i in range(MAX_MEMBERS + 1))
    assert {basis(r)[f"c{i:02d}"] for i in range(MAX_MEMBERS + 1)} == {"over_cap"}
    assert r.over_cap["customers"].tolist() == [MAX_MEMBERS + 1]
    assert r.households["members"].tolist() == [1]
    full = run(*crowd[:MAX_MEMBERS])
    assert full.households["members"].tolist() == [MAX_MEMBERS] and full.over_cap.empty


def test_phone_joins_never_push_a_household_over_the_cap():
    house = [person(f"m{i}", "Hauptstraße 5", phones=[LANDLINE]) for i in range(3)]
    joiners = [person(f"j{i}", None, phones=[LANDLINE]) for i in range(2)]
    r = run(*house, *joiners, max_members=4)
    assert r.households["members"].tolist() == [3] and none(r, "j0") and none(r, "j1")
    r = run(*house, *joiners, max_members=5)
    assert r.households["members"].tolist() == [5]


def test_an_address_over_the_cap_is_not_a_home_for_its_phone_either():
    crowd = [person(f"c{i}", "Marktplatz 1", phones=[LANDLINE]) for i in range(4)]
    r = run(*crowd, person("caller", None, phones=[LANDLINE]), max_members=3)
    assert none(r, "caller") and r.households.empty


# --- stable ids --------------------------------------------------------------------------------------------


def test_ids_are_opaque_and_minted_once():
    assert re.fullmatch(r"H[0-9a-f]{16}", new_household_id())
    golden, records, xref = world(person("a", "Hauptstraße 5"), person("b", "Lindenweg 1"))
    r = build_households(golden, records, xref, NOW)
    assert all(re.fullmatch(r"H[0-9a-f]{16}", h) for h in r.households["household_id"])
    assert list(r.history.columns) == HISTORY_COLUMNS and r.history.empty


def test_the_same_data_again_keeps_every_id():
    people = [person("a", "Hauptstraße 5"), person("b", "Hauptstraße 5"), person("c", "Lindenweg 1"), person("d", None)]
    first = run(*people)
    second = run(*people, previous=first, now=LATER, id_factory=counter())
    assert ids(second) == ids(first) and second.history.empty
    pd.testing.assert_frame_equal(second.households, first.households)


def test_a_member_moving_out_leaves_the_id_with_the_household_and_a_new_member_joins_it():
    first = run(person("a", "Hauptstraße 5"), person("b", "Hauptstraße 5"), person("c", "Hauptstraße 5"))
    old = ids(first)["a"]
    second = run(person("a", "Hauptstraße 5"), person("b", "Hauptstraße 5"), person("c", "Lindenweg 1"),
                 person("new", "Hauptstraße 5"), previous=first, now=LATER, id_factory=lambda: "Hmoved0000000000")
    got = ids(second)
    assert got["a"] == got["b"] == got["new"] == old
    assert got["c"] == "Hmoved0000000000"
    assert second.history[["old_id", "new_id", "reason"]].values.tolist() == [[old, "Hmoved0000000000", "split"]]
    assert (second.history["changed_at"] == pd.Timestamp(LATER)).all()


def test_a_household_that_moved_together_keeps_its_id_at_the_new_address():
    first = run(person("a", "Hauptstraße 5"), person("b", "Hauptstraße 5"), person("c", "Hauptstraße 5"))
    old = ids(first)["a"]
    second = run(person("a", "Lindenweg 1"), person("b", "Lindenweg 1"), person("c", "Hauptstraße 5"),
                 previous=first, now=LATER)
    assert ids(second)["a"] == ids(second)["b"] == old and ids(second)["c"] != old
    assert second.households.set_index("household_id").loc[old, "address"] == "Lindenweg 1"


def test_a_household_splitting_in_two_halves_leaves_the_id_with_the_half_that_stayed():
    first = run(person("a", "Hauptstraße 5"), person("b", "Hauptstraße 5"), person("c", "Hauptstraße 5"),
                person("d", "Hauptstraße 5"))
    old = ids(first)["a"]
    # a tie: a and b (who hold the smaller customer ids) moved, c and d stayed at the old address
    second = run(person("a", "Lindenweg 1"), person("b", "Lindenweg 1"), person("c", "Hauptstraße 5"),
                 person("d", "Hauptstraße 5"), previous=first, now=LATER)
    got = ids(second)
    assert got["c"] == got["d"] == old and got["a"] == got["b"] != old
    assert second.history[["old_id", "new_id", "reason"]].values.tolist() == [[old, got["a"], "split"]]


def test_moving_in_with_someone_merges_into_the_household_at_that_address():
    first = run(person("a", "Hauptstraße 5"), person("b", "Lindenweg 1"))
    home, mover = ids(first)["a"], ids(first)["b"]
    second = run(person("a", "Hauptstraße 5"), person("b", "Hauptstraße 5"), previous=first, now=LATER)
    assert ids(second) == {"a": home, "b": home}
    assert second.history[["old_id", "new_id", "reason"]].values.tolist() == [[mover, home, "merge"]]


def test_a_household_whose_members_are_gone_or_without_address_is_removed():
    first = run(person("a", "Hauptstraße 5"), person("b", "Lindenweg 1"), person("c", "Marktplatz 2"))
    second = run(person("a", "Hauptstraße 5"), person("b", None), previous=first, now=LATER)
    removed = second.history[second.history["reason"] == "removed"]
    assert sorted(removed["old_id"]) == sorted([ids(first)["b"], ids(first)["c"]])
    assert removed["new_id"].isna().all()


def test_a_minted_id_never_reuses_a_previous_one():
    first = run(person("a", "Hauptstraße 5"))
    taken = ids(first)["a"]
    draws = iter([taken, "Hfresh0000000000"])
    second = run(person("a", "Hauptstraße 5"), person("b", "Lindenweg 1"), previous=first, now=LATER,
                 id_factory=lambda: next(draws))
    assert ids(second) == {"a": taken, "b": "Hfresh0000000000"}


def test_golden_customers_carry_the_household_id_as_second_column():
    golden, records, xref = world(person("a", "Hauptstraße 5"), person("b", None))
    r = build_households(golden, records, xref, NOW)
    out = with_household_ids(golden, r.customers)
    assert list(out.columns[:2]) == ["customer_id", "household_id"] and len(out) == 2
    assert out["household_id"].isna().tolist() == [False, True]
    assert list(with_household_ids(out, r.customers).columns) == list(out.columns)


@pytest.mark.parametrize("max_members", [1, 2])
def test_the_cap_is_a_parameter(max_members):
    r = run(person("a", "Hauptstraße 5"), person("b", "Hauptstraße 5"), max_members=max_members)
    assert len(r.households) == (0 if max_members == 1 else 1)


# --- published with the rest of gold -----------------------------------------------------------------------


@pytest.mark.postgres
def test_households_are_published_to_postgres_readable_by_bi(pg_url, bi_role):
    import contextlib

    from customer_pipeline.publish.postgres import publish_gold
    from customer_pipeline_tests import pg

    first = run(person("a", "Hauptstraße 5", phones=[LANDLINE]), person("b", "Hauptstraße 5"), person("c", None))
    second = run(person("a", "Hauptstraße 5", phones=[LANDLINE]), person("b", "Lindenweg 1"), person("c", None),
                 previous=first, now=LATER)
    golden, _, _ = world(person("a", "Hauptstraße 5"), person("b", "Lindenweg 1"), person("c", None))
    tables = {"golden_customers": with_household_ids(golden, second.customers), "households": second.households,
              "household_id_history": second.history}
    result = publish_gold(pg_url, tables, bi_role)
    assert result["households"]["primary_key"] == ["household_id"] and result["households"]["rows"] == 2
    with contextlib.closing(pg.connect(pg_url)) as conn:
        for name in tables:
            assert pg.scalar(conn, "SELECT has_table_privilege(%s, %s, 'SELECT')", [bi_role, f"gold.{name}"]), name
        assert pg.rows(conn, "SELECT g.customer_id, h.members, h.landline FROM gold.golden_customers g "
                             "LEFT JOIN gold.households h USING (household_id) ORDER BY 1") == [
            ("a", 1, LANDLINE[0]), ("b", 1, None), ("c", None, None)]
        assert pg.scalar(conn, "SELECT count(*) FROM gold.household_id_history WHERE reason = 'split'") == 1
