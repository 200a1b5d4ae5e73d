"""How a person looks in one source record at one moment: the true values, then that source's dirt."""

from dataclasses import dataclass

import numpy as np

from customer_pipeline.sample import dirt
from customer_pipeline.sample.persons import Persons
from customer_pipeline.sample.phones import FORMATS, PhoneBook

# Usual date style per country (0 ISO, 1 DD.MM.YYYY, 2 DD/MM/YYYY), in COUNTRIES order.
_DATE_STYLE = np.array([2, 1, 2, 2, 0])


@dataclass(frozen=True)
class NameDirt:
    swap: float = 0.0
    nick: float = 0.0
    typo: float = 0.0
    case: float = 0.0
    space: float = 0.0
    accents: float = 0.0


def names(P: Persons, idx: np.ndarray, rng: np.random.Generator, d: NameDirt):
    """(first, last, swapped) as typed in the source."""
    first = dirt.nickname(P["first"][idx], P.nick[idx], rng, d.nick)
    last = P["last"][idx]
    first, last, swapped = dirt.swap_names(first, last, rng, d.swap)
    for fn, rate in ((dirt.typo, d.typo), (dirt.case_noise, d.case), (dirt.space_noise, d.space),
                     (dirt.strip_accents, d.accents)):
        first = fn(first, rng, rate)
        last = fn(last, rng, rate)
    return first, last, swapped


def email_at(P: Persons, idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The address the person used at time t (the new one after a change)."""
    changed = ~np.isnat(P.email_changed_at[idx]) & (t >= P.email_changed_at[idx])
    return np.where(changed, P.email_new[idx], P.email[idx])


def dirty_email(values: np.ndarray, rng: np.random.Generator, *, typo: float = 0.0, domain: float = 0.0,
                invalid: float = 0.0, case: float = 0.0) -> np.ndarray:
    out = values.copy()
    local_typo = dirt.pick(rng, len(out), typo, dirt.present(out))
    for r in np.flatnonzero(local_typo).tolist():
        local, _, dom = out[r].partition("@")
        out[r] = dirt.typo(np.array([local], dtype=object), rng, 1.0)[0] + "@" + dom
    out = dirt.domain_typos(out, rng, domain)
    out = dirt.invalid_emails(out, rng, invalid)
    rows = np.flatnonzero(dirt.pick(rng, len(out), case, dirt.present(out)))
    for r in rows.tolist():
        local, _, dom = out[r].partition("@")
        out[r] = out[r].upper() if r % 2 else local.capitalize() + "@" + dom.capitalize()
    return out


def address_at(P: Persons, idx: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """line1, line2, city, postcode, region where the person lived at time t."""
    moved = ~np.isnat(P.moved_at[idx]) & (t >= P.moved_at[idx])
    return {k: np.where(moved, P["new_" + k][idx], P[k][idx]) for k in ("line1", "line2", "city", "postcode", "region")}


def phones(P: Persons, book: PhoneBook, idx: np.ndarray, rng: np.random.Generator, *, mobile: float,
           landline: float, formats: dict[str, float], unparseable: float = 0.0) -> np.ndarray:
    """A phone per record: the mobile, the household landline, or blank, written in one of `formats`.

    In a family with a shared mobile, a record asking for a mobile gets the family's number with the
    person's `family_mobile_use` probability (always when they have none of their own), and one asking
    for a home phone gets it when the household has no landline.
    """
    r = rng.random(len(idx))
    want_mobile = r < mobile
    want_land = (r >= mobile) & (r < mobile + landline)
    fam = P.family_mobile[idx]
    has_fam = np.array([x is not None for x in fam], dtype=bool)
    own = P.mobile[idx]
    # Where a mobile is wanted r / mobile is uniform on [0, 1): reusing it keeps every later draw as it was.
    give_fam = has_fam & ((r < mobile * P.family_mobile_use[idx]) | (own == None))  # noqa: E711 - elementwise
    mob = np.where(give_fam, fam, own)
    mob_layout = np.where(give_fam, P.family_mobile_layout[idx], P.mobile_layout[idx])
    home_fam = has_fam & (P.land[idx] == None)  # noqa: E711 - elementwise
    land = np.where(home_fam, fam, P.land[idx])
    land_layout = np.where(home_fam, P.family_mobile_layout[idx], P.land_layout[idx])
    has_mob = np.array([x is not None for x in mob], dtype=bool)
    has_land = np.array([x is not None for x in land], dtype=bool)
    # Fall back to the other number when the chosen one does not exist.
    use_mobile = has_mob & (want_mobile | (want_land & ~has_land))
    use_land = has_land & ~use_mobile & (want_land | want_mobile)
    nsn = np.where(use_mobile, mob, np.where(use_land, land, None))
    layout = np.where(use_mobile, mob_layout, land_layout)
    names_ = list(formats)
    p = np.array([formats[k] for k in names_])
    fmt = np.array([FORMATS.index(k) for k in names_])[rng.choice(len(names_), len(idx), p=p / p.sum())]
    out = book.format(nsn, layout, fmt)
    return dirt.unparseable_phones(out, rng, unparseable)


def birth_dates(P: Persons, idx: np.ndarray, rng: np.random.Generator, *, blank: float, mixed: float,
                impossible: float = 0.0) -> np.ndarray:
    """Birth dates as text, mostly in the country's usual style, sometimes another."""
    style = _DATE_STYLE[P.country_idx[idx]]
    other = rng.random(len(idx)) < mixed
    style = np.where(other, rng.integers(0, 3, len(idx)), style)
    out = dirt.blank(dirt.date_text(P.birth[idx], style), rng, blank)
    return dirt.impossible_dates(out, rng, impossible, style)
