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
                "Puts filled images back into the originals at full resolution — every region of every "
                "image, one output per source image and fill. Every pixel outside the blend mask is "
                "bit-identical to the original. Optionally corrects the fill's colour drift (color_match) "
                "and pastes less than was filled (mask). Takes the STITCH from MaskPrep, or (for graphs "
                "built elsewhere) the original image and mask."),
            inputs=[
                io.Image.Input("fill", tooltip="Filled images: what the fill node made of MaskPrep's image output, one "
                                               "per crop (source image or region), or k per crop grouped by crop "
                                               "(crop 0's fills first). Resized to the crop if needed."),
                io.Int.Input("feather", default=-1, min=-1, max=1024,
                             tooltip="Blend width override in pixels outside the mask. -1 = as MaskPrep "
                                     "set it (without STITCH: no feather)."),
                StitchType.Input("stitch", optional=True,
                                 tooltip="From MaskPrep: originals, crop boxes, scale and blend mask. When "
                                         "given, image is ignored and mask limits the paste."),
                io.Image.Input("image", optional=True,
                               tooltip="Without STITCH: the original image(s) the fill replaces a part of."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Without STITCH: where the fill goes (1) and where the original stays "
                                      "(0), at the image's size. With STITCH: limits where the fill is pasted "
                                      "(at most this mask, within the blend mask): paste less than was filled."),
                io.Float.Input("color_match", default=0.0, min=0.0, max=1.0, step=0.05, optional=True,
                               tooltip="Correct the fill's colour and brightness drift against the original, "
                                       "measured on the context just outside the hole and spread smoothly over "
                                       "it; applied inside the blend area only. 0 = off, 1 = full correction."),
            ],
            outputs=[io.Image.Output("pasted_image", display_name="image", tooltip=(
                "The original images (with any outpaint area) with the fills blended in: one per source "
                "image and fill (k per source when each crop got k fills), never one per region."))],
            **schema_extras(search_aliases=["stitch", "inpaint stitch", "composite"]),
        )

    @classmethod
    def execute(cls, fill, feather=-1, stitch=None, image=None, mask=None, color_match=0.0):
        override = None if feather is None or feather < 0 else feather
        limit = None
        if stitch is None:
            if image is None or mask is None:
                raise ValueError("PasteBack needs either a STITCH (from MaskPrep) or both the original "
                                 "image and its mask: connect one or the other.")
            stitch, override = from_mask(image, mask, override or 0), None
        else:
            limit = mask
        return io.NodeOutput(paste(stitch, fill, override, color_match=color_match or 0.0, limit=limit))
