"""Draws the example workflows' input images (procedural, no external assets).

    python workflows/inputs/make_inputs.py     # rewrites the PNGs next to this file

- fluxfill_photo.png        1024x768 RGBA: a garden scene; alpha 0 over the door = the mask
                            LoadImage gives (mask = 1 - alpha).
- fluxfill_large_photo.png  2048x1536 RGBA: the same kind of scene, large, with a small
                            mask (one window) for the crop -> fill -> paste-back example.
- fluxfill_outpaint.png     512x384 RGB (no alpha): the outpainting example's source.
- fluxfill_flower_beds.png  2048x1536 RGBA: the large scene with three separate patches of lawn
                            masked, for the several-holes example (MaskPrep's separate regions).

The pack copies them into ComfyUI's input folder at start-up when they are absent
(nodes/example_inputs.py). Smooth shapes only, so each PNG stays well under 300 KB.
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent


def _smooth_noise(w, h, seed, cell=32):
    """Low-frequency texture in [-1, 1]: random values on a coarse grid, bicubic-upsampled."""
    rng = np.random.default_rng(seed)
    grid = rng.uniform(0, 255, (h // cell + 2, w // cell + 2)).astype(np.uint8)
    img = Image.fromarray(grid).resize((w + 2 * cell, h + 2 * cell), Image.BICUBIC)
    return np.asarray(img, np.float32)[cell:cell + h, cell:cell + w] / 127.5 - 1.0


def scene(w, h, seed=0):
    """(RGB image, dict of named boxes) of a house in a garden under a sky, scaled to w x h."""
    s = w / 1024.0
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    horizon = int(h * 0.62)
    sky = np.stack([110 + 90 * yy, 160 + 70 * yy, 235 + 15 * yy], -1) * np.ones((1, w, 1), np.float32)
    img = sky.copy()
    grass = np.array([70, 135, 55], np.float32) + 25 * _smooth_noise(w, h, seed, int(24 * s) or 1)[..., None]
    img[horizon:] = grass[horizon:]
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    box = lambda *v: tuple(int(round(x * s)) for x in v)  # noqa: E731 - drawing in 1024-wide units
    d.ellipse(box(820, 60, 920, 160), fill=(255, 236, 170))                       # sun
    for cx, cy in ((180, 120), (420, 90), (620, 150)):                              # clouds
        for dx, dy, r in ((0, 0, 40), (40, 10, 34), (-40, 12, 30), (15, -18, 30)):
            d.ellipse(box(cx + dx - r, cy + dy - r, cx + dx + r, cy + dy + r), fill=(245, 248, 252))
    d.polygon([box(330, 300)[0:2], box(530, 180)[0:2], box(730, 300)[0:2]], fill=(150, 60, 50))   # roof
    d.rectangle(box(360, 300, 700, 520), fill=(225, 205, 170))                      # wall
    door = box(490, 380, 570, 520)
    d.rectangle(door, fill=(95, 60, 35))
    d.ellipse(box(552, 445, 562, 455), fill=(200, 170, 60))
    windows = [box(390, 340, 460, 400), box(600, 340, 670, 400)]
    for win in windows:
        d.rectangle(win, fill=(170, 205, 230), outline=(250, 250, 250), width=max(1, int(5 * s)))
    d.rectangle(box(120, 380, 150, 560), fill=(100, 70, 40))                        # tree
    d.ellipse(box(60, 260, 210, 420), fill=(50, 110, 45))
    d.ellipse(box(780, 470, 960, 600), fill=(60, 120, 50))                          # bush
    d.polygon([box(500, 767)[0:2], box(560, 767)[0:2], box(540, 520)[0:2], box(520, 520)[0:2]],
              fill=(190, 175, 150))                                                 # path
    im = im.filter(ImageFilter.GaussianBlur(0.8 * s))
    return im, {"door": door, "windows": windows}


FLOWER_BEDS = [(160, 1180, 420, 1360), (1250, 1240, 1500, 1420), (1640, 1300, 1900, 1460)]   # on the lawn


def with_mask(rgb: Image.Image, box, margin: int, *more) -> Image.Image:
    """RGBA with alpha 0 inside `box` (and `more` boxes) grown by `margin` (LoadImage: mask = 1 - alpha)."""
    alpha = Image.new("L", rgb.size, 255)
    for x0, y0, x1, y1 in (box, *more):
        ImageDraw.Draw(alpha).rectangle((x0 - margin, y0 - margin, x1 + margin, y1 + margin), fill=0)
    out = rgb.copy()
    out.putalpha(alpha)
    return out


def main():
    photo, parts = scene(1024, 768, seed=1)
    with_mask(photo, parts["door"], 6).save(HERE / "fluxfill_photo.png", optimize=True)
    large, parts = scene(2048, 1536, seed=2)
    with_mask(large, parts["windows"][1], 8).save(HERE / "fluxfill_large_photo.png", optimize=True)
    with_mask(large, *FLOWER_BEDS[:1], 0, *FLOWER_BEDS[1:]).save(HERE / "fluxfill_flower_beds.png", optimize=True)
    small, _ = scene(512, 384, seed=3)
    small.save(HERE / "fluxfill_outpaint.png", optimize=True)
    for p in sorted(HERE.glob("*.png")):
        print(f"{p.name}: {p.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
