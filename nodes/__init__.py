"""Thin ComfyUI node classes over core/. Node ids are stable forever."""
from .mask_prep import MaskPrep
from .paste_back import PasteBack

_NODES = [MaskPrep, PasteBack]

NODE_CLASS_MAPPINGS = {cls.NODE_ID: cls for cls in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {cls.NODE_ID: cls.DISPLAY_NAME for cls in _NODES}
