"""Small hand-made landing folders for ingestion tests (the sample generator covers volume)."""

import csv
import gzip
import io
import json
from pathlib import Path

import sqlalchemy as sa

from customer_pipeline.ingest.formats import CALL_CENTER, POS_LOYALTY, POS_TRANSACTIONS

SHOP_DDL = [
    """CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,
    phone TEXT, birth_date DATE NULL, gender TEXT NULL, marketing_opt_in BOOLEAN,
    created_at TIMESTAMP, updated_at TIMESTAMP, deleted_at TIMESTAMP NULL)""",
    """CREATE TABLE addresses (id INTEGER PRIMARY KEY, customer_id INTEGER, kind TEXT, line1 TEXT,
    line2 TEXT, city TEXT, postcode TEXT, region TEXT, country TEXT, updated_at TIMESTAMP)""",
    """CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NULL, guest_email TEXT NULL,
    guest_first_name TEXT NULL, guest_last_name TEXT NULL, guest_phone TEXT NULL, status TEXT,
    placed_at TIMESTAMP, updated_at TIMESTAMP, total NUMERIC, currency TEXT, ship_line1 TEXT,
    ship_city TEXT, ship_postcode TEXT, ship_country TEXT)""",
    """CREATE TABLE order_items (order_id INTEGER, line_no INTEGER, sku TEXT, product_name TEXT,
    category TEXT, qty INTEGER, unit_price NUMERIC)""",
    """CREATE TABLE email_events (id INTEGER PRIMARY KEY, email TEXT, kind TEXT, occurred_at TIMESTAMP)""",
]


def csv_bytes(header, rows, bom=False) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return (("\ufeff" if bom else "") + buf.getvalue()).encode("utf-8")


def loyalty_row(card="L100", first="Anna", last="Schmidt", email="anna@example.de", signed="2026-10-01T10:00:00"):
    return [card, "S01", "DE", signed, first, last, "F", "01.02.1980", "030 1234567", email, "10115", "Berlin", "Y"]


def transaction_row(receipt="R1", line="1", card="L100"):
    return [receipt, line, "S01", "2026-10-01T10:05:00+02:00", card, "SKU1", "Coffee", "food", "2", "3.50", "0", "EUR", "card", "7"]


def contact_row(cid="K1", name="Schmidt, Anna", ref="C-1", notes="called about order,\nwants refund"):
    return [cid, "2026-10-02T09:00:00Z", "2026-10-02T09:05:00Z", "phone", "+49 30 1234567", "", name, ref,
            "inquiry", "solved", "A7", "N", notes]


def app_event(mid="m1", kind="identify", anon="dev-1", user=None, traits=None, **extra):
    event = {"messageId": mid, "type": kind, "anonymousId": anon, "timestamp": "2026-10-03T12:00:00Z",
             "context": {"device": {"id": anon, "type": "ios"}}}
    if user:
        event["userId"] = user
    if traits:
        event["traits"] = traits
    event.update(extra)
    return json.dumps(event)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_landing(root: Path) -> Path:
    """A landing folder with one clean file per family and a small shop database."""
    write(root / "pos/loyalty_signups_S01_2026-10-01.csv", csv_bytes(POS_LOYALTY.columns, [loyalty_row(), loyalty_row("L101", "Bernd", "Meier", "b@x.de")]))
    write(root / "pos/transactions_S01_2026-10-01.csv", csv_bytes(POS_TRANSACTIONS.columns, [transaction_row(), transaction_row(line="2")]))
    write(root / "call_center/contacts_2026-10-02.csv", csv_bytes(CALL_CENTER.columns, [contact_row()]))
    lines = [app_event("m1", traits={"email": "anna@example.de", "firstName": "Anna", "address": {"city": "Berlin"}}),
             app_event("m2", "track", event="Product Viewed", properties={"sku": "SKU1"}),
             app_event("m3", "alias", user="1", previousId="dev-1")]
    write(root / "app_events/events_2026-10-03T12.jsonl", ("\n".join(lines) + "\n").encode())
    write(root / "app_events/events_2026-10-03T13.jsonl.gz", gzip.compress((app_event("m4", "screen", user="1") + "\n").encode(), mtime=0))
    make_shop(f"sqlite:///{root / 'shop.sqlite'}")
    return root


def make_shop(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for ddl in SHOP_DDL:
            conn.execute(sa.text(ddl))
        conn.execute(sa.text(
            "INSERT INTO customers VALUES (1, 'anna@example.de', 'Anna', 'Schmidt', '+4930123', '1980-02-01', 'F', true, "
            "'2025-01-01 10:00:00', '2026-10-01 10:00:00', NULL), (2, 'bob@example.com', 'Bob', 'Stone', NULL, NULL, NULL, false, "
            "'2025-02-01 10:00:00', '2026-10-02 10:00:00', NULL)"))
        conn.execute(sa.text(
            "INSERT INTO addresses VALUES (1, 1, 'billing', 'Hauptstr. 1', NULL, 'Berlin', '10115', NULL, 'DE', '2026-10-01 10:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO orders VALUES (1, 1, NULL, NULL, NULL, NULL, 'shipped', '2026-10-01 11:00:00', '2026-10-01 11:00:00', 12.5, 'EUR', "
            "'Hauptstr. 1', 'Berlin', '10115', 'DE'), (2, NULL, 'guest@example.com', 'Gus', 'Guest', '0301234', 'placed', "
            "'2026-10-02 11:00:00', '2026-10-02 11:00:00', 5, 'EUR', 'Weg 2', 'Berlin', '10117', 'DE')"))
        conn.execute(sa.text("INSERT INTO order_items VALUES (1, 1, 'SKU1', 'Coffee', 'food', 1, 12.5), (2, 1, 'SKU2', 'Tea', 'food', 1, 5)"))
        conn.execute(sa.text("INSERT INTO email_events VALUES (1, 'old@example.de', 'bounce', '2026-09-01 08:00:00')"))
    return engine
