"""The CLI and the whole graph on a small generated sample, in temporary folders."""

import dagster as dg
import duckdb
import pytest

from customer_pipeline import run_gate
from customer_pipeline.cli import main
from customer_pipeline.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs())
    keys = {k.to_user_string() for k in defs().resolve_asset_graph().get_all_asset_keys()}
    assert {"raw/pos_loyalty_signups", "raw/shop_customers", "staging/person_records", "gold/data_quality_report"} <= keys


@pytest.fixture
def settings_env(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("CUSTOMER_PIPELINE_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("CUSTOMER_PIPELINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("SHOP_DB_URL", "")  # empty counts as unset: the landing folder's shop.sqlite
    monkeypatch.setenv("CUSTOMER_PIPELINE_PG_URL", "")
    return tmp_path


def test_run_without_landing_folder_exits_non_zero_with_one_line(settings_env, capsys):
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "landing folder not found" in err[0]


def test_run_with_unreachable_shop_exits_non_zero(settings_env, capsys, monkeypatch):
    (settings_env / "landing").mkdir()
    assert main(["run"]) == 2
    assert "shop database not found" in capsys.readouterr().err
    monkeypatch.setenv("SHOP_DB_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "127.0.0.1:1" in err[0]


@pytest.mark.parametrize("url", ["nosuchdriver://x/y", "mysql//broken", "mariadb://root@127.0.0.1:3306/no_such_db_here"])
def test_a_bad_shop_url_is_one_clear_line(settings_env, capsys, monkeypatch, url):
    (settings_env / "landing").mkdir()
    monkeypatch.setenv("SHOP_DB_URL", url)
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0] and "shop" in err[0].lower(), err


@pytest.mark.slow
def test_sample_then_run_twice_is_idempotent(settings_env, capsys):
    landing = settings_env / "landing"
    assert main(["sample", "--persons", "300", "--seed", "7", "--out", str(landing), "--as-of", "2026-11-01"]) == 0
    assert (landing / "truth.csv").is_file()
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "all blocking checks passed" in out and "Sources (this run)" in out
    with duckdb.connect(str(settings_env / "w.duckdb"), read_only=True) as con:
        first = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                 for t in ("raw.pos_loyalty_signups", "raw.shop_customers", "raw.call_center_contacts",
                           "raw.app_events", "quarantine.rejected_records", "staging.person_records")}
        truth = con.execute(f"SELECT count(*) FROM read_csv('{landing / 'truth.csv'}')").fetchall()[0][0]
        staged = con.execute("SELECT count(*) FROM staging.person_records").fetchall()[0][0]
    assert all(n > 0 for t, n in first.items() if t != "quarantine.rejected_records")
    assert first["quarantine.rejected_records"] > 0  # the sample carries malformed rows on purpose
    # every person-describing record the generator made is staged, unless it was quarantined as malformed
    assert truth - 20 <= staged <= truth
    capsys.readouterr()
    # nothing new: the shop is read and checked, the later stages are not started (runner.py)
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "later stages: not started, nothing they read changed" in out, out
    assert "nothing new: the later stages were not started" in out
    assert "held back" not in out
    # no landing file is new or corrected: no file loader ran (the shop is read: its extract proves it current)
    unchanged = out.split("raw loads not run, no new or corrected file in their landing folders: ")[1].split("\n")[0]
    assert {"raw/pos_loyalty_signups", "raw/pos_transactions", "raw/call_center_contacts", "raw/app_events"} <= \
        set(unchanged.split(", ")) and "shop" not in unchanged, out
    with duckdb.connect(str(settings_env / "w.duckdb"), read_only=True) as con:
        again = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in first}
        state = dict(con.execute("SELECT key, value FROM meta.staging_state").fetchall())
    assert again == first
    assert state["last_mode"] == "full"  # staging did not run again
    # the later stages asked to run on the same data (the gate forgotten: as after a failed run) work incrementally
    with duckdb.connect(str(settings_env / "w.duckdb")) as con:
        run_gate.forget(con)
    assert main(["run"]) == 0
    assert "later stages: all of them (changed since their last complete run: " in capsys.readouterr().out
    with duckdb.connect(str(settings_env / "w.duckdb"), read_only=True) as con:
        again = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in first}
        state = dict(con.execute("SELECT key, value FROM meta.staging_state").fetchall())
    assert again == first
    # nothing new: staging standardised no record again (issue 13)
    assert (state["last_mode"], state["last_standardised"], state["last_removed"]) == ("incremental", "0", "0")
    with duckdb.connect(str(settings_env / "w.duckdb"), read_only=True) as con:
        quality = dict(con.execute("SELECT suite, mode FROM meta.quality_state").fetchall())
        scoring = dict(con.execute("SELECT key, value FROM identity.scoring_state").fetchall())
    # nothing new: GX saw no row again; the suites of the file loads did not run at all (no loader ran)
    file_suites = {"raw_app_events", "raw_call_center_contacts", "raw_pos_loyalty_signups", "raw_pos_transactions"}
    assert file_suites <= set(quality) and {quality[s] for s in file_suites} == {"full"}, quality
    assert {mode for s, mode in quality.items() if s not in file_suites} == {"new rows"}, quality
    assert scoring["last_mode"] == "incremental"
    # `run --full`: every record standardised, scored and validated again, with the same result
    assert main(["run", "--full"]) == 0
    with duckdb.connect(str(settings_env / "w.duckdb"), read_only=True) as con:
        full = {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in first}
        state = dict(con.execute("SELECT key, value FROM meta.staging_state").fetchall())
        quality = con.execute("SELECT suite, mode, reason, rows_validated, rows_total FROM meta.quality_state").fetchall()
        scoring = dict(con.execute("SELECT key, value FROM identity.scoring_state").fetchall())
    assert full == first
    assert (state["last_mode"], state["last_standardised"]) == ("full", str(staged))
    assert scoring["last_mode"] == "full" and scoring["last_new_records"] == str(staged)
    assert quality and all(mode == "full" and reason == "full run asked for" and validated == total
                           for _, mode, reason, validated, total in quality), quality
