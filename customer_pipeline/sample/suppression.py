"""Preference registers in `suppression/`: a do-not-call list (two snapshots), an email opt-out list and a
mail-preference list, listing some people's phones, emails and addresses written differently from their own
records, plus entries that match nobody. `suppression_truth.csv` says who each entry is (blank: nobody)."""

import csv
import datetime as dt
from pathlib import Path

import numpy as np

from customer_pipeline.sample import records
from customer_pipeline.sample.persons import Persons
from customer_pipeline.sample.phones import FORMATS, PhoneBook
from customer_pipeline.sample.timeline import Timeline

HEADER = ("kind", "value", "postcode", "country", "listed_at")
TRUTH_HEADER = ("file", "kind", "value", "person_id")
DNC, EMAIL_OPTOUT, MPS = "dnc_national", "email_optout", "mps"
# shares of the people who appear in a source, listed on each register
DNC_SHARE, EMAIL_SHARE, MPS_SHARE = 0.05, 0.04, 0.03
# the older DNC snapshot lists most of the newer one's people and some who have since left the register
OLD_SNAPSHOT_DAYS, OLD_KEPT, OLD_LEFT = 35, 0.8, 0.3
UNMATCHED = {DNC: 5, EMAIL_OPTOUT: 4, MPS: 3}
# formats the sources rarely or never write: a register entry seldom looks like the record it blocks
_REGISTER_FORMATS = np.array([FORMATS.index(f) for f in ("dashed", "plus0", "paren", "intl00")])


def _pick(rng: np.random.Generator, pool: np.ndarray, share: float) -> np.ndarray:
    n = max(1, int(round(len(pool) * share)))
    return np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))


def _listed(rng: np.random.Generator, tl: Timeline, n: int) -> list[str]:
    days = rng.integers(30, 3 * 365, n)
    return [str(tl.as_of - int(d)) for d in days.tolist()]


def _dnc_rows(P: Persons, book: PhoneBook, people: np.ndarray, rng: np.random.Generator, tl: Timeline):
    mobile = np.array([x is not None for x in P.mobile[people]], dtype=bool)
    nsn = np.where(mobile, P.mobile[people], P.land[people])
    layout = np.where(mobile, P.mobile_layout[people], P.land_layout[people])
    keep = np.array([x is not None for x in nsn], dtype=bool)
    people, nsn, layout = people[keep], nsn[keep], layout[keep]
    fmt = _REGISTER_FORMATS[rng.integers(0, len(_REGISTER_FORMATS), len(people))]
    values = book.format(nsn, layout.astype(np.int32), fmt)
    listed = _listed(rng, tl, len(people))
    return [(("phone", v, "", P.country[p], d), int(P.person_id[p]))
            for p, v, d in zip(people.tolist(), values.tolist(), listed)]


def _unmatched_phones(P: Persons, book: PhoneBook, n: int, rng: np.random.Generator) -> list[tuple]:
    """Numbers of the sample's blocks that nobody holds."""
    held = {x for col in ("mobile", "land", "family_mobile") for x in P[col].tolist() if x is not None}
    out = []
    for region in ("GB", "DE", "FR", "NL", "US"):
        if len(out) >= n:
            break
        nsn, layout = book.draw(region, 0, 50, rng)
        free = [(s, lid) for s, lid in zip(nsn.tolist(), layout.tolist()) if s not in held][:1]
        for s, lid in free:
            value = book.format(np.array([s], dtype=object), np.array([lid], dtype=np.int32),
                                np.array([FORMATS.index("intl")]))[0]
            out.append(("phone", value, "", region, ""))
    return out[:n]


def write_suppression(out: Path, P: Persons, book: PhoneBook, tl: Timeline, rng: np.random.Generator) -> dict:
    """Write the registers and their truth; return counts per register (entries, of whom persons, nobody)."""
    folder = out / "suppression"
    present = np.flatnonzero(P.in_pos | P.in_shop | P.in_call_center | P.in_app_anon)
    as_of = tl.as_of.astype(object)
    old_day = as_of - dt.timedelta(days=OLD_SNAPSHOT_DAYS)
    files: dict[str, list] = {}

    dnc = _dnc_rows(P, book, _pick(rng, present, DNC_SHARE), rng, tl)
    dnc_nobody = _unmatched_phones(P, book, UNMATCHED[DNC], rng)
    files[f"{DNC}_{as_of}"] = dnc + [(row, None) for row in dnc_nobody]
    kept = [e for e in dnc if rng.random() < OLD_KEPT]
    outside = np.setdiff1d(present, [pid - 1 for _, pid in dnc])
    left = _dnc_rows(P, book, _pick(rng, outside, DNC_SHARE * OLD_LEFT), rng, tl)
    files[f"{DNC}_{old_day}"] = kept + left

    people = _pick(rng, present, EMAIL_SHARE)
    emails = records.email_at(P, people, np.full(len(people), tl.end))
    has = np.array([e is not None for e in emails], dtype=bool)
    people, emails = people[has], emails[has]
    # as people type them into an opt-out form: any case, stray spaces
    shown = [e.upper() if i % 3 == 0 else (f" {e} " if i % 3 == 1 else e) for i, e in enumerate(emails.tolist())]
    files[f"{EMAIL_OPTOUT}_{as_of}"] = (
        [(("email", v, "", "", d), int(P.person_id[p]))
         for p, v, d in zip(people.tolist(), shown, _listed(rng, tl, len(people)))]
        + [(("email", f"nobody.{i}@example.org", "", "", ""), None) for i in range(UNMATCHED[EMAIL_OPTOUT])])

    # the shop is the only source that knows streets: the register lists where some of its customers live now
    people = _pick(rng, np.flatnonzero(P.in_shop), MPS_SHARE)
    addr = records.address_at(P, people, np.full(len(people), tl.end))
    rows = []
    for i, (p, l1, l2, pc) in enumerate(zip(people.tolist(), addr["line1"].tolist(), addr["line2"].tolist(),
                                            addr["postcode"].tolist())):
        line = l1 if l2 is None else f"{l1}, {l2}"
        rows.append((("postal", line.upper() if i % 2 else line, pc.lower().replace(" ", "") if i % 2 else pc,
                      P.country[p], ""), int(P.person_id[p])))
    rows += [(("postal", f"{900 + i} Nowhere Lane", "ZZ9 9ZZ", "GB", ""), None) for i in range(UNMATCHED[MPS])]
    files[f"{MPS}_{as_of}"] = rows

    folder.mkdir(parents=True, exist_ok=True)
    truth = []
    for name, entries in sorted(files.items()):
        with open(folder / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(HEADER)
            w.writerows(row for row, _ in entries)
        truth += [(f"{name}.csv", row[0], row[1], "" if pid is None else pid) for row, pid in entries]
    with open(out / "suppression_truth.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRUTH_HEADER)
        w.writerows(truth)
    return {name: {"entries": len(entries), "persons": sum(pid is not None for _, pid in entries),
                   "nobody": sum(pid is None for _, pid in entries)} for name, entries in sorted(files.items())}
