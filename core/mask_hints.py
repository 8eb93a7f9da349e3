"""What MaskPrep says about a mask that looks wrong, before any work: hints, never errors.

Masks that silently do (almost) nothing are a common pain: a soft brush that is never fully
opaque (the fill only shows through partly), a mask that is the inverse of what was meant
(almost everything masked). Each hint names the input that fixes it. Checks stay cheap: the
peak is read inside the mask's box only, the masked share only when the box is most of the
image.
"""
from __future__ import annotations

import math

import torch

OPAQUE = 0.99        # a peak below this is "never fully opaque" (8-bit editors stop at 254/255 = 0.996)
MOSTLY = 0.9         # a masked share at least this is "almost all of the image"


def _which(indices: list[int], total: int) -> str:
    if total == 1:
        return "the mask"
    return f"the mask of image {indices[0]}" if len(indices) == 1 else \
        f"the masks of images {', '.join(map(str, indices))}"


def mask_hints(mask: torch.Tensor, boxes: list, opt, padded: bool) -> list[str]:
    """Hints for a mask [M, H, W] after invert/threshold; boxes: each mask's box (canvas
    coordinates, shifted by the padding's left/top), None when empty."""
    left, top = max(0, int(opt.pad[0])), max(0, int(opt.pad[1]))
    h, w = mask.shape[1:]
    soft, mostly, empty = {}, {}, []
    for i, box in enumerate(boxes):
        if box is None:
            empty.append(i)
            continue
        x0, y0, x1, y1 = box[0] - left, box[1] - top, box[2] - left, box[3] - top
        peak = float(mask[i, y0:y1, x0:x1].max())
        if peak < OPAQUE:
            soft[i] = peak
        if (x1 - x0) * (y1 - y0) >= MOSTLY * h * w:
            share = float((mask[i] >= 0.5).float().mean())
            if share >= MOSTLY:
                mostly[i] = share
    hints = []
    if soft:
        lowest, highest = min(soft.values()), max(soft.values())
        peaks = f"{lowest:.3g}" if len(soft) == 1 else f"{lowest:.3g} to {highest:.3g}"
        hints.append(f"{_which(sorted(soft), len(boxes))} is never fully opaque (highest value {peaks}): set "
                     f"threshold to {math.floor(lowest * 100) / 100:.2f} (values at or above it count as fully "
                     f"masked) or paint at full opacity; as it is, the fill only partly replaces the original.")
    if mostly:
        fix = "turn invert off" if opt.invert else "turn on invert"
        hints.append(f"{_which(sorted(mostly), len(boxes))} covers {min(mostly.values()):.0%} of the image: if "
                     f"it is the wrong way round (painted what to keep), {fix}.")
    if empty and padded:
        hints.append(f"{_which(empty, len(boxes))} is empty: only the outpaint padding (pad_left, pad_top, "
                     f"pad_right, pad_bottom) is filled, which is fine for outpainting.")
    return hints
