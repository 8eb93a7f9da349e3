"""FalFill: FLUX fills on fal.ai (4 endpoints, one widget set) over the hosted core.

One widget set serves every endpoint. A widget the chosen endpoint does not take is left out
of the request; when its value differs from the widget's default, the report says it was
ignored (never an error: switching endpoints must not break a graph). Sentinels mean "the
endpoint's own default": steps / guidance / strength -1, output_format "default",
image_size "input" (the input image's size). Ranges are checked by the core's endpoint
table before anything is sent.

controlnets / controlnet_unions are JSON; an image field may hold a URL or a placeholder:
"$control_image" (the control_image input, 1 for all or 1 per source image), "$image"
(the source image itself) or "$mask" (the fill mask as an image).
"""
from __future__ import annotations

import time

import torch

from ..core import lora_list
from ..core.fill_protocol import FillRequest
from ..core.hosted import endpoints as E
from ..core.hosted.provider import FalProvider
from . import hosted_common as H
from .fill_shape import FillNode, check_masks, fill_input_types, per_image

NODE = "FalFill"
ENDPOINTS = E.endpoints_for("fal")
DEFAULT_ENDPOINT = "fal-ai/flux-lora-fill"
IMAGE_SIZES = ["input"] + list(E.IMAGE_SIZE_PRESETS) + ["custom"]
PLACEHOLDERS = ("$control_image", "$image", "$mask")
CONTROLNET_EXAMPLE = ('[{"path": "InstantX/FLUX.1-dev-Controlnet-Canny", "control_image_url": '
                      '"$control_image", "conditioning_scale": 0.7}]')
UNION_EXAMPLE = ('[{"path": "InstantX/FLUX.1-dev-Controlnet-Union", "controls": [{"control_image_url": '
                 '"$control_image", "control_mode": "canny", "conditioning_scale": 0.7}]}]')
LAYER_EXAMPLE = '{"1": {"transformer.single_transformer_blocks.0": 0.5, "transformer.transformer_blocks.3": 1.2}}'

# widget -> the endpoint field it sets (the web extension greys widgets from this map)
WIDGET_FIELDS = {
    "image_size": "image_size", "width": "image_size", "height": "image_size",
    "steps": "num_inference_steps", "guidance": "guidance_scale", "strength": "strength",
    "enable_safety_checker": "enable_safety_checker", "safety_tolerance": "safety_tolerance",
    "enhance_prompt": "enhance_prompt", "output_format": "output_format",
    "acceleration": "acceleration", "paste_back": "paste_back",
    "resize_to_original": "resize_to_original", "sync_mode": "sync_mode",
    "fill_image": "fill_image", "in_context_fill": "fill_image", "use_prompt": "fill_image",
    "lora_stack": "loras", "lora_layer_scales": "loras",
    "controlnets": "controlnets", "controlnet_unions": "controlnet_unions",
    "control_image": "controlnets",
}


def _b(default, tip):
    return ("BOOLEAN", {"default": default, "tooltip": tip})


def _widgets() -> dict:
    return {
        "endpoint": (ENDPOINTS, {"default": DEFAULT_ENDPOINT, "tooltip":
                     "fal.ai endpoint. flux-lora-fill: FLUX.1 Fill [dev] (+LoRAs, fill_image). "
                     "flux-lora/inpainting: FLUX.1 [dev] img2img inpainting with strength (+LoRAs). "
                     "flux-pro/v1/fill: FLUX.1 Fill [pro]. flux-general/inpainting: [dev] with "
                     "ControlNets and per-layer LoRA scales. Widgets an endpoint does not take are ignored."}),
        "image_size": (IMAGE_SIZES, {"default": "input", "tooltip":
                       "Output size: input = the input image's size (recommended with MaskPrep), a fal "
                       "preset, or custom (width/height below). flux-pro/v1/fill always uses the input size."}),
        "width": ("INT", {"default": 1024, "min": 16, "max": 14142, "step": 16,
                          "tooltip": "Output width when image_size is custom."}),
        "height": ("INT", {"default": 1024, "min": 16, "max": 14142, "step": 16,
                           "tooltip": "Output height when image_size is custom."}),
        "steps": ("INT", {"default": -1, "min": -1, "max": 50, "tooltip":
                  "Inference steps (1-50). -1 = the endpoint's default (28). Not taken by flux-pro/v1/fill."}),
        "guidance": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 35.0, "step": 0.1, "tooltip":
                     "Guidance scale. -1 = the endpoint's default: 30 on flux-lora-fill (range 28-35), "
                     "3.5 on flux-lora/inpainting and flux-general/inpainting (0-35). Not taken by flux-pro."}),
        "strength": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 1.0, "step": 0.01, "tooltip":
                     "Inpainting strength 0.01-1 (1 = remake the masked area). -1 = the endpoint's "
                     "default (0.85). Only flux-lora/inpainting and flux-general/inpainting take it."}),
        "output_format": (["png", "jpeg", "default"], {"default": "png", "tooltip":
                          "File format fal returns: png (lossless, the default here), jpeg (smaller), "
                          "or default = the endpoint's own (jpeg; png on flux-general)."}),
        "enable_safety_checker": _b(True, "fal's NSFW checker (flagged outputs stop the node with an "
                                          "error). Not taken by flux-pro/v1/fill: use safety_tolerance there."),
        "safety_tolerance": (["1", "2", "3", "4", "5", "6"], {"default": "2", "tooltip":
                             "flux-pro/v1/fill only: moderation level, 1 strictest .. 6 most permissive."}),
        "enhance_prompt": _b(False, "flux-pro/v1/fill only: let fal rewrite the prompt."),
        "acceleration": (["none", "regular"], {"default": "none", "tooltip":
                         "flux-lora-fill and flux-lora/inpainting: backend speed preset (regular = faster, "
                         "may change the result slightly)."}),
        "paste_back": _b(True, "flux-lora-fill only: fal pastes the original back outside the mask."),
        "resize_to_original": _b(False, "flux-lora-fill only: resize the output to the input's size."),
        "in_context_fill": _b(False, "flux-lora-fill with fill_image connected: use the fill image as "
                                     "in-context reference."),
        "use_prompt": _b(False, "flux-lora-fill with fill_image connected: also use the prompt."),
        "lora_layer_scales": ("STRING", {"default": "{}", "multiline": False, "tooltip":
                              "flux-general/inpainting only: per-layer scales for LoRAs of lora_stack, as JSON "
                              "{LoRA position (1 = first in the stack) or hosted path: {layer: scale}}; it "
                              "replaces that LoRA's single scale. Example: " + LAYER_EXAMPLE}),
        "controlnets": ("STRING", {"default": "[]", "multiline": True, "tooltip":
                        "flux-general/inpainting only: JSON list (at most 1) of {path, control_image_url, "
                        "conditioning_scale, config_url, variant, mask_image_url, mask_threshold, "
                        "start_percentage, end_percentage}. Image fields take a URL or $control_image (the "
                        "control_image input), $image (the source image), $mask (the fill mask). "
                        "Example: " + CONTROLNET_EXAMPLE}),
        "controlnet_unions": ("STRING", {"default": "[]", "multiline": True, "tooltip":
                              "flux-general/inpainting only: JSON list (at most 1) of {path, config_url, "
                              "variant, controls: [{control_image_url, control_mode (canny, tile, depth, "
                              "blur, pose, gray, low-quality), conditioning_scale, ...}]}; placeholders as "
                              "in controlnets. Example: " + UNION_EXAMPLE}),
        "sync_mode": _b(False, "fal returns the outputs inline (data URIs) and keeps no copy in your "
                               "request history."),
        "force_new": _b(False, "Send a new (paid) request even when the same inputs already have a "
                               "result in the on-disk cache or a pending request to resume."),
        "max_concurrency": ("INT", {"default": 4, "min": 1, "max": 16, "tooltip":
                            "At most this many requests at once (one request per source image)."}),
        "timeout_s": ("INT", {"default": 600, "min": 1, "max": 86400, "tooltip":
                      "Give up waiting after this many seconds per request. The request stays in the "
                      "journal: running the same inputs again picks it up without paying twice."}),
    }


class FalFill(FillNode):
    NODE_ID = "FalFill"
    DISPLAY_NAME = "FLUX Fill (fal.ai)"
    DESCRIPTION = ("FLUX inpainting/outpainting on fal.ai: FLUX.1 Fill [dev] with LoRAs, [dev] "
                   "inpainting, Fill [pro] or flux-general with ControlNets. One request per source "
                   "image (concurrent), results cached on disk (re-runs are free) and journaled (a "
                   "crash or timeout resumes, never pays twice). Key: FAL_KEY or the FluxFill "
                   "settings, never a widget.")

    @classmethod
    def INPUT_TYPES(cls):
        return fill_input_types(
            required=_widgets(),
            optional={
                "fill_image": ("IMAGE", {"tooltip": "flux-lora-fill only: an image placed into the masked "
                                                    "area (1 for all or 1 per source image)."}),
                "control_image": ("IMAGE", {"tooltip": "flux-general/inpainting: the image that "
                                                       "\"$control_image\" in controlnets / controlnet_unions "
                                                       "refers to (1 for all or 1 per source image)."}),
            },
            hidden={"unique_id": "UNIQUE_ID"},
        )

    def fill(self, image, mask, prompt, seed, num_images, endpoint, image_size, width, height, steps,
             guidance, strength, output_format, enable_safety_checker, safety_tolerance, enhance_prompt,
             acceleration, paste_back, resize_to_original, in_context_fill, use_prompt,
             lora_layer_scales, controlnets, controlnet_unions, sync_mode, force_new, max_concurrency,
             timeout_s, lora_stack=None, fill_image=None, control_image=None, unique_id=None):
        t0 = time.monotonic()
        w = dict(image_size=image_size, width=width, height=height, steps=steps, guidance=guidance,
                 strength=strength, output_format=output_format,
                 enable_safety_checker=enable_safety_checker, safety_tolerance=safety_tolerance,
                 enhance_prompt=enhance_prompt, acceleration=acceleration, paste_back=paste_back,
                 resize_to_original=resize_to_original, in_context_fill=in_context_fill,
                 use_prompt=use_prompt, lora_layer_scales=lora_layer_scales, controlnets=controlnets,
                 controlnet_unions=controlnet_unions, sync_mode=sync_mode)
        ep = E.get(endpoint)
        count = image.shape[0]
        masks = per_image(mask, count, "mask", NODE)
        check_masks(masks, image, NODE, paid=True)
        fills = per_image(fill_image, count, "fill_image", NODE) if fill_image is not None else None
        controls = per_image(control_image, count, "control_image", NODE) if control_image is not None else None
        base, ignored = widget_params(ep, w, lora_stack, fill_image is not None)
        requests = []
        for i in range(count):
            params = resolve_images(base, image[i], masks[i], fills[i] if fills else None,
                                    controls[i] if controls else None)
            requests.append(FillRequest(image=image[i], mask=masks[i], prompt=prompt, seed=seed,
                                        num_images=num_images, loras=[], params=params, index=i))
        provider = H.make_provider(FalProvider, NODE, endpoint, force_new=force_new, timeout_s=timeout_s)
        try:
            prep = provider.prepare(requests[0])       # validates everything before any request
        except ValueError as e:
            H._prefix(e, NODE)
            raise
        est = H.times_estimate(prep.estimate, count)
        size = E.output_size(endpoint, prep.params, prep.size)
        text = H.estimate_text(endpoint, est, count, num_images, size)
        if ignored:
            text += "\nignored (not taken by this endpoint): " + "; ".join(ignored)
        results = H.run_requests(NODE, provider, requests, unique_id, max_concurrency, text)
        H.nsfw_check(NODE, results)
        report = H.build_report("fal", NODE, endpoint, results, estimate=est, notes=[], ignored=ignored,
                                t0=t0, num_images=num_images, loras=lora_list.describe(lora_stack))
        return (torch.cat([r.images for r in results], dim=0), report)


def _default(name: str):
    return _widgets()[name][1]["default"]


def widget_params(ep: E.Endpoint, w: dict, lora_stack, has_fill_image: bool) -> tuple[dict, list[str]]:
    """(params for the core, notes on ignored widgets). Placeholders stay strings here."""
    params, ignored = {}, []

    def offer(field: str, value, names: tuple[str, ...]):
        if ep.takes(field):
            if value is not None:
                params[field] = value
        elif any(w[n] != _default(n) for n in names):
            shown = ", ".join(f"{n}={w[n]!r}" for n in names if w[n] != _default(n))
            ignored.append(f"{shown} ({ep.id} does not take {field})")

    size = None
    if w["image_size"] == "custom":
        size = {"width": int(w["width"]), "height": int(w["height"])}
    elif w["image_size"] != "input":
        size = w["image_size"]
    names = ("image_size", "width", "height") if w["image_size"] == "custom" else ("image_size",)
    offer("image_size", size, names)
    offer("num_inference_steps", None if w["steps"] < 0 else int(w["steps"]), ("steps",))
    offer("guidance_scale", None if w["guidance"] < 0 else float(w["guidance"]), ("guidance",))
    offer("strength", None if w["strength"] < 0 else float(w["strength"]), ("strength",))
    offer("output_format", None if w["output_format"] == "default" else w["output_format"], ("output_format",))
    for name in ("enable_safety_checker", "safety_tolerance", "enhance_prompt", "acceleration",
                 "paste_back", "resize_to_original", "sync_mode"):
        offer(name, w[name], (name,))
    for name, example in (("controlnets", CONTROLNET_EXAMPLE), ("controlnet_unions", UNION_EXAMPLE)):
        value = H.parse_json_widget(NODE, name, w[name], list, example)
        if ep.takes(name):
            params[name] = value
        elif value:
            ignored.append(f"{name} ({ep.id} does not take {name})")
    if has_fill_image:
        if ep.takes("fill_image"):
            params["fill_image"] = {"fill_image_url": "$fill_image", "in_context_fill": bool(w["in_context_fill"]),
                                    "use_prompt": bool(w["use_prompt"])}
        else:
            ignored.append(f"fill_image input ({ep.id} does not take fill_image)")
    elif w["in_context_fill"] or w["use_prompt"]:
        ignored.append("in_context_fill/use_prompt (no fill_image connected)")
    loras, notes = hosted_lora_list(ep, lora_stack, w["lora_layer_scales"])
    ignored += notes
    if ep.takes("loras"):
        params["loras"] = loras
    return params, ignored


def hosted_lora_list(ep: E.Endpoint, lora_stack, layer_text: str) -> tuple[list, list[str]]:
    try:
        loras = lora_list.hosted_loras(lora_stack) if lora_stack else []
    except ValueError as e:
        raise ValueError(f"{NODE}: lora_stack: {e}") from None
    layers = H.parse_json_widget(NODE, "lora_layer_scales", layer_text, dict, LAYER_EXAMPLE)
    notes = []
    if loras and not ep.takes("loras"):
        return [], [f"lora_stack ({len(loras)} LoRA(s); {ep.id} takes no LoRAs)"]
    if not layers:
        return loras, notes
    if not ep.rules["loras"].per_layer:
        return loras, [f"lora_layer_scales ({ep.id} takes one scale per LoRA; only "
                       f"fal-ai/flux-general/inpainting takes per-layer scales)"]
    for key, scales in layers.items():
        idx = int(key) - 1 if str(key).isdigit() else next(
            (i for i, lo in enumerate(loras) if lo["path"] == key), None)
        if idx is None or not 0 <= idx < len(loras):
            raise ValueError(f"{NODE}: lora_layer_scales key {key!r} names no LoRA of lora_stack "
                             f"(use 1..{len(loras)} or a hosted path). Example: {LAYER_EXAMPLE}")
        if not isinstance(scales, dict):
            raise ValueError(f"{NODE}: lora_layer_scales[{key!r}] must be an object {{layer: scale}}. "
                             f"Example: {LAYER_EXAMPLE}")
        loras[idx] = {"path": loras[idx]["path"], "scale": scales}
    return loras, notes


def resolve_images(params: dict, image, mask, fill, control) -> dict:
    """A copy of params with placeholders replaced by this source image's tensors."""
    values = {"$image": image, "$mask": mask[..., None].expand(*mask.shape, 3),
              "$control_image": control, "$fill_image": fill}

    def conv(v, where):
        if isinstance(v, dict):
            return {k: conv(x, f"{where}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, str) and v.startswith("$"):
            if v not in values:
                raise ValueError(f"{NODE}: {where}: unknown placeholder {v!r}; use one of "
                                 f"{', '.join(PLACEHOLDERS)} or a URL")
            if values[v] is None:
                raise ValueError(f"{NODE}: {where} is {v!r} but no control_image is connected: "
                                 f"connect one, or use $image / $mask / a URL")
            return values[v]
        return v

    return {k: conv(v, k) if k in ("controlnets", "controlnet_unions", "fill_image") else v
            for k, v in params.items()}
