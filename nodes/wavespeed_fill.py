"""WaveSpeedFill: FLUX.1 Fill [dev] on WaveSpeedAI (wavespeed-ai/flux-fill-dev) over the hosted core.

Defaults, ranges and the price in its widgets and description come from the endpoint table.
"""
from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..core.hosted import endpoint_table
from ..core.hosted.params import number_text
from ..core.hosted.pricing import price_text
from ..core.hosted.errors import HostedValidationError
from ..core.hosted.provider import WaveSpeedProvider
from .fill_shape import fill_schema
from .hosted_run import HostedRun, run_hosted

NODE = "WaveSpeedFill"
ENDPOINT = "wavespeed-ai/flux-fill-dev"
RULES = endpoint_table.get(ENDPOINT).rules
SIDE_MIN, SIDE_MAX = int(RULES["size"].min), int(RULES["size"].max)
# widget -> the endpoint field it sets (served to the web extension)
WIDGET_FIELDS = {"width": "size", "height": "size", "steps": "num_inference_steps",
                 "guidance": "guidance_scale", "enable_safety_checker": "enable_safety_checker",
                 "lora_stack": "loras"}


def side_input(name: str) -> io.Input:
    return io.Int.Input(name, default=0, min=0, max=SIDE_MAX, step=16, tooltip=(
        f"Output {name} ({SIDE_MIN}-{SIDE_MAX}). 0 = the input image's {name}, which must then fit too "
        f"(MaskPrep with max_side {SIDE_MAX} makes sure of that)."))


def description() -> str:
    loras = RULES["loras"].max_items
    return (f"FLUX.1 Fill [dev] on WaveSpeedAI ({ENDPOINT}, {price_text(ENDPOINT)}, {SIDE_MIN}-{SIDE_MAX} px "
            f"per side, up to {loras} LoRAs). One request per source image (concurrent), results cached on "
            "disk (re-runs are free) and journaled (a crash or timeout resumes, never pays twice). Key: "
            "WAVESPEED_API_KEY or the FluxFill settings, never a widget.")


class WaveSpeedFill(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        steps, guidance = RULES["num_inference_steps"], RULES["guidance_scale"]
        return fill_schema(
            node_id=NODE, display_name="FLUX Fill (WaveSpeedAI)", description=description(),
            inputs=[
                side_input("width"),
                side_input("height"),
                io.Int.Input("steps", default=steps.default, min=int(steps.min), max=int(steps.max),
                             tooltip=f"Inference steps ({int(steps.min)}-{int(steps.max)})."),
                io.Float.Input("guidance", default=float(guidance.default), min=float(guidance.min),
                               max=float(guidance.max), step=0.1, tooltip=(
                                   f"Guidance scale ({number_text(guidance.min)}-{number_text(guidance.max)}); "
                                   f"Fill is tuned for {number_text(guidance.default)}.")),
                io.Boolean.Input("enable_safety_checker", default=True, tooltip=(
                    "WaveSpeed's NSFW checker (flagged outputs stop the node with an error).")),
                io.Boolean.Input("force_new", default=False, tooltip=(
                    "Send a new (paid) request even when the same inputs already have a result in the "
                    "on-disk cache or a pending request to resume.")),
                io.Int.Input("max_concurrency", default=2, min=1, max=16, tooltip=(
                    "At most this many requests at once (one per source image). New WaveSpeed accounts "
                    "may run 2 tasks at a time.")),
                io.Int.Input("timeout_s", default=600, min=1, max=86400, tooltip=(
                    "Give up waiting after this many seconds per request. The task stays in the journal: "
                    "running the same inputs again picks it up without paying twice.")),
            ],
            seed_control="fixed",
            search_aliases=["wavespeed", "hosted inpaint"],
        )

    @classmethod
    def execute(cls, image, mask, prompt, seed, num_images, width, height, steps, guidance,
                enable_safety_checker, force_new, max_concurrency, timeout_s, lora_stack=None):
        size = output_size(width, height, image.shape[2], image.shape[1])
        params = {"size": size, "num_inference_steps": int(steps), "guidance_scale": float(guidance),
                  "enable_safety_checker": bool(enable_safety_checker)}
        run = HostedRun(node=NODE, provider_class=WaveSpeedProvider, endpoint=ENDPOINT, params=params,
                        force_new=force_new, timeout_s=timeout_s, max_concurrency=max_concurrency)
        return run_hosted(run, image, mask, prompt, seed, num_images, lora_stack, cls.hidden.unique_id)


def output_size(width: int, height: int, in_w: int, in_h: int) -> tuple[int, int]:
    """(w, h) to request: 0 takes the input's side, which must then be within range."""
    out_w, out_h = int(width) or in_w, int(height) or in_h
    for name, value, given in (("width", out_w, width), ("height", out_h, height)):
        if SIDE_MIN <= value <= SIDE_MAX:
            continue
        if not given:
            raise HostedValidationError(
                f"{NODE}: the input image is {in_w}x{in_h}, but {ENDPOINT} takes {SIDE_MIN}-{SIDE_MAX} "
                f"pixels per side. Put MaskPrep before this node with max_side {SIDE_MAX} (it crops "
                f"around the mask and scales), or set width and height explicitly.")
        raise HostedValidationError(f"{NODE}: {name} must be 0 (input size) or between {SIDE_MIN} and {SIDE_MAX}, "
                         f"got {value}")
    return out_w, out_h
