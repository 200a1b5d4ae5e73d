"""Suppression on arrival: a delivered row that carries an erased person's identifier is not stored.

The raw loads hand each batch to `screen_arrivals` before writing it. Without a register (nobody ever
erased) it returns at once. Otherwise each row's cheap keys (card, source keys, an email trimmed and
lower-cased and its local part, a phone's last 8 digits) are HMAC-hashed in DuckDB and looked up; the few
rows that hit are normalised as staging does and tested in full. A confirmed row is dropped and counted as
erased (`meta.erased_rows`, so the accounting checks stay true), or, for sales, kept without the person: a
receipt line loses its card, a shop order its customer.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from customer_pipeline.erasure import register

ERASED_CUSTOMER = "ERASED"  # as remove.ERASED_CUSTOMER (not imported: a load imports nothing it does not need)
_ACCOUNT_REF_DIGITS = re.compile(r"^\s*(?:[Cc]\s*-?\s*)?0*(\d+)\s*$")

Candidates = Callable[[dict], Iterator[tuple[str, object, object]]]  # row -> (kind, value, region)


@dataclass(frozen=True)
class Rule:
    candidates: Candidates
    # (kind, SQL over the batch): the cheap keys, hashed in DuckDB for every row; only a row one of them
    # hits is tested in full by `candidates` (normalised as staging does)
    sql_keys: tuple[tuple[str, str], ...]
    anonymise: dict | None = None  # column -> value for a row kept without the person (None: dropped)


def _email_keys(col: str) -> tuple[tuple[str, str], ...]:
    plain = f"""regexp_replace(lower(trim("{col}")), '^mailto:|[<>"'' ;,]', '', 'g')"""
    return (("email", plain), ("email_local", f"split_part({plain}, '@', 1)"))


def _phone_keys(col: str) -> tuple[tuple[str, str], ...]:
    return (("phone_tail", f"""right(regexp_replace(CAST("{col}" AS VARCHAR), '[^0-9]', '', 'g'), 8)"""),)


def _source_key(source: str, prefix: str, col: str) -> tuple[tuple[str, str], ...]:
    return (("source_key", f"""'{source}|{prefix}:' || "{col}" """),)


def _key(source: str, prefix: str, column: str) -> Candidates:
    return lambda row: iter([("source_key", f"{source}|{prefix}:{row[column]}", None)] if row.get(column) else [])


def _both(*parts: Candidates) -> Candidates:
    return lambda row: (c for part in parts for c in part(row))


def _fields(email: str | None = None, phone: str | None = None, country: str | None = None,
            card: str | None = None) -> Candidates:
    def gen(row):
        if email and row.get(email):
            yield "email", row[email], None
        if phone and row.get(phone):
            yield "phone", row[phone], row.get(country) if country else None
        if card and row.get(card):
            yield "card", row[card], None
    return gen


def _account_ref(row):
    ref = row.get("account_ref")
    if ref:
        yield "card", ref, None
        m = _ACCOUNT_REF_DIGITS.match(ref)
        if m:
            yield "source_key", f"shop|customer:{m.group(1)}", None


def _app_event(row):
    if row.get("user_id"):
        yield "source_key", f"app|user:{row['user_id']}", None
    for col in ("anonymous_id", "previous_id"):
        if row.get(col):
            yield "source_key", f"app|anon:{row[col]}", None
    traits = row.get("traits")
    if traits and traits != "{}":
        try:
            t = json.loads(traits)
        except ValueError:
            return
        if isinstance(t, dict):
            country = (t.get("address") or {}).get("country") if isinstance(t.get("address"), dict) else None
            if isinstance(t.get("email"), str):
                yield "email", t["email"], None
            if isinstance(t.get("phone"), (str, int)):
                yield "phone", str(t["phone"]), country


_ORDER_ANONYMISED = {"customer_id": ERASED_CUSTOMER, "guest_email": None, "guest_first_name": None,
                     "guest_last_name": None, "guest_phone": None, "ship_line1": None, "ship_city": None,
                     "ship_postcode": None}

_TRAIT = "json_extract_string(CASE WHEN json_valid(traits) THEN traits END, '$.{}')"
_APP_KEYS = (
    _source_key("app", "user", "user_id") + _source_key("app", "anon", "anonymous_id")
    + _source_key("app", "anon", "previous_id")
    + tuple((k, e.replace('"traits_email"', _TRAIT.format("email"))) for k, e in _email_keys("traits_email"))
    + tuple((k, e.replace('"traits_phone"', _TRAIT.format("phone"))) for k, e in _phone_keys("traits_phone"))
)

RULES = {
    "pos_loyalty_signups": Rule(_fields(email="email", phone="phone", country="country", card="card_no"),
                                (("card", 'trim("card_no")'),) + _email_keys("email") + _phone_keys("phone")),
    "pos_transactions": Rule(_fields(card="card_no"), (("card", 'trim("card_no")'),), anonymise={"card_no": None}),
    "call_center_contacts": Rule(
        _both(_key("call_center", "contact", "contact_id"), _fields(email="caller_email", phone="caller_phone"),
              _account_ref),
        _source_key("call_center", "contact", "contact_id") + _email_keys("caller_email") + _phone_keys("caller_phone")
        + (("card", 'trim("account_ref")'),
           ("source_key", """'shop|customer:' || nullif(ltrim(regexp_extract("account_ref", '^\\s*(?:[Cc]\\s*-?\\s*)?(\\d+)\\s*$', 1), '0'), '')"""))),
    "app_events": Rule(_app_event, _APP_KEYS),
    "shop_customers": Rule(_both(_key("shop", "customer", "id"), _fields(email="email", phone="phone")),
                           _source_key("shop", "customer", "id") + _email_keys("email") + _phone_keys("phone")),
    "shop_addresses": Rule(_key("shop", "customer", "customer_id"), _source_key("shop", "customer", "customer_id")),
    "shop_orders": Rule(_both(_key("shop", "customer", "customer_id"), _key("shop", "guest_order", "id"),
                              _fields(email="guest_email", phone="guest_phone", country="ship_country")),
                        _source_key("shop", "customer", "customer_id") + _source_key("shop", "guest_order", "id")
                        + _email_keys("guest_email") + _phone_keys("guest_phone"),
                        anonymise=_ORDER_ANONYMISED),
    "shop_email_events": Rule(_fields(email="email"), _email_keys("email")),
}


class _Matcher:
    """Hashes a row's candidate identifiers (normalised as staging does) and tests them, with caches."""

    def __init__(self, con, hashes: set[str], regions: set[str]):
        from customer_pipeline.erasure import identifiers

        self.ids = identifiers
        self.hash = register.Hasher(register.secret(con))
        self.hashes, self.regions = hashes, sorted(regions)
        self.cache: dict = {}

    def _forms(self, kind: str, value, region) -> list[tuple[str, str]]:
        if kind == "email":
            return [("email", e) for e in self.ids.email_forms(value)]
        if kind == "phone":
            found = {self.ids.phone_e164(value, r) for r in [region, *self.regions]}
            return [("phone", p) for p in found if p]
        if kind == "card":
            c = self.ids.card(value)
            return [("card", c)] if c else []
        return [(kind, str(value))]

    def _maybe(self, kind: str, value) -> bool:
        """A cheap first test; only a value that passes it is normalised in full (most values do not)."""
        if kind == "email":
            text = self.ids.normalize_email(value) or ""
            return (self.hash("email", text) in self.hashes
                    or self.hash("email_local", text.rpartition("@")[0]) in self.hashes)
        if kind == "phone":
            return self.hash("phone_tail", self.ids.phone_tail(value)) in self.hashes
        return True

    def hit(self, kind: str, value, region) -> bool:
        key = (kind, value, region)
        if key not in self.cache:
            self.cache[key] = self._maybe(kind, value) and any(
                self.hash(k, v) in self.hashes for k, v in self._forms(kind, value, region))
        return self.cache[key]


def screen_arrivals(con, family: str, data: pa.Table, location: str, content_hash: str | None,
                    run_id: str | None) -> tuple[pa.Table, int]:
    """(rows to store, rows suppressed as erased) of one delivered batch of raw.<family>."""
    rule = RULES.get(family)
    if rule is None or data.num_rows == 0:
        return data, 0
    if not register.has_entries(con):
        return data, 0
    maybe = _cheap_hits(con, data, rule)
    if not maybe:
        return data, 0
    matcher = _Matcher(con, *register.registered(con))
    rows = data.take(pa.array(maybe)).select([c for c in data.column_names if not c.startswith("_")]).to_pylist()
    confirmed = {i for i, row in zip(maybe, rows) if any(matcher.hit(*c) for c in rule.candidates(row))}
    n = len(confirmed)
    if not n:
        return data, 0
    mask = pa.array([i in confirmed for i in range(data.num_rows)], type=pa.bool_())
    source = data.column("_source")[0].as_py() if "_source" in data.column_names else family.split("_")[0]
    if rule.anonymise:
        for col, value in rule.anonymise.items():
            i = data.column_names.index(col)
            data = data.set_column(i, col, pc.if_else(mask, pa.scalar(value, type=pa.string()), data.column(col)))
        register.record_rows(con, None, register.ANONYMISED, source, location, content_hash, f"raw.{family}", n, run_id)
        return data, 0
    register.record_rows(con, None, register.ERASED, source, location, content_hash, f"raw.{family}", n, run_id)
    return data.filter(pc.invert(mask)), n


def _cheap_hits(con, data: pa.Table, rule: Rule) -> list[int]:
    """Row numbers of the batch whose cheap keys are in the register: HMAC-SHA256 computed in DuckDB
    (sha256 over the padded key, RFC 2104), so a large delivery is screened at SQL speed."""
    key = register.secret(con).ljust(64, b"\0")
    ipad, opad = bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
    have = set(data.column_names) | {"traits_email", "traits_phone"}
    keys = [(k, e) for k, e in rule.sql_keys if all(c in have for c in _columns_of(e))]
    if not keys:
        return []
    con.register("_arrival", data.append_column("_arrival_row", pa.array(range(data.num_rows), type=pa.int64())))
    try:
        union = " UNION ALL ".join(f"SELECT _arrival_row, '{k}' AS kind, CAST({e} AS VARCHAR) AS v FROM _arrival"
                                   for k, e in keys)
        rows = con.execute(
            f"""SELECT DISTINCT _arrival_row FROM ({union}) WHERE coalesce(v, '') <> ''
            AND sha256($opad::BLOB || unhex(sha256($ipad::BLOB || encode(kind || '|' || v))))
                IN (SELECT identifier_hash FROM {register.REGISTER}) ORDER BY 1""",
            {"ipad": ipad, "opad": opad}).fetchall()
    finally:
        con.unregister("_arrival")
    return [r[0] for r in rows]


def _columns_of(expr: str) -> list[str]:
    """The quoted column names an expression reads (traits_* stand for JSON paths in `traits`)."""
    names = re.findall(r'"([a-z_]+)"', expr)
    return ["traits" if n.startswith("traits") else n for n in names] or ["traits"]
