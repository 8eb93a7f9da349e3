"""MaskPrep node: a thin wrapper over core.prep (all logic and checks live there)."""
from ..core.prep import PrepOptions, prepare


def _int(default, lo, hi, tip, step=1):
    return ("INT", {"default": default, "min": lo, "max": hi, "step": step, "tooltip": tip})


def _float(default, lo, hi, step, tip):
    return ("FLOAT", {"default": default, "min": lo, "max": hi, "step": step, "tooltip": tip})


class MaskPrep:
    NODE_ID = "MaskPrep"
    DISPLAY_NAME = "Mask Prep (FluxFill)"
    CATEGORY = "FluxFill/mask"
    DESCRIPTION = (
        "Turns an image and a mask into exactly what a fill model should see: the mask cleaned "
        "(invert, threshold, fill holes, grow/shrink), the canvas extended for outpainting, the "
        "area around the mask cropped and resized to the target megapixels. The STITCH output "
        "tells PasteBack how to put the fill back into the original, pixel-exact outside the mask.")
    FUNCTION = "prep"
    RETURN_TYPES = ("IMAGE", "MASK", "STITCH")
    RETURN_NAMES = ("image", "mask", "stitch")
    OUTPUT_TOOLTIPS = (
        "The image to fill (RGB): the crop around the mask (or the whole canvas), resized.",
        "The mask to fill at the same size: 1 = regenerate (after invert, threshold, holes, grow; includes the outpaint area).",
        "Everything PasteBack needs: originals, crop boxes, scale and the feathered blend mask.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "Image(s) to fill. A batch is prepared all at once."}),
                "invert": ("BOOLEAN", {"default": False, "tooltip": "Swap masked and unmasked (fill everything except the painted area)."}),
                "threshold": _float(0.0, 0.0, 1.0, 0.01, "Drop faint mask values: everything below this becomes 0. 0 = off."),
                "fill_holes": ("BOOLEAN", {"default": False, "tooltip": "Fill unmasked islands enclosed by the mask (regions that do not reach the image border)."}),
                "grow": _int(0, -4096, 4096, "Grow (positive) or shrink (negative) the mask by this many pixels, true Euclidean distance."),
                "feather": _int(8, 0, 1024, "Soft blend over this many pixels outside the mask when pasting back. 0 = hard edge."),
                "crop": ("BOOLEAN", {"default": True, "tooltip": "Crop to the mask plus context (on) or send the whole image (off)."}),
                "context_factor": _float(1.2, 1.0, 10.0, 0.05, "Crop side = mask box side x this factor + 2 x context_px."),
                "context_px": _int(32, 0, 4096, "Extra context around the mask box, in pixels on each side."),
                "target_mp": _float(1.0, 0.0, 16.0, 0.05, "Size of the image to fill, in megapixels (1.0 = 1024x1024). 0 = keep the crop's own size."),
                "multiple": _int(16, 1, 256, "Round the fill's sides to a multiple of this (16 for FLUX)."),
                "max_side": _int(2048, 64, 16384, "Longest side of the image to fill, at most (1536 for WaveSpeed)."),
                "pad_left": _int(0, 0, 8192, "Outpaint: new pixels to add on the left (they are filled)."),
                "pad_top": _int(0, 0, 8192, "Outpaint: new pixels to add at the top (they are filled)."),
                "pad_right": _int(0, 0, 8192, "Outpaint: new pixels to add on the right (they are filled)."),
                "pad_bottom": _int(0, 0, 8192, "Outpaint: new pixels to add at the bottom (they are filled)."),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Where to fill: 1 = regenerate. One mask for every image or one per image. May be left out (or empty) when outpainting."}),
            },
        }

    def prep(self, image, invert, threshold, fill_holes, grow, feather, crop, context_factor,
             context_px, target_mp, multiple, max_side, pad_left, pad_top, pad_right, pad_bottom,
             mask=None):
        opt = PrepOptions(invert=invert, threshold=threshold, fill_holes=fill_holes, grow=grow,
                          feather=feather, pad=(pad_left, pad_top, pad_right, pad_bottom), crop=crop,
                          context_factor=context_factor, context_px=context_px, target_mp=target_mp,
                          multiple=multiple, max_side=max_side)
        return prepare(image, mask, opt)
