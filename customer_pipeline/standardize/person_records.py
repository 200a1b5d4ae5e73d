"""Builds `staging.person_records`: every standardiser applied to the unified raw frame."""

from datetime import datetime

import pandas as pd

from customer_pipeline.standardize._text import map_unique
from customer_pipeline.standardize.addresses import standardize_addresses
from customer_pipeline.standardize.consent import standardize_consent
from customer_pipeline.standardize.dates import parse_birth_dates, parse_timestamps
from customer_pipeline.standardize.emails import apply_suppression, standardize_emails
from customer_pipeline.standardize.guards import bound_raw_values, drop_future_timestamps, neutralise_formulas
from customer_pipeline.standardize.names import normalize_gender, standardize_names, title_gender_conflicts
from customer_pipeline.standardize.phones import standardize_phones

INPUT_COLUMNS = [
    "source", "source_key", "default_country", "first_name_raw", "last_name_raw", "full_name_raw",
    "email_raw", "phone_raw", "birth_date_raw", "gender_raw", "street_raw", "postcode_raw", "city_raw",
    "country_raw", "marketing_consent_raw", "marketing_consent_at_raw", "opt_out_at_raw", "do_not_call_raw",
    "record_created_at_raw", "record_updated_at_raw", "loyalty_card_no", "shop_customer_id", "anonymous_id",
    "non_text_fields_raw",
]
OUTPUT_COLUMNS = [
    "first_name", "last_name", "first_name_norm", "last_name_norm", "name_key", "name_swapped", "title",
    "gender", "title_gender_conflict",
    "email", "email_valid", "email_corrected", "email_domain_typo", "email_suppressed", "email_suppressed_at",
    "email_unsubscribed", "email_unsubscribed_at", "email_suppression_reason",
    "phone_e164", "phone_valid", "phone_type",
    "birth_date", "birth_date_valid", "birth_date_flag",
    "street", "postcode", "city", "country",
    "marketing_consent", "marketing_consent_at", "opted_out", "opted_out_at", "do_not_call",
    "record_created_at", "record_updated_at", "has_contact_channel",
    "oversized_fields", "formula_fields", "future_dated_fields", "non_text_fields",
]
TEXT_COLUMNS = [
    "first_name", "last_name", "first_name_norm", "last_name_norm", "name_key", "title", "gender", "email",
    "email_corrected", "email_suppression_reason", "phone_e164", "phone_type", "birth_date_flag",
    "street", "postcode", "city", "country", "oversized_fields", "formula_fields", "future_dated_fields",
    "non_text_fields",
]


def standardize_person_records(raw: pd.DataFrame, email_events: pd.DataFrame | None, now: datetime) -> pd.DataFrame:
    """One standardised row per raw person record (see docs/staging-contract.md)."""
    missing = [c for c in INPUT_COLUMNS if c not in raw.columns]
    raw = raw.reset_index(drop=True)
    # an over-long value is nulled before anything parses it (the raw layer keeps it)
    raw, oversized = bound_raw_values(raw)
    src = raw.assign(**{c: pd.Series(None, index=raw.index, dtype=object) for c in missing})

    names = standardize_names(src["first_name_raw"], src["last_name_raw"], src["full_name_raw"])
    gender = map_unique(src["gender_raw"], normalize_gender)
    emails = standardize_emails(src["email_raw"])
    match_email = emails["email_corrected"].where(emails["email_corrected"].notna(), emails["email"])
    suppression = apply_suppression(match_email, email_events)
    phones = standardize_phones(src["phone_raw"], src["default_country"])
    births = parse_birth_dates(src["birth_date_raw"], now)
    address = standardize_addresses(src["street_raw"], src["postcode_raw"], src["city_raw"],
                                    src["country_raw"], src["default_country"])
    consent = standardize_consent(src["marketing_consent_raw"], src["marketing_consent_at_raw"],
                                  src["opt_out_at_raw"], src["do_not_call_raw"])
    out = pd.concat([names, emails, suppression, phones, births, address, consent], axis=1)
    out["gender"] = gender
    out["title_gender_conflict"] = title_gender_conflicts(out["title"], gender)
    out["record_created_at"] = parse_timestamps(src["record_created_at_raw"])
    out["record_updated_at"] = parse_timestamps(src["record_updated_at_raw"])
    out["future_dated_fields"] = drop_future_timestamps(out, now)
    out["has_contact_channel"] = (out["email_corrected"].notna() | out["phone_valid"]).astype(bool)
    out["oversized_fields"] = oversized
    out["formula_fields"] = neutralise_formulas(out)
    out["non_text_fields"] = src["non_text_fields_raw"]
    # one string dtype (pandas "str", missing = NaN) for every text column, whichever path built it
    out[TEXT_COLUMNS] = out[TEXT_COLUMNS].astype("str")
    return pd.concat([raw, out[OUTPUT_COLUMNS]], axis=1)
