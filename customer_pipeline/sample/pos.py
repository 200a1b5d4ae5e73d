"""POS deliveries: loyalty signups and receipt lines, one file per store and month."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from customer_pipeline.sample import dirt, records
from customer_pipeline.sample.catalog import Catalog, line_numbers, money
from customer_pipeline.sample.files import groups, month_files, unique_ints, write_csv
from customer_pipeline.sample.persons import Persons
from customer_pipeline.sample.phones import PhoneBook
from customer_pipeline.sample.pools import COUNTRIES, CURRENCY
from customer_pipeline.sample.timeline import (DAY_S, Timeline, at_opening_hours, eu_summer, iso, uniform_between,
                                               us_summer)

LOYALTY_HEADER = ("card_no", "store_id", "country", "signed_up_at", "first_name", "last_name", "gender",
                  "birth_date", "phone", "email", "postcode", "city", "marketing_consent")
TRANSACTION_HEADER = ("receipt_id", "line_no", "store_id", "sold_at", "card_no", "sku", "product_name", "category",
                      "qty", "unit_price", "discount", "currency", "payment_method", "bonus_points")
STORES_PER_COUNTRY = {"GB": 6, "DE": 5, "FR": 4, "NL": 3, "US": 5}
STORE_ID = np.array([f"{c}{i + 1:03d}" for c in COUNTRIES for i in range(STORES_PER_COUNTRY[c])], dtype=object)
STORE_COUNTRY = np.array([ci for ci, c in enumerate(COUNTRIES) for _ in range(STORES_PER_COUNTRY[c])])
_COUNTRY_STORES = [np.flatnonzero(STORE_COUNTRY == ci) for ci in range(len(COUNTRIES))]
# Shopping rhythms, what gold.customer_rfm looks for: a share of the cards comes back on a regular cadence
# (the weekly shop, the monthly refill), the others now and then; some regulars stop coming long before the
# person goes quiet elsewhere (a competitor opened nearby).
REGULAR_SHARE = 0.3
CADENCE_DAYS = np.array([7, 14, 30, 60])
CADENCE_P = np.array([0.15, 0.3, 0.35, 0.2])
CADENCE_JITTER = 0.2  # a visit falls within this share of the cadence around its due date
LAPSE_SHARE = 0.3  # of the regulars
LAPSE_QUIET_DAYS = 90  # a lapsed regular's last visit is at least this long before the person's last activity
MAX_REGULAR_VISITS = 120
_PHONE_FORMATS = {"national": 0.45, "compact": 0.15, "intl": 0.12, "e164": 0.06, "intl00": 0.05, "paren": 0.09,
                  "plus0": 0.03, "dashed": 0.05}


@dataclass(frozen=True)
class Cards:
    """The loyalty cards issued: who holds each (row in Persons) and its number."""

    person: np.ndarray
    card_no: np.ndarray


def _store_in_country(rng: np.random.Generator, country_idx: np.ndarray) -> np.ndarray:
    pick = rng.random(len(country_idx))
    out = np.empty(len(country_idx), dtype=np.int64)
    for ci, stores in enumerate(_COUNTRY_STORES):
        m = country_idx == ci
        out[m] = stores[(pick[m] * len(stores)).astype(np.int64)]
    return out


def store_time_text(local: np.ndarray, store: np.ndarray) -> np.ndarray:
    """Store-local ISO timestamps; German and Dutch tills add their UTC offset, US ones too, others none."""
    out = iso(local)
    country = np.array(COUNTRIES, dtype=object)[STORE_COUNTRY[store]]
    eu = (country == "DE") | (country == "NL")
    us = country == "US"
    summer_eu, summer_us = eu_summer(local), us_summer(local)
    suffix = np.where(eu, np.where(summer_eu, "+02:00", "+01:00"), np.where(us, np.where(summer_us, "-04:00", "-05:00"), ""))
    return (out + suffix.astype(object)).astype(object)


def _signup_rows(P: Persons, book: PhoneBook, person: np.ndarray, local: np.ndarray, rng: np.random.Generator,
                 clean: bool = False) -> dict[str, np.ndarray]:
    """The questionnaire as typed at the till (or, for corrections, as fixed later by head office)."""
    k = 0.0 if clean else 1.0
    first, last, _ = records.names(P, person, rng, records.NameDirt(
        swap=0.03 * k, nick=0.25 * k, typo=0.03 * k, case=0.15 * k, space=0.05 * k, accents=0.3 * k))
    email = dirt.blank(records.email_at(P, person, local), rng, 0.25 * k)
    email = records.dirty_email(email, rng, typo=0.02 * k, domain=0.01 * k, invalid=0.006 * k, case=0.04 * k)
    addr = records.address_at(P, person, local)
    consent = np.array(["Y", "N", None], dtype=object)[rng.choice(3, len(person), p=[0.45, 0.35, 0.2])]
    return {
        "first_name": first,
        "last_name": last,
        "gender": dirt.blank(P.gender[person], rng, 0.12 * k),
        "birth_date": records.birth_dates(P, person, rng, blank=0.2 * k, mixed=0.08 * k, impossible=0.003 * k),
        "phone": records.phones(P, book, person, rng, mobile=0.68, landline=0.14,
                                formats={"national": 1.0} if clean else _PHONE_FORMATS, unparseable=0.004 * k),
        "email": email,
        "postcode": dirt.blank(dirt.case_noise(addr["postcode"], rng, 0.05 * k), rng, 0.03 * k),
        "city": dirt.blank(dirt.typo(dirt.case_noise(addr["city"], rng, 0.08 * k), rng, 0.02 * k), rng, 0.03 * k),
        "marketing_consent": consent,
    }


def _bad_line(row: list, rng: np.random.Generator) -> list:
    """A row with one field too many or two too few, as a broken till export writes."""
    return row + ["EXTRA"] if rng.random() < 0.5 else row[:-2]


def write_loyalty(out: Path, P: Persons, book: PhoneBook, tl: Timeline, rng: np.random.Generator):
    members = np.flatnonzero(P.in_pos)
    r = rng.random(len(members))
    per_person = 1 + (r < 0.14) + (r < 0.03)  # several cards per person: lost, forgotten, another store
    person = np.repeat(members, per_person)
    n = len(person)
    home = _store_in_country(rng, P.country_idx[members])
    store = np.repeat(home, per_person)
    elsewhere = rng.random(n) < 0.4
    elsewhere[np.r_[0, np.cumsum(per_person)[:-1]]] = False
    store[elsewhere] = _store_in_country(rng, P.country_idx[person[elsewhere]])
    local = at_opening_hours(rng, uniform_between(rng, P.first_seen[person], P.last_seen[person]))
    # Keep the feed fresh: a few recently active people sign up on the as_of day itself.
    recent = P.last_seen[person] > tl.days_before(30)
    today = dirt.pick(rng, n, 0.0005, recent)
    local[today] = at_opening_hours(rng, np.full(int(today.sum()), tl.as_of.astype("datetime64[s]")))
    numbers = unique_ints(rng, 200_000_000_000, 300_000_000_000, n + 1000)
    card_no = np.array([f"{x:012d}" for x in numbers[:n].tolist()], dtype=object)
    spare_numbers = numbers[n:]

    rows = _signup_rows(P, book, person, local, rng)
    # Head office fixes a few cards later: the same card_no again, in a later month's file.
    fixed = np.flatnonzero(dirt.pick(rng, n, 0.015))
    fixed_rows = _signup_rows(P, book, person[fixed], local[fixed], rng, clean=True)
    file_time = np.concatenate([local, local[fixed] + (rng.integers(35, 120, len(fixed)) * 86_400).astype("timedelta64[s]")])
    file_time = np.minimum(file_time, tl.end)
    all_store = np.concatenate([store, store[fixed]])
    cols = {"card_no": np.concatenate([card_no, card_no[fixed]]),
            "store_id": STORE_ID[all_store],
            "country": np.array(COUNTRIES, dtype=object)[STORE_COUNTRY[all_store]],
            "signed_up_at": store_time_text(np.concatenate([local, local[fixed]]), all_store)}
    for k in LOYALTY_HEADER[4:]:
        cols[k] = np.concatenate([rows[k], fixed_rows[k]])
    columns = [cols[k] for k in LOYALTY_HEADER]

    month, file_date = month_files(file_time, tl.as_of)
    key = all_store.astype(np.int64) * 100_000 + (month - month.min())
    n_bad = max(2, n // 3000)
    bad_at = set(rng.choice(np.unique(key), size=min(n_bad, len(np.unique(key))), replace=False).tolist())
    files = lines = 0
    order = np.argsort(file_time, kind="stable")
    for k, rows_idx in groups(key[order]):
        rows_idx = order[rows_idx]
        bad = []
        if k in bad_at:
            template = [c[rows_idx[0]] for c in columns]
            template[0] = f"{spare_numbers[files % len(spare_numbers)]:012d}"
            bad = [_bad_line(["" if v is None else v for v in template], rng)]
        name = f"loyalty_signups_{STORE_ID[k // 100_000]}_{file_date[rows_idx[0]]}.csv"
        lines += write_csv(out / "pos" / name, LOYALTY_HEADER, columns, rows_idx, bad_lines=bad)
        files += 1
    truth = ("pos", np.array([f"card:{c}" for c in card_no.tolist()], dtype=object), P.person_id[person])
    summary = {"loyalty_signup_files": files, "loyalty_signup_rows": lines, "loyalty_cards": n,
               "loyalty_corrections": len(fixed), "loyalty_bad_rows": len(bad_at)}
    return summary, truth, Cards(person=person, card_no=card_no), (store, local)


def _card_visits(P: Persons, cards: Cards, card_local: np.ndarray, rng: np.random.Generator):
    """Receipts of the cards: (card, store-local time); the first at signup, then a regular's on its cadence
    (until it lapses), an occasional shopper's at random times up to the person's last activity."""
    n_cards = len(cards.card_no)
    until = P.last_seen[cards.person]
    regular = rng.random(n_cards) < REGULAR_SHARE
    cadence = (CADENCE_DAYS[rng.choice(len(CADENCE_DAYS), n_cards, p=CADENCE_P)] * DAY_S).astype("timedelta64[s]")
    lapse_lo, lapse_hi = card_local + 3 * cadence, until - np.timedelta64(LAPSE_QUIET_DAYS * DAY_S, "s")
    lapses = regular & (rng.random(n_cards) < LAPSE_SHARE) & (lapse_lo < lapse_hi)
    stop = np.where(lapses, uniform_between(rng, lapse_lo, lapse_hi), until)
    span = np.maximum((stop - card_local).astype(np.int64), 0)
    rounds = np.minimum(span // cadence.astype(np.int64), MAX_REGULAR_VISITS)
    per_card = np.where(regular, 1 + rounds, 1 + rng.poisson(1.0, n_cards))
    card = np.repeat(np.arange(n_cards), per_card)
    first = np.r_[0, np.cumsum(per_card)[:-1]]
    visit = np.arange(len(card)) - np.repeat(first, per_card)
    jitter = (rng.uniform(-CADENCE_JITTER, CADENCE_JITTER, len(card)) * cadence[card].astype(np.int64)).astype(np.int64)
    due = card_local[card] + (visit * cadence[card].astype(np.int64) + jitter).astype("timedelta64[s]")
    now_and_then = uniform_between(rng, card_local[card], until[card])
    local = at_opening_hours(rng, np.where(regular[card], np.minimum(due, until[card]), now_and_then))
    local[first] = card_local + rng.integers(30, 300, n_cards).astype("timedelta64[s]")
    return card, local, first


def write_transactions(out: Path, P: Persons, cards: Cards, card_store: np.ndarray, card_local: np.ndarray,
                       cat: Catalog, tl: Timeline, rng: np.random.Generator) -> dict:
    card, local, first = _card_visits(P, cards, card_local, rng)
    # The first purchase happens at the home store (at signup); later ones there or at another store nearby.
    store = card_store[card].copy()
    away = rng.random(len(card)) < 0.25
    away[first] = False
    store[away] = _store_in_country(rng, STORE_COUNTRY[store[away]])
    card_no = cards.card_no[card]
    # Anonymous purchases: no card presented.
    n_anon = int(len(card) * 0.35) + 5
    anon_store = rng.integers(0, len(STORE_ID), n_anon)
    anon_local = at_opening_hours(rng, uniform_between(rng, np.full(n_anon, tl.start), np.full(n_anon, tl.end)))
    store = np.concatenate([store, anon_store])
    local = np.concatenate([local, anon_local])
    card_no = np.concatenate([card_no, np.full(n_anon, None, dtype=object)])
    n_receipts = len(store)

    order = np.lexsort((local, store))
    seq = np.empty(n_receipts, dtype=np.int64)
    store_sorted = store[order]
    starts = np.r_[0, np.flatnonzero(np.diff(store_sorted)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, n_receipts]))
    seq[order] = np.arange(n_receipts) - run_start + 1
    receipt_id = np.array([f"{STORE_ID[s]}-{q:07d}" for s, q in zip(store.tolist(), seq.tolist())], dtype=object)
    payment = np.array(["card", "cash", "mobile", "voucher"], dtype=object)[
        rng.choice(4, n_receipts, p=[0.55, 0.3, 0.1, 0.05])]
    is_return = rng.random(n_receipts) < 0.02

    lines_per = 1 + rng.poisson(0.9, n_receipts)
    rc = np.repeat(np.arange(n_receipts), lines_per)
    rc, item, _ = cat.with_bundles(rc, cat.sample(rng, len(rc)), n_receipts, rng)
    line_no = line_numbers(rc)
    currency = np.array([CURRENCY[c] for c in COUNTRIES], dtype=object)[STORE_COUNTRY[store[rc]]]
    qty = rng.choice([1, 2, 3, 4], len(rc), p=[0.72, 0.18, 0.07, 0.03]) * np.where(is_return[rc], -1, 1)
    unit = cat.price_cents(item, currency)
    discount = np.where(rng.random(len(rc)) < 0.1, np.round(unit * np.abs(qty) * rng.choice([0.1, 0.2, 0.3], len(rc))), 0)
    discount = discount.astype(np.int64)
    has_card = card_no[rc] != None  # noqa: E711 - elementwise
    points = np.where(has_card, (unit * qty - np.sign(qty) * discount) // 100, 0)
    columns = [receipt_id[rc], line_no, STORE_ID[store[rc]], store_time_text(local, store)[rc], card_no[rc],
               cat.sku[item], cat.name[item], cat.category[item], qty, money(unit), money(discount), currency,
               payment[rc], points]

    month, file_date = month_files(local[rc], tl.as_of)
    key = store[rc].astype(np.int64) * 100_000 + (month - month.min())
    uniq = np.unique(key)
    bad_at = set(rng.choice(uniq, size=min(max(2, len(rc) // 20_000), len(uniq)), replace=False).tolist())
    row_order = np.lexsort((line_no, local[rc], key))
    files = lines = 0
    for k, idx in groups(key[row_order]):
        idx = row_order[idx]
        bad = []
        if k in bad_at:
            template = ["" if c[idx[0]] is None else str(c[idx[0]]) for c in columns]
            template[0] = f"{STORE_ID[k // 100_000]}-X{files:06d}"
            bad = [_bad_line(template, rng)]
        name = f"transactions_{STORE_ID[k // 100_000]}_{file_date[idx[0]]}.csv"
        lines += write_csv(out / "pos" / name, TRANSACTION_HEADER, columns, idx, bad_lines=bad)
        files += 1
    return {"transaction_files": files, "transaction_rows": lines, "receipts": n_receipts,
            "anonymous_receipts": n_anon, "transaction_bad_rows": len(bad_at)}
