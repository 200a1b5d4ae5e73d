"""One erasure request, start to end: resolve the person, remove them everywhere, register them."""

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from customer_pipeline import warehouse
from customer_pipeline.erasure import artifacts, register
from customer_pipeline.erasure.identifiers import Person
from customer_pipeline.erasure.remove import remove_person
from customer_pipeline.erasure.resolve import Request, resolve


@dataclass
class ErasureReport:
    request_id: str
    customers: int
    records: int
    identifiers: int
    removed: dict[str, int] = field(default_factory=dict)
    artefacts_deleted: list[str] = field(default_factory=list)
    artefacts_redrawn: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"erasure {self.request_id}: {self.customers} customer(s), {self.records} source record(s), "
               f"{self.identifiers} identifier hash(es) in the register"]
        out += [f"  {table:48s} {n:7d}" for table, n in self.removed.items() if n]
        if self.artefacts_deleted:
            out.append(f"  artefacts deleted: {len(self.artefacts_deleted)}, redrawn without the person: "
                       f"{len(self.artefacts_redrawn)}")
        out.append("  seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in self.seconds.items()))
        return out


def _register(con, person: Person, request_id: str) -> int:
    hasher = register.Hasher(register.secret(con))
    known = {h for (h,) in con.execute(f"SELECT identifier_hash FROM {register.REGISTER}").fetchall()}
    rows = []
    for kind, value, region in person.register_entries():
        digest = hasher(kind, value)
        if digest not in known:
            known.add(digest)
            rows.append((digest, kind, region, request_id, register.now()))
    if rows:
        con.executemany(f"INSERT INTO {register.REGISTER} VALUES (?, ?, ?, ?, ?)", rows)
    return len(person.register_entries())


def erase(warehouse_path: str | Path, request: Request, *, pg_url: str | None = None,
          request_id: str | None = None, redraw_charts: bool = True) -> ErasureReport:
    """Remove one person from every layer (DuckDB and, with `pg_url`, PostgreSQL's gold) and register them.

    DuckDB's changes and PostgreSQL's are one unit: PostgreSQL commits first, inside the DuckDB
    transaction, so a failure there leaves both as they were and the request can simply be repeated."""
    warehouse_path = Path(warehouse_path)
    request_id = request_id or uuid.uuid4().hex
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with warehouse.connect(warehouse_path) as con:
        register.ensure(con)
        with warehouse.transaction(con):
            person = resolve(con, request)
            seconds["resolve"] = time.perf_counter() - started
            removed, households = remove_person(con, person, request_id)
            identifiers = _register(con, person, request_id)
            seconds["warehouse"] = time.perf_counter() - started - seconds["resolve"]
            if pg_url:
                t = time.perf_counter()
                from customer_pipeline.erasure.postgres import erase_published

                removed.update(erase_published(pg_url, person, households))
                seconds["postgres"] = time.perf_counter() - t
            con.execute(f"INSERT INTO {register.REQUESTS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [
                request_id, request.kind(), len(person.customers), len(person.records), identifiers,
                json.dumps(removed), register.now(), time.perf_counter() - started])
        report = ErasureReport(request_id, len(person.customers), len(person.records), identifiers, removed)
        t = time.perf_counter()
        report.artefacts_deleted = artifacts.remove_record_charts(warehouse_path)
        # redrawn where charts were drawn before (also when an earlier erasure only deleted the dashboards)
        if redraw_charts and (report.artefacts_deleted or (artifacts.artifacts_dir(warehouse_path) / "identity").is_dir()):
            report.artefacts_redrawn = artifacts.redraw_charts(con, warehouse_path)
        seconds["artefacts"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - started
    report.seconds = {k: round(v, 3) for k, v in seconds.items()}
    return report
