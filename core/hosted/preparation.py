"""Everything a hosted fill decides before the network: the request's params merged with its
LoRA stack and validated against the endpoint table, the image and mask encoded as PNGs
(mask "L", image-sized), the input hash and the price estimate (`prepare`)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..fill_protocol import FillRequest
from . import images, pricing
from .endpoint_table import Endpoint, canonical_name
from .errors import HostedValidationError
from .journal import input_hash
from .params import map_images, validate


@dataclass
class Prepared:
    """Everything decided before the network: validated params, encoded inputs, hash, price."""
    params: dict                    # validated; extra images still in memory
    hash_params: dict               # images replaced by "sha256:<hex>"
    image_png: bytes
    mask_png: bytes
    size: tuple[int, int]           # input (w, h)
    input_hash: str
    estimate: pricing.PriceEstimate
    extra_png: dict[int, bytes] = field(default_factory=dict)   # id(image) -> PNG
    prepare_s: float = 0.0


def merge_loras(endpoint: Endpoint, stack, params: dict) -> list:
    """The LoRA stack's hosted entries (FillRequest.loras; per-layer scales from the
    provider-level param `lora_layer_scales`, removed from params), then any hosted-format
    `loras` already in params."""
    from ..lora_list import hosted_loras
    try:
        loras = hosted_loras(stack, params.pop("lora_layer_scales", None))
    except ValueError as e:
        raise HostedValidationError(f"lora_stack: {e}", field="lora_stack") from None
    loras += list(params.get("loras") or [])
    if loras and not endpoint.takes("loras"):
        raise HostedValidationError(f"{endpoint.id} takes no LoRAs: remove the lora_stack or choose "
                                    f"an endpoint with LoRA support", field="loras")
    return loras


def prepare(endpoint: Endpoint, provider: str, request: FillRequest, price=None) -> Prepared:
    """Validate and encode `request` for `endpoint` of `provider` (its name, part of the
    input hash); `prepare_s` is the time this took."""
    start = time.monotonic()
    params = dict(request.params or {})
    for k in ("prompt", "seed", "num_images"):
        params.pop(k, None)
    params = {canonical_name(k): v for k, v in params.items()}
    params["loras"] = merge_loras(endpoint, request.loras, params)
    if not endpoint.takes("loras"):
        params.pop("loras")
    params.update(prompt=request.prompt, seed=int(request.seed), num_images=int(request.num_images))
    image_png, size = images.encode_image(request.image)
    mask_png = images.encode_mask(request.mask, size)
    for key in ("image_size", "size"):          # unset: the output follows the input
        if endpoint.takes(key) and params.get(key) is None:
            params[key] = {"width": size[0], "height": size[1]}
    try:
        validated = validate(endpoint.id, params)
    except HostedValidationError as e:
        if "size" in (e.field or "") and params.get("size") == {"width": size[0], "height": size[1]}:
            raise HostedValidationError(
                f"{e} — the input image is {size[0]}x{size[1]}; {endpoint.id} takes 256-1536 per "
                f"side: crop (CropToMask) or resize the image, or set size explicitly",
                field="size") from None
        raise
    extra: dict[int, bytes] = {}

    def placeholder(img):
        png = extra.get(id(img))
        if png is None:
            png = extra[id(img)] = images.encode_image(img)[0]
        return "sha256:" + images.sha256(png)

    hash_params = map_images(validated, placeholder)
    hash_params["__inputs__"] = {"image": images.sha256(image_png), "mask": images.sha256(mask_png)}
    key = input_hash(provider, endpoint.id, hash_params)
    est = pricing.estimate_for(endpoint.id, validated, size, price)
    return Prepared(validated, hash_params, image_png, mask_png, size, key, est, extra,
                    prepare_s=time.monotonic() - start)
