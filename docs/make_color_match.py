"""Draws docs/color_match.png: PasteBack's colour match, before and after, with the pack's own code.

    .hosts/comfyui-0.30.0.venv/bin/python docs/make_color_match.py

The example photo with three holes (workflows/inputs/fluxfill_flower_beds.png) goes through
MaskPrep (separate regions). A stand-in for a fill model repaints each crop: flowers in the hole,
and over the whole crop the kind of drift a model and its VAE leave (warmer, a little brighter,
more so towards one side). Pasted back with color_match 0 the holes show as patches of another
tone; with 1 they match the lawn around them. The picture shows one region, zoomed, both ways.
"""
from pathlib import Path
import sys
import types

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
if "fluxfill" not in sys.modules:
    pkg = types.ModuleType("fluxfill")
    pkg.__path__ = [str(ROOT)]
    sys.modules["fluxfill"] = pkg

from fluxfill.core.prep import PrepOptions, prepare  # noqa: E402
from fluxfill.core.stitch import paste  # noqa: E402


def flowers(fill: torch.Tensor, mask: torch.Tensor, seed: int) -> torch.Tensor:
    """Red and yellow dots where the mask is set, on the crop's own (blurred) lawn."""
    rng = np.random.default_rng(seed)
    h, w = mask.shape
    img = Image.fromarray((fill.numpy() * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    ys, xs = np.nonzero(mask.numpy() > 0.5)
    for i in rng.choice(len(xs), size=min(len(xs), 260), replace=False):
        r = int(rng.integers(4, 9))
        colour = (220, 40, 50) if rng.random() < 0.6 else (240, 200, 40)
        draw.ellipse((xs[i] - r, ys[i] - r, xs[i] + r, ys[i] + r), fill=colour)
    return torch.from_numpy(np.asarray(img).astype(np.float32) / 255.0)


def drift(fill: torch.Tensor) -> torch.Tensor:
    """A model's colour drift over the whole crop: warmer, brighter, more so on the right."""
    ramp = torch.linspace(0.0, 1.0, fill.shape[1]).view(1, -1, 1)
    return (fill * torch.tensor([1.10, 1.02, 0.90]) + 0.03 + 0.05 * ramp).clamp(0, 1)


def main(out=ROOT / "docs" / "color_match.png"):
    src = Image.open(ROOT / "workflows" / "inputs" / "fluxfill_flower_beds.png")
    rgba = torch.from_numpy(np.asarray(src).astype(np.float32) / 255.0)
    image, mask = rgba[None, ..., :3], 1.0 - rgba[None, ..., 3]
    fills, fill_masks, stitch = prepare(image, mask, PrepOptions(regions="separate", grow=8, feather=16,
                                                                 target_mp=0.75))
    made = torch.stack([drift(flowers(f, m, i)) for i, (f, m) in enumerate(zip(fills, fill_masks))])
    before, after = paste(stitch, made)[0], paste(stitch, made, color_match=1.0)[0]
    (x, y), (cw, ch) = stitch.pieces[1].origin, stitch.pieces[1].crop_size
    view = (slice(y, y + ch), slice(x, x + cw))
    panels = [Image.fromarray((t[view].numpy() * 255).round().astype(np.uint8)) for t in (before, after)]
    scale = 480 / panels[0].height
    panels = [p.resize((round(p.width * scale), 480), Image.LANCZOS) for p in panels]
    canvas = Image.new("RGB", (panels[0].width * 2 + 16, 480 + 36), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (panel, label) in enumerate(zip(panels, ("color_match 0 (off)", "color_match 1"))):
        canvas.paste(panel, (i * (panel.width + 16), 36))
        draw.text((i * (panel.width + 16) + 8, 10), label, fill=(0, 0, 0))
    canvas.save(out, optimize=True)
    print("wrote", out, canvas.size)


if __name__ == "__main__":
    main()
