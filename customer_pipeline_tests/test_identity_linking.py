"""Splink linkage: settings build, train/predict round trip on a small fixture, links-frame shape, model reload."""

import json
import random
import re
from datetime import date, timedelta

import pandas as pd
import pytest

from customer_pipeline.identity import linking
from customer_pipeline.identity import splink_model as sm

FIRST = ["anna", "ben", "clara", "david", "eva", "felix", "greta", "hans", "ida", "jonas", "katrin", "lukas",
         "maria", "niklas", "olga", "paul", "rosa", "sven", "tina", "uwe", "vera", "walter", "yvonne", "zoe",
         "thomas", "julia", "stefan", "sabine", "michael", "petra"]
LAST = ["mueller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker", "schulz", "hoffmann",
        "koch", "richter", "klein", "wolf", "neumann", "schwarz", "zimmermann", "braun", "krueger", "hofmann",
        "hartmann", "lange", "schmitt", "werner", "krause", "meier", "lehmann", "koehler", "huber", "kaiser"]
STREETS = ["hauptstrasse", "bahnhofstrasse", "gartenweg", "lindenallee", "schulstrasse", "dorfplatz", "bergweg"]
CITIES = [("10115", "Berlin"), ("20095", "Hamburg"), ("80331", "Muenchen"), ("50667", "Koeln"), ("60311", "Frankfurt"),
          ("70173", "Stuttgart"), ("04109", "Leipzig"), ("01067", "Dresden")]


def _typo(s: str, rng: random.Random) -> str:
    if len(s) < 4:
        return s
    i = rng.randrange(1, len(s) - 1)
    return s[:i] + s[i + 1] + s[i] + s[i + 2:]


def _record(source: str, key: str, p: dict, **override) -> dict:
    rec = {
        "source": source, "source_key": key,
        "first_name_norm": p["first"], "last_name_norm": p["last"],
        "first_name": p["first"].title(), "last_name": p["last"].title(),
        "name_key": f"{p['last']} {p['first']}",
        "birth_date": p["dob"], "email": p["email"], "email_corrected": p["email"],
        "phone_e164": p["phone"], "phone_type": p["phone_type"],
        "street": p["street"], "postcode": p["postcode"], "city": p["city"], "country": "DE",
    }
    rec.update(override)
    return rec


def make_fixture(n_persons: int = 400, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Person records in the `staging.person_records` shape plus truth (record_id, person_id).

    Every person has 1-4 records with typos, missing values and swapped names; households share
    address, landline and last name; namesakes share a common name and nothing else.
    """
    rng = random.Random(seed)
    persons = []
    for i in range(n_persons):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        postcode, city = rng.choice(CITIES)
        persons.append({
            "pid": f"P{i}", "first": first, "last": last,
            "dob": date(1940, 1, 1) + timedelta(days=rng.randrange(0, 60 * 365)),
            "email": f"{first}.{last}{rng.randrange(1, 999)}@example.{rng.choice(['de', 'com', 'org'])}",
            "phone": f"+491{rng.randrange(50, 79)}{rng.randrange(10**7, 10**8)}", "phone_type": "mobile",
            "street": f"{rng.choice(STREETS)} {rng.randrange(1, 150)}", "postcode": postcode, "city": city,
        })
    rows, truth = [], []
    for p in persons:
        for j in range(rng.choice([1, 2, 2, 3, 4])):
            source = ["pos", "shop", "call_center", "app"][j % 4]
            over = {}
            r = rng.random()
            if r < 0.15:
                over["first_name_norm"] = _typo(p["first"], rng)
            elif r < 0.25:
                over["last_name_norm"] = _typo(p["last"], rng)
            elif r < 0.30:
                over["first_name_norm"], over["last_name_norm"] = p["last"], p["first"]
            if rng.random() < 0.3:
                over["email_corrected"] = None
            if rng.random() < 0.3:
                over["phone_e164"] = None
            if rng.random() < 0.2:
                over["birth_date"] = None
            if source == "pos":
                over["street"] = None
            key = f"k{p['pid']}_{j}"
            rows.append(_record(source, key, p, **over))
            truth.append({"record_id": f"{source}|{key}", "person_id": p["pid"]})
    records = pd.DataFrame(rows)
    return records, pd.DataFrame(truth)


def household_and_namesakes() -> pd.DataFrame:
    """A duplicate pair, a household pair (same address and landline) and a namesake pair."""
    base = {"first": "karl", "last": "brandstaetter", "dob": date(1971, 3, 14), "email": "karl.b@example.de",
            "phone": "+4915112345678", "phone_type": "mobile", "street": "ulmenweg 7", "postcode": "89073",
            "city": "Ulm"}
    home = {"first": "hannelore", "last": "oberhuber", "dob": date(1958, 9, 2), "email": None,
            "phone": "+49731998877", "phone_type": "fixed_line", "street": "kastanienweg 3", "postcode": "89075",
            "city": "Ulm"}
    spouse = dict(home, first="gottfried", dob=date(1955, 1, 27))
    namesake_a = {"first": "thomas", "last": "mueller", "dob": date(1980, 5, 5), "email": "tm80@example.de",
                  "phone": "+4917011111111", "phone_type": "mobile", "street": "hafenstrasse 1",
                  "postcode": "20095", "city": "Hamburg"}
    namesake_b = dict(namesake_a, dob=date(1962, 11, 30), email="t.mueller@example.com", phone="+4916022222222",
                      street="marktplatz 9", postcode="80331", city="Muenchen")
    return pd.DataFrame([
        _record("shop", "customer:dup1", base),
        _record("pos", "card:dup2", base, first_name_norm="kral", email_corrected=None, street=None),
        _record("shop", "customer:home1", home),
        _record("pos", "card:home2", spouse),
        _record("shop", "customer:ns1", namesake_a),
        _record("app", "user:ns2", namesake_b),
    ])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    records, truth = make_fixture()
    records = pd.concat([records, household_and_namesakes()], ignore_index=True)
    model_path = tmp_path_factory.mktemp("model") / "splink_model.json"
    model = linking.train(records, model_path, u_max_pairs=2e5)
    return records, truth, model_path, model


def test_settings_build_a_linker_on_duckdb():
    records, _ = make_fixture(30)
    prepared = sm.prepare(records)
    with sm.duckdb_session(len(prepared)) as db_api:
        linker = sm.new_linker(db_api, prepared, linking.settings())
    s = linker._settings_obj
    assert s._link_type == "dedupe_only"
    assert linking.settings()["unique_id_column_name"] == "record_id"
    assert {c.output_column_name for c in s.comparisons} == {
        "first_name", "last_name", "birth_date", "email", "phone", "address"}
    assert len(s._blocking_rules_to_generate_predictions) >= 6


def test_prepare_builds_record_id_and_nulls_blanks():
    records = household_and_namesakes()
    records.loc[0, "email_corrected"] = "  "
    prepared = sm.prepare(records)
    assert prepared.loc[0, "record_id"] == "shop|customer:dup1"
    assert pd.isna(prepared.loc[0, "email_norm"])
    assert prepared.loc[0, "birth_date"] == "1971-03-14"
    assert prepared.loc[0, "birth_date_dm"] is None or pd.isna(prepared.loc[0, "birth_date_dm"])
    assert prepared.loc[2, "birth_date_dm"] == "1958-02-09"
    assert not prepared["record_id"].duplicated().any()


def test_prepare_rejects_duplicate_record_ids():
    records = household_and_namesakes()
    with pytest.raises(ValueError, match="unique"):
        sm.prepare(pd.concat([records, records.head(1)]))


def test_round_trip_finds_duplicate_and_keeps_household_and_namesakes_apart(trained):
    records, _, model_path, model = trained
    links = linking.predict(records, model_path, threshold_match_weight=-50)
    assert list(links.columns) == linking.LINK_COLUMNS
    assert links.attrs["pairs_compared"] >= len(links) > 0
    weight = {(r.record_id_l, r.record_id_r): r.match_weight for r in links.itertuples()}
    dup = weight[("pos|card:dup2", "shop|customer:dup1")]
    assert dup >= linking.DEFAULT_ACCEPT_WEIGHT
    household = weight.get(("pos|card:home2", "shop|customer:home1"), float("-inf"))
    assert household < linking.DEFAULT_ACCEPT_WEIGHT
    namesakes = weight.get(("app|user:ns2", "shop|customer:ns1"), float("-inf"))
    assert namesakes < linking.DEFAULT_ACCEPT_WEIGHT


def test_pairs_per_blocking_rule_are_reported_and_agree_with_splinks_own_count(trained):
    records, _, model_path, _ = trained
    links = linking.predict(records, model_path)
    by_rule = links.attrs["pairs_by_rule"]
    model = json.loads(model_path.read_text())
    assert [r["rule"] for r in by_rule] == [linking._rule_sql(r) for r in linking.model_blocking_rules(model)]
    assert by_rule[-1]["cumulative"] == links.attrs["pairs_compared"] > 0
    exact = linking.count_comparisons(records, model_path)
    assert [r["pairs_added"] for r in by_rule] == exact["marginal_comparison_count"].astype(int).tolist()


def test_links_frame_follows_the_contract(trained):
    records, _, model_path, _ = trained
    links = linking.predict(records, model_path)
    assert (links["record_id_l"] < links["record_id_r"]).all()
    assert (links["link_type"] == "splink").all()
    assert (links["match_weight"] >= linking.DEFAULT_REVIEW_LOW_WEIGHT).all()
    assert links["match_probability"].between(0, 1).all()
    assert not links.duplicated(["record_id_l", "record_id_r"]).any()
    detail = json.loads(links["comparison_detail"].iloc[0])
    assert set(detail) == {"first_name", "last_name", "birth_date", "email", "phone", "address"}
    assert all(isinstance(v, (int, float)) for v in detail.values())


def test_fixture_accuracy_is_reasonable(trained):
    records, truth, model_path, _ = trained
    links = linking.predict(records, model_path, threshold_match_weight=linking.DEFAULT_ACCEPT_WEIGHT)
    person = dict(zip(truth["record_id"], truth["person_id"]))
    found = [person.get(l) is not None and person.get(l) == person.get(r)
             for l, r in zip(links["record_id_l"], links["record_id_r"])]
    precision = sum(found) / len(found)
    sizes = truth.groupby("person_id").size()
    recall = sum(found) / int((sizes * (sizes - 1) // 2).sum())
    assert precision >= 0.97
    assert recall >= 0.8


def test_saved_model_loads_and_is_trained(trained):
    _, _, model_path, model = trained
    saved = json.loads(model_path.read_text())
    assert saved["customer_pipeline"]["fingerprint"]["records"] == len(trained[0])
    reloaded = sm.settings_creator().from_path_or_dict({k: v for k, v in saved.items() if k != "customer_pipeline"})
    assert reloaded.unique_id_column_name == "record_id"
    assert 0 < model["probability_two_random_records_match"] < 1
    for comparison in model["comparisons"]:
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        trained = [lvl for lvl in levels if "m_probability" in lvl and "u_probability" in lvl]
        # the exact-agreement level and the else level are seen even on small data
        assert levels[0] in trained and levels[-1] in trained, comparison["output_column_name"]


def test_trained_model_scores_the_hard_cases(trained):
    links = linking.predict(household_and_namesakes(), trained[2], threshold_match_weight=-100)
    weight = {(r.record_id_l, r.record_id_r): r.match_weight for r in links.itertuples()}
    assert weight[("pos|card:dup2", "shop|customer:dup1")] >= linking.DEFAULT_ACCEPT_WEIGHT
    assert weight[("pos|card:home2", "shop|customer:home1")] < linking.DEFAULT_REVIEW_LOW_WEIGHT
    assert weight[("app|user:ns2", "shop|customer:ns1")] < linking.DEFAULT_REVIEW_LOW_WEIGHT


def test_prepare_drops_email_tags_and_splits_mobile_from_landline():
    records = household_and_namesakes()
    records.loc[0, "email_corrected"] = "Karl.B+shop1@example.de"
    prepared = sm.prepare(records).set_index("record_id")
    assert prepared.loc["shop|customer:dup1", "email_norm"] == "karl.b@example.de"
    assert prepared.loc["shop|customer:dup1", "phone_mobile"] == "+4915112345678"
    assert pd.isna(prepared.loc["shop|customer:dup1", "phone_home"])
    assert prepared.loc["shop|customer:home1", "phone_home"] == "+49731998877"
    assert pd.isna(prepared.loc["shop|customer:home1", "phone_mobile"])


def test_chart_sample_keeps_whole_surnames_and_is_deterministic():
    from customer_pipeline.identity.charts import sample_for_charts

    surnames = [f"name{i % 500}" for i in range(5_000)]
    records = pd.DataFrame({"record_id": [f"r|{i}" for i in range(5_000)], "last_name_norm": surnames})
    records.loc[::97, "last_name_norm"] = None
    assert sample_for_charts(records, 10_000) is records
    sample = sample_for_charts(records, 1_000)
    assert 500 <= len(sample) <= 1_500
    kept = set(sample["last_name_norm"].dropna())
    assert records[records["last_name_norm"].isin(kept)].index.isin(sample.index).all()
    assert sample.index.equals(sample_for_charts(records, 1_000).index)


def test_record_evidence_tells_bare_names_and_contacts_from_fuller_records():
    records = pd.DataFrame({
        "record_id": ["cc|1", "cc|2", "cc|3", "pos|1", "app|1"],
        "email_corrected": [None, "", "mary@example.com", None, None],
        "phone_e164": [None, "  ", None, "+447700900123", None],
        "birth_date": [None, None, None, None, pd.NaT],
        "street": [None, None, None, None, None],
        "postcode": [None, None, None, "E1 6AN", None],
        "city": [None, None, None, None, "Leeds"],
    })
    kinds = dict(zip(*sm.record_evidence(records).to_dict("list").values()))
    assert kinds == {"cc|1": "name", "cc|2": "name", "cc|3": "contact", "pos|1": "more", "app|1": "more"}


def test_link_detail_keys_include_the_name_comparisons_the_clustering_knows():
    from customer_pipeline.identity.clustering import NAME_COMPARISONS

    names = [c.create_comparison_dict("duckdb")["output_column_name"] for c in sm.comparisons()]
    assert set(NAME_COMPARISONS) <= set(names) and len(names) > len(NAME_COMPARISONS)


def test_regularise_floors_m_and_caps_partial_levels():
    model = {"comparisons": [{"comparison_levels": [
        {"is_null_level": True},
        {"m_probability": 0.9, "u_probability": 0.01},  # exact: weight log2(90)
        {"m_probability": 0.05, "u_probability": 1e-6},  # partial stronger than exact: capped
        {"u_probability": 0.001},  # never seen among matches: floored
        {"m_probability": 0.0, "u_probability": 0.989},  # else: floored at 1%
    ]}]}
    levels = sm.regularise(model)["comparisons"][0]["comparison_levels"][1:]
    assert abs(sum(lvl["m_probability"] for lvl in levels) - 1) < 1e-9
    assert levels[-1]["m_probability"] >= 0.0099
    assert levels[2]["m_probability"] > 0
    exact_ratio = levels[0]["m_probability"] / levels[0]["u_probability"]
    assert levels[1]["m_probability"] / levels[1]["u_probability"] <= exact_ratio + 1e-9


def test_charts_are_offline_html(trained, tmp_path):
    records, _, model_path, _ = trained
    paths = linking.write_charts(records, model_path, tmp_path)
    assert set(paths) == {"match_weights", "m_u_parameters", "comparison_viewer", "cluster_studio"}
    for path in paths.values():
        html = path.read_text(encoding="utf-8")
        assert "<html" in html.lower()
        # Everything is inlined: no script or stylesheet is fetched from the network.
        assert not re.search(r"<script[^>]*\bsrc=[\"']?https?:", html), path.name
        assert not re.search(r"<link[^>]*\bhref=[\"']?https?:", html), path.name
        assert "<script" in html


def _level(model: dict, comparison: str, label_start: str) -> dict:
    comp = next(c for c in model["comparisons"] if c["output_column_name"] == comparison)
    return next(lvl for lvl in comp["comparison_levels"] if lvl.get("label_for_charts", "").startswith(label_start))


def test_identifier_u_is_estimated_without_the_matches(trained):
    # Random pairs that share an email are nearly all the same person: plain random sampling puts
    # u near the prior and an exact email would be worth nothing. The refined u must be far below.
    _, _, _, model = trained
    prior = model["probability_two_random_records_match"]
    for comparison, label in (("email", "Exact match"), ("phone", "Same mobile, first names compatible")):
        lvl = _level(model, comparison, label)
        assert lvl["u_probability"] < 0.1 * prior * lvl["m_probability"], comparison
    # and a common attribute keeps a u of its own order (names are shared by strangers)
    assert _level(model, "last_name", "Exact match")["u_probability"] > prior


def test_trained_model_email_or_mobile_alone_outweighs_the_prior(trained):
    model = trained[3]
    prior = model["probability_two_random_records_match"]
    for comparison, label in (("email", "Exact match"), ("phone", "Same mobile, first names compatible")):
        lvl = _level(model, comparison, label)
        assert lvl["m_probability"] / lvl["u_probability"] * prior / (1 - prior) > 2 ** linking.DEFAULT_ACCEPT_WEIGHT
    # no term-frequency adjustment on the email: its frequency counts one person's records
    assert "tf_adjustment_column" not in _level(model, "email", "Exact match")


def test_email_typo_level_does_not_match_household_initials(trained):
    records = household_and_namesakes()
    records.loc[2, "email_corrected"] = "hoberhuber@example.de"
    records.loc[3, "email_corrected"] = "goberhuber@example.de"
    links = linking.predict(records, trained[2], threshold_match_weight=-100)
    row = links[(links.record_id_l == "pos|card:home2") & (links.record_id_r == "shop|customer:home1")].iloc[0]
    assert json.loads(row.comparison_detail)["email"] < 0


def test_saved_model_is_scored_with_its_own_blocking_keys_and_fast_email_sql(trained):
    records = household_and_namesakes()
    prepared = sm.prepare(records)
    model = json.loads(trained[2].read_text())
    with sm.duckdb_session(len(prepared)) as db_api:
        linker = sm.new_linker(db_api, prepared, model)
        s = linker._settings_obj
        rules = [br.blocking_rule_sql for br in s._blocking_rules_to_generate_predictions]
        email = next(c for c in s.comparisons if c.output_column_name == "email")
        conditions = [lvl.sql_condition for lvl in email.comparison_levels]
    expected = [r.create_blocking_rule_dict("duckdb")["blocking_rule"] for r in linking.model_blocking_rules(model)]
    assert rules == expected
    assert len(rules) == len(model["customer_pipeline"]["blocking_keys"]) + 1 + len(sm.SWAPPED_TYPO_RULES)  # + swap rules
    assert sm.EMAIL_TYPO_SQL in conditions


def test_blocking_keys_too_costly_for_the_population_are_left_out():
    # One surname for everyone: a key on the surname and an initial makes one block of all records.
    records, _ = make_fixture(300)
    records["last_name_norm"] = "mueller"
    prepared = sm.prepare(records)
    kept, counts = sm.select_blocking_rules(prepared)
    assert ("last_name_norm", "first_initial") not in kept
    assert ("phone_e164",) in kept and ("email_norm",) in kept
    row = counts[counts["keys"] == ("last_name_norm", "first_initial")].iloc[0]
    assert row["population_pairs"] > sm.MAX_PAIRS_PER_RECORD_PER_RULE * len(prepared)
    # a uniform sample of a larger population: pairs scale with the square of the ratio
    _, scaled = sm.select_blocking_rules(prepared, population=len(prepared) * 10)
    assert (scaled["population_pairs"] == (scaled["pairs"] * 100)).all()


def test_fast_email_typo_sql_selects_the_same_pairs():
    import duckdb

    rng = random.Random(3)
    alphabet = "abcdefghij.0123456789"
    emails = ["a@x.de", "ab@x.de", "anna.smith12@gmail.com", "j.smith@web.de", "john.smith12@gmx.de"]
    emails += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) + "@x.de" for _ in range(300)]
    pairs = []
    for e in emails:
        for _ in range(8):  # one random edit: substitution, insertion, deletion or transposition
            i = rng.randrange(len(e))
            op = rng.randrange(4)
            c = rng.choice(alphabet)
            f = {0: e[:i] + c + e[i + 1:], 1: e[:i] + c + e[i:], 2: e[:i] + e[i + 1:],
                 3: e[:i] + e[i + 1:i + 2] + e[i:i + 1] + e[i + 2:]}[op]
            pairs.append((e, f))
        pairs.append((e, rng.choice(emails)))
    frame = pd.DataFrame(pairs, columns=["email_norm_l", "email_norm_r"])
    con = duckdb.connect()
    con.register("pairs", frame)
    old, new = sm._EMAIL_TYPO_SQL_V1, sm.EMAIL_TYPO_SQL
    counts = con.execute(f"SELECT count(*) FILTER (WHERE coalesce(({old}), false)), "
                         f"count(*) FILTER (WHERE coalesce(({old}), false) <> coalesce(({new}), false)) FROM pairs").fetchall()[0]
    con.close()
    assert counts[0] > 500  # many pairs within one edit were tried
    assert counts[1] == 0


def test_a_name_typo_with_an_email_typo_is_still_compared(trained):
    # No shared phone, email, full name, birth date or postcode: only the email-typo rules find it.
    base = {"first": "mathilde", "last": "gunpf", "dob": None, "email": "mathilde.gunpf@gmx.de",
            "phone": None, "phone_type": None, "street": None, "postcode": None, "city": None}
    records = pd.DataFrame([
        _record("shop", "customer:1", base),
        _record("call_center", "contact:1", base, first_name_norm="m", email_corrected="mathilde.gnupf@gmx.de"),
    ])
    links = linking.predict(records, trained[2], threshold_match_weight=-100)
    assert links.attrs["pairs_compared"] == 1
    assert json.loads(links["comparison_detail"].iloc[0])["email"] > 0


def test_training_works_on_data_without_email_or_phone_and_leaves_those_comparisons_at_zero():
    # FEBRL-like: names, birth dates and addresses only. EM must not block on an empty field.
    records, _ = make_fixture(300, seed=11)
    records["email_corrected"] = None
    records["phone_e164"] = None
    model = linking.train(records, u_max_pairs=2e5)
    info = model["customer_pipeline"]
    assert not any("email" in r or "phone" in r for r in info["em_rules"])
    assert set(info["untrained_comparisons"]) == {"email", "phone"}
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] in ("email", "phone"):
            for lvl in comparison["comparison_levels"]:
                if not lvl.get("is_null_level"):
                    assert lvl["m_probability"] == lvl["u_probability"]
    assert not any(k[0] in ("email_norm", "phone_e164") for k in info["blocking_keys"])


def test_drift_names_fields_that_filled_or_emptied_and_new_sources():
    from customer_pipeline.identity import model_store

    records, _ = make_fixture(100)
    trained = model_store.fingerprint(records.assign(email_corrected=None))
    now = model_store.fingerprint(pd.concat([records, records.assign(source="newshop")]))
    reasons = model_store.drift(trained, now)
    assert any(r.startswith("email: now filled") for r in reasons)
    assert any("newshop" in r for r in reasons)
    assert model_store.drift(now, now) == []


def test_fingerprint_counts_a_field_filled_when_it_holds_more_than_whitespace():
    """The fast test of `_filled` agrees with trimming every value, for text and for dates."""
    import datetime as dt

    from customer_pipeline.identity import model_store

    values = ["Anna", " Anna", "Anna\t", "a", "", " ", "\t\n", "\r", " x ", "é", " é", None, "\u00a0"]
    frame = pd.DataFrame({"first_name_norm": values, "source": "pos",
                          "birth_date": [dt.date(1990, 1, 2), None] * 6 + [None]})
    fp = model_store.fingerprint(frame)
    filled_names = sum(1 for v in values if v is not None and v.strip(" \t\n\v\f\r"))
    assert fp["records"] == len(values)
    assert fp["fill"]["first_name"] == round(filled_names / len(values), 4)
    assert fp["fill"]["birth_date"] == round(6 / len(values), 4)
    # a categorical column (DuckDB reads it as an ENUM) is text too
    categorical = model_store.fingerprint(frame.assign(first_name_norm=pd.Categorical(values)))
    assert categorical["fill"]["first_name"] == fp["fill"]["first_name"]


def test_nickname_keys_come_from_the_nicknames_package_and_the_hand_list_without_chaining():
    def nick(a, b):
        return bool(set(sm.nickname_keys(a)) & set(sm.nickname_keys(b)))

    assert nick("bill", "william") and nick("kate", "katherine") and nick("peggy", "margaret")  # package
    assert nick("hans", "johannes") and nick("kees", "cornelis")  # hand list (German, Dutch)
    assert not nick("alan", "albert")  # both have "al" as a nickname: that does not make them one name
    assert not nick("anna", "bernd")


def test_typo_tolerant_keys_survive_transposed_postcode_digits_and_swapped_names():
    records, _ = make_fixture(5)
    a = _record("shop", "customer:a", {"first": "laura", "last": "webb", "dob": date(1969, 4, 12), "email": None,
                                        "phone": None, "phone_type": None, "street": None, "postcode": "2180", "city": "Trugg"})
    b = dict(a, source_key="customer:b", first_name_norm="webf", last_name_norm="laura", postcode="2108")
    prepared = sm.prepare(pd.DataFrame([a, b])).set_index("record_id")
    assert prepared.loc["shop|customer:a", "postcode_sorted"] == prepared.loc["shop|customer:b", "postcode_sorted"]
    assert prepared.loc["shop|customer:a", "initials"] == prepared.loc["shop|customer:b", "initials"] == "lw"
    from customer_pipeline.identity.evaluation import blocking_recall

    truth = pd.DataFrame({"record_id": ["shop|customer:a", "shop|customer:b"], "person": ["p", "p"]})
    assert blocking_recall(pd.DataFrame([a, b]), truth)["recall"] == 1.0


def test_place_keys_find_a_pair_whose_names_were_replaced_and_city_misspelt():
    """FEBRL's duplicates replace whole names: a pair left with the postcode (one digit off) and the city (one
    typo, a space moved) meets through the sound of the city, and counts among the pairs the design promises."""
    from customer_pipeline.identity.evaluation import blocking_recall

    a = _record("pos", "card:1", {"first": "lily", "last": "hxo", "dob": None, "email": None, "phone": None,
                                  "phone_type": None, "street": None, "postcode": "2759", "city": "Salisbury Heights"})
    b = dict(a, source_key="card:2", first_name_norm="madison", last_name_norm="oh", postcode="2758",
             city="salisburyh eights")
    prepared = sm.prepare(pd.DataFrame([a, b]))
    assert prepared["city_ph"].nunique() == 1
    truth = pd.DataFrame({"record_id": ["pos|card:1", "pos|card:2"], "person": ["p", "p"]})
    place_only = [r for r in sm.prediction_blocking_rules() if "city_ph" in str(r.create_blocking_rule_dict("duckdb"))]
    assert blocking_recall(pd.DataFrame([a, b]), truth, place_only)["recall"] == 1.0
    # names replaced: only the place agrees, one field of the five, so the promise does not cover the pair
    assert blocking_recall(pd.DataFrame([a, b]), truth)["promised_pairs"] == 0
    c = dict(b, first_name_norm="lilly", last_name_norm="hxo")  # a typo in the first name: name and place agree
    assert blocking_recall(pd.DataFrame([a, c]), truth.assign(record_id=["pos|card:1", "pos|card:2"]))["promised_pairs"] == 1


def test_predict_new_finds_exactly_the_full_runs_links_that_touch_new_records(trained):
    """Issue 13: scoring only the new records against all (predict_within + predict_between, whole-population
    term frequencies and prior) gives the very links a full predict gives for pairs touching them."""
    records, _, model_path, _ = trained
    full = linking.predict(records, model_path)
    ids = records["source"] + "|" + records["source_key"]
    new_ids = set(ids.sample(frac=0.1, random_state=3))
    touched = full[full["record_id_l"].isin(new_ids) | full["record_id_r"].isin(new_ids)]
    new = linking.predict_new(records.assign(record_id=ids), new_ids, model_path)
    assert new.attrs["new_records"] == len(new_ids) and len(new) == len(touched) > 20
    key = ["record_id_l", "record_id_r"]
    merged = touched.merge(new, on=key, suffixes=("_full", "_new"), validate="one_to_one")
    assert len(merged) == len(touched)
    assert (merged["match_weight_full"] - merged["match_weight_new"]).abs().max() < 1e-6
    assert (merged["comparison_detail_full"] == merged["comparison_detail_new"]).all()
    assert linking.predict_new(records.assign(record_id=ids), set(), model_path).empty


def test_prepared_records_cache_equals_preparing_everything(trained, tmp_path):
    """Issue 13: the matching frame is prepared once per record version and kept; scores do not change."""
    from customer_pipeline import warehouse
    from customer_pipeline.identity import incremental

    records, _, model_path, _ = trained
    records = records.assign(record_id=records["source"] + "|" + records["source_key"])
    records["_input_hash"] = pd.util.hash_pandas_object(records.astype(str), index=False).astype("uint64")
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        incremental.prepared_records(con, records)
        changed = records.copy()
        changed.loc[changed.index[0], ["first_name_norm", "_input_hash"]] = ["zacharias", 1]
        changed = changed.drop(changed.index[1])
        cached = incremental.prepared_records(con, changed)
        fresh = sm.prepare(changed).sort_values(sm.UNIQUE_ID, ignore_index=True)
    assert len(cached) == len(changed)
    assert cached.loc[cached[sm.UNIQUE_ID] == changed["record_id"].iloc[0], "first_name_norm"].item() == "zacharias"
    for column in fresh.columns:
        if column == "first_name_nicks":
            continue
        assert cached[column].astype(str).tolist() == fresh[column].astype(str).tolist(), column
    new_ids = set(changed["record_id"].sample(40, random_state=5))
    a = linking.predict_new(changed, new_ids, model_path, prepared=cached)
    b = linking.predict_new(changed, new_ids, model_path)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    # the asset's way: records read in SQL from a warehouse table, the matching frame handed over as Arrow
    with warehouse.connect(tmp_path / "t.duckdb") as con:
        for frame in (records, changed):
            con.register("_frame", frame)
            con.execute("CREATE OR REPLACE TABLE staged AS SELECT * FROM _frame")
            con.unregister("_frame")
            as_arrow = incremental.prepared_records(con, "staged", arrow=True)
    assert as_arrow.num_rows == len(changed)
    assert as_arrow.to_pandas()["first_name_norm"].astype(str).tolist() == fresh["first_name_norm"].astype(str).tolist()
    c = linking.predict_new(None, new_ids, model_path, prepared=as_arrow)
    pd.testing.assert_frame_equal(c.reset_index(drop=True), b.reset_index(drop=True))


def test_candidates_in_one_pass_are_those_a_rule_by_rule_join_finds(trained):
    """Issue 13: `candidates_sql` (one scan, key hashes) names exactly the records that some prediction rule's
    equalities pair with a new record, a rule by rule join over the same prepared records, NULL keys included."""
    import duckdb

    records, _, model_path, _ = trained
    model = linking.load_model(model_path)
    prepared = sm.prepare(records.assign(record_id=records["source"] + "|" + records["source_key"]))
    con = duckdb.connect()
    con.register("pop", prepared)
    con.register("new", prepared.sample(40, random_state=11))
    found = {r[0] for r in con.execute(linking.candidates_sql(model, "pop", "new")).fetchall()}
    joins = []
    for rule in linking.model_blocking_rules(model):
        equalities = linking._rule_equalities(linking._rule_sql(rule))
        for mine, theirs in ((0, 1), (1, 0)):
            on = " AND ".join(f"p.{eq[mine]} = n.{eq[theirs]}" for eq in equalities)
            joins.append(f"SELECT p.{sm.UNIQUE_ID} FROM pop AS p SEMI JOIN new AS n ON {on}")
    expected = {r[0] for r in con.execute(f"SELECT {sm.UNIQUE_ID} FROM ({' UNION '.join(joins)}) "
                                          f"WHERE {sm.UNIQUE_ID} NOT IN (SELECT {sm.UNIQUE_ID} FROM new)").fetchall()}
    assert len(expected) > 40 and found == expected
