"""Fill / non-Fill detection on real files loaded by the stock UNETLoader (in-process host).

The files are the smallest FLUX models ComfyUI's detector accepts (~390M parameters, bf16,
~780 MB each), written by the test pack. One model is alive at a time (~2 GB of RAM).
"""
import gc
import os
import sys

import pytest


def pack_module(comfy, name):
    """A module of FluxFill as the host loaded it (the host imports the pack under its folder name)."""
    return sys.modules[comfy.nodes.NODE_CLASS_MAPPINGS["FluxFillLocal"].__module__.rsplit(".", 1)[0] + "." + name]


def load_written(comfy, variant):
    name = comfy.call("FluxFillTestWriteUnet", name=f"smallest-flux-{variant}.safetensors", variant=variant)[0]
    import folder_paths
    try:
        return comfy.call("UNETLoader", unet_name=name, weight_dtype="fp8_e4m3fn")[0]  # fp8: half the RAM
    finally:
        os.unlink(folder_paths.get_full_path("diffusion_models", name))


@pytest.fixture
def release_models():
    yield
    import comfy.model_management
    gc.collect()
    comfy.model_management.unload_all_models()
    comfy.model_management.soft_empty_cache()


def test_fill_file_passes_and_non_fill_file_is_refused(comfy, release_models):
    provider = pack_module(comfy, "local_provider")
    model = load_written(comfy, "fill")
    assert type(model.model.model_config).__name__ == "FluxInpaint"
    assert provider.fill_model_features(model) == ("flux", 384)
    provider.check_fill_model(model)  # no error
    del model
    gc.collect()

    dev = load_written(comfy, "dev")
    assert provider.fill_model_features(dev) == ("flux", 64)
    image, mask = comfy.call("FluxFillTestPattern", width=64, height=64, batch=1, seed=0, mask_batch=1, soft=False)
    _, clip, vae = comfy.call("FluxFillTestTinyModels", seed=0, variant="fill")
    with pytest.raises(ValueError, match=r"64 features per token.*flux1-fill-dev"):
        comfy.call("FluxFillLocal", image=image, mask=mask, prompt="", seed=0, num_images=1, model=dev, clip=clip,
                   vae=vae, steps=1, guidance=30.0, denoise=1.0, sampler_name="euler", scheduler="normal",
                   differential_diffusion=True, paste_back=True)
