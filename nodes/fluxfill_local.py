"""FluxFillLocal: FLUX.1 Fill on this machine, as one node over ComfyUI's own models and sampler."""
import time

import comfy.samplers
import torch

from ..core import lora_list
from ..core.fill_protocol import FillHooks, FillRequest, report_json, run_batch
from .fill_shape import FillNode, check_masks, fill_input_types, per_image
from .local_provider import LocalFillProvider


def _progress_text(unique_id):
    if unique_id is None:
        return lambda fraction, text: None
    from server import PromptServer

    def send(fraction, text):
        if getattr(PromptServer, "instance", None) is not None:
            PromptServer.instance.send_progress_text(text, unique_id)
    return send


class FluxFillLocal(FillNode):
    NODE_ID = "FluxFillLocal"
    DISPLAY_NAME = "FLUX Fill (local)"
    DESCRIPTION = ("FLUX.1 Fill [dev] inpainting/outpainting on this machine with ComfyUI's own model "
                   "management. Same result as the official Fill template graph (CLIPTextEncode, "
                   "FluxGuidance, InpaintModelConditioning, DifferentialDiffusion, KSampler cfg 1, "
                   "VAEDecode), in one node, with batches, LoRA stacks and paste-back.")

    @classmethod
    def INPUT_TYPES(cls):
        return fill_input_types(
            required={
                "model": ("MODEL", {"tooltip": "FLUX.1 Fill [dev] from Load Diffusion Model (UNETLoader: "
                                               "flux1-fill-dev.safetensors)."}),
                "clip": ("CLIP", {"tooltip": "FLUX text encoders from DualCLIPLoader (clip_l + t5xxl, type flux)."}),
                "vae": ("VAE", {"tooltip": "FLUX VAE from Load VAE (ae.safetensors)."}),
                "steps": ("INT", {"default": 28, "min": 1, "max": 10000,
                                  "tooltip": "Sampling steps per fill (the template uses 20; 28 is FLUX's usual)."}),
                "guidance": ("FLOAT", {"default": 30.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                       "tooltip": "FLUX guidance (FluxGuidance). Fill is tuned for 30."}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                      "tooltip": "1.0 repaints the hole from noise. Below 1 keeps part of what "
                                                 "is there (or of fill_image)."}),
                "sampler_name": (comfy.samplers.KSampler.SAMPLERS, {"default": "euler",
                                                                   "tooltip": "KSampler sampler."}),
                "scheduler": (comfy.samplers.KSampler.SCHEDULERS, {"default": "normal",
                                                                   "tooltip": "KSampler scheduler."}),
                "differential_diffusion": ("BOOLEAN", {"default": True,
                                                       "tooltip": "Differential Diffusion: soft mask edges "
                                                                  "get partial change (template: on)."}),
                "paste_back": ("BOOLEAN", {"default": True,
                                           "tooltip": "Paste the fill into the original image through the "
                                                      "mask (ImageCompositeMasked), so pixels outside the "
                                                      "mask are never VAE round-tripped."}),
            },
            optional={
                "fill_image": ("IMAGE", {"tooltip": "Optional image placed into the hole before sampling "
                                                    "(resized to the image, through the mask). It shows "
                                                    "through with denoise below 1.0; at 1.0 the hole starts "
                                                    "from pure noise."}),
            },
            hidden={"unique_id": "UNIQUE_ID"},
        )

    def __init__(self):
        self._lora_loaders = []  # LoraLoader instances kept across runs: each caches its file

    def fill(self, image, mask, prompt, seed, num_images, model, clip, vae, steps, guidance, denoise,
             sampler_name, scheduler, differential_diffusion, paste_back, lora_stack=None, fill_image=None,
             unique_id=None):
        t0 = time.perf_counter()
        provider = LocalFillProvider(model, clip, vae, steps=steps, guidance=guidance, denoise=denoise,
                                     sampler_name=sampler_name, scheduler=scheduler,
                                     differential_diffusion=differential_diffusion, paste_back=paste_back,
                                     lora_loaders=self._lora_loaders)
        count = image.shape[0]
        masks = per_image(mask, count, "mask", self.NODE_ID)
        check_masks(masks, image, self.NODE_ID)
        fills = (per_image(fill_image, count, "fill_image", self.NODE_ID)
                 if fill_image is not None else [None] * count)
        loras = list(lora_stack or [])
        requests = [FillRequest(image=image[i], mask=masks[i], prompt=prompt, seed=seed, num_images=num_images,
                                loras=loras, params={"fill_image": fills[i]}, index=i) for i in range(count)]
        results = run_batch(provider, requests, FillHooks(progress=_progress_text(unique_id)))
        report = report_json("local", results, steps=steps, guidance=guidance, denoise=denoise,
                             sampler=sampler_name, scheduler=scheduler,
                             differential_diffusion=differential_diffusion, paste_back=paste_back,
                             loras=lora_list.describe(loras), num_images=num_images,
                             total_s=round(time.perf_counter() - t0, 4))
        return (torch.cat([r.images for r in results], dim=0), report)
