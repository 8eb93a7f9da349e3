"""MaskPrep node: a thin wrapper over core.prep (all logic and checks live there)."""
import logging

from comfy_api.v0_0_2 import io

from ..core.prep import REGION_MODES, PrepOptions, prepare
from ..core.regions import MAX_REGIONS
from .progress_text import send_progress_text
from .schema_features import schema_extras

log = logging.getLogger("fluxfill")

StitchType = io.Custom("STITCH")


def int_input(name, default, low, high, tip, step=1, optional=False):
    return io.Int.Input(name, default=default, min=low, max=high, step=step, tooltip=tip, optional=optional)


def float_input(name, default, low, high, step, tip):
    return io.Float.Input(name, default=default, min=low, max=high, step=step, tooltip=tip)


class MaskPrep(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="MaskPrep",
            display_name="Mask Prep (FluxFill)",
            category="FluxFill/mask",
            description=(
                "Turns an image and a mask into exactly what a fill model should see: the mask cleaned "
                "(invert, threshold, fill holes, grow/shrink), the canvas extended for outpainting, the "
                "area around the mask cropped and resized to the target megapixels — one crop around all of "
                "it, or one per separate region. The STITCH output tells PasteBack how to put the fills back "
                "into the originals, pixel-exact outside the mask. A mask that looks wrong (never fully "
                "opaque, almost everything masked) gets a hint on the node naming the input that fixes it."),
            inputs=[
                io.Image.Input("image", tooltip="Image(s) to fill. A batch is prepared all at once."),
                io.Boolean.Input("invert", default=False,
                                 tooltip="Swap masked and unmasked (fill everything except the painted area)."),
                float_input("threshold", 0.0, 0.0, 1.0, 0.01,
                            "Make the mask hard: values below this become 0 (faint strokes dropped), values "
                            "at or above it 1 (a soft or half-opaque brush counts fully). 0 = off."),
                io.Boolean.Input("fill_holes", default=False,
                                 tooltip="Fill unmasked islands enclosed by the mask (regions that do not "
                                         "reach the image border)."),
                int_input("grow", 0, -4096, 4096, "Grow (positive) or shrink (negative) the mask by this "
                                                  "many pixels, true Euclidean distance."),
                int_input("feather", 8, 0, 1024, "Soft blend over this many pixels outside the mask when "
                                                 "pasting back. 0 = hard edge."),
                io.Boolean.Input("crop", default=True,
                                 tooltip="Crop to the mask plus context (on) or send the whole image (off)."),
                float_input("context_factor", 1.2, 1.0, 10.0, 0.05,
                            "Crop side = mask box side x this factor + 2 x context_px."),
                int_input("context_px", 32, 0, 4096, "Extra context around the mask box, in pixels on each side."),
                float_input("target_mp", 1.0, 0.0, 16.0, 0.05, "Size of the image to fill, in megapixels "
                                                               "(1.0 = 1024x1024). 0 = keep the crop's own size."),
                int_input("multiple", 16, 1, 256, "Round the fill's sides to a multiple of this (16 for FLUX)."),
                int_input("max_side", 2048, 64, 16384, "Longest side of the image to fill, at most (1536 for "
                                                       "WaveSpeed)."),
                int_input("pad_left", 0, 0, 8192, "Outpaint: new pixels to add on the left (they are filled)."),
                int_input("pad_top", 0, 0, 8192, "Outpaint: new pixels to add at the top (they are filled)."),
                int_input("pad_right", 0, 0, 8192, "Outpaint: new pixels to add on the right (they are filled)."),
                int_input("pad_bottom", 0, 0, 8192, "Outpaint: new pixels to add at the bottom (they are filled)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Where to fill: 1 = regenerate. One mask for every image or one per "
                                      "image. May be left out (or empty) when outpainting."),
                io.Combo.Input("regions", options=list(REGION_MODES), default="together", optional=True,
                               tooltip="together: one crop around all of the mask. separate: each part of the "
                                       "mask (after invert, threshold, holes, grow) is cropped and filled on "
                                       f"its own, parts closer than region_gap joined; at most {MAX_REGIONS} per "
                                       "image. The regions of an image share target_mp, so its cost stays the "
                                       "same; one PasteBack puts them all back."),
                int_input("region_gap", 64, 0, 4096, "With regions = separate: parts of the mask closer than "
                                                     "this many pixels are filled as one region.", optional=True),
                io.Mask.Input("context_mask", optional=True,
                              tooltip="Optional: the crop also covers this area (as context for the model; it "
                                      "is not filled). With separate regions each of its parts goes to the "
                                      "nearest region."),
            ],
            outputs=[
                io.Image.Output("prepared_image", display_name="image", tooltip=(
                    "The image to fill (RGB): the crop around the mask (or the whole canvas), resized.")),
                io.Mask.Output("prepared_mask", display_name="mask", tooltip=(
                    "The mask to fill at the same size: 1 = regenerate (after invert, threshold, holes, "
                    "grow; includes the outpaint area).")),
                StitchType.Output("stitch", display_name="stitch", tooltip=(
                    "Everything PasteBack needs: originals, crop boxes, scale and the feathered blend mask.")),
            ],
            hidden=[io.Hidden.unique_id],
            **schema_extras(search_aliases=["crop to mask", "inpaint crop", "outpaint", "grow mask",
                                            "several holes", "multiple masks"]),
        )

    @classmethod
    def execute(cls, image, invert, threshold, fill_holes, grow, feather, crop, context_factor,
                context_px, target_mp, multiple, max_side, pad_left, pad_top, pad_right, pad_bottom,
                mask=None, regions="together", region_gap=64, context_mask=None):
        options = PrepOptions(invert=invert, threshold=threshold, fill_holes=fill_holes, grow=grow,
                              feather=feather, pad=(pad_left, pad_top, pad_right, pad_bottom), crop=crop,
                              context_factor=context_factor, context_px=context_px, target_mp=target_mp,
                              multiple=multiple, max_side=max_side, regions=regions, region_gap=region_gap)
        unique_id = cls.hidden.unique_id if cls.hidden is not None else None
        return io.NodeOutput(*prepare(image, mask, options, context=context_mask, on_hint=hint_sender(unique_id)))


def hint_sender(unique_id):
    """on_hint for core.prep: each hint goes to the server log and, with the ones before it, onto
    the node as progress text."""
    said = []

    def on_hint(text):
        log.warning("MaskPrep (node %s): %s", unique_id, text)
        said.append(text)
        send_progress_text("\n".join(said), unique_id)
    return on_hint
