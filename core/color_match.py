"""Colour match: PasteBack's correction of the colour and brightness drift of a fill.

A fill model regenerates the whole crop, and it (with its VAE) shifts colours a little: pasted
back, the hole then shows as a patch of another tone. The drift is measured where the fill and
the original show the same thing — the context ring just outside the paste area — and spread
over the hole as a smooth field, so it can differ along the border (a two-tone border, a
gradient, a shadow) instead of being one global offset:

1. both crops are averaged over cells of a coarse grid, counting only context pixels (outside
   the paste area, inside the source image), so the fill's new content never enters;
2. on the ring cells (context cells within RING_CELLS of the paste area) the drift is
   original - fill, per channel;
3. push-pull interpolation (a pyramid: averages pulled down, estimates pushed back up where a
   level knows nothing, a few smoothing sweeps per level, as a multigrid solver of the membrane
   equation would) fills the whole grid from the ring: exact on the ring, smooth inside, a
   constant drift stays that constant and a gradient carries on across the hole;
4. the grid is upsampled (bilinear) to the crop and added to the fill, scaled by the strength.

PasteBack applies the corrected fill through the blend mask only, so nothing outside it moves.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as functional

from .mask_ops import nonzero_box

RING_CELLS = 3      # ring width in cells around the paste area
GRID_CELLS = 64     # cells along the shorter side of the crop (cell size 2..16 px)
RELAX = 2           # smoothing sweeps per pyramid level on the way up


def cell_size(h: int, w: int) -> int:
    return max(2, min(16, round(min(h, w) / GRID_CELLS)))


def _pool(x: torch.Tensor, cell: int) -> torch.Tensor:
    return functional.avg_pool2d(x, cell, ceil_mode=True, count_include_pad=False)


def _halve(x: np.ndarray) -> np.ndarray:
    """Sums of 2x2 cells (the last row/column alone where a side is odd)."""
    if x.shape[-2] % 2:
        x = np.concatenate([x, np.zeros_like(x[..., :1, :])], -2)
    if x.shape[-1] % 2:
        x = np.concatenate([x, np.zeros_like(x[..., :1])], -1)
    return x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]


@functools.lru_cache(maxsize=256)
def _axis(n_in: int, n_out: int):
    """Bilinear taps along one axis: (lower index, upper index, weight of the upper)."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    low = np.floor(pos).astype(np.int64)
    return low, np.minimum(low + 1, n_in - 1), (pos - low).astype(np.float32)


def _upsample(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear resize of [..., a, b] to [..., h, w] (pixel centres aligned, edges clamped)."""
    r0, r1, fr = _axis(x.shape[-2], h)
    c0, c1, fc = _axis(x.shape[-1], w)
    rows = x[..., r0, :] + (x[..., r1, :] - x[..., r0, :]) * fr[:, None]
    return rows[..., c0] + (rows[..., c1] - rows[..., c0]) * fc


def push_pull(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """values [N, C, h, w] known where weights [N, 1, h, w] (0..1) > 0; returns them filled in
    everywhere. Down the pyramid a cell's weight is its 2x2 children's sum (at most 1) and its
    value their weighted mean; back up, each level keeps its own value by its weight and takes
    the rest from the level above, then relaxes towards its neighbours' mean. numpy: the grids
    are small, and numpy's per-call cost is a fraction of torch's."""
    levels = [(values, weights)]
    while min(levels[-1][1].shape[-2:]) > 2:
        v, w = levels[-1]
        sum_w = _halve(w)
        levels.append((np.where(sum_w > 0, _halve(v * w) / np.maximum(sum_w, 1e-12), 0), np.minimum(sum_w, 1)))
    v, w = levels[-1]
    estimate = np.where(w > 0, v, 0)
    for v, w in reversed(levels[:-1]):
        estimate = _upsample(estimate, *v.shape[-2:])
        estimate += w * (v - estimate)
        for _ in range(RELAX):       # each unknown cell towards its neighbours' mean: a membrane
            edge = np.pad(estimate, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
            around = (edge[..., :-2, 1:-1] + edge[..., 2:, 1:-1] + edge[..., 1:-1, :-2] + edge[..., 1:-1, 2:]) / 4
            estimate = around + w * (v - around)
    return estimate


def drift(fills: torch.Tensor, reference: torch.Tensor, paste_area: torch.Tensor,
          valid: torch.Tensor) -> torch.Tensor | None:
    """The correction field [k, h, w, 3] (original - fill, smooth) for fills [k, h, w, 3] of a
    crop whose original is reference [h, w, 3]; paste_area [h, w] bool: where the fill is pasted;
    valid [h, w] bool: where the crop holds source pixels (True: everywhere). None without any
    context ring."""
    h, w = paste_area.shape
    cell = cell_size(h, w)
    context = (~paste_area if valid is True else valid & ~paste_area).float()[None, None]   # [1, 1, h, w]
    share = _pool(context, cell)                                        # context fraction per cell
    if not bool((share > 0).any()):
        return None
    planar = torch.cat([reference[None], fills], 0).movedim(-1, 1)      # [1 + k, 3, h, w]
    means = _pool(planar * context, cell) / share.clamp_min(1e-12)
    near = functional.max_pool2d(_pool(paste_area.float()[None, None], cell), 2 * RING_CELLS + 1,
                                 stride=1, padding=RING_CELLS) > 0
    weights = torch.where(near, share, 0.0)
    if not bool((weights > 0).any()):
        return None
    diff = (means[:1] - means[1:]).cpu().numpy()
    field = torch.from_numpy(push_pull(diff, np.broadcast_to(weights.cpu().numpy(), (diff.shape[0], 1,
                                                                                      *diff.shape[2:]))))
    field = functional.interpolate(field.to(fills.device), size=(h, w), mode="bilinear", align_corners=False)
    return field.movedim(1, -1)


def window(paste_area: torch.Tensor):
    """The part (x0, y0, x1, y1) of a crop that colour match reads and changes: the paste area and
    the ring of context around it; None without a paste area."""
    area = nonzero_box(paste_area)
    if area is None:
        return None
    h, w = paste_area.shape
    margin = (RING_CELLS + 2) * cell_size(area[3] - area[1], area[2] - area[0])
    return max(0, area[0] - margin), max(0, area[1] - margin), min(w, area[2] + margin), min(h, area[3] + margin)


def matched(fills: torch.Tensor, reference: torch.Tensor, paste_area: torch.Tensor, valid: torch.Tensor,
            strength: float) -> torch.Tensor:
    """fills [k, h, w, 3] of a window (window()) with `strength` (0..1) of their drift corrected,
    clamped to 0..1; reference, paste_area and valid: the same window of the original, of where
    the fill is pasted and of where the crop holds source pixels."""
    field = drift(fills, reference, paste_area, valid)
    if field is None:
        return fills
    return (fills + float(strength) * field).clamp_(0, 1)
