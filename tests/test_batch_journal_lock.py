"""hash_lock across processes (core/hosted/journal.py): what lets several ComfyUI servers share
one user folder without paying twice. A child process holds the lock of a hash in a state
folder; this process must wait for it there, not elsewhere, and not after the child dies."""
import os
import signal
import subprocess
import sys
import textwrap
import time

from comfy_host import ROOT

from fluxfill.core.hosted.journal import Journal, ResultCache, hash_lock

KEY = "ab" * 32
HOLDER = textwrap.dedent("""
    import sys, time, types
    pkg = types.ModuleType("fluxfill"); pkg.__path__ = [sys.argv[1]]; sys.modules["fluxfill"] = pkg
    from fluxfill.core.hosted.journal import ResultCache, hash_lock
    with hash_lock(sys.argv[3]):
        ResultCache(sys.argv[2]).get(sys.argv[3])        # the first look takes the file lock
        print("holding", flush=True)
        time.sleep(float(sys.argv[4]))
    print("released", flush=True)
""")

def holder(state, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(ROOT), str(state), KEY, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def timed(fn) -> float:
    t = time.monotonic()
    fn()
    return time.monotonic() - t


def test_a_second_process_waits_for_the_first_then_reads(tmp_path):
    proc = holder(tmp_path, 1.5)

    def look():
        with hash_lock(KEY):
            assert ResultCache(tmp_path).get(KEY) is None
            assert Journal(tmp_path).pending(KEY) is None        # same lock: no second wait
    waited = timed(look)
    assert proc.wait(10) == 0
    assert 1.0 < waited < 10, waited                            # it waited for the holder
    assert (tmp_path / "locks" / f"{KEY}.lock").is_file()


def test_no_wait_without_the_lock_or_in_another_folder(tmp_path):
    proc = holder(tmp_path / "shared", 3.0)
    try:
        assert timed(lambda: ResultCache(tmp_path / "shared").get(KEY)) < 0.5        # not holding hash_lock
        with hash_lock(KEY):
            assert timed(lambda: Journal(tmp_path / "other").pending(KEY)) < 0.5      # another user folder
    finally:
        proc.kill()
        proc.wait(10)


def test_a_killed_holder_releases_the_lock(tmp_path):
    proc = holder(tmp_path, 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    with hash_lock(KEY):
        assert timed(lambda: ResultCache(tmp_path).get(KEY)) < 2.0


def test_in_process_the_lock_is_released_for_the_next_thread(tmp_path):
    import threading
    order = []

    def worker(n):
        with hash_lock(KEY):
            ResultCache(tmp_path).get(KEY)
            order.append(("in", n))
            time.sleep(0.2)
            order.append(("out", n))
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [kind for kind, _ in order] == ["in", "out"] * 3       # one at a time, none stuck
