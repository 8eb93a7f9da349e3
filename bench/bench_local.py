"""Benchmark (not a test): FluxFillLocal against the stock FLUX.1 Fill chain, same run, same host.

    .hosts/comfyui-0.30.0.venv/bin/python bench/bench_local.py [--quick]

The host is FLUXFILL_COMFYUI or .hosts/comfyui-0.30.0, imported in-process on CPU with the
pack and the test-only tiny FLUX Fill models (tests/packs/fluxfill_test_models; no real
weights exist here). Two workloads, each run alternately (ours, stock) several times:
  single  one fill, every node executed (a fresh queue);
  batch   four fills of one image (seed + i): the stock side re-runs KSampler, VAEDecode and
          ImageCompositeMasked per fill, as ComfyUI's cache would on four queued seeds.
The stock side calls the stock node classes in the template's order. Prints the median wall
times, the median of the per-pair ratios ours/stock (target <= 1.02) and the min-to-min
ratio, then one untimed run per side for memory: peak RSS growth (sampled every ms, freed
heap returned to the OS first) and the tracemalloc peak (Python objects only; torch's
tensors are not traced). Checks that both sides gave identical images. On a busy machine
the timings are noisy: read the ratios next to each other, not against another run.
"""
import argparse
import asyncio
import atexit
import ctypes
import gc
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import psutil
import torch

ROOT = Path(__file__).resolve().parents[1]
HOST = Path(os.environ.get("FLUXFILL_COMFYUI") or ROOT / ".hosts" / "comfyui-0.30.0").resolve()
PROMPT = "a stone wall"


def start_host():
    """The host in-process, with FluxFill and the test packs loaded by its own loader."""
    if not (HOST / "main.py").is_file():
        sys.exit(f"no ComfyUI at {HOST}: set FLUXFILL_COMFYUI or run `make setup`")
    os.environ["FLUXFILL_COMFYUI"] = str(HOST)
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(HOST))
    from comfy_host import make_base_dir
    base = make_base_dir(Path(tempfile.mkdtemp(prefix="fluxfill-bench-")))
    atexit.register(shutil.rmtree, base, True)
    import comfy.cli_args
    comfy.cli_args.args.cpu = True
    comfy.cli_args.args.base_directory = str(base)
    import comfy.model_management  # noqa: F401  (after args.cpu)
    import nodes
    asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
    return nodes.NODE_CLASS_MAPPINGS


def caller(mappings):
    def call(node_id, **kw):
        cls = mappings[node_id]
        if hasattr(cls, "FUNCTION"):
            return getattr(cls(), cls.FUNCTION)(**kw)
        return tuple(cls.execute(**kw).args)  # V3 nodes (FluxGuidance, DifferentialDiffusion...)
    return call


def stock(call, m, image, mask, seed, steps, fills):
    """The official template chain; text/conditioning once, then sampler + decode + paste per fill."""
    model, clip, vae = m
    text = call("CLIPTextEncode", clip=clip, text=PROMPT)[0]
    positive = call("FluxGuidance", conditioning=text, guidance=30.0)[0]
    negative = call("ConditioningZeroOut", conditioning=text)[0]
    positive, negative, latent = call("InpaintModelConditioning", positive=positive, negative=negative,
                                      vae=vae, pixels=image, mask=mask, noise_mask=True)
    model = call("DifferentialDiffusion", model=model)[0]
    out = []
    for i in range(fills):
        samples = call("KSampler", model=model, seed=seed + i, steps=steps, cfg=1.0, sampler_name="euler",
                       scheduler="normal", positive=positive, negative=negative, latent_image=latent,
                       denoise=1.0)[0]
        decoded = call("VAEDecode", vae=vae, samples=samples)[0]
        out.append(call("ImageCompositeMasked", destination=image, source=decoded, x=0, y=0,
                        resize_source=False, mask=mask)[0])
    return torch.cat(out)


def ours(call, m, image, mask, seed, steps, fills):
    model, clip, vae = m
    return call("FluxFillLocal", image=image, mask=mask, prompt=PROMPT, seed=seed, num_images=fills,
                model=model, clip=clip, vae=vae, steps=steps, guidance=30.0, denoise=1.0, sampler_name="euler",
                scheduler="normal", differential_diffusion=True, paste_back=True)[0]


class PeakRSS:
    """Highest RSS above the starting RSS while the block runs (sampled every millisecond)."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.start = self.peak = self.proc.memory_info().rss
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)
        self.growth_mb = (self.peak - self.start) / 2**20


def timed(fn, *args):
    """(output, wall seconds, process CPU seconds): CPU time suffers less from a busy machine."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - t, time.process_time() - c


def release_freed_memory():
    """Give freed heap back to the OS, so RSS growth measures this run, not a past one's leftovers."""
    gc.collect()
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def memory(fn, *args):
    """(peak RSS growth MiB, tracemalloc peak MiB) of one run; kept apart from the timed runs."""
    release_freed_memory()
    tracemalloc.start()
    with PeakRSS() as rss:
        fn(*args)
    py_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return rss.growth_mb, py_peak


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller images")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: steadier on a shared machine; the ratio is what counts)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    size, steps, repeats = (96, 4, 6) if args.quick else (128, 6, 30)
    call = caller(start_host())
    m = call("FluxFillTestTinyModels", seed=0, variant="fill")
    image, mask = call("FluxFillTestPattern", width=size, height=size, batch=1, seed=1, mask_batch=1, soft=True)
    print(f"host {HOST.name}, torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; "
          f"image {size}x{size}, {steps} steps, {repeats} runs per side (alternating), tiny FLUX Fill")
    for label, fills in (("single", 1), ("batch x4", 4)):
        stock(call, m, image, mask, 0, steps, fills)  # warm-up: first-call costs on neither side
        ours(call, m, image, mask, 0, steps, fills)
        times, cpu, outs = {"ours": [], "stock": []}, {"ours": [], "stock": []}, {}
        for r in range(repeats):  # alternate which side goes first: drift hits both alike
            order = (("ours", ours), ("stock", stock)) if r % 2 == 0 else (("stock", stock), ("ours", ours))
            for name, fn in order:
                outs[name], wall, cpu_s = timed(fn, call, m, image, mask, 7, steps, fills)
                times[name].append(wall)
                cpu[name].append(cpu_s)
        mem = {name: memory(fn, call, m, image, mask, 7, steps, fills)
               for name, fn in (("ours", ours), ("stock", stock))}
        paired = statistics.median(o / s for o, s in zip(times["ours"], times["stock"]))
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio_min = min(times["ours"]) / min(times["stock"])
        cpu_ratio = statistics.median(cpu["ours"]) / statistics.median(cpu["stock"])
        print(f"{label:9s} wall median: ours {med['ours'] * 1000:8.1f} ms  stock {med['stock'] * 1000:8.1f} ms  "
              f"ratio (median of pairs) {paired:.3f} ({'ok' if paired <= 1.02 else 'OVER'} target 1.02); "
              f"min-to-min {ratio_min:.3f}; CPU-time ratio {cpu_ratio:.3f}")
        print(f"{'':9s} peak RSS growth: ours {mem['ours'][0]:6.1f} MiB  stock {mem['stock'][0]:6.1f} MiB;  "
              f"tracemalloc peak: ours {mem['ours'][1]:.2f} MiB  stock {mem['stock'][1]:.2f} MiB;  "
              f"identical images: {torch.equal(outs['ours'], outs['stock'])}")


if __name__ == "__main__":
    main()
