"""FluxFill: FLUX.1 Fill inpainting and outpainting for ComfyUI, local and hosted.

ComfyUI loads this folder as a V3 extension (`comfy_entrypoint`, see nodes/__init__.py).
Everything inside the pack is imported relatively: ComfyUI imports it under its folder name,
and ComfyUI has a top-level module called `nodes` of its own.
"""
from .nodes import comfy_entrypoint

WEB_DIRECTORY = "./web"

__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
