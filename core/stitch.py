"""STITCH: what PasteBack needs to put fills back, and the tensor ops of crop and paste.

Layout follows ComfyUI: images [B, H, W, C] float 0..1, masks [B, H, W]. Everything runs in
float on the images' device, on the whole batch at once. Paste writes only inside the crop
boxes and keeps the original wherever the blend mask is 0 (torch.where, not arithmetic),
so those pixels are bit-identical to the input, in any dtype.
"""
from __future__ import annotations

import ctypes
import math
import mmap
from dataclasses import dataclass

import torch

from . import mask_ops

PAD_RGBA = (0.5, 0.5, 0.5, 1.0)  # colour of outpaint padding before it is filled (opaque grey)
_HUGE_PAGE = 1 << 21
_BIG = 1 << 26  # 64 MiB


@dataclass
class Stitch:
    images: torch.Tensor                  # [S, H, W, C] the original images, untouched
    pad: tuple[int, int, int, int]        # outpaint padding left, top, right, bottom
    origins: tuple[tuple[int, int], ...]  # per source image: crop box top-left in the canvas
    crop_size: tuple[int, int]            # (w, h) of every crop box, in canvas pixels
    fill_size: tuple[int, int]            # (w, h) of the image MaskPrep handed to the fill
    fill_mask: torch.Tensor               # [1 or S, crop_h, crop_w] the mask to fill (processed)
    blend: torch.Tensor                   # [1 or S, crop_h, crop_w] the feathered blend mask
    feather: int = 0

    @property
    def canvas_size(self) -> tuple[int, int]:
        _, h, w, _ = self.images.shape
        left, top, right, bottom = self.pad
        return w + left + right, h + top + bottom

    @property
    def scale(self) -> tuple[float, float]:
        return self.fill_size[0] / self.crop_size[0], self.fill_size[1] / self.crop_size[1]


def source_index(sources: int, fills: int) -> list[int]:
    """Which source image each fill belongs to: N:N, all fills of one source, or k per source
    in order (image 0's fills first), the order fill nodes produce."""
    if fills == sources:
        return list(range(fills))
    if sources == 1:
        return [0] * fills
    if fills > 0 and fills % sources == 0:
        k = fills // sources
        return [i // k for i in range(fills)]
    raise ValueError(
        f"PasteBack got {fills} fill image(s) for {sources} source image(s): give one fill per "
        f"source ({sources}), k fills per source grouped by source (a multiple of {sources}), "
        f"or use a single source image.")


def window(origins, offset, w, h, src_h, src_w, device):
    """Row/column indices of w x h windows at canvas `origins`, in the coordinates of a source
    placed at `offset` in the canvas, and where they fall inside that source."""
    ox = torch.tensor([o[0] - offset[0] for o in origins], device=device)
    oy = torch.tensor([o[1] - offset[1] for o in origins], device=device)
    xs = ox[:, None] + torch.arange(w, device=device)
    ys = oy[:, None] + torch.arange(h, device=device)
    inside = ((ys >= 0) & (ys < src_h))[:, :, None] & ((xs >= 0) & (xs < src_w))[:, None, :]
    return ys, xs, inside


def take(src: torch.Tensor, origins, w: int, h: int, fill, offset=(0, 0)) -> torch.Tensor:
    """Crop a w x h window per image at canvas `origins` from `src` (placed at `offset` in the
    canvas); pixels outside `src` get `fill`. A view when one window inside serves the batch."""
    b, sh, sw = src.shape[:3]
    local = [(x - offset[0], y - offset[1]) for x, y in origins]
    same = len(set(local)) == 1 and b == len(local)
    if all(0 <= x and x + w <= sw and 0 <= y and y + h <= sh for x, y in local):
        if same:
            x, y = local[0]
            return src[:, y:y + h, x:x + w]
        return torch.stack([src[i % b, y:y + h, x:x + w] for i, (x, y) in enumerate(local)])
    out = torch.empty((len(local), h, w) + tuple(src.shape[3:]), dtype=src.dtype, device=src.device)
    out[...] = torch.as_tensor(fill, dtype=src.dtype, device=src.device)
    for i, (x, y) in enumerate(local[:1] if same else local):
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, sw), min(y + h, sh)
        if x0 < x1 and y0 < y1:
            dst = out[:, y0 - y:y1 - y, x0 - x:x1 - x] if same else out[i, y0 - y:y1 - y, x0 - x:x1 - x]
            dst.copy_(src[:, y0:y1, x0:x1] if same else src[i % b, y0:y1, x0:x1])
    return out


def pad_color(channels: int) -> tuple[float, ...]:
    return PAD_RGBA[:channels] if channels <= 4 else PAD_RGBA[:3] + (1.0,) * (channels - 3)


def resize(x: torch.Tensor, w: int, h: int, mode: str = "bicubic") -> torch.Tensor:
    """Resize [B, H, W, C] images or [B, H, W] masks in float32, back in x's dtype, clamped
    to 0..1; the same size returns x itself. Always torch's antialiased kernels: they widen
    the filter when shrinking (no aliasing) and, for bicubic, use PIL's a = -0.5 both ways."""
    if x.shape[1] == h and x.shape[2] == w:
        return x
    t = x.unsqueeze(1) if x.ndim == 3 else x.movedim(-1, 1).contiguous()  # planar: 2x faster
    t = torch.nn.functional.interpolate(t.float(), size=(h, w), mode=mode, align_corners=False,
                                        antialias=True)
    t = t.clamp_(0, 1).to(x.dtype)
    return t.squeeze(1) if x.ndim == 3 else t.movedim(1, -1)


def new_output(shape, dtype, device) -> torch.Tensor:
    """An uninitialised tensor for a full-size output.

    On Linux CPU a large one is a private anonymous mapping advised for transparent huge
    pages: the kernel faults it in 2 MiB at a time instead of 4 KiB, which makes writing an
    800 MB output about 3x faster (that first write is most of PasteBack's time). torch's own
    allocator does the same only when the process starts with THP_MEM_ALLOC_ENABLE=1.
    Anywhere else, or if the kernel says no: torch.empty."""
    n = math.prod(shape)
    size = n * torch.empty((), dtype=dtype).element_size()
    if torch.device(device).type == "cpu" and size >= _BIG and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            buf = mmap.mmap(-1, size + _HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            offset = -ctypes.addressof(ctypes.c_char.from_buffer(buf)) % _HUGE_PAGE
            buf.madvise(mmap.MADV_HUGEPAGE)
            # the tensor holds a reference to buf: the mapping lives as long as the tensor
            return torch.frombuffer(buf, dtype=dtype, count=n, offset=offset).view(shape)
        except (OSError, ValueError, TypeError, AttributeError):
            pass
    return torch.empty(shape, dtype=dtype, device=device)


def _canvas(orig: torch.Tensor, src: list[int], pad) -> torch.Tensor:
    """[F, canvas_h, canvas_w, C]: source src[i] at (left, top), padding in PAD_RGBA."""
    _, h, w, c = orig.shape
    left, top, right, bottom = pad
    out = new_output((len(src), h + top + bottom, w + left + right, c), orig.dtype, orig.device)
    if any(pad):
        color = torch.tensor(pad_color(c), dtype=orig.dtype, device=orig.device)
        for strip in (out[:, :top], out[:, top + h:], out[:, top:top + h, :left], out[:, top:top + h, left + w:]):
            strip[...] = color
    if not any(pad) and src == list(range(orig.shape[0])):
        out.copy_(orig)
    elif not any(pad):
        torch.index_select(orig, 0, torch.tensor(src, device=orig.device), out=out)
    else:
        for i, j in enumerate(src):
            out[i, top:top + h, left:left + w] = orig[j]
    return out


def paste(stitch: Stitch, fills: torch.Tensor, feather: int | None = None) -> torch.Tensor:
    """Put the fills back into the original images; returns [F, canvas_h, canvas_w, C].

    feather: None keeps the STITCH's blend mask; a number rebuilds it from the fill mask
    (the ramp stops at the crop box, sized for MaskPrep's own feather)."""
    if not isinstance(stitch, Stitch):
        raise TypeError(f"PasteBack: the stitch input must come from FluxFill's MaskPrep, got a "
                        f"{type(stitch).__name__} (another pack's STITCH?): connect MaskPrep's stitch output.")
    orig = stitch.images
    if fills.ndim != 4:
        raise ValueError(f"PasteBack: the fill must be an IMAGE batch [B, H, W, C], got shape {tuple(fills.shape)}")
    src = source_index(orig.shape[0], fills.shape[0])
    cw, ch = stitch.crop_size
    blend = stitch.blend if feather is None else mask_ops.feather(stitch.fill_mask, feather)
    dev, dtype, c = orig.device, orig.dtype, orig.shape[-1]
    sel = torch.tensor(src, device=dev)
    out = _canvas(orig, src, stitch.pad)  # the one full-size copy: the output itself
    origins = [stitch.origins[i] for i in src]
    fill = resize(fills.to(dev), cw, ch).float()
    region = take(out, origins, cw, ch, 0.0)
    if fill.shape[-1] >= c:
        fill = fill[..., :c]
    else:  # e.g. RGB fill of an RGBA image: keep the original's extra channels
        fill = torch.cat([fill, region[..., fill.shape[-1]:].float()], dim=-1)
    wgt = blend.to(dev)[sel if blend.shape[0] > 1 else torch.zeros_like(sel)].unsqueeze(-1).float()
    mixed = torch.lerp(region.float(), fill, wgt).to(dtype)  # lerp(a, b, 1) == b exactly
    result = torch.where(wgt == 0, region, mixed)
    for i, (x, y) in enumerate(origins):
        out[i, y:y + ch, x:x + cw] = result[i]
    return out


def from_mask(image: torch.Tensor, mask: torch.Tensor, feather: int = 0) -> Stitch:
    """A whole-frame STITCH for graphs without MaskPrep: blend = mask (feathered outward)."""
    if image.ndim != 4:
        raise ValueError(f"PasteBack: image must be an IMAGE batch [B, H, W, C], got shape {tuple(image.shape)}")
    mask = mask.unsqueeze(0) if mask.ndim == 2 else mask
    s, h, w, _ = image.shape
    if mask.ndim != 3 or mask.shape[1:] != (h, w):
        raise ValueError(f"PasteBack: the mask ({'x'.join(map(str, mask.shape[::-1][:2]))}) must have the "
                         f"image's size ({w}x{h}); a 64x64 empty mask is what LoadImage gives for an image "
                         f"without alpha: paint one in the mask editor, or use MaskPrep's STITCH.")
    if mask.shape[0] not in (1, s):
        raise ValueError(f"PasteBack got {s} image(s) and {mask.shape[0]} masks: give one mask "
                         f"(used for every image) or one mask per image.")
    mask = mask.to(device=image.device, dtype=torch.float32)
    return Stitch(images=image, pad=(0, 0, 0, 0), origins=tuple((0, 0) for _ in range(s)),
                  crop_size=(w, h), fill_size=(w, h), fill_mask=mask,
                  blend=mask_ops.feather(mask, feather), feather=max(0, feather))
