"""Take one person out of every layer of the DuckDB warehouse (inside the caller's transaction).

Rows are found by the keys of the person's own records (card, shop id, contact id, app user and
devices), never by a value another person may share; quarantine rows, which have no keys, by the
person's identifiers as text. Sales stay as anonymous figures: a receipt line loses its card, a shop
order its customer and address; aggregates (market basket, quality report) stay as they are.
"""

import pyarrow as pa

from customer_pipeline.erasure import register
from customer_pipeline.erasure.identifiers import Person
from customer_pipeline.identity.households import BASIS_TABLE as HOUSEHOLD_BASIS
from customer_pipeline.identity.households import TIES_TABLE as HOUSEHOLD_TIES
from customer_pipeline.quality.incremental import KEPT as QUALITY_KEPT
from customer_pipeline.warehouse import table_exists

# marks a shop order whose customer was erased: not a guest checkout (staging would make a person
# of it), tied to no customer (customer_purchases keeps the sale with customer_id NULL)
ERASED_CUSTOMER = "ERASED"

FILE_TABLES = {  # raw tables of landing files: rows counted per file version for the accounting
    "raw.pos_loyalty_signups": "trim(card_no) IN (SELECT v FROM _er_cards)",
    "raw.call_center_contacts": "contact_id IN (SELECT v FROM _er_contacts)",
    "raw.app_events": "user_id IN (SELECT v FROM _er_users) OR anonymous_id IN (SELECT v FROM _er_devices) "
                      "OR previous_id IN (SELECT v FROM _er_devices)",
    "raw.app_event_duplicates": "user_id IN (SELECT v FROM _er_users) OR anonymous_id IN (SELECT v FROM _er_devices) "
                                "OR previous_id IN (SELECT v FROM _er_devices)",
}
DERIVED_RAW = {  # derived from raw.app_events, brought up to date on each load
    "raw.app_identifies": "user_id IN (SELECT v FROM _er_users) OR anonymous_id IN (SELECT v FROM _er_devices)",
    "raw.app_aliases": "user_id IN (SELECT v FROM _er_users) OR previous_id IN (SELECT v FROM _er_devices)",
}
SHOP_TABLES = {
    "raw.shop_customers": "id IN (SELECT v FROM _er_shop)",
    "raw.shop_addresses": "customer_id IN (SELECT v FROM _er_shop)",
    "raw.shop_email_events": "lower(trim(email)) IN (SELECT v FROM _er_emails)",
}
ORDER_OF_PERSON = "customer_id IN (SELECT v FROM _er_shop) OR id IN (SELECT v FROM _er_guest)"
ANONYMISE_ORDER = (f"customer_id = '{ERASED_CUSTOMER}', guest_email = NULL, guest_first_name = NULL, "
                   "guest_last_name = NULL, guest_phone = NULL, ship_line1 = NULL, ship_city = NULL, ship_postcode = NULL")
STAGING = {
    "staging.app_identity_links": "user_id IN (SELECT v FROM _er_users) OR anonymous_id IN (SELECT v FROM _er_devices)",
    "staging.call_center_account_refs": "contact_id IN (SELECT v FROM _er_contacts) "
    "OR loyalty_card_no IN (SELECT v FROM _er_cards) OR shop_customer_id IN (SELECT v FROM _er_shop)",
}
HANDLED = {"gold.customer_purchases", "gold.customer_id_history", "gold.households", "gold.household_id_history",
           "staging.shop_orders", "staging.pos_transactions", *STAGING}


def _register_sets(con, person: Person) -> None:
    sets = {
        "cards": person.cards, "contacts": person.contacts, "users": person.users, "devices": person.devices,
        "shop": person.shop_ids, "guest": person.guest_orders, "emails": person.emails,
        "records": person.records, "customers": person.customers,
        "keys": {r.partition("|")[2] for r in person.records},
    }
    for name, values in sets.items():
        con.register(f"_er_{name}", pa.table({"v": pa.array(sorted(values), type=pa.string())}))


def _unregister(con) -> None:
    for name in ("cards", "contacts", "users", "devices", "shop", "guest", "emails", "records", "customers", "keys"):
        try:
            con.unregister(f"_er_{name}")
        except Exception:  # noqa: BLE001 - an aborted transaction refuses it; the connection closes anyway
            pass


def _delete(con, table: str, where: str) -> int:
    if not table_exists(con, table):
        return 0
    return int(con.execute(f"DELETE FROM {table} WHERE {where}").fetchall()[0][0])


def _update(con, table: str, assign: str, where: str) -> int:
    if not table_exists(con, table):
        return 0
    return int(con.execute(f"UPDATE {table} SET {assign} WHERE {where}").fetchall()[0][0])


def _per_version(con, table: str, where: str) -> list[tuple]:
    return con.execute(
        f"SELECT _source, _location, _content_hash, count(*) FROM {table} WHERE {where} GROUP BY ALL").fetchall()


def _raw(con, person: Person, request_id: str, removed: dict) -> None:
    for table, where in FILE_TABLES.items():
        if not table_exists(con, table):
            continue
        for source, location, content_hash, n in _per_version(con, table, where):
            register.record_rows(con, request_id, register.ERASED, source, location, content_hash, table, n, None)
        removed[table] = _delete(con, table, where)
    for table, where in {**DERIVED_RAW, **SHOP_TABLES}.items():
        removed[table] = _delete(con, table, where)
    for table, where in SHOP_TABLES.items():
        register.record_rows(con, request_id, register.ERASED, "shop", f"shop:{table.split('_', 1)[1]}", None,
                             table, removed[table], None)
    # receipts keep their sales; only the card that tied them to the person goes
    card_where = "trim(card_no) IN (SELECT v FROM _er_cards)"
    if table_exists(con, "raw.pos_transactions"):
        for source, location, content_hash, n in _per_version(con, "raw.pos_transactions", card_where):
            register.record_rows(con, request_id, register.ANONYMISED, source, location, content_hash,
                                 "raw.pos_transactions", n, None)
    removed["raw.pos_transactions (card removed)"] = _update(con, "raw.pos_transactions", "card_no = NULL", card_where)
    removed["raw.shop_orders (customer removed)"] = _update(con, "raw.shop_orders", ANONYMISE_ORDER, ORDER_OF_PERSON)


def quarantine_needles(person: Person) -> list[str]:
    """Quarantine rows hold a rejected line as text, without keys: the person's identifiers in it."""
    needles = {d for d in person.delivered if len(d) >= 6} | person.emails | person.cards | person.contacts
    needles |= person.devices | {p for p in person.phones}
    needles |= {f'"userId":"{u}"' for u in person.users}
    needles |= {f"'id': '{i}'" for i in person.shop_ids} | {f"'customer_id': '{i}'" for i in person.shop_ids}
    needles |= {f"'id': '{i}'" for i in person.guest_orders}
    return sorted({n.lower() for n in needles if n})


def _quarantine(con, person: Person, request_id: str, removed: dict) -> None:
    if not table_exists(con, "quarantine.rejected_records"):
        return
    needles = quarantine_needles(person)
    if not needles:
        removed["quarantine.rejected_records"] = 0
        return
    con.register("_er_needles", pa.table({"v": pa.array(needles, type=pa.string())}))
    con.execute("CREATE OR REPLACE TEMP TABLE _er_quarantine AS SELECT q.rowid AS rid, q.source, q.location FROM "
                "quarantine.rejected_records q WHERE EXISTS "
                "(SELECT 1 FROM _er_needles n WHERE contains(lower(q.raw_record), n.v))")
    con.unregister("_er_needles")
    hashes = "(SELECT content_hash FROM meta.loaded_files f WHERE f.location = q.location LIMIT 1)" \
        if table_exists(con, "meta.loaded_files") else "NULL"
    for source, location, content_hash, n in con.execute(
        f"SELECT source, location, {hashes}, count(*) FROM _er_quarantine q GROUP BY ALL").fetchall():
        register.record_rows(con, request_id, register.ERASED, source, location, content_hash,
                             "quarantine.rejected_records", n, None)
    removed["quarantine.rejected_records"] = _delete(
        con, "quarantine.rejected_records", "rowid IN (SELECT rid FROM _er_quarantine)")
    con.execute("DROP TABLE _er_quarantine")


def _households(con, removed: dict) -> list[tuple[str, int | None]]:
    """Households lose the person as a member; one left without members goes, with its history."""
    if not (table_exists(con, "gold.households") and table_exists(con, "gold.golden_customers")):
        return []
    changes = con.execute(
        """SELECT h.household_id, h.members - count(*) AS left_over FROM gold.golden_customers g
        JOIN gold.households h USING (household_id) WHERE g.customer_id IN (SELECT v FROM _er_customers)
        GROUP BY h.household_id, h.members""").fetchall()
    gone = [h for h, n in changes if n <= 0]
    for household, n in changes:
        if n > 0:
            con.execute("UPDATE gold.households SET members = ? WHERE household_id = ?", [n, household])
    removed["gold.households"] = int(
        con.execute("DELETE FROM gold.households WHERE household_id IN ?", [gone]).fetchall()[0][0])
    removed["gold.household_id_history"] = _delete(
        con, "gold.household_id_history", f"old_id IN {_sql_list(gone)} OR new_id IN {_sql_list(gone)}")
    for table in (HOUSEHOLD_BASIS, HOUSEHOLD_TIES):  # the person's basis, and its postcode and house numbers
        removed[table] = _delete(con, table, "customer_id IN (SELECT v FROM _er_customers)")
    return [(h, n if n > 0 else None) for h, n in changes]


def _sql_list(values: list[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")" if values else "(NULL)"


def _columns(con) -> dict[str, set[str]]:
    cols: dict[str, set[str]] = {}
    for schema, table, column in con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_schema IN ('staging', 'identity', 'gold') AND table_catalog = current_database()").fetchall():
        cols.setdefault(f"{schema}.{table}", set()).add(column)
    return cols


def _later_layers(con, removed: dict) -> list[tuple[str, int | None]]:
    households = _households(con, removed)
    for table, where in STAGING.items():
        removed[table] = _delete(con, table, where)
    removed["staging.shop_orders (customer removed)"] = _update(
        con, "staging.shop_orders", f"customer_id = NULL, source_key = 'customer:{ERASED_CUSTOMER}'",
        "customer_id::VARCHAR IN (SELECT v FROM _er_shop) OR order_id::VARCHAR IN (SELECT v FROM _er_guest)")
    removed["staging.pos_transactions (card removed)"] = _update(
        con, "staging.pos_transactions", "source_key = NULL", "source_key IN (SELECT 'card:' || v FROM _er_cards)")
    removed["gold.customer_purchases (customer removed)"] = _update(
        con, "gold.customer_purchases", "customer_id = NULL, source_key = NULL",
        "customer_id IN (SELECT v FROM _er_customers) OR source_key IN (SELECT v FROM _er_keys)")
    removed["gold.customer_id_history"] = _delete(
        con, "gold.customer_id_history",
        "old_id IN (SELECT v FROM _er_customers) OR new_id IN (SELECT v FROM _er_customers)")
    # every other table of these layers that names a record or a customer (tables added later included)
    for table, cols in sorted(_columns(con).items()):
        if table in HANDLED:
            continue
        where = []
        if "record_id" in cols:
            where.append("record_id IN (SELECT v FROM _er_records)")
        if {"record_id_l", "record_id_r"} <= cols:
            where.append("record_id_l IN (SELECT v FROM _er_records) OR record_id_r IN (SELECT v FROM _er_records)")
        if "customer_id" in cols:
            where.append("customer_id IN (SELECT v FROM _er_customers)")
        if where:
            removed[table] = _delete(con, table, " OR ".join(f"({w})" for w in where))
    return households


def remove_person(con, person: Person, request_id: str) -> tuple[dict[str, int], list[tuple[str, int | None]]]:
    """Rows removed (or anonymised) per table, and the households changed (id, members left or None)."""
    removed: dict[str, int] = {}
    register.ensure(con)
    _register_sets(con, person)
    try:
        _raw(con, person, request_id, removed)
        _quarantine(con, person, request_id, removed)
        households = _later_layers(con, removed)
        # the outcomes the quality checks reuse while a raw table is unchanged carry example values
        if table_exists(con, QUALITY_KEPT):
            con.execute(f"DELETE FROM {QUALITY_KEPT}")
    finally:
        _unregister(con)
    return removed, households
