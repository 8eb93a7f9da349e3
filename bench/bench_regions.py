"""Benchmark (not a test): several holes per image, and one hole against the machine's floor.

    .hosts/comfyui-0.30.0.venv/bin/python bench/bench_regions.py [--quick] [--cropandstitch DIR]

Input: 4 images of 4096x4096 (--quick: 2 of 1024x1024) with 1 or 8 square holes each (each
holding an island that fill holes closes). Times are the best of several runs, all in this one
run, so the ratios compare like with like on whatever the machine is doing:

- floor: what any MaskPrep + PasteBack must do on these images — one full-frame pass over the
  masks (to find them) and one full-frame copy (the output);
- the floor plus the two resizes of a crop to the fill's size (1 MP) and back, which any
  crop-and-stitch does besides (on CPU they cost about as much as the floor itself);
- one hole, at CropAndStitch's defaults (fill holes on, blend 32 = our feather 32): MaskPrep +
  PasteBack, and its ratio to both floors (aim: 1.25x the first);
- 8 holes, regions separate, colour match 1: MaskPrep + PasteBack, against the same batch with
  one hole and the same settings (target: at most 2x);
- with --cropandstitch DIR (a checkout of lquesada/ComfyUI-Inpaint-CropAndStitch; needs the
  host: FLUXFILL_COMFYUI): its Inpaint Crop + Inpaint Stitch at their defaults on the one-hole
  batch, beside both of ours (target: 8 holes of ours ahead of its one hole).
The fill is the crop itself (no model runs), so only crop and paste are measured.
"""
import argparse
import importlib.util
import os
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if "fluxfill" not in sys.modules:  # the pack's pure core, without ComfyUI (as tests/conftest.py)
    pkg = types.ModuleType("fluxfill")
    pkg.__path__ = [str(ROOT)]
    sys.modules["fluxfill"] = pkg

from fluxfill.core.prep import PrepOptions, prepare  # noqa: E402
from fluxfill.core.stitch import new_output, paste, resize  # noqa: E402

FEATHER = 32      # CropAndStitch's default blend
HOLE = 128        # side of each square hole: small objects in a 4096x4096 photo (blemishes, signs, people)


def make_inputs(n: int, size: int, holes: int, hole: int):
    """n smooth textured images and masks with `holes` square holes each (an island in each)."""
    g = torch.Generator().manual_seed(0)
    y = torch.linspace(0, 1, size).view(1, size, 1, 1)
    x = torch.linspace(0, 1, size).view(1, 1, size, 1)
    image = (0.5 + 0.35 * torch.sin(7 * x + 5 * y + torch.rand(n, 1, 1, 3, generator=g) * 6)).float()
    image += torch.rand(n, size, size, 3, generator=g) * 0.1
    mask = torch.zeros(n, size, size)
    cells = 3 if holes > 1 else 1                   # holes on a 3x3 grid (8 of its 9 cells)
    step = size // cells
    for i in range(n):
        for k in range(holes):
            cx, cy = (k % cells) * step + step // 2, (k // cells) * step + step // 2
            if holes == 1:
                cx, cy = size // 3 + i * size // 16, size // 2 - i * size // 16
            x0, y0 = cx - hole // 2, cy - hole // 2
            mask[i, y0:y0 + hole, x0:x0 + hole] = 1
            q = hole // 4
            mask[i, y0 + q:y0 + 2 * q, x0 + q:x0 + 2 * q] = 0
    return image, mask


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        del out
    return min(times)


def floor(image, mask):
    found = mask.amax(2)                                   # one full-frame pass over the masks
    out = new_output(image.shape, image.dtype, image.device)
    out.copy_(image)                                       # one full-frame copy: the output
    return found, out


def floor_and_resizes(image, mask, pieces, fill_size):
    """The floor plus the two resizes any crop-to-the-fill's-size-and-back must do: each crop
    (where ours puts it) to the fill's size, and back."""
    found, out = floor(image, mask)
    (cw, ch), backs = pieces[0].crop_size, []
    for p in pieces:
        crop = image[p.source:p.source + 1, p.origin[1]:p.origin[1] + ch, p.origin[0]:p.origin[0] + cw]
        backs.append(resize(resize(crop, *fill_size), cw, ch))
    return found, out, backs


def ours(image, mask, **opt):
    """MaskPrep + PasteBack with `opt` (MaskPrep's own defaults otherwise); the fill is the crop."""
    color_match = opt.pop("color_match", 0.0)
    fills, _, stitch = prepare(image, mask, PrepOptions(**opt))
    return paste(stitch, fills, color_match=color_match)


def load_cropandstitch(folder: Path):
    """CropAndStitch's module, imported inside the host under test (it imports comfy, nodes)."""
    comfy = os.environ.get("FLUXFILL_COMFYUI")
    if not comfy:
        raise SystemExit("--cropandstitch needs FLUXFILL_COMFYUI (the ComfyUI it imports from)")
    sys.path.insert(0, comfy)
    import comfy.cli_args
    comfy.cli_args.args.cpu = True
    import comfy.model_management  # noqa: F401  (after args.cpu)
    spec = importlib.util.spec_from_file_location("cropandstitch", folder / "inpaint_cropandstitch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cropandstitch(module, image, mask):
    crop, stitch = module.InpaintCropImproved(), module.InpaintStitchImproved()
    req = crop.INPUT_TYPES()["required"]
    defaults = {k: v[1]["default"] for k, v in req.items() if len(v) > 1 and "default" in v[1]}
    stitcher, cropped, _ = crop.inpaint_crop(image=image, mask=mask, **defaults)[:3]
    return stitch.inpaint_stitch(stitcher, cropped)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 images of 1024x1024 (smoke run)")
    ap.add_argument("--cropandstitch", type=Path, help="a checkout of ComfyUI-Inpaint-CropAndStitch")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--hole", type=int, default=HOLE, help=f"hole side in px (default {HOLE})")
    args = ap.parse_args()
    n, size, hole, many = (2, 1024, 48, 8) if args.quick else (4, 4096, args.hole, 8)
    print(f"input: {n} x {size}x{size} RGB float32, 1 or {many} holes of {hole}x{hole} per image; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    one_image, one_mask = make_inputs(n, size, 1, hole)
    many_image, many_mask = make_inputs(n, size, many, hole)
    r = args.repeat
    t_floor = best_of(lambda: floor(one_image, one_mask), r)
    t_one = best_of(lambda: ours(one_image, one_mask, fill_holes=True, feather=FEATHER), r)
    _, _, stitch = prepare(one_image, one_mask, PrepOptions(fill_holes=True, feather=FEATHER))
    t_resized = best_of(lambda: floor_and_resizes(one_image, one_mask, stitch.pieces, stitch.fill_size), r)
    print(f"floor (one mask pass + one output copy)      {t_floor:7.3f} s")
    print(f"floor + the fill's two resizes (crop <-> 1 MP) {t_resized:5.3f} s")
    print(f"ours, 1 hole (fill holes, feather 32)        {t_one:7.3f} s   {t_one / t_floor:5.2f}x the floor "
          f"(aim 1.25x), {t_one / t_resized:4.2f}x the floor with the resizes")
    sep = {"regions": "separate", "color_match": 1.0}
    t_sep1 = best_of(lambda: ours(one_image, one_mask, **sep), r)
    t_sep8 = best_of(lambda: ours(many_image, many_mask, **sep), r)
    print(f"ours, 1 hole, separate + colour match        {t_sep1:7.3f} s")
    print(f"ours, {many} holes, separate + colour match       {t_sep8:7.3f} s   {t_sep8 / t_sep1:5.2f}x one hole "
          f"(target <= 2x)")
    if args.cropandstitch:
        module = load_cropandstitch(args.cropandstitch)
        t_cs = best_of(lambda: cropandstitch(module, one_image, one_mask), max(1, r // 2))
        print(f"CropAndStitch, 1 hole, its defaults          {t_cs:7.3f} s   ours 1 hole {t_cs / t_one:5.2f}x "
              f"faster, ours {many} holes {t_cs / t_sep8:5.2f}x faster (target > 1)")


if __name__ == "__main__":
    main()
