"""PasteBack node: a thin wrapper over core.stitch (all logic and checks live there)."""
from ..core.stitch import from_mask, paste


class PasteBack:
    NODE_ID = "PasteBack"
    DISPLAY_NAME = "Paste Back (FluxFill)"
    CATEGORY = "FluxFill/mask"
    DESCRIPTION = (
        "Puts filled images back into the originals at full resolution. Every pixel outside the "
        "blend mask is bit-identical to the original. Takes the STITCH from MaskPrep, or (for "
        "graphs built elsewhere) the original image and mask.")
    FUNCTION = "paste"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    OUTPUT_TOOLTIPS = ("The original images (with any outpaint area) with the fills blended in, one per fill.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "fill": ("IMAGE", {"tooltip": "Filled images: one per source, or k per source grouped by source (image 0's fills first). Resized to the crop if needed."}),
                "feather": ("INT", {"default": -1, "min": -1, "max": 1024, "tooltip": "Blend width override in pixels outside the mask. -1 = as MaskPrep set it (without STITCH: no feather)."}),
            },
            "optional": {
                "stitch": ("STITCH", {"tooltip": "From MaskPrep: originals, crop boxes, scale and blend mask. When given, image and mask are ignored."}),
                "image": ("IMAGE", {"tooltip": "Without STITCH: the original image(s) the fill replaces a part of."}),
                "mask": ("MASK", {"tooltip": "Without STITCH: where the fill goes (1) and where the original stays (0), at the image's size."}),
            },
        }

    def paste(self, fill, feather=-1, stitch=None, image=None, mask=None):
        override = None if feather is None or feather < 0 else feather
        if stitch is None:
            if image is None or mask is None:
                raise ValueError("PasteBack needs either a STITCH (from MaskPrep) or both the original "
                                 "image and its mask: connect one or the other.")
            stitch, override = from_mask(image, mask, override or 0), None
        return (paste(stitch, fill, override),)
