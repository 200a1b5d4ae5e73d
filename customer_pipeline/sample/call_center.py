"""Call-center exports: one CSV per day, names and references as agents typed them."""

from pathlib import Path

import numpy as np

from customer_pipeline.sample import dirt, records
from customer_pipeline.sample.files import groups, write_csv
from customer_pipeline.sample.persons import Persons
from customer_pipeline.sample.phones import PhoneBook
from customer_pipeline.sample.pos import Cards
from customer_pipeline.sample.shop import Accounts
from customer_pipeline.sample.timeline import Timeline, at_opening_hours, iso, uniform_between

HEADER = ("contact_id", "started_at", "ended_at", "channel", "caller_phone", "caller_email", "caller_name",
          "account_ref", "reason", "outcome", "agent_id", "do_not_call", "notes")
_REASONS = ("complaint", "inquiry", "order_status", "return", "opt_out", "other")
_OUTCOMES = {"complaint": ("resolved", "escalated", "refund_issued"), "inquiry": ("resolved", "callback_scheduled"),
             "order_status": ("resolved", "escalated"), "return": ("return_label_sent", "refund_issued"),
             "opt_out": ("unsubscribed", "resolved"), "other": ("resolved", "no_action")}
_NOTES = (
    "Customer called about order, says parcel not arrived.\nAdvised to wait 2 more working days.",
    "Wants to update address, moved recently. Updated in system, confirmation sent by email.",
    "Asked for refund, item damaged; sent returns label.\nFollow-up in 5 days.",
    'Requested no more calls or mail, quote: "please remove me from all lists".',
    "Chat transcript:\nCustomer: hi, where is my order?\nAgent: checking now, one moment",
    "Loyalty points missing from last purchase, added manually (250 pts).",
    "Complained about rude staff in store, passed to store manager, apologised.",
    "",
)
_PHONE_FORMATS = {"e164": 0.45, "intl": 0.2, "national": 0.2, "intl00": 0.05, "compact": 0.1}
_NAME_DIRT = records.NameDirt(swap=0.02, nick=0.15, typo=0.04, case=0.0, space=0.03, accents=0.2)


def _caller_names(P: Persons, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`Smith, John`, `john smith`, `Mr J. Smith`, `John Smith`, `JOHN SMITH`, just `John`, or blank."""
    first, last, _ = records.names(P, person, rng, _NAME_DIRT)
    style = rng.choice(8, len(person), p=[0.22, 0.18, 0.12, 0.3, 0.06, 0.04, 0.03, 0.05])
    title = {"M": "Mr", "F": "Mrs", "X": "Mx"}
    out = np.empty(len(person), dtype=object)
    for i, (f, la, s, g) in enumerate(zip(first.tolist(), last.tolist(), style.tolist(), P.gender[person].tolist())):
        f, la = f.strip(), la.strip()
        out[i] = (f"{la}, {f}", f"{f} {la}".lower(), f"{title[g] if g != 'F' or i % 2 else 'Ms'} {f[:1]}. {la}",
                  f"{f} {la}", f"{f} {la}".upper(), f, la, None)[s]
    return out


def _account_refs(P: Persons, person: np.ndarray, acc: Accounts, cards: Cards, rng: np.random.Generator) -> np.ndarray:
    """A shop customer number (`C-12345` or `12345`), a loyalty card number, or nothing."""
    cid = {}
    for p, c in zip(acc.person.tolist(), acc.customer_id.tolist()):
        cid.setdefault(p, c)
    card = {}
    for p, c in zip(cards.person.tolist(), cards.card_no.tolist()):
        card.setdefault(p, c)
    r = rng.random(len(person))
    out = np.full(len(person), None, dtype=object)
    for i, (p, x) in enumerate(zip(person.tolist(), r.tolist())):
        if p in cid and x < 0.55:
            out[i] = f"C-{cid[p]}" if x < 0.35 else str(cid[p])
        elif p in card and x < 0.8:
            out[i] = card[p]
    return out


def write_call_center(out: Path, P: Persons, book: PhoneBook, acc: Accounts, cards: Cards, tl: Timeline,
                      rng: np.random.Generator):
    callers = np.flatnonzero(P.in_call_center)
    per = 1 + rng.poisson(0.6, len(callers))
    person = np.repeat(callers, per)
    n_p = len(person)
    started = at_opening_hours(rng, uniform_between(rng, P.first_seen[person], P.last_seen[person]))
    channel = np.array(["phone", "email", "chat"], dtype=object)[rng.choice(3, n_p, p=[0.6, 0.25, 0.15])]
    phone = records.phones(P, book, person, rng, mobile=0.7, landline=0.22, formats=_PHONE_FORMATS,
                           unparseable=0.004)
    phone[channel != "phone"] = None
    email = records.email_at(P, person, started)
    email = records.dirty_email(email, rng, typo=0.02, invalid=0.006, case=0.03)
    email[(channel == "phone") & (rng.random(n_p) < 0.9)] = None
    name = _caller_names(P, person, rng)
    # A contact with a person always names, numbers or mails them.
    no_phone = np.array([x is None or x in dirt.BAD_PHONES for x in phone.tolist()], dtype=bool)
    unnamed = (name == None) & no_phone & (email == None)  # noqa: E711
    name[unnamed] = [f"{P['first'][p]} {P['last'][p]}" for p in person[unnamed].tolist()]
    ref = _account_refs(P, person, acc, cards, rng)

    # Contacts that identify nobody: hung up, withheld number, anonymous chat.
    n_anon = max(2, n_p // 25)
    n = n_p + n_anon
    started = np.concatenate([started, at_opening_hours(rng, uniform_between(
        rng, np.full(n_anon, tl.start), np.full(n_anon, tl.end)))])
    # Keep the export fresh: a few contacts on the as_of day itself.
    today = rng.choice(n, size=min(n, 3), replace=False)
    started[today] = tl.as_of.astype("datetime64[s]") + rng.integers(8 * 3600, 12 * 3600, len(today)).astype(
        "timedelta64[s]")
    none = np.full(n_anon, None, dtype=object)
    channel = np.concatenate([channel, np.array(["phone", "chat"], dtype=object)[rng.integers(0, 2, n_anon)]])
    phone, email, name, ref = (np.concatenate([x, none]) for x in (phone, email, name, ref))
    ended = started + rng.integers(45, 1800, n).astype("timedelta64[s]")
    reason = np.array(_REASONS, dtype=object)[rng.choice(6, n, p=[0.15, 0.3, 0.25, 0.15, 0.05, 0.1])]
    reason[n_p:] = "other"
    outcome = np.array([_OUTCOMES[r][k % len(_OUTCOMES[r])] for r, k in
                        zip(reason.tolist(), rng.integers(0, 6, n).tolist())], dtype=object)
    outcome[n_p:] = "no_action"
    dnc = np.where(((reason == "opt_out") & (rng.random(n) < 0.8)) | (rng.random(n) < 0.01), "Y", "N")
    notes = np.array(_NOTES, dtype=object)[rng.integers(0, len(_NOTES), n)]
    notes[reason == "opt_out"] = _NOTES[3]
    notes[n_p:] = "Caller hung up before identification."
    agent = np.array([f"AG{k:03d}" for k in rng.integers(1, 41, n).tolist()], dtype=object)

    order = np.argsort(started, kind="stable")
    cid = np.empty(n, dtype=object)
    cid[order] = [f"CC{k:08d}" for k in range(1, n + 1)]
    columns = [cid, iso(started, " "), iso(ended, " "), channel, phone, email, name, ref, reason, outcome, agent,
               dnc.astype(object), notes]

    day = started.astype("datetime64[D]")
    days = day.astype(np.int64)
    # Some days the export job resends the previous day's rows in the next file too.
    distinct = np.unique(days)
    resend = set(distinct[dirt.pick(rng, len(distinct), 0.03, np.isin(distinct + 1, distinct))].tolist())
    by_day = {k: idx[np.argsort(started[idx], kind="stable")] for k, idx in groups(days)}
    bad_days = set(rng.choice(list(by_day), size=min(len(by_day), max(2, n // 4000)), replace=False).tolist())
    files = rows_written = 0
    for k, idx in by_day.items():
        prev = by_day.get(k - 1) if (k - 1) in resend else None
        rows = idx if prev is None else np.concatenate([prev, idx])
        bad = []
        if k in bad_days:
            template = ["" if c[idx[0]] is None else str(c[idx[0]]) for c in columns]
            template[0] = f"CCX{k:07d}"
            bad = [template[:-3] if k % 2 else template + ["", "see previous"]]
        rows_written += write_csv(out / "call_center" / f"contacts_{np.datetime64(k, 'D')}.csv", HEADER, columns,
                                  rows, bad_lines=bad, bom=True, crlf=True)
        files += 1
    has_person = np.zeros(n, dtype=bool)
    has_person[:n_p] = True
    truth = ("call_center", np.array([f"contact:{c}" for c in cid[:n_p].tolist()], dtype=object),
             P.person_id[person])
    summary = {"files": files, "contacts": n, "contacts_with_person": int(has_person.sum()),
               "rows_written": rows_written, "redelivered_days": len(resend & set(by_day)), "bad_rows": len(bad_days)}
    return summary, [truth]
