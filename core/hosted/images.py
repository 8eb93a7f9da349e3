"""Images in and out of the hosted APIs.

Out: images go as PNG (RGB), masks as single-channel "L" PNG of exactly the image's size;
`data_uri` wraps bytes for endpoints that accept data URIs. In: `decode_image` opens a
downloaded file safely — format allow-list, pixel cap checked from the header BEFORE
decoding (decompression bombs: OutputRefused names the claimed size and the cap), PIL's own
bomb warning turned into an error — and returns float32 [H, W, 3] in 0..1.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import struct
import threading
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from .errors import HostedValidationError, OutputRefused

MAX_OUTPUT_PIXELS = 64 * 1024 * 1024      # 8192×8192; well above any endpoint's output
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")
MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "getbands"):                      # PIL
        return np.asarray(x)
    if hasattr(x, "detach"):                        # torch
        x = x.detach().to("cpu")
        if str(x.dtype) not in ("torch.float32", "torch.uint8"):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def to_uint8(x, what: str = "image") -> np.ndarray:
    """[H,W], [H,W,C] or [1,H,W,C] float 0..1 (or uint8) → uint8 array, batch dim dropped."""
    a = _to_numpy(x)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim not in (2, 3):
        raise HostedValidationError(f"{what} must be [H, W] or [H, W, C], got shape {tuple(a.shape)}", field=what)
    if a.dtype != np.uint8:            # clip(a, 0, 1) * 255 + 0.5, truncated; one float buffer
        b = np.multiply(a, np.float32(255.0), dtype=np.float32)
        np.clip(b, 0.0, 255.0, out=b)
        b += np.float32(0.5)
        a = b.astype(np.uint8)
    return a


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bytes(a: np.ndarray, mode: str, compress_level: int = 1) -> bytes:
    """8-bit PNG ("L" from [H,W], "RGB" from [H,W,3]) with the Sub filter on every row and
    RLE deflate: several times faster than PIL's adaptive filtering at a similar size for
    photographs, and zlib releases the GIL (concurrent requests encode in parallel)."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    c = 1 if a.ndim == 2 else a.shape[2]
    if (mode, c) not in (("L", 1), ("RGB", 3)):
        raise ValueError(f"png_bytes: {mode} needs {'[H,W]' if mode == 'L' else '[H,W,3]'}, got {a.shape}")
    h, w = a.shape[:2]
    rows = a.reshape(h, w * c)
    raw = np.empty((h, w * c + 1), np.uint8)
    raw[:, 0] = 1                                   # filter type 1 (Sub): byte - byte to the left
    raw[:, 1:c + 1] = rows[:, :c]
    np.subtract(rows[:, c:], rows[:, :-c], out=raw[:, c + 1:])
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", _deflate(raw, compress_level)) + _chunk(b"IEND", b""))


PARALLEL_MIN_BYTES = 1 << 20          # below this one thread is as fast
_POOL: ThreadPoolExecutor | None = None
_POOL_GUARD = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_GUARD:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1),
                                       thread_name_prefix="fluxfill-png")
        return _POOL


def _deflate(raw: np.ndarray, level: int) -> bytes:
    """One zlib stream. Z_RLE: run-length matches only. On Sub-filtered photographs it is
    ~2x faster than the default strategy at level 1 and smaller (the residuals are noise:
    long-distance matches buy nothing); flat areas and masks still collapse into runs.

    Big buffers are compressed in row bands on threads (zlib releases the GIL), pigz-style:
    raw deflate per band, each but the last ended by a sync flush (byte-aligned, no final
    bit), joined under one zlib header and the Adler-32 of the whole. RLE looks back one
    byte only, so bands compress as well as one stream."""
    strategy = zlib.Z_RLE if level else zlib.Z_DEFAULT_STRATEGY
    data = raw.data.cast("B")
    workers = min(4, os.cpu_count() or 1)
    if len(data) < PARALLEL_MIN_BYTES or workers < 2 or not level:
        co = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
        return co.compress(data) + co.flush()
    rows = raw.shape[0]
    cuts = [rows * i // workers * raw.shape[1] for i in range(workers + 1)]

    def band(i: int) -> bytes:
        co = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
        last = i == workers - 1
        return co.compress(data[cuts[i]:cuts[i + 1]]) + co.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    pool = _pool()
    bands = [pool.submit(band, i) for i in range(workers)]
    adler = zlib.adler32(data)
    return b"\x78\x01" + b"".join(f.result() for f in bands) + struct.pack(">I", adler & 0xFFFFFFFF)


def encode_image(image, compress_level: int = 1) -> tuple[bytes, tuple[int, int]]:
    """RGB PNG bytes and (width, height). Alpha is dropped, grey is expanded."""
    a = to_uint8(image, "image")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] >= 4:
        a = np.ascontiguousarray(a[:, :, :3])
    elif a.shape[2] != 3:
        raise HostedValidationError(f"image must have 1, 3 or 4 channels, got {a.shape[2]}", field="image")
    return png_bytes(a, "RGB", compress_level), (a.shape[1], a.shape[0])


def encode_mask(mask, size: tuple[int, int], compress_level: int = 1) -> bytes:
    """Single-channel L PNG (255 = regenerate). `size` (w, h) must match the mask exactly."""
    a = to_uint8(mask, "mask")
    if a.ndim == 3:
        a = a[:, :, 0]
    if (a.shape[1], a.shape[0]) != tuple(size):
        raise HostedValidationError(
            f"mask is {a.shape[1]}x{a.shape[0]} but the image is {size[0]}x{size[1]}; give a mask "
            f"of the image's size (MaskPrep resizes masks)", field="mask")
    return png_bytes(np.ascontiguousarray(a), "L", compress_level)


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def decode_data_uri(uri: str, max_bytes: int) -> tuple[bytes, str]:
    """An output delivered inline (fal sync_mode, WaveSpeed base64 output): (bytes, type).
    A bad one is OutputRefused (asking again gives the same answer)."""
    head, sep, payload = uri.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise OutputRefused("output data URI is not base64-encoded")
    if len(payload) * 3 // 4 > max_bytes:
        raise OutputRefused(f"output data URI exceeds the {max_bytes}-byte limit")
    try:
        return base64.b64decode(payload, validate=True), head[5:-7]
    except (binascii.Error, ValueError):
        raise OutputRefused("output data URI holds invalid base64") from None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the file's header states it, read by PIL's format plugin without
    decoding any pixel (and without PIL's own bomb check, which would hide the size)."""
    fmt = image_format(data)
    if fmt is None:
        return None
    Image.init()
    try:
        return tuple(Image.OPEN[fmt][0](io.BytesIO(data)).size)
    except Exception:  # noqa: BLE001 - an unreadable header: no size to report
        return None


def cap_text(max_pixels: int) -> str:
    side = int(max_pixels ** 0.5)
    return f"{max_pixels:,} pixels" + (f" ({side}x{side})" if side * side == max_pixels else "")


def decode_image(data: bytes, max_pixels: int = MAX_OUTPUT_PIXELS) -> np.ndarray:
    """Downloaded bytes → float32 [H, W, 3] in 0..1, refusing non-images and bombs (the
    header's size is checked against `max_pixels` before anything is decoded): OutputRefused,
    naming the claimed size and the cap."""
    size = header_size(data)
    if size and size[0] * size[1] > max_pixels:
        w, h = size
        raise OutputRefused(f"output image refused as a decompression bomb: its header claims "
                            f"{w}x{h} ({w * h:,} pixels), over the cap of {cap_text(max_pixels)}",
                            size=size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            img.load()
            rgb = img.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        claimed = f"{size[0]}x{size[1]}" if size else "an unreadable size"
        raise OutputRefused(f"output image refused as a decompression bomb: its header claims {claimed}, "
                            f"over PIL's limit (this pack's cap is {cap_text(max_pixels)})", size=size) from None
    except Exception as e:  # noqa: BLE001 - PIL raises many types for bad data
        raise OutputRefused(f"output is not a valid PNG/JPEG/WebP image ({type(e).__name__})",
                            size=size) from None
    out = np.asarray(rgb, dtype=np.float32)       # a fresh array: divide in place
    if not out.flags.writeable:
        out = out.copy()
    out /= 255.0
    return out


def image_format(data: bytes) -> str | None:
    """'PNG' / 'JPEG' / 'WEBP' from the magic bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None
