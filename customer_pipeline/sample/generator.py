"""Generate all four sources plus the ground truth (which records are the same person, who lives with whom)."""

import csv
import datetime as dt
from pathlib import Path

import numpy as np

from customer_pipeline.sample.app_events import write_app_events
from customer_pipeline.sample.call_center import write_call_center
from customer_pipeline.sample.catalog import build_catalog
from customer_pipeline.sample.persons import Persons, make_persons
from customer_pipeline.sample.pools import build_pools
from customer_pipeline.sample.pos import write_loyalty, write_transactions
from customer_pipeline.sample.shop import write_shop
from customer_pipeline.sample.suppression import write_suppression
from customer_pipeline.sample.timeline import Timeline

TRUTH_HEADER = ("source", "source_key", "person_id")
HOUSEHOLDS_HEADER = ("person_id", "household_id", "has_street_address")


def generate(out_dir: Path, persons: int = 2000, seed: int = 42, as_of: dt.date | None = None) -> dict:
    """Write pos/, shop.sqlite, call_center/, app_events/, suppression/, truth.csv, households.csv and
    suppression_truth.csv under out_dir;
    return counts.

    The output depends only on (persons, seed, as_of): the same triple gives the same bytes.
    Records run up to 18:00 on `as_of`; the default is yesterday (UTC), so that no record is dated
    later than the moment the sample is loaded (a freshness table would show negative ages).
    """
    out_dir = Path(out_dir)
    as_of = as_of or dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    out_dir.mkdir(parents=True, exist_ok=True)
    tl = Timeline(as_of)
    # One independent stream per part, so changing one part does not reshuffle the others.
    # (spawn(n) gives the same first children for any n: a new part appended keeps the others' bytes)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    pools = build_pools(seed, streams[0])
    P, book = make_persons(persons, pools, tl, streams[1])
    catalog = build_catalog(streams[2])

    loyalty, pos_truth, cards, (card_store, card_local) = write_loyalty(out_dir, P, book, tl, streams[3])
    transactions = write_transactions(out_dir, P, cards, card_store, card_local, catalog, tl, streams[3])
    shop, shop_truth, accounts = write_shop(out_dir / "shop.sqlite", P, book, catalog, tl, streams[4])
    calls, call_truth = write_call_center(out_dir, P, book, accounts, cards, tl, streams[5])
    app, app_truth = write_app_events(out_dir, P, book, accounts, catalog, tl, streams[6])
    registers = write_suppression(out_dir, P, book, tl, streams[7])

    truth = [pos_truth, *shop_truth, *call_truth, *app_truth]
    n_truth = _write_truth(out_dir / "truth.csv", truth)
    # Only the shop knows streets (every account has a billing address, every guest order a shipping
    # address); POS and app profiles carry a postcode and city, call-center contacts no address.
    street = np.isin(P.person_id, np.concatenate([t[2] for t in shop_truth]))
    households = _write_households(out_dir / "households.csv", P, street)
    return {
        "persons": persons,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "pos": {**loyalty, **transactions},
        "shop": shop,
        "call_center": calls,
        "app_events": app,
        "truth": {"rows": n_truth,
                  "persons": int(len(np.unique(np.concatenate([t[2] for t in truth])))),
                  "stale_persons": int(P.stale.sum())},
        "households": households,
        "suppression": registers,
    }


def _write_truth(path: Path, parts: list[tuple[str, np.ndarray, np.ndarray]]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(TRUTH_HEADER)
        for source, keys, pids in parts:
            w.writerows(zip([source] * len(keys), keys.tolist(), pids.tolist()))
            n += len(keys)
    return n


def _write_households(path: Path, P: Persons, street: np.ndarray) -> dict:
    """households.csv: every person's true household (household_id 1..n) and whether it is known by
    a street address; returns counts."""
    hid = P.household + 1
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HOUSEHOLDS_HEADER)
        w.writerows(zip(P.person_id.tolist(), hid.tolist(), np.where(street, "true", "false").tolist()))
    size = np.bincount(P.household)
    heads = P.head == np.arange(P.n)
    family = heads & (P.family_mobile != None)  # noqa: E711 - elementwise
    return {"households": len(size), "multi_person": int((size >= 2).sum()),
            "persons_in_multi_person": int(size[size >= 2].sum()),
            "family_mobile": int(family.sum()), "persons_with_street_address": int(street.sum())}
