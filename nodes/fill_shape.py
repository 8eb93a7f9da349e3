"""The one shape shared by the three fill nodes (FluxFillLocal, FalFill, WaveSpeedFill).

Same leading inputs and the same outputs, so a graph (UI or API format) switches between
local and hosted fills by swapping one node: links by name and by socket stay valid.
Each fill node builds its INPUT_TYPES with `fill_input_types(required=..., optional=...)`
and declares RETURN_TYPES = FILL_RETURN_TYPES, RETURN_NAMES = FILL_RETURN_NAMES.
"""

SEED_MAX = 2147483647  # the narrowest provider range (WaveSpeed) bounds every fill node

FILL_RETURN_TYPES = ("IMAGE", "STRING")
FILL_RETURN_NAMES = ("images", "report")
FILL_OUTPUT_TOOLTIPS = (
    "The filled images: num_images per input image, in input order (image 0's fills first).",
    "JSON report of the run: provider, seeds, timings and, for hosted fills, request ids and cost.",
)


def leading_required():
    return {
        "image": ("IMAGE", {"tooltip": "Image(s) to fill. A batch of N is filled image by image."}),
        "mask": ("MASK", {"tooltip": "Where to fill: 1 = regenerate, 0 = keep. One mask for all images or one per image (MaskPrep makes it)."}),
        "prompt": ("STRING", {"multiline": True, "default": "",
                              "tooltip": "What to paint into the masked area."}),
        "seed": ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                         "tooltip": "Seed of the fills. Local: fill i of an image uses seed + i. Hosted: sent with each request (the provider seeds num_images > 1 itself; the report lists the seeds). Keep it fixed to re-run a hosted fill from the cache for free."}),
        "num_images": ("INT", {"default": 1, "min": 1, "max": 4,
                               "tooltip": "Fills per input image (1-4)."}),
    }


def leading_optional():
    return {
        "lora_stack": ("LORA_STACK", {"tooltip": "LoRAs from a LoraStack node (or Efficiency/Comfyroll stacks)."}),
    }


def fill_input_types(required=None, optional=None, hidden=None):
    """INPUT_TYPES dict: shared leading inputs first, then the node's own."""
    req = leading_required()
    req.update(required or {})
    opt = leading_optional()
    opt.update(optional or {})
    out = {"required": req, "optional": opt}
    if hidden:
        out["hidden"] = hidden
    return out
