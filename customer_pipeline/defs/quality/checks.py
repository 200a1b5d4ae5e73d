"""Great Expectations gates on every raw table and on `staging.person_records`.

A failed blocking expectation (ERROR) stops everything downstream of that table in the run;
a failed warning (WARN) is shown and recorded only.
"""

import dagster as dg

from customer_pipeline.defs.quality.gx_factory import build_gx_checks
from customer_pipeline.defs.sources.sla import WAREHOUSE_POOL
from customer_pipeline.quality import suites

# Check names (the same name on every raw asset; asset key + name identify a check).
REQUIRED_COLUMNS = suites.REQUIRED_COLUMNS
LOCATION_NOT_NULL = suites.LOCATION_NOT_NULL
RECORD_REF_NOT_NULL = suites.RECORD_REF_NOT_NULL
LINEAGE_KEY_UNIQUE = suites.LINEAGE_KEY_UNIQUE
PERSON_SOURCE_NOT_NULL = suites.PERSON_SOURCE_NOT_NULL
PERSON_SOURCE_ALLOWED = suites.PERSON_SOURCE_ALLOWED
PERSON_SOURCE_KEY_NOT_NULL = suites.PERSON_SOURCE_KEY_NOT_NULL
PERSON_SOURCE_KEY_WELL_FORMED = suites.PERSON_SOURCE_KEY_WELL_FORMED
PERSON_KEY_UNIQUE = suites.PERSON_KEY_UNIQUE
PERSON_EMAIL_WELL_FORMED = suites.PERSON_EMAIL_WELL_FORMED
PERSON_PHONE_E164 = suites.PERSON_PHONE_E164
PERSON_EMAIL_VALID_SHARE = suites.PERSON_EMAIL_VALID_SHARE
PERSON_PHONE_VALID_SHARE = suites.PERSON_PHONE_VALID_SHARE
PERSON_CONTACT_CHANNEL_SHARE = suites.PERSON_CONTACT_CHANNEL_SHARE
PERSON_BIRTH_DATE_VALID_SHARE = suites.PERSON_BIRTH_DATE_VALID_SHARE
PERSON_EMAIL_DUPLICATES = suites.PERSON_EMAIL_DUPLICATES
PERSON_PHONE_DUPLICATES = suites.PERSON_PHONE_DUPLICATES

PERSON_RECORDS_KEY = dg.AssetKey(["staging", "person_records"])


def _raw(table: str) -> dg.AssetChecksDefinition:
    return build_gx_checks(suites.RAW_SUITES[table], dg.AssetKey(["raw", table]), pool=WAREHOUSE_POOL)


raw_pos_loyalty_signups_checks = _raw("pos_loyalty_signups")
raw_pos_transactions_checks = _raw("pos_transactions")
raw_shop_customers_checks = _raw("shop_customers")
raw_shop_addresses_checks = _raw("shop_addresses")
raw_shop_orders_checks = _raw("shop_orders")
raw_shop_order_items_checks = _raw("shop_order_items")
raw_shop_email_events_checks = _raw("shop_email_events")
raw_call_center_contacts_checks = _raw("call_center_contacts")
raw_app_events_checks = _raw("app_events")

person_records_checks = build_gx_checks(suites.PERSON_RECORDS, PERSON_RECORDS_KEY, pool=WAREHOUSE_POOL)
