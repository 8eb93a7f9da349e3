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
    factor = max(1.0, context_factor)
    need_w = max(math.ceil((x1 - x0) * factor) + 2 * max(0, context_px) for x0, _, x1, _ in boxes)
    need_h = max(math.ceil((y1 - y0) * factor) + 2 * max(0, context_px) for _, y0, _, y1 in boxes)
    cw, ch = min(canvas_w, need_w), min(canvas_h, need_h)
    if target_mp <= 0:  # native size: grow the crop to the multiple, so that the scale is 1
        cw, ch = min(canvas_w, ceil_to_multiple(cw, multiple)), min(canvas_h, ceil_to_multiple(ch, multiple))
    ow, oh = output_size(cw, ch, target_mp, multiple, max_side)
    if ow * ch > oh * cw:
        cw = min(canvas_w, -(-ch * ow // oh))
    elif ow * ch < oh * cw:
        ch = min(canvas_h, -(-cw * oh // ow))
    origins = []
    for b in bboxes:
        if b is None:
            b = (canvas_w // 2, canvas_h // 2, canvas_w // 2, canvas_h // 2)
        origins.append((place(b[0], b[2], cw, canvas_w), place(b[1], b[3], ch, canvas_h)))
    return CropPlan(tuple(origins), cw, ch, ow, oh)
