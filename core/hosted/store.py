"""The journal's and ledger's database: `<state_dir>/hosted.sqlite3` (Python's own sqlite3).

WAL mode, `synchronous=FULL` (a committed row survives a power cut), a 60 s busy timeout
(several ComfyUI processes sharing one user folder take turns), one short-lived connection
per call (safe from any thread). Writes are `BEGIN IMMEDIATE` transactions: a crash in the
middle of one (a compaction included) leaves the database as it was before it.

Tables: `journal` (one row per state change, indexed by input hash) and `ledger` (one row per
paid result, unique per provider and request id, indexed by time). Each row keeps its whole
record as JSON, so callers get back exactly what they wrote.

The JSONL files of earlier versions (`hosted_journal.jsonl`, `ledger.jsonl`) are imported once,
when a state directory's database is made, and are kept — as an append-only log: every row is
also appended there, right after its transaction commits (see `write`). FluxFill never reads them
back (except for that import), so their length costs nothing; they stay readable by people
and a deleted database is rebuilt from them on the next open.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from collections.abc import Callable, Iterator

log = logging.getLogger("fluxfill.hosted")

DB = "hosted.sqlite3"
JOURNAL_LOG = "hosted_journal.jsonl"
LEDGER_LOG = "ledger.jsonl"
KEEP_DAYS = 30          # compaction: finished journal histories older than this are dropped
AUTO_COMPACT_ROWS = 10_000      # a process's first open compacts a journal longer than this
# a hash whose latest state is one of these (and older than KEEP_DAYS) loses its history;
# pending, cancel_requested, uncertain, lost and refused ones are kept whatever their age
FINISHED = ("completed", "failed", "cancelled", "expired")

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL,
    input_hash TEXT, status TEXT, request_id TEXT, rec TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS journal_hash ON journal(input_hash, id);
CREATE INDEX IF NOT EXISTS journal_ts ON journal(ts);
CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL,
    provider TEXT, request_id TEXT, rec TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_request ON ledger(provider, request_id);
CREATE INDEX IF NOT EXISTS ledger_ts ON ledger(ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

_READY: set[Path] = set()          # databases this process has opened (schema, import, compaction)
_READY_GUARD = threading.Lock()
_WRITERS = threading.Lock()        # one write transaction of this process at a time (see write)


def dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def append_line(path: Path, record: dict) -> None:
    """Append one JSON line and fsync it (a line torn by a crash is closed first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (dumps(record) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue            # a torn line after a crash is skipped
            if isinstance(rec, dict):
                out.append(rec)
    return out


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA busy_timeout=60000")
    con.execute("PRAGMA synchronous=FULL")
    return con


def _insert_journal(con, rec: dict) -> None:
    con.execute("INSERT INTO journal (ts, input_hash, status, request_id, rec) VALUES (?,?,?,?,?)",
                (rec.get("ts"), rec.get("input_hash"), rec.get("status"), rec.get("request_id"),
                 dumps(rec)))


def _insert_ledger(con, rec: dict) -> bool:
    cur = con.execute("INSERT OR IGNORE INTO ledger (ts, provider, request_id, rec) VALUES (?,?,?,?)",
                      (rec.get("ts"), rec.get("provider"), rec.get("request_id"), dumps(rec)))
    return cur.rowcount == 1


def _use_wal(con: sqlite3.Connection, patience: float = 60.0) -> None:
    """Switch the database to WAL (a lasting setting of the file). sqlite answers "database is
    locked" at once, without waiting on the busy timeout, when two processes make that switch
    on a new database at the same instant; so try again until it holds or `patience` runs out."""
    deadline = time.monotonic() + patience
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")   # a file system without WAL keeps its mode
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _prepare(state_dir: Path, path: Path) -> None:
    """Once per process and database: WAL, tables, the one-time import of the JSONL files,
    then, in a journal of over AUTO_COMPACT_ROWS rows, a compaction (see compact)."""
    with _READY_GUARD:
        if path in _READY and path.exists():
            return
        con = _open(path)
        try:
            _use_wal(con)
            con.executescript(SCHEMA)
            con.execute("BEGIN IMMEDIATE")
            try:
                if con.execute("SELECT 1 FROM meta WHERE key='imported'").fetchone() is None:
                    for rec in read_lines(state_dir / JOURNAL_LOG):
                        _insert_journal(con, rec)
                    for rec in read_lines(state_dir / LEDGER_LOG):
                        _insert_ledger(con, rec)
                    con.execute("INSERT INTO meta VALUES ('imported', ?)", (str(time.time()),))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            rows = con.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        finally:
            con.close()
        _READY.add(path)
    if rows > AUTO_COMPACT_ROWS:
        compact(state_dir)


@contextlib.contextmanager
def connect(state_dir: str | os.PathLike, write: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection to the state directory's database; `write`: inside BEGIN IMMEDIATE, committed
    on success, rolled back on any exception. sqlite errors come out as OSError (a failed
    journal write is reported like a failed file write)."""
    state_dir = Path(state_dir)
    path = state_dir / DB
    try:
        _prepare(state_dir, path)
        con = _open(path)
    except sqlite3.Error as e:
        raise OSError(f"{path}: {e}") from e
    try:
        if write:
            con.execute("BEGIN IMMEDIATE")
        yield con
        if write:
            con.execute("COMMIT")
    except sqlite3.Error as e:
        if write and con.in_transaction:
            con.rollback()
        raise OSError(f"{path}: {e}") from e
    except BaseException:
        if write and con.in_transaction:
            con.rollback()
        raise
    finally:
        con.close()


def write(state_dir, log_name: str, rec: dict, insert: Callable) -> bool:
    """Insert `rec` and commit (synchronous=FULL: it survives a power cut), then append it to the
    JSONL log. The database is what every lookup reads, so the row commits first: a process
    killed in between keeps the row (a pending request stays resumable) and the log, a copy for
    people, misses that one line; a failed log write is logged, the row stays. Writers of this
    process take turns on a lock first: sqlite's own wait for a busy database sleeps in growing
    steps (tens of ms when several threads finish at once), a lock hands over at once."""
    with _WRITERS:
        with connect(state_dir, write=True) as con:
            added = insert(con, rec) is not False
        if added:
            try:
                append_line(Path(state_dir) / log_name, rec)
            except OSError as e:
                log.warning("fluxfill: %s: the row is saved, its copy in %s is not: %s", state_dir, log_name, e)
        return added


def compact(state_dir, older_than_days: float = KEEP_DAYS, now: float | None = None,
            on_batch: Callable[[int], None] | None = None, batch: int = 500) -> int:
    """Drop the whole history of every input hash whose latest journal state is finished
    (FINISHED) and older than `older_than_days`; returns the rows deleted. One transaction:
    a crash part-way leaves every row in place. The ledger is never compacted (it is what was
    paid), and the cache keeps its files (a compacted hash still answers from the cache)."""
    cutoff = (now if now is not None else time.time()) - older_than_days * 86400
    marks = ",".join("?" * len(FINISHED))
    with connect(state_dir, write=True) as con:
        hashes = [h for (h,) in con.execute(
            f"SELECT j.input_hash FROM journal j JOIN (SELECT input_hash, MAX(id) AS id FROM journal "
            f"GROUP BY input_hash) last ON j.id = last.id WHERE j.status IN ({marks}) AND j.ts < ?",
            (*FINISHED, cutoff))]
        deleted = 0
        for i in range(0, len(hashes), batch):
            part = hashes[i:i + batch]
            deleted += con.execute(f"DELETE FROM journal WHERE input_hash IN ({','.join('?' * len(part))})",
                                   part).rowcount
            if on_batch is not None:
                on_batch(deleted)
    if deleted:
        log.info("fluxfill: compacted %d old journal rows in %s", deleted, state_dir)
    return deleted
