"""Deterministic stitching, clustering, the review queue and review decisions."""

import numpy as np
import pandas as pd

from customer_pipeline.identity.clustering import REVIEW_COLUMNS, cluster, connected_components
from customer_pipeline.identity.deterministic import LINK_COLUMNS, deterministic_links

ACCEPT, REVIEW_LOW = 10.0, 2.0


def records(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows)).reindex(
        columns=["source", "source_key", "shop_customer_id", "loyalty_card_no", "anonymous_id"]
    ).astype("string")
    frame["record_id"] = frame["source"] + "|" + frame["source_key"]
    return frame


def identity_links(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["anonymous_id", "user_id"])


def pairs_of(links: pd.DataFrame) -> set[tuple[str, str, str]]:
    return set(zip(links["record_id_l"], links["record_id_r"], links["link_type"]))


def splink(l: str, r: str, weight: float, detail: str = '{"first_name": 3.1, "email": 9.0}') -> dict:
    prob = 1 / (1 + 2 ** (-weight))
    return dict(record_id_l=l, record_id_r=r, match_weight=weight, match_probability=prob,
                link_type="splink", comparison_detail=detail)


def links_frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=LINK_COLUMNS)


def members(clusters: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(g["record_id"]) for _, g in clusters.groupby("cluster_key")}


# --- deterministic links -----------------------------------------------------------------------

def test_shop_account_and_app_user_with_same_id_are_linked():
    recs = records(
        dict(source="shop", source_key="customer:42", shop_customer_id="42"),
        dict(source="app", source_key="user:42", shop_customer_id="42"),
        dict(source="app", source_key="user:43", shop_customer_id="43"),
    )
    links = deterministic_links(recs, identity_links())
    assert pairs_of(links) == {("app|user:42", "shop|customer:42", "deterministic:shop_app_user")}
    assert links["match_weight"].iloc[0] == float("inf")
    assert links["match_probability"].iloc[0] == 1.0
    assert links["comparison_detail"].isna().all()
    assert list(links.columns) == LINK_COLUMNS


def test_anonymous_device_is_stitched_via_identify_and_alias():
    recs = records(
        dict(source="app", source_key="user:7", shop_customer_id="7"),
        dict(source="app", source_key="anon:dev-a", anonymous_id="dev-a"),  # identify with both ids
        dict(source="app", source_key="anon:dev-b", anonymous_id="dev-b"),  # alias previousId -> userId
        dict(source="app", source_key="anon:dev-c", anonymous_id="dev-c"),  # never logged in
    )
    links = deterministic_links(recs, identity_links(("dev-a", "7"), ("dev-b", "7"), ("dev-b", "7")))
    assert pairs_of(links) == {
        ("app|anon:dev-a", "app|user:7", "deterministic:app_anon_user"),
        ("app|anon:dev-b", "app|user:7", "deterministic:app_anon_user"),
    }


def test_anonymous_device_falls_back_to_shop_account_without_app_user_record():
    recs = records(
        dict(source="shop", source_key="customer:7", shop_customer_id="7"),
        dict(source="app", source_key="anon:dev-a", anonymous_id="dev-a"),
    )
    links = deterministic_links(recs, identity_links(("dev-a", "7")))
    assert pairs_of(links) == {("app|anon:dev-a", "shop|customer:7", "deterministic:app_anon_user")}


def test_shared_device_used_by_two_accounts_links_nothing():
    recs = records(
        dict(source="app", source_key="user:1", shop_customer_id="1"),
        dict(source="app", source_key="user:2", shop_customer_id="2"),
        dict(source="app", source_key="anon:family-tablet", anonymous_id="family-tablet"),
    )
    links = deterministic_links(recs, identity_links(("family-tablet", "1"), ("family-tablet", "2")))
    assert links.empty


def test_call_center_references_to_customer_and_card():
    recs = records(
        dict(source="shop", source_key="customer:5", shop_customer_id="5"),
        dict(source="pos", source_key="card:9001", loyalty_card_no="9001"),
        dict(source="call_center", source_key="contact:c1", shop_customer_id="5"),
        dict(source="call_center", source_key="contact:c2", loyalty_card_no="9001"),
    )
    links = deterministic_links(recs, None)
    assert pairs_of(links) == {
        ("call_center|contact:c1", "shop|customer:5", "deterministic:call_center_customer_ref"),
        ("call_center|contact:c2", "pos|card:9001", "deterministic:call_center_card_ref"),
    }


def test_dangling_references_link_nothing():
    recs = records(
        dict(source="shop", source_key="customer:5", shop_customer_id="5"),
        dict(source="call_center", source_key="contact:c1", shop_customer_id="999"),
        dict(source="call_center", source_key="contact:c2", loyalty_card_no="0000"),
        dict(source="call_center", source_key="contact:c3", loyalty_card_no="0000"),
        dict(source="app", source_key="anon:dev-x", anonymous_id="dev-x"),
    )
    links = deterministic_links(recs, identity_links(("dev-x", "404"), ("dev-unknown", "5")))
    assert links.empty
    assert list(links.columns) == LINK_COLUMNS


def test_many_references_to_one_account_form_a_star_not_a_clique():
    contacts = [dict(source="call_center", source_key=f"contact:{i}", shop_customer_id="5") for i in range(50)]
    recs = records(dict(source="shop", source_key="customer:5", shop_customer_id="5"), *contacts)
    links = deterministic_links(recs, None)
    assert len(links) == 50
    assert set(links["record_id_r"]) == {"shop|customer:5"}
    assert (links["record_id_l"] < links["record_id_r"]).all()


def test_empty_records_give_empty_links():
    links = deterministic_links(records(), identity_links())
    assert links.empty and list(links.columns) == LINK_COLUMNS


# --- clustering ----------------------------------------------------------------------------------

def test_connected_components_root_is_smallest_member_even_on_long_chains():
    n = 100_000
    order = np.random.default_rng(0).permutation(n)
    root = connected_components(n + 2, order[:-1], order[1:])
    assert (root[:n] == 0).all()
    assert root[n] == n and root[n + 1] == n + 1


def test_deterministic_and_accepted_links_form_clusters_with_probabilities():
    ids = ["a|1", "a|2", "b|1", "b|2", "c|1"]
    links = pd.concat([
        links_frame(splink("a|1", "a|2", 15.0)),
        links_frame(dict(record_id_l="b|1", record_id_r="b|2", match_weight=float("inf"), match_probability=1.0,
                         link_type="deterministic:shop_app_user", comparison_detail=None)),
    ])
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, None)
    assert members(clusters) == {frozenset({"a|1", "a|2"}), frozenset({"b|1", "b|2"}), frozenset({"c|1"})}
    by_id = clusters.set_index("record_id")
    assert by_id.loc["a|2", "cluster_key"] == "a|1"
    assert by_id.loc["a|1", "match_probability"] == 1 / (1 + 2 ** -15.0)
    assert by_id.loc["b|1", "match_probability"] == 1.0
    assert by_id.loc["c|1", "match_probability"] == 1.0
    assert list(clusters.columns) == ["record_id", "cluster_key", "match_probability"]
    assert review.empty and list(review.columns) == REVIEW_COLUMNS


def test_record_probability_is_the_best_link_that_holds_it():
    ids = ["r|1", "r|2", "r|3"]
    links = links_frame(splink("r|1", "r|2", 12.0), splink("r|2", "r|3", 20.0))
    clusters, _ = cluster(ids, links, ACCEPT, REVIEW_LOW, None)
    prob = clusters.set_index("record_id")["match_probability"]
    assert prob["r|1"] == 1 / (1 + 2 ** -12.0)
    assert prob["r|2"] == prob["r|3"] == 1 / (1 + 2 ** -20.0)


def test_grey_zone_pairs_go_to_the_review_queue_with_their_detail():
    ids = ["p|1", "p|2", "p|3", "p|4"]
    links = links_frame(
        splink("p|2", "p|1", 5.0, '{"surname": 4.0}'),  # unordered on purpose
        splink("p|3", "p|4", -3.0),
    )
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, None)
    assert members(clusters) == {frozenset({i}) for i in ids}
    assert len(review) == 1
    row = review.iloc[0]
    assert (row["record_id_l"], row["record_id_r"]) == ("p|1", "p|2")
    assert row["match_weight"] == 5.0 and row["comparison_detail"] == '{"surname": 4.0}'
    assert row["reason"] == "uncertain" and not row["same_cluster"]


def test_household_members_below_threshold_stay_apart():
    # Same surname, address and landline, different first names and birth dates: two people.
    ids = ["pos|card:1", "pos|card:2", "shop|customer:3"]
    links = links_frame(
        splink("pos|card:1", "pos|card:2", 1.5, '{"first_name": -4.0, "surname": 5.0, "postcode": 4.0}'),
        splink("pos|card:1", "shop|customer:3", 14.0),
    )
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, None)
    assert members(clusters) == {frozenset({"pos|card:1", "shop|customer:3"}), frozenset({"pos|card:2"})}
    assert review.empty


def test_namesakes_in_the_grey_zone_stay_apart_until_reviewed():
    ids = ["shop|customer:1", "pos|card:9"]
    detail = '{"first_name": 6.0, "surname": 6.0, "dob": -6.0}'
    links = links_frame(splink("shop|customer:1", "pos|card:9", 6.0, detail))
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, None)
    assert clusters["cluster_key"].nunique() == 2
    assert list(zip(review["record_id_l"], review["record_id_r"])) == [("pos|card:9", "shop|customer:1")]


def test_match_decision_joins_and_clears_the_queue():
    ids = ["q|1", "q|2", "q|3"]
    links = links_frame(splink("q|1", "q|2", 5.0))
    decisions = pd.DataFrame([
        dict(record_id_l="q|2", record_id_r="q|1", decision="match"),
        dict(record_id_l="q|2", record_id_r="q|3", decision="match"),  # a pair Splink never scored
    ])
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, decisions)
    assert members(clusters) == {frozenset(ids)}
    assert clusters["match_probability"].eq(1.0).all()
    assert review.empty


def test_no_match_decision_cuts_an_accepted_or_deterministic_link():
    ids = ["n|1", "n|2", "n|3", "n|4"]
    links = links_frame(
        splink("n|1", "n|2", 18.0),
        dict(record_id_l="n|3", record_id_r="n|4", match_weight=float("inf"), match_probability=1.0,
             link_type="deterministic:app_anon_user", comparison_detail=None),
    )
    decisions = pd.DataFrame([
        dict(record_id_l="n|1", record_id_r="n|2", decision="no_match"),
        dict(record_id_l="n|4", record_id_r="n|3", decision="no_match"),
    ])
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, decisions)
    assert members(clusters) == {frozenset({i}) for i in ids}
    assert review.empty


def test_no_match_contradicted_by_other_links_is_flagged_for_review():
    ids = ["k|1", "k|2", "k|3"]
    links = links_frame(splink("k|1", "k|2", 4.0), splink("k|1", "k|3", 15.0), splink("k|2", "k|3", 15.0))
    decisions = pd.DataFrame([dict(record_id_l="k|1", record_id_r="k|2", decision="no_match")])
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, decisions)
    assert members(clusters) == {frozenset(ids)}  # the decision cuts the direct edge only
    assert list(review["reason"]) == ["no_match_conflict"]
    assert review["same_cluster"].all()


def test_latest_decision_wins():
    ids = ["d|1", "d|2"]
    links = links_frame(splink("d|1", "d|2", 5.0))
    decisions = pd.DataFrame([
        dict(record_id_l="d|1", record_id_r="d|2", decision="no_match", decided_at="2025-02-01"),
        dict(record_id_l="d|2", record_id_r="d|1", decision="match", decided_at="2025-01-01"),
    ])
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, decisions)
    assert clusters["cluster_key"].nunique() == 2
    assert review.empty


def test_links_to_unknown_records_are_ignored():
    clusters, review = cluster(["u|1"], links_frame(splink("u|1", "u|gone", 30.0), splink("u|1", "u|x", 5.0)),
                               ACCEPT, REVIEW_LOW, None)
    assert list(clusters["record_id"]) == ["u|1"]
    assert review.empty


def test_no_links_at_all_gives_singletons():
    clusters, review = cluster(pd.Series(["z|2", "z|1"]), None, ACCEPT, REVIEW_LOW, None)
    assert list(clusters["record_id"]) == ["z|1", "z|2"]
    assert list(clusters["cluster_key"]) == ["z|1", "z|2"]
    assert review.empty


# --- links that rest on the name alone ---------------------------------------------------------

NAME_ONLY = '{"first_name": 7.0, "last_name": 9.0, "birth_date": 0.0, "email": 0.0, "phone": 0.0, "address": 0.0}'
NAME_ONLY_ACCEPT = ACCEPT + 1.0


def evidence(**kinds: str) -> pd.DataFrame:
    return pd.DataFrame({"record_id": [k.replace("_", "|") for k in kinds], "evidence": list(kinds.values())})


def test_a_bare_name_joins_the_one_customer_its_name_points_to():
    # "Mary Smith" on a call: below the accept weight, but only one customer can be her.
    ids = ["shop|1", "pos|1", "cc|1"]
    links = links_frame(splink("pos|1", "shop|1", 20.0), splink("cc|1", "shop|1", 3.0, NAME_ONLY),
                        splink("cc|1", "pos|1", 3.0, NAME_ONLY))
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, None, evidence=evidence(cc_1="name"))
    assert members(clusters) == {frozenset(ids)}
    assert clusters.set_index("record_id").loc["cc|1", "match_probability"] == 1 / (1 + 2 ** -3.0)
    assert set(review["reason"]) == {"uncertain"} and review["same_cluster"].all()


def test_a_bare_name_never_bridges_two_namesakes():
    # Two customers called Theo van Orleans (different emails, addresses) and a call from "Theo
    # van Orleans": the name links the call to both, strongly; it joins neither and bridges nothing.
    ids = ["shop|a", "shop|b", "cc|1"]
    links = links_frame(splink("cc|1", "shop|a", 15.0, NAME_ONLY), splink("cc|1", "shop|b", 15.0, NAME_ONLY))
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, None, evidence=evidence(cc_1="name"))
    assert members(clusters) == {frozenset({i}) for i in ids}
    assert list(review["reason"]) == ["name_only", "name_only"]
    assert not review["same_cluster"].any()


def test_without_evidence_kinds_a_strong_name_only_link_still_cannot_bridge():
    ids = ["shop|a", "shop|b", "pos|c"]
    links = links_frame(splink("pos|c", "shop|a", 15.0, NAME_ONLY), splink("pos|c", "shop|b", 15.0, NAME_ONLY))
    clusters, _ = cluster(ids, links, ACCEPT, REVIEW_LOW, None)
    assert members(clusters) == {frozenset({i}) for i in ids}


def test_name_only_link_between_two_full_customers_needs_the_higher_bar_and_a_single_partner():
    ids = ["shop|1", "pos|1", "shop|2", "pos|2", "pos|3"]
    links = links_frame(
        splink("pos|1", "shop|1", NAME_ONLY_ACCEPT - 0.5, NAME_ONLY),  # above accept, below the name-only bar
        splink("pos|2", "shop|2", NAME_ONLY_ACCEPT, NAME_ONLY),        # each the other's only partner
    )
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, None, name_only_accept_weight=NAME_ONLY_ACCEPT)
    assert members(clusters) == {frozenset({"shop|1"}), frozenset({"pos|1"}), frozenset({"shop|2", "pos|2"}),
                                 frozenset({"pos|3"})}
    assert list(zip(review["record_id_l"], review["reason"])) == [("pos|1", "name_only")]
    # A third customer with the same name: pos|2 is no longer anyone's only partner.
    links = pd.concat([links, links_frame(splink("pos|2", "pos|3", NAME_ONLY_ACCEPT + 2, NAME_ONLY))])
    clusters, _ = cluster(ids, links, ACCEPT, REVIEW_LOW, None, name_only_accept_weight=NAME_ONLY_ACCEPT)
    assert members(clusters) == {frozenset({i}) for i in ids}


def test_a_caller_with_an_unknown_number_joins_the_one_customer_of_that_name():
    # A call-center contact with a name and a phone no other record has (no birth date, no address).
    ids = ["shop|1", "cc|1", "cc|2", "shop|9"]
    links = links_frame(
        splink("cc|1", "shop|1", 4.0, NAME_ONLY),
        splink("cc|2", "shop|1", 4.0, NAME_ONLY), splink("cc|2", "shop|9", 4.0, NAME_ONLY),
    )
    clusters, _ = cluster(ids, links, ACCEPT, REVIEW_LOW, None,
                          evidence=evidence(cc_1="contact", cc_2="contact", shop_1="more", shop_9="more"))
    assert members(clusters) == {frozenset({"shop|1", "cc|1"}), frozenset({"cc|2"}), frozenset({"shop|9"})}


def test_bare_names_that_agree_form_one_group_that_needs_a_single_anchor():
    # Two calls from "James Butler" agree with each other; one also points at customer a, the other
    # at customer b (two James Butlers): the pair of calls stays apart from both.
    ids = ["cc|1", "cc|2", "shop|a", "shop|b"]
    links = links_frame(
        splink("cc|1", "cc|2", NAME_ONLY_ACCEPT, NAME_ONLY),
        splink("cc|1", "shop|a", 3.0, NAME_ONLY), splink("cc|2", "shop|b", 3.0, NAME_ONLY),
    )
    clusters, _ = cluster(ids, links, ACCEPT, REVIEW_LOW, None, evidence=evidence(cc_1="name", cc_2="name"),
                          name_only_accept_weight=NAME_ONLY_ACCEPT)
    assert members(clusters) == {frozenset({"cc|1", "cc|2"}), frozenset({"shop|a"}), frozenset({"shop|b"})}


def test_a_no_match_decision_keeps_a_bare_name_apart():
    ids = ["shop|1", "cc|1"]
    links = links_frame(splink("cc|1", "shop|1", 3.0, NAME_ONLY))
    decisions = pd.DataFrame([dict(record_id_l="cc|1", record_id_r="shop|1", decision="no_match")])
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, decisions, evidence=evidence(cc_1="name"))
    assert clusters["cluster_key"].nunique() == 2
    assert review.empty


def test_an_unreadable_or_missing_detail_counts_as_more_than_a_name():
    # Only a detail that shows the name alone restricts a link; anything unreadable is scored as before.
    ids = ["x|1", "x|2", "x|3", "x|4"]
    links = links_frame(splink("x|1", "x|2", 15.0, "not json"), splink("x|1", "x|3", 15.0, None),
                        splink("x|4", "x|2", 15.0, NAME_ONLY))
    clusters, review = cluster(ids, links, ACCEPT, REVIEW_LOW, None, name_only_accept_weight=20.0)
    assert members(clusters) == {frozenset({"x|1", "x|2", "x|3"}), frozenset({"x|4"})}
    assert list(zip(review["record_id_l"], review["record_id_r"], review["reason"])) == [("x|2", "x|4", "name_only")]


def _people(*rows: tuple[str, str | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame([{"record_id": r, "first_name_norm": f, "first_name_group": f, "birth_date": d}
                         for r, f, d in rows])


def test_a_household_joined_through_a_shared_phone_is_split_and_the_link_reviewed():
    # anna and bernd share the family's number: a strong link, but two birth dates and two first names
    links = links_frame(splink("a1", "a2", 25.0), splink("a1", "b1", 12.0), splink("b1", "b2", 25.0))
    people = _people(("a1", "anna", "1980-01-02"), ("a2", "anna", None), ("b1", "bernd", "1975-05-05"),
                     ("b2", "bernd", "1975-05-05"))
    clusters, queue = cluster(["a1", "a2", "b1", "b2"], links, ACCEPT, REVIEW_LOW, people=people)
    assert members(clusters) == {frozenset({"a1", "a2"}), frozenset({"b1", "b2"})}
    cut = queue[queue["reason"] == "conflict_split"]
    assert set(zip(cut["record_id_l"], cut["record_id_r"])) == {("a1", "b1")}
    assert not cut["same_cluster"].any()


def test_a_chain_between_two_people_is_cut_at_its_weakest_link():
    # a1 - m (strong) - b1 (weaker): m is anna's record without a birth date, b1 is bernd
    links = links_frame(splink("a1", "m", 20.0), splink("m", "b1", 11.0))
    people = _people(("a1", "anna", "1980-01-02"), ("m", "anna", None), ("b1", "bernd", "1975-05-05"))
    clusters, _ = cluster(["a1", "m", "b1"], links, ACCEPT, REVIEW_LOW, people=people)
    assert members(clusters) == {frozenset({"a1", "m"}), frozenset({"b1"})}


def test_typos_swapped_dates_and_nicknames_are_not_conflicts_and_hard_links_are_never_cut():
    links = links_frame(splink("a", "b", 15.0), splink("c", "d", 15.0),
                        dict(splink("e", "f", 0.0), match_weight=float("inf"), match_probability=1.0,
                             link_type="deterministic_account"))
    people = _people(("a", "katharina", "1980-01-02"), ("b", "katharine", "1980-02-01"),  # typo, day/month swap
                     ("c", "anna", "1980-01-02"), ("d", "anna", "1981-01-02"),  # one digit of the year
                     ("e", "otto", "1950-01-01"), ("f", "ida", "1990-09-09"))  # a shop account: hard evidence
    clusters, queue = cluster(list("abcdef"), links, ACCEPT, REVIEW_LOW, people=people)
    assert members(clusters) == {frozenset("ab"), frozenset("cd"), frozenset("ef")}
    assert "conflict_split" not in set(queue["reason"])


def test_a_link_resting_on_what_a_home_shares_joins_no_one_and_is_reviewed():
    # first names against each other; surname, address and the family phone for it; no birth date, no email
    home = '{"first_name": -6.6, "last_name": 9.2, "birth_date": 0.0, "email": 0.0, "phone": 6.3, "address": 9.8}'
    person = '{"first_name": -6.6, "last_name": 9.2, "birth_date": 14.0, "email": 0.0, "phone": 6.3, "address": 9.8}'
    links = links_frame(splink("h1", "h2", 12.0, home), splink("p1", "p2", 26.0, person))
    clusters, queue = cluster(["h1", "h2", "p1", "p2"], links, ACCEPT, REVIEW_LOW)
    assert members(clusters) == {frozenset({"h1"}), frozenset({"h2"}), frozenset({"p1", "p2"})}
    assert set(zip(queue["record_id_l"], queue["record_id_r"], queue["reason"])) == {("h1", "h2", "household")}


def test_one_doubtful_link_between_two_groups_is_cut_and_reviewed_but_a_strong_one_or_a_lone_record_is_not():
    chain = links_frame(splink("a1", "a2", 25.0), splink("b1", "b2", 25.0), splink("a2", "b1", 12.0))
    clusters, queue = cluster(["a1", "a2", "b1", "b2"], chain, ACCEPT, REVIEW_LOW)
    assert members(clusters) == {frozenset({"a1", "a2"}), frozenset({"b1", "b2"})}
    assert set(zip(queue["record_id_l"], queue["record_id_r"], queue["reason"])) >= {("a2", "b1", "bridge")}
    strong = links_frame(splink("a1", "a2", 25.0), splink("b1", "b2", 25.0), splink("a2", "b1", 20.0))
    assert members(cluster(["a1", "a2", "b1", "b2"], strong, ACCEPT, REVIEW_LOW)[0]) == {frozenset({"a1", "a2", "b1", "b2"})}
    lone = links_frame(splink("a1", "a2", 25.0), splink("a3", "a2", 25.0), splink("a2", "c", 12.0))
    assert members(cluster(["a1", "a2", "a3", "c"], lone, ACCEPT, REVIEW_LOW)[0]) == {frozenset({"a1", "a2", "a3", "c"})}


def test_namesakes_held_together_only_by_a_record_without_birth_date_are_split():
    # father and son, one name, one address: each linked to the shop account that has no birth date
    links = links_frame(splink("sr", "acct", 25.3), splink("jr", "acct", 25.0), splink("jr", "jr2", 29.0))
    people = _people(("sr", "thomas", "1964-08-01"), ("acct", "thomas", None), ("jr", "thomas", "1997-06-09"),
                     ("jr2", "thomas", None))
    clusters, queue = cluster(["sr", "acct", "jr", "jr2"], links, ACCEPT, REVIEW_LOW, people=people)
    assert members(clusters) == {frozenset({"sr", "acct"}), frozenset({"jr", "jr2"})}
    assert set(zip(queue.loc[queue["reason"] == "conflict_split", "record_id_l"],
                   queue.loc[queue["reason"] == "conflict_split", "record_id_r"])) == {("acct", "jr")}


def test_a_birth_date_the_model_accepted_directly_is_not_a_conflict():
    # a duplicate whose birth date was replaced (FEBRL), linked directly to a record of the other date:
    # the disagreement was scored and accepted, so the cluster stands
    links = links_frame(splink("orig", "dup1", 30.0), splink("odd", "dup1", 11.5), splink("odd", "acct", 14.0),
                        splink("acct", "orig", 22.0))
    people = _people(("orig", "jake", "1967-02-27"), ("dup1", "jake", "1967-02-27"), ("odd", "jake", "1978-07-27"),
                     ("acct", "jake", None))
    clusters, queue = cluster(["orig", "dup1", "odd", "acct"], links, ACCEPT, REVIEW_LOW, people=people)
    assert members(clusters) == {frozenset({"orig", "dup1", "odd", "acct"})}
    assert "conflict_split" not in set(queue["reason"])


def test_first_names_held_together_only_by_a_record_without_first_name_are_split():
    # a call-center contact with the surname and the family's landline bridges charles and ian
    links = links_frame(splink("charles", "cc_charles", 32.0), splink("cc_charles", "cc_family", 20.9),
                        splink("cc_family", "ian", 20.5))
    people = _people(("charles", "charles", None), ("cc_charles", "charles", None), ("cc_family", None, None),
                     ("ian", "ian", "2005-02-01"))
    clusters, _ = cluster(["charles", "cc_charles", "cc_family", "ian"], links, ACCEPT, REVIEW_LOW, people=people)
    assert members(clusters) == {frozenset({"charles", "cc_charles", "cc_family"}), frozenset({"ian"})}
    # linked directly, far-apart first names stand (typo-ridden data replaces first names in true duplicates)
    direct = links_frame(splink("charles", "ian", 22.0))
    clusters, _ = cluster(["charles", "ian"], direct, ACCEPT, REVIEW_LOW,
                          people=_people(("charles", "charles", None), ("ian", "ian", "2005-02-01")))
    assert members(clusters) == {frozenset({"charles", "ian"})}
