"""Thin ComfyUI node classes over core/. Node ids are stable forever."""
from .mask_prep import MaskPrep
from .paste_back import PasteBack
from .fluxfill_local import FluxFillLocal
from .lora_stack import LoraStack
from .fal_fill import FalFill
from .wavespeed_fill import WaveSpeedFill
from .example_inputs import copy_example_inputs

_NODES = [MaskPrep, PasteBack, FluxFillLocal, LoraStack, FalFill, WaveSpeedFill]

NODE_CLASS_MAPPINGS = {cls.NODE_ID: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {cls.NODE_ID: cls.DISPLAY_NAME for cls in _NODES}

copy_example_inputs()  # the example workflows' images, into ComfyUI's input folder when absent
