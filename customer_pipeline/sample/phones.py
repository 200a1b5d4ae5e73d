"""Valid phone numbers per country and type, and the many ways people write them.

Numbers come from blocks: a prefix taken from phonenumbers' example numbers and
checked with `is_valid_number`, followed by free trailing digits. Every number of
a block shares one layout, so formatting is done once per block layout, not per
record.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import phonenumbers as pn
from phonenumbers import PhoneNumberFormat, PhoneNumberType

MOBILE, LANDLINE = 0, 1
# Output formats; which ones a source uses is the source's choice.
FORMATS = ("national", "intl", "e164", "intl00", "compact", "paren", "plus0", "dashed")
F = {name: i for i, name in enumerate(FORMATS)}

# Extra starting points besides phonenumbers' example numbers, for a varied spread.
_SEEDS = {
    ("GB", MOBILE): ("7400123456", "7700900123", "7911123456", "7834567890"),
    ("GB", LANDLINE): ("1212345678", "2079460958", "1614960123", "1134960456"),
    ("DE", MOBILE): ("15123456789", "1701234567", "1761234567"),
    ("DE", LANDLINE): ("30123456", "40123456", "891234567", "6912345678", "2211234567"),
    ("FR", MOBILE): ("612345678", "712345678", "678123456"),
    ("FR", LANDLINE): ("123456789", "478123456", "556123456", "491123456"),
    ("NL", MOBILE): ("612345678", "687654321"),
    ("NL", LANDLINE): ("101234567", "201234567", "302345678", "705123456"),
    ("US", MOBILE): ("2015550123", "3125550147", "4155550199", "6175550110"),
    ("US", LANDLINE): ("2125550123", "3055550111", "7135550188", "2065550142"),
}
_TYPES = {MOBILE: (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE),
          LANDLINE: (PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE)}


def _template(formatted: str, nsn: str) -> tuple:
    """Turn a formatted number into segments: literal text or (start, end) slices of the NSN."""
    digits = [i for i, ch in enumerate(formatted) if ch.isdigit()]
    lead = len(digits) - len(nsn)
    nsn_pos = {p: k for k, p in enumerate(digits[lead:])}
    segs: list = []
    for i, ch in enumerate(formatted):
        k = nsn_pos.get(i)
        if k is None:
            if segs and isinstance(segs[-1], str):
                segs[-1] += ch
            else:
                segs.append(ch)
        elif segs and isinstance(segs[-1], tuple) and segs[-1][1] == k:
            segs[-1] = (segs[-1][0], k + 1)
        else:
            segs.append((k, k + 1))
    return tuple(segs)


def _layouts(region: str, nsn: str, kind: int) -> tuple:
    num = pn.parse(nsn, region) if region != "US" else pn.parse("+1" + nsn)
    cc = str(num.country_code)
    national = pn.format_number(num, PhoneNumberFormat.NATIONAL)
    intl = pn.format_number(num, PhoneNumberFormat.INTERNATIONAL)
    trunk = "" if region == "US" else "0"
    if kind == LANDLINE:
        area = pn.length_of_geographical_area_code(num)
    else:
        area = pn.length_of_national_destination_code(num)
    area = area or 3
    out = {
        "national": national,
        "intl": intl,
        "e164": "+" + cc + nsn,
        "intl00": "00" + intl[1:],
        "compact": trunk + nsn,
        "paren": national if region == "US" else f"({trunk}{nsn[:area]}) {nsn[area:]}",
        "plus0": intl if region == "US" else f"+{cc} ({trunk}){national[len(trunk):]}",
        "dashed": intl[len(cc) + 2:] if region == "US" else national.replace(" ", "-"),
    }
    return tuple(_template(out[f], nsn) for f in FORMATS)


@dataclass
class PhoneBook:
    """Blocks of valid numbers per (country, kind), and the layouts to write them."""

    layouts: list[tuple] = field(default_factory=list)
    _layout_ids: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)  # (country, kind) -> list of (prefix, free_digits, layout_id)

    def _layout_id(self, layout: tuple) -> int:
        if layout not in self._layout_ids:
            self._layout_ids[layout] = len(self.layouts)
            self.layouts.append(layout)
        return self._layout_ids[layout]

    def add_blocks(self, region: str, kind: int, need: int, rng: np.random.Generator) -> None:
        ex = pn.example_number_for_type(region, _TYPES[kind][0])
        seeds = (pn.national_significant_number(ex),) + _SEEDS[(region, kind)]
        blocks, capacity, attempts = [], 0, 0
        # At least a handful of blocks, so numbers do not all share one prefix.
        while (capacity < need or len(blocks) < 8) and attempts < 3000:
            attempts += 1
            seed_nsn = seeds[attempts % len(seeds)]
            free = 4 if region == "US" or len(seed_nsn) < 9 else 5 if len(seed_nsn) == 9 else 6
            head = list(seed_nsn[: len(seed_nsn) - free])
            # The seeds themselves first, then variations of everything but the leading digit(s).
            if attempts > len(seeds):
                for i in range(0 if region == "US" else 2, len(head)):
                    head[i] = str(rng.integers(2 if region == "US" and i in (0, 3) else 0, 10))
            prefix = "".join(head)
            # A prefix serves one block only, so a mobile never equals someone's landline.
            taken = [b for k in (MOBILE, LANDLINE) for b in self.blocks.get((region, k), [])] + blocks
            if any(b[0].startswith(prefix) or prefix.startswith(b[0]) for b in taken):
                continue
            tails = [f"{x:0{free}d}" for x in rng.integers(0, 10**free, 12)] + ["0" * free, "9" * free]
            ok = True
            for tail in tails:
                num = pn.parse(prefix + tail, region) if region != "US" else pn.parse("+1" + prefix + tail)
                if not pn.is_valid_number(num) or pn.number_type(num) not in _TYPES[kind]:
                    ok = False
                    break
            if ok:
                layout = self._layout_id(_layouts(region, prefix + tails[0], kind))
                blocks.append((prefix, free, layout))
                capacity += 10**free
        if capacity < need:
            raise RuntimeError(f"only {capacity} valid {region} numbers of kind {kind} found, {need} needed")
        self.blocks[(region, kind)] = blocks

    def draw(self, region: str, kind: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n distinct numbers (national significant numbers) and their layout ids."""
        blocks = self.blocks[(region, kind)]
        sizes = np.array([10 ** b[1] for b in blocks], dtype=np.int64)
        bounds = np.cumsum(sizes)
        picks = np.sort(rng.choice(int(bounds[-1]), size=n, replace=False))
        which = np.searchsorted(bounds, picks, side="right")
        offset = picks - np.concatenate(([0], bounds[:-1]))[which]
        nsn = np.empty(n, dtype=object)
        layout = np.empty(n, dtype=np.int32)
        for b, (prefix, free, lid) in enumerate(blocks):
            m = which == b
            if m.any():
                nsn[m] = [prefix + str(x).zfill(free) for x in offset[m].tolist()]
                layout[m] = lid
        perm = rng.permutation(n)
        return nsn[perm], layout[perm]

    def format(self, nsn: np.ndarray, layout: np.ndarray, fmt: np.ndarray) -> np.ndarray:
        """Write each number in its chosen format; rows with a None number stay None."""
        out = np.full(len(nsn), None, dtype=object)
        has = np.array([x is not None for x in nsn], dtype=bool)
        idx_all = np.flatnonzero(has)
        if len(idx_all) == 0:
            return out
        key = layout[idx_all].astype(np.int64) * len(FORMATS) + fmt[idx_all]
        order = np.argsort(key, kind="stable")
        keys, starts = np.unique(key[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        for k, s, e in zip(keys.tolist(), starts.tolist(), ends.tolist()):
            rows = idx_all[order[s:e]]
            segs = self.layouts[k // len(FORMATS)][k % len(FORMATS)]
            src = pd.Series(nsn[rows], dtype=object)
            acc = pd.Series([""] * len(rows), dtype=object)
            for seg in segs:
                acc = acc + (seg if isinstance(seg, str) else src.str.slice(seg[0], seg[1]))
            out[rows] = acc.to_numpy(dtype=object)
        return out


def build_phonebook(need: dict[str, int], rng: np.random.Generator) -> PhoneBook:
    """Blocks with room for at least twice the numbers each country needs."""
    book = PhoneBook()
    for region, n in need.items():
        for kind in (MOBILE, LANDLINE):
            book.add_blocks(region, kind, max(2 * n, 20_000), rng)
    return book
