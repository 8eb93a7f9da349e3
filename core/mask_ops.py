"""Mask operations in float on the mask's device, whole batch at once ([B, H, W], 0..1).

A pixel counts as "in the mask" (foreground) when its value is >= 0.5; soft values are kept
wherever an operation does not decide otherwise. Distances are true Euclidean distances
between pixel centres (core.edt), so grow/shrink/feather cost the same for any radius.
"""
from __future__ import annotations

import numpy as np
import torch

from .edt import distance_to

FG = 0.5  # foreground cut for the binary operations


def invert(mask: torch.Tensor) -> torch.Tensor:
    return 1.0 - mask


def threshold(mask: torch.Tensor, t: float) -> torch.Tensor:
    """A hard mask: values below t become 0 (faint strokes dropped), values at or above t become
    1 (a soft or half-opaque brush counts fully); t = 0 is off."""
    return torch.where(mask < t, 0.0, 1.0).to(mask.dtype) if t > 0 else mask


def bboxes(mask: torch.Tensor) -> list[tuple[int, int, int, int] | None]:
    """Per image the box (x0, y0, x1, y1), end-exclusive, of the pixels > 0; None if empty.

    One full pass (a max over each row), then columns only over the rows that hold the mask."""
    rows = mask.amax(2) > 0  # [B, H]
    h, w = mask.shape[1], mask.shape[2]
    has = rows.any(1).tolist()
    if not any(has):
        return [None] * len(has)
    r8 = rows.to(torch.uint8)
    y0, y1 = r8.argmax(1).tolist(), (h - r8.flip(1).argmax(1)).tolist()
    top, bottom = min(y0[i] for i in range(len(has)) if has[i]), max(y1[i] for i in range(len(has)) if has[i])
    c8 = (mask[:, top:bottom].amax(1) > 0).to(torch.uint8)  # [B, W]
    x0, x1 = c8.argmax(1).tolist(), (w - c8.flip(1).argmax(1)).tolist()
    return [(x0[i], y0[i], x1[i], y1[i]) if has[i] else None for i in range(len(has))]


def nonzero_box(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1), end-exclusive, of the pixels > 0 of one mask [H, W]; None if none."""
    rows = torch.nonzero(mask.amax(1) > 0)
    if not len(rows):
        return None
    cols = torch.nonzero(mask[int(rows[0]):int(rows[-1]) + 1].amax(0) > 0)
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _sweep(reach: torch.Tensor, free: torch.Tensor, dim: int) -> torch.Tensor:
    """Spread `reach` along `dim` through runs of free pixels (walls stop it), both ways."""
    def one_way(r, f):
        seg = (~f).cumsum(dim, dtype=torch.int32)  # run id: every wall starts a new run
        last = torch.where(r, seg, -1).cummax(dim).values
        return last == seg
    fwd = one_way(reach, free)
    bwd = one_way(reach.flip(dim), free.flip(dim)).flip(dim)
    return free & (fwd | bwd)


def fill_holes(mask: torch.Tensor) -> torch.Tensor:
    """Set to 1 every background region that does not touch the array's border.

    On the CPU scipy's flood fill; elsewhere a flood fill from the border by alternating row
    and column sweeps (each a pair of cumulative scans) until a sweep changes nothing: three
    or four sweeps for ordinary shapes. Works inside the union of the mask boxes plus a
    1-pixel ring: a region outside the box cannot be a hole."""
    boxes = [b for b in bboxes(mask >= FG) if b is not None]
    if not boxes:
        return mask
    h, w = mask.shape[1], mask.shape[2]
    x0, y0 = max(0, min(b[0] for b in boxes) - 1), max(0, min(b[1] for b in boxes) - 1)
    x1, y1 = min(w, max(b[2] for b in boxes) + 1), min(h, max(b[3] for b in boxes) + 1)
    free = mask[:, y0:y1, x0:x1] < FG
    out = mask.clone()
    if mask.device.type == "cpu":       # scipy's C flood fill: the same 4-connected background
        from scipy import ndimage
        holes = torch.from_numpy(np.stack([ndimage.binary_fill_holes(~f) & f for f in free.numpy()]))
    else:
        holes = _enclosed(free)
    out[:, y0:y1, x0:x1] = torch.where(holes, 1.0, mask[:, y0:y1, x0:x1])
    return out


def _enclosed(free: torch.Tensor) -> torch.Tensor:
    """The free pixels that no 4-connected path of free pixels joins to the array's border."""
    reach = torch.zeros_like(free)
    for border in (reach[:, 0, :], reach[:, -1, :], reach[:, :, 0], reach[:, :, -1]):
        border.fill_(True)
    reach &= free
    dim, sweeps = 2, 0
    while True:
        nxt = _sweep(reach, free, dim)
        sweeps += 1
        if sweeps > 1 and torch.equal(nxt, reach):
            break  # closed under this sweep, and under the other one that made it
        reach, dim = nxt, 3 - dim
    return free & ~reach


def grow(mask: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Grow (n > 0) or shrink (n < 0) by n pixels of Euclidean distance.

    Growing sets every pixel within n of the foreground to 1; shrinking sets to 0 every pixel
    within |n| of the background. Returns (mask, distance to the new foreground or None): the
    distance comes free when growing and lets feather() skip a second transform."""
    if n > 0:
        d = distance_to(mask >= FG)
        return torch.where(d <= n, 1.0, mask), (d - n).clamp_(min=0)
    if n < 0:
        d_in = distance_to(mask < FG)
        return torch.where(d_in > -n, mask, 0.0), None
    return mask, None


def smoothstep(t: torch.Tensor) -> torch.Tensor:
    return t * t * (3 - 2 * t)


def feather(mask: torch.Tensor, n: int, dist: torch.Tensor | None = None) -> torch.Tensor:
    """Blend mask: 1 on the foreground, a smooth ramp over the n pixels outside it, 0 beyond.

    The ramp runs outward only, so the fill is never mixed with the original inside the hole
    (which would ghost what the mask removes); past n pixels the blend is exactly 0."""
    if n <= 0:
        return mask
    if dist is None:
        dist = distance_to(mask >= FG)
    ramp = smoothstep((1 - dist / (n + 1)).clamp_(0, 1))
    return torch.maximum(mask, ramp)
