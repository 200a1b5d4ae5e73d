"""Survivorship rules of the golden customer (docs/survivorship.md)."""

from datetime import date, datetime

import pandas as pd
import pytest

from customer_pipeline.identity.survivorship import GOLDEN_COLUMNS, build_golden

NOW = datetime(2025, 6, 1)


def rec(source: str, key: str, customer: str = "C1", **values) -> dict:
    return dict(source=source, source_key=key, customer_id=customer, **values)


def golden(*rows: dict, **kwargs) -> pd.DataFrame:
    """Build the golden table of hand-made records (each row names its customer_id)."""
    frame = pd.DataFrame(list(rows))
    frame["record_id"] = frame["source"] + "|" + frame["source_key"]
    xref = frame[["customer_id", "record_id"]]
    return build_golden(frame.drop(columns=["customer_id"]), xref, NOW, **kwargs).set_index("customer_id")


def one(*rows: dict, **kwargs) -> pd.Series:
    result = golden(*rows, **kwargs)
    assert len(result) == 1
    return result.iloc[0]


def email(address: str, **flags) -> dict:
    return dict(email_corrected=address, email_valid=True, **flags)


def test_one_row_per_customer_with_the_contract_columns():
    result = golden(rec("shop", "customer:1", "C1"), rec("pos", "card:1", "C1"), rec("pos", "card:2", "C2"))
    assert list(result.reset_index().columns) == GOLDEN_COLUMNS
    assert sorted(result.index) == ["C1", "C2"]
    assert result.loc["C1", "source_record_count"] == 2


def test_name_comes_from_the_most_trusted_source_then_the_most_recent_record():
    row = one(
        rec("pos", "card:1", first_name="Annie", last_name="Meyer", record_updated_at="2025-05-01"),
        rec("shop", "customer:1", first_name="Anna", last_name="Meier", record_updated_at="2020-01-01"),
        rec("shop", "customer:2", first_name="Anna-Lena", last_name="Meier", record_updated_at="2023-01-01"),
        rec("app", "anon:x", first_name="A", last_name="M", record_updated_at="2025-05-30"),
    )
    assert (row["first_name"], row["last_name"], row["display_name"]) == ("Anna-Lena", "Meier", "Anna-Lena Meier")


def test_a_complete_name_beats_a_half_name_from_a_more_trusted_source():
    row = one(
        rec("shop", "customer:1", first_name=None, last_name="Meier"),
        rec("pos", "card:1", first_name="Anna", last_name="Meier"),
    )
    assert (row["first_name"], row["last_name"]) == ("Anna", "Meier")


def test_source_priority_is_configurable():
    rows = (
        rec("shop", "customer:1", first_name="Shop", last_name="Name"),
        rec("call_center", "contact:1", first_name="Agent", last_name="Typed"),
    )
    assert one(*rows)["first_name"] == "Shop"
    assert one(*rows, source_priority=("call_center:contact", "shop:customer"))["first_name"] == "Agent"


def test_bounced_newer_email_loses_to_older_valid_one():
    row = one(
        rec("shop", "customer:1", **email("old@example.com"), record_updated_at="2021-01-01"),
        rec("app", "user:1", **email("new@example.com", email_suppressed=True,
                                       email_suppression_reason="bounce"), record_updated_at="2025-01-01"),
        rec("pos", "card:1", email_corrected=None, email_valid=False, record_updated_at="2025-05-01"),
    )
    assert row["email"] == "old@example.com"
    assert not row["email_suppressed"]


def test_most_recent_valid_email_wins_and_typo_fix_is_used():
    row = one(
        rec("shop", "customer:1", **email("anna@example.com"), record_updated_at="2021-01-01"),
        rec("pos", "card:1", email="anna@gmial.com", email_corrected="anna@gmail.com", email_valid=True,
            email_domain_typo=True, record_updated_at="2024-01-01"),
    )
    assert row["email"] == "anna@gmail.com"


def test_only_a_suppressed_email_is_kept_but_flagged():
    row = one(rec("shop", "customer:1", **email("dead@example.com", email_suppressed=True,
                                                  email_suppression_reason="complaint")))
    assert row["email"] == "dead@example.com"
    assert row["email_suppressed"] and row["email_suppression_reason"] == "complaint"


def test_unsubscribed_email_is_flagged_and_counts_as_opt_out():
    row = one(
        rec("shop", "customer:1", **email("a@example.com", email_unsubscribed=True,
                                          email_suppression_reason="unsubscribe"), marketing_consent=True),
    )
    assert row["email"] == "a@example.com"
    assert row["email_unsubscribed"] and not row["email_suppressed"]
    assert not row["marketing_consent"] and row["opted_out"]


def test_mobile_phone_is_preferred_then_the_most_frequent():
    landline = dict(phone_e164="+493012345678", phone_valid=True, phone_type="fixed_line")
    mobile_a = dict(phone_e164="+491701111111", phone_valid=True, phone_type="mobile")
    mobile_b = dict(phone_e164="+491702222222", phone_valid=True, phone_type="mobile")
    row = one(
        rec("shop", "customer:1", **landline), rec("pos", "card:1", **landline), rec("pos", "card:2", **landline),
        rec("app", "user:1", **mobile_a), rec("call_center", "contact:1", **mobile_b),
        rec("call_center", "contact:2", **mobile_b),
        rec("call_center", "contact:3", phone_e164="+4917099", phone_valid=False, phone_type=None),
    )
    assert (row["phone"], row["phone_type"]) == ("+491702222222", "mobile")


def test_most_frequent_phone_when_no_mobile_is_known():
    row = one(
        rec("shop", "customer:1", phone_e164="+493011111111", phone_valid=True, phone_type="fixed_line"),
        rec("pos", "card:1", phone_e164="+493022222222", phone_valid=True, phone_type="fixed_line"),
        rec("pos", "card:2", phone_e164="+493022222222", phone_valid=True, phone_type="fixed_line"),
    )
    assert row["phone"] == "+493022222222"


def test_address_is_taken_whole_from_the_most_recent_record():
    row = one(
        rec("shop", "customer:1", street="Alte Str. 1", postcode="10115", city="Berlin", country="DE",
            record_updated_at="2020-01-01"),
        rec("shop", "guest_order:9", street="Neue Str. 2", postcode="80331", city="München", country="DE",
            record_updated_at="2024-01-01"),
        rec("app", "user:1", record_updated_at="2025-01-01"),
    )
    assert (row["street"], row["postcode"], row["city"], row["country"]) == ("Neue Str. 2", "80331", "München", "DE")


def test_birth_date_by_agreement_across_sources():
    row = one(
        rec("shop", "customer:1", birth_date=date(1980, 1, 2), birth_date_valid=True),
        rec("pos", "card:1", birth_date=date(1980, 2, 1), birth_date_valid=True),
        rec("app", "user:1", birth_date=date(1980, 2, 1), birth_date_valid=True),
        rec("call_center", "contact:1", birth_date=None, birth_date_valid=False),
    )
    assert row["birth_date"] == date(1980, 2, 1)


def test_birth_date_tie_goes_to_the_most_trusted_source():
    row = one(
        rec("app", "user:1", birth_date=date(1991, 3, 4), birth_date_valid=True),
        rec("pos", "card:1", birth_date=date(1991, 4, 3), birth_date_valid=True),
    )
    assert row["birth_date"] == date(1991, 4, 3)


def test_gender_by_agreement():
    row = one(rec("shop", "customer:1", gender="F"), rec("pos", "card:1", gender="M"), rec("app", "user:1", gender="M"),
              rec("call_center", "contact:1", gender="?"))
    assert row["gender"] == "M"


def test_consent_needs_a_yes_and_no_opt_out():
    assert one(rec("pos", "card:1", marketing_consent=True, marketing_consent_at="2024-01-01"),
               rec("shop", "customer:1", marketing_consent=False))["marketing_consent"]
    assert not one(rec("shop", "customer:1", marketing_consent=False))["marketing_consent"]
    assert not one(rec("shop", "customer:1", marketing_consent=None))["marketing_consent"]


def test_any_opt_out_wins_over_consent():
    row = one(
        rec("shop", "customer:1", marketing_consent=True, marketing_consent_at="2025-05-01"),
        rec("call_center", "contact:1", opted_out=True, opted_out_at="2024-01-01"),
    )
    assert not row["marketing_consent"]
    assert row["opted_out"] and row["opted_out_at"] == pd.Timestamp("2024-01-01")
    assert row["marketing_consent_at"] == pd.Timestamp("2025-05-01")


def test_do_not_call_if_any_record_says_so():
    assert one(rec("shop", "customer:1"), rec("call_center", "contact:1", do_not_call=True))["do_not_call"]
    assert not one(rec("shop", "customer:1", do_not_call=False))["do_not_call"]


def test_lineage_columns():
    row = one(
        rec("shop", "customer:12", record_created_at="2019-05-01", record_updated_at="2021-01-01"),
        rec("app", "user:12", record_created_at="2020-01-01"),
        rec("pos", "card:900", loyalty_card_no="900", record_created_at="2018-01-01", record_updated_at="2018-02-01"),
        rec("pos", "card:100", loyalty_card_no="100", record_updated_at="2024-07-01"),
        rec("call_center", "contact:5", shop_customer_id="12", loyalty_card_no="900"),
    )
    assert row["sources"] == "app,call_center,pos,shop"
    assert row["source_record_count"] == 5
    assert row["first_seen_at"] == pd.Timestamp("2018-01-01")
    assert row["last_seen_at"] == pd.Timestamp("2024-07-01")
    assert row["loyalty_cards"] == "100,900"
    assert row["shop_customer_ids"] == "12"
    assert row["updated_at"] == pd.Timestamp(NOW)


def test_data_quality_score_is_the_share_of_key_attributes_present():
    full = one(rec("shop", "customer:1", first_name="Anna", last_name="Meier", **email("a@example.com"),
                   phone_e164="+491701111111", phone_valid=True, phone_type="mobile", street="S 1",
                   postcode="10115", city="Berlin", country="DE", birth_date=date(1980, 1, 1),
                   birth_date_valid=True, gender="F"))
    assert full["data_quality_score"] == 1.0
    half = one(rec("shop", "customer:1", first_name="Anna", last_name="Meier",
                   **email("a@example.com", email_suppressed=True), gender="F", birth_date=date(1980, 1, 1),
                   birth_date_valid=True, city="Berlin"))
    assert half["data_quality_score"] == pytest.approx(0.5, abs=1e-3)
    assert one(rec("app", "anon:x"))["data_quality_score"] == 0.0


def test_records_not_in_the_xref_are_ignored():
    frame = pd.DataFrame([
        dict(source="shop", source_key="customer:1", first_name="In"),
        dict(source="shop", source_key="customer:2", first_name="Out"),
    ])
    frame["record_id"] = frame["source"] + "|" + frame["source_key"]
    xref = pd.DataFrame({"customer_id": ["C1"], "record_id": ["shop|customer:1"]})
    result = build_golden(frame, xref, NOW)
    assert list(result["customer_id"]) == ["C1"] and list(result["first_name"]) == ["In"]


def test_a_full_build_in_parts_gives_the_rows_of_one_build_of_everything(tmp_path):
    """gold/golden_customers builds a full run part by part (bounded memory at 1M records): survivorship is
    decided per customer, so any split of the customers gives the same rows, in customer_id order."""
    from customer_pipeline import warehouse
    from customer_pipeline.defs.gold.assets import build_every_golden

    rows = []
    for i in range(12):
        c = f"C{i:02d}"
        rows += [rec("shop", f"customer:{i}", c, first_name=f"Anna{i}", last_name="Meier", **email(f"a{i}@example.com"),
                     record_updated_at=f"2024-0{1 + i % 9}-01", city="Berlin", postcode="10115"),
                 rec("pos", f"card:{i}", c, first_name="Annie", loyalty_card_no=str(900 + i), phone_e164=f"+4917011{i:05d}",
                     phone_valid=True, phone_type="mobile", record_created_at="2019-05-01")]
        if i % 3 == 0:
            rows.append(rec("app", f"user:{i}", c, opted_out=True, record_updated_at="2025-01-01"))
    frame = pd.DataFrame(rows)
    frame["record_id"] = frame["source"] + "|" + frame["source_key"]
    with warehouse.connect(tmp_path / "w.duckdb") as con:
        con.register("_f", frame)
        con.execute("CREATE TABLE staging.person_records AS SELECT * EXCLUDE (customer_id) FROM _f")
        con.execute("CREATE TABLE gold.customer_xref AS SELECT customer_id, record_id FROM _f")
        whole = build_golden(warehouse.read_df(con, "SELECT * FROM staging.person_records"),
                             warehouse.read_df(con, "SELECT * FROM gold.customer_xref"), NOW)
        in_parts = build_every_golden(con, NOW, part_records=5)  # 29 records: 6 parts
        assert build_every_golden(con, NOW).equals(whole)  # one part at this size
    assert list(in_parts["customer_id"]) == sorted(in_parts["customer_id"]) == list(whole["customer_id"])
    pd.testing.assert_frame_equal(in_parts, whole)
