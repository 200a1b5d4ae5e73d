"""The warehouse connection waits for another process's lock instead of failing."""

import subprocess
import sys
import time

import duckdb
import pytest

from customer_pipeline import warehouse

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("CREATE TABLE IF NOT EXISTS t (x INT)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold_lock(path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_waits_for_a_writer_in_another_process(tmp_path):
    path = tmp_path / "w.duckdb"
    proc = _hold_lock(path, 2)
    started = time.monotonic()
    with warehouse.connect(path, wait=30) as con:
        con.execute("INSERT INTO t VALUES (1)")
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    assert time.monotonic() - started >= 1.0
    proc.wait(timeout=10)


def test_gives_up_after_the_wait_with_the_lock_error(tmp_path):
    path = tmp_path / "w.duckdb"
    proc = _hold_lock(path, 5)
    try:
        with pytest.raises(duckdb.IOException, match="lock"):
            with warehouse.connect(path, wait=0.5):
                pass
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("where", ["", "WHERE s2 = 'w'", "WHERE false"])
def test_read_df_gives_what_df_gives(where):
    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT * FROM (VALUES
        ('a', NULL::VARCHAR, DATE '2020-01-02', true, true, 1, 1.5::DECIMAL(4, 1), TIMESTAMP '2020-01-01 10:00',
         ['x', 'y'], NULL::INTEGER, 'z', 2.5::DOUBLE),
        (NULL, NULL, NULL, NULL, false, NULL, NULL, NULL, NULL, NULL, 'w', NULL))
        v(s, all_null, d, b_null, b, i, dec, ts, l, i_null, s2, f)""")
    sql = f"SELECT * FROM t {where}"
    fast, slow = warehouse.read_df(con, sql), con.execute(sql).df()
    assert list(fast.columns) == list(slow.columns)
    assert {c: str(fast[c].dtype) for c in fast} == {c: str(slow[c].dtype) for c in slow}
    assert fast.astype(str).equals(slow.astype(str))


def test_connections_take_the_memory_limit_and_a_malformed_one_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    with warehouse.connect(path) as con:  # default: 2GB (DuckDB shows it in GiB)
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "1.8 GiB"
    monkeypatch.setenv("CUSTOMER_PIPELINE_DUCKDB_MEMORY_LIMIT", "500MiB")
    with warehouse.connect(path) as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "500.0 MiB"
    monkeypatch.setenv("CUSTOMER_PIPELINE_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="CUSTOMER_PIPELINE_DUCKDB_MEMORY_LIMIT='lots'"):
        with warehouse.connect(path):
            pass
    monkeypatch.setenv("CUSTOMER_PIPELINE_DUCKDB_MEMORY_LIMIT", "none")
    assert warehouse.memory_limit() is None


def test_splink_sessions_take_their_own_memory_limit(monkeypatch):
    from customer_pipeline.identity import splink_model

    def session_limit() -> str:
        with splink_model.duckdb_session(10) as db_api:
            return db_api.duckdb_con.execute("SELECT current_setting('memory_limit')").fetchone()[0]

    monkeypatch.delenv("CUSTOMER_PIPELINE_SPLINK_MEMORY_LIMIT", raising=False)
    assert session_limit() == "2.7 GiB"  # default 3GB
    monkeypatch.setenv("CUSTOMER_PIPELINE_SPLINK_MEMORY_LIMIT", "1GB")
    assert session_limit() == "953.6 MiB"
    monkeypatch.setenv("CUSTOMER_PIPELINE_SPLINK_MEMORY_LIMIT", "plenty")
    with pytest.raises(ValueError, match="CUSTOMER_PIPELINE_SPLINK_MEMORY_LIMIT='plenty'"):
        session_limit()


def test_isin_answers_as_pandas_on_arrow_text_and_everything_else():
    import pandas as pd

    with duckdb.connect() as con:
        frame = warehouse.read_df(con, "SELECT * FROM (VALUES ('a', 1), ('b', 2), (NULL, 3), ('c', 4)) t(k, n)")
    keys = frame["k"]
    assert isinstance(keys.array, pd.arrays.ArrowStringArray)  # what read_df gives: the case the helper speeds up
    for wanted in ({"a", "c"}, ["b"], set(), pd.Series(["c", "x"], dtype="str"), {"a", None}, [1, "a"],
                   pd.Series(["a", None], dtype="str")):
        got = warehouse.isin(keys, wanted)
        assert got.tolist() == keys.isin(wanted).tolist(), wanted
        assert got.index.equals(keys.index) and got.dtype == bool
    assert warehouse.isin(frame["n"], {2, 4}).tolist() == [False, True, False, True]
