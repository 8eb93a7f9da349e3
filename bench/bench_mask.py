"""Benchmark (not a test): MaskPrep + PasteBack against a peer-style baseline, same run.

    .hosts/comfyui-0.30.0.venv/bin/python bench/bench_mask.py [--quick]

Input: a batch of 4 images of 4096x4096 (--quick: 2 of 1024x1024), one mask per image with
a 512x512 hole (--quick: 128) holding an island. Both sides do the same work: fill holes,
grow, feather, crop around the mask with context, resize to ~1 MP for the fill, then put
the (unchanged) fill back. The baseline does it the way many node packs do: a Python loop
over images, scipy hole filling over the whole frame, GrowMask's iterated 3x3 dilation,
a scipy gaussian blur of the whole mask for the feather, PIL 8-bit resizes and paste.

Prints: times and their ratio, grow time for radius 4 vs 64 (ours flat, iterated dilation
linear) and the round-trip error (ours: float throughout, 0 outside the blend mask).
"""
import argparse
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
if "fluxfill" not in sys.modules:  # the pack's pure core, without ComfyUI (as tests/conftest.py)
    pkg = types.ModuleType("fluxfill")
    pkg.__path__ = [str(ROOT)]
    sys.modules["fluxfill"] = pkg

from fluxfill.core import mask_ops  # noqa: E402
from fluxfill.core.crop_geometry import plan_crop  # noqa: E402
from fluxfill.core.prep import PrepOptions, prepare  # noqa: E402
from fluxfill.core.stitch import paste  # noqa: E402

GROW, FEATHER = 16, 8


def make_inputs(n, size, hole):
    g = torch.Generator().manual_seed(0)
    y = torch.linspace(0, 1, size).view(1, size, 1, 1)
    x = torch.linspace(0, 1, size).view(1, 1, size, 1)
    phase = torch.rand(n, 1, 1, 3, generator=g) * 6
    image = (0.5 + 0.35 * torch.sin(7 * x + 5 * y + phase)).float()
    image += torch.rand(n, size, size, 3, generator=g) * 0.1  # some texture, values 0..1
    mask = torch.zeros(n, size, size)
    for i in range(n):
        y0 = size // 8 + (i * size // 5) % (size - hole - size // 8)
        x0 = size - hole - size // 8 - (i * size // 7) % (size - hole - size // 4)
        mask[i, y0:y0 + hole, x0:x0 + hole] = 1
        q = hole // 4
        mask[i, y0 + q:y0 + 2 * q, x0 + q:x0 + 2 * q] = 0  # an island: fill_holes closes it
    return image, mask


def ours(image, mask, grow=GROW):
    opt = PrepOptions(fill_holes=True, grow=grow, feather=FEATHER)
    fill_img, _, stitch = prepare(image, mask, opt)
    return paste(stitch, fill_img), stitch


CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def baseline_grow(m, grow):
    for _ in range(grow):  # ComfyUI's GrowMask: one 3x3 grey dilation per pixel of growth
        m = ndimage.grey_dilation(m, footprint=CROSS)
    return m


def baseline(image, mask, grow=GROW):
    """Peer-style: per image, whole-frame scipy mask work, PIL 8-bit crop/resize, paste."""
    outs = []
    for i in range(image.shape[0]):
        m = ndimage.binary_fill_holes(mask[i].numpy() > 0).astype(np.float32)
        m = baseline_grow(m, grow)
        blur = ndimage.gaussian_filter(m, sigma=FEATHER / 2)  # feather: blur the whole frame
        blend = np.maximum(m, np.clip(2 * blur, 0, 1))  # keep the hole solid, ramp outside
        ys, xs = np.nonzero(blend > 1 / 255)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        plan = plan_crop(image.shape[2], image.shape[1], [box])
        (x0, y0, x1, y1), size = plan.boxes[0], (plan.out_w, plan.out_h)
        pil = Image.fromarray((image[i].numpy() * 255).round().astype(np.uint8))
        fill = pil.crop((x0, y0, x1, y1)).resize(size, Image.LANCZOS)
        # ... the fill model runs here; an unchanged fill comes back ...
        back = fill.resize((x1 - x0, y1 - y0), Image.LANCZOS)
        pil.paste(back, (x0, y0), Image.fromarray((blend[y0:y1, x0:x1] * 255).round().astype(np.uint8)))
        outs.append(torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0))
    return torch.stack(outs)


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        del out  # let the next run reuse the memory
    return min(times)


def grow_times(mask, side):
    """grow alone on one fixed window (the one radius 64 needs), radius 4 vs 64."""
    region = mask[:, :side, :side].clone()
    region[:, : side // 2, : side // 2] = 1
    res = {}
    for radius in (4, 64):
        res[("ours", radius)] = best_of(lambda radius=radius: mask_ops.grow(region, radius), 5)
        res[("iterated 3x3", radius)] = best_of(
            lambda radius=radius: [baseline_grow(m.numpy(), radius) for m in region], 1)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 images of 1024x1024, 128x128 hole (smoke run)")
    args = ap.parse_args()
    n, size, hole = (2, 1024, 128) if args.quick else (4, 4096, 512)
    print(f"input: {n} x {size}x{size} RGB float32, one {hole}x{hole} hole per image; "
          f"fill_holes, grow {GROW}, feather {FEATHER}, crop + context, ~1 MP fill; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    image, mask = make_inputs(n, size, hole)

    t_ours = best_of(lambda: ours(image, mask), 10)
    t0 = time.perf_counter()
    base_out = baseline(image, mask)
    t_base = time.perf_counter() - t0
    print(f"MaskPrep + PasteBack : {t_ours:8.3f} s (best of 10; the machine may be shared)")
    print(f"peer-style baseline  : {t_base:8.3f} s")
    print(f"speed-up             : {t_base / t_ours:8.1f} x")

    t4, t64 = (best_of(lambda r=r: ours(image, mask, grow=r), 5) for r in (4, 64))
    print(f"MaskPrep + PasteBack with grow 4 / 64 : {t4:.3f} s / {t64:.3f} s")
    if not args.quick:
        t0 = time.perf_counter()
        baseline(image, mask, grow=64)
        t_b64 = time.perf_counter() - t0
        print(f"peer-style baseline with grow 64      : {t_b64:.3f} s ({t_b64 / t64:.1f} x)")
    for (who, r), t in sorted(grow_times(mask, min(size, hole + 2 * 65 + 64)).items()):
        print(f"grow alone, {who:12s} radius {r:2d}: {t * 1000:8.1f} ms")

    out, stitch = ours(image, mask)
    x, y = stitch.origins[0]
    cw, ch = stitch.crop_size
    keep = torch.ones(size, size, dtype=torch.bool)
    keep[y:y + ch, x:x + cw] = stitch.blend[0] == 0
    print(f"round trip, outside the blend mask: ours max error {(out[0][keep] - image[0][keep]).abs().max():.2e}"
          f", baseline {(base_out[0][keep] - image[0][keep]).abs().max():.2e} (8-bit)")
    print(f"round trip, whole image (resampled hole): ours max error {(out - image).abs().max():.2e}"
          f", baseline {(base_out - image).abs().max():.2e}")
    fill_img, _, st0 = prepare(image, mask, PrepOptions(target_mp=0.0, feather=FEATHER))
    print(f"round trip at scale 1 (target_mp 0): ours max error {(paste(st0, fill_img) - image).abs().max():.2e}")


if __name__ == "__main__":
    main()
