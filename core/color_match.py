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

import torch
import torch.nn.functional as functional

RING_CELLS = 3      # ring width in cells around the paste area
GRID_CELLS = 64     # cells along the shorter side of the crop (cell size 2..16 px)
RELAX = 4           # smoothing sweeps per pyramid level on the way up


def cell_size(h: int, w: int) -> int:
    return max(2, min(16, round(min(h, w) / GRID_CELLS)))


def _pool(x: torch.Tensor, cell: int) -> torch.Tensor:
    return functional.avg_pool2d(x, cell, ceil_mode=True, count_include_pad=False)


def push_pull(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """values [N, C, h, w] known where weights [N, 1, h, w] (0..1) > 0; returns them filled in
    everywhere. Down the pyramid a cell's weight is its 2x2 children's sum (at most 1) and its
    value their weighted mean; back up, each level keeps its own value by its weight and takes
    the rest from the level above."""
    levels = [(values, weights)]
    while min(levels[-1][1].shape[-2:]) > 1:
        v, w = levels[-1]
        mean_w = _pool(w, 2)
        mean_vw = _pool(v * w, 2)
        levels.append((torch.where(mean_w > 0, mean_vw / mean_w.clamp_min(1e-12), 0.0),
                       (4 * mean_w).clamp_max(1.0)))
    v, w = levels[-1]
    estimate = torch.where(w > 0, v, 0.0)
    for v, w in reversed(levels[:-1]):
        estimate = w * v + (1 - w) * functional.interpolate(estimate, size=v.shape[-2:], mode="bilinear",
                                                            align_corners=False)
        for _ in range(RELAX):       # smooth the unknown cells towards their neighbours' mean (a
            estimate = w * v + (1 - w) * _neighbours(estimate)   # membrane: gradients carry on)
    return estimate


def _neighbours(x: torch.Tensor) -> torch.Tensor:
    """The mean of each cell's 4 neighbours (edges repeat)."""
    p = functional.pad(x, (1, 1, 1, 1), mode="replicate")
    return (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]) / 4


def drift(fills: torch.Tensor, reference: torch.Tensor, paste_area: torch.Tensor,
          valid: torch.Tensor) -> torch.Tensor | None:
    """The correction field [k, h, w, 3] (original - fill, smooth) for fills [k, h, w, 3] of a
    crop whose original is reference [h, w, 3]; paste_area [h, w] bool: where the fill is pasted;
    valid [h, w] bool: where the crop holds source pixels. None without any context ring."""
    h, w = paste_area.shape
    cell = cell_size(h, w)
    context = (valid & ~paste_area).float()[None, None]                 # [1, 1, h, w]
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
    field = push_pull(means[:1] - means[1:], weights.expand(fills.shape[0], -1, -1, -1))
    field = functional.interpolate(field, size=(h, w), mode="bilinear", align_corners=False)
    return field.movedim(1, -1)


def matched(fills: torch.Tensor, reference: torch.Tensor, paste_area: torch.Tensor, valid: torch.Tensor,
            strength: float) -> torch.Tensor:
    """fills [k, h, w, 3] with `strength` (0..1) of their drift corrected, clamped to 0..1."""
    field = drift(fills, reference, paste_area, valid)
    if field is None:
        return fills
    return (fills + float(strength) * field).clamp_(0, 1)
