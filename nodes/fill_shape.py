"""The one shape shared by the three fill nodes (FluxFillLocal, FalFill, WaveSpeedFill).

Same leading inputs and the same outputs, so a graph (UI or API format) switches between
local and hosted fills by swapping one node: links by name and by socket stay valid.
Each fill node's schema is `fill_schema(...)`: the shared leading inputs, then the node's own;
`per_image` and `check_masks` are the batch rules all three apply before any work (or money)
is spent.
"""
from comfy_api.v0_0_2 import io

from ..core.hosted.endpoint_table import NARROWEST_SEED_MAX
from .schema_features import schema_extras

# The narrowest provider range bounds every fill node, so one seed works on all three.
SEED_MAX = NARROWEST_SEED_MAX
CATEGORY = "FluxFill/fill"

LoraStackType = io.Custom("LORA_STACK")


def leading_inputs(seed_control) -> list:
    """image, mask, prompt, seed, num_images: the first inputs of every fill node.

    seed_control: ComfyUI's control_after_generate (True = the frontend's default,
    "randomize"; "fixed" for the hosted nodes, where every new seed is a new paid request)."""
    return [
        io.Image.Input("image", tooltip="Image(s) to fill. A batch of N is filled image by image."),
        io.Mask.Input("mask", tooltip="Where to fill: 1 = regenerate, 0 = keep. One mask for all images "
                                      "or one per image (MaskPrep makes it)."),
        io.String.Input("prompt", multiline=True, default="", tooltip="What to paint into the masked area."),
        io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=seed_control,
                     tooltip="Seed of the fills. Local: fill i of an image uses seed + i (the report "
                             "lists each fill's seed). Hosted: sent with each request; the provider "
                             "returns one seed per request, not one per image, and the report lists "
                             "that one. Keep it fixed to re-run a hosted fill from the cache for free."),
        io.Int.Input("num_images", default=1, min=1, max=4, tooltip="Fills per input image (1-4)."),
    ]


def lora_stack_input():
    return LoraStackType.Input("lora_stack", optional=True,
                               tooltip="LoRAs from a LoraStack node (or Efficiency/Comfyroll stacks).")


FILL_OUTPUTS = (
    ("images", io.Image, "The filled images: num_images per input image, in input order (image 0's "
                         "fills first)."),
    ("report", io.String, "JSON report of the run: provider, seeds, timings and, for hosted fills, "
                          "request ids and cost."),
)


def fill_schema(*, node_id: str, display_name: str, description: str, inputs: list,
                optional: list = (), seed_control=True, **extra) -> io.Schema:
    """The Schema of a fill node: shared leading inputs, the node's own required inputs, then
    lora_stack and the node's own optional inputs (V1 order: required first, then optional)."""
    return io.Schema(
        node_id=node_id, display_name=display_name, category=CATEGORY, description=description,
        inputs=[*leading_inputs(seed_control), *inputs, lora_stack_input(), *optional],
        outputs=[kind.Output(name, display_name=name, tooltip=tip) for name, kind, tip in FILL_OUTPUTS],
        hidden=[io.Hidden.unique_id],
        **schema_extras(**extra),
    )


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
    for i, mask in enumerate(masks):
        if not bool((mask > 0).any()):
            size = (f" ({mask.shape[1]}x{mask.shape[0]}, not the image's {image.shape[2]}x{image.shape[1]}: "
                    "what LoadImage gives for an image without alpha)" if mask.shape != image.shape[1:3] else "")
            cost = ", and a hosted request would still be paid" if paid else ""
            raise ValueError(f"{node}: the mask of image {i} is empty{size}, so there is nothing to "
                             f"fill{cost}. Paint the area in the mask editor (right-click Load Image > "
                             "Open in MaskEditor) or use MaskPrep's outpaint padding.")
