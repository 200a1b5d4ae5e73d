"""The file families of the source contract: where they land, their columns and typed fields."""

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CsvFamily:
    name: str  # raw table name
    source: str
    folder: str
    pattern: re.Pattern
    columns: tuple[str, ...]
    required: tuple[str, ...] = ()
    ints: tuple[str, ...] = ()
    decimals: tuple[str, ...] = ()
    timestamps: tuple[str, ...] = ()
    optional_timestamps: tuple[str, ...] = field(default=())
    keys: tuple[str, ...] = ()  # identifiers that become source keys or joins: bounded by KEY_MAX_LENGTH


# Longest identifier (card number, contact or receipt id, Segment messageId/userId/anonymousId) a row may
# carry. A key cannot be shortened or nulled like a name (a cut key would join the wrong records), so a row
# with a longer one is quarantined; 128 is far above any real card, UUID (36) or Segment id (<= 64) and far
# below what PostgreSQL can index.
KEY_MAX_LENGTH = 128


POS_LOYALTY = CsvFamily(
    name="pos_loyalty_signups",
    source="pos",
    folder="pos",
    pattern=re.compile(r"^loyalty_signups_[^/_]+(_[^/_]+)*_\d{4}-\d{2}-\d{2}\.csv$"),
    columns=(
        "card_no", "store_id", "country", "signed_up_at", "first_name", "last_name", "gender",
        "birth_date", "phone", "email", "postcode", "city", "marketing_consent",
    ),
    required=("card_no",),
    timestamps=("signed_up_at",),
    keys=("card_no", "store_id"),
)

POS_TRANSACTIONS = CsvFamily(
    name="pos_transactions",
    source="pos",
    folder="pos",
    pattern=re.compile(r"^transactions_[^/_]+(_[^/_]+)*_\d{4}-\d{2}-\d{2}\.csv$"),
    columns=(
        "receipt_id", "line_no", "store_id", "sold_at", "card_no", "sku", "product_name",
        "category", "qty", "unit_price", "discount", "currency", "payment_method", "bonus_points",
    ),
    required=("receipt_id", "line_no", "store_id"),
    ints=("line_no", "qty", "bonus_points"),
    decimals=("unit_price", "discount"),
    timestamps=("sold_at",),
    keys=("receipt_id", "store_id", "card_no", "sku"),
)

CALL_CENTER = CsvFamily(
    name="call_center_contacts",
    source="call_center",
    folder="call_center",
    pattern=re.compile(r"^contacts_\d{4}-\d{2}-\d{2}\.csv$"),
    columns=(
        "contact_id", "started_at", "ended_at", "channel", "caller_phone", "caller_email",
        "caller_name", "account_ref", "reason", "outcome", "agent_id", "do_not_call", "notes",
    ),
    required=("contact_id",),
    timestamps=("started_at",),
    optional_timestamps=("ended_at",),
    keys=("contact_id", "account_ref", "agent_id"),
)

# Preference registers (do-not-call, mail preference, email opt-out): full snapshots, `<register>_<date>.csv`;
# the row checks beyond these (kind, listed_at) are in ingest/suppression.py, which loads this family
SUPPRESSION = CsvFamily(
    name="suppression_entries",
    source="suppression",
    folder="suppression",
    pattern=re.compile(r"^[a-z0-9][a-z0-9_-]*_\d{4}-\d{2}-\d{2}\.csv$", re.IGNORECASE),
    columns=("kind", "value", "postcode", "country", "listed_at"),
    required=("kind", "value"),
)

CSV_FAMILIES = {f.name: f for f in (POS_LOYALTY, POS_TRANSACTIONS, CALL_CENTER, SUPPRESSION)}

APP_EVENTS_FOLDER = "app_events"
APP_EVENTS_PATTERN = re.compile(r"^events_\d{4}-\d{2}-\d{2}T\d{2}\.jsonl(\.gz)?$")
APP_EVENT_TYPES = ("identify", "track", "page", "screen", "alias")

APP_EVENT_COLUMNS = (
    "message_id", "type", "anonymous_id", "user_id", "timestamp", "event", "previous_id",
    "traits", "properties", "context",
)
APP_IDENTIFY_COLUMNS = (
    "message_id", "anonymous_id", "user_id", "timestamp", "email", "first_name", "last_name",
    "phone", "birthday", "street", "city", "postal_code", "country",
)
APP_ALIAS_COLUMNS = ("message_id", "previous_id", "user_id", "timestamp")

LINEAGE_COLUMNS = ("_source", "_location", "_record_ref", "_content_hash", "_ingested_at", "_run_id")
