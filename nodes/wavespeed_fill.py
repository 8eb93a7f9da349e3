"""WaveSpeedFill: FLUX.1 Fill [dev] on WaveSpeedAI (wavespeed-ai/flux-fill-dev) over the hosted core."""
from __future__ import annotations

import time

import torch

from ..core import lora_list
from ..core.fill_protocol import FillRequest
from ..core.hosted import endpoints as E
from ..core.hosted.provider import WaveSpeedProvider
from . import hosted_common as H
from .fill_shape import FillNode, check_masks, fill_input_types, per_image

NODE = "WaveSpeedFill"
ENDPOINT = "wavespeed-ai/flux-fill-dev"
_RULES = E.get(ENDPOINT).rules
SIDE_MIN, SIDE_MAX = int(_RULES["size"].min), int(_RULES["size"].max)


def _side(name: str) -> tuple:
    return ("INT", {"default": 0, "min": 0, "max": SIDE_MAX, "step": 16, "tooltip":
                    f"Output {name} ({SIDE_MIN}-{SIDE_MAX}). 0 = the input image's {name}, which must then "
                    f"fit too (MaskPrep with max_side {SIDE_MAX} makes sure of that)."})


class WaveSpeedFill(FillNode):
    NODE_ID = "WaveSpeedFill"
    DISPLAY_NAME = "FLUX Fill (WaveSpeedAI)"
    DESCRIPTION = ("FLUX.1 Fill [dev] on WaveSpeedAI (wavespeed-ai/flux-fill-dev, $0.035 per image, "
                   "256-1536 px per side, up to 3 LoRAs). One request per source image (concurrent), "
                   "results cached on disk (re-runs are free) and journaled (a crash or timeout "
                   "resumes, never pays twice). Key: WAVESPEED_API_KEY or the FluxFill settings, "
                   "never a widget.")

    @classmethod
    def INPUT_TYPES(cls):
        steps, guidance = _RULES["num_inference_steps"], _RULES["guidance_scale"]
        return fill_input_types(
            required={
                "width": _side("width"),
                "height": _side("height"),
                "steps": ("INT", {"default": steps.default, "min": int(steps.min), "max": int(steps.max),
                                  "tooltip": f"Inference steps ({int(steps.min)}-{int(steps.max)})."}),
                "guidance": ("FLOAT", {"default": float(guidance.default), "min": float(guidance.min),
                                       "max": float(guidance.max), "step": 0.1, "tooltip":
                                       f"Guidance scale ({guidance.min:g}-{guidance.max:g}); Fill is tuned "
                                       f"for {guidance.default:g}."}),
                "enable_safety_checker": ("BOOLEAN", {"default": True, "tooltip":
                                          "WaveSpeed's NSFW checker (flagged outputs stop the node with an error)."}),
                "force_new": ("BOOLEAN", {"default": False, "tooltip":
                              "Send a new (paid) request even when the same inputs already have a result "
                              "in the on-disk cache or a pending request to resume."}),
                "max_concurrency": ("INT", {"default": 2, "min": 1, "max": 16, "tooltip":
                                    "At most this many requests at once (one per source image). New "
                                    "WaveSpeed accounts may run 2 tasks at a time."}),
                "timeout_s": ("INT", {"default": 600, "min": 1, "max": 86400, "tooltip":
                              "Give up waiting after this many seconds per request. The task stays in "
                              "the journal: running the same inputs again picks it up without paying twice."}),
            },
            hidden={"unique_id": "UNIQUE_ID"},
        )

    def fill(self, image, mask, prompt, seed, num_images, width, height, steps, guidance,
             enable_safety_checker, force_new, max_concurrency, timeout_s, lora_stack=None, unique_id=None):
        t0 = time.monotonic()
        count, in_h, in_w = image.shape[0], image.shape[1], image.shape[2]
        masks = per_image(mask, count, "mask", NODE)
        check_masks(masks, image, NODE, paid=True)
        size = output_size(width, height, in_w, in_h)
        try:
            loras = lora_list.hosted_loras(lora_stack) if lora_stack else []
        except ValueError as e:
            raise ValueError(f"{NODE}: lora_stack: {e}") from None
        params = {"size": size, "num_inference_steps": int(steps), "guidance_scale": float(guidance),
                  "enable_safety_checker": bool(enable_safety_checker), "loras": loras}
        requests = [FillRequest(image=image[i], mask=masks[i], prompt=prompt, seed=seed, num_images=num_images,
                                loras=[], params=dict(params), index=i) for i in range(count)]
        provider = H.make_provider(WaveSpeedProvider, NODE, ENDPOINT, force_new=force_new, timeout_s=timeout_s)
        try:
            prep = provider.prepare(requests[0])
        except ValueError as e:
            H._prefix(e, NODE)
            raise
        est = H.times_estimate(prep.estimate, count)
        text = H.estimate_text(ENDPOINT, est, count, num_images, size)
        results = H.run_requests(NODE, provider, requests, unique_id, max_concurrency, text)
        H.nsfw_check(NODE, results)
        report = H.build_report("wavespeed", NODE, ENDPOINT, results, estimate=est, notes=[], ignored=[],
                                t0=t0, num_images=num_images, size=f"{size[0]}*{size[1]}",
                                loras=lora_list.describe(lora_stack))
        return (torch.cat([r.images for r in results], dim=0), report)


def output_size(width: int, height: int, in_w: int, in_h: int) -> tuple[int, int]:
    """(w, h) to request: 0 takes the input's side, which must then be within range."""
    w, h = int(width) or in_w, int(height) or in_h
    for name, v, given in (("width", w, width), ("height", h, height)):
        if SIDE_MIN <= v <= SIDE_MAX:
            continue
        if not given:
            raise ValueError(
                f"{NODE}: the input image is {in_w}x{in_h}, but {ENDPOINT} takes {SIDE_MIN}-{SIDE_MAX} "
                f"pixels per side. Put MaskPrep before this node with max_side {SIDE_MAX} (it crops "
                f"around the mask and scales), or set width and height explicitly.")
        raise ValueError(f"{NODE}: {name} must be 0 (input size) or between {SIDE_MIN} and {SIDE_MAX}, got {v}")
    return w, h
