"""Batch mode over one vs two ComfyUI servers: 48 hosted fills, the fal emulator's time fixed.

    FLUXFILL_COMFYUI=.hosts/comfyui-0.30.0 .hosts/comfyui-0.30.0.venv/bin/python bench/bench_batch.py \\
        [--jobs 48] [--server-s 1.0]

`run.py workflows/api/fal_fill.api.json --batch DIR` (FalFill on flux-lora/inpainting, MaskPrep
at the crop's own size) over `jobs` small images with alpha masks, first with one real
ComfyUI server, then with two (each run gets its own seed, so no result comes from the
cache). The emulator (its own process) holds every job `server-s` seconds. Printed, all
measured in this run: both wall times, the speed-up (target: two servers >= 1.8x faster than
one) and each against the ideal, jobs / servers x job time. A warm-up batch on each server
comes first (ComfyUI's first run of a graph loads the nodes; that is not the batch's cost).
"""
import argparse
import multiprocessing as mp
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from comfy_host import ComfyServer, make_base_dir  # noqa: E402

KEY = "bench-batch-key"
WORKFLOW = ROOT / "workflows" / "api" / "fal_fill.api.json"


def serve(conn, server_s: float):
    """Child process: the fal emulator, until the parent says stop; then its submit count."""
    sys.path.insert(0, str(ROOT / "tests"))
    from emulators import FalEmulator
    with FalEmulator(KEY, queue_seconds=0.0, run_seconds=server_s) as emu:
        conn.send((emu.queue_url, emu.rest_url))
        while conn.recv() == "count":
            conn.send(len(emu.requests))


def images(folder: Path, n: int, prefix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rgb = np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        a = np.full((48, 64, 1), 255, np.uint8)
        a[10:26, 12 + i % 24:28 + i % 24] = 0
        Image.fromarray(np.concatenate([rgb, a], -1), "RGBA").save(folder / f"{prefix}_{i:03d}.png")
    return folder


def batch(folder: Path, out: Path, servers, seed: int) -> float:
    cmd = [sys.executable, "run.py", str(WORKFLOW), "--batch", str(folder), "--out", str(out),
           "--set", "FalFill.endpoint=fal-ai/flux-lora/inpainting", "--set", "MaskPrep.target_mp=0",
           "--set", f"FalFill.seed={seed}"]
    for s in servers:
        cmd += ["--server", s.url]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=48)
    ap.add_argument("--server-s", type=float, default=1.0, help="emulator time per job (s)")
    a = ap.parse_args()
    parent, child = mp.Pipe()
    emu = mp.get_context("spawn").Process(target=serve, args=(child, a.server_s), daemon=True)
    emu.start()
    queue_url, rest_url = parent.recv()
    env = {"FAL_KEY": KEY, "FAL_QUEUE_URL": queue_url, "FAL_REST_URL": rest_url,
           "WAVESPEED_API_KEY": "", "WAVESPEED_API_URL": "http://127.0.0.1:9"}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp = Path(tmp)
        servers = [ComfyServer(make_base_dir(tmp / f"server_{n}", test_packs=False), env=env) for n in "ab"]
        threads = [threading.Thread(target=s.start) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            warm = images(tmp / "warm", 2, "warm")
            for i, s in enumerate(servers):
                batch(warm, tmp / f"warm_out_{i}", [s], seed=100 + i)
            folder = images(tmp / "in", a.jobs, "shot")
            parent.send("count")
            before = parent.recv()
            one = batch(folder, tmp / "out_1", servers[:1], seed=1)
            two = batch(folder, tmp / "out_2", servers, seed=2)
            parent.send("count")
            sent = parent.recv() - before
        finally:
            for s in servers:
                s.stop()
            parent.send("stop")
            emu.join(10)
    ideal_one, ideal_two = a.jobs * a.server_s, a.jobs / 2 * a.server_s
    speedup = one / two
    print(f"{a.jobs} hosted jobs, emulator {a.server_s:.1f} s per job; {sent} submits in all "
          f"(expected {2 * a.jobs}: one per job and run)")
    print(f"1 server : {one:6.1f} s  = {one / ideal_one:.2f}x the ideal ({ideal_one:.0f} s)")
    print(f"2 servers: {two:6.1f} s  = {two / ideal_two:.2f}x the ideal ({ideal_two:.0f} s)")
    print(f"two servers vs one: {speedup:.2f}x faster (target >= 1.8x): {'ok' if speedup >= 1.8 else 'MISSED'}")
    return 0 if speedup >= 1.8 and sent == 2 * a.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
