"""The hidden true population: who exists, where they live, how to reach them, when they are active."""

import functools
import re

import numpy as np

from customer_pipeline.sample.dirt import ascii_fold
from customer_pipeline.sample.phones import LANDLINE, MOBILE, PhoneBook, build_phonebook
from customer_pipeline.sample.pools import COUNTRIES, COUNTRY_SHARE, EMAIL_DOMAINS, NUMBER_FIRST, CountryPool
from customer_pipeline.sample.timeline import DAY_S, Timeline, uniform_between

NAT = np.datetime64("NaT", "s")

# Families that give one mobile for all of them ("call mum's mobile", or a prepaid phone kept as the
# home line once the landline went). Drawn from the same blocks and written in the same formats as
# personal mobiles: nothing in a record tells a family's mobile from a personal one.
FAMILY_MOBILE_SHARE = 1 / 3  # of the households of two or more people
FAMILY_MOBILE_OF_THE_HEAD = 0.5  # the head's own mobile; otherwise a phone of its own that replaced the landline
FAMILY_MOBILE_ONLY = 0.25  # other members who give the family's number and no mobile of their own
FAMILY_MOBILE_USE = (0.3, 0.9)  # the rest: share of their records asking for a mobile that get the family's


class Persons(dict):
    """Column name -> numpy array, one row per true person (row i is person_id i + 1)."""

    __getattr__ = dict.__getitem__

    @property
    def n(self) -> int:
        return len(self["person_id"])


def _households(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Household id and head row per person: about one person in five lives with another."""
    joins = rng.random(n) < 0.2
    joins[0] = False
    hh = np.cumsum(~joins) - 1
    head = np.flatnonzero(~joins)[hh]
    return hh, head


def _names(P: Persons, pools: dict[str, CountryPool], rng: np.random.Generator) -> None:
    n = P.n
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    nick = np.full(n, None, dtype=object)
    for ci, c in enumerate(COUNTRIES):
        pool = pools[c]
        in_c = P.country_idx == ci
        male = in_c & ((P.gender == "M") | ((P.gender == "X") & (rng.random(n) < 0.5)))
        female = in_c & ~male
        first[male] = pool.first_m.sample(rng, int(male.sum()))
        first[female] = pool.first_f.sample(rng, int(female.sum()))
        last[in_c] = pool.last.sample(rng, int(in_c.sum()))
    # Most household members share the head's surname.
    member = P.head != np.arange(n)
    same = member & (rng.random(n) < 0.75)
    last[same] = last[P.head[same]]
    # Namesakes: unrelated people with the same (usually common) first and last name.
    copy = np.flatnonzero(~member & (rng.random(n) < 0.015))
    for ci in range(len(COUNTRIES)):
        rows = copy[P.country_idx[copy] == ci]
        donors_all = np.flatnonzero(P.country_idx == ci)
        if len(rows) and len(donors_all):
            donors = donors_all[rng.integers(0, len(donors_all), len(rows))]
            first[rows], last[rows], P.gender[rows] = first[donors], last[donors], P.gender[donors]
    for ci, c in enumerate(COUNTRIES):
        table = pools[c].nicknames
        rows = np.flatnonzero(P.country_idx == ci)
        nick[rows] = [table.get(f) for f in first[rows].tolist()]
    P["first"], P["last"], P["nick"] = first, last, nick


def _birth_dates(P: Persons, tl: Timeline, rng: np.random.Generator) -> None:
    n = P.n
    age_days = ((18 + 67 * rng.beta(2.0, 3.0, n)) * 365.25).astype(np.int64)
    birth = tl.as_of - age_days
    member = P.head != np.arange(n)
    # Partners are about the same age as the head; later members are grown-up children.
    rank = np.arange(n) - P.head
    partner = member & (rank == 1)
    child = member & (rank >= 2)
    birth[partner] = birth[P.head[partner]] + rng.normal(0, 4 * 365, int(partner.sum())).astype(np.int64)
    birth[child] = birth[P.head[child]] + rng.integers(24 * 365, 34 * 365, int(child.sum()))
    # grown-up children born "too late" are resampled as young adults, not all clipped to one date
    # (one shared birth date per household would make the household look like one person)
    too_young = birth > tl.as_of - 18 * 365
    birth[too_young] = tl.as_of - rng.integers(18 * 365, 30 * 365, int(too_young.sum()))
    P["birth"] = birth.astype("datetime64[D]")


def _addresses(P: Persons, pools: dict[str, CountryPool], rng: np.random.Generator, prefix: str) -> None:
    """A street address per household (members share it)."""
    n = P.n
    line1 = np.empty(n, dtype=object)
    line2 = np.full(n, None, dtype=object)
    city = np.empty(n, dtype=object)
    postcode = np.empty(n, dtype=object)
    region = np.empty(n, dtype=object)
    number = np.minimum(rng.zipf(1.6, n), 400)
    flat = rng.random(n) < 0.08
    flat_no = rng.integers(1, 40, n)
    for ci, c in enumerate(COUNTRIES):
        pool = pools[c]
        rows = np.flatnonzero(P.country_idx == ci)
        street = pool.streets[rng.integers(0, len(pool.streets), len(rows))]
        place = rng.integers(0, len(pool.cities), len(rows))
        nums = number[rows].tolist()
        if NUMBER_FIRST[c]:
            line1[rows] = [f"{k} {s}" for k, s in zip(nums, street.tolist())]
        else:
            line1[rows] = [f"{s} {k}" for k, s in zip(nums, street.tolist())]
        city[rows], postcode[rows], region[rows] = pool.cities[place], pool.postcodes[place], pool.regions[place]
        if c in ("GB", "US"):
            word = "Flat" if c == "GB" else "Apt"
            fr = rows[flat[rows]]
            line2[fr] = [f"{word} {k}" for k in flat_no[fr].tolist()]
    for col, arr in (("line1", line1), ("line2", line2), ("city", city), ("postcode", postcode), ("region", region)):
        P[prefix + col] = arr[P.head]


@functools.lru_cache(maxsize=None)
def email_local_part(name: str) -> str:
    """A name as it can appear before the @: lower-case ASCII letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9-]", "", ascii_fold(name).lower()) or "x"


def _emails(P: Persons, rng: np.random.Generator) -> None:
    """A primary email for most, a second address for some, a new address for the few who change."""
    n = P.n
    f = np.array([email_local_part(x) for x in P["first"].tolist()], dtype=object)
    la = np.array([email_local_part(x) for x in P["last"].tolist()], dtype=object)
    yy = (P.birth.astype("datetime64[Y]").astype(int) + 1970) % 100

    def make(pattern: np.ndarray, domain_draw: np.ndarray) -> np.ndarray:
        out = np.empty(n, dtype=object)
        digits = rng.integers(1, 999, n)
        for i, (a, b, p, y, d) in enumerate(zip(f.tolist(), la.tolist(), pattern.tolist(), yy.tolist(), digits.tolist())):
            local = (f"{a}.{b}", f"{a[0]}{b}", f"{a}{b}{d}", f"{b}.{a}", f"{a}_{b}{y:02d}", f"{a}{y:02d}", f"{a}.{b}{d}")[p]
            out[i] = local + "@" + domain_draw[i]
        return out

    def domains() -> np.ndarray:
        out = np.empty(n, dtype=object)
        for ci, c in enumerate(COUNTRIES):
            rows = np.flatnonzero(P.country_idx == ci)
            names = np.array([d for d, _ in EMAIL_DOMAINS[c]], dtype=object)
            p = np.array([w for _, w in EMAIL_DOMAINS[c]])
            out[rows] = names[rng.choice(len(names), len(rows), p=p / p.sum())]
        return out

    w = np.array([0.3, 0.15, 0.15, 0.08, 0.12, 0.1, 0.1])
    email = make(rng.choice(7, n, p=w), domains())
    alt = make(rng.choice(7, n, p=w), domains())
    new = make(rng.choice(7, n, p=w), domains())
    # Every address belongs to one person only: make repeats unique with the person's number.
    seen: set[str] = set()
    for arr in (email, alt, new):
        for i, e in enumerate(arr.tolist()):
            if e in seen:
                local, _, dom = e.partition("@")
                k = 0
                while e in seen:
                    k += 1
                    e = f"{local}.{P.person_id[i]}{'' if k == 1 else k}@{dom}"
                arr[i] = e
            seen.add(e)
    email[rng.random(n) < 0.07] = None
    has = email != None  # noqa: E711 - elementwise
    alt[~has | (rng.random(n) >= 0.3)] = None
    changes = has & (rng.random(n) < 0.06)
    new[~changes] = None
    P["email"], P["email_alt"], P["email_new"] = email, alt, new


def _fresh_mobiles(book: PhoneBook, country: str, k: int, used: set, rng: np.random.Generator):
    """k mobiles of the country that nobody holds yet (`used` is updated), and their layouts."""
    nsn, lay = [], []
    while len(nsn) < k:
        cand, cand_lay = book.draw(country, MOBILE, 2 * (k - len(nsn)) + 8, rng)
        for x, y in zip(cand.tolist(), cand_lay.tolist()):
            if x not in used and len(nsn) < k:
                used.add(x)
                nsn.append(x)
                lay.append(y)
    return np.array(nsn, dtype=object), np.array(lay, dtype=np.int32)


def _family_mobiles(P: Persons, book: PhoneBook, rng: np.random.Generator) -> None:
    """In some households one mobile is given by all: the head's own, or a phone of the family's."""
    n, head = P.n, P.head
    is_head = head == np.arange(n)
    size = np.bincount(P.household)[P.household]
    family = (rng.random(n) < FAMILY_MOBILE_SHARE)[head] & (size >= 2)
    of_head = family & (rng.random(n) < FAMILY_MOBILE_OF_THE_HEAD)[head]
    owner = of_head & is_head
    separate = family & ~of_head & is_head
    only_family = family & ~is_head & (rng.random(n) < FAMILY_MOBILE_ONLY)
    use = np.where(family, rng.uniform(*FAMILY_MOBILE_USE, n), 0.0)
    use[only_family | owner] = 1.0
    used = {m for m in P.mobile.tolist() if m is not None}
    fam = np.full(n, None, dtype=object)
    fam_layout = np.zeros(n, dtype=np.int32)
    for ci, c in enumerate(COUNTRIES):
        # A head without a mobile of their own gets one: it is the family's.
        rows = np.flatnonzero((P.country_idx == ci) & owner & (P.mobile == None))  # noqa: E711 - elementwise
        P.mobile[rows], P.mobile_layout[rows] = _fresh_mobiles(book, c, len(rows), used, rng)
        rows = np.flatnonzero((P.country_idx == ci) & separate)
        fam[rows], fam_layout[rows] = _fresh_mobiles(book, c, len(rows), used, rng)
    fam[owner], fam_layout[owner] = P.mobile[owner], P.mobile_layout[owner]
    P.mobile[only_family] = None
    # Every member holds the family's number; a phone of the family's own replaced the landline.
    P["family_mobile"], P["family_mobile_layout"], P["family_mobile_use"] = fam[head], fam_layout[head], use
    replaced = separate[head]
    P.land[replaced] = None


def make_persons(n: int, pools: dict[str, CountryPool], tl: Timeline, rng: np.random.Generator) -> tuple[Persons, PhoneBook]:
    P = Persons(person_id=np.arange(1, n + 1, dtype=np.int64))
    hh, head = _households(n, rng)
    P["household"], P["head"] = hh, head
    P["country_idx"] = rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARE)[head]
    P["country"] = np.array(COUNTRIES, dtype=object)[P.country_idx]
    gender = np.array(["M", "F", "X"], dtype=object)[rng.choice(3, n, p=[0.49, 0.49, 0.02])]
    partner = (np.arange(n) - head == 1) & (rng.random(n) < 0.8)
    gender[partner] = np.where(gender[head[partner]] == "M", "F", "M")
    P["gender"] = gender
    _names(P, pools, rng)
    _birth_dates(P, tl, rng)
    _addresses(P, pools, rng, "")
    _addresses(P, pools, rng, "new_")
    # About one household in twelve moves; everyone in it moves together.
    moves = rng.random(n) < 0.08
    moved_at = uniform_between(rng, np.full(n, tl.start + np.timedelta64(60 * DAY_S, "s")),
                               np.full(n, tl.days_before(10)))
    P["moved_at"] = np.where(moves, moved_at, NAT)[head]
    _emails(P, rng)
    P["email_changed_at"] = np.where(P.email_new != None, uniform_between(  # noqa: E711
        rng, np.full(n, tl.start + np.timedelta64(30 * DAY_S, "s")), np.full(n, tl.days_before(20))), NAT)

    need = {c: int((P.country_idx == ci).sum()) for ci, c in enumerate(COUNTRIES)}
    book = build_phonebook(need, rng)
    mobile = np.full(n, None, dtype=object)
    mobile_layout = np.zeros(n, dtype=np.int32)
    land = np.full(n, None, dtype=object)
    land_layout = np.zeros(n, dtype=np.int32)
    is_head = head == np.arange(n)
    has_mobile = rng.random(n) < 0.93
    has_land = is_head & (rng.random(n) < 0.35)
    for ci, c in enumerate(COUNTRIES):
        rows = np.flatnonzero((P.country_idx == ci) & has_mobile)
        mobile[rows], mobile_layout[rows] = book.draw(c, MOBILE, len(rows), rng)
        rows = np.flatnonzero((P.country_idx == ci) & has_land)
        land[rows], land_layout[rows] = book.draw(c, LANDLINE, len(rows), rng)
    # Household members share the landline.
    P["mobile"], P["mobile_layout"] = mobile, mobile_layout
    P["land"], P["land_layout"] = land[head], land_layout[head]

    # Activity window; about one in eight has gone quiet for more than a year (stale).
    stale = rng.random(n) < 0.12
    lo = np.full(n, tl.start)
    first = uniform_between(rng, lo, np.where(stale, tl.days_before(420), tl.days_before(20)))
    recent_gap = np.minimum(rng.exponential(70, n), 360) * DAY_S
    last_active = tl.end - recent_gap.astype("timedelta64[s]")
    last_stale = uniform_between(rng, first + np.timedelta64(DAY_S, "s"), np.full(n, tl.days_before(380)))
    last = np.where(stale, last_stale, np.maximum(last_active, first + np.timedelta64(DAY_S, "s")))
    P["first_seen"], P["last_seen"], P["stale"] = first, np.minimum(last, tl.end), stale

    # Which systems know each person: most appear in one to four of them.
    r = rng.random((n, 4))
    P["in_pos"] = r[:, 0] < 0.55
    P["in_shop"] = r[:, 1] < 0.5
    P["in_call_center"] = r[:, 2] < 0.14
    P["in_app"] = P.in_shop & (r[:, 3] < 0.35)
    P["in_app_anon"] = ~P.in_shop & (r[:, 3] < 0.04)
    none = ~(P.in_pos | P.in_shop | P.in_call_center | P.in_app_anon)
    to_pos = none & (rng.random(n) < 0.5)
    P.in_pos[to_pos] = True
    P.in_shop[none & ~to_pos] = True
    # Last, so that adding it left every earlier draw of this stream (and so the people) as it was.
    _family_mobiles(P, book, rng)
    return P, book
