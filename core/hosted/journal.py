"""Nothing lost, nothing paid twice: the request journal, the result cache and the ledger.

All three live in one state directory (the node layer passes `<ComfyUI user dir>/fluxfill`).

- `Journal`: one row per state change of a remote request (database `hosted.sqlite3`, table
  journal, indexed by input hash; each row also appended to `hosted_journal.jsonl`, a log never
  read back — store.py) — {ts, input_hash, provider, endpoint, request_id, status, urls,
  error}. `status` is
  "pending" (written the moment the submit answer arrives, before polling), "completed",
  "failed", "cancelled" (the provider confirmed the job stopped: not billed), "expired" /
  "lost" / "refused" (billed, but an output could not be downloaded / was not opened: a
  decompression bomb or not an image; the entry names the request id to fetch it by),
  "cancel_requested" (a running job was asked to stop; it may still finish and be
  billed) or "uncertain" (a submit whose answer was lost; no request id is known). The
  latest row per input hash wins; `pending(hash)` finds a request to resume ("pending" or
  "cancel_requested") after a crash, an expired deadline or a Cancel, instead of paying
  again. Old finished histories are compacted (store.compact); pending, cancel_requested,
  uncertain, lost and refused ones never.
- `ResultCache` (`cache/<hash>/`): the downloaded output bytes (`0.png`, `1.jpg`, …) and
  `meta.json`, written atomically (one directory rename); a lookup opens one directory by
  name, so it needs no index; a re-run after a restart costs nothing.
- `Ledger`: one row per paid result (request id, endpoint, cost), unique per request id,
  indexed by time (table ledger; also appended to `ledger.jsonl`).

`input_hash` is sha256 of canonical JSON {provider, endpoint, params} where every image is
replaced by "sha256:<hash of its PNG bytes>"; the seed is part of params; keys never are.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import store
from .images import image_format

try:
    import fcntl            # POSIX: HashLock's cross-process part
except ImportError:         # Windows: HashLock is in-process only
    fcntl = None

_LOCKS: dict[str, HashLock] = {}
_LOCKS_GUARD = threading.Lock()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def input_hash(provider: str, endpoint: str, params: dict) -> str:
    import hashlib
    return hashlib.sha256(canonical_json({"provider": provider, "endpoint": endpoint,
                                          "params": params}).encode()).hexdigest()


class HashLock:
    """The lock of one input hash (`with hash_lock(key):`). In-process: two identical
    requests in flight pay once. Across processes (several ComfyUI servers sharing one user
    folder): while a thread holds it, that thread's first ResultCache.get / Journal.pending
    of the hash in a state directory also takes an exclusive flock on
    `<state_dir>/locks/<hash>.lock`, kept until the HashLock is released. A second server
    with the same inputs waits there, then finds the first one's cached result (or its
    pending request, if that server died: the kernel drops a dead process's flock) instead of
    paying again. POSIX only (fcntl); on Windows the lock is in-process only."""

    def __init__(self, key: str):
        self.key = key
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._files: dict[Path, int] = {}      # lock file -> fd, while held

    def __enter__(self) -> HashLock:
        self._lock.acquire()
        self._owner = threading.get_ident()
        return self

    def __exit__(self, *exc) -> None:
        files, self._files, self._owner = self._files, {}, None
        for fd in files.values():
            os.close(fd)                       # closing the file drops the flock
        self._lock.release()

    def hold_file(self, state_dir: Path) -> None:
        """Take the cross-process lock in state_dir (blocks while another process has it)."""
        if fcntl is None or self._owner != threading.get_ident():
            return
        path = Path(state_dir) / "locks" / f"{self.key}.lock"
        if path in self._files:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._files[path] = fd


def hash_lock(key: str) -> HashLock:
    """One lock per input hash (see HashLock)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, HashLock(key))


def _cross_process(key: str, state_dir: Path) -> None:
    """If this thread holds hash_lock(key), also hold it across processes in state_dir."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
    if lock is not None:
        lock.hold_file(state_dir)


class Journal:
    FILE = store.JOURNAL_LOG      # the append-only log; lookups use the database (store.py)

    def __init__(self, state_dir: str | os.PathLike):
        self.dir = Path(state_dir)
        self.path = self.dir / self.FILE

    def record(self, input_hash: str, *, provider: str, endpoint: str, request_id: str,
               status: str, urls: dict | None = None, error: str | None = None, **extra) -> dict:
        rec = {"ts": time.time(), "input_hash": input_hash, "provider": provider,
               "endpoint": endpoint, "request_id": request_id, "status": status,
               "urls": urls or {}, **({"error": error} if error else {}), **extra}
        store.write(self.dir, self.FILE, rec, store._insert_journal)
        return rec

    def latest(self, input_hash: str) -> dict | None:
        with store.connect(self.dir) as con:
            row = con.execute("SELECT rec FROM journal WHERE input_hash=? ORDER BY id DESC LIMIT 1",
                              (input_hash,)).fetchone()
        return json.loads(row[0]) if row else None

    RESUMABLE = ("pending", "cancel_requested")

    def pending(self, input_hash: str) -> dict | None:
        """The request to resume for these inputs: its latest state is "pending" or
        "cancel_requested" (a cancelled running job may still complete and be billed)."""
        _cross_process(input_hash, self.dir)
        rec = self.latest(input_hash)
        return rec if rec and rec.get("status") in self.RESUMABLE and rec.get("request_id") else None

    def entries(self) -> list[dict]:
        """Every row, oldest first (old finished histories are compacted away: store.compact)."""
        with store.connect(self.dir) as con:
            return [json.loads(r) for (r,) in con.execute("SELECT rec FROM journal ORDER BY id")]

    def compact(self, older_than_days: float = store.KEEP_DAYS, **kw) -> int:
        return store.compact(self.dir, older_than_days, **kw)


class ResultCache:
    DIR = "cache"
    EXT = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}

    def __init__(self, state_dir: str | os.PathLike):
        self.root = Path(state_dir) / self.DIR

    def _dir(self, key: str) -> Path:
        if not key or any(c not in "0123456789abcdef" for c in key):
            raise ValueError("cache key must be a hex digest")
        return self.root / key

    def put(self, key: str, files: list[bytes], meta: dict) -> Path:
        final = self._dir(key)
        tmp = self.root / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        names = []
        for i, data in enumerate(files):
            name = f"{i}.{self.EXT.get(image_format(data) or '', 'bin')}"
            (tmp / name).write_bytes(data)
            names.append(name)
        (tmp / "meta.json").write_text(canonical_json({**meta, "files": names}), encoding="utf-8")
        if final.exists():
            old = self.root / f".old-{key}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
        return final

    def get(self, key: str) -> tuple[list[bytes], dict] | None:
        d = self._dir(key)
        _cross_process(key, self.root.parent)
        try:
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
            return [(d / n).read_bytes() for n in meta["files"]], meta
        except (OSError, ValueError, KeyError):
            return None


class Ledger:
    FILE = store.LEDGER_LOG       # the append-only log; lookups use the database (store.py)

    def __init__(self, state_dir: str | os.PathLike):
        self.dir = Path(state_dir)
        self.path = self.dir / self.FILE

    def append(self, *, provider: str, endpoint: str, request_id: str, cost_usd: float | None,
               images: int, input_hash: str, **extra) -> bool:
        """Record one paid result; a request id already in the ledger is not added twice
        (a unique index, across threads and processes)."""
        rec = {"ts": time.time(), "provider": provider, "endpoint": endpoint,
               "request_id": request_id, "cost_usd": cost_usd, "images": images,
               "input_hash": input_hash, **extra}
        return store.write(self.dir, self.FILE, rec, store._insert_ledger)

    def entries(self, since: float | None = None, until: float | None = None) -> list[dict]:
        """The ledger's lines, oldest first; `since`/`until` (epoch seconds, until exclusive)
        read only that span through the time index."""
        lo = float("-inf") if since is None else since
        hi = float("inf") if until is None else until
        with store.connect(self.dir) as con:
            if since is None and until is None:
                rows = con.execute("SELECT rec FROM ledger ORDER BY id")
            else:
                rows = con.execute("SELECT rec FROM ledger WHERE ts >= ? AND ts < ? ORDER BY id", (lo, hi))
            return [json.loads(r) for (r,) in rows]

    def total(self) -> float:
        return round(sum(r.get("cost_usd") or 0.0 for r in self.entries()), 6)
