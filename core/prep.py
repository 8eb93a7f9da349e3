"""MaskPrep's pipeline: (image, mask) -> what the fill model sees + the STITCH to put it back.

Order: invert -> threshold -> fill holes -> outpaint area -> grow/shrink -> feather, then crop
and resize. The mask work runs on a window around each mask's box (plus the grow and feather
reach), never on the whole frame; the only full-frame passes are invert/threshold (when
asked) and finding the mask's box (or, for separate regions, its block grid: core.regions).

regions = together: one crop per image around all of its mask (one crop size for the batch).
regions = separate: one crop per region (core.regions), each with its own size and scale; all
crops are resized to one fill size (a batch has one size), image-major, regions in reading order.
The regions of an image share its target_mp (each gets target_mp / regions), so an image costs
the same whatever its number of holes, and every paid pixel is near a hole.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import mask_ops
from .crop_geometry import Box, place, plan_crop, region_crops
from .mask_hints import mask_hints
from .regions import MAX_REGIONS, block_grid, find_regions, grid_box, mask_parts
from .stitch import Piece, Stitch, pad_color, resize, take, window

EMPTY_HELP = ("paint the area to fill in the mask editor (right-click the LoadImage node > "
              "Open in MaskEditor), or set outpaint padding to extend the image")
REGION_MODES = ("together", "separate")
SMALL_FILL = 512 * 512   # below this, a hint says that the regions share target_mp


@dataclass
class PrepOptions:
    invert: bool = False
    threshold: float = 0.0
    fill_holes: bool = False
    grow: int = 0
    feather: int = 8
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, top, right, bottom
    crop: bool = True
    context_factor: float = 1.2
    context_px: int = 32
    target_mp: float = 1.0
    multiple: int = 16
    max_side: int = 2048
    regions: str = "together"
    region_gap: int = 64


def check_inputs(image: torch.Tensor, mask: torch.Tensor | None, padded: bool) -> torch.Tensor:
    """The mask as [M, H, W] float on the image's device, or a ValueError that says the fix."""
    if image.ndim != 4:
        raise ValueError(f"MaskPrep: image must be an IMAGE batch [B, H, W, C], got shape {tuple(image.shape)}")
    if mask is None:
        if padded:
            return torch.zeros(1, image.shape[1], image.shape[2], device=image.device)
        raise ValueError(f"MaskPrep: no mask is connected: connect LoadImage's mask and {EMPTY_HELP}.")
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ValueError(f"MaskPrep: mask must be a MASK [B, H, W], got shape {tuple(mask.shape)}")
    n, h, w, _ = image.shape
    mask = mask.to(device=image.device, dtype=torch.float32)
    if mask.shape[1:] != (h, w):
        if padded and not bool(mask.any()):  # empty mask + outpaint: the padding is the hole
            return torch.zeros(1, h, w, device=image.device)
        what = (f"is {mask.shape[2]}x{mask.shape[1]} and empty, which is what LoadImage gives for "
                f"an image without alpha: {EMPTY_HELP}") if not bool(mask.any()) else (
                f"is {mask.shape[2]}x{mask.shape[1]} but the image is {w}x{h}: give a mask of the "
                f"image's size")
        raise ValueError(f"MaskPrep: the mask {what}.")
    if mask.shape[0] not in (1, n):
        raise ValueError(f"MaskPrep got {n} image(s) and {mask.shape[0]} masks: give one mask "
                         f"(used for every image) or one mask per image.")
    return mask


def check_context(image: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor | None:
    """context_mask as [M, H, W] on the image's device (None when not connected)."""
    if context is None:
        return None
    context = context.unsqueeze(0) if context.ndim == 2 else context
    n, h, w, _ = image.shape
    if context.ndim != 3 or context.shape[1:] != (h, w):
        raise ValueError(f"MaskPrep: context_mask has shape {tuple(context.shape)} but the image is {w}x{h}: "
                         f"give a mask of the image's size, or disconnect context_mask.")
    if context.shape[0] not in (1, n):
        raise ValueError(f"MaskPrep got {n} image(s) and {context.shape[0]} context masks: give one "
                         f"context_mask (used for every image) or one per image.")
    return context.to(device=image.device, dtype=torch.float32)


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _shift(box: Box | None, dx: int, dy: int) -> Box | None:
    return None if box is None else (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def pad_strips(pad, w, h) -> list[Box]:
    """The outpaint strips in the canvas (none without padding)."""
    left, top, right, bottom = pad
    cw, ch = w + left + right, h + top + bottom
    strips = ((left, (0, 0, left, ch)), (top, (0, 0, cw, top)),
              (right, (left + w, 0, cw, ch)), (bottom, (0, top + h, cw, ch)))
    return [strip for on, strip in strips if on > 0]


def shape(region, pad_area, opt):
    """fill holes -> outpaint area -> grow/shrink -> feather, on the [M, h, w] windows."""
    m = mask_ops.fill_holes(region) if opt.fill_holes else region
    if pad_area is not None:
        m = torch.where(pad_area, 1.0, m)
    m, dist = mask_ops.grow(m, opt.grow)
    if pad_area is not None and opt.grow < 0:
        m = torch.where(pad_area, 1.0, m)  # the new area stays a hole whatever the shrink
    return m, mask_ops.feather(m, opt.feather, dist)


def prepare(image: torch.Tensor, mask: torch.Tensor | None, opt: PrepOptions,
            context: torch.Tensor | None = None, on_hint: Callable[[str], None] | None = None):
    """Returns (fill image [F, oh, ow, 3], fill mask [M or F, oh, ow], Stitch). mask None = no
    mask, which is fine with outpaint padding; context: MaskPrep's context_mask (the crop
    covers it too, it is not filled). on_hint(text) hears what is odd about the mask, before
    any work is done."""
    pad = tuple(max(0, int(p)) for p in opt.pad)
    if opt.regions not in REGION_MODES:
        raise ValueError(f"MaskPrep: regions must be one of {', '.join(REGION_MODES)}, got {opt.regions!r}.")
    mask = check_inputs(image, mask, any(pad))
    context = check_context(image, context)
    if opt.invert:
        mask = mask_ops.invert(mask)
    mask = mask_ops.threshold(mask, opt.threshold)
    n, h, w, _ = image.shape
    left, top, _, _ = pad
    grid = block_grid(mask) if opt.regions == "separate" else None    # the one full-frame pass
    found = mask_ops.bboxes(mask) if grid is None else [grid_box(g, (w, h)) for g in grid]
    boxes = [_shift(bb, left, top) for bb in found]
    strips = pad_strips(pad, w, h)
    if on_hint is not None:
        for hint in mask_hints(mask, boxes, opt, bool(strips)):
            on_hint(hint)
    if all(bb is None for bb in boxes) and not strips:
        after = " after invert/threshold" if opt.invert or opt.threshold > 0 else ""
        raise ValueError(f"MaskPrep: the mask is empty{after}, so there is nothing to fill: {EMPTY_HELP}.")
    if grid is not None:
        return _separate(image, mask, grid, opt, pad, strips, context, on_hint)
    return _together(image, mask, opt, pad, strips, boxes, context)


def _together(image, mask, opt, pad, strips, boxes, context):
    n, h, w, _ = image.shape
    left, top, right, bottom = pad
    cw_all, ch_all = w + left + right, h + top + bottom
    pbox = None
    for strip in strips:
        pbox = _union(pbox, strip)
    boxes = [_union(bb, pbox) for bb in boxes]
    # windows around each mask box, one size for the batch, reaching as far as grow and feather
    reach = max(opt.grow, 0) + max(opt.feather, 0) + 1
    live = [bb for bb in boxes if bb is not None]
    rw = min(cw_all, max(bb[2] - bb[0] for bb in live) + 2 * reach)
    rh = min(ch_all, max(bb[3] - bb[1] for bb in live) + 2 * reach)
    r_org = [(0, 0) if bb is None else (place(bb[0], bb[2], rw, cw_all), place(bb[1], bb[3], rh, ch_all))
             for bb in boxes]
    region = take(mask, r_org, rw, rh, 0.0, offset=(left, top))
    pad_area = None
    if any(pad):
        pad_area = ~window(r_org, (left, top), rw, rh, h, w, image.device)[2]
    fill_m, blend = shape(region, pad_area, opt)
    # crop around the blend (it reaches furthest), in canvas coordinates, and the context mask
    blend_boxes = [_shift(bb, *o) for bb, o in zip(mask_ops.bboxes(blend), r_org)]
    if context is not None:
        context_boxes = [_shift(bb, left, top) for bb in mask_ops.bboxes(context)]
        count = max(len(blend_boxes), len(context_boxes))
        blend_boxes = [_union(blend_boxes[i % len(blend_boxes)], context_boxes[i % len(context_boxes)])
                       for i in range(count)]
    plan = plan_crop(cw_all, ch_all, blend_boxes, opt.crop, opt.context_factor, opt.context_px,
                     opt.target_mp, opt.multiple, opt.max_side)
    cw, ch = plan.crop_w, plan.crop_h
    # one crop per mask, or per image when a context mask per image moved the crops apart
    rel = [(x - r_org[i % len(r_org)][0], y - r_org[i % len(r_org)][1]) for i, (x, y) in enumerate(plan.origins)]
    fill_crop = take(fill_m, rel, cw, ch, 0.0)
    blend_crop = take(blend, rel, cw, ch, 0.0)
    origins = plan.origins if len(plan.origins) == n else plan.origins * n
    masks = fill_crop.shape[0]
    rgb = image[..., :3]
    crop_img = take(rgb, origins, cw, ch, pad_color(rgb.shape[-1]), offset=(left, top))
    out_img = resize(crop_img, plan.out_w, plan.out_h, "bicubic").contiguous()  # never a strided view
    out_mask = _fill_mask_out(fill_crop, plan.out_w, plan.out_h)
    pieces = tuple(Piece(source=i, origin=origins[i], crop_size=(cw, ch),
                         fill_mask=fill_crop[i if masks > 1 else 0], blend=blend_crop[i if masks > 1 else 0])
                   for i in range(n))
    stitch = Stitch(images=image, pad=pad, pieces=pieces, fill_size=(plan.out_w, plan.out_h),
                    feather=max(0, opt.feather))
    return out_img, out_mask, stitch


def _fill_mask_out(fill_crop: torch.Tensor, out_w: int, out_h: int) -> torch.Tensor:
    out_mask = resize(fill_crop, out_w, out_h, "bilinear")
    if out_mask is not fill_crop and bool(((fill_crop == 0) | (fill_crop == 1)).all()):
        out_mask = (out_mask >= 0.5).float()  # a hard mask stays hard at the fill's size
    return out_mask


def _nearest(box: Box, boxes: list[Box]) -> int:
    def gap(b):
        return max(0, box[0] - b[2], b[0] - box[2]) ** 2 + max(0, box[1] - b[3], b[1] - box[3]) ** 2
    return min(range(len(boxes)), key=lambda i: gap(boxes[i]))


def _separate(image, mask, grid, opt, pad, strips, context, on_hint):
    n, h, w, _ = image.shape
    left, top, right, bottom = pad
    canvas = (w + left + right, h + top + bottom)
    reach = max(opt.grow, 0) + max(opt.feather, 0) + 1

    def strip_area(origin, ww, wh, own):
        if not own:
            return None
        ys = torch.arange(wh, device=image.device)[:, None] + origin[1]
        xs = torch.arange(ww, device=image.device)[None, :] + origin[0]
        area = torch.zeros(wh, ww, dtype=torch.bool, device=image.device)
        for x0, y0, x1, y1 in own:
            area |= (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        return area

    per_mask = []
    for i in range(mask.shape[0]):
        regions = find_regions(mask[i], grid[i], strips, (left, top), canvas, max(0, opt.region_gap), opt.grow,
                               reach, lambda region, pad_area: shape(region, pad_area, opt), strip_area)
        if len(regions) > MAX_REGIONS:
            which = f"image {i}" if mask.shape[0] > 1 else "the mask"
            raise ValueError(f"MaskPrep: {which} has more than {MAX_REGIONS} separate regions (at most "
                             f"{MAX_REGIONS} are filled one by one): raise region_gap (now {opt.region_gap} px) to "
                             f"join nearby parts, or set regions to together.")
        per_mask.append(regions)
    if not any(per_mask):
        raise ValueError(f"MaskPrep: the mask is empty after fill holes/grow, so there is nothing to fill: "
                         f"{EMPTY_HELP}.")
    pieces_of = [per_mask[i if len(per_mask) > 1 else 0] for i in range(n)]
    boxes = []
    for i, regions in enumerate(pieces_of):
        own = [r.blend_box for r in regions]
        if context is not None and own:
            ctx = context[i if context.shape[0] > 1 else 0]
            for part in mask_parts(ctx, (left, top)):
                j = _nearest(part, own)
                own[j] = _union(own[j], part)
        boxes += own
    # the regions of an image share its target_mp: what one image costs does not grow with its holes
    most = max(len(regions) for regions in pieces_of)
    plan, crops = region_crops(*canvas, boxes, opt.crop, opt.context_factor, opt.context_px,
                               opt.target_mp / most, opt.multiple, opt.max_side)
    if on_hint is not None and most > 1 and opt.target_mp > 0 and plan.out_w * plan.out_h < SMALL_FILL:
        on_hint(f"{most} regions share target_mp {opt.target_mp:g}: each is filled at {plan.out_w}x{plan.out_h}; "
                f"raise target_mp for more detail ({most} gives each region about 1 megapixel).")
    rgb = image[..., :3]
    pieces, out_images, fill_masks = [], [], []
    flat = [(i, r) for i, regions in enumerate(pieces_of) for r in regions]
    for (i, region), (origin, (cw, ch)) in zip(flat, crops):
        rel = [(origin[0] - region.origin[0], origin[1] - region.origin[1])]
        fill_crop = take(region.fill_mask[None], rel, cw, ch, 0.0)[0]
        blend_crop = take(region.blend[None], rel, cw, ch, 0.0)[0]
        crop_img = take(rgb[i:i + 1], [origin], cw, ch, pad_color(rgb.shape[-1]), offset=(left, top))
        out_images.append(resize(crop_img, plan.out_w, plan.out_h, "bicubic")[0])
        fill_masks.append(_fill_mask_out(fill_crop[None], plan.out_w, plan.out_h))
        pieces.append(Piece(source=i, origin=origin, crop_size=(cw, ch), fill_mask=fill_crop, blend=blend_crop))
    stitch = Stitch(images=image, pad=pad, pieces=tuple(pieces), fill_size=(plan.out_w, plan.out_h),
                    feather=max(0, opt.feather))
    return torch.stack(out_images), torch.cat(fill_masks), stitch
