"""FluxFillLocal against the official FLUX.1 Fill template chain, on a real ComfyUI server.

Both graphs run in the same prompt on the same tiny MODEL/CLIP/VAE (tests/packs/
fluxfill_test_models) and save raw float32 tensors, so "bit-identical" is checked on floats.
The stock chain is built only from stock nodes: CLIPTextEncode, FluxGuidance,
ConditioningZeroOut, InpaintModelConditioning, DifferentialDiffusion, KSampler, VAEDecode,
ImageCompositeMasked, LoraLoader.
"""
import json
import time
import uuid

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from comfy_host import execution_error, was_interrupted

PROMPT = "a red brick wall"
STEPS = 3


class Graph:
    """An API-format prompt under construction."""

    def __init__(self):
        self.nodes = {}
        self.tag = uuid.uuid4().hex[:8]

    def add(self, class_type, node_id=None, **inputs):
        node_id = node_id or f"n{len(self.nodes)}"
        self.nodes[node_id] = {"class_type": class_type, "inputs": inputs}
        return node_id

    def save(self, source, name, kind="images"):
        self.add("FluxFillTestSaveTensor", name=f"{self.tag}_{name}", **{kind: source})

    def save_text(self, source, name):
        self.add("FluxFillTestSaveText", text=source, name=f"{self.tag}_{name}")


def models(g, variant="fill"):
    return g.add("FluxFillTestTinyModels", seed=0, variant=variant)


def pattern(g, width=64, height=64, batch=1, mask_batch=1, pick=-1, seed=3):
    return g.add("FluxFillTestPattern", width=width, height=height, batch=batch, seed=seed,
                 mask_batch=mask_batch, soft=True, pick=pick)


def stock_chain(g, m, image, mask, seed, model=None, clip=None, prompt=PROMPT, steps=STEPS, denoise=1.0,
                pixels=None):
    """The official template graph; returns (decoded, pasted back)."""
    model = model or [m, 0]
    clip = clip or [m, 1]
    text = g.add("CLIPTextEncode", clip=clip, text=prompt)
    positive = g.add("FluxGuidance", conditioning=[text, 0], guidance=30.0)
    negative = g.add("ConditioningZeroOut", conditioning=[text, 0])
    inpaint = g.add("InpaintModelConditioning", positive=[positive, 0], negative=[negative, 0], vae=[m, 2],
                    pixels=pixels or image, mask=mask, noise_mask=True)
    dd = g.add("DifferentialDiffusion", model=model)
    sampled = g.add("KSampler", model=[dd, 0], seed=seed, steps=steps, cfg=1.0, sampler_name="euler",
                    scheduler="normal", positive=[inpaint, 0], negative=[inpaint, 1], latent_image=[inpaint, 2],
                    denoise=denoise)
    decoded = g.add("VAEDecode", samples=[sampled, 0], vae=[m, 2])
    pasted = g.add("ImageCompositeMasked", destination=image, source=[decoded, 0], x=0, y=0,
                   resize_source=False, mask=mask)
    return [decoded, 0], [pasted, 0]


def fluxfill(g, m, image, mask, seed, num_images=1, paste_back=True, lora_stack=None, steps=STEPS,
             denoise=1.0, fill_image=None):
    inputs = dict(image=image, mask=mask, prompt=PROMPT, seed=seed, num_images=num_images, model=[m, 0],
                  clip=[m, 1], vae=[m, 2], steps=steps, guidance=30.0, denoise=denoise, sampler_name="euler",
                  scheduler="normal", differential_diffusion=True, paste_back=paste_back)
    if lora_stack:
        inputs["lora_stack"] = lora_stack
    if fill_image:
        inputs["fill_image"] = fill_image
    return [g.add("FluxFillLocal", **inputs), 0]


def run(server, g):
    history = server.run(g.nodes, timeout=120)
    err = execution_error(history)
    assert err is None, err and err.get("exception_message")
    return lambda name: np.load(server.base / "output" / f"{g.tag}_{name}.npy")


def test_matches_stock_chain_with_paste_back_off_and_on(comfy_server):
    g = Graph()
    m, p = models(g), pattern(g)
    decoded, pasted = stock_chain(g, m, [p, 0], [p, 1], seed=7)
    g.save(decoded, "stock")
    g.save(pasted, "stock_pasted")
    g.save(fluxfill(g, m, [p, 0], [p, 1], seed=7, paste_back=False), "ours")
    g.save(fluxfill(g, m, [p, 0], [p, 1], seed=7, paste_back=True), "ours_pasted")
    g.save([p, 0], "input")
    g.save([p, 1], "mask", kind="mask")
    load = run(comfy_server, g)
    ours, stock = load("ours"), load("stock")
    assert ours.shape == (1, 64, 64, 3) and ours.dtype == np.float32
    assert np.array_equal(ours, stock)
    pasted = load("ours_pasted")
    assert np.array_equal(pasted, load("stock_pasted"))
    # Paste-back keeps every pixel outside the mask exactly (no VAE round trip there).
    outside = load("mask")[0] == 0
    assert np.array_equal(pasted[0][outside], load("input")[0][outside])
    assert not np.array_equal(pasted[0][outside], ours[0][outside])
    assert np.abs(pasted - load("input")).max() > 0.01, "the fill changed nothing"


@pytest.mark.parametrize("mask_batch", [1, 2], ids=["mask-broadcast", "mask-per-image"])
def test_batches_are_image_major_with_seed_plus_i(comfy_server, mask_batch):
    g = Graph()
    m = models(g)
    both = pattern(g, batch=2, mask_batch=mask_batch)
    g.save(fluxfill(g, m, [both, 0], [both, 1], seed=20, num_images=2, paste_back=True), "ours")
    for img in range(2):
        single = pattern(g, batch=2, mask_batch=mask_batch, pick=img)
        for i in range(2):
            _, pasted = stock_chain(g, m, [single, 0], [single, 1], seed=20 + i)
            g.save(pasted, f"stock_{img}_{i}")
    load = run(comfy_server, g)
    ours = load("ours")
    assert ours.shape == (4, 64, 64, 3)
    for img in range(2):
        for i in range(2):
            assert np.array_equal(ours[2 * img + i], load(f"stock_{img}_{i}")[0]), (img, i)
    assert not np.array_equal(ours[0], ours[1]), "seed + i gave the same fill"


def test_multiple_of_8_but_not_16_is_exact(comfy_server):
    g = Graph()
    m, p = models(g), pattern(g, width=72, height=40)
    decoded, _ = stock_chain(g, m, [p, 0], [p, 1], seed=5)
    g.save(decoded, "stock")
    g.save(fluxfill(g, m, [p, 0], [p, 1], seed=5, paste_back=False), "ours")
    load = run(comfy_server, g)
    assert load("ours").shape == (1, 40, 72, 3)
    assert np.array_equal(load("ours"), load("stock"))


def test_fill_image_is_composited_into_the_hole_before_sampling(comfy_server):
    g = Graph()
    m, p = models(g), pattern(g)
    fill = pattern(g, width=32, height=32, seed=99)  # another size: resized like resize_source
    composed = g.add("ImageCompositeMasked", destination=[p, 0], source=[fill, 0], x=0, y=0,
                     resize_source=True, mask=[p, 1])
    _, pasted = stock_chain(g, m, [p, 0], [p, 1], seed=9, denoise=0.6, pixels=[composed, 0])
    g.save(pasted, "stock")
    g.save(fluxfill(g, m, [p, 0], [p, 1], seed=9, denoise=0.6, fill_image=[fill, 0]), "ours")
    g.save(fluxfill(g, m, [p, 0], [p, 1], seed=9, denoise=0.6), "no_fill_image")
    load = run(comfy_server, g)
    assert np.array_equal(load("ours"), load("stock"))
    assert not np.array_equal(load("ours"), load("no_fill_image"))


def write_tiny_lora(path, seed, rank=4):
    """A LoRA for the tiny model in kohya naming: two diffusion-model layers and one CLIP-L layer."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"lora_unet_double_blocks_0_img_attn_qkv": (192, 64), "lora_unet_single_blocks_0_linear1": (320, 64),
              "lora_te1_text_model_encoder_layers_0_self_attn_q_proj": (32, 32)}
    sd = {}
    for key, (out_f, in_f) in shapes.items():
        sd[f"{key}.lora_down.weight"] = torch.randn(rank, in_f, generator=g) * 0.5
        sd[f"{key}.lora_up.weight"] = torch.randn(out_f, rank, generator=g) * 0.5
        sd[f"{key}.alpha"] = torch.tensor(float(rank))
    save_file(sd, str(path))


def test_lora_stack_equals_chained_lora_loaders(comfy_server):
    loras = comfy_server.base / "models" / "loras"
    write_tiny_lora(loras / "tiny_a.safetensors", 1)
    (loras / "styles").mkdir(exist_ok=True)
    write_tiny_lora(loras / "styles" / "tiny_b.safetensors", 2)
    g = Graph()
    m, p = models(g), pattern(g)
    # An Efficiency/Comfyroll-style stack (plain tuples, a "None" entry) chained into LoraStack.
    raw = g.add("FluxFillTestRawLoraStack", entries=json.dumps([["None", 1, 1], ["tiny_a.safetensors", 0.8, 0.6]]))
    row = {"on": True, "name": "None", "hosted": "", "strength_model": 1.0, "strength_clip": 1.0}
    rows = {}
    for i, values in enumerate([dict(row, name="styles/tiny_b.safetensors", hosted="owner/tiny-b",
                                     strength_model=-0.5, strength_clip=1.2),
                                dict(row, on=False, name="tiny_a.safetensors"), row], 1):
        rows.update({f"lora_{i}_{k}": v for k, v in values.items()})
    stack = g.add("LoraStack", lora_stack=[raw, 0], **rows)
    g.save_text([stack, 1], "described")
    a = g.add("LoraLoader", model=[m, 0], clip=[m, 1], lora_name="tiny_a.safetensors",
              strength_model=0.8, strength_clip=0.6)
    b = g.add("LoraLoader", model=[a, 0], clip=[a, 1], lora_name="styles/tiny_b.safetensors",
              strength_model=-0.5, strength_clip=1.2)
    _, pasted = stock_chain(g, m, [p, 0], [p, 1], seed=4, model=[b, 0], clip=[b, 1])
    g.save(pasted, "stock")
    g.save(fluxfill(g, m, [p, 0], [p, 1], seed=4, lora_stack=[stack, 0]), "ours")
    g.save(fluxfill(g, m, [p, 0], [p, 1], seed=4), "no_lora")
    load = run(comfy_server, g)
    assert np.array_equal(load("ours"), load("stock"))
    assert not np.array_equal(load("ours"), load("no_lora")), "the LoRAs changed nothing"
    described = (comfy_server.base / "output" / f"{g.tag}_described.txt").read_text().splitlines()
    assert described == ["1. tiny_a.safetensors  model 0.8, clip 0.6",
                         "2. styles/tiny_b.safetensors  model -0.5, clip 1.2  (hosted: owner/tiny-b)"]


def test_errors_reach_the_user(comfy_server):
    g = Graph()
    dev, p = models(g, variant="dev"), pattern(g)
    g.save(fluxfill(g, dev, [p, 0], [p, 1], seed=1), "never")
    history = comfy_server.run(g.nodes, timeout=60)
    err = execution_error(history)
    assert err and err["node_type"] == "FluxFillLocal"
    assert "flux1-fill-dev" in err["exception_message"] and "64 features" in err["exception_message"]


def test_cancel_interrupts_sampling_cleanly(comfy_server):
    g = Graph()
    m, p = models(g), pattern(g)
    node = fluxfill(g, m, [p, 0], [p, 1], seed=2, steps=5000)[0]
    g.save([node, 0], "cancelled")
    ans = comfy_server.queue(g.nodes)
    assert "prompt_id" in ans, ans
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the prompt is running, then into sampling
        if comfy_server.get("/queue").json()["queue_running"]:
            break
        time.sleep(0.05)
    time.sleep(1.5)
    comfy_server.interrupt()
    history = comfy_server.wait(ans["prompt_id"], timeout=60)
    assert was_interrupted(history)
    assert execution_error(history) is None
    interrupted = [d for kind, d in history["status"]["messages"] if kind == "execution_interrupted"]
    assert interrupted[0]["node_type"] == "FluxFillLocal"
    assert not (comfy_server.base / "output" / f"{g.tag}_cancelled.npy").exists()


def mask_prep(g, p, **over):
    opts = dict(image=[p, 0], mask=[p, 1], invert=False, threshold=0.0, fill_holes=False, grow=0, feather=4,
                crop=True, context_factor=1.2, context_px=8, target_mp=0.0, multiple=16, max_side=2048,
                pad_left=0, pad_top=0, pad_right=0, pad_bottom=0)
    opts.update(over)
    return g.add("MaskPrep", **opts)


def test_maskprep_crop_fill_pasteback_round_trip(comfy_server):
    g = Graph()
    m = models(g)
    # One image: the fill of MaskPrep's crop is the stock chain's, fill for fill (seed, seed + 1).
    one = pattern(g, width=120, height=88, batch=2, mask_batch=2, pick=0)
    prep = mask_prep(g, one)
    g.save(fluxfill(g, m, [prep, 0], [prep, 1], seed=30, num_images=2, paste_back=False), "crop_fills")
    decoded, _ = stock_chain(g, m, [prep, 0], [prep, 1], seed=31)
    g.save(decoded, "crop_stock_1")
    g.save([prep, 0], "crop")
    # Two images with their own masks, two fills each, pasted back into the full frames.
    both = pattern(g, width=120, height=88, batch=2, mask_batch=2)
    prep2 = mask_prep(g, both, multiple=1, context_px=5)  # any crop size: padded to 16 and cropped back
    fills = fluxfill(g, m, [prep2, 0], [prep2, 1], seed=30, num_images=2)
    g.save([g.add("PasteBack", fill=fills, feather=-1, stitch=[prep2, 2]), 0], "pasted")
    g.save([both, 0], "originals")
    g.save([both, 1], "masks", kind="mask")
    g.save([prep2, 0], "crops")
    load = run(comfy_server, g)
    crop_fills = load("crop_fills")
    assert crop_fills.shape[0] == 2 and crop_fills.shape[1:3] == load("crop").shape[1:3]
    assert crop_fills.shape[1:3] != (88, 120), "MaskPrep did not crop"
    assert np.array_equal(crop_fills[1], load("crop_stock_1")[0])

    assert load("crops").shape[1] % 8 or load("crops").shape[2] % 8, load("crops").shape
    pasted, originals, masks = load("pasted"), load("originals"), load("masks")
    assert pasted.shape == (4, 88, 120, 3)
    for k in range(4):  # image-major: fills 0, 1 of image 0, then of image 1
        src = k // 2
        ys, xs = np.nonzero(masks[src])
        far = np.ones((88, 120), bool)  # well outside the mask and its feather: untouched
        far[max(ys.min() - 12, 0):ys.max() + 13, max(xs.min() - 12, 0):xs.max() + 13] = False
        assert np.array_equal(pasted[k][far], originals[src][far]), k
        inside = masks[src] > 0.99
        assert np.abs(pasted[k][inside] - originals[src][inside]).max() > 0.01, k
    assert not np.array_equal(pasted[0], pasted[1])
