"""App events in the Segment spec: devices browse anonymously, then log in (identify or alias)."""

import gzip
import json
from pathlib import Path

import numpy as np

from customer_pipeline.sample import dirt, records
from customer_pipeline.sample.catalog import Catalog
from customer_pipeline.sample.persons import Persons
from customer_pipeline.sample.phones import PhoneBook
from customer_pipeline.sample.pools import APP_LOCALE
from customer_pipeline.sample.shop import Accounts
from customer_pipeline.sample.timeline import DAY_S, Timeline, iso, uniform_between

USER, ANON_TRAITS, NOISE = 0, 1, 2
_SCREENS = ("Home", "Product", "Cart", "Checkout", "Account", "Search")
_VERSIONS = ("3.8.2", "3.9.0", "3.9.1", "4.0.0", "4.1.3")
_NAME_DIRT = records.NameDirt(swap=0.005, nick=0.05, typo=0.01, case=0.06, space=0.01, accents=0.05)


def uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.bytes(16 * n).hex()
    return np.array([f"{raw[i:i + 8]}-{raw[i + 8:i + 12]}-4{raw[i + 13:i + 16]}-{raw[i + 16:i + 20]}-{raw[i + 20:i + 32]}"
                     for i in range(0, 32 * n, 32)], dtype=object)


def _devices(P: Persons, acc: Accounts, tl: Timeline, rng: np.random.Generator) -> dict:
    """Every device: its owner (or none), kind, the shop account it logs into, and when it is used."""
    app_people = np.flatnonzero(P.in_app)
    first_acc = {}
    second_acc = {}
    for p, cid, rk in zip(acc.person.tolist(), acc.customer_id.tolist(), acc.rank.tolist()):
        (first_acc if rk == 0 else second_acc).setdefault(p, cid)
    app_people = np.array([p for p in app_people.tolist() if p in first_acc], dtype=np.int64)
    per = 1 + (rng.random(len(app_people)) < 0.25)
    u_person = np.repeat(app_people, per)
    # Someone with two shop accounts sometimes logs into the other one on a second device.
    other = rng.random(len(u_person)) < 0.3
    user_id = np.array([str(second_acc[p]) if o and p in second_acc else str(first_acc[p])
                        for p, o in zip(u_person.tolist(), other.tolist())], dtype=object)
    a_person = np.flatnonzero(P.in_app_anon)
    n_noise = max(3, (len(u_person) + len(a_person)) // 10)
    person = np.concatenate([u_person, a_person, np.full(n_noise, -1)])
    kind = np.array([USER] * len(u_person) + [ANON_TRAITS] * len(a_person) + [NOISE] * n_noise)
    n = len(person)
    known = person >= 0
    start = np.full(n, tl.start)
    end = np.full(n, tl.end)
    start[known] = uniform_between(rng, P.first_seen[person[known]], P.last_seen[person[known]])
    end[known] = P.last_seen[person[known]]
    start[~known] = uniform_between(rng, start[~known], end[~known])
    end[~known] = np.minimum(start[~known] + (rng.integers(1, 30, int((~known).sum())) * DAY_S).astype(
        "timedelta64[s]"), tl.end)
    ios = rng.random(n) < 0.45
    country = np.where(known, P.country[np.maximum(person, 0)], "GB")
    locale = np.array([APP_LOCALE[c] for c in country.tolist()], dtype=object)
    locale[rng.random(n) < 0.1] = "en-US"
    ip = rng.integers(1, 255, (n, 4))
    device_id = uuids(rng, n)
    device_id[ios] = [d.upper() for d in device_id[ios].tolist()]
    version = np.array(_VERSIONS, dtype=object)[rng.integers(0, len(_VERSIONS), n)]
    context = [json.dumps({"device": {"id": d, "type": "ios" if i else "android"},
                           "os": {"name": "iOS" if i else "Android"}, "app": {"version": v}, "locale": loc,
                           "ip": f"{a}.{b}.{c}.{e}"}, separators=(",", ":"), ensure_ascii=False)
               for d, i, v, loc, (a, b, c, e) in zip(device_id.tolist(), ios.tolist(), version.tolist(),
                                                     locale.tolist(), ip.tolist())]
    full_user = np.full(n, None, dtype=object)
    full_user[: len(u_person)] = user_id
    return {"person": person, "kind": kind, "user_id": full_user, "start": start, "end": end,
            "anonymous_id": uuids(rng, n), "context": np.array(context, dtype=object)}


def _traits(P: Persons, book: PhoneBook, person: np.ndarray, ts: np.ndarray, rng: np.random.Generator) -> list[str]:
    """The profile a device sends with identify: names, email, sometimes phone, birthday, address."""
    first, last, _ = records.names(P, person, rng, _NAME_DIRT)
    email = records.email_at(P, person, ts)
    email = np.where(email != None, email, P.email_alt[person])  # noqa: E711
    email = records.dirty_email(email, rng, typo=0.005, case=0.02)
    phone = records.phones(P, book, person, rng, mobile=0.95, landline=0.05, formats={"e164": 0.6, "national": 0.4})
    phone[rng.random(len(person)) > 0.6] = None
    birthday = dirt.date_text(P.birth[person], np.zeros(len(person), dtype=int))
    birthday[rng.random(len(person)) > 0.4] = None
    addr = records.address_at(P, person, ts)
    with_addr = rng.random(len(person)) < 0.5
    out = []
    for i in range(len(person)):
        t = {"firstName": first[i], "lastName": last[i]}
        if email[i] is not None:
            t["email"] = email[i]
        if phone[i] is not None:
            t["phone"] = phone[i]
        if birthday[i] is not None:
            t["birthday"] = birthday[i]
        if with_addr[i]:
            t["address"] = {"city": addr["city"][i], "postalCode": addr["postcode"][i], "country": P.country[person[i]]}
        out.append(json.dumps(t, separators=(",", ":"), ensure_ascii=False))
    return out


def _events(P: Persons, book: PhoneBook, dev: dict, cat: Catalog, tl: Timeline, rng: np.random.Generator):
    n_dev = len(dev["kind"])
    n_ev = 3 + rng.poisson(5, n_dev)
    d = np.repeat(np.arange(n_dev), n_ev)
    pos = np.arange(len(d)) - np.repeat(np.r_[0, np.cumsum(n_ev)[:-1]], n_ev)
    u = np.sort(rng.random(len(d)).reshape(-1) + d)  # sorted within each device
    frac = u - d
    span = (dev["end"] - dev["start"]).astype(np.int64)
    ts = dev["start"][d] + (frac * span[d]).astype("timedelta64[s]")
    # Keep the feed fresh: the last event of a few recently active devices happens on the as_of day.
    recent = (pos == n_ev[d] - 1) & (dev["end"][d] > tl.days_before(30))
    today = np.flatnonzero(dirt.pick(rng, len(d), 0.002, recent))
    as_of = tl.as_of.astype("datetime64[s]")
    ts[today] = np.maximum(ts[today], as_of + rng.integers(0, 18 * 3600, len(today)).astype("timedelta64[s]"))
    ms = rng.integers(0, 1000, len(d))
    login = np.minimum(rng.integers(0, 3, n_dev), n_ev - 1)
    kind = dev["kind"][d]
    # 0 track, 1 screen, 2 page, 3 identify with traits, 4 identify without traits, 5 alias
    etype = rng.choice(3, len(d), p=[0.5, 0.35, 0.15])
    at_login = pos == login[d]
    how = rng.random(len(d))
    user_login = at_login & (kind == USER)
    etype[user_login] = np.where(how[user_login] < 0.7, 3, np.where(how[user_login] < 0.8, 4, 5))
    etype[at_login & (kind == ANON_TRAITS)] = 3
    # A few later identify calls, e.g. after the profile changed.
    later = (kind != NOISE) & (pos > login[d]) & (rng.random(len(d)) < 0.05)
    etype[later] = 3
    logged_in = (kind == USER) & (pos >= login[d])
    user = np.where(logged_in, dev["user_id"][d], None)
    traits_rows = np.flatnonzero(etype == 3)
    traits = np.full(len(d), None, dtype=object)
    traits[traits_rows] = _traits(P, book, dev["person"][d[traits_rows]], ts[traits_rows], rng)
    props = _track_properties(cat)
    prop = rng.integers(0, len(props), len(d))
    screen = rng.integers(0, len(_SCREENS), len(d))
    stamp = iso(ts)
    mid = uuids(rng, len(d))
    lines = np.empty(len(d), dtype=object)
    anon = dev["anonymous_id"]
    ctx = dev["context"]
    for i, (e, di) in enumerate(zip(etype.tolist(), d.tolist())):
        head = f'{{"messageId":"{mid[i]}","timestamp":"{stamp[i]}.{ms[i]:03d}Z","anonymousId":"{anon[di]}"'
        if user[i] is not None:
            head += f',"userId":"{user[i]}"'
        if e == 0:
            body = f'"type":"track",{props[prop[i]]}'
        elif e == 1:
            body = f'"type":"screen","name":"{_SCREENS[screen[i]]}"'
        elif e == 2:
            body = f'"type":"page","name":"{_SCREENS[screen[i]]}","properties":{{"path":"/{_SCREENS[screen[i]].lower()}"}}'
        elif e == 3:
            body = f'"type":"identify","traits":{traits[i]}'
        elif e == 4:
            body = '"type":"identify","traits":{}'
        else:
            body = f'"type":"alias","previousId":"{anon[di]}"'
        lines[i] = f'{head},{body},"context":{ctx[di]}}}'
    return lines, ts, user, d


def _track_properties(cat: Catalog) -> list[str]:
    out = []
    for sku, name, price in zip(cat.sku.tolist(), cat.name.tolist(), cat.price_eur.tolist()):
        p = json.dumps({"sku": sku, "name": name, "price": price}, separators=(",", ":"))
        out += [f'"event":"Product Viewed","properties":{p}', f'"event":"Product Added","properties":{p}']
    out += ['"event":"Products Searched","properties":{"query":"rain jacket"}',
            '"event":"Order Completed","properties":{"total":42.5,"currency":"EUR"}',
            '"event":"Newsletter Subscribed","properties":{}']
    return out


def _batch_start(ts: np.ndarray, as_of: np.datetime64) -> np.ndarray:
    """Weekly batches, daily in the last two weeks, six-hourly on as_of."""
    day = ts.astype("datetime64[D]")
    days = day.astype(np.int64)
    monday = (days - (days + 3) % 7).astype("datetime64[D]")
    hour = (ts - day.astype("datetime64[s]")).astype(np.int64) // 3600
    start = np.where(day > as_of - 14, day, monday).astype("datetime64[s]")
    return np.where(day == as_of, day.astype("datetime64[s]") + ((hour // 6) * 6 * 3600).astype("timedelta64[s]"), start)


def write_app_events(out: Path, P: Persons, book: PhoneBook, acc: Accounts, cat: Catalog, tl: Timeline,
                     rng: np.random.Generator):
    dev = _devices(P, acc, tl, rng)
    lines, ts, user, d = _events(P, book, dev, cat, tl, rng)
    batch = _batch_start(ts, tl.as_of)
    keys, inverse = np.unique(batch, return_inverse=True)
    order = np.lexsort((ts, inverse))
    bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
    # The same message delivered again in the next file; a broken line or an event without messageId in a few.
    resend = dirt.pick(rng, len(lines), 0.004, inverse < len(keys) - 1)
    broken_files = set(rng.choice(len(keys), size=min(len(keys), max(2, len(keys) // 10)), replace=False).tolist())
    folder = out / "app_events"
    folder.mkdir(parents=True, exist_ok=True)
    carry: list[str] = []
    n_dup = n_broken = 0
    for f, key in enumerate(keys):
        rows = order[bounds[f]:bounds[f + 1]]
        body = carry + lines[rows].tolist()
        n_dup += len(carry)
        carry = lines[rows[resend[rows]]].tolist()
        if f in broken_files and rows.size:
            sample = lines[rows[0]]
            if f % 2:
                body.insert(len(body) // 2, sample[: len(sample) // 2])  # cut off mid-write
            else:
                body.insert(len(body) // 2, json.dumps({k: v for k, v in json.loads(sample).items()
                                                        if k not in ("messageId", "userId", "traits", "previousId", "name",
                                                                     "properties", "event")}
                                                       | {"type": "track", "event": "App Opened"},
                                                       separators=(",", ":"), ensure_ascii=False))
            n_broken += 1
        name = f"events_{str(key)[:13]}.jsonl"
        data = ("\n".join(body) + "\n").encode("utf-8")
        if key < (tl.as_of - 90).astype("datetime64[s]"):
            with open(folder / (name + ".gz"), "wb") as raw, gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=3) as gz:
                gz.write(data)
        else:
            (folder / name).write_bytes(data)
    users = np.unique(user[user != None].astype(str))  # noqa: E711
    owner = {}
    for uid, p in zip(dev["user_id"].tolist(), dev["person"].tolist()):
        if uid is not None:
            owner[uid] = p
    truth_users = ("app", np.array([f"user:{u}" for u in users.tolist()], dtype=object),
                   P.person_id[np.array([owner[u] for u in users.tolist()], dtype=np.int64)])
    anon = dev["kind"] == ANON_TRAITS
    truth_anon = ("app", np.array([f"anon:{a}" for a in dev["anonymous_id"][anon].tolist()], dtype=object),
                  P.person_id[dev["person"][anon]])
    summary = {"files": len(keys), "gz_files": int((keys < (tl.as_of - 90).astype("datetime64[s]")).sum()),
               "events": len(lines), "devices": len(dev["kind"]), "redelivered": n_dup, "broken_lines": n_broken}
    return summary, [truth_users, truth_anon]
