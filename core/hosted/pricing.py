"""Price estimates from the endpoint table (endpoint_table.ENDPOINTS[...].price).

Rules (from the providers' endpoint pages):
- fal-ai/flux-lora/inpainting   $0.035 per megapixel of output, per image (no rounding stated)
- fal-ai/flux-pro/v1/fill       $0.05 per megapixel, rounded UP to whole megapixels, per image
- fal-ai/flux-general/inpainting $0.075 per megapixel, rounded UP to whole megapixels, per
  image (fal's flux-general page: an estimate must never be below what fal bills)
- fal-ai/flux-lora-fill         not published: estimate is None ("unknown"); the daily spend
  limit counts it at its family's published rate (`Price.estimate_from`: flux-lora/inpainting,
  the same FLUX.1 [dev] family) — `counted_for` / `counted_actual`, always said to be an estimate
- wavespeed-ai/flux-fill-dev    $0.035 per image
A megapixel is 1024×1024 pixels (fal quotes its per-MP prices "at 1024×1024"); this is an
estimate, the provider's invoice is authoritative. fal bills successful outputs only.

Every function takes an optional `price` (an endpoint_table.Price): fal's live figure from its
pricing API (live_prices.py) where one was fetched; None: the built-in table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import endpoint_table
from .params import output_size

MEGAPIXEL = 1024 * 1024


@dataclass(frozen=True)
class PriceEstimate:
    usd: float | None       # None: the provider publishes no price for this endpoint
    basis: str              # human text: "0.035 $/MP × 1.00 MP × 2 images"
    megapixels: float | None = None
    estimated: bool = False  # counted at a family's rate: the endpoint publishes no price

    def text(self) -> str:
        return "price unknown (not published)" if self.usd is None else f"${self.usd:.4f} ({self.basis})"


def for_requests(one: PriceEstimate, count: int) -> PriceEstimate:
    """The estimate of one request, for `count` requests (one per source image)."""
    if count == 1:
        return one
    usd = None if one.usd is None else round(one.usd * count, 6)
    return PriceEstimate(usd, f"{one.basis} × {count} requests", one.megapixels, one.estimated)


def price_of(endpoint_id: str, price: endpoint_table.Price | None = None) -> endpoint_table.Price:
    """`price` (a live figure) or the table's."""
    return price if price is not None else endpoint_table.get(endpoint_id).price


def estimate(endpoint_id: str, width: int, height: int, num_images: int = 1,
             price: endpoint_table.Price | None = None) -> PriceEstimate:
    """Price of `num_images` outputs of width×height on `endpoint_id`."""
    p = price_of(endpoint_id, price)
    mp = width * height / MEGAPIXEL
    n = int(num_images)
    if p.kind is None:
        return PriceEstimate(None, p.source, mp)
    if p.kind == "per_image":
        return PriceEstimate(round(p.usd * n, 6), f"{p.usd} $/image × {n}", None)
    billed = math.ceil(mp - 1e-9) if p.kind == "per_mp_ceil" else mp
    basis = f"{p.usd} $/MP × {billed:.2f} MP" + (" (rounded up)" if p.kind == "per_mp_ceil" else "") + f" × {n}"
    return PriceEstimate(round(p.usd * billed * n, 6), basis, mp)


def estimate_for(endpoint_id: str, validated: dict, input_size: tuple[int, int],
                 price: endpoint_table.Price | None = None) -> PriceEstimate:
    """Estimate for validated params (output size from image_size/size, else the input's)."""
    w, h = output_size(endpoint_id, validated, input_size)
    return estimate(endpoint_id, w, h, validated.get("num_images", 1), price)


def actual(endpoint_id: str, sizes: list[tuple[int, int]],
           price: endpoint_table.Price | None = None) -> PriceEstimate:
    """Cost of the outputs actually returned (list of (w, h)), summed per image."""
    p = price_of(endpoint_id, price)
    if p.kind is None:
        return PriceEstimate(None, p.source)
    if not sizes:
        return PriceEstimate(0.0, "no outputs")
    total = 0.0
    for w, h in sizes:
        mp = w * h / MEGAPIXEL
        units = 1 if p.kind == "per_image" else (
            math.ceil(mp - 1e-9) if p.kind == "per_mp_ceil" else mp)
        total += p.usd * units
    return PriceEstimate(round(total, 6),
                         f"{len(sizes)} output(s): " + ", ".join(f"{w}x{h}" for w, h in sizes))


def price_text(endpoint_id: str, price: endpoint_table.Price | None = None) -> str:
    return price_of(endpoint_id, price).source


def family_of(endpoint_id: str, price: endpoint_table.Price | None = None) -> str | None:
    """The endpoint whose published rate an unpublished one is counted at (None: published)."""
    p = price_of(endpoint_id, price)
    return None if p.kind is not None else p.estimate_from


def _at_family_rate(endpoint_id: str, est: PriceEstimate) -> PriceEstimate:
    family = family_of(endpoint_id)
    return PriceEstimate(est.usd, f"estimated at the family rate of {family} "
                         f"({price_text(family)}; {endpoint_id} publishes no price): {est.basis}",
                         est.megapixels, estimated=True)


def counted_for(endpoint_id: str, validated: dict, input_size: tuple[int, int],
                price: endpoint_table.Price | None = None) -> PriceEstimate:
    """What the daily spend limit counts for a request: its estimate, or for an endpoint without
    a published price the estimate at its family's rate (`estimated` True). usd None only
    for an unpublished endpoint without a family (none in the table)."""
    family = family_of(endpoint_id, price)
    if family is None:
        return estimate_for(endpoint_id, validated, input_size, price)
    w, h = output_size(endpoint_id, validated, input_size)
    return _at_family_rate(endpoint_id, estimate(family, w, h, validated.get("num_images", 1)))


def counted_actual(endpoint_id: str, sizes: list[tuple[int, int]],
                   price: endpoint_table.Price | None = None) -> PriceEstimate:
    """`actual`, or at the family's rate for an endpoint without a published price."""
    family = family_of(endpoint_id, price)
    return actual(endpoint_id, sizes, price) if family is None else _at_family_rate(endpoint_id, actual(family, sizes))
