"""Separate regions (MaskPrep's `regions` = separate): each connected part of the processed mask,
parts closer than `region_gap` joined, becomes a crop of its own.

The processed mask (holes filled, outpaint area added, grown) is only ever made on windows, so
finding its parts goes in two steps:

1. candidates, from one full-frame pass: the mask's block grid (is any pixel of each BLOCK x
   BLOCK block set?), its blocks joined when they may be closer than region_gap plus what
   growing can bridge, plus the outpaint strips. Candidates are boxes of the canvas that can
   only be too generous: two parts in different candidates always end up in different regions.
2. regions, exactly, on each candidate's window: MaskPrep's own shaping (core.prep.shape),
   then the parts of the result (8-connected), joined where they come closer than region_gap
   (the nearest-part map of one distance transform gives each pair's distance); every pixel
   of the blend mask goes with the part nearest to it.

Labelling runs on the CPU (scipy.ndimage, which ComfyUI itself requires); grids and windows are
small.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .crop_geometry import Box
from .mask_ops import nonzero_box

BLOCK = 16            # block side of the candidate grid, in pixels
MAX_REGIONS = 16      # per image
EIGHT = np.ones((3, 3), bool)


@dataclass
class Region:
    """One region of one mask: its fill and blend masks on a window of the canvas."""
    origin: tuple[int, int]      # window top-left (x, y) in the canvas
    fill_mask: torch.Tensor      # [h, w] the processed mask of this region only
    blend: torch.Tensor          # [h, w] its feathered blend mask
    fill_box: Box                # canvas boxes of fill_mask > 0 and blend > 0
    blend_box: Box


def block_grid(mask: torch.Tensor, block: int = BLOCK) -> np.ndarray:
    """[M, ceil(H/block), ceil(W/block)] bool: does a block hold any pixel > 0? One pass."""
    m, h, w = mask.shape
    full = h // block * block
    rows = mask[:, :full].reshape(m, h // block, block, w).amax(2)
    if full < h:
        rows = torch.cat([rows, mask[:, full:].amax(1, keepdim=True)], 1)
    rows = torch.nn.functional.pad(rows, (0, -w % block))
    grid = rows.reshape(m, rows.shape[1], -1, block).amax(3) > 0
    return grid.cpu().numpy()


def grid_box(grid: np.ndarray, size: tuple[int, int], block: int = BLOCK) -> Box | None:
    """The box (image pixels, block-aligned, within the image of `size` (w, h)) of a block grid's
    set blocks; None when none is set."""
    rows, cols = np.nonzero(grid.any(1))[0], np.nonzero(grid.any(0))[0]
    if not len(rows):
        return None
    w, h = size
    return (int(cols[0]) * block, int(rows[0]) * block, min(w, (int(cols[-1]) + 1) * block),
            min(h, (int(rows[-1]) + 1) * block))


def _distance(a: Box, b: Box) -> int:
    """Chebyshev gap between two boxes in pixels (0 when they touch or overlap)."""
    return max(0, a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3])


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _root(parent: list[int], i: int) -> int:
    """Union-find: the representative of i (paths halved on the way)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def merge_boxes(boxes: list[Box], link: int) -> list[list[int]]:
    """Groups of box indices: boxes closer than `link` (or overlapping) in one group, and groups
    whose joint boxes come that close joined too. Sweeps along x (sorted by left edge, only boxes
    that reach that far are compared) until a sweep joins nothing: thousands of far-apart boxes
    (a speckled mask) cost one sorted pass, not a comparison of every pair."""
    groups = [[i] for i in range(len(boxes))]
    spans = list(boxes)
    while True:
        order = sorted(range(len(spans)), key=lambda i: spans[i][0])
        parent = list(range(len(spans)))
        active: list[int] = []
        for i in order:
            active = [j for j in active if spans[j][2] + link > spans[i][0]]
            for j in active:
                if _distance(spans[i], spans[j]) < link:
                    parent[_root(parent, i)] = _root(parent, j)
            active.append(i)
        joined: dict[int, int] = {}
        new_groups, new_spans = [], []
        for i in range(len(spans)):
            r = _root(parent, i)
            if r not in joined:
                joined[r] = len(new_groups)
                new_groups.append([])
                new_spans.append(spans[i])
            k = joined[r]
            new_groups[k] += groups[i]
            new_spans[k] = _union(new_spans[k], spans[i])
        if len(new_groups) == len(groups):
            return groups
        groups, spans = new_groups, new_spans


@dataclass
class Candidate:
    box: Box                     # canvas box of the mask content (and strips) it holds
    blocks: np.ndarray           # [gh, gw] bool: the grid blocks that belong to it
    strips: list[Box]            # outpaint strips it holds (canvas boxes)


def candidates(grid: np.ndarray, strips: list[Box], offset: tuple[int, int], size: tuple[int, int],
               link: int, block: int = BLOCK) -> list[Candidate]:
    """Candidate windows of one mask's grid (image coordinates, placed at `offset` in the canvas;
    `size` = the image's (w, h)). Blocks closer than `link` px, and boxes closer than that, join."""
    reach = math.ceil(link / (2 * block)) + 1
    joined = ndimage.maximum_filter(grid, size=2 * reach + 1, mode="constant")    # a square dilation
    labels, _ = ndimage.label(joined, EIGHT)
    labels = np.where(grid, labels, 0)
    left, top = offset
    w, h = size
    boxes, owners = [], []
    for index, found in enumerate(ndimage.find_objects(labels)):
        if found is None:
            continue
        ys, xs = found
        boxes.append((xs.start * block + left, ys.start * block + top,
                      min(xs.stop * block, w) + left, min(ys.stop * block, h) + top))
        owners.append(("blocks", index + 1))
    for strip in strips:
        boxes.append(strip)
        owners.append(("strip", strip))
    out = []
    for group in merge_boxes(boxes, link):
        box = boxes[group[0]]
        for i in group[1:]:
            box = _union(box, boxes[i])
        ids = [owners[i][1] for i in group if owners[i][0] == "blocks"]
        out.append(Candidate(box=box, blocks=np.isin(labels, ids),
                             strips=[owners[i][1] for i in group if owners[i][0] == "strip"]))
    return out


def member_pixels(candidate: Candidate, origin, w: int, h: int, offset, block: int = BLOCK) -> torch.Tensor:
    """[h, w] bool: the pixels of a window (canvas `origin`) whose block belongs to the candidate."""
    gh, gw = candidate.blocks.shape
    ys = np.clip((np.arange(h) + origin[1] - offset[1]) // block, 0, gh - 1)
    xs = np.clip((np.arange(w) + origin[0] - offset[0]) // block, 0, gw - 1)
    return torch.from_numpy(candidate.blocks[ys][:, xs].copy())


def _groups(parts: np.ndarray, count: int, gap: int, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    """Group id per part label (index 0 unused): parts closer than `gap` px share a group.
    (iy, ix): each pixel's nearest part pixel. Neighbouring pixels whose nearest parts differ
    give a pair of points, one in each part; the closest such pair is (to a pixel) the two
    parts' distance."""
    parent = list(range(count + 1))
    nearest = parts[iy, ix]
    shifts = ((slice(None), slice(None, -1), slice(None), slice(1, None)),          # right
              (slice(None, -1), slice(None), slice(1, None), slice(None)),          # down
              (slice(None, -1), slice(None, -1), slice(1, None), slice(1, None)),   # down-right
              (slice(None, -1), slice(1, None), slice(1, None), slice(None, -1)))   # down-left
    for ya, xa, yb, xb in shifts:
        a, b = nearest[ya, xa], nearest[yb, xb]
        apart = np.hypot(iy[ya, xa] - iy[yb, xb], ix[ya, xa] - ix[yb, xb])
        pick = (a != b) & (apart < gap)
        for p, q in set(zip(a[pick].tolist(), b[pick].tolist())):
            parent[_root(parent, p)] = _root(parent, q)
    return np.array([_root(parent, i) for i in range(count + 1)])


def _box(mask: torch.Tensor, origin) -> Box | None:
    box = nonzero_box(mask)
    if box is None:
        return None
    x, y = origin
    return box[0] + x, box[1] + y, box[2] + x, box[3] + y


def split(fill_mask: torch.Tensor, blend: torch.Tensor, origin, gap: int) -> list[Region]:
    """The regions of one shaped window ([h, w] fill and blend masks at canvas `origin`)."""
    parts, count = ndimage.label(fill_mask.cpu().numpy() > 0, EIGHT)
    if count == 0:
        return []
    if count == 1:
        owner_of_pixel = None
        group_ids = [1]
    else:       # every pixel goes with its nearest part's group (one distance transform)
        _, (iy, ix) = ndimage.distance_transform_edt(parts == 0, return_indices=True)
        group = _groups(parts, count, gap, iy, ix)
        owner_of_pixel = torch.from_numpy(group[parts[iy, ix]]).to(blend.device)
        group_ids = sorted(set(group[1:].tolist()))
    regions = []
    for gid in group_ids:
        if owner_of_pixel is None:
            fill_g, blend_g = fill_mask, blend
        else:
            own = owner_of_pixel == gid
            fill_g = torch.where(own, fill_mask, 0.0)
            blend_g = torch.where(own, blend, 0.0)
        regions.append(Region(origin=tuple(origin), fill_mask=fill_g, blend=blend_g,
                              fill_box=_box(fill_g, origin), blend_box=_box(blend_g, origin)))
    return regions


def find_regions(mask: torch.Tensor, grid: np.ndarray, strips: list[Box], offset, canvas: tuple[int, int],
                 gap: int, grow: int, reach: int, shape: Callable, window: Callable) -> list[Region]:
    """The regions of one mask [H, W] (after invert/threshold), in reading order (reading_order);
    grid: its block_grid. shape(region, pad_area) is MaskPrep's shaping of a window; window(origin,
    w, h) gives the window's pad area; reach = how far shaping reaches beyond the mask. More than
    MAX_REGIONS: a list that long or longer, not all of them made (the caller refuses it)."""
    h, w = mask.shape
    link = gap + 2 * max(grow, 0) + 2
    cw, ch = canvas
    found = candidates(grid, strips, offset, (w, h), link)
    if grow >= 0 and len(found) > MAX_REGIONS:
        return [None] * len(found)     # each holds a region at least (no shrink): too many already
    regions = []
    for cand in found:
        x0, y0 = max(0, cand.box[0] - reach), max(0, cand.box[1] - reach)
        x1, y1 = min(cw, cand.box[2] + reach), min(ch, cand.box[3] + reach)
        ww, wh = x1 - x0, y1 - y0
        lx, ly = x0 - offset[0], y0 - offset[1]
        part = torch.zeros(wh, ww, device=mask.device)
        sx0, sy0, sx1, sy1 = max(lx, 0), max(ly, 0), min(lx + ww, w), min(ly + wh, h)
        if sx0 < sx1 and sy0 < sy1:
            part[sy0 - ly:sy1 - ly, sx0 - lx:sx1 - lx] = mask[sy0:sy1, sx0:sx1]
        part = torch.where(member_pixels(cand, (x0, y0), ww, wh, offset).to(mask.device), part, 0.0)
        pad_area = window((x0, y0), ww, wh, cand.strips)
        fill_m, blend = shape(part[None], None if pad_area is None else pad_area[None])
        regions += split(fill_m[0], blend[0], (x0, y0), gap)
        if len(regions) > MAX_REGIONS:
            return regions             # too many: the caller says so, the rest need not be made
    return reading_order(regions)


def reading_order(regions: list[Region]) -> list[Region]:
    """Top to bottom, then left to right: regions whose heights overlap the first of a row (by
    top) are in that row, and a row is read from left to right."""
    rows: list[list[Region]] = []
    for region in sorted(regions, key=lambda r: (r.fill_box[1], r.fill_box[0])):
        if rows and region.fill_box[1] < rows[-1][0].fill_box[3]:
            rows[-1].append(region)
        else:
            rows.append([region])
    return [region for row in rows for region in sorted(row, key=lambda r: r.fill_box[0])]


def mask_parts(mask: torch.Tensor, offset) -> list[Box]:
    """Canvas boxes (pixel-exact) of the parts of a mask [H, W] (parts of its block grid), the
    image placed at `offset` in the canvas: a context mask's areas, each given to one region."""
    grid = block_grid(mask[None])[0]
    labels, _ = ndimage.label(grid, EIGHT)
    boxes = []
    for ys, xs in ndimage.find_objects(labels):
        y0, x0 = ys.start * BLOCK, xs.start * BLOCK
        box = _box(mask[y0:ys.stop * BLOCK, x0:xs.stop * BLOCK], (x0 + offset[0], y0 + offset[1]))
        if box is not None:
            boxes.append(box)
    return boxes
