"""PasteBack node: a thin wrapper over core.stitch (all logic and checks live there)."""
from comfy_api.v0_0_2 import io

from ..core.stitch import from_mask, paste
from .mask_prep import StitchType
from .schema_features import schema_extras


class PasteBack(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PasteBack",
            display_name="Paste Back (FluxFill)",
            category="FluxFill/mask",
            description=(
                "Puts filled images back into the originals at full resolution. Every pixel outside the "
                "blend mask is bit-identical to the original. Takes the STITCH from MaskPrep, or (for "
                "graphs built elsewhere) the original image and mask."),
            inputs=[
                io.Image.Input("fill", tooltip="Filled images: one per source, or k per source grouped by "
                                               "source (image 0's fills first). Resized to the crop if needed."),
                io.Int.Input("feather", default=-1, min=-1, max=1024,
                             tooltip="Blend width override in pixels outside the mask. -1 = as MaskPrep "
                                     "set it (without STITCH: no feather)."),
                StitchType.Input("stitch", optional=True,
                                 tooltip="From MaskPrep: originals, crop boxes, scale and blend mask. When "
                                         "given, image and mask are ignored."),
                io.Image.Input("image", optional=True,
                               tooltip="Without STITCH: the original image(s) the fill replaces a part of."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Without STITCH: where the fill goes (1) and where the original stays "
                                      "(0), at the image's size."),
            ],
            outputs=[io.Image.Output("pasted_image", display_name="image", tooltip=(
                "The original images (with any outpaint area) with the fills blended in, one per fill."))],
            **schema_extras(search_aliases=["stitch", "inpaint stitch", "composite"]),
        )

    @classmethod
    def execute(cls, fill, feather=-1, stitch=None, image=None, mask=None):
        override = None if feather is None or feather < 0 else feather
        if stitch is None:
            if image is None or mask is None:
                raise ValueError("PasteBack needs either a STITCH (from MaskPrep) or both the original "
                                 "image and its mask: connect one or the other.")
            stitch, override = from_mask(image, mask, override or 0), None
        return io.NodeOutput(paste(stitch, fill, override))
