"""The local fill provider: the official FLUX.1 Fill template chain, run through ComfyUI itself.

Per source image this calls the very functions under the stock nodes, in the template's order:
CLIPTextEncode -> FluxGuidance -> InpaintModelConditioning(noise_mask) -> DifferentialDiffusion
-> KSampler(cfg 1.0) -> VAEDecode [-> ImageCompositeMasked], negative = ConditioningZeroOut.
So with the same MODEL/CLIP/VAE, seed and steps the result is bit-identical to that graph, and
model loading, offloading, progress bars, previews and Cancel are ComfyUI's own.
Fill i of an image is one sampler run with seed + i (a batch equals single runs).
"""
from __future__ import annotations

import time

import torch

import comfy.model_management
import folder_paths
import node_helpers
import nodes as comfy_nodes  # ComfyUI's top-level nodes.py (this package is not top-level)

from ..core import lora_list
from ..core.fill_protocol import FillHooks, FillRequest, FillResult

FILL_FEATURES = 384  # img_in features per token of FLUX.1 Fill: (16 noise + 16 image + 64 mask) * 2x2
CFG = 1.0            # FLUX.1 is guidance-distilled: the template samples with cfg 1.0


def stock_node(node_id: str):
    """Call a registered stock node (V1 class or V3 io.ComfyNode) and return its outputs tuple."""
    cls = comfy_nodes.NODE_CLASS_MAPPINGS.get(node_id)
    if cls is None:
        raise RuntimeError(f"ComfyUI's {node_id} node is not loaded (comfy_extras failed to import?)")
    if hasattr(cls, "FUNCTION"):
        return lambda **kw: getattr(cls(), cls.FUNCTION)(**kw)
    return lambda **kw: tuple(cls.execute(**kw).args)


def fill_model_features(model) -> tuple[str, int | None]:
    """(image_model, img_in features per token) of a MODEL (a ModelPatcher)."""
    base = getattr(model, "model", None)
    unet_config = getattr(getattr(base, "model_config", None), "unet_config", None) or {}
    image_model = str(unet_config.get("image_model", type(base).__name__))
    img_in = getattr(getattr(base, "diffusion_model", None), "img_in", None)
    features = getattr(img_in, "in_features", None)
    if features is None and unet_config.get("in_channels") is not None:
        features = unet_config["in_channels"] * unet_config.get("patch_size", 2) ** 2
    return image_model, features


def check_fill_model(model):
    """Raise a clear error unless MODEL is a FLUX.1 Fill model (384 input features per token)."""
    image_model, features = fill_model_features(model)
    if image_model != "flux" or features != FILL_FEATURES:
        what = (f"a FLUX model whose img_in takes {features} features per token (Fill takes {FILL_FEATURES}; "
                "64 is FLUX.1 dev/schnell)" if image_model == "flux" else f"a '{image_model}' model")
        raise ValueError(f"FluxFillLocal: MODEL is {what}, not FLUX.1 Fill. Load flux1-fill-dev.safetensors "
                         "(or a quantized Fill) with Load Diffusion Model (UNETLoader) and connect that.")


def apply_loras(model, clip, stack, loaders: list):
    """Apply a LORA_STACK exactly as chained LoraLoader nodes would (one loader per entry)."""
    try:
        entries = lora_list.local_loras(stack)
    except ValueError as e:
        raise ValueError(f"FluxFillLocal: {e}") from None
    for i, e in enumerate(entries):
        if folder_paths.get_full_path("loras", e.local) is None:
            raise FileNotFoundError(f"FluxFillLocal: LoRA file '{e.local}' not found in models/loras "
                                    "(check the LoraStack row, or put the file there and refresh)")
        while len(loaders) <= i:
            loaders.append(comfy_nodes.LoraLoader())  # keeps its loaded file, like a node instance
        model, clip = loaders[i].load_lora(model, clip, e.local, e.strength_model, e.strength_clip)
    return model, clip


def pad_to_multiple(image: torch.Tensor, mask: torch.Tensor, multiple: int = 16):
    """Replicate-pad [1,H,W,C] image and [1,H,W] mask at the bottom/right to a multiple."""
    h, w = image.shape[1:3]
    ph, pw = (-h) % multiple, (-w) % multiple
    image = torch.nn.functional.pad(image.movedim(-1, 1), (0, pw, 0, ph), mode="replicate").movedim(1, -1)
    mask = torch.nn.functional.pad(mask[:, None], (0, pw, 0, ph), mode="replicate")[:, 0]
    return image, mask


class LocalFillProvider:
    """fill() = one source image, num_images fills; settings fixed for the node's run."""
    name = "local"

    def __init__(self, model, clip, vae, *, steps, guidance, denoise, sampler_name, scheduler,
                 differential_diffusion=True, paste_back=True, lora_loaders=None):
        check_fill_model(model)
        self.model, self.clip, self.vae = model, clip, vae
        self.steps, self.guidance, self.denoise = steps, guidance, denoise
        self.sampler_name, self.scheduler = sampler_name, scheduler
        self.differential_diffusion, self.paste_back = differential_diffusion, paste_back
        self.lora_loaders = lora_loaders if lora_loaders is not None else []
        self._prepared = None  # (key, model, positive, negative): shared by every image of a run

    def _prepare(self, prompt: str, loras):
        key = (prompt, repr(loras))
        if self._prepared is None or self._prepared[0] != key:
            model, clip = apply_loras(self.model, self.clip, loras, self.lora_loaders)
            if self.differential_diffusion:
                model = stock_node("DifferentialDiffusion")(model=model)[0]
            text = comfy_nodes.CLIPTextEncode().encode(clip, prompt)[0]
            negative = comfy_nodes.ConditioningZeroOut().zero_out(text)[0]
            positive = node_helpers.conditioning_set_values(text, {"guidance": self.guidance})  # FluxGuidance
            self._prepared = (key, model, positive, negative)
        return self._prepared[1:]

    def fill(self, request: FillRequest, hooks: FillHooks) -> FillResult:
        t0 = time.perf_counter()
        model, positive, negative = self._prepare(request.prompt, request.loras)
        image = request.image[None, ..., :3]
        mask = request.mask[None]
        h, w = image.shape[1:3]
        pixels = image
        fill_image = request.params.get("fill_image")
        if fill_image is not None:  # placed into the hole; sampled over (blends in with denoise < 1)
            pixels = stock_node("ImageCompositeMasked")(destination=image, source=fill_image[None, ..., :3],
                                                        x=0, y=0, resize_source=True, mask=mask)[0]
        cond_mask = mask
        padded = h % 8 != 0 or w % 8 != 0  # multiples of 8 go in untouched: the stock chain, exactly
        if padded:
            cond_mask = torch.nn.functional.interpolate(mask[:, None], size=(h, w), mode="bilinear")[:, 0]
            pixels, cond_mask = pad_to_multiple(pixels, cond_mask, 16)
        positive, negative, latent = comfy_nodes.InpaintModelConditioning().encode(
            positive, negative, pixels, self.vae, cond_mask, True)
        t_encode = time.perf_counter() - t0

        outputs, seeds, sample_s, decode_s = [], [], [], []
        for i in range(request.num_images):
            comfy.model_management.throw_exception_if_processing_interrupted()
            hooks.progress(i / request.num_images, f"image {request.index + 1}: fill {i + 1}/{request.num_images}")
            seed = request.seed + i
            t = time.perf_counter()
            samples = comfy_nodes.common_ksampler(model, seed, self.steps, CFG, self.sampler_name, self.scheduler,
                                                  positive, negative, latent, denoise=self.denoise)[0]
            t_mid = time.perf_counter()
            decoded = comfy_nodes.VAEDecode().decode(self.vae, samples)[0]
            if padded:
                decoded = decoded[:, :h, :w]
            if self.paste_back:
                decoded = stock_node("ImageCompositeMasked")(destination=image, source=decoded, x=0, y=0,
                                                             resize_source=False, mask=mask)[0]
            outputs.append(decoded)
            seeds.append(seed)
            sample_s.append(round(t_mid - t, 4))
            decode_s.append(round(time.perf_counter() - t_mid, 4))
        meta = {"provider": self.name, "index": request.index, "seeds": seeds, "size": [w, h],
                "padded_to": list(pixels.shape[2:0:-1]) if padded else None,
                "timings": {"encode_s": round(t_encode, 4), "sample_s": sample_s, "decode_s": decode_s,
                            "total_s": round(time.perf_counter() - t0, 4)}}
        return FillResult(images=torch.cat(outputs, dim=0), meta=meta)
