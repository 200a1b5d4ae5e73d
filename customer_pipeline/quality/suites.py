"""The expectation suites, defined in code: one per raw table and one for `staging.person_records`.

A suite is a list of plain `Rule`s (no Great Expectations import here, so loading the Dagster
definitions stays fast); `gx_runner` turns them into GX expectations when a check runs.
A blocking rule guards what would corrupt the golden layer (columns, keys, machine-written
types); a warning rule reports a rate the business tolerates but must see.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from customer_pipeline.quality import thresholds as t


@dataclass(frozen=True)
class Rule:
    """One expectation and the Dagster check it becomes (`name` is the check name)."""

    name: str
    expectation: str  # GX expectation class name, e.g. "ExpectColumnValuesToNotBeNull"
    kwargs: Mapping[str, Any]
    blocking: bool
    description: str
    # Evaluate only rows where this column holds a non-blank value (a GX row condition).
    where_present: str | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    table: str  # qualified warehouse table the suite validates
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    # The columns that identify a row (the raw lineage key, a person record's source key): a row whose key
    # or checked values changed is validated again (customer_pipeline/quality/incremental.py).
    row_key: tuple[str, ...] = ()

    def rule(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)


# Check names shared by every raw suite.
REQUIRED_COLUMNS = "required_columns_present"
LOCATION_NOT_NULL = "lineage_location_not_null"
RECORD_REF_NOT_NULL = "lineage_record_ref_not_null"
LINEAGE_KEY_UNIQUE = "lineage_key_unique"

# Check names of the person_records suite.
PERSON_SOURCE_NOT_NULL = "source_not_null"
PERSON_SOURCE_ALLOWED = "source_in_allowed_set"
PERSON_SOURCE_KEY_NOT_NULL = "source_key_not_null"
PERSON_SOURCE_KEY_WELL_FORMED = "source_key_well_formed"
PERSON_KEY_UNIQUE = "source_and_source_key_unique"
PERSON_EMAIL_WELL_FORMED = "email_corrected_well_formed"
PERSON_PHONE_E164 = "phone_e164_well_formed"
PERSON_EMAIL_VALID_SHARE = "email_valid_share"
PERSON_PHONE_VALID_SHARE = "phone_valid_share"
PERSON_CONTACT_CHANNEL_SHARE = "contact_channel_share"
PERSON_BIRTH_DATE_VALID_SHARE = "birth_date_valid_share"
PERSON_EMAIL_DUPLICATES = "email_duplicates_within_source"
PERSON_PHONE_DUPLICATES = "phone_duplicates_within_source"

SOURCES = ("pos", "shop", "call_center", "app")
LINEAGE_COLUMNS = ("_source", "_location", "_record_ref", "_content_hash", "_ingested_at", "_run_id")

# Lenient shapes of what the sources deliver as text.
ISO_TIMESTAMP = (
    r"^\s*\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
INTEGER = r"^\s*[+-]?\d+\s*$"
DECIMAL = r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*$"
DATE_ANY_FORMAT = r"^\s*(?:\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4}|\d{2}/\d{2}/\d{4})(?:[T ].*)?\s*$"
EMAIL_LIKE = r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"
PHONE_LIKE = r"^\s*\+?[\d\s()./-]{6,}\s*$"
E164 = r"^\+[1-9]\d{6,14}$"
COUNTRY_CODE = r"^\s*[A-Za-z]{2}\s*$"
SOURCE_KEY = r"^(?:card|customer|guest_order|contact|user|anon):\S.*$"


def _codes(*codes: str) -> str:
    """A case-insensitive regex for a code list; blank is allowed (blank = not given)."""
    return r"^\s*(?i:" + "|".join(codes) + r")?\s*$"


# --- rule builders --------------------------------------------------------------------------


def required_columns(columns: Sequence[str]) -> Rule:
    return Rule(
        REQUIRED_COLUMNS, "ExpectTableColumnsToMatchSet",
        {"column_set": list(columns), "exact_match": False}, True,
        "Every contract column is present (extra columns are allowed).",
    )


def not_null(column: str, *, blocking: bool = True, name: str | None = None) -> Rule:
    return Rule(
        name or f"{column}_not_null", "ExpectColumnValuesToNotBeNull", {"column": column},
        blocking, f"`{column}` is never null.",
    )


def unique(column: str, *, blocking: bool = True, mostly: float = 1.0, name: str | None = None) -> Rule:
    what = "is unique" if blocking else f"repeats on at most {1 - mostly:.0%} of rows"
    return Rule(
        name or f"{column}_unique", "ExpectColumnValuesToBeUnique", {"column": column, "mostly": mostly},
        blocking, f"`{column}` {what}.",
    )


def compound_unique(
    columns: Sequence[str], *, blocking: bool = True, mostly: float = 1.0, name: str | None = None
) -> Rule:
    cols = ", ".join(columns)
    what = "is unique" if blocking else f"repeats on at most {1 - mostly:.0%} of rows"
    return Rule(
        name or "_".join(c.strip("_") for c in columns) + "_unique", "ExpectCompoundColumnsToBeUnique",
        {"column_list": list(columns), "mostly": mostly, "ignore_row_if": "any_value_is_missing"},
        blocking, f"`({cols})` {what} (rows with a missing part are ignored).",
    )


def matches(
    column: str, regex: str, *, blocking: bool, mostly: float, name: str, what: str
) -> Rule:
    return Rule(
        name, "ExpectColumnValuesToMatchRegex", {"column": column, "regex": regex, "mostly": mostly},
        blocking, f"`{column}` {what} on at least {mostly:.0%} of non-null rows.",
    )


def parseable(column: str, regex: str, what: str) -> Rule:
    return matches(
        column, regex, blocking=True, mostly=t.PARSEABLE_MIN_SHARE, name=f"{column}_parseable", what=what,
    )


def in_set(column: str, values: Sequence[str], *, blocking: bool = True, name: str | None = None) -> Rule:
    return Rule(
        name or f"{column}_in_allowed_set", "ExpectColumnValuesToBeInSet",
        {"column": column, "value_set": list(values)}, blocking,
        f"`{column}` is one of {', '.join(values)}.",
    )


def code_list(column: str, *codes: str) -> Rule:
    return matches(
        column, _codes(*codes), blocking=False, mostly=t.CODE_LIST_MIN_SHARE,
        name=f"{column}_in_code_list", what=f"is one of {', '.join(codes)} or blank",
    )


def share_true(column: str, mostly: float, *, name: str, where_present: str | None, what: str) -> Rule:
    scope = f" among rows with `{where_present}`" if where_present else ""
    return Rule(
        name, "ExpectColumnValuesToBeInSet", {"column": column, "value_set": [True], "mostly": mostly},
        False, f"At least {mostly:.0%} of rows{scope} {what}.", where_present,
    )


def email_shape(column: str) -> Rule:
    return matches(
        column, EMAIL_LIKE, blocking=False, mostly=t.EMAIL_VALID_MIN_SHARE,
        name=f"{column}_valid_share", what="looks like an email address",
    )


def phone_shape(column: str) -> Rule:
    return matches(
        column, PHONE_LIKE, blocking=False, mostly=t.PHONE_VALID_MIN_SHARE,
        name=f"{column}_valid_share", what="looks like a phone number",
    )


def birth_date_shape(column: str) -> Rule:
    return matches(
        column, DATE_ANY_FORMAT, blocking=False, mostly=t.BIRTH_DATE_VALID_MIN_SHARE,
        name=f"{column}_parseable_share", what="is in a documented date format",
    )


def lineage() -> tuple[Rule, ...]:
    """Every raw row traces back to one line of one delivery (or one shop row)."""
    return (
        not_null("_location", name=LOCATION_NOT_NULL),
        not_null("_record_ref", name=RECORD_REF_NOT_NULL),
        compound_unique(("_location", "_record_ref"), name=LINEAGE_KEY_UNIQUE),
    )


def raw_suite(table: str, columns: Sequence[str], *rules: Rule) -> Suite:
    return Suite(
        name=f"raw_{table}", table=f"raw.{table}",
        rules=(required_columns([*columns, *LINEAGE_COLUMNS]), *lineage(), *rules),
        row_key=("_location", "_record_ref"),
    )


# --- raw suites -------------------------------------------------------------------------------
# Keys: a later file may correct an earlier one and both stay in raw, so card, receipt and
# contact numbers may repeat across files (a warning); only the lineage key is unique.
# Shop rows are kept one per primary key and app events one per messageId: those are unique.

POS_LOYALTY_SIGNUPS = raw_suite(
    "pos_loyalty_signups",
    ("card_no", "store_id", "country", "signed_up_at", "first_name", "last_name", "gender",
     "birth_date", "phone", "email", "postcode", "city", "marketing_consent"),
    not_null("card_no"),
    parseable("signed_up_at", ISO_TIMESTAMP, "is an ISO 8601 timestamp"),
    unique("card_no", blocking=False, mostly=t.KEY_DUPLICATE_MOSTLY, name="card_no_duplicates"),
    unique("email", blocking=False, mostly=t.CONTACT_DUPLICATE_MOSTLY, name="email_duplicates"),
    email_shape("email"),
    phone_shape("phone"),
    birth_date_shape("birth_date"),
    code_list("gender", "M", "F", "X"),
    code_list("marketing_consent", "Y", "N"),
    matches("country", COUNTRY_CODE, blocking=False, mostly=t.CODE_LIST_MIN_SHARE,
            name="country_is_iso_code", what="is an ISO alpha-2 code"),
)

POS_TRANSACTIONS = raw_suite(
    "pos_transactions",
    ("receipt_id", "line_no", "store_id", "sold_at", "card_no", "sku", "product_name", "category",
     "qty", "unit_price", "discount", "currency", "payment_method", "bonus_points"),
    not_null("receipt_id"),
    not_null("line_no"),
    not_null("store_id"),
    parseable("line_no", INTEGER, "is an integer"),
    parseable("qty", INTEGER, "is an integer"),
    parseable("sold_at", ISO_TIMESTAMP, "is an ISO 8601 timestamp"),
    compound_unique(("store_id", "receipt_id", "line_no"), blocking=False, mostly=t.KEY_DUPLICATE_MOSTLY,
                    name="receipt_line_duplicates"),
    matches("unit_price", DECIMAL, blocking=False, mostly=t.PARSEABLE_MIN_SHARE,
            name="unit_price_parseable_share", what="is a decimal"),
)

SHOP_CUSTOMERS = raw_suite(
    "shop_customers",
    ("id", "email", "first_name", "last_name", "phone", "birth_date", "gender", "marketing_opt_in",
     "created_at", "updated_at", "deleted_at"),
    not_null("id"),
    unique("id"),
    parseable("id", INTEGER, "is an integer"),
    not_null("updated_at"),
    parseable("updated_at", ISO_TIMESTAMP, "is a timestamp"),
    unique("email", blocking=False, mostly=t.CONTACT_DUPLICATE_MOSTLY, name="email_duplicates"),
    email_shape("email"),
    phone_shape("phone"),
    birth_date_shape("birth_date"),
    code_list("marketing_opt_in", "0", "1", "true", "false", "t", "f"),
)

SHOP_ADDRESSES = raw_suite(
    "shop_addresses",
    ("id", "customer_id", "kind", "line1", "line2", "city", "postcode", "region", "country",
     "updated_at"),
    not_null("id"),
    unique("id"),
    parseable("id", INTEGER, "is an integer"),
    not_null("customer_id"),
    code_list("kind", "billing", "shipping"),
    matches("country", COUNTRY_CODE, blocking=False, mostly=t.CODE_LIST_MIN_SHARE,
            name="country_is_iso_code", what="is an ISO alpha-2 code"),
)

SHOP_ORDERS = raw_suite(
    "shop_orders",
    ("id", "customer_id", "guest_email", "guest_first_name", "guest_last_name", "guest_phone",
     "status", "placed_at", "updated_at", "total", "currency", "ship_line1", "ship_city",
     "ship_postcode", "ship_country"),
    not_null("id"),
    unique("id"),
    parseable("id", INTEGER, "is an integer"),
    not_null("updated_at"),
    parseable("updated_at", ISO_TIMESTAMP, "is a timestamp"),
    email_shape("guest_email"),
    phone_shape("guest_phone"),
)

SHOP_ORDER_ITEMS = raw_suite(
    "shop_order_items",
    ("order_id", "line_no", "sku", "product_name", "category", "qty", "unit_price"),
    not_null("order_id"),
    not_null("line_no"),
    compound_unique(("order_id", "line_no")),
    parseable("qty", INTEGER, "is an integer"),
    matches("unit_price", DECIMAL, blocking=False, mostly=t.PARSEABLE_MIN_SHARE,
            name="unit_price_parseable_share", what="is a decimal"),
)

# Suppression is derived from `kind`: an unknown kind would silently stop suppressing.
SHOP_EMAIL_EVENTS = raw_suite(
    "shop_email_events",
    ("id", "email", "kind", "occurred_at"),
    not_null("id"),
    unique("id"),
    not_null("email"),
    not_null("kind"),
    in_set("kind", ("bounce", "complaint", "unsubscribe")),
    parseable("occurred_at", ISO_TIMESTAMP, "is a timestamp"),
)

CALL_CENTER_CONTACTS = raw_suite(
    "call_center_contacts",
    ("contact_id", "started_at", "ended_at", "channel", "caller_phone", "caller_email",
     "caller_name", "account_ref", "reason", "outcome", "agent_id", "do_not_call", "notes"),
    not_null("contact_id"),
    parseable("started_at", ISO_TIMESTAMP, "is an ISO 8601 timestamp"),
    unique("contact_id", blocking=False, mostly=t.KEY_DUPLICATE_MOSTLY, name="contact_id_duplicates"),
    email_shape("caller_email"),
    phone_shape("caller_phone"),
    code_list("channel", "phone", "email", "chat"),
    code_list("reason", "complaint", "inquiry", "order_status", "return", "opt_out", "other"),
    code_list("do_not_call", "Y", "N"),
)

APP_EVENTS = raw_suite(
    "app_events",
    ("message_id", "type", "anonymous_id", "user_id", "timestamp", "event", "previous_id",
     "traits", "properties", "context"),
    not_null("message_id"),
    unique("message_id"),
    not_null("type"),
    in_set("type", ("identify", "track", "page", "screen", "alias")),
    parseable("timestamp", ISO_TIMESTAMP, "is an ISO 8601 timestamp"),
    Rule("traits_json_parseable", "ExpectColumnValuesToBeJsonParseable", {"column": "traits"}, True,
         "`traits` is JSON text (the identity stage reads it)."),
)

# --- staging.person_records -------------------------------------------------------------------

PERSON_RECORD_COLUMNS = (
    # input columns, kept
    "source", "source_key", "default_country", "first_name_raw", "last_name_raw", "full_name_raw",
    "email_raw", "phone_raw", "birth_date_raw", "gender_raw", "street_raw", "postcode_raw",
    "city_raw", "country_raw", "marketing_consent_raw", "marketing_consent_at_raw",
    "opt_out_at_raw", "do_not_call_raw", "record_created_at_raw", "record_updated_at_raw",
    "loyalty_card_no", "shop_customer_id", "anonymous_id",
    # standardised columns
    "first_name", "last_name", "first_name_norm", "last_name_norm", "name_key", "name_swapped",
    "title", "gender", "title_gender_conflict", "email", "email_valid", "email_corrected",
    "email_domain_typo", "email_suppressed", "email_unsubscribed", "email_suppression_reason",
    "phone_e164", "phone_valid", "phone_type", "birth_date", "birth_date_valid", "birth_date_flag",
    "street", "postcode", "city", "country", "marketing_consent", "marketing_consent_at",
    "opted_out", "opted_out_at", "do_not_call", "record_created_at", "record_updated_at",
    "has_contact_channel",
)

PERSON_RECORDS = Suite(
    name="staging_person_records",
    table="staging.person_records",
    row_key=("source", "source_key"),
    rules=(
        required_columns(PERSON_RECORD_COLUMNS),
        not_null("source", name=PERSON_SOURCE_NOT_NULL),
        in_set("source", SOURCES, name=PERSON_SOURCE_ALLOWED),
        not_null("source_key", name=PERSON_SOURCE_KEY_NOT_NULL),
        Rule(PERSON_SOURCE_KEY_WELL_FORMED, "ExpectColumnValuesToMatchRegex",
             {"column": "source_key", "regex": SOURCE_KEY}, True,
             "`source_key` is `card:`, `customer:`, `guest_order:`, `contact:`, `user:` or `anon:` "
             "followed by a non-blank id."),
        compound_unique(("source", "source_key"), name=PERSON_KEY_UNIQUE),
        Rule(PERSON_EMAIL_WELL_FORMED, "ExpectColumnValuesToMatchRegex",
             {"column": "email_corrected", "regex": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"}, True,
             "`email_corrected` holds only well-formed addresses (it feeds golden emails)."),
        Rule(PERSON_PHONE_E164, "ExpectColumnValuesToMatchRegex",
             {"column": "phone_e164", "regex": E164}, True,
             "`phone_e164` holds only E.164 numbers (it feeds golden phones)."),
        share_true("email_valid", t.EMAIL_VALID_MIN_SHARE, name=PERSON_EMAIL_VALID_SHARE,
                   where_present="email", what="have a valid email"),
        share_true("phone_valid", t.PHONE_VALID_MIN_SHARE, name=PERSON_PHONE_VALID_SHARE,
                   where_present="phone_raw", what="have a valid phone number"),
        share_true("has_contact_channel", t.CONTACT_CHANNEL_MIN_SHARE,
                   name=PERSON_CONTACT_CHANNEL_SHARE, where_present=None,
                   what="have a valid email or phone"),
        share_true("birth_date_valid", t.BIRTH_DATE_VALID_MIN_SHARE,
                   name=PERSON_BIRTH_DATE_VALID_SHARE, where_present="birth_date_raw",
                   what="have a parseable, plausible birth date"),
        compound_unique(("source", "email_corrected"), blocking=False, mostly=t.CONTACT_DUPLICATE_MOSTLY,
                        name=PERSON_EMAIL_DUPLICATES),
        compound_unique(("source", "phone_e164"), blocking=False, mostly=t.CONTACT_DUPLICATE_MOSTLY,
                        name=PERSON_PHONE_DUPLICATES),
    ),
)

RAW_SUITES: dict[str, Suite] = {
    s.table.removeprefix("raw."): s
    for s in (POS_LOYALTY_SIGNUPS, POS_TRANSACTIONS, SHOP_CUSTOMERS, SHOP_ADDRESSES, SHOP_ORDERS,
              SHOP_ORDER_ITEMS, SHOP_EMAIL_EVENTS, CALL_CENTER_CONTACTS, APP_EVENTS)
}
