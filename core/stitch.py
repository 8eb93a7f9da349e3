"""STITCH: what PasteBack needs to put fills back, and the tensor ops of crop and paste.

Layout follows ComfyUI: images [B, H, W, C] float 0..1, masks [B, H, W]. Everything runs in
float on the images' device; paste works piece by piece (a crop of one source: MaskPrep makes
one per image, or one per region), each piece's k fills at once. Paste writes only inside the
crop boxes and keeps the original wherever the blend mask is 0 (torch.where, not arithmetic),
so those pixels are bit-identical to the input, in any dtype.
"""
from __future__ import annotations

import ctypes
import math
import mmap
from dataclasses import dataclass

import torch

from . import mask_ops
from .color_match import matched, window as color_window

PAD_RGBA = (0.5, 0.5, 0.5, 1.0)  # colour of outpaint padding before it is filled (opaque grey)
_HUGE_PAGE = 1 << 21
_BIG = 1 << 26  # 64 MiB


@dataclass(frozen=True)
class Piece:
    """One crop of a source image: where it sits and what of it the fill replaces."""
    source: int                  # index of the source image in Stitch.images
    origin: tuple[int, int]      # crop box top-left (x, y) in the canvas
    crop_size: tuple[int, int]   # (w, h) of the crop box, in canvas pixels
    fill_mask: torch.Tensor      # [crop_h, crop_w] the mask to fill (processed)
    blend: torch.Tensor          # [crop_h, crop_w] the feathered blend mask


@dataclass
class Stitch:
    """Everything PasteBack needs. One piece per source image (MaskPrep's `together`), or one
    per region of each source (`separate`), image-major; every piece was resized to fill_size."""
    images: torch.Tensor                  # [S, H, W, C] the original images, untouched
    pad: tuple[int, int, int, int]        # outpaint padding left, top, right, bottom
    pieces: tuple[Piece, ...]
    fill_size: tuple[int, int]            # (w, h) of the images MaskPrep handed to the fill
    feather: int = 0

    @property
    def canvas_size(self) -> tuple[int, int]:
        _, h, w, _ = self.images.shape
        left, top, right, bottom = self.pad
        return w + left + right, h + top + bottom

    def scale(self, piece: Piece) -> tuple[float, float]:
        return self.fill_size[0] / piece.crop_size[0], self.fill_size[1] / piece.crop_size[1]


def blend_on_canvas(stitch: Stitch) -> torch.Tensor:
    """[S, canvas_h, canvas_w]: each source's blend mask over the whole canvas (its pieces'
    maximum; 0 outside every crop): where PasteBack may change a pixel."""
    w_all, h_all = stitch.canvas_size
    out = torch.zeros(stitch.images.shape[0], h_all, w_all, device=stitch.images.device)
    for piece in stitch.pieces:
        (x, y), (cw, ch) = piece.origin, piece.crop_size
        view = out[piece.source, y:y + ch, x:x + cw]
        torch.maximum(view, piece.blend.to(out.device).float(), out=view)
    return out


def fills_per_piece(sources: int, pieces: int, fills: int) -> int:
    """k: how many fills each piece gets. Fill nodes output k per input image, grouped by image
    (piece 0's fills first), so the fills are k per piece in piece order; k = fills / pieces."""
    if pieces > 0 and fills > 0 and fills % pieces == 0:
        return fills // pieces
    what = (f"{pieces} crops (regions) of {sources} source image(s)" if pieces != sources
            else f"{sources} source image(s)")
    raise ValueError(
        f"PasteBack got {fills} fill image(s) for {what}: give one fill per crop ({pieces}) or k "
        f"fills per crop grouped by crop (a multiple of {pieces}), as the fill nodes output them "
        f"when MaskPrep's image output is their image input.")


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


def check_mask_count(mask: torch.Tensor, sources: int) -> None:
    """PasteBack's mask: one for every image, or one per image."""
    if mask.shape[0] not in (1, sources):
        raise ValueError(f"PasteBack got {sources} image(s) and {mask.shape[0]} masks: give one mask "
                         f"(used for every image) or one mask per image.")


def limit_mask(limit: torch.Tensor, stitch: Stitch) -> torch.Tensor:
    """PasteBack's `mask` next to a STITCH, as [1 or S, canvas_h, canvas_w] float: at the image's
    size (the outpaint area counts as allowed) or at the canvas's; 1 = paste, 0 = keep."""
    limit = limit.unsqueeze(0) if limit.ndim == 2 else limit
    sources, h, w, _ = stitch.images.shape
    cw, ch = stitch.canvas_size
    if limit.ndim != 3 or limit.shape[1:] not in ((h, w), (ch, cw)):
        size = "x".join(map(str, tuple(limit.shape)[::-1][:2]))
        raise ValueError(f"PasteBack: mask ({size}) limits where the fill is pasted and must have the image's "
                         f"size ({w}x{h}) or, with outpaint padding, the canvas's ({cw}x{ch}); disconnect it "
                         f"to paste everything MaskPrep prepared.")
    check_mask_count(limit, sources)
    limit = limit.to(device=stitch.images.device, dtype=torch.float32)
    if limit.shape[1:] == (ch, cw):
        return limit
    left, top, _, _ = stitch.pad
    return take(limit, [(0, 0)] * limit.shape[0], cw, ch, 1.0, offset=(left, top))


def inside_source(stitch: Stitch, piece: Piece) -> torch.Tensor | bool:
    """[crop_h, crop_w] bool: where the piece's crop box holds pixels of the source (not padding);
    True when all of it does."""
    if not any(stitch.pad):
        return True
    _, h, w, _ = stitch.images.shape
    left, top, _, _ = stitch.pad
    cw, ch = piece.crop_size
    return window([piece.origin], (left, top), cw, ch, h, w, stitch.images.device)[2][0]


def paste(stitch: Stitch, fills: torch.Tensor, feather: int | None = None, color_match: float = 0.0,
          limit: torch.Tensor | None = None) -> torch.Tensor:
    """Put the fills back into the original images; returns [S x k, canvas_h, canvas_w, C]:
    one image per source and fill round (k fills per piece), whatever the number of pieces.

    feather: None keeps the STITCH's blend mask; a number rebuilds it from the fill mask (the
    ramp stops at the crop box, sized for MaskPrep's own feather). color_match: 0..1, how much
    of the fill's colour drift (core.color_match) to correct. limit: PasteBack's mask, which
    narrows where the fill is pasted (the blend is at most the limit)."""
    if not isinstance(stitch, Stitch):
        raise TypeError(f"PasteBack: the stitch input must come from FluxFill's MaskPrep, got a "
                        f"{type(stitch).__name__} (another pack's STITCH?): connect MaskPrep's stitch output.")
    orig = stitch.images
    if fills.ndim != 4:
        raise ValueError(f"PasteBack: the fill must be an IMAGE batch [B, H, W, C], got shape {tuple(fills.shape)}")
    sources = orig.shape[0]
    k = fills_per_piece(sources, len(stitch.pieces), fills.shape[0])
    limits = None if limit is None else limit_mask(limit, stitch)
    dev, dtype, c = orig.device, orig.dtype, orig.shape[-1]
    out = _canvas(orig, [s for s in range(sources) for _ in range(k)], stitch.pad)  # the one full-size copy
    fills = fills.to(dev)
    feathered = {}      # one feather per fill mask (a shared mask serves every source)
    for p, piece in enumerate(stitch.pieces):
        (x, y), (cw, ch) = piece.origin, piece.crop_size
        blend = piece.blend
        if feather is not None:
            key = id(piece.fill_mask)
            if key not in feathered:
                feathered[key] = mask_ops.feather(piece.fill_mask[None], feather)[0]
            blend = feathered[key]
        blend = blend.to(dev)
        area = blend > 0
        if limits is not None:
            blend = torch.minimum(blend, limits[piece.source if limits.shape[0] > 1 else 0, y:y + ch, x:x + cw])
        box = mask_ops.nonzero_box(blend)       # pixels outside it stay as they are: skip them
        if box is None:
            continue
        bx0, by0, bx1, by1 = box
        full = resize(fills[p * k:(p + 1) * k], cw, ch)
        fill = full[:, by0:by1, bx0:bx1].float()
        if color_match > 0:         # measured and corrected around the paste area only
            ax0, ay0, ax1, ay1 = color_window(area)
            rows, cols = slice(ay0, ay1), slice(ax0, ax1)
            reference = take(orig[piece.source:piece.source + 1], [(x + ax0, y + ay0)], ax1 - ax0, ay1 - ay0, 0.0,
                             offset=stitch.pad[:2])[0, ..., :3].float()
            inside = inside_source(stitch, piece)
            rgb = matched(full[:, rows, cols, :3].float(), reference, area[rows, cols],
                          inside if inside is True else inside[rows, cols], color_match)
            rgb = rgb[:, by0 - ay0:by1 - ay0, bx0 - ax0:bx1 - ax0]      # the paste box lies inside
            fill = torch.cat([rgb, fill[..., 3:]], dim=-1) if fill.shape[-1] > 3 else rgb
        region = out[piece.source * k:(piece.source + 1) * k, y + by0:y + by1, x + bx0:x + bx1]
        if fill.shape[-1] >= c:
            fill = fill[..., :c]
        else:  # e.g. RGB fill of an RGBA image: keep the original's extra channels
            fill = torch.cat([fill, region[..., fill.shape[-1]:].float()], dim=-1)
        wgt = blend[by0:by1, bx0:bx1][None, ..., None].float()
        mixed = torch.lerp(region.float(), fill, wgt).to(dtype)  # lerp(a, b, 1) == b exactly
        region.copy_(torch.where(wgt == 0, region, mixed))
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
    check_mask_count(mask, s)
    mask = mask.to(device=image.device, dtype=torch.float32)
    blend = mask_ops.feather(mask, feather)
    pieces = tuple(Piece(source=i, origin=(0, 0), crop_size=(w, h), fill_mask=mask[i if mask.shape[0] > 1 else 0],
                         blend=blend[i if mask.shape[0] > 1 else 0]) for i in range(s))
    return Stitch(images=image, pad=(0, 0, 0, 0), pieces=pieces, fill_size=(w, h), feather=max(0, feather))
