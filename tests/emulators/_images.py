"""Deterministic stand-ins for generated images, and input decoding.

A "fill" keeps the source outside the mask and paints a flat colour inside it, blended by
the mask's grey level (like paste-back): out = src * (1 - m) + colour * m, m = mask / 255.
The colour is derived from (prompt, seed, index) only, so tests can tell outputs apart and
recompute them with `fill_colour`."""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import struct
import zlib

import numpy as np
from PIL import Image

FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}


class InputError(ValueError):
    """A file input that could not be used; `kind` is the error type the API reports."""

    def __init__(self, msg: str, kind: str = "image_load_error"):
        super().__init__(msg)
        self.kind = kind


def fill_colour(prompt: str, seed: int, index: int) -> tuple[int, int, int]:
    """The RGB colour the emulators paint inside the mask for this output."""
    digest = hashlib.sha256(f"{prompt}\x00{seed}\x00{index}".encode()).digest()
    return digest[0], digest[1], digest[2]


def parse_data_uri(uri: str) -> tuple[bytes, str]:
    head, sep, data = uri.partition(",")
    if not sep or not head.startswith("data:"):
        raise InputError("malformed data URI", "invalid_data_uri")
    media = head[5:]
    try:
        raw = base64.b64decode(data, validate=True) if media.endswith(";base64") else \
            data.encode()
    except binascii.Error:
        raise InputError("data URI is not valid base64", "invalid_data_uri") from None
    return raw, media.split(";")[0] or "text/plain"


def open_image(data: bytes, what: str, decode: bool = True) -> Image.Image:
    """The image in `data`; decode=False reads its header only (format and size), as a queue
    does at submit: the pixels are decoded by the job, while it runs."""
    try:
        img = Image.open(io.BytesIO(data))
        if decode:
            img.load()
    except Exception:  # noqa: BLE001 - PIL raises many types for bad data
        raise InputError(f"{what} is not a decodable image", "image_load_error") from None
    return img


def render(source: Image.Image, mask: Image.Image, size: tuple[int, int],
           colour: tuple[int, int, int], *, paste_back: bool = True,
           black: bool = False) -> Image.Image:
    """One output image. `black` mimics a safety-checker hit; paste_back=False shifts the
    pixels outside the mask by +8 so a test can see that nothing was pasted back."""
    if black:
        return Image.new("RGB", size, (0, 0, 0))
    src = np.asarray(source.convert("RGB").resize(size, Image.BILINEAR), dtype=np.float32)
    m = np.asarray(mask.convert("L").resize(size, Image.BILINEAR), dtype=np.float32)[..., None]
    m /= 255.0
    if not paste_back:
        src = np.minimum(src + 8.0, 255.0)
    out = src * (1.0 - m) + np.asarray(colour, dtype=np.float32) * m
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str) -> tuple[bytes, str]:
    pil_fmt, content_type = FORMATS[fmt]
    buf = io.BytesIO()
    img.save(buf, format=pil_fmt, **({"quality": 95} if pil_fmt == "JPEG" else {}))
    return buf.getvalue(), content_type


def data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A small PNG whose header claims width x height (a decompression bomb): signature, IHDR,
    one short IDAT of zero rows, IEND — valid chunks and CRCs, a few hundred bytes."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
