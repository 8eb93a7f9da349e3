"""Where to crop and how large the fill is: pure integer arithmetic, no tensors.

Coordinates are in the *canvas*: the image plus its outpaint padding (padding left/top moves
the image to (left, top)). One crop size serves the whole batch (a batch tensor has one
size); each image gets its own box position, centred on its mask. One scale maps every crop
to the fill's size, so PasteBack undoes it exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (end-exclusive)
MEGAPIXEL = 1024 * 1024  # "1.0 megapixels" = 1024x1024, as in ComfyUI's total-pixels scaling


@dataclass(frozen=True)
class CropPlan:
    origins: tuple[tuple[int, int], ...]  # top-left (x, y) of each crop box in the canvas
    crop_w: int
    crop_h: int
    out_w: int    # size of the image handed to the fill model
    out_h: int

    @property
    def boxes(self) -> list[Box]:
        return [(x, y, x + self.crop_w, y + self.crop_h) for x, y in self.origins]

    @property
    def scale(self) -> tuple[float, float]:
        return self.out_w / self.crop_w, self.out_h / self.crop_h


def round_to_multiple(v: float, m: int) -> int:
    return max(m, int(math.floor(v / m + 0.5)) * m)


def ceil_to_multiple(v: int, m: int) -> int:
    return max(m, -(-v // m) * m)


def side_cap(max_side: int, multiple: int) -> int:
    """The largest side allowed: max_side rounded down to the multiple (at least one multiple)."""
    return max(multiple, max_side // multiple * multiple)


def output_size(cw: int, ch: int, target_mp: float, multiple: int, max_side: int) -> tuple[int, int]:
    """Fill size for a cw x ch crop: target_mp megapixels (0 = the crop's own size), sides
    rounded to `multiple`, the longer side at most max_side."""
    s = math.sqrt(target_mp * MEGAPIXEL / (cw * ch)) if target_mp > 0 else 1.0
    w, h = cw * s, ch * s
    cap = side_cap(max_side, multiple)
    if max(w, h) > cap:
        f = cap / max(w, h)
        w, h = w * f, h * f
    return min(cap, round_to_multiple(w, multiple)), min(cap, round_to_multiple(h, multiple))


def place(lo: int, hi: int, size: int, total: int) -> int:
    """Start of a `size` window centred on [lo, hi), kept inside [0, total)."""
    start = int(math.floor((lo + hi - size) / 2))
    return min(max(start, 0), total - size)


def context_size(box: Box, context_factor: float, context_px: int) -> tuple[int, int]:
    """Crop size a box asks for: its sides x context_factor (at least 1) + 2 x context_px."""
    factor = max(1.0, context_factor)
    return (math.ceil((box[2] - box[0]) * factor) + 2 * max(0, context_px),
            math.ceil((box[3] - box[1]) * factor) + 2 * max(0, context_px))


def widen(cw: int, ch: int, ow: int, oh: int, canvas_w: int, canvas_h: int) -> tuple[int, int]:
    """A cw x ch crop widened (never narrowed) to the fill's aspect ratio ow:oh, within the canvas."""
    if ow * ch > oh * cw:
        cw = min(canvas_w, -(-ch * ow // oh))
    elif ow * ch < oh * cw:
        ch = min(canvas_h, -(-cw * oh // ow))
    return cw, ch


def plan_crop(canvas_w: int, canvas_h: int, bboxes: list[Box | None], crop: bool = True,
              context_factor: float = 1.2, context_px: int = 32, target_mp: float = 1.0,
              multiple: int = 16, max_side: int = 2048) -> CropPlan:
    """Crop boxes around each image's mask box (None = empty mask) plus context.

    crop size = max over the batch of ceil(box side * context_factor) + 2 * context_px,
    then widened to the fill's aspect ratio (never narrowed, so the mask stays inside),
    never larger than the canvas. crop=False (or no mask at all) takes the whole canvas."""
    boxes = [b for b in bboxes if b is not None]
    if not crop or not boxes:
        ow, oh = output_size(canvas_w, canvas_h, target_mp, multiple, max_side)
        return CropPlan(tuple((0, 0) for _ in bboxes), canvas_w, canvas_h, ow, oh)
    needs = [context_size(b, context_factor, context_px) for b in boxes]
    cw, ch = min(canvas_w, max(w for w, _ in needs)), min(canvas_h, max(h for _, h in needs))
    if target_mp <= 0:  # native size: grow the crop to the multiple, so that the scale is 1
        cw, ch = min(canvas_w, ceil_to_multiple(cw, multiple)), min(canvas_h, ceil_to_multiple(ch, multiple))
    ow, oh = output_size(cw, ch, target_mp, multiple, max_side)
    cw, ch = widen(cw, ch, ow, oh, canvas_w, canvas_h)
    origins = []
    for b in bboxes:
        if b is None:
            b = (canvas_w // 2, canvas_h // 2, canvas_w // 2, canvas_h // 2)
        origins.append((place(b[0], b[2], cw, canvas_w), place(b[1], b[3], ch, canvas_h)))
    return CropPlan(tuple(origins), cw, ch, ow, oh)


def region_crops(canvas_w: int, canvas_h: int, boxes: list[Box], crop: bool = True,
                 context_factor: float = 1.2, context_px: int = 32, target_mp: float = 1.0,
                 multiple: int = 16, max_side: int = 2048):
    """Separate regions: (plan, [(origin, (crop_w, crop_h)) per box]). One fill size for all
    (plan.out_w x plan.out_h: a batch has one size), chosen as plan_crop chooses it for the
    boxes together. Each box gets its own crop, its context size widened to the fill's aspect
    ratio, so each region has its own scale; with target_mp 0 (scale 1) or crop off, every box
    gets plan_crop's common crop size instead."""
    plan = plan_crop(canvas_w, canvas_h, boxes, crop, context_factor, context_px, target_mp, multiple, max_side)
    if not crop or target_mp <= 0:
        return plan, [(origin, (plan.crop_w, plan.crop_h)) for origin in plan.origins]
    crops = []
    for box in boxes:
        need_w, need_h = context_size(box, context_factor, context_px)
        cw, ch = widen(min(canvas_w, need_w), min(canvas_h, need_h), plan.out_w, plan.out_h, canvas_w, canvas_h)
        crops.append(((place(box[0], box[2], cw, canvas_w), place(box[1], box[3], ch, canvas_h)), (cw, ch)))
    return plan, crops
