"""Test-only node pack: tiny FLUX models, deterministic inputs and raw-tensor outputs.

The `comfy` and `comfy_server` fixtures link every pack under tests/packs/ into custom_nodes.
Nothing here ships with FluxFill. comfy modules are imported inside the functions (`.tiny`),
so this module imports without a host.
"""
import json
import os

import numpy as np
import torch

CATEGORY = "FluxFill/testing"


class FluxFillTestTinyModels:
    """(MODEL, CLIP, VAE) of a tiny FLUX Fill (or, variant dev, a non-Fill FLUX with 16 in-channels)."""
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = ("MODEL", "CLIP", "VAE")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
                             "variant": (["fill", "dev"], {"default": "fill"})}}

    def load(self, seed, variant):
        from .tiny import tiny_models
        return tiny_models(seed, fill=variant == "fill")


class FluxFillTestPattern:
    """A deterministic image batch and mask: smooth colours plus seeded noise; a rectangle hole."""
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = ("IMAGE", "MASK")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"width": ("INT", {"default": 64, "min": 8, "max": 4096}),
                             "height": ("INT", {"default": 64, "min": 8, "max": 4096}),
                             "batch": ("INT", {"default": 1, "min": 1, "max": 16}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1}),
                             "mask_batch": ("INT", {"default": 1, "min": 1, "max": 16}),
                             "soft": ("BOOLEAN", {"default": True}),
                             "pick": ("INT", {"default": -1, "min": -1, "max": 15,
                                              "tooltip": "-1: the whole batch; i: image i and mask i "
                                                         "(mask 0 when mask_batch is 1)"})}}

    def make(self, width, height, batch, seed, mask_batch, soft, pick=-1):
        g = torch.Generator().manual_seed(seed)
        yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
        base = torch.stack([xx, yy, (xx + yy) / 2], dim=-1)
        image = (0.7 * base[None] + 0.3 * torch.rand((batch, height, width, 3), generator=g)).clamp(0, 1)
        masks = []
        for i in range(mask_batch):  # each mask a different rectangle: N:N masks are distinguishable
            m = torch.zeros(height, width)
            top, left = height // 4 + i, width // 4 + 2 * i
            m[top:top + height // 2, left:left + width // 3] = 1.0
            if soft:  # feathered edge: differential diffusion has something to do
                k = torch.ones(1, 1, 5, 5) / 25
                m = torch.nn.functional.conv2d(m[None, None], k, padding=2)[0, 0]
            masks.append(m)
        mask = torch.stack(masks)
        if pick >= 0:
            image, mask = image[pick:pick + 1], mask[min(pick, mask_batch - 1)][None]
        return (image, mask)


class FluxFillTestSaveTensor:
    """Saves an IMAGE (or MASK) as raw float32 output/<name>.npy: exactness is checked on floats."""
    CATEGORY = CATEGORY
    FUNCTION = "save"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": ("STRING", {"default": "tensor"})},
                "optional": {"images": ("IMAGE",), "mask": ("MASK",)}}

    def save(self, name, images=None, mask=None):
        import folder_paths
        path = os.path.join(folder_paths.get_output_directory(), f"{name}.npy")
        np.save(path, (images if images is not None else mask).detach().cpu().float().numpy())
        return {"ui": {"fluxfill_tensors": [name]}}


class FluxFillTestSaveText:
    """Saves a STRING as output/<name>.txt (the fill nodes' report)."""
    CATEGORY = CATEGORY
    FUNCTION = "save"
    RETURN_TYPES = ()
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True}), "name": ("STRING", {"default": "text"})}}

    def save(self, text, name):
        import folder_paths
        with open(os.path.join(folder_paths.get_output_directory(), f"{name}.txt"), "w") as f:
            f.write(text)
        return {"ui": {"fluxfill_texts": [name]}}


class FluxFillTestRawLoraStack:
    """A LORA_STACK of plain (name, strength_model, strength_clip) tuples, as Efficiency/Comfyroll make."""
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = ("LORA_STACK",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"entries": ("STRING", {"default": "[]",
                                                    "tooltip": "JSON list of [name, strength_model, strength_clip]"})}}

    def make(self, entries):
        return ([tuple(e) for e in json.loads(entries)],)


class FluxFillTestWriteUnet:
    """Writes the smallest FLUX model ComfyUI's detector accepts (~390M params, bf16) into
    models/diffusion_models, so the stock UNETLoader can load a real file."""
    CATEGORY = CATEGORY
    FUNCTION = "write"
    RETURN_TYPES = ("STRING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": ("STRING", {"default": "smallest-flux-fill.safetensors"}),
                             "variant": (["fill", "dev"], {"default": "fill"})}}

    def write(self, name, variant):
        from .tiny import write_smallest_flux
        return (write_smallest_flux(name, fill=variant == "fill"),)


NODE_CLASS_MAPPINGS = {cls.__name__: cls for cls in (
    FluxFillTestTinyModels, FluxFillTestPattern, FluxFillTestSaveTensor, FluxFillTestSaveText,
    FluxFillTestRawLoraStack, FluxFillTestWriteUnet)}
