"""The journal's and ledger's sqlite database (core/hosted/store.py): the JSONL files of earlier
versions are imported, not lost; compaction drops only old finished histories, and a process
killed in the middle of one loses nothing; the ledger's one-line-per-request holds across
processes."""
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from comfy_host import ROOT

from fluxfill.core.hosted import store
from fluxfill.core.hosted.journal import Journal, Ledger

OLD = time.time() - 90 * 86400
CHILD = textwrap.dedent("""
    import os, signal, sys, types
    pkg = types.ModuleType("fluxfill"); pkg.__path__ = [sys.argv[1]]; sys.modules["fluxfill"] = pkg
    from fluxfill.core.hosted import store
    from fluxfill.core.hosted.journal import Ledger
    if sys.argv[3] == "compact-and-die":
        def die(deleted):
            print("deleted", deleted, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)      # a crash in the middle of the transaction
        store.compact(sys.argv[2], on_batch=die, batch=10)
    elif sys.argv[3] == "record-and-die":
        from fluxfill.core.hosted.journal import Journal
        def die(*args):
            os.kill(os.getpid(), signal.SIGKILL)      # killed while writing the log line
        store.append_line = die
        Journal(sys.argv[2]).record("e" * 64, provider="fal", endpoint="e", request_id="paid-1",
                                    status="pending", urls={"u": 1})
    elif sys.argv[3].startswith("open-at="):
        import time
        while time.time() < float(sys.argv[3][8:]):
            pass
        with store.connect(sys.argv[2]) as con:                  # makes the database, WAL
            print(con.execute("PRAGMA journal_mode").fetchone()[0])
    else:
        for i in range(50):
            Ledger(sys.argv[2]).append(provider="fal", endpoint="e", request_id=f"r{i % 10}",
                                       cost_usd=0.01, images=1, input_hash="h")
""")


def child(state, what) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(state), what],
                          capture_output=True, text=True, timeout=120)


def fill_history(state, n_old: int) -> dict:
    """n_old old finished hashes, plus old hashes in every state compaction must keep."""
    j = Journal(state)
    assert j.entries() == []                         # the database is made
    con = sqlite3.connect(state / store.DB)
    rows = []
    for i in range(n_old):
        h = f"{i:064x}"
        for status in ("pending", "completed"):
            rows.append({"ts": OLD, "input_hash": h, "provider": "fal", "endpoint": "e",
                         "request_id": f"old{i}", "status": status, "urls": {}})
    kept = {}
    for status in ("pending", "cancel_requested", "uncertain", "lost", "refused"):
        h = ("k" + status).encode().hex().ljust(64, "0")[:64]
        kept[h] = status
        for s in ("pending", status):
            rows.append({"ts": OLD, "input_hash": h, "provider": "fal", "endpoint": "e",
                         "request_id": None if s == "uncertain" else f"id-{status}", "status": s, "urls": {}})
    with con:
        for rec in rows:
            store._insert_journal(con, rec)
    con.close()
    j.record("f" * 64, provider="fal", endpoint="e", request_id="new", status="completed")
    return kept


def test_old_jsonl_files_are_imported_once_and_kept(tmp_path):
    recs = [{"ts": 1.0, "input_hash": "a" * 64, "provider": "fal", "endpoint": "e",
             "request_id": "r1", "status": "pending", "urls": {"u": 1}}]
    (tmp_path / store.JOURNAL_LOG).write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"torn')
    (tmp_path / store.LEDGER_LOG).write_text(json.dumps(
        {"ts": time.time(), "provider": "fal", "request_id": "r0", "cost_usd": 0.25}) + "\n")
    j = Journal(tmp_path)
    assert j.pending("a" * 64)["urls"] == {"u": 1}                     # resumable after the upgrade
    assert Ledger(tmp_path).total() == 0.25
    assert Ledger(tmp_path).append(provider="fal", endpoint="e", request_id="r0", cost_usd=0.25,
                                   images=1, input_hash="h") is False    # already paid: not twice
    j.record("a" * 64, provider="fal", endpoint="e", request_id="r1", status="completed")
    lines = (tmp_path / store.JOURNAL_LOG).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["status"] == "completed"   # the log goes on
    store._READY.clear()                                                    # a new process
    assert len(Journal(tmp_path).entries()) == 2                            # not imported twice
    (tmp_path / store.DB).unlink()
    for extra in ("-wal", "-shm"):
        (tmp_path / (store.DB + extra)).unlink(missing_ok=True)
    store._READY.clear()
    assert Journal(tmp_path).latest("a" * 64)["status"] == "completed"      # rebuilt from the log


def test_compaction_drops_old_finished_histories_only(tmp_path):
    kept = fill_history(tmp_path, 30)
    j = Journal(tmp_path)
    assert j.compact() == 60
    left = {e["input_hash"]: e["status"] for e in j.entries()}
    assert {h: s for h, s in left.items() if h in kept} == kept
    assert left["f" * 64] == "completed" and len(left) == len(kept) + 1
    assert j.pending(next(h for h, s in kept.items() if s == "pending"))["request_id"] == "id-pending"
    assert len(j.entries()) == 2 * len(kept) + 1                            # whole histories kept
    assert j.compact() == 0


def test_a_crash_in_the_middle_of_a_compaction_loses_nothing(tmp_path):
    fill_history(tmp_path, 40)
    before = Journal(tmp_path).entries()
    out = child(tmp_path, "compact-and-die")
    assert out.returncode == -signal.SIGKILL and "deleted 20" in out.stdout, out.stderr
    store._READY.clear()
    assert Journal(tmp_path).entries() == before                            # rolled back, whole
    assert Journal(tmp_path).compact() == 80                                # and it finishes later


def test_the_ledger_adds_a_request_once_across_processes(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(tmp_path), "ledger"])
             for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert sorted(e["request_id"] for e in Ledger(tmp_path).entries()) == [f"r{i}" for i in range(10)]
    assert len((tmp_path / store.LEDGER_LOG).read_text().splitlines()) == 10


def test_processes_making_the_database_at_the_same_instant_all_open_it(tmp_path):
    """sqlite refuses a second simultaneous switch to WAL at once ("database is locked", no busy
    wait): without the store's retry, two ComfyUI servers starting on one user folder failed."""
    for attempt in range(8):
        state = tmp_path / f"new{attempt}"
        state.mkdir()
        at = f"open-at={time.time() + 1.0}"
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(state), at],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outs]
        assert [out.strip() for out, _ in outs] == ["wal"] * 4


def test_a_process_killed_while_writing_the_log_keeps_the_pending_request(tmp_path):
    """The row commits before its log line is written: a server killed in between (the moment a
    submit is journaled) leaves a request the next run resumes, never one it pays for again."""
    out = child(tmp_path, "record-and-die")
    assert out.returncode == -signal.SIGKILL, out.stderr
    store._READY.clear()
    assert Journal(tmp_path).pending("e" * 64)["request_id"] == "paid-1"
