"""Thin ComfyUI V3 node classes over core/. Node ids are stable forever.

`comfy_entrypoint()` is the pack's one entry point (ComfyUI's V3 extension protocol): it
copies the example workflows' input images into ComfyUI's input folder, registers the pack's
HTTP routes (/fluxfill/*) and lists the six nodes. Importing a node module does neither.
"""
from comfy_api.v0_0_2 import ComfyExtension

from . import hosted_routes
from .example_inputs import copy_example_inputs
from .fal_fill import FalFill
from .fluxfill_local import FluxFillLocal
from .lora_stack import LoraStack
from .mask_prep import MaskPrep
from .paste_back import PasteBack
from .wavespeed_fill import WaveSpeedFill

NODES = [MaskPrep, PasteBack, FluxFillLocal, LoraStack, FalFill, WaveSpeedFill]


class FluxFillExtension(ComfyExtension):
    async def get_node_list(self):
        return list(NODES)


async def comfy_entrypoint() -> FluxFillExtension:
    copy_example_inputs()      # the example workflows' images, when absent
    hosted_routes.register()   # no-op without a running server (tests, scripts)
    return FluxFillExtension()
