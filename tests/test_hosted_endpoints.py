"""Hosted endpoints table: validation, defaults, payloads and prices for every endpoint and
every field (pure: no network)."""
import math

import numpy as np
import pytest

from fluxfill.core.hosted import pricing
from fluxfill.core.hosted.endpoint_table import ENDPOINTS, FIELDS, NARROWEST_SEED_MAX, endpoints_for
from fluxfill.core.hosted.params import build_payload, map_images, split_params, validate
from fluxfill.core.hosted.presentation import describe, markdown_table
from fluxfill.core.hosted.errors import HostedValidationError

ALL = list(ENDPOINTS)
FAL = endpoints_for("fal")

# a valid value for every field (beyond defaults), and bad values with the text expected
VALID = {
    "prompt": "a red door",
    "image_size": "square_hd",
    "size": "768*512",
    "num_inference_steps": 20,
    "seed": 1234,
    "guidance_scale": 30.5,
    "strength": 0.5,
    "num_images": 3,
    "loras": [{"path": "https://example.com/a.safetensors", "scale": 0.7}],
    "enable_safety_checker": False,
    "safety_tolerance": "5",
    "enhance_prompt": True,
    "output_format": "png",
    "acceleration": "regular",
    "paste_back": False,
    "fill_image": {"fill_image_url": "https://example.com/f.png", "in_context_fill": True,
                   "use_prompt": False},
    "resize_to_original": True,
    "controlnets": [{"path": "XLabs-AI/flux-controlnet-canny", "control_image_url":
                     "https://example.com/c.png", "conditioning_scale": 0.6}],
    "controlnet_unions": [{"path": "InstantX/FLUX.1-dev-Controlnet-Union", "controls": [
        {"control_image_url": "https://example.com/d.png", "control_mode": "depth"}]}],
    "sync_mode": True,
    "enable_base64_output": True,
    "enable_sync_mode": True,
}


def _valid(ep, name):
    v = VALID[name]
    rule = ENDPOINTS[ep].rules[name]
    if name == "guidance_scale":
        return (rule.min + rule.max) / 2
    return v


@pytest.mark.parametrize("ep", ALL)
def test_every_field_is_accepted_and_sent(ep):
    spec = ENDPOINTS[ep]
    for name in spec.rules:
        params = {"prompt": "x", name: _valid(ep, name)}
        v = validate(ep, params)
        body = build_payload(ep, v, "https://h/i.png", "https://h/m.png")
        assert name in body, (ep, name)
        assert body[spec.image_key] == "https://h/i.png" and body[spec.mask_key] == "https://h/m.png"
        assert set(body) - {spec.image_key, spec.mask_key} <= set(spec.rules)


@pytest.mark.parametrize("ep", ALL)
def test_fields_not_taken_are_refused_with_the_endpoints_list(ep):
    spec = ENDPOINTS[ep]
    for name in set(FIELDS) - set(spec.rules):
        with pytest.raises(HostedValidationError) as ei:
            validate(ep, {"prompt": "x", name: VALID[name]})
        assert name in str(ei.value) and "it takes" in str(ei.value)
        assert ei.value.field == name
    with pytest.raises(HostedValidationError, match="unknown parameter 'cfg'"):
        validate(ep, {"prompt": "x", "cfg": 3})


def test_endpoint_defaults():
    d = {ep: validate(ep, {"prompt": "x"}) for ep in ALL}
    assert d["fal-ai/flux-lora-fill"]["guidance_scale"] == 30
    assert d["fal-ai/flux-lora/inpainting"]["guidance_scale"] == 3.5
    assert d["fal-ai/flux-general/inpainting"]["guidance_scale"] == 3.5
    assert d["wavespeed-ai/flux-fill-dev"]["guidance_scale"] == 30
    for ep in ("fal-ai/flux-lora-fill", "fal-ai/flux-lora/inpainting",
               "fal-ai/flux-general/inpainting", "wavespeed-ai/flux-fill-dev"):
        assert d[ep]["num_inference_steps"] == 28
    assert d["fal-ai/flux-lora/inpainting"]["strength"] == 0.85
    assert d["fal-ai/flux-general/inpainting"]["strength"] == 0.85
    assert d["fal-ai/flux-pro/v1/fill"]["safety_tolerance"] == "2"
    assert d["fal-ai/flux-pro/v1/fill"]["enhance_prompt"] is False
    assert d["fal-ai/flux-lora-fill"]["paste_back"] is True
    assert d["fal-ai/flux-lora-fill"]["output_format"] == "jpeg"
    assert d["fal-ai/flux-general/inpainting"]["output_format"] == "png"
    assert d["fal-ai/flux-lora/inpainting"]["acceleration"] == "none"
    for ep in ALL:
        assert d[ep]["num_images"] == 1
        assert "seed" not in d[ep]          # no default: the node always passes one
    assert "strength" not in d["fal-ai/flux-pro/v1/fill"]


RANGES = [  # (endpoint, field, bad value, text in the error)
    ("fal-ai/flux-lora-fill", "guidance_scale", 27.9, "between 28 and 35"),
    ("fal-ai/flux-lora-fill", "guidance_scale", 35.5, "between 28 and 35"),
    ("fal-ai/flux-lora/inpainting", "guidance_scale", 36, "between 0 and 35"),
    ("fal-ai/flux-lora/inpainting", "guidance_scale", -0.1, "between 0 and 35"),
    ("fal-ai/flux-general/inpainting", "guidance_scale", 20.5, "between 0 and 20"),   # fal's schema: 0-20
    ("fal-ai/flux-general/inpainting", "guidance_scale", 35, "between 0 and 20"),
    ("wavespeed-ai/flux-fill-dev", "guidance_scale", 3.5, "between 28 and 35"),
    ("fal-ai/flux-lora/inpainting", "strength", 0.0, "between 0.01 and 1"),
    ("fal-ai/flux-general/inpainting", "strength", 1.01, "between 0.01 and 1"),
    ("fal-ai/flux-lora-fill", "num_inference_steps", 0, "between 1 and 50"),
    ("fal-ai/flux-lora/inpainting", "num_inference_steps", 51, "between 1 and 50"),
    ("wavespeed-ai/flux-fill-dev", "num_inference_steps", 51, "between 1 and 50"),
    ("fal-ai/flux-pro/v1/fill", "num_images", 5, "between 1 and 4"),
    ("wavespeed-ai/flux-fill-dev", "num_images", 0, "between 1 and 4"),
    ("fal-ai/flux-lora-fill", "seed", -1, "between 0 and 2147483647"),
    ("wavespeed-ai/flux-fill-dev", "seed", -2, "between -1 and 2147483647"),
    ("wavespeed-ai/flux-fill-dev", "seed", 2 ** 31, "between -1 and 2147483647"),
    ("wavespeed-ai/flux-fill-dev", "size", "255*512", "between 256 and 1536"),
    ("wavespeed-ai/flux-fill-dev", "size", (512, 1537), "between 256 and 1536"),
    ("wavespeed-ai/flux-fill-dev", "size", "big", "1024*768"),
    ("fal-ai/flux-pro/v1/fill", "safety_tolerance", "7", "one of 1, 2, 3, 4, 5, 6"),
    ("fal-ai/flux-lora-fill", "output_format", "webp", "one of jpeg, png"),
    ("fal-ai/flux-lora/inpainting", "acceleration", "high", "one of none, regular"),
    ("fal-ai/flux-lora-fill", "image_size", "huge", "square_hd"),
    ("fal-ai/flux-lora-fill", "image_size", {"width": 0, "height": 5}, "between 1 and 14142"),
    ("fal-ai/flux-lora-fill", "num_inference_steps", 2.5, "whole number"),
    ("fal-ai/flux-lora-fill", "num_inference_steps", True, "integer"),
    ("fal-ai/flux-lora-fill", "guidance_scale", float("nan"), "finite"),
    ("fal-ai/flux-lora-fill", "paste_back", "yes", "true or false"),
    ("wavespeed-ai/flux-fill-dev", "loras", [{"path": "a/b", "scale": 1}] * 4, "at most 3"),
    ("wavespeed-ai/flux-fill-dev", "loras", [{"path": "a/b", "scale": 4.5}], "between 0 and 4"),
    ("wavespeed-ai/flux-fill-dev", "loras", [{"path": "a/b", "scale": -0.5}], "between 0 and 4"),
    ("fal-ai/flux-lora/inpainting", "loras", [{"path": "a/b", "scale": {"x": 1}}], "per-layer"),
    ("fal-ai/flux-lora/inpainting", "loras", [{"path": "", "scale": 1}], "non-empty"),
    ("fal-ai/flux-lora/inpainting", "loras", [{"scale": 1}], "{path, scale}"),
    ("fal-ai/flux-general/inpainting", "controlnets", [VALID["controlnets"][0]] * 2, "at most 1"),
    ("fal-ai/flux-general/inpainting", "controlnets", [{"path": "p"}], "control_image_url is required"),
    ("fal-ai/flux-general/inpainting", "controlnets", [{"path": "p", "control_image_url": "ftp://x/y.png"}],
     "https:// / data: URL"),
    ("fal-ai/flux-general/inpainting", "controlnet_unions",
     [{"path": "p", "controls": [{"control_image_url": "https://x/y.png", "control_mode": "edges"}]}],
     "one of canny"),
    ("fal-ai/flux-general/inpainting", "controlnet_unions", [{"path": "p", "controls": []}], "non-empty"),
    ("fal-ai/flux-general/inpainting", "controlnets",
     [{**VALID["controlnets"][0], "start_percentage": 1.5}], "between 0 and 1"),
    ("fal-ai/flux-general/inpainting", "controlnets",
     [{**VALID["controlnets"][0], "conditioning_scale": 2.5}], "conditioning_scale must be between 0 and 2"),
    ("fal-ai/flux-general/inpainting", "controlnet_unions",
     [{"path": "p", "controls": [{"control_image_url": "https://x/y.png", "control_mode": "canny",
                                  "conditioning_scale": -0.1}]}], "conditioning_scale must be between 0 and 2"),
    ("fal-ai/flux-lora-fill", "fill_image", {"fill_image_url": "https://x/y.png", "mode": 1}, "unknown keys"),
    ("fal-ai/flux-lora-fill", "fill_image", {"in_context_fill": True}, "fill_image_url is required"),
]


@pytest.mark.parametrize("ep,name,bad,text", RANGES)
def test_ranges_are_checked_with_a_clear_error(ep, name, bad, text):
    with pytest.raises(HostedValidationError) as ei:
        validate(ep, {"prompt": "x", name: bad})
    msg = str(ei.value)
    assert ep in msg and name in msg and text in msg, msg
    assert ei.value.field.startswith(name)
    assert isinstance(ei.value, ValueError)


def test_narrowest_seed_max_is_taken_by_every_endpoint():
    """The fill nodes' seed widget max: valid on every endpoint, the widest range that is."""
    assert NARROWEST_SEED_MAX == min(e.rules["seed"].max for e in ENDPOINTS.values()) == 2 ** 31 - 1
    for ep in ALL:
        assert validate(ep, {"prompt": "x", "seed": NARROWEST_SEED_MAX})["seed"] == NARROWEST_SEED_MAX


def test_range_edges_are_accepted():
    assert validate("fal-ai/flux-lora-fill", {"guidance_scale": 28})["guidance_scale"] == 28.0
    assert validate("fal-ai/flux-lora-fill", {"guidance_scale": 35})["guidance_scale"] == 35.0
    assert validate("fal-ai/flux-lora/inpainting", {"prompt": "x", "strength": 0.01})["strength"] == 0.01
    general = "fal-ai/flux-general/inpainting"
    v = validate(general, {"prompt": "x", "guidance_scale": 20, "controlnets": [
        {**VALID["controlnets"][0], "conditioning_scale": 2}], "controlnet_unions": [{"path": "p", "controls": [
            {"control_image_url": "https://x/y.png", "control_mode": "tile", "conditioning_scale": 0}]}]})
    assert v["guidance_scale"] == 20.0 and v["controlnets"][0]["conditioning_scale"] == 2.0
    assert v["controlnet_unions"][0]["controls"][0]["conditioning_scale"] == 0.0
    v = validate("wavespeed-ai/flux-fill-dev", {"prompt": "x", "size": (256, 1536), "seed": -1,
                                                  "loras": [{"path": "a/b", "scale": 4}] * 3})
    assert v["size"] == "256*1536" and v["seed"] == -1 and len(v["loras"]) == 3


def test_prompt_rules():
    assert "prompt" not in build_payload("fal-ai/flux-lora-fill", validate("fal-ai/flux-lora-fill", {}),
                                           "https://i", "https://m")
    for ep in ("fal-ai/flux-lora/inpainting", "fal-ai/flux-pro/v1/fill", "fal-ai/flux-general/inpainting",
               "wavespeed-ai/flux-fill-dev"):
        for params in ({}, {"prompt": "  "}):
            with pytest.raises(HostedValidationError, match="prompt") as ei:
                validate(ep, params)
            assert "flux-lora-fill accepts an empty prompt" in str(ei.value)


def test_aliases_coercions_and_idempotence():
    v = validate("fal-ai/flux-lora/inpainting", {"prompt": "x", "steps": np.int64(12),
                                                   "guidance": 4, "safety": None} if False else
                   {"prompt": "x", "steps": np.int64(12), "guidance": 4, "strength": None})
    assert v["num_inference_steps"] == 12 and type(v["num_inference_steps"]) is int
    assert v["guidance_scale"] == 4.0 and type(v["guidance_scale"]) is float
    assert v["strength"] == 0.85                      # None = unset = default
    assert validate("fal-ai/flux-lora/inpainting", v) == v
    assert validate("fal-ai/flux-pro/v1/fill", {"prompt": "x", "safety_tolerance": 6})["safety_tolerance"] == "6"
    assert validate("fal-ai/flux-lora-fill", {"image_size": (640, 480)})["image_size"] == \
        {"width": 640, "height": 480}
    assert validate("wavespeed-ai/flux-fill-dev", {"prompt": "x", "size": {"width": 300, "height": 400}})[
        "size"] == "300*400"
    assert validate("wavespeed-ai/flux-fill-dev", {"prompt": "x", "size": "300x400"})["size"] == "300*400"
    with pytest.raises(HostedValidationError, match="given twice"):
        validate("fal-ai/flux-lora-fill", {"steps": 3, "num_inference_steps": 4})


def test_per_layer_lora_scales_only_on_flux_general():
    lora = [{"path": "owner/repo", "scale": {"transformer.single_transformer_blocks.0": 0.5, "x": 2}}]
    v = validate("fal-ai/flux-general/inpainting", {"prompt": "x", "loras": lora})
    assert v["loras"][0]["scale"] == {"transformer.single_transformer_blocks.0": 0.5, "x": 2.0}
    with pytest.raises(HostedValidationError, match="per-layer"):
        validate("fal-ai/flux-lora-fill", {"loras": lora})
    with pytest.raises(HostedValidationError, match=r"scale\[x\]"):
        validate("fal-ai/flux-general/inpainting", {"prompt": "x", "loras": [
            {"path": "o/r", "scale": {"x": float("inf")}}]})


def test_split_params_for_node_widgets():
    taken, ignored = split_params("fal-ai/flux-pro/v1/fill", {"steps": 20, "safety_tolerance": "3",
                                                                "strength": 0.5})
    assert taken == {"safety_tolerance": "3"}
    assert ignored == {"num_inference_steps": 20, "strength": 0.5}


def test_images_in_params_are_mapped_before_payload():
    img = np.zeros((8, 8, 3), np.float32)
    v = validate("fal-ai/flux-general/inpainting", {"prompt": "x", "controlnets": [
        {"path": "p", "control_image_url": img, "mask_image_url": img}], "controlnet_unions": [
        {"path": "u", "controls": [{"control_image_url": img, "control_mode": "canny"}]}]})
    with pytest.raises(HostedValidationError, match="upload it first"):
        build_payload("fal-ai/flux-general/inpainting", v, "https://i", "https://m")
    mapped = map_images(v, lambda im: "https://cdn/x.png")
    body = build_payload("fal-ai/flux-general/inpainting", mapped, "https://i", "https://m")
    assert body["controlnets"][0]["control_image_url"] == "https://cdn/x.png"
    assert body["controlnets"][0]["mask_image_url"] == "https://cdn/x.png"
    assert body["controlnet_unions"][0]["controls"][0]["control_image_url"] == "https://cdn/x.png"
    assert v["controlnets"][0]["control_image_url"] is img      # the original is not modified
    fi = validate("fal-ai/flux-lora-fill", {"fill_image": {"fill_image_url": img}})
    assert map_images(fi, lambda im: "data:image/png;base64,AA==")["fill_image"]["fill_image_url"].startswith("data:")


def test_describe_and_markdown_cover_every_field():
    for ep in ALL:
        rows = describe(ep)
        assert [r["name"] for r in rows] == list(ENDPOINTS[ep].rules)
        md = markdown_table(ep)
        for r in rows:
            assert f"`{r['name']}" in md
    md = markdown_table("fal-ai/flux-lora-fill")
    assert "| `guidance_scale` (`guidance`) | 30 | 28 – 35 |" in md
    assert "not published" in md


# ------------------------------------------------------------------ pricing
def test_prices_per_endpoint():
    estimate = pricing.estimate
    assert estimate("fal-ai/flux-lora/inpainting", 1024, 1024, 1).usd == pytest.approx(0.035)
    assert estimate("fal-ai/flux-lora/inpainting", 512, 512, 2).usd == pytest.approx(0.035 * 0.25 * 2)
    # flux-general rounds each image UP to whole megapixels too (fal's flux-general page)
    assert estimate("fal-ai/flux-general/inpainting", 1024, 768, 1).usd == pytest.approx(0.075)
    assert estimate("fal-ai/flux-general/inpainting", 1025, 1024, 2).usd == pytest.approx(0.075 * 2 * 2)
    assert "rounded up" in estimate("fal-ai/flux-general/inpainting", 512, 512).basis
    # flux-pro rounds each image UP to whole megapixels
    assert estimate("fal-ai/flux-pro/v1/fill", 512, 512, 1).usd == pytest.approx(0.05)
    assert estimate("fal-ai/flux-pro/v1/fill", 1024, 1024, 1).usd == pytest.approx(0.05)
    assert estimate("fal-ai/flux-pro/v1/fill", 1025, 1024, 3).usd == pytest.approx(0.05 * 2 * 3)
    assert estimate("wavespeed-ai/flux-fill-dev", 1536, 1536, 4).usd == pytest.approx(0.14)
    unknown = estimate("fal-ai/flux-lora-fill", 1024, 1024, 1)
    assert unknown.usd is None and "not published" in unknown.text()
    assert "rounded up" in estimate("fal-ai/flux-pro/v1/fill", 100, 100).basis


def test_estimate_follows_output_size_and_actual_cost():
    v = validate("fal-ai/flux-lora/inpainting", {"prompt": "x", "image_size": "landscape_16_9",
                                                   "num_images": 2})
    est = pricing.estimate_for("fal-ai/flux-lora/inpainting", v, (100, 100))
    assert est.usd == pytest.approx(0.035 * 1024 * 576 / 2 ** 20 * 2)
    v = validate("fal-ai/flux-pro/v1/fill", {"prompt": "x"})
    assert pricing.estimate_for("fal-ai/flux-pro/v1/fill", v, (2048, 1024)).usd == pytest.approx(0.1)
    act = pricing.actual("fal-ai/flux-general/inpainting", [(1024, 1024), (512, 1024)])
    assert act.usd == pytest.approx(0.075 * 2)
    assert pricing.actual("fal-ai/flux-lora-fill", [(8, 8)]).usd is None
    assert math.isclose(pricing.actual("wavespeed-ai/flux-fill-dev", [(8, 8)] * 3).usd, 0.105)


@pytest.mark.parametrize("ep,usd,ceil", [("fal-ai/flux-pro/v1/fill", 0.05, True),
                                         ("fal-ai/flux-general/inpainting", 0.075, True),
                                         ("fal-ai/flux-lora/inpainting", 0.035, False)])
def test_estimates_are_never_below_the_published_rule(ep, usd, ceil):
    """The providers' rules, written out here (not read from the table): per image, USD per
    megapixel of 1024x1024, rounded up to whole megapixels where the page says so."""
    for w, h in [(64, 64), (512, 512), (1024, 768), (1024, 1024), (1025, 1024), (1536, 1536), (2048, 1000)]:
        mp = w * h / 2 ** 20
        rule = usd * (math.ceil(mp - 1e-9) if ceil else mp) * 3
        assert pricing.estimate(ep, w, h, 3).usd >= rule - 1e-6, (ep, w, h)     # rounded to 1e-6 $
        assert pricing.actual(ep, [(w, h)] * 3).usd >= rule - 1e-6, (ep, w, h)


def test_unknown_endpoint():
    with pytest.raises(HostedValidationError, match="choose one of"):
        validate("fal-ai/flux/dev", {})
