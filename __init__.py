"""FluxFill: FLUX.1 Fill inpainting and outpainting for ComfyUI, local and hosted.

ComfyUI loads this folder as a V1 node pack (NODE_CLASS_MAPPINGS). Everything inside the
pack is imported relatively: ComfyUI imports it under its folder name, and ComfyUI has a
top-level module called `nodes` of its own.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
