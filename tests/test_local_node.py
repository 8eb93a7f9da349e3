"""FluxFillLocal in the real host, in-process: its shape, sizes, report and every error."""
import json

import pytest
import torch

from fluxfill.core.lora_list import LoraName


@pytest.fixture(scope="module")
def tiny(comfy):
    return dict(zip(("model", "clip", "vae"), comfy.call("FluxFillTestTinyModels", seed=0, variant="fill")))


def pattern(comfy, width=64, height=64, batch=1, mask_batch=1):
    return comfy.call("FluxFillTestPattern", width=width, height=height, batch=batch, seed=3,
                      mask_batch=mask_batch, soft=True)


def fill(comfy, models, image, mask, **over):
    inputs = dict(image=image, mask=mask, prompt="grass", seed=10, num_images=1, steps=2, guidance=30.0,
                  denoise=1.0, sampler_name="euler", scheduler="normal", differential_diffusion=True,
                  paste_back=True, **models)
    inputs.update(over)
    return comfy.call("FluxFillLocal", **inputs)


def test_registered_with_the_shared_fill_shape_and_template_defaults(comfy):
    cls = comfy.nodes.NODE_CLASS_MAPPINGS["FluxFillLocal"]
    assert cls.CATEGORY == "FluxFill/fill" and tuple(cls.RETURN_NAMES) == ("images", "report")
    spec = cls.INPUT_TYPES()
    req = spec["required"]
    assert list(req)[:5] == ["image", "mask", "prompt", "seed", "num_images"]
    assert [req[k][0] for k in ("model", "clip", "vae")] == ["MODEL", "CLIP", "VAE"]
    defaults = {k: req[k][1]["default"] for k in ("steps", "guidance", "denoise", "sampler_name", "scheduler",
                                                  "differential_diffusion", "paste_back")}
    assert defaults == {"steps": 28, "guidance": 30.0, "denoise": 1.0, "sampler_name": "euler",
                        "scheduler": "normal", "differential_diffusion": True, "paste_back": True}
    assert (req["num_images"][1]["min"], req["num_images"][1]["max"]) == (1, 4)
    assert set(spec["optional"]) == {"lora_stack", "fill_image"}
    for section in ("required", "optional"):
        for name, (_, opts) in spec[section].items():
            assert opts.get("tooltip"), f"{name} has no tooltip"


@pytest.mark.parametrize("width, height", [(61, 45), (100, 36)])
def test_any_size_comes_back_at_its_own_size(comfy, tiny, width, height):
    image, mask = pattern(comfy, width, height)
    pasted, report = fill(comfy, tiny, image, mask)
    raw, _ = fill(comfy, tiny, image, mask, paste_back=False)
    assert pasted.shape == raw.shape == (1, height, width, 3)
    assert torch.isfinite(raw).all()
    outside = mask[0] == 0
    assert torch.equal(pasted[0][outside], image[0][outside])
    assert not torch.equal(pasted[0][~outside], image[0][~outside])
    meta = json.loads(report)["results"][0]
    assert meta["size"] == [width, height]
    assert meta["padded_to"] == [-(-width // 16) * 16, -(-height // 16) * 16]


def test_report_lists_seeds_per_image_and_settings(comfy, tiny):
    image, mask = pattern(comfy, batch=2)
    images, report = fill(comfy, tiny, image, mask, num_images=3, seed=100)
    assert images.shape == (6, 64, 64, 3)
    data = json.loads(report)
    assert data["provider"] == "local"
    assert [r["seeds"] for r in data["results"]] == [[100, 101, 102], [100, 101, 102]]
    assert [r["index"] for r in data["results"]] == [0, 1]
    assert (data["steps"], data["sampler"], data["scheduler"], data["loras"]) == (2, "euler", "normal", "(no LoRAs)")
    assert data["results"][0]["padded_to"] is None
    assert len(data["results"][1]["timings"]["sample_s"]) == 3


def test_non_fill_model_is_refused_with_the_fix(comfy):
    dev = dict(zip(("model", "clip", "vae"), comfy.call("FluxFillTestTinyModels", seed=0, variant="dev")))
    image, mask = pattern(comfy)
    with pytest.raises(ValueError, match=r"64 features per token.*Load flux1-fill-dev\.safetensors"):
        fill(comfy, dev, image, mask)


def test_missing_lora_file_is_named(comfy, tiny):
    image, mask = pattern(comfy)
    with pytest.raises(FileNotFoundError, match=r"'not_there/missing\.safetensors' not found in models/loras"):
        fill(comfy, tiny, image, mask, lora_stack=[("not_there/missing.safetensors", 1.0, 1.0)])


@pytest.mark.parametrize("entry", [("owner/some-flux-lora", 1.0, 1.0),
                                   (LoraName(None, "https://example.com/l.safetensors"), 0.5, 0.5)])
def test_hosted_only_lora_cannot_be_applied_locally(comfy, tiny, entry):
    image, mask = pattern(comfy)
    with pytest.raises(ValueError, match="cannot be applied locally unless a local file is named too"):
        fill(comfy, tiny, image, mask, lora_stack=[entry])


def test_mask_batch_must_be_one_or_one_per_image(comfy, tiny):
    image, _ = pattern(comfy, batch=2)
    _, masks = pattern(comfy, mask_batch=3)
    with pytest.raises(ValueError, match="mask has a batch of 3 for 2 images"):
        fill(comfy, tiny, image, masks)


def test_a_2d_mask_is_one_mask(comfy, tiny):
    image, mask = pattern(comfy)
    assert torch.equal(fill(comfy, tiny, image, mask[0])[0], fill(comfy, tiny, image, mask)[0])


def test_an_empty_mask_is_refused_before_any_sampling(comfy, tiny):
    image, _ = pattern(comfy, 96, 80)
    with pytest.raises(ValueError, match=r"mask of image 0 is empty \(64x64, not the image's 96x80.*MaskEditor"):
        fill(comfy, tiny, image, torch.zeros(1, 64, 64))
