"""FluxFillLocal: FLUX.1 Fill on this machine, as one node over ComfyUI's own models and sampler."""
import time

import comfy.samplers
import torch
from comfy_api.v0_0_2 import io

from ..core import lora_list
from ..core.fill_protocol import FillHooks, FillRequest, report_json, run_batch
from .fill_shape import check_masks, fill_schema, per_image
from .local_provider import LocalFillProvider
from .progress_text import progress_text_sender

NODE = "FluxFillLocal"
# LoraLoader instances per node (by unique id), kept across runs: each caches its loaded file,
# as a V1 node instance would (V3 nodes are classes, so the cache lives here).
LORA_LOADERS: dict = {}


class FluxFillLocal(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return fill_schema(
            node_id=NODE, display_name="FLUX Fill (local)",
            description=("FLUX.1 Fill [dev] inpainting/outpainting on this machine with ComfyUI's own model "
                         "management. Same result as the official Fill template graph (CLIPTextEncode, "
                         "FluxGuidance, InpaintModelConditioning, DifferentialDiffusion, KSampler cfg 1, "
                         "VAEDecode), in one node, with batches, LoRA stacks and paste-back."),
            inputs=[
                io.Model.Input("model", tooltip="FLUX.1 Fill [dev] from Load Diffusion Model (UNETLoader: "
                                                "flux1-fill-dev.safetensors)."),
                io.Clip.Input("clip", tooltip="FLUX text encoders from DualCLIPLoader (clip_l + t5xxl, type flux)."),
                io.Vae.Input("vae", tooltip="FLUX VAE from Load VAE (ae.safetensors)."),
                io.Int.Input("steps", default=28, min=1, max=10000,
                             tooltip="Sampling steps per fill (the template uses 20; 28 is FLUX's usual)."),
                io.Float.Input("guidance", default=30.0, min=0.0, max=100.0, step=0.1,
                               tooltip="FLUX guidance (FluxGuidance). Fill is tuned for 30."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="1.0 repaints the hole from noise. Below 1 keeps part of what is "
                                       "there (or of fill_image)."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="euler",
                               tooltip="KSampler sampler."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="normal",
                               tooltip="KSampler scheduler."),
                io.Boolean.Input("differential_diffusion", default=True,
                                 tooltip="Differential Diffusion: soft mask edges get partial change "
                                         "(template: on)."),
                io.Boolean.Input("paste_back", default=True,
                                 tooltip="Paste the fill into the original image through the mask "
                                         "(ImageCompositeMasked), so pixels outside the mask are never VAE "
                                         "round-tripped."),
            ],
            optional=[
                io.Image.Input("fill_image", optional=True,
                               tooltip="Optional image placed into the hole before sampling (resized to the "
                                       "image, through the mask). It shows through with denoise below 1.0; "
                                       "at 1.0 the hole starts from pure noise."),
            ],
            search_aliases=["flux inpaint", "flux outpaint", "inpainting"],
        )

    @classmethod
    def execute(cls, image, mask, prompt, seed, num_images, model, clip, vae, steps, guidance, denoise,
                sampler_name, scheduler, differential_diffusion, paste_back, lora_stack=None,
                fill_image=None):
        started = time.perf_counter()
        unique_id = cls.hidden.unique_id if cls.hidden is not None else None
        provider = LocalFillProvider(model, clip, vae, steps=steps, guidance=guidance, denoise=denoise,
                                     sampler_name=sampler_name, scheduler=scheduler,
                                     differential_diffusion=differential_diffusion, paste_back=paste_back,
                                     lora_loaders=LORA_LOADERS.setdefault(unique_id, []))
        count = image.shape[0]
        masks = per_image(mask, count, "mask", NODE)
        check_masks(masks, image, NODE)
        fills = (per_image(fill_image, count, "fill_image", NODE)
                 if fill_image is not None else [None] * count)
        try:
            loras = lora_list.normalize_stack(lora_stack)
        except ValueError as e:
            raise ValueError(f"{NODE}: lora_stack: {e}") from None
        requests = [FillRequest(image=image[i], mask=masks[i], prompt=prompt, seed=seed, num_images=num_images,
                                loras=loras, params={"fill_image": fills[i]}, index=i) for i in range(count)]
        results = run_batch(provider, requests, FillHooks(progress=progress_text_sender(unique_id)))
        report = report_json("local", results, steps=steps, guidance=guidance, denoise=denoise,
                             sampler=sampler_name, scheduler=scheduler,
                             differential_diffusion=differential_diffusion, paste_back=paste_back,
                             loras=lora_list.describe(loras), num_images=num_images,
                             total_s=round(time.perf_counter() - started, 4))
        return io.NodeOutput(torch.cat([r.images for r in results], dim=0), report)
