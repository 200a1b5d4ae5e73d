"""From the identifiers an erasure request names to the person: customers, records, keys, identifiers."""

from dataclasses import dataclass

import duckdb

from customer_pipeline.erasure.identifiers import Person, card, email_forms, phone_e164
from customer_pipeline.warehouse import table_exists

KEY_SETS = {"card": "cards", "customer": "shop_ids", "guest_order": "guest_orders", "contact": "contacts",
            "user": "users", "anon": "devices"}


class ErasureError(ValueError):
    """The request cannot be carried out as given (nothing to identify, a phone without a country)."""


@dataclass(frozen=True)
class Request:
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    source_key: str | None = None  # SOURCE:KEY, e.g. pos:card:295201355871
    country: str | None = None     # region of a phone written nationally

    def kind(self) -> str:
        return ",".join(k for k in ("customer_id", "email", "phone", "source_key") if getattr(self, k))


def _values(con, sql: str, params: list) -> set[str]:
    return {str(r[0]) for r in con.execute(sql, params).fetchall() if r[0] is not None}


def _customers_of(con, where: str, params: list) -> set[str]:
    return _values(con, f"""SELECT x.customer_id FROM gold.customer_xref x
        JOIN staging.person_records p USING (record_id) WHERE {where}""", params)


def _seeds(con, req: Request) -> tuple[set[str], set[str]]:
    """(customer ids, record ids) the request names directly."""
    customers, records = set(), set()
    has_xref = table_exists(con, "gold.customer_xref") and table_exists(con, "staging.person_records")
    if req.customer_id:
        customers.add(req.customer_id.strip())
    if req.email:
        forms = sorted(email_forms(req.email))
        if not forms:
            raise ErasureError(f"not an email address: {req.email!r}")
        if has_xref:
            customers |= _customers_of(con, "p.email IN ? OR p.email_corrected IN ?", [forms, forms])
        if table_exists(con, "staging.person_records"):
            records |= _values(con, "SELECT record_id FROM staging.person_records WHERE email IN ? OR email_corrected IN ?",
                               [forms, forms])
    if req.phone:
        e164 = phone_e164(req.phone, req.country)
        if e164 is None:
            raise ErasureError(f"not a phone number (give it as +<country code>... or with --country): {req.phone!r}")
        if has_xref:
            customers |= _customers_of(con, "p.phone_e164 = ?", [e164])
        if table_exists(con, "staging.person_records"):
            records |= _values(con, "SELECT record_id FROM staging.person_records WHERE phone_e164 = ?", [e164])
    if req.source_key:
        source, sep, key = req.source_key.strip().partition(":")
        if not sep or ":" not in key:
            raise ErasureError(f"a source key is SOURCE:KEY, e.g. pos:card:123 or shop:customer:42: {req.source_key!r}")
        records.add(f"{source}|{key}")
        if has_xref:
            customers |= _values(con, "SELECT customer_id FROM gold.customer_xref WHERE record_id = ?", [f"{source}|{key}"])
    if not (req.customer_id or req.email or req.phone or req.source_key):
        raise ErasureError("name the person: a customer id, an email, a phone or a source key")
    return customers, records


def _follow_history(con, customers: set[str]) -> set[str]:
    """An id merged away leads to the customer holding its records now; ids merged into it belong too."""
    if not customers or not table_exists(con, "gold.customer_id_history"):
        return customers
    out = set(customers)
    for _ in range(20):
        more = _values(con, "SELECT new_id FROM gold.customer_id_history WHERE old_id IN ? AND new_id IS NOT NULL",
                       [sorted(out)])
        more |= _values(con, "SELECT old_id FROM gold.customer_id_history WHERE new_id IN ?", [sorted(out)])
        if more <= out:
            break
        out |= more
    return out


def _add_keys(person: Person) -> None:
    for record in person.records:
        _, _, key = record.partition("|")
        prefix, _, value = key.partition(":")
        if prefix in KEY_SETS and value:
            getattr(person, KEY_SETS[prefix]).add(value)


_DELIVERED = (
    # (raw table, key column, person attribute, email column, phone column, country column)
    ("raw.pos_loyalty_signups", "card_no", "cards", "email", "phone", "country"),
    ("raw.shop_customers", "id", "shop_ids", "email", "phone", None),
    ("raw.shop_orders", "id", "guest_orders", "guest_email", "guest_phone", "ship_country"),
    ("raw.call_center_contacts", "contact_id", "contacts", "caller_email", "caller_phone", None),
    ("raw.app_identifies", "user_id", "users", "email", "phone", "country"),
    ("raw.app_identifies", "anonymous_id", "devices", "email", "phone", "country"),
)


def _delivered_identifiers(con, person: Person, region_hint: str | None) -> None:
    """Emails and phones as every delivery of the person's records gave them (older files too)."""
    for table, key, attr, email_col, phone_col, country_col in _DELIVERED:
        keys = sorted(getattr(person, attr))
        if not keys or not table_exists(con, table):
            continue
        country = country_col or "NULL"
        for email, phone, region in con.execute(
            f"SELECT {email_col}, {phone_col}, {country} FROM {table} WHERE trim({key}) IN ?", [keys]
        ).fetchall():
            if email and email.strip():
                person.delivered.add(email.strip())
                person.emails |= email_forms(email)
            if phone and phone.strip():
                person.delivered.add(phone.strip())
                e164 = phone_e164(phone, region or region_hint)
                if e164:
                    person.phones.setdefault(e164, region or region_hint)


def _staged_identifiers(con, person: Person) -> None:
    if not table_exists(con, "staging.person_records"):
        return
    for email, corrected, e164, region in con.execute(
        "SELECT email, email_corrected, phone_e164, coalesce(country, default_country) "
        "FROM staging.person_records WHERE record_id IN ?", [sorted(person.records)]
    ).fetchall():
        person.emails |= {e for e in (email, corrected) if e}
        if e164:
            person.phones.setdefault(e164, region)


def _linked_keys(con, person: Person) -> None:
    """Devices the person's app users used; contacts that quote the person's card or account number."""
    if person.users and table_exists(con, "staging.app_identity_links"):
        person.devices |= _values(con, "SELECT anonymous_id FROM staging.app_identity_links WHERE user_id IN ?",
                                  [sorted(person.users)])
    if table_exists(con, "staging.call_center_account_refs") and (person.cards or person.shop_ids):
        person.contacts |= _values(
            con, "SELECT contact_id FROM staging.call_center_account_refs WHERE loyalty_card_no IN ? OR shop_customer_id IN ?",
            [sorted(person.cards) or [""], sorted(person.shop_ids) or [""]])


def shared_identifiers(con, person: Person) -> tuple[set[str], set[str]]:
    """Emails and phones that records of other people hold too (a family landline): they are theirs as
    well, so they are neither registered nor used to find rows (the person's own rows are found by key)."""
    if not table_exists(con, "staging.person_records"):
        return set(), set()
    others = "record_id NOT IN ?"
    records = sorted(person.records) or [""]
    emails = _values(con, f"SELECT email FROM staging.person_records WHERE {others} AND email IN ? "
                     f"UNION SELECT email_corrected FROM staging.person_records WHERE {others} AND email_corrected IN ?",
                     [records, sorted(person.emails) or [""], records, sorted(person.emails) or [""]])
    phones = _values(con, f"SELECT phone_e164 FROM staging.person_records WHERE {others} AND phone_e164 IN ?",
                     [records, sorted(person.phones) or [""]])
    return emails, phones


def resolve(con: duckdb.DuckDBPyConnection, req: Request) -> Person:
    """The person an erasure request names, with every record and identifier of theirs."""
    customers, records = _seeds(con, req)
    person = Person(customers=_follow_history(con, customers))
    if person.customers and table_exists(con, "gold.customer_xref"):
        records |= _values(con, "SELECT record_id FROM gold.customer_xref WHERE customer_id IN ?",
                           [sorted(person.customers)])
    person.records = records
    _add_keys(person)
    _linked_keys(con, person)
    _staged_identifiers(con, person)
    _delivered_identifiers(con, person, req.country)
    if req.email:
        person.emails |= email_forms(req.email)
    if req.phone:
        e164 = phone_e164(req.phone, req.country)
        person.phones.setdefault(e164, req.country)
        person.delivered.add(req.phone.strip())
    shared_emails, shared_phones = shared_identifiers(con, person)
    person.emails -= shared_emails
    for p in shared_phones:
        person.phones.pop(p, None)
    person.delivered = {d for d in person.delivered
                        if not (email_forms(d) & shared_emails) and phone_e164(d, None) not in shared_phones}
    person.cards = {c for c in (card(c) for c in person.cards) if c}
    return person
