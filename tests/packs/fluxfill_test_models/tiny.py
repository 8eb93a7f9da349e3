"""Tiny FLUX Fill MODEL / CLIP / VAE built from ComfyUI's own classes with seeded weights.

No FLUX weights exist on test machines, and the smallest model ComfyUI's detector accepts is
~390M parameters. These are the same classes (supported_models.FluxInpaint, model_base.Flux,
sd.CLIP with flux_clip, sd.VAE) at toy widths, wrapped in ComfyUI's ModelPatcher, so every
code path the stock nodes take (conditioning, sampling, LoRA patching, model management)
is the real one. Test-only: never shipped with the pack.
"""
import inspect
import math
import os

import torch

import comfy.ldm.flux.model as flux_model
import comfy.model_management
import comfy.model_patcher
import comfy.ops
import comfy.sd
import comfy.supported_models
import comfy.supported_models_base
import comfy.text_encoders.flux
from comfy.ldm.models.autoencoder import AutoencoderKL

# Hidden 64 over 2 heads: 32 per head = sum(axes_dim). vec_in_dim = CLIP-L hidden (its pooled
# output, unprojected), context_in_dim = T5 d_model.
CLIP_L_CONFIG = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2,
                 "num_hidden_layers": 1, "projection_dim": 32}
T5_CONFIG = {"d_model": 48, "d_ff": 64, "d_kv": 16, "num_heads": 3, "num_layers": 1}
FLUX_CONFIG = {"image_model": "flux", "out_channels": 16, "hidden_size": 64, "num_heads": 2,
               "axes_dim": [8, 12, 12], "depth": 1, "depth_single_blocks": 1, "mlp_ratio": 2.0,
               "vec_in_dim": 32, "context_in_dim": 48, "patch_size": 2, "qkv_bias": True,
               "guidance_embed": True, "theta": 10000, "txt_ids_dims": []}
VAE_DDCONFIG = {"double_z": True, "z_channels": 16, "resolution": 256, "in_channels": 3,
                "out_ch": 3, "ch": 32, "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1,
                "attn_resolutions": [], "dropout": 0.0}

_CACHE = {}


def seeded_init(module: torch.nn.Module, seed: int):
    """Give every parameter and buffer a finite seeded value (comfy ops allocate torch.empty)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point():
                continue
            if t.ndim >= 2:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) / math.sqrt(fan_in))
            elif name.endswith("scale") or ("norm" in name and name.endswith("weight")):
                t.copy_(1.0 + 0.05 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(0.02 * torch.randn(t.shape, generator=g))


def for_this_host(params: dict) -> dict:
    """FluxParams of 0.30 require txt_ids_dims; v0.3.75's have no such field."""
    if "txt_ids_dims" not in inspect.signature(flux_model.FluxParams).parameters:
        params = {k: v for k, v in params.items() if k != "txt_ids_dims"}
    return params


def build_model(seed: int = 0, fill: bool = True):
    """A ModelPatcher around a tiny model_base.Flux (Fill: 96 input channels, dev: 16)."""
    cls = comfy.supported_models.FluxInpaint if fill else comfy.supported_models.Flux
    config = cls(for_this_host(dict(FLUX_CONFIG, in_channels=96 if fill else 16)))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    seeded_init(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                            offload_device=comfy.model_management.unet_offload_device())


def build_clip(seed: int = 0):
    target = comfy.supported_models_base.ClipTarget(comfy.text_encoders.flux.FluxTokenizer,
                                                    comfy.text_encoders.flux.flux_clip(dtype_t5=torch.float32))
    clip = comfy.sd.CLIP(target, model_options={"clip_l_model_config": dict(CLIP_L_CONFIG),
                                                "t5xxl_model_config": dict(T5_CONFIG),
                                                "dtype": torch.float32})
    seeded_init(clip.cond_stage_model, seed + 1)
    return clip


def build_vae(seed: int = 0):
    """comfy.sd.VAE around a small AutoencoderKL (16 latent channels, 8x downscale like FLUX's)."""
    params = {"embed_dim": 16, "ddconfig": dict(VAE_DDCONFIG)}
    weights = AutoencoderKL(**params)
    seeded_init(weights, seed + 2)
    vae = comfy.sd.VAE(sd=weights.state_dict(), config={"params": params})
    vae.latent_channels = 16  # the config path keeps the SD default of 4
    return vae


def tiny_models(seed: int = 0, fill: bool = True):
    """(MODEL, CLIP, VAE), built once per process and seed: ComfyUI passes the same objects on."""
    key = (seed, fill)
    if key not in _CACHE:
        _CACHE[key] = (build_model(seed, fill), build_clip(seed), build_vae(seed))
    return _CACHE[key]


# The smallest FLUX the detector accepts: it fixes 24 heads x 128 = hidden 3072, T5 4096 and
# CLIP 768 inputs; depth 1 and no single blocks keep it at ~390M parameters.
SMALLEST_FLUX = {"out_channels": 16, "vec_in_dim": 768, "context_in_dim": 4096, "hidden_size": 3072,
                 "mlp_ratio": 4.0, "num_heads": 24, "depth": 1, "depth_single_blocks": 0,
                 "axes_dim": [16, 56, 56], "theta": 10000, "patch_size": 2, "qkv_bias": True,
                 "guidance_embed": True, "txt_ids_dims": []}


def write_smallest_flux(name: str, fill: bool = True, seed: int = 0) -> str:
    """Write models/diffusion_models/<name> (bf16 safetensors) unless it exists; returns name."""
    import folder_paths
    from safetensors.torch import save_file

    folders = folder_paths.get_folder_paths("diffusion_models")  # models/unet (legacy) may come first
    folder = next((f for f in folders if os.path.isdir(f)), folders[0])
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if os.path.exists(path):
        return name
    params = for_this_host(dict(SMALLEST_FLUX, in_channels=96 if fill else 16))
    meta = flux_model.Flux(device="meta", dtype=torch.bfloat16, operations=comfy.ops.disable_weight_init, **params)
    g = torch.Generator().manual_seed(seed)
    sd = {k: (0.02 * torch.randn(v.shape, generator=g)).to(torch.bfloat16) for k, v in meta.state_dict().items()}
    save_file(sd, path + ".part")
    os.replace(path + ".part", path)
    return name
