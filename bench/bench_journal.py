"""A cached re-run's bookkeeping with 100,000 earlier entries, against an empty journal.

    python bench/bench_journal.py [--entries 100000] [--reps 200]

What a cached re-run reads before it answers, as the provider and the node do: the cache
lookup and the journal's pending lookup of its input hash (inside hash_lock, which takes the
cross-process file lock), today's spend from the ledger (the daily limit) and the per-request
"is it free" check (spend.free_requests' latest lookup). Measured in one run twice: in a state
folder whose journal and ledger hold `entries` earlier rows each (spread over 1,000 days, as
a long-used folder would) and in an empty one. Prints the median and p95 per lookup and the
ratio big/empty; target: well under 50 ms. Building the big folder is timed separately (one
transaction; real rows are written one per state change)."""
import argparse
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "fluxfill" not in sys.modules:
    pkg = types.ModuleType("fluxfill")
    pkg.__path__ = [str(ROOT)]
    sys.modules["fluxfill"] = pkg

from fluxfill.core.hosted import spend, store  # noqa: E402
from fluxfill.core.hosted.journal import Journal, ResultCache, hash_lock  # noqa: E402

PNG = bytes.fromhex("89504e470d0a1a0a") + b"\0" * 64          # the cache stores bytes as given


def fill(state: Path, n: int) -> float:
    Journal(state).entries()                                   # the database is made
    t = time.perf_counter()
    now = time.time()
    with store.connect(state, write=True) as con:
        for i in range(n):
            h = f"{i:064x}"
            ts = now - (i % 1000) * 86400 - 1
            base = {"ts": ts, "input_hash": h, "provider": "fal", "endpoint": "fal-ai/flux-lora-fill",
                    "request_id": f"r{i}", "urls": {"status_url": f"https://q/{i}"}}
            store._insert_journal(con, {**base, "status": "completed" if i % 50 else "pending"})
            store._insert_ledger(con, {"ts": ts, "provider": "fal", "endpoint": "e", "request_id": f"r{i}",
                                       "cost_usd": 0.035, "images": 1, "input_hash": h})
    return time.perf_counter() - t


def lookup(state: Path, key: str) -> float:
    """One cached re-run's reads; seconds."""
    t = time.perf_counter()
    with hash_lock(key):
        assert ResultCache(state).get(key) is not None
        assert Journal(state).pending(key) is None
        spend.spent_today(state)
        Journal(state).latest(key)
    return time.perf_counter() - t


def measure(state: Path, reps: int) -> list[float]:
    key = "c" * 64
    ResultCache(state).put(key, [PNG], {"request_id": "cached"})
    Journal(state).record(key, provider="fal", endpoint="e", request_id="cached", status="completed")
    lookup(state, key)                                         # first open of the folder
    return sorted(lookup(state, key) for _ in range(reps))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty, big = Path(tmp) / "empty", Path(tmp) / "big"
        built = fill(big, a.entries)
        rows = len(Journal(big).entries())
        e, b = measure(empty, a.reps), measure(big, a.reps)
    med_e, med_b = statistics.median(e) * 1e3, statistics.median(b) * 1e3
    p95_e, p95_b = e[int(len(e) * 0.95)] * 1e3, b[int(len(b) * 0.95)] * 1e3
    print(f"built {a.entries:,} journal + ledger rows in {built:.2f}s ({rows:,} journal rows)")
    print(f"empty journal:   median {med_e:.3f} ms  p95 {p95_e:.3f} ms")
    print(f"{a.entries:,} entries: median {med_b:.3f} ms  p95 {p95_b:.3f} ms")
    print(f"ratio big/empty: median {med_b / med_e:.2f}x  p95 {p95_b / p95_e:.2f}x  "
          f"(target: well under 50 ms: {'OK' if p95_b < 50 else 'MISSED'})")


if __name__ == "__main__":
    main()
