"""One table per hosted endpoint: every parameter it takes, with type, default and range.

This is the single source of truth for validation and payloads (params.py), pricing
(`Endpoint.price`, pricing.py), README tables and the web UI (presentation.py). Field names
are the providers' own API names; the short aliases `steps` (num_inference_steps) and
`guidance` (guidance_scale) are accepted too (`canonical_name`).

Sources: the providers' endpoint pages first; where a page is vague (fal's flux-general
page gives no ranges), fal's published client schemas: the fal-js generated zod types
(github.com/fal-ai/fal-js, libs/client/src/types/image/zod.gen.ts, `zFluxGeneralInpaintingInput`,
`zControlNet`, `zControlNetUnionInput`: guidance_scale 0-20, conditioning_scale 0-2,
num_inference_steps 1-50, strength 0.01-1, mask_threshold 0.01-0.99, start/end_percentage 0-1).
Where neither publishes anything, the table says so in `note` rather than inventing a tighter
rule (e.g. fal's LoRA scale has no published range: only finiteness is checked).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import HostedValidationError

FAL_DATA_URI_LIMIT = 10 * 1024 * 1024   # fal accepts data URIs up to 10 MiB
SEED_MAX = 2147483647
IMAGE_SIZE_PRESETS = {
    "square_hd": (1024, 1024), "square": (512, 512),
    "portrait_4_3": (768, 1024), "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576),
}
CONTROL_MODES = ("canny", "tile", "depth", "blur", "pose", "gray", "low-quality")
ALIASES = {"steps": "num_inference_steps", "guidance": "guidance_scale"}
# the providers' names in messages, the price panel and the web extension (read from the route)
PROVIDER_TITLES = {"fal": "fal.ai", "wavespeed": "WaveSpeedAI"}


@dataclass(frozen=True)
class Rule:
    """How one endpoint takes one field."""
    default: Any = None           # None: not sent unless given
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    max_items: int | None = None  # lists (loras, controlnets)
    scale_min: float | None = None  # loras: scale; controlnets/unions: conditioning_scale
    scale_max: float | None = None  # (None: only finite)
    per_layer: bool = False       # loras: scale may be {layer: scale}
    required: bool = False
    note: str = ""


@dataclass(frozen=True)
class Field:
    type: str   # str int float bool enum image_size size loras fill_image controlnets controlnet_unions
    doc: str
    alias: str | None = None


FIELDS: dict[str, Field] = {
    "prompt": Field("str", "What to paint into the masked area."),
    "image_size": Field("image_size", "Output size: a preset (square_hd, square, portrait_4_3, portrait_16_9, "
                        "landscape_4_3, landscape_16_9) or {width, height}. Unset: the input image's size."),
    "size": Field("size", "Output size \"W*H\" (also (w, h) or {width, height}). Unset: the input image's size."),
    "num_inference_steps": Field("int", "Denoising steps.", alias="steps"),
    "seed": Field("int", "Seed; same seed + same inputs gives the same image."),
    "guidance_scale": Field("float", "Prompt adherence (CFG / FLUX guidance).", alias="guidance"),
    "strength": Field("float", "Inpainting strength: 1.0 remakes the masked area, ~0 keeps it."),
    "num_images": Field("int", "Images per request."),
    "loras": Field("loras", "LoRAs [{path, scale}] (from LoraStack's hosted paths)."),
    "enable_safety_checker": Field("bool", "Run the provider's safety filter on outputs."),
    "safety_tolerance": Field("enum", "Moderation level, \"1\" strictest .. \"6\" most permissive."),
    "enhance_prompt": Field("bool", "Let the provider rewrite the prompt."),
    "output_format": Field("enum", "Format of the generated files."),
    "acceleration": Field("enum", "Speed preset of the backend."),
    "paste_back": Field("bool", "Paste the original back outside the mask."),
    "fill_image": Field("fill_image",
                        "Image placed into the masked area: {fill_image_url, in_context_fill, use_prompt}."),
    "resize_to_original": Field("bool", "Resize the output back to the input's size."),
    "controlnets": Field("controlnets", "[{path, control_image_url, conditioning_scale, config_url, variant, "
                         "mask_image_url, mask_threshold, start_percentage, end_percentage}]"),
    "controlnet_unions": Field("controlnet_unions", "[{path, config_url, variant, controls: [{control_image_url, "
                               "control_mode, conditioning_scale, mask_image_url, mask_threshold, "
                               "start_percentage, end_percentage}]}]"),
    "sync_mode": Field("bool", "Return outputs as data URIs (not kept in the request history)."),
    "enable_base64_output": Field("bool", "Return outputs as base64 data URIs."),
    "enable_sync_mode": Field("bool", "Answer the submit only when the outputs are ready."),
}


@dataclass(frozen=True)
class Price:
    kind: str | None      # "per_mp" | "per_mp_ceil" | "per_image" | None (unpublished)
    usd: float | None
    source: str
    # unpublished: the endpoint of the same model family whose published rate the daily spend
    # limit counts it at (an estimate, and said so wherever it is used)
    estimate_from: str | None = None


@dataclass(frozen=True)
class Endpoint:
    id: str
    provider: str                 # "fal" | "wavespeed"
    title: str
    price: Price
    rules: dict[str, Rule]
    image_key: str = "image_url"
    mask_key: str = "mask_url"
    data_uri_limit: int = 0       # 0: always upload
    note: str = ""

    def takes(self, name: str) -> bool:
        return name in self.rules


_STEPS = Rule(28, 1, 50)
_N = Rule(1, 1, 4)
_FAL_SEED = Rule(None, 0, SEED_MAX)
_FMT = ("jpeg", "png")
_PROMPT_REQ = Rule(required=True)

ENDPOINTS: dict[str, Endpoint] = {e.id: e for e in [
    Endpoint("fal-ai/flux-lora-fill", "fal", "FLUX.1 [dev] Fill with LoRAs",
             Price(None, None, "not published on the endpoint page",
                   estimate_from="fal-ai/flux-lora/inpainting"), {
                 "prompt": Rule(note="optional (empty = plain fill)"),
                 "image_size": Rule(), "num_inference_steps": _STEPS, "seed": _FAL_SEED,
                 "loras": Rule([], note="scale: no published range"),
                 "guidance_scale": Rule(30, 28, 35), "sync_mode": Rule(False), "num_images": _N,
                 "enable_safety_checker": Rule(True), "output_format": Rule("jpeg", choices=_FMT),
                 "acceleration": Rule("none", choices=("none", "regular")),
                 "paste_back": Rule(True), "fill_image": Rule(), "resize_to_original": Rule(False),
             }, data_uri_limit=FAL_DATA_URI_LIMIT),
    Endpoint("fal-ai/flux-lora/inpainting", "fal", "FLUX.1 [dev] Inpainting with LoRAs",
             Price("per_mp", 0.035, "$0.035 per megapixel"), {
                 "prompt": _PROMPT_REQ, "image_size": Rule(), "num_inference_steps": _STEPS,
                 "seed": _FAL_SEED, "loras": Rule([], note="scale: no published range"),
                 "guidance_scale": Rule(3.5, 0, 35), "sync_mode": Rule(False), "num_images": _N,
                 "enable_safety_checker": Rule(True), "output_format": Rule("jpeg", choices=_FMT),
                 "acceleration": Rule("none", choices=("none", "regular")),
                 "strength": Rule(0.85, 0.01, 1),
             }, data_uri_limit=FAL_DATA_URI_LIMIT),
    Endpoint("fal-ai/flux-pro/v1/fill", "fal", "FLUX.1 [pro] Fill",
             Price("per_mp_ceil", 0.05, "$0.05 per megapixel, rounded up to whole megapixels"), {
                 "prompt": _PROMPT_REQ, "seed": _FAL_SEED, "sync_mode": Rule(False), "num_images": _N,
                 "output_format": Rule("jpeg", choices=_FMT),
                 "safety_tolerance": Rule("2", choices=("1", "2", "3", "4", "5", "6")),
                 "enhance_prompt": Rule(False),
             }, data_uri_limit=FAL_DATA_URI_LIMIT,
             note="image and mask must have the same size (always true here)"),
    # ranges: fal's generated client schema (fal-js zod types, see the module docstring)
    Endpoint("fal-ai/flux-general/inpainting", "fal", "FLUX.1 [dev] with ControlNets and LoRAs (inpainting)",
             Price("per_mp_ceil", 0.075, "$0.075 per megapixel, rounded up to whole megapixels"), {
                 "prompt": _PROMPT_REQ, "image_size": Rule(),
                 "num_inference_steps": _STEPS, "seed": _FAL_SEED,
                 "loras": Rule([], per_layer=True, note="scale: float or {layer: scale}; no published range"),
                 "controlnets": Rule([], max_items=1, scale_min=0, scale_max=2, note="only one supported by fal"),
                 "controlnet_unions": Rule([], max_items=1, scale_min=0, scale_max=2,
                                           note="only one supported by fal"),
                 "guidance_scale": Rule(3.5, 0, 20, note="0-20 on this endpoint, not dev's 0-35"),
                 "sync_mode": Rule(False),
                 "num_images": Rule(1, 1, 4, note="fal takes up to 10; the fill nodes send 1-4"),
                 "enable_safety_checker": Rule(True),
                 "strength": Rule(0.85, 0.01, 1), "output_format": Rule("png", choices=_FMT),
             }, data_uri_limit=FAL_DATA_URI_LIMIT),
    Endpoint("wavespeed-ai/flux-fill-dev", "wavespeed", "WaveSpeedAI FLUX.1 Fill [dev]",
             Price("per_image", 0.035, "$0.035 per image"), {
                 "prompt": _PROMPT_REQ, "size": Rule(None, 256, 1536),
                 "num_inference_steps": _STEPS, "seed": Rule(None, -1, SEED_MAX),
                 "guidance_scale": Rule(30, 28, 35), "num_images": _N,
                 "loras": Rule([], max_items=3, scale_min=0, scale_max=4),
                 "enable_safety_checker": Rule(True), "enable_base64_output": Rule(False),
                 "enable_sync_mode": Rule(False),
             }, image_key="image", mask_key="mask_image", data_uri_limit=0,
             note="inputs are always uploaded (the page documents URLs only)"),
]}


def get(endpoint_id: str) -> Endpoint:
    try:
        return ENDPOINTS[endpoint_id]
    except KeyError:
        raise HostedValidationError(f"unknown endpoint {endpoint_id!r}; choose one of "
                                    f"{', '.join(ENDPOINTS)}", field="endpoint") from None


def endpoints_for(provider: str) -> list[str]:
    return [k for k, e in ENDPOINTS.items() if e.provider == provider]


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


# The smallest seed max of any endpoint: the fill nodes' seed widget range, valid on all of them.
NARROWEST_SEED_MAX = min(e.rules["seed"].max for e in ENDPOINTS.values())
