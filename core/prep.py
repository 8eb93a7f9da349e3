"""MaskPrep's pipeline: (image, mask) -> what the fill model sees + the STITCH to put it back.

Order: invert -> threshold -> fill holes -> outpaint area -> grow/shrink -> feather, then crop
and resize. The mask work runs on a window around each mask's box (plus the grow and feather
reach), never on the whole frame; the only full-frame passes are invert/threshold (when
asked) and finding the mask's box.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import mask_ops
from .crop_geometry import Box, place, plan_crop
from .stitch import Stitch, pad_color, resize, take, window

EMPTY_HELP = ("paint the area to fill in the mask editor (right-click the LoadImage node > "
              "Open in MaskEditor), or set outpaint padding to extend the image")


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


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _pad_box(pad, w, h) -> Box | None:
    """Bounding box of the outpaint strips in the canvas (None without padding)."""
    left, top, right, bottom = pad
    cw, ch = w + left + right, h + top + bottom
    box = None
    strips = ((left, (0, 0, left, ch)), (top, (0, 0, cw, top)),
              (right, (left + w, 0, cw, ch)), (bottom, (0, top + h, cw, ch)))
    for on, strip in strips:
        if on > 0:
            box = _union(box, strip)
    return box


def _shape(region, pad_area, opt):
    """fill holes -> outpaint area -> grow/shrink -> feather, on the [M, h, w] windows."""
    m = mask_ops.fill_holes(region) if opt.fill_holes else region
    if pad_area is not None:
        m = torch.where(pad_area, 1.0, m)
    m, dist = mask_ops.grow(m, opt.grow)
    if pad_area is not None and opt.grow < 0:
        m = torch.where(pad_area, 1.0, m)  # the new area stays a hole whatever the shrink
    return m, mask_ops.feather(m, opt.feather, dist)


def prepare(image: torch.Tensor, mask: torch.Tensor | None, opt: PrepOptions):
    """Returns (fill image [N, oh, ow, 3], fill mask [M, oh, ow], Stitch); M is the mask count
    (1 serves every image). mask None = no mask, which is fine with outpaint padding."""
    pad = tuple(max(0, int(p)) for p in opt.pad)
    mask = check_inputs(image, mask, any(pad))
    n, h, w, c = image.shape
    left, top, right, bottom = pad
    cw_all, ch_all = w + left + right, h + top + bottom
    if opt.invert:
        mask = mask_ops.invert(mask)
    mask = mask_ops.threshold(mask, opt.threshold)
    pbox = _pad_box(pad, w, h)
    boxes = [_union(None if bb is None else (bb[0] + left, bb[1] + top, bb[2] + left, bb[3] + top), pbox)
             for bb in mask_ops.bboxes(mask)]
    if all(bb is None for bb in boxes):
        after = " after invert/threshold" if opt.invert or opt.threshold > 0 else ""
        raise ValueError(f"MaskPrep: the mask is empty{after}, so there is nothing to fill: {EMPTY_HELP}.")
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
    fill_m, blend = _shape(region, pad_area, opt)
    # crop around the blend (it reaches furthest), in canvas coordinates
    blend_boxes = [None if bb is None else (bb[0] + o[0], bb[1] + o[1], bb[2] + o[0], bb[3] + o[1])
                   for bb, o in zip(mask_ops.bboxes(blend), r_org)]
    plan = plan_crop(cw_all, ch_all, blend_boxes, opt.crop, opt.context_factor, opt.context_px,
                     opt.target_mp, opt.multiple, opt.max_side)
    cw, ch = plan.crop_w, plan.crop_h
    rel = [(x - rx, y - ry) for (x, y), (rx, ry) in zip(plan.origins, r_org)]
    fill_crop = take(fill_m, rel, cw, ch, 0.0)
    blend_crop = take(blend, rel, cw, ch, 0.0)
    origins = plan.origins if len(plan.origins) == n else plan.origins * n
    rgb = image[..., :3]
    crop_img = take(rgb, origins, cw, ch, pad_color(rgb.shape[-1]), offset=(left, top))
    out_img = resize(crop_img, plan.out_w, plan.out_h, "bicubic").contiguous()  # never a strided view
    out_mask = resize(fill_crop, plan.out_w, plan.out_h, "bilinear")
    if out_mask is not fill_crop and bool(((fill_crop == 0) | (fill_crop == 1)).all()):
        out_mask = (out_mask >= 0.5).float()  # a hard mask stays hard at the fill's size
    stitch = Stitch(images=image, pad=pad, origins=tuple(origins), crop_size=(cw, ch),
                    fill_size=(plan.out_w, plan.out_h), fill_mask=fill_crop, blend=blend_crop,
                    feather=max(0, opt.feather))
    return out_img, out_mask, stitch
