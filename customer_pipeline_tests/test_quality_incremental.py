"""Issue 13: the GX suites validate the rows that changed; failures are remembered; figures are whole-table."""

import dagster as dg
import duckdb
import pandas as pd
import pytest

from customer_pipeline import warehouse as wh
from customer_pipeline.defs.quality.gx_factory import FULL_REFRESH_TAG, build_gx_checks
from customer_pipeline.defs.resources import WarehouseResource
from customer_pipeline.quality import gx_runner, incremental, suites
from customer_pipeline.quality.suites import Suite

KEY = dg.AssetKey(["raw", "things"])
THINGS = Suite(
    name="raw_things",
    table="raw.things",
    row_key=("_location", "_record_ref"),
    rules=(
        suites.required_columns(("id", "email", "kind")),
        suites.not_null("id"),
        suites.unique("id"),
        suites.in_set("kind", ("a", "b")),
        suites.email_shape("email"),  # a warning with a share (mostly 0.9)
        suites.share_true("ok", 0.5, name="ok_share", where_present="email", what="are ok"),
    ),
)


def _rows(location: str, n: int, start: int = 0, **overrides) -> pd.DataFrame:
    df = pd.DataFrame({
        "id": [str(start + i) for i in range(n)],
        "email": [f"p{start + i}@example.org" for i in range(n)],
        "kind": "a",
        "ok": True,
        "_location": location,
        "_record_ref": [str(i + 2) for i in range(n)],
    })
    return df.assign(**overrides)


@pytest.fixture
def con(tmp_path):
    with wh.connect(tmp_path / "w.duckdb") as c:
        yield c


def _put(con, df: pd.DataFrame) -> None:
    con.register("_df", df)
    con.execute("CREATE TABLE IF NOT EXISTS raw.things AS SELECT * FROM _df WHERE false")
    con.execute("INSERT INTO raw.things SELECT * FROM _df")
    con.unregister("_df")


def _by_name(v: incremental.TableValidation) -> dict[str, gx_runner.Outcome]:
    return {o.name: o for o in v.outcomes}


def _same_as_gx_on_everything(con, suite: Suite, v: incremental.TableValidation) -> None:
    whole = gx_runner.validate(gx_runner.read_frame(con, f"SELECT * FROM {suite.table}"), suite)
    for mine, ref in zip(v.outcomes, whole):
        assert (mine.name, mine.success, mine.unexpected_count, mine.element_count) == (
            ref.name, ref.success, ref.unexpected_count, ref.element_count), (mine, ref)
        if ref.unexpected_percent is not None:
            assert mine.unexpected_percent == pytest.approx(ref.unexpected_percent)


def test_a_new_file_validates_only_its_rows_and_figures_stay_whole_table(con):
    _put(con, _rows("f1.csv", 50))
    first = incremental.validate_table(con, THINGS)
    assert (first.full, first.reason, first.rows_validated) == (True, "first validation", 50)
    _put(con, _rows("f2.csv", 7, start=100, email=["bad"] * 3 + ["q@x.org"] * 4))
    second = incremental.validate_table(con, THINGS)
    assert (second.full, second.rows_validated, second.rows_total) == (False, 7, 57)
    assert second.summary() == "validated 7 new rows of 57"
    email = _by_name(second)["email_valid_share"]
    assert email.unexpected_count == 3 and email.element_count == 57 and email.success  # 3 of 57 < 10 %
    _same_as_gx_on_everything(con, THINGS, second)
    again = incremental.validate_table(con, THINGS)
    assert again.rows_validated == 0 and [o.success for o in again.outcomes] == [o.success for o in second.outcomes]


def test_failing_rows_stay_failing_until_fixed(con):
    _put(con, _rows("f1.csv", 20))
    _put(con, _rows("f2.csv", 2, start=100, kind="zz"))
    failed = _by_name(incremental.validate_table(con, THINGS))["kind_in_allowed_set"]
    assert not failed.success and failed.blocking and failed.unexpected_count == 2
    # no new rows: the check does not pass by seeing nothing, and still shows what failed
    again = incremental.validate_table(con, THINGS)
    assert again.rows_validated == 0
    still = _by_name(again)["kind_in_allowed_set"]
    assert not still.success and still.unexpected_count == 2 and still.examples == ["zz"]
    # another good file does not wash the failure out
    _put(con, _rows("f3.csv", 5, start=200))
    assert not _by_name(incremental.validate_table(con, THINGS))["kind_in_allowed_set"].success
    # the corrected file replaces the bad rows (as a corrected delivery does in raw): passing again
    con.execute("DELETE FROM raw.things WHERE _location = 'f2.csv'")
    _put(con, _rows("f2.csv", 2, start=100, kind="b"))
    fixed = incremental.validate_table(con, THINGS)
    assert fixed.rows_validated == 2 and _by_name(fixed)["kind_in_allowed_set"].success
    _same_as_gx_on_everything(con, THINGS, fixed)


def test_a_value_changed_in_place_is_validated_again(con):
    _put(con, _rows("f1.csv", 10))
    incremental.validate_table(con, THINGS)
    con.execute("UPDATE raw.things SET id = NULL WHERE _record_ref = '3'")  # e.g. an erasure nulling a value
    v = incremental.validate_table(con, THINGS)
    assert v.rows_validated == 1 and not _by_name(v)["id_not_null"].success


def test_outcomes_of_rows_gone_stay_out_of_the_figures_and_are_pruned_past_a_bound(con, monkeypatch):
    """Ledger rows of removed or changed rows count for nothing; once they exceed the slack they are deleted."""
    monkeypatch.setattr(incremental, "STALE_SLACK", 3)
    _put(con, _rows("f1.csv", 10, kind="c"))  # every row fails the code list
    incremental.validate_table(con, THINGS)
    held = lambda: con.execute(f"SELECT count(*) FROM {incremental.LEDGER} WHERE suite = 'raw_things'").fetchall()[0][0]
    con.execute("UPDATE raw.things SET kind = 'a' WHERE _record_ref IN ('2', '3', '4')")  # three rows fixed
    v = incremental.validate_table(con, THINGS)
    assert v.rows_validated == 3 and _by_name(v)["kind_in_allowed_set"].unexpected_count == 7
    assert held() == 13  # three stale outcomes kept: within the slack
    _same_as_gx_on_everything(con, THINGS, v)
    con.execute("DELETE FROM raw.things WHERE _record_ref IN ('5', '6')")  # two rows gone: five stale, over the slack
    v = incremental.validate_table(con, THINGS)
    assert v.rows_validated == 0 and _by_name(v)["kind_in_allowed_set"].unexpected_count == 5
    assert held() == 8
    _same_as_gx_on_everything(con, THINGS, v)


def test_duplicates_across_old_and_new_rows_are_found(con):
    _put(con, _rows("f1.csv", 10))
    incremental.validate_table(con, THINGS)
    _put(con, _rows("f2.csv", 1, start=3))  # id 3 again, in a new file
    unique = _by_name(incremental.validate_table(con, THINGS))["id_unique"]
    assert not unique.success and unique.unexpected_count == 2 and unique.examples == ["3"]


def test_full_run_or_changed_suite_validates_everything(con):
    _put(con, _rows("f1.csv", 30))
    incremental.validate_table(con, THINGS)
    assert incremental.validate_table(con, THINGS).rows_validated == 0
    full = incremental.validate_table(con, THINGS, full=True)
    assert (full.full, full.reason, full.rows_validated) == (True, "full run asked for", 30)
    stricter = Suite(THINGS.name, THINGS.table, (*THINGS.rules, suites.not_null("email")), THINGS.row_key)
    changed = incremental.validate_table(con, stricter)
    assert (changed.full, changed.reason, changed.rows_validated) == (True, "suite or validation code changed", 30)
    assert incremental.validate_table(con, stricter).rows_validated == 0


def test_an_error_is_not_recorded_so_the_rows_are_validated_again(con):
    _put(con, _rows("f1.csv", 5).drop(columns=["kind"]))
    v = incremental.validate_table(con, THINGS)
    assert not v.recorded and not _by_name(v)["required_columns_present"].success
    assert _by_name(v)["kind_in_allowed_set"].error
    assert not wh.table_exists(con, incremental.STATE)


def _checks_run(path, tags=None) -> dict[str, dg.AssetCheckEvaluation]:
    @dg.asset(key=KEY)
    def things() -> None:
        return None

    result = dg.materialize([things, build_gx_checks(THINGS, KEY)], tags=tags,
                            resources={"warehouse": WarehouseResource(path=str(path))}, raise_on_error=False)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_checks_say_how_many_new_rows_they_validated_and_keep_blocking(tmp_path):
    path = tmp_path / "w.duckdb"
    with wh.connect(path) as c:
        _put(c, _rows("f1.csv", 40))
    assert _checks_run(path)["id_not_null"].metadata["validated"].value == "validated all 40 rows (first validation)"
    with wh.connect(path) as c:
        _put(c, _rows("f2.csv", 3, start=100, id=[None, "x", "y"]))
    evals = _checks_run(path)
    assert set(evals) == {r.name for r in THINGS.rules}
    bad = evals["id_not_null"]
    assert not bad.passed and bad.blocking and bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.metadata["validated"].value == "validated 3 new rows of 43"
    assert bad.metadata["rows_validated"].value == 3 and bad.metadata["rows_in_table"].value == 43
    assert bad.metadata["validated_only_new_rows"].value is True
    assert not _checks_run(path)["id_not_null"].passed  # nothing new: still failing
    full = _checks_run(path, tags={FULL_REFRESH_TAG: "true"})["id_not_null"]
    assert full.metadata["rows_validated"].value == 43 and full.metadata["why_all_rows"].value == "full run asked for"
    with duckdb.connect(str(path), read_only=True) as c:
        assert c.execute(f"SELECT rows_validated, mode FROM {incremental.STATE}").fetchall() == [(43, "full")]


def test_an_empty_table_passes_and_later_rows_are_validated(con):
    """A source that delivered nothing yet (FEBRL has no app events): its sums over no rows are NULL, not 0."""
    _put(con, _rows("f1.csv", 2).iloc[0:0])
    v = incremental.validate_table(con, THINGS)
    assert v.rows_total == 0 and v.rows_validated == 0
    assert all(o.success for o in v.outcomes), [(o.name, o.error) for o in v.outcomes if not o.success]
    _put(con, _rows("f2.csv", 3))
    v = incremental.validate_table(con, THINGS)
    assert v.rows_total == 3 and v.rows_validated == 3 and not v.full
    _same_as_gx_on_everything(con, THINGS, v)


def test_an_unchanged_raw_table_reuses_its_last_outcomes_without_reading_it(con):
    con.execute("CREATE TABLE meta.loaded_files (family VARCHAR, location VARCHAR, content_hash VARCHAR)")
    con.execute("INSERT INTO meta.loaded_files VALUES ('things', 'f1.csv', 'h1'), ('things', 'f2.csv', 'h2')")
    _put(con, _rows("f1.csv", 20))
    _put(con, _rows("f2.csv", 2, start=100, kind="zz"))
    first = incremental.validate_table(con, THINGS)
    again = incremental.validate_table(con, THINGS)
    assert again.unchanged and again.rows_validated == 0 and again.rows_total == 22
    assert again.summary() == "table unchanged since its last validation (22 rows): its outcomes, no row read"
    assert again.outcomes == first.outcomes  # the failure and its examples too
    assert not _by_name(again)["kind_in_allowed_set"].success
    # a file of another family loaded: this table's outcomes stand
    con.execute("INSERT INTO meta.loaded_files VALUES ('others', 'o1.csv', 'h9')")
    assert incremental.validate_table(con, THINGS).unchanged
    # a load logged (a corrected file: same row count) or an erasure: the rows are read again
    con.execute("DELETE FROM raw.things WHERE _location = 'f2.csv'")
    _put(con, _rows("f2.csv", 2, start=100, kind="b"))
    con.execute("UPDATE meta.loaded_files SET content_hash = 'h3' WHERE location = 'f2.csv'")
    fixed = incremental.validate_table(con, THINGS)
    assert not fixed.unchanged and fixed.rows_validated == 2 and _by_name(fixed)["kind_in_allowed_set"].success
    assert incremental.validate_table(con, THINGS).unchanged
    con.execute("CREATE TABLE meta.erasure_requests (request_id VARCHAR)")
    con.execute("INSERT INTO meta.erasure_requests VALUES ('r1')")
    assert not incremental.validate_table(con, THINGS).unchanged
    # a full run reads every row whatever the signature
    assert incremental.validate_table(con, THINGS, full=True).rows_validated == 22
