"""The content hash of each landing file remembered with its stat, so an unchanged file is not read again.

A loader identifies a file version by the SHA-256 of its content (`meta.loaded_files`); hashing every file of
a landing folder on every run reads the whole folder (about 800 MB at 1M person records) to find nothing new.
`meta.file_stats` keeps, per file, the hash with the stat it was computed under (size, mtime, ctime, inode).
A file whose stat is unchanged has the remembered hash, as git's index and rsync decide; anything else is
hashed again. Safe against the usual traps:
- a rewrite in place changes ctime (which no program can set back), a replace by rename changes the inode;
- a file changed twice within one timestamp tick after it was hashed ("racily clean", as git calls it): an
  entry is trusted only when the file's ctime was at least `STABLE_NS` older than the moment it was hashed.
"""

import hashlib
import time
from pathlib import Path

import duckdb
import pyarrow as pa

DDL = """
CREATE TABLE IF NOT EXISTS meta.file_stats (
    location VARCHAR, size BIGINT, mtime_ns BIGINT, ctime_ns BIGINT, inode BIGINT, content_hash VARCHAR,
    hashed_at_ns BIGINT
)"""
STABLE_NS = 2_000_000_000


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _key(st) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StatCache:
    """The remembered hashes of one landing folder's files; `save` writes what was hashed since."""

    def __init__(self, con: duckdb.DuckDBPyConnection, folder: str):
        self.con = con
        con.execute(DDL)
        rows = con.execute(
            "SELECT location, size, mtime_ns, ctime_ns, inode, content_hash, hashed_at_ns FROM meta.file_stats "
            "WHERE starts_with(location, ?)", [f"{folder}/"]).fetchall()
        self.known = {r[0]: ((r[1], r[2], r[3], r[4]), r[5], r[6]) for r in rows}
        self.hashed: dict[str, tuple] = {}

    def cached(self, rel: str, st) -> str | None:
        """The remembered hash of this file when its stat is the one it was hashed under, else None."""
        entry = self.known.get(rel)
        if entry is None:
            return None
        key, digest, hashed_at = entry
        if key != _key(st) or st.st_ctime_ns > hashed_at - STABLE_NS:
            return None
        return digest

    def remember(self, rel: str, st, digest: str) -> None:
        """`st` taken before the content was read: a change while it was read leaves a stat that differs."""
        self.hashed[rel] = (*_key(st), digest, time.time_ns())
        self.known[rel] = (_key(st), digest, self.hashed[rel][-1])

    def digest(self, rel: str, path: Path) -> str:
        """The file's hash: remembered, or computed (streamed) and remembered."""
        st = path.stat()
        found = self.cached(rel, st)
        if found is None:
            found = sha256_file(path)
            self.remember(rel, st, found)
        return found

    def save(self) -> None:
        if not self.hashed:
            return
        names = list(self.hashed)
        cols = list(zip(*self.hashed.values()))
        data = pa.table({
            "location": pa.array(names, pa.string()), "size": pa.array(cols[0], pa.int64()),
            "mtime_ns": pa.array(cols[1], pa.int64()), "ctime_ns": pa.array(cols[2], pa.int64()),
            "inode": pa.array(cols[3], pa.int64()), "content_hash": pa.array(cols[4], pa.string()),
            "hashed_at_ns": pa.array(cols[5], pa.int64()),
        })
        self.con.register("_file_stats", data)
        try:
            self.con.execute("DELETE FROM meta.file_stats WHERE location IN (SELECT location FROM _file_stats)")
            self.con.execute("INSERT INTO meta.file_stats SELECT * FROM _file_stats")
        finally:
            self.con.unregister("_file_stats")
        self.hashed = {}
