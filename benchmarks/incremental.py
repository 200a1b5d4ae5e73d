"""Incremental run: one new app-events file on top of a loaded warehouse, timed per step.

    python benchmarks/incremental.py --workdir DIR [--persons 52000] [--events 300]

1. When DIR holds no loaded warehouse yet, `benchmarks/scale.py --workdir DIR --persons N --skip-bare` loads
   it (a first, full run: training included).
2. A new app-events file `events_<date>T23.jsonl` of `--events` events is written into the landing folder:
   events of the sample's own files with new message ids (page and screen views, identify events of known
   users, a tenth of those identifies with a changed email: changed records), plus identifies of new users
   (new records), the way the app schedule delivers one every 15 minutes.
3. `benchmarks/scale.py --keep-warehouse --skip-bare` runs the whole graph again on that warehouse and
   prints seconds per step; the staging and identity figures say how many records were standardised and
   scored (the rest was reused).
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
    day = max(p.name[7:17] for p in folder.glob("events_*"))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--persons", type=int, default=52_000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    work = Path(args.workdir)
    wh = work / "warehouse.duckdb"
    scale = [sys.executable, str(HERE / "scale.py"), "--workdir", str(work), "--persons", str(args.persons), "--skip-bare"]
    if not wh.exists():
        print("loading the warehouse first (full run) ...", flush=True)
        subprocess.run(scale, check=True)
    path, made = write_new_file(work / "landing", args.events, args.seed)
    print(f"\nnew file {path.name}: {made}", flush=True)
    subprocess.run(scale + ["--keep-warehouse"], check=True)
    with duckdb.connect(str(wh), read_only=True) as con:
        staging = dict(con.execute("SELECT key, value FROM meta.staging_state").fetchall())
        scoring = dict(con.execute("SELECT key, value FROM identity.scoring_state").fetchall())
    print(f"\nstaging: {staging.get('last_mode')}, {staging.get('last_standardised')} records standardised, "
          f"{staging.get('last_removed')} removed")
    print(f"identity scoring: {scoring.get('last_mode')}, {scoring.get('last_new_records')} records scored")
    return 0


if __name__ == "__main__":
    sys.exit(main())
