"""Standardisation of person records: plain functions, no Dagster; `standardize_person_records` builds the staging table."""

from customer_pipeline.standardize.addresses import normalize_country, normalize_postcode, proper_case_city
from customer_pipeline.standardize.consent import parse_flag
from customer_pipeline.standardize.dates import parse_birth_date, parse_timestamps
from customer_pipeline.standardize.emails import correct_domain, standardize_email
from customer_pipeline.standardize.names import normalize_gender, parse_full_name, standardize_name
from customer_pipeline.standardize.person_records import OUTPUT_COLUMNS, standardize_person_records
from customer_pipeline.standardize.phones import standardize_phone

__all__ = [
    "OUTPUT_COLUMNS", "correct_domain", "normalize_country", "normalize_gender", "normalize_postcode",
    "parse_birth_date", "parse_flag", "parse_full_name", "parse_timestamps", "proper_case_city",
    "standardize_email", "standardize_name", "standardize_person_records", "standardize_phone",
]
