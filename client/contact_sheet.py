"""DIR/contact_sheet.jpg: every job's input (mask tinted red) and first output side by side,
small, in a grid, for a quick look at a whole batch. A failed job shows its input and a grey
tile saying "failed"."""
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

FILE = "contact_sheet.jpg"
THUMB = 128          # the longer side of each thumbnail
PAIRS_PER_ROW = 4    # at least; more for big batches, so the sheet stays about square
PAD, LABEL = 6, 14


def _fit(im: Image.Image, side: int = THUMB) -> Image.Image:
    im = ImageOps.contain(im, (side, side), Image.Resampling.LANCZOS)     # up or down
    tile = Image.new("RGB", (side, side), (32, 32, 32))
    tile.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return tile


def input_thumb(image: Path, mask: np.ndarray | None) -> Image.Image:
    """The input with the area to fill tinted red (mask: [h, w], 1 = fill)."""
    with Image.open(image) as im:
        rgb = np.asarray(im.convert("RGB"), np.float32)
    if mask is not None and mask.shape == rgb.shape[:2]:
        a = (0.5 * mask)[..., None]
        rgb = rgb * (1 - a) + np.array([255.0, 0.0, 0.0]) * a
    return _fit(Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)))


def output_thumb(path: Path | None, text: str = "failed") -> Image.Image:
    if path is not None:
        try:
            with Image.open(path) as im:
                return _fit(im.convert("RGB"))
        except OSError:
            text = "unreadable"
    tile = Image.new("RGB", (THUMB, THUMB), (90, 90, 90))
    ImageDraw.Draw(tile).text((8, THUMB // 2 - 6), text, fill=(255, 255, 255))
    return tile


def write_sheet(out_dir: Path, entries: list[tuple[str, Image.Image, Image.Image]]) -> Path | None:
    """entries: (label, input thumb, output thumb). Returns the sheet's path (None: no jobs)."""
    if not entries:
        return None
    cell_w, cell_h = 2 * THUMB + PAD, THUMB + LABEL
    cols = min(len(entries), max(PAIRS_PER_ROW, math.ceil(math.sqrt(len(entries) / 2))))  # ~square
    rows = -(-len(entries) // cols)
    sheet = Image.new("RGB", (cols * (cell_w + PAD) + PAD, rows * (cell_h + PAD) + PAD), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (label, left, right) in enumerate(entries):
        x = PAD + (i % cols) * (cell_w + PAD)
        y = PAD + (i // cols) * (cell_h + PAD)
        sheet.paste(left, (x, y))
        sheet.paste(right, (x + THUMB + PAD, y))
        draw.text((x, y + THUMB + 1), label[:40], fill=(0, 0, 0))
    path = Path(out_dir) / FILE
    sheet.save(path, format="JPEG", quality=85)
    return path
