"""The web shop's database: accounts, their addresses, orders (with guest checkouts) and mail events."""

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from customer_pipeline.sample import dirt, records
from customer_pipeline.sample.catalog import Catalog, line_numbers, money
from customer_pipeline.sample.persons import Persons, email_local_part
from customer_pipeline.sample.phones import PhoneBook
from customer_pipeline.sample.pools import COUNTRIES, CURRENCY
from customer_pipeline.sample.timeline import DAY_S, Timeline, iso, uniform_between

SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, phone TEXT,
  birth_date DATE NULL, gender TEXT NULL, marketing_opt_in BOOLEAN, created_at TIMESTAMP, updated_at TIMESTAMP,
  deleted_at TIMESTAMP NULL);
CREATE TABLE addresses (id INTEGER PRIMARY KEY, customer_id INTEGER, kind TEXT, line1 TEXT, line2 TEXT, city TEXT,
  postcode TEXT, region TEXT, country TEXT, updated_at TIMESTAMP);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NULL, guest_email TEXT NULL,
  guest_first_name TEXT NULL, guest_last_name TEXT NULL, guest_phone TEXT NULL, status TEXT, placed_at TIMESTAMP,
  updated_at TIMESTAMP, total DECIMAL(12, 2), currency TEXT, ship_line1 TEXT, ship_city TEXT, ship_postcode TEXT,
  ship_country TEXT);
CREATE TABLE order_items (order_id INTEGER, line_no INTEGER, sku TEXT, product_name TEXT, category TEXT,
  qty INTEGER, unit_price DECIMAL(12, 2));
CREATE TABLE email_events (id INTEGER PRIMARY KEY, email TEXT, kind TEXT, occurred_at TIMESTAMP);
CREATE INDEX customers_updated_at ON customers (updated_at);
CREATE INDEX addresses_updated_at ON addresses (updated_at);
CREATE INDEX orders_updated_at ON orders (updated_at);
CREATE INDEX order_items_order ON order_items (order_id);
"""
_PHONE_FORMATS = {"e164": 0.3, "intl": 0.3, "national": 0.3, "compact": 0.1}
_NAME_DIRT = records.NameDirt(swap=0.01, nick=0.04, typo=0.01, case=0.05, space=0.02, accents=0.05)
_GUEST_DIRT = records.NameDirt(swap=0.015, nick=0.06, typo=0.02, case=0.06, space=0.03, accents=0.1)


@dataclass(frozen=True)
class Accounts:
    """Shop customer accounts: the holder (row in Persons), the id and when it was opened."""

    person: np.ndarray
    customer_id: np.ndarray
    rank: np.ndarray  # 0 for a person's first account
    created: np.ndarray


def _td(days: np.ndarray) -> np.ndarray:
    return (np.asarray(days) * DAY_S).astype("timedelta64[s]")


def _fallback_email(P: Persons, person: np.ndarray, email: np.ndarray) -> np.ndarray:
    """The shop needs an email: use the person's other address, or the one they use only here."""
    out = np.where(email != None, email, P.email_alt[person])  # noqa: E711 - elementwise
    for r in np.flatnonzero(out == None).tolist():  # noqa: E711
        p = person[r]
        local = f"{email_local_part(P['first'][p])}.{email_local_part(P['last'][p])}"
        out[r] = f"{local}.{P.person_id[p]}@mailbox.org"
    return out


def _account_emails(P: Persons, person: np.ndarray, rank: np.ndarray, created: np.ndarray, updated: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    email = records.email_at(P, person, created)
    # A changed address is updated in the account by most, not all.
    switched = (rank == 0) & ~np.isnat(P.email_changed_at[person]) & (updated >= P.email_changed_at[person]) & (
        rng.random(len(person)) < 0.65)
    email = np.where(switched, P.email_new[person], email)
    email = _fallback_email(P, person, email)
    # A second account: with the other address, the same one with capitals, or a plus-address.
    r = rng.random(len(person))
    alt = P.email_alt[person]
    extra = rank > 0
    use_alt = extra & (r < 0.45) & (alt != None)  # noqa: E711
    email = np.where(use_alt, alt, email)
    variant = np.flatnonzero(extra & ~use_alt)
    for i, v in zip(variant.tolist(), r[variant].tolist()):
        local, _, dom = email[i].partition("@")
        email[i] = f"{local.title()}@{dom}" if v < 0.65 else f"{local}+shop{rank[i]}@{dom}"
    return records.dirty_email(email, rng, domain=0.01)


def _customers(P: Persons, book: PhoneBook, tl: Timeline, rng: np.random.Generator):
    members = np.flatnonzero(P.in_shop)
    r = rng.random(len(members))
    guest_only = (rng.random(len(members)) < 0.12) & ~P.in_app[members]
    n_acc = np.where(guest_only, 0, 1 + (r < 0.12) + (r < 0.03))
    person = np.repeat(members, n_acc)
    starts = np.r_[0, np.cumsum(n_acc)[:-1]]
    rank = np.arange(len(person)) - np.repeat(starts, n_acc)
    created = uniform_between(rng, P.first_seen[person], P.last_seen[person] - _td(1))
    created = created[np.lexsort((created, person))]  # a person's first account is the oldest
    updated = uniform_between(rng, created, P.last_seen[person])
    deleted = np.where(rng.random(len(person)) < 0.015, uniform_between(rng, updated, np.full(len(person), tl.end)),
                       np.datetime64("NaT", "s"))
    updated = np.where(np.isnat(deleted), updated, deleted)
    order = np.argsort(created, kind="stable")
    cid = np.empty(len(person), dtype=np.int64)
    cid[order] = 10_001 + np.arange(len(person))
    first, last, _ = records.names(P, person, rng, _NAME_DIRT)
    gender = np.where(rng.random(len(person)) < 0.6, None, P.gender[person])
    birth = dirt.blank(dirt.date_text(P.birth[person], np.zeros(len(person), dtype=int)), rng, 0.55)
    cust = {
        "id": cid, "email": _account_emails(P, person, rank, created, updated, rng), "first_name": first,
        "last_name": last,
        "phone": records.phones(P, book, person, rng, mobile=0.7, landline=0.1, formats=_PHONE_FORMATS,
                                unparseable=0.002),
        "birth_date": birth, "gender": gender, "marketing_opt_in": (rng.random(len(person)) < 0.5).astype(int),
        "created_at": iso(created, " "), "updated_at": iso(updated, " "),
        "deleted_at": np.where(np.isnat(deleted), None, iso(deleted, " ")),
    }
    accounts = Accounts(person=person, customer_id=cid, rank=rank, created=created)
    return cust, accounts, order, updated, deleted, members[guest_only]


def _addresses(P: Persons, acc: Accounts, updated: np.ndarray, rng: np.random.Generator):
    """A billing address per account as opened; a shipping address for most, the newer one after a move."""
    n = len(acc.person)
    has_ship = rng.random(n) < 0.65
    rows_b = np.arange(n)
    rows_s = np.flatnonzero(has_ship)
    cust = np.concatenate([rows_b, rows_s])
    when = np.concatenate([acc.created, updated[rows_s]])
    kind = np.array(["billing"] * n + ["shipping"] * len(rows_s), dtype=object)
    addr = records.address_at(P, acc.person[cust], when)
    moved_since = (addr["line1"] != records.address_at(P, acc.person[cust], acc.created[cust])["line1"])
    stamp = np.where(moved_since, when, acc.created[cust])
    order = np.lexsort((kind, acc.customer_id[cust]))
    line1 = dirt.case_noise(dirt.typo(addr["line1"], rng, 0.02), rng, 0.03)
    region = np.where(addr["region"] == "", None, addr["region"])
    cols = [np.arange(1, len(cust) + 1), acc.customer_id[cust][order], kind[order], line1[order],
            addr["line2"][order], addr["city"][order], dirt.case_noise(addr["postcode"], rng, 0.03)[order],
            region[order], P.country[acc.person[cust]][order], iso(stamp, " ")[order]]
    return cols


def _orders(P: Persons, book: PhoneBook, acc: Accounts, deleted: np.ndarray, guest_only: np.ndarray,
            cat: Catalog, tl: Timeline, rng: np.random.Generator):
    n_acc_orders = rng.poisson(1.6, len(acc.person))
    o_acc = np.repeat(np.arange(len(acc.person)), n_acc_orders)
    o_person = acc.person[o_acc]
    until = np.where(np.isnat(deleted), P.last_seen[acc.person], deleted)
    placed_acc = uniform_between(rng, acc.created[o_acc], until[o_acc])
    # Guest checkouts: people without an account, and a few account holders who did not log in.
    holders = np.unique(acc.person)
    occasional = holders[rng.random(len(holders)) < 0.06]
    g_person = np.concatenate([np.repeat(guest_only, 1 + rng.poisson(0.6, len(guest_only))), occasional])
    placed_g = uniform_between(rng, P.first_seen[g_person], P.last_seen[g_person])
    g_email = _fallback_email(P, g_person, records.email_at(P, g_person, placed_g))
    other = (np.isin(g_person, occasional)) & (rng.random(len(g_person)) < 0.5) & (P.email_alt[g_person] != None)  # noqa: E711
    g_email = np.where(other, P.email_alt[g_person], g_email)
    g_email = records.dirty_email(g_email, rng, typo=0.01, domain=0.01, case=0.03)
    g_first, g_last, _ = records.names(P, g_person, rng, _GUEST_DIRT)
    g_phone = np.where(rng.random(len(g_person)) < 0.6, records.phones(
        P, book, g_person, rng, mobile=0.85, landline=0.1, formats=_PHONE_FORMATS, unparseable=0.003), None)

    n_a, n_g = len(o_acc), len(g_person)
    person = np.concatenate([o_person, g_person])
    placed = np.concatenate([placed_acc, placed_g])
    order = np.argsort(placed, kind="stable")
    oid = np.empty(n_a + n_g, dtype=np.int64)
    oid[order] = np.arange(1, n_a + n_g + 1)
    none_a = np.full(n_a, None, dtype=object)
    customer_id = np.concatenate([acc.customer_id[o_acc].astype(object), np.full(n_g, None, dtype=object)])
    recent = placed > tl.end - _td(3)
    status = np.array(["delivered", "cancelled", "returned", "refunded"], dtype=object)[
        rng.choice(4, len(person), p=[0.82, 0.08, 0.06, 0.04])]
    status = np.where(recent, np.where(rng.random(len(person)) < 0.5, "placed", "shipped"), status)
    updated = np.minimum(placed + _td(rng.uniform(0, 14, len(person))), tl.end)
    addr = records.address_at(P, person, placed)
    currency = np.array([CURRENCY[c] for c in COUNTRIES], dtype=object)[P.country_idx[person]]

    lines = 1 + rng.poisson(0.6, len(person))
    it_order = np.repeat(np.arange(len(person)), lines)
    item = cat.sample(rng, len(it_order))
    qty = rng.choice([1, 2, 3], len(it_order), p=[0.8, 0.15, 0.05])
    # Bundles come from a stream of their own (spawning draws nothing): the mail events drawn after are as before.
    extra = rng.spawn(1)[0]
    it_order, item, origin = cat.with_bundles(it_order, item, len(person), extra)
    qty = np.where(origin >= 0, qty[np.maximum(origin, 0)], extra.choice([1, 2, 3], len(origin), p=[0.8, 0.15, 0.05]))
    line_no = line_numbers(it_order)
    unit = cat.price_cents(item, currency[it_order])
    total = np.bincount(it_order, weights=unit * qty, minlength=len(person)).astype(np.int64)

    cols = [oid, customer_id, np.concatenate([none_a, g_email]), np.concatenate([none_a, g_first]),
            np.concatenate([none_a, g_last]), np.concatenate([none_a, g_phone]), status, iso(placed, " "),
            iso(updated, " "), money(total), currency, addr["line1"], addr["city"], addr["postcode"], P.country[person]]
    cols = [c[order] for c in cols]
    it_sort = np.lexsort((line_no, oid[it_order]))
    items = [oid[it_order], line_no, cat.sku[item], cat.name[item], cat.category[item], qty, money(unit)]
    items = [c[it_sort] for c in items]
    truth = ("shop", np.array([f"guest_order:{i}" for i in oid[n_a:].tolist()], dtype=object), P.person_id[g_person])
    return cols, items, truth, g_person, placed_g, g_email


def _email_events(P: Persons, cust: dict, acc: Accounts, g_person: np.ndarray, tl: Timeline, rng: np.random.Generator):
    """Bounces for abandoned and misspelt addresses, unsubscribes and complaints, as the mail provider reports."""
    shop_people = np.unique(np.concatenate([acc.person, g_person]))
    changers = shop_people[~np.isnat(P.email_changed_at[shop_people])]
    k = 1 + rng.poisson(0.8, len(changers))
    who = np.repeat(changers, k)
    e_old = P.email[who]
    t_old = uniform_between(rng, P.email_changed_at[who], np.full(len(who), tl.end))
    emails = cust["email"]
    misspelt = np.array([e.split("@")[-1].lower() in _TYPO_DOMAINS for e in emails.tolist()], dtype=bool)
    created = acc.created
    t_typo = uniform_between(rng, created[misspelt], np.full(int(misspelt.sum()), tl.end))
    unsub = rng.random(len(emails)) < 0.04
    t_unsub = uniform_between(rng, created[unsub], np.full(int(unsub.sum()), tl.end))
    compl = rng.random(len(emails)) < 0.005
    t_compl = uniform_between(rng, created[compl], np.full(int(compl.sum()), tl.end))
    email = np.concatenate([e_old, emails[misspelt], emails[unsub], emails[compl]])
    kind = np.array(["bounce"] * (len(who) + int(misspelt.sum())) + ["unsubscribe"] * int(unsub.sum())
                    + ["complaint"] * int(compl.sum()), dtype=object)
    when = np.concatenate([t_old, t_typo, t_unsub, t_compl])
    order = np.argsort(when, kind="stable")
    lower = np.array([e.lower() for e in email.tolist()], dtype=object)  # the provider keeps addresses lower case
    return [np.arange(1, len(order) + 1), lower[order], kind[order], iso(when[order], " ")]


_TYPO_DOMAINS = {t for typos in dirt.EMAIL_DOMAIN_TYPOS.values() for t in typos}


def write_shop(path: Path, P: Persons, book: PhoneBook, cat: Catalog, tl: Timeline, rng: np.random.Generator):
    cust, acc, id_order, updated, deleted, guest_only = _customers(P, book, tl, rng)
    addresses = _addresses(P, acc, updated, rng)
    orders, items, guest_truth, g_person, _, _ = _orders(P, book, acc, deleted, guest_only, cat, tl, rng)
    events = _email_events(P, cust, acc, g_person, tl, rng)
    cust_cols = [cust[k][id_order] for k in ("id", "email", "first_name", "last_name", "phone", "birth_date", "gender",
                                              "marketing_opt_in", "created_at", "updated_at", "deleted_at")]
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode = OFF")
        con.execute("PRAGMA synchronous = OFF")
        con.executescript(SCHEMA)
        for table, cols in (("customers", cust_cols), ("addresses", addresses), ("orders", orders),
                            ("order_items", items), ("email_events", events)):
            marks = ",".join("?" * len(cols))
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", zip(*(c.tolist() for c in cols)))
        con.commit()
    finally:
        con.close()
    truth_acc = ("shop", np.array([f"customer:{i}" for i in acc.customer_id.tolist()], dtype=object),
                 P.person_id[acc.person])
    summary = {"customers": len(acc.person), "addresses": len(addresses[0]), "orders": len(orders[0]),
               "guest_orders": len(guest_truth[1]), "order_items": len(items[0]), "email_events": len(events[0])}
    return summary, [truth_acc, guest_truth], acc
