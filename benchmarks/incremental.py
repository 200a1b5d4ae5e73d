"""Incremental run: one new app-events file on top of a loaded warehouse, timed per step.

    python benchmarks/incremental.py --workdir DIR [--persons 52000] [--events 300] [--pos-day] [--settle]

1. When DIR holds no loaded warehouse yet, `benchmarks/scale.py --workdir DIR --persons N --skip-bare` loads
   it (a first, full run: training included).
2. A new app-events file `events_<date>T23.jsonl` of `--events` events is written into the landing folder:
   events of the sample's own files with new message ids (page and screen views, identify events of known
   users, a tenth of those identifies with a changed email: changed records), plus identifies of new users
   (new records), the way the app schedule delivers one every 15 minutes.
   With `--pos-day`, one store's next POS day too (its latest signups as new cards, its transactions as
   new receipts a day later).
3. `benchmarks/scale.py --keep-warehouse --skip-bare` runs the whole graph again on that warehouse and
   prints seconds per step; then once more with nothing new. The summary gives per run the seconds from
   the run's start to the updated golden table, per stage, and what each incremental stage touched
   (records standardised, scored, clustered; golden rows rebuilt; rows validated).
Nothing is asserted; results go to docs/benchmarks.md.
"""

import argparse
import gzip
import json
import random
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb

HERE = Path(__file__).parent


def _events(folder: Path) -> list[dict]:
    out = []
    for path in sorted(folder.glob("events_*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("type") in ("identify", "page", "screen", "track"):
                    out.append(event)
    return out


def write_new_file(landing: Path, n_events: int, seed: int) -> tuple[Path, dict]:
    rng = random.Random(seed)
    folder = landing / "app_events"
    pool = _events(folder)
    identifies = [e for e in pool if e["type"] == "identify" and e.get("userId")]
    import datetime as dt

    day = max(p.name[7:17] for p in folder.glob("events_*"))
    if (folder / f"events_{day}T23.jsonl").exists():  # delivered by an earlier run of this benchmark: the next day
        day = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    stamp = f"{day}T23"
    chosen, changed, new_users = [], 0, 0
    for i in range(n_events):
        if i % 10 == 0 and identifies:  # a known user changes an email
            event = json.loads(json.dumps(rng.choice(identifies)))
            traits = event.setdefault("traits", {})
            traits["email"] = f"changed.{uuid.UUID(int=rng.getrandbits(128)).hex[:10]}@example.org"
            changed += 1
        elif i % 10 == 5:  # a new user signs up in the app
            event = {"type": "identify", "userId": f"new-{seed}-{i}", "anonymousId": str(uuid.UUID(int=rng.getrandbits(128))),
                     "traits": {"firstName": rng.choice(["Maren", "Jasper", "Ilka", "Tarek", "Wiebke"]),
                                "lastName": rng.choice(["Ostendorf", "Brinkmann", "Quast", "Heller", "Lindqvist"]),
                                "email": f"user{seed}.{i}@example.net"},
                     "context": {"device": {"type": "ios"}}}
            new_users += 1
        else:
            event = json.loads(json.dumps(rng.choice(pool)))
        event["messageId"] = str(uuid.UUID(int=rng.getrandbits(128)))
        event["timestamp"] = f"{stamp}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.000Z"
        chosen.append(event)
    path = folder / f"events_{stamp}.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in chosen), encoding="utf-8")
    return path, {"events": len(chosen), "identifies_with_changed_email": changed, "new_users": new_users}


def write_pos_day(landing: Path, seed: int) -> dict:
    """One store's next day: its latest loyalty signups (as new cards) and transactions (new receipts; the
    new cards' purchases and known cards' purchases), dated a day later."""
    import csv
    import datetime as dt

    folder = landing / "pos"
    latest = max(p.name.rsplit("_", 1)[1][:10] for p in folder.glob("transactions_*.csv"))
    sales = sorted(folder.glob(f"transactions_*_{latest}.csv"))
    random.Random(seed).shuffle(sales)
    source = sales[0]
    store = source.name.split("_")[1]
    day = (dt.date.fromisoformat(latest) + dt.timedelta(days=1)).isoformat()

    def shifted(value: str) -> str:
        return value.replace(latest, day) if value else value

    made = {"store": store, "day": day, "signups": 0, "transaction_lines": 0}
    renamed: dict[str, str] = {}

    def rewrite(src: Path, dst: Path, edit) -> int:
        """Each well-formed row edited (by column name); a malformed row (the sample has some on purpose)
        is copied as it is, so the quarantine sees it again."""
        with open(src, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:]
        col = {name: i for i, name in enumerate(header)}
        for row in body:
            if len(row) == len(header):
                edit(row, col)
        with open(dst, "w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([header, *body])
        return len(body)

    def new_card(row, col):
        card = row[col["card_no"]]
        renamed[card] = f"{card}N{seed}"
        row[col["card_no"]] = renamed[card]
        row[col["signed_up_at"]] = shifted(row[col["signed_up_at"]])

    def new_receipt(row, col):
        row[col["receipt_id"]] = f"{row[col['receipt_id']]}N{seed}"
        row[col["card_no"]] = renamed.get(row[col["card_no"]], row[col["card_no"]])
        row[col["sold_at"]] = shifted(row[col["sold_at"]])

    signups = folder / f"loyalty_signups_{store}_{latest}.csv"
    if signups.exists():
        made["signups"] = rewrite(signups, folder / f"loyalty_signups_{store}_{day}.csv", new_card)
    made["transaction_lines"] = rewrite(source, folder / f"transactions_{store}_{day}.csv", new_receipt)
    return made


def _touched(wh: Path) -> dict:
    """What the last run did, stage by stage, from the state tables the incremental steps keep."""
    def state(con, table: str) -> dict:
        try:
            return dict(con.execute(f"SELECT key, value FROM {table}").fetchall())
        except duckdb.Error:
            return {}

    with duckdb.connect(str(wh), read_only=True) as con:
        staging, scoring = state(con, "meta.staging_state"), state(con, "identity.scoring_state")
        golden = state(con, "meta.golden_state")
        try:
            quality = con.execute("SELECT sum(rows_validated), sum(rows_total) FROM meta.quality_state").fetchall()[0]
        except duckdb.Error:
            quality = (None, None)
    return {
        "staging": f"{staging.get('last_mode')}: {staging.get('last_standardised')} records standardised, "
                   f"{staging.get('last_removed')} removed",
        "identity scoring": f"{scoring.get('last_mode')}: {scoring.get('last_new_records')} records scored",
        "clustering": f"{scoring.get('last_components_clustered')} of {scoring.get('last_components')} components, "
                      f"{scoring.get('last_records_clustered')} records",
        "golden": f"{golden.get('last_mode')}: {golden.get('last_rebuilt')} customers rebuilt, "
                  f"{golden.get('last_removed')} removed, {golden.get('last_kept')} kept",
        "quality (GX)": f"{quality[0]} of {quality[1]} rows validated",
    }


def _run(scale: list[str], work: Path, label: str) -> dict:
    figures = work / f"incremental_{label}.json"
    subprocess.run(scale + ["--keep-warehouse", "--json", str(figures)], check=True)
    run = json.loads(figures.read_text())
    to_golden = run.get("to_golden_seconds")  # None: the golden step did not run (nothing new)
    return {"wall": run["wall_seconds"], "to_golden": to_golden, "stages": run["stages"], "gate": run.get("gate"),
            "touched": _touched(work / "warehouse.duckdb")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--persons", type=int, default=52_000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pos-day", action="store_true", help="also deliver one store's next POS day")
    parser.add_argument("--settle", action="store_true",
                        help="first a run with nothing new (after a code change that adds state tables)")
    args = parser.parse_args()
    work = Path(args.workdir)
    wh = work / "warehouse.duckdb"
    scale = [sys.executable, str(HERE / "scale.py"), "--workdir", str(work), "--persons", str(args.persons), "--skip-bare"]
    if not wh.exists():
        print("loading the warehouse first (full run) ...", flush=True)
        subprocess.run(scale, check=True)
    runs = {}
    if args.settle:
        print("\na run with nothing new first (state tables of newer code are written) ...", flush=True)
        runs["settle (nothing new)"] = _run(scale, work, "settle")
    path, made = write_new_file(work / "landing", args.events, args.seed)
    print(f"\nnew file {path.name}: {made}", flush=True)
    if args.pos_day:
        print(f"new POS day: {write_pos_day(work / 'landing', args.seed)}", flush=True)
    runs["new files"] = _run(scale, work, "new")
    runs["nothing new"] = _run(scale, work, "again")
    print("\nIncremental runs (seconds; 'to golden' = run start to the end of golden_customers)")
    stages = [st for st in ("sources", "quality", "staging", "identity", "gold", "marts", "other")]
    print(f"  {'run':22s} {'to golden':>9s} {'whole':>8s} " + " ".join(f"{st:>8s}" for st in stages))
    for label, r in runs.items():
        to_golden = f"{r['to_golden']:.1f}" if r["to_golden"] is not None else "-"
        print(f"  {label:22s} {to_golden:>9s} {r['wall']:8.1f} "
              + " ".join(f"{r['stages'].get(st, {}).get('seconds', 0):8.1f}" for st in stages))
    for label, r in runs.items():
        print(f"\n  {label}: {r['gate']}")
        for stage, what in r["touched"].items():
            print(f"    {stage:18s} {what}")
    print(f"\ntargets: new files to golden <= 20 s, nothing new <= 5 s (whole run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
