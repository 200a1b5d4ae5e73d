"""The sample generator writes the contract formats, deterministically, with ground truth and real-world dirt."""

import csv
import datetime as dt
import gzip
import hashlib
import json
import re
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import phonenumbers
import pytest

from customer_pipeline.sample import catalog as sample_catalog
from customer_pipeline.sample import generate
from customer_pipeline.sample import pos as sample_pos
from customer_pipeline.sample.call_center import HEADER as CONTACT_HEADER
from customer_pipeline.sample.catalog import BUNDLES, NEVER_TOGETHER
from customer_pipeline.sample.dirt import BAD_PHONES
from customer_pipeline.sample.nicknames import NICKNAMES
from customer_pipeline.sample.persons import FAMILY_MOBILE_SHARE, make_persons
from customer_pipeline.sample.pools import build_pools
from customer_pipeline.sample.pos import LAPSE_QUIET_DAYS, LOYALTY_HEADER, TRANSACTION_HEADER
from customer_pipeline.sample.timeline import Timeline

AS_OF = dt.date(2025, 6, 1)
PERSONS = 300
SHOP_COLUMNS = {
    "customers": ["id", "email", "first_name", "last_name", "phone", "birth_date", "gender", "marketing_opt_in",
                  "created_at", "updated_at", "deleted_at"],
    "addresses": ["id", "customer_id", "kind", "line1", "line2", "city", "postcode", "region", "country",
                  "updated_at"],
    "orders": ["id", "customer_id", "guest_email", "guest_first_name", "guest_last_name", "guest_phone", "status",
               "placed_at", "updated_at", "total", "currency", "ship_line1", "ship_city", "ship_postcode",
               "ship_country"],
    "order_items": ["order_id", "line_no", "sku", "product_name", "category", "qty", "unit_price"],
    "email_events": ["id", "email", "kind", "occurred_at"],
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out, persons=PERSONS, seed=7, as_of=AS_OF)


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _good_rows(folder: Path, pattern: str, width: int) -> list[list[str]]:
    return [r for p in sorted(folder.glob(pattern)) for r in _csv_rows(p)[1] if len(r) == width]


def _app_lines(out: Path) -> list[tuple[str, str]]:
    """(file name, line) for every line of every app events file."""
    lines = []
    for p in sorted((out / "app_events").iterdir()):
        raw = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        lines += [(p.name, line) for line in raw.decode("utf-8").splitlines()]
    return lines


def _json_or_none(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def _truth(out: Path) -> list[tuple[str, str, str]]:
    header, rows = _csv_rows(out / "truth.csv")
    assert header == ["source", "source_key", "person_id"]
    return [tuple(r) for r in rows]


def _households(out: Path) -> dict[str, tuple[str, str]]:
    header, rows = _csv_rows(out / "households.csv")
    assert header == ["person_id", "household_id", "has_street_address"]
    return {p: (h, street) for p, h, street in rows}


def _e164(text: str, region: str) -> str | None:
    try:
        num = phonenumbers.parse("+" + text[2:] if text.startswith("00") else text, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164) if phonenumbers.is_valid_number(
        num) else None


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_files_follow_the_contract_layout(sample):
    out, summary = sample
    pos = sorted(p.name for p in (out / "pos").iterdir())
    assert pos and all(re.fullmatch(r"(loyalty_signups|transactions)_[A-Z]{2}\d{3}_\d{4}-\d{2}-\d{2}\.csv", n)
                       for n in pos)
    for p in (out / "pos").glob("loyalty_signups_*.csv"):
        assert _csv_rows(p)[0] == list(LOYALTY_HEADER)
    for p in (out / "pos").glob("transactions_*.csv"):
        assert _csv_rows(p)[0] == list(TRANSACTION_HEADER)
    calls = sorted((out / "call_center").iterdir())
    assert calls and all(re.fullmatch(r"contacts_\d{4}-\d{2}-\d{2}\.csv", p.name) for p in calls)
    assert all(_csv_rows(p)[0] == list(CONTACT_HEADER) for p in calls)
    events = sorted(p.name for p in (out / "app_events").iterdir())
    assert all(re.fullmatch(r"events_\d{4}-\d{2}-\d{2}T\d{2}\.jsonl(\.gz)?", n) for n in events)
    assert any(n.endswith(".gz") for n in events) and any(n.endswith(".jsonl") for n in events)
    con = sqlite3.connect(out / "shop.sqlite")
    for table, columns in SHOP_COLUMNS.items():
        assert [r[1] for r in con.execute(f"PRAGMA table_info({table})")] == columns
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
    con.close()
    assert summary["shop"]["customers"] > 0 and summary["pos"]["loyalty_cards"] > 0


def test_newest_files_are_dated_as_of(sample):
    out, _ = sample
    day = AS_OF.isoformat()
    assert any(p.name.endswith(f"_{day}.csv") for p in (out / "pos").glob("loyalty_signups_*"))
    assert (out / "call_center" / f"contacts_{day}.csv").exists()
    assert any(p.name.startswith(f"events_{day}T") for p in (out / "app_events").iterdir())
    con = sqlite3.connect(out / "shop.sqlite")
    latest = con.execute("SELECT max(updated_at) FROM customers").fetchone()[0]
    con.close()
    assert (AS_OF - dt.timedelta(days=14)).isoformat() < latest < (AS_OF + dt.timedelta(days=1)).isoformat()


def test_timestamps_span_two_years_with_stale_customers(sample):
    out, summary = sample
    con = sqlite3.connect(out / "shop.sqlite")
    created = [c for (c,) in con.execute("SELECT created_at FROM customers")]
    updated = [u for (u,) in con.execute("SELECT updated_at FROM customers")]
    con.close()
    assert min(created) < (AS_OF - dt.timedelta(days=600)).isoformat()
    assert any(u < (AS_OF - dt.timedelta(days=365)).isoformat() for u in updated), "stale customers"
    assert summary["truth"]["stale_persons"] > 0


def test_same_seed_same_bytes_other_seed_other_data(sample, tmp_path):
    out, _ = sample
    generate(tmp_path / "again", persons=PERSONS, seed=7, as_of=AS_OF)
    assert _digest(tmp_path / "again") == _digest(out)
    generate(tmp_path / "other", persons=PERSONS, seed=8, as_of=AS_OF)
    assert (tmp_path / "other" / "truth.csv").read_bytes() != (out / "truth.csv").read_bytes()


def test_truth_keys_are_unique_and_exist_in_the_data(sample):
    out, summary = sample
    truth = _truth(out)
    keys = [(s, k) for s, k, _ in truth]
    assert len(keys) == len(set(keys)) == summary["truth"]["rows"]
    assert {s for s, _ in keys} == {"pos", "shop", "call_center", "app"}

    present = set()
    for r in _good_rows(out / "pos", "loyalty_signups_*.csv", len(LOYALTY_HEADER)):
        present.add(("pos", f"card:{r[0]}"))
    con = sqlite3.connect(out / "shop.sqlite")
    present |= {("shop", f"customer:{i}") for (i,) in con.execute("SELECT id FROM customers")}
    present |= {("shop", f"guest_order:{i}") for (i,) in con.execute("SELECT id FROM orders WHERE customer_id IS NULL")}
    shop_ids = {str(i) for (i,) in con.execute("SELECT id FROM customers")}
    con.close()
    contacts = {r[0]: r for r in _good_rows(out / "call_center", "*.csv", len(CONTACT_HEADER))}
    present |= {("call_center", f"contact:{c}") for c in contacts}
    identified = set()
    for _, line in _app_lines(out):
        e = _json_or_none(line)
        if e is None:
            continue
        if e.get("userId"):
            present.add(("app", f"user:{e['userId']}"))
            assert e["userId"] in shop_ids
        if e["type"] == "identify" and e.get("traits") and not e.get("userId"):
            present.add(("app", f"anon:{e['anonymousId']}"))
        if e.get("userId"):
            identified.add(e["anonymousId"])
    assert set(keys) <= present
    # Contacts in the truth name, number or mail someone; the others do not.
    for source, key, _ in truth:
        if source == "call_center":
            row = contacts[key.split(":", 1)[1]]
            assert row[4] or row[5] or row[6]
    assert any(not (r[4] or r[5] or r[6]) for r in contacts.values())
    # A device that logged in is keyed by its user, not as an anonymous profile.
    assert not {("app", f"anon:{a}") for a in identified} & set(keys)


def test_people_appear_in_several_sources_and_records(sample):
    out, _ = sample
    truth = _truth(out)
    sources = defaultdict(set)
    for s, _, pid in truth:
        sources[pid].add(s)
    spread = Counter(len(v) for v in sources.values())
    assert spread[1] > 0 and spread[2] > 0 and spread[3] > 0
    cards = Counter(pid for s, k, pid in truth if s == "pos")
    assert any(c >= 2 for c in cards.values()), "several loyalty cards per person"
    accounts = Counter(pid for s, k, pid in truth if k.startswith("customer:"))
    assert any(c >= 2 for c in accounts.values()), "several shop accounts per person"
    assert any(k.startswith("guest_order:") for _, k, _ in truth)
    assert any(k.startswith("anon:") for _, k, _ in truth)


def test_dirty_values_are_present(sample):
    out, _ = sample
    loyalty = _good_rows(out / "pos", "loyalty_signups_*.csv", len(LOYALTY_HEADER))
    births = [r[7] for r in loyalty if r[7]]
    assert any(re.fullmatch(r"\d{4}-\d{2}-\d{2}", b) for b in births)
    assert any(re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", b) for b in births)
    assert any(re.fullmatch(r"\d{2}/\d{2}/\d{4}", b) for b in births)
    assert any(re.match(r"31[./-]0[24]|\d{4}-0[24]-31", b) for b in births), "an impossible date"
    assert any(not r[7] for r in loyalty) and any(not r[9] for r in loyalty), "blanks"
    phones = [r[8] for r in loyalty if r[8]]
    assert any(p.startswith("+") for p in phones) and any(p.startswith("00") for p in phones)
    assert any(p.startswith("0") and not p.startswith("00") for p in phones)
    assert any(p.startswith("(") for p in phones)
    assert any(p in BAD_PHONES for p in phones), "an unparseable phone"
    assert any("@" not in e or e.count("@") > 1 or "," in e for e in (r[9] for r in loyalty if r[9])), "invalid email"
    assert any(r[4] != r[4].strip() or "  " in r[4] or r[4].isupper() or r[4].islower() for r in loyalty)
    assert {"Y", "N", ""} <= {r[12] for r in loyalty}
    contacts = _good_rows(out / "call_center", "*.csv", len(CONTACT_HEADER))
    names = [r[6] for r in contacts if r[6]]
    assert any(re.fullmatch(r"[^,]+, [^,]+", n) for n in names), "Smith, John"
    assert any(re.match(r"(Mr|Mrs|Ms|Mx) \w\. ", n) for n in names), "Mr J. Smith"
    assert any(n == n.lower() and " " in n for n in names), "john smith"
    refs = [r[7] for r in contacts]
    assert any(x.startswith("C-") for x in refs) and any(re.fullmatch(r"\d{5}", x) for x in refs) and "" in refs
    assert any(re.fullmatch(r"\d{12}", x) for x in refs), "a loyalty card as account reference"
    assert any(r[11] == "Y" for r in contacts) and any(r[8] == "opt_out" for r in contacts)
    assert any("\n" in r[12] and "," in r[12] for r in contacts)


def test_valid_phone_numbers_for_their_country(sample):
    out, _ = sample
    rows = _good_rows(out / "pos", "loyalty_signups_*.csv", len(LOYALTY_HEADER))
    checked = valid = 0
    for r in rows:
        if r[8] and r[8] not in BAD_PHONES:
            text = "+" + r[8][2:] if r[8].startswith("00") else r[8]
            checked += 1
            valid += phonenumbers.is_valid_number(phonenumbers.parse(text, r[2]))
    assert checked > 50 and valid / checked > 0.97


def test_malformed_and_redelivered_records(sample):
    out, _ = sample
    for pattern, width in (("pos/loyalty_signups_*.csv", len(LOYALTY_HEADER)),
                           ("pos/transactions_*.csv", len(TRANSACTION_HEADER)),
                           ("call_center/*.csv", len(CONTACT_HEADER))):
        rows = [r for p in out.glob(pattern) for r in _csv_rows(p)[1]]
        assert any(len(r) != width for r in rows), f"a row with the wrong column count in {pattern}"
    lines = _app_lines(out)
    parsed = [(name, _json_or_none(line)) for name, line in lines]
    assert any(e is None for _, e in parsed), "a line of invalid JSON"
    assert any(e is not None and "messageId" not in e for _, e in parsed), "an event without messageId"
    files_per_message = defaultdict(set)
    for name, e in parsed:
        if e and "messageId" in e:
            files_per_message[e["messageId"]].add(name)
    assert any(len(f) > 1 for f in files_per_message.values()), "the same message in two files"
    types = Counter(e["type"] for _, e in parsed if e)
    assert {"identify", "track", "page", "screen", "alias"} <= set(types)
    contact_files = defaultdict(set)
    for p in (out / "call_center").iterdir():
        for r in _csv_rows(p)[1]:
            contact_files[r[0]].add(p.name)
    assert any(len(f) > 1 for f in contact_files.values()), "a call-center export resent the next day"
    # A later POS file corrects an earlier signup of the same card.
    cards = Counter(r[0] for r in _good_rows(out / "pos", "loyalty_signups_*.csv", len(LOYALTY_HEADER)))
    assert any(c > 1 for c in cards.values())


def test_shop_mail_events_record_old_addresses_and_opt_outs(sample):
    out, _ = sample
    con = sqlite3.connect(out / "shop.sqlite")
    kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM email_events")}
    bounced = {e for (e,) in con.execute("SELECT email FROM email_events WHERE kind = 'bounce'")}
    current = {e.lower() for (e,) in con.execute("SELECT email FROM customers")}
    assert {"bounce", "unsubscribe"} <= kinds
    assert bounced - current, "a bounce for an address the customer no longer uses"
    assert con.execute("SELECT count(*) FROM customers WHERE marketing_opt_in = 0").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM customers WHERE deleted_at IS NOT NULL").fetchone()[0] >= 0
    con.close()


def test_population_has_households_namesakes_movers_and_nicknames():
    rng = np.random.default_rng(3)
    tl = Timeline(AS_OF)
    P, _ = make_persons(3000, build_pools(3, rng), tl, rng)
    members = np.flatnonzero(P.head != np.arange(P.n))
    assert len(members) > 100
    shared_land = [i for i in members if P.land[i] is not None]
    assert shared_land and all(P.land[i] == P.land[P.head[i]] for i in shared_land)
    assert all(P.line1[i] == P.line1[P.head[i]] for i in members)
    assert any(P.mobile[i] != P.mobile[P.head[i]] and P.birth[i] != P.birth[P.head[i]] for i in members)
    names = Counter(zip(P["first"].tolist(), P["last"].tolist()))
    namesakes = [k for k, c in names.items() if c > 1]
    assert namesakes
    assert (~np.isnat(P.moved_at)).sum() > 0 and (P.email_new != None).sum() > 0  # noqa: E711
    assert any(P.nick[i] for i in range(P.n))
    mobiles = [m for m in P.mobile.tolist() if m]
    assert len(mobiles) == len(set(mobiles))
    emails = [e for col in (P.email, P.email_alt, P.email_new) for e in col.tolist() if e]
    assert len(emails) == len(set(emails))
    assert all(f in NICKNAMES[c] for f, c, n in zip(P["first"], P.country, P.nick) if n)


def test_default_as_of_is_yesterday_so_no_record_is_dated_in_the_future(tmp_path):
    before = dt.datetime.now(dt.timezone.utc)
    summary = generate(tmp_path / "s", persons=30, seed=5)
    after = dt.datetime.now(dt.timezone.utc)
    assert summary["as_of"] in {(t.date() - dt.timedelta(days=1)).isoformat() for t in (before, after)}
    rows = _good_rows(tmp_path / "s" / "call_center", "contacts_*.csv", len(CONTACT_HEADER))
    newest = max(r[CONTACT_HEADER.index("started_at")] for r in rows)
    assert dt.datetime.fromisoformat(newest).replace(tzinfo=dt.timezone.utc) <= before


def test_households_truth_covers_every_person_and_says_who_is_known_by_street(sample):
    out, summary = sample
    households = _households(out)
    truth = _truth(out)
    assert set(households) == {pid for _, _, pid in truth}
    assert len(households) == PERSONS and all(street in ("true", "false") for _, street in households.values())
    members = Counter(h for h, _ in households.values())
    assert summary["households"]["households"] == len(members)
    assert summary["households"]["multi_person"] == sum(1 for c in members.values() if c >= 2) > 0
    # A street address is on shop records only (accounts' billing addresses, guest orders' shipping).
    in_shop = {pid for s, _, pid in truth if s == "shop"}
    assert {p for p, (_, street) in households.items() if street == "true"} == in_shop
    assert summary["households"]["persons_with_street_address"] == len(in_shop)
    # People of one household known by street share the street of their accounts (before any move).
    con = sqlite3.connect(out / "shop.sqlite")
    streets = defaultdict(set)
    key_person = {k: pid for s, k, pid in truth if s == "shop"}
    for cid, line1 in con.execute("SELECT customer_id, line1 FROM addresses WHERE kind = 'billing'"):
        streets[households[key_person[f"customer:{cid}"]][0]].add(line1.lower())
    con.close()
    assert any(len(v) == 1 for h, v in streets.items() if members[h] >= 2)


def test_some_families_share_one_mobile_on_their_records(sample):
    out, summary = sample
    households = _households(out)
    person = {(s, k): pid for s, k, pid in _truth(out)}
    given = defaultdict(set)  # E.164 -> persons who gave it
    for r in _good_rows(out / "pos", "loyalty_signups_*.csv", len(LOYALTY_HEADER)):
        if r[8] and (e := _e164(r[8], r[2])):
            given[e].add(person[("pos", f"card:{r[0]}")])
    con = sqlite3.connect(out / "shop.sqlite")
    for cid, phone, country in con.execute(
            "SELECT c.id, c.phone, a.country FROM customers c JOIN addresses a ON a.customer_id = c.id "
            "AND a.kind = 'billing' WHERE c.phone IS NOT NULL"):
        if e := _e164(phone, country):
            given[e].add(person[("shop", f"customer:{cid}")])
    con.close()
    shared_mobiles = []
    for e, persons in given.items():
        if len(persons) > 1:
            # A shared number never crosses households.
            assert len({households[p][0] for p in persons}) == 1
            if phonenumbers.number_type(phonenumbers.parse(e)) == phonenumbers.PhoneNumberType.MOBILE:
                shared_mobiles.append(e)
    assert shared_mobiles, "a mobile given by two people of one household"
    assert 0 < summary["households"]["family_mobile"] < summary["households"]["multi_person"]


def test_family_mobiles_look_like_personal_mobiles():
    rng = np.random.default_rng(4)
    P, _ = make_persons(6000, build_pools(4, rng), Timeline(AS_OF), rng)
    heads = np.flatnonzero(P.head == np.arange(P.n))
    size = np.bincount(P.household)
    multi = heads[size[P.household[heads]] >= 2]
    family = [h for h in multi.tolist() if P.family_mobile[h] is not None]
    assert all(P.family_mobile[h] is None for h in heads[size[P.household[heads]] == 1].tolist())
    assert abs(len(family) / len(multi) - FAMILY_MOBILE_SHARE) < 0.06
    # Every member of the household holds the same number.
    assert all(P.family_mobile[i] == P.family_mobile[P.head[i]] for i in range(P.n))
    personal = {m for m in P.mobile.tolist() if m}
    of_head = [h for h in family if P.family_mobile[h] == P.mobile[h]]
    separate = [h for h in family if P.family_mobile[h] not in personal]
    assert of_head and separate and len(of_head) + len(separate) == len(family)
    # A separate family phone replaced the landline.
    assert all(P.land[h] is None for h in separate)
    for h in family:
        num = phonenumbers.parse(P.family_mobile[h], P.country[h]) if P.country[h] != "US" else phonenumbers.parse(
            "+1" + P.family_mobile[h])
        assert phonenumbers.is_valid_number(num)
        assert phonenumbers.number_type(num) in (phonenumbers.PhoneNumberType.MOBILE,
                                                 phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    # Some members give only the family's number.
    assert any(P.mobile[i] is None and P.family_mobile[i] is not None and P.head[i] != i for i in range(P.n))


def _baskets(out: Path) -> dict[tuple, set[str]]:
    """Product names per sale basket: a POS receipt (store, receipt_id) or a shop order."""
    baskets = defaultdict(set)
    for r in _good_rows(out / "pos", "transactions_*.csv", len(TRANSACTION_HEADER)):
        if int(r[8]) > 0:
            baskets[("pos", r[2], r[0])].add(r[6])
    con = sqlite3.connect(out / "shop.sqlite")
    for order_id, name in con.execute("SELECT order_id, product_name FROM order_items"):
        baskets[("shop", order_id)].add(name)
    con.close()
    return baskets


def test_baskets_carry_bundles_and_products_never_bought_together(sample):
    out, _ = sample
    baskets = list(_baskets(out).values())
    n = len(baskets)

    def counts(a: str, b: str) -> tuple[int, int, int]:
        return (sum(a in s for s in baskets), sum(b in s for s in baskets), sum(a in s and b in s for s in baskets))

    for first, second, *_ in BUNDLES:
        with_a, with_b, both = counts(first, second)
        assert both >= 10 and both / with_a / (with_b / n) > 3, (first, second, with_a, with_b, both)  # lift
    for a, b in NEVER_TOGETHER:
        with_a, with_b, both = counts(a, b)
        assert with_a and with_b and both == 0, (a, b)
    assert sum(len(s) >= 2 for s in baskets) > 0.2 * n


def _card_visits(out: Path) -> dict[str, list[dt.datetime]]:
    visits = defaultdict(set)
    for r in _good_rows(out / "pos", "transactions_*.csv", len(TRANSACTION_HEADER)):
        if r[4]:
            visits[r[4]].add(dt.datetime.fromisoformat(r[3][:19]))
    return {card: sorted(times) for card, times in visits.items()}


def test_some_card_holders_shop_on_a_rhythm_and_some_of_them_stop(sample):
    out, _ = sample
    steady = {}
    for card, times in _card_visits(out).items():
        gaps = [(b - a).total_seconds() / 86_400 for a, b in zip(times, times[1:])]
        if len(gaps) >= 4:
            cadence = sorted(gaps)[len(gaps) // 2]
            # a visit falls within 20% of the cadence around its due date (plus the time of day)
            if all(0.5 * cadence <= g <= 1.5 * cadence + 1 for g in gaps[1:]):
                steady[card] = (cadence, times[-1])
    assert len(steady) >= 10
    assert any(c < 10 for c, _ in steady.values()) and any(c > 25 for c, _ in steady.values())
    stopped = [card for card, (_, last) in steady.items() if (AS_OF - last.date()).days > LAPSE_QUIET_DAYS]
    assert stopped and len(stopped) < len(steady)


def test_purchase_structure_leaves_every_person_record_as_it_was(sample, tmp_path, monkeypatch):
    out, _ = sample
    monkeypatch.setattr(sample_catalog, "BUNDLE_SHARE", 0.0)
    monkeypatch.setattr(sample_pos, "REGULAR_SHARE", 0.0)
    flat = tmp_path / "flat"
    generate(flat, persons=PERSONS, seed=7, as_of=AS_OF)
    ours, theirs = _digest(out), _digest(flat)
    differ = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    assert differ and all(k.startswith("pos/transactions_") or k == "shop.sqlite" for k in differ)
    person_columns = {
        "customers": "*", "addresses": "*", "email_events": "*",
        "orders": "id, customer_id, guest_email, guest_first_name, guest_last_name, guest_phone, status, placed_at, "
                  "updated_at, currency, ship_line1, ship_city, ship_postcode, ship_country",
    }
    for table, columns in person_columns.items():
        a, b = (sqlite3.connect(d / "shop.sqlite").execute(f"SELECT {columns} FROM {table} ORDER BY 1").fetchall()
                for d in (out, flat))
        assert a == b, table
