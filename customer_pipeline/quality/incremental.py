"""Validate only what changed: GX checks the rows added or changed since a table's last validation.

A row is known by a hash of its key (`Suite.row_key`) and of every value a row rule reads. The outcome of
each row rule on each validated row is kept in `meta.quality_rows` (one bit per rule: in scope, counted,
unexpected), so a check's figures are always over the whole table: the rows validated now plus every
row validated before and still there. A row that failed keeps failing until it is removed or changed (a
run that brings no new rows does not pass by seeing nothing). Uniqueness and the column set are
whole-table invariants computed in SQL on every run. Everything is validated again on a full run, when
the suite or this code changed, and on a table's first validation. docs/quality.md, "Incremental
validation".
"""

import datetime as dt
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from customer_pipeline.quality import gx_runner, thresholds
from customer_pipeline.quality.suites import Rule, Suite
from customer_pipeline.warehouse import table_exists, transaction

LEDGER = "meta.quality_rows"
STATE = "meta.quality_state"
COLUMN_SET = "ExpectTableColumnsToMatchSet"
UNIQUE = ("ExpectColumnValuesToBeUnique", "ExpectCompoundColumnsToBeUnique")
NOT_NULL = "ExpectColumnValuesToNotBeNull"
MAX_ROW_RULES = 64  # one bit of a UBIGINT each

LEDGER_DDL = f"""CREATE TABLE IF NOT EXISTS {LEDGER} (
    suite VARCHAR, row_hash UBIGINT, in_scope UBIGINT, counted UBIGINT, failed UBIGINT)"""
# a raw table's signature at its last recorded validation and that validation's outcomes, reused while the
# table is unchanged (an erasure empties it: the examples are values of the table)
KEPT = "meta.quality_unchanged"
KEPT_DDL = f"CREATE TABLE IF NOT EXISTS {KEPT} (suite VARCHAR PRIMARY KEY, signature VARCHAR, outcomes VARCHAR)"
STATE_DDL = f"""CREATE TABLE IF NOT EXISTS {STATE} (
    suite VARCHAR PRIMARY KEY, suite_version VARCHAR, validated_at TIMESTAMP, rows_total BIGINT,
    rows_validated BIGINT, mode VARCHAR, reason VARCHAR)"""


@dataclass(frozen=True)
class TableValidation:
    """One suite over one table: outcomes over the whole table, and how many rows GX saw this time."""

    outcomes: list[gx_runner.Outcome]  # one per rule, in suite order
    rows_total: int
    rows_validated: int
    full: bool  # every row validated (first validation, full run, suite or code changed)
    reason: str  # why every row was validated ("" when only new rows were)
    recorded: bool = True  # outcomes kept in the ledger (False: an error; the rows are validated again)
    unchanged: bool = False  # a raw table unchanged since its last validation: that validation's outcomes

    def summary(self) -> str:
        if self.unchanged:
            return f"table unchanged since its last validation ({self.rows_total:,} rows): its outcomes, no row read"
        if self.full:
            return f"validated all {self.rows_validated:,} rows ({self.reason})"
        return f"validated {self.rows_validated:,} new rows of {self.rows_total:,}"


def row_rules(suite: Suite) -> list[Rule]:
    """The rules GX evaluates row by row (everything but the column set and uniqueness)."""
    rules = [r for r in suite.rules if r.expectation != COLUMN_SET and r.expectation not in UNIQUE]
    if len(rules) > MAX_ROW_RULES:
        raise ValueError(f"suite {suite.name} has {len(rules)} row rules; at most {MAX_ROW_RULES} are supported")
    return rules


def _row_columns(suite: Suite) -> list[str]:
    """Key columns, then every column a row rule reads: what a row's hash covers."""
    part = Suite(suite.name, suite.table, tuple(row_rules(suite)))
    return list(dict.fromkeys([*suite.row_key, *gx_runner.referenced_columns(part)]))


def suite_version(suite: Suite) -> str:
    """Changes when the suite's rules, its row key, GX or the validation code change."""
    # GX's version from its package metadata: importing GX costs seconds, and a run with no new row needs none
    digest = hashlib.sha256(repr((suite.table, suite.row_key, suite.rules)).encode())
    digest.update(importlib.metadata.version("great_expectations").encode())
    for path in (Path(gx_runner.__file__), Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def validate_table(con: duckdb.DuckDBPyConnection, suite: Suite, *, full: bool = False,
                   now: dt.datetime | None = None) -> TableValidation:
    """Validate the new and changed rows of `suite.table` and give every rule's outcome over the whole table.

    `con` must be writable (the ledger is updated in one transaction). When the table or a column the
    rules read is missing, the whole table is validated as it is and nothing is recorded."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if not table_exists(con, suite.table):
        return _unrecorded(pd.DataFrame(), suite, "table missing")
    names = [r[0] for r in con.execute(f"DESCRIBE {suite.table}").fetchall()]
    columns = _row_columns(suite)
    missing = [c for c in columns if c not in names]
    if missing:
        return _unrecorded(_whole_frame(con, suite, names, columns), suite, f"columns missing: {', '.join(missing)}")

    con.execute(LEDGER_DDL)
    con.execute(STATE_DDL)
    version = suite_version(suite)
    state = con.execute(f"SELECT suite_version FROM {STATE} WHERE suite = ?", [suite.name]).fetchall()
    reason = ("full run asked for" if full else "first validation" if not state
              else "suite or validation code changed" if state[0][0] != version else "")
    con.execute(KEPT_DDL)
    signature = _signature(con, suite, names, version)
    if signature and not reason:
        kept = con.execute(f"SELECT signature, outcomes FROM {KEPT} WHERE suite = ?", [suite.name]).fetchall()
        if kept and kept[0][0] == signature:
            outcomes = [gx_runner.Outcome(**o) for o in json.loads(kept[0][1])]
            rows_total = con.execute(f"SELECT count(*) FROM {suite.table}").fetchall()[0][0]
            con.execute(f"UPDATE {STATE} SET validated_at = ?, rows_validated = 0, mode = 'new rows', reason = '' "
                        "WHERE suite = ?", [now, suite.name])
            return TableValidation(outcomes, rows_total, 0, False, "", unchanged=True)
    rules = row_rules(suite)
    row_hash = f"hash({', '.join(_q(c) for c in columns)})"
    ledger = f"(SELECT * FROM {LEDGER} WHERE suite = {_lit(suite.name)}{' AND false' if reason else ''})"
    # every row's hash, once, with its ledger outcome where the ledger knows it (one join); the rows it does
    # not know are read back by rowid
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _q_current AS
        SELECT c.rid, c.row_hash, l.row_hash IS NOT NULL AS known, l.in_scope, l.counted, l.failed
        FROM (SELECT rowid AS rid, {row_hash} AS row_hash FROM {suite.table}) AS c LEFT JOIN {ledger} AS l USING (row_hash)""")
    try:
        new = gx_runner.read_frame(con, f"""SELECT {row_hash} AS _row_hash, {', '.join(_q(c) for c in columns)}
            FROM {suite.table} WHERE rowid IN (SELECT rid FROM _q_current WHERE NOT known)""")
        hashes = new.pop("_row_hash").to_numpy(dtype=np.uint64)
        results = gx_runner.validate_rows(new, Suite(suite.name, suite.table, tuple(rules))) if len(new) else []
        bits = _bits(new, rules, results, hashes)
        errors = any(o.error for o, _ in results)
        con.register("_q_new", bits)
        counts = _whole_table_counts(con, len(rules))
        rows_total = counts.pop("rows")
        if not errors:
            with transaction(con):
                if reason:
                    con.execute(f"DELETE FROM {LEDGER} WHERE suite = ?", [suite.name])
                elif _stale_rows_likely(con, suite.name, rows_total):
                    con.execute(f"DELETE FROM {LEDGER} WHERE suite = ? AND row_hash NOT IN "
                                "(SELECT row_hash FROM _q_current)", [suite.name])
                con.execute(f"INSERT INTO {LEDGER} SELECT ?, row_hash, in_scope, counted, failed FROM _q_new",
                            [suite.name])
                con.execute(f"INSERT OR REPLACE INTO {STATE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [suite.name, version, now, rows_total, len(new), "full" if reason else "new rows", reason])
        new_outcomes = {o.name: o for o, _ in results}
        outcomes = []
        for rule in suite.rules:
            if rule.expectation == COLUMN_SET:
                outcomes.append(_column_set(rule, names))
            elif rule.expectation in UNIQUE:
                outcomes.append(_uniqueness(con, suite.table, rule, rows_total))
            else:
                outcomes.append(_row_outcome(con, suite, rule, [r.name for r in rules].index(rule.name), counts,
                                             new_outcomes.get(rule.name), ledger, row_hash))
    finally:
        con.execute("DROP TABLE IF EXISTS _q_current")
        try:
            con.unregister("_q_new")
        except Exception:  # noqa: BLE001 (not registered when reading the new rows failed)
            pass
    if signature and not errors:
        plain = [o.__dict__ for o in outcomes]
        con.execute(f"INSERT OR REPLACE INTO {KEPT} VALUES (?, ?, ?)",
                    [suite.name, signature, json.dumps(plain, default=str)])
    return TableValidation(outcomes, rows_total, len(new), bool(reason), reason, recorded=not errors)


def _signature(con: duckdb.DuckDBPyConnection, suite: Suite, names: list[str], version: str) -> str | None:
    """What says a raw table is as it was, without reading it: its row count and the load logs every raw
    writer records in (file versions, shop watermarks, erasures; customer_pipeline/run_gate.py). None for
    other tables (staging and gold are rebuilt by code that keeps no such log) and for a warehouse whose raw
    layer was not written by the loaders (no `meta.loaded_files`)."""
    if not suite.table.startswith("raw.") or not table_exists(con, "meta.loaded_files"):
        return None
    from customer_pipeline.run_gate import raw_signature

    return raw_signature(con, [suite.table], version, names)


def _unrecorded(frame: pd.DataFrame, suite: Suite, reason: str) -> TableValidation:
    """The old way, for a table that cannot be tracked row by row: GX on the whole frame, nothing kept."""
    return TableValidation(gx_runner.validate(frame, suite), len(frame), len(frame), True, reason, recorded=False)


def _whole_frame(con, suite: Suite, names: list[str], columns: list[str]) -> pd.DataFrame:
    """The present columns with their values, every other table column by name only (the column-set rule)."""
    wanted = [c for c in names if c in set(columns)]
    frame = gx_runner.read_frame(con, f"SELECT {', '.join(_q(c) for c in wanted)} FROM {suite.table}") if wanted else None
    n = len(frame) if frame is not None else con.execute(f"SELECT count(*) FROM {suite.table}").fetchall()[0][0]
    return pd.DataFrame({c: frame[c] if c in wanted else pd.Series([None] * n, dtype=object) for c in names})


def _present(s: pd.Series) -> np.ndarray:
    """What GX's row condition `is_not_null() & (!= "")` keeps."""
    return (s.notna() & (s.astype(object) != "")).to_numpy(dtype=bool)


def _bits(frame: pd.DataFrame, rules: list[Rule], results, hashes: np.ndarray) -> pd.DataFrame:
    """Per new row: which rules it was in scope of, counted by (not null) and unexpected for, as bit masks."""
    n = len(frame)
    in_scope, counted, failed = (np.zeros(n, dtype=np.uint64) for _ in range(3))
    for i, rule in enumerate(rules):
        bit = np.uint64(1) << np.uint64(i)
        scope = _present(frame[rule.where_present]) if rule.where_present else np.ones(n, dtype=bool)
        column = rule.kwargs.get("column")
        count = scope if rule.expectation == NOT_NULL or column is None else scope & frame[column].notna().to_numpy()
        bad = np.zeros(n, dtype=bool)
        if results:
            bad[results[i][1]] = True
        in_scope |= np.where(scope, bit, np.uint64(0))
        counted |= np.where(count, bit, np.uint64(0))
        failed |= np.where(bad, bit, np.uint64(0))
    bits = pd.DataFrame({"row_hash": hashes, "in_scope": in_scope, "counted": counted, "failed": failed})
    return bits.drop_duplicates("row_hash")  # the same key and values: the same outcome


def _whole_table_counts(con, n_rules: int) -> dict:
    """Per rule, over every row of the table now (`_q_current`): rows in scope, counted and unexpected, from the
    ledger's outcome of a known row and this run's (`_q_new`) of a new one."""
    sums = ", ".join(f"sum((b.{m} >> {i}) & 1)::BIGINT AS {m}_{i}"
                     for i in range(n_rules) for m in ("in_scope", "counted", "failed"))
    row = con.execute(f"""
        SELECT (SELECT count(*) FROM _q_current) AS rows{', ' + sums if sums else ''}, count(*) AS matched FROM (
            SELECT in_scope, counted, failed FROM _q_current WHERE known
            UNION ALL SELECT n.in_scope, n.counted, n.failed FROM _q_current AS c JOIN _q_new AS n USING (row_hash)
            WHERE NOT c.known) AS b""").df()
    counts = {k: 0 if pd.isna(v) else int(v) for k, v in row.iloc[0].items()}  # sums over no rows are NULL
    if counts.pop("matched") != counts["rows"]:
        raise RuntimeError("quality ledger: a row of the table has no outcome (this is a bug)")
    return counts


# A suite's ledger rows of removed or changed rows count for nothing (figures join the table's rows) and pruning
# them joins the whole ledger: they are pruned once the ledger holds more rows than the table by this share of it
# (or STALE_SLACK rows), so it stays within that of the table's size.
STALE_SHARE, STALE_SLACK = 0.05, 10_000


def _stale_rows_likely(con, suite: str, rows_total: int) -> bool:
    held = con.execute(f"SELECT count(*) FROM {LEDGER} WHERE suite = ?", [suite]).fetchall()[0][0]
    return held - rows_total > max(STALE_SLACK, STALE_SHARE * rows_total)


def _success(counted: int, unexpected: int, mostly: float) -> bool:
    """GX's rule: vacuously true on nothing counted, else the expected share must reach `mostly`."""
    return counted == 0 or (counted - unexpected) / counted >= mostly


def _row_outcome(con, suite: Suite, rule: Rule, i: int, counts: dict,
                 new: gx_runner.Outcome | None, ledger: str, row_hash: str) -> gx_runner.Outcome:
    scope, counted, failed = (counts[f"{m}_{i}"] for m in ("in_scope", "counted", "failed"))
    success = _success(counted, failed, float(rule.kwargs.get("mostly", 1.0)))
    if new is not None and new.error:
        return gx_runner.Outcome(rule.name, False, rule.blocking, element_count=scope, error=new.error)
    examples = new.examples if new is not None and new.examples else []
    if failed and not success and not examples:  # old failing rows: show what they hold
        column = rule.kwargs["column"]
        examples = [gx_runner.plain(v) for (v,) in con.execute(f"""
            SELECT c.v FROM (SELECT {row_hash} AS h, {_q(column)} AS v FROM {suite.table}) c
            JOIN {ledger} l ON l.row_hash = c.h WHERE (l.failed >> {i}) & 1 = 1
            GROUP BY c.v ORDER BY count(*) DESC, c.v NULLS FIRST LIMIT {thresholds.EXAMPLE_COUNT}""").fetchall()]
        examples = [gx_runner._short(v) for v in examples]
    return gx_runner.Outcome(
        rule.name, success, rule.blocking, unexpected_count=failed,
        unexpected_percent=100.0 * failed / counted if counted else None, element_count=scope, examples=examples)


def _column_set(rule: Rule, names: list[str]) -> gx_runner.Outcome:
    missing = [c for c in rule.kwargs["column_set"] if c not in names]
    return gx_runner.Outcome(rule.name, not missing, rule.blocking, observed_value=list(names),
                             examples=[f"missing: {c}" for c in missing][: thresholds.EXAMPLE_COUNT])


def _uniqueness(con, table: str, rule: Rule, rows_total: int) -> gx_runner.Outcome:
    """Rows whose value (or value combination) another row repeats, over the whole table, as GX counts them."""
    cols = list(rule.kwargs.get("column_list") or [rule.kwargs["column"]])
    quoted = ", ".join(_q(c) for c in cols)
    present = " AND ".join(f"{_q(c)} IS NOT NULL" for c in cols)
    repeated, counted = con.execute(f"""
        SELECT coalesce(sum(n) FILTER (WHERE n > 1), 0)::BIGINT, coalesce(sum(n), 0)::BIGINT
        FROM (SELECT count(*) AS n FROM {table} WHERE {present} GROUP BY {quoted})""").fetchall()[0]
    examples = []
    if repeated:
        rows = con.execute(f"""SELECT {quoted} FROM {table} WHERE {present} GROUP BY {quoted} HAVING count(*) > 1
            ORDER BY count(*) DESC, {quoted} LIMIT {thresholds.EXAMPLE_COUNT}""").fetchall()
        examples = [gx_runner._short(gx_runner.plain(r[0])) if len(cols) == 1 else gx_runner.plain(dict(zip(cols, r)))
                    for r in rows]
    return gx_runner.Outcome(
        rule.name, _success(counted, repeated, float(rule.kwargs.get("mostly", 1.0))), rule.blocking,
        unexpected_count=int(repeated), unexpected_percent=100.0 * repeated / counted if counted else None,
        element_count=rows_total, examples=examples)
