"""The one shape shared by the three fill nodes (FluxFillLocal, FalFill, WaveSpeedFill).

Same leading inputs and the same outputs, so a graph (UI or API format) switches between
local and hosted fills by swapping one node: links by name and by socket stay valid.
Each fill node derives from `FillNode` (category, function, outputs) and builds its
INPUT_TYPES with `fill_input_types(required=..., optional=...)`; `per_image` and
`check_masks` are the batch rules all three apply before any work (or money) is spent.
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


class FillNode:
    """Base of the three fill nodes: what makes them interchangeable in a graph."""
    CATEGORY = "FluxFill/fill"
    FUNCTION = "fill"
    RETURN_TYPES = FILL_RETURN_TYPES
    RETURN_NAMES = FILL_RETURN_NAMES
    OUTPUT_TOOLTIPS = FILL_OUTPUT_TOOLTIPS


def per_image(tensor, count: int, what: str, node: str) -> list:
    """One [H, W, ...] slice per source image: a batch of 1 is shared, a batch of `count` is N:N."""
    if what == "mask" and tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.shape[0] not in (1, count):
        raise ValueError(f"{node}: {what} has a batch of {tensor.shape[0]} for {count} images. "
                         f"Give one {what} for all images or one per image.")
    return [tensor[i if tensor.shape[0] == count else 0] for i in range(count)]


def check_masks(masks, image, node: str, paid: bool = False):
    """Refuse an empty mask before anything runs (or is paid): there would be nothing to fill."""
    for i, m in enumerate(masks):
        if not bool((m > 0).any()):
            size = (f" ({m.shape[1]}x{m.shape[0]}, not the image's {image.shape[2]}x{image.shape[1]}: "
                    "what LoadImage gives for an image without alpha)" if m.shape != image.shape[1:3] else "")
            cost = ", and a hosted request would still be paid" if paid else ""
            raise ValueError(f"{node}: the mask of image {i} is empty{size}, so there is nothing to "
                             f"fill{cost}. Paint the area in the mask editor (right-click Load Image > "
                             "Open in MaskEditor) or use MaskPrep's outpaint padding.")
