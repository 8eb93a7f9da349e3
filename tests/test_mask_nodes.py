"""MaskPrep and PasteBack as ComfyUI runs them: loaded by the host's own custom-node loader,
fed by and compared with the host's own nodes (LoadImage, GrowMask, ImageCompositeMasked)."""
import numpy as np
import pytest
import torch
from PIL import Image

NODES = ("MaskPrep", "PasteBack")


def result(out):
    """Outputs of a node call: V1 nodes return a tuple, V3 (0.30's core nodes) a NodeOutput."""
    return tuple(out.result) if hasattr(out, "result") else tuple(out)


def defaults(comfy, node_id):
    req = comfy.node(node_id).INPUT_TYPES()["required"]
    return {k: v[1]["default"] for k, v in req.items() if len(v) > 1 and "default" in v[1]}


def prep(comfy, image, mask=None, **over):
    kw = {**defaults(comfy, "MaskPrep"), **over}
    if mask is not None:
        kw["mask"] = mask
    return result(comfy.call("MaskPrep", image=image, **kw))


def test_registered_with_category_description_and_tooltips(comfy):
    for node_id in NODES:
        cls = comfy.nodes.NODE_CLASS_MAPPINGS[node_id]
        assert cls.CATEGORY == "FluxFill/mask" and cls.DESCRIPTION
        assert comfy.nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id]
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, (_, opts) in spec.get(section, {}).items():
                assert opts.get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
    assert tuple(comfy.nodes.NODE_CLASS_MAPPINGS["MaskPrep"].RETURN_TYPES) == ("IMAGE", "MASK", "STITCH")


def test_defaults_round_trip_keeps_every_pixel_outside_the_blend(comfy):
    image = torch.rand(2, 300, 420, 3)
    mask = torch.zeros(1, 300, 420)
    mask[0, 120:180, 200:260] = 1
    fill_img, fill_mask, stitch = prep(comfy, image, mask)
    assert fill_img.shape[1] * fill_img.shape[2] == pytest.approx(1024 * 1024, rel=0.1)
    assert fill_img.shape[1] % 16 == 0 and fill_img.shape[2] % 16 == 0
    assert fill_mask.shape == (1, fill_img.shape[1], fill_img.shape[2])
    assert set(fill_mask.unique().tolist()) == {0.0, 1.0}  # a hard mask stays hard
    out, = result(comfy.call("PasteBack", fill=torch.zeros_like(fill_img), feather=-1, stitch=stitch))
    assert out.shape == image.shape
    (x, y), (cw, ch) = stitch.pieces[0].origin, stitch.pieces[0].crop_size
    assert [p.origin for p in stitch.pieces] == [(x, y)] * 2        # one mask: one crop box for both
    outside = torch.ones(300, 420, dtype=torch.bool)
    outside[y:y + ch, x:x + cw] = stitch.pieces[0].blend == 0
    assert torch.equal(out[:, outside], image[:, outside])
    assert (out[:, 120:180, 200:260] == 0).all()


@pytest.mark.parametrize("n", [1, 3, 7])
def test_grow_lies_between_comfyuis_diamond_and_square(comfy, n):
    mask = torch.zeros(1, 64, 80)
    mask[0, 20:30, 25:45] = 1
    mask[0, 40, 60] = 1
    ours = prep(comfy, torch.rand(1, 64, 80, 3), mask, grow=n, feather=0, crop=False,
                target_mp=0.0, multiple=1)[1]
    diamond, = result(comfy.call("GrowMask", mask=mask, expand=n, tapered_corners=True))
    square, = result(comfy.call("GrowMask", mask=mask, expand=n, tapered_corners=False))
    assert ours.shape == diamond.shape
    assert (ours >= diamond).all() and (ours <= square).all()
    if n == 1:  # the Euclidean ball of radius 1 is the 4-neighbour cross
        assert torch.equal(ours, diamond)
    else:
        assert (ours > diamond).any() and (ours < square).any()


def test_shrink_matches_comfyuis_erosion_away_from_the_border(comfy):
    mask = torch.zeros(1, 60, 60)
    mask[0, 10:50, 15:45] = 1
    ours = prep(comfy, torch.rand(1, 60, 60, 3), mask, grow=-5, feather=0, crop=False,
                target_mp=0.0, multiple=1)[1]
    square, = result(comfy.call("GrowMask", mask=mask, expand=-5, tapered_corners=False))
    assert torch.equal(ours, square)  # a box shrinks to the same box in any metric


@pytest.mark.parametrize("soft", [False, True])
def test_paste_without_stitch_matches_image_composite_masked(comfy, soft):
    image = torch.rand(2, 50, 70, 3)
    fill = torch.rand(2, 50, 70, 3)
    mask = torch.zeros(1, 50, 70)
    mask[0, 10:40, 20:60] = 1
    if soft:
        mask[0, 10:40, 20:30] = 0.35
    ours, = result(comfy.call("PasteBack", fill=fill, feather=-1, image=image, mask=mask))
    theirs, = result(comfy.call("ImageCompositeMasked", destination=image, source=fill, x=0, y=0,
                                resize_source=False, mask=mask))
    if soft:
        assert torch.allclose(ours, theirs, atol=1e-6)
    else:
        assert torch.equal(ours, theirs)
    assert torch.equal(ours[:, mask[0] == 0], image[:, mask[0] == 0])


def save_png(path, rgb, alpha=None):
    arr = (rgb * 255).round().astype(np.uint8)
    if alpha is not None:
        arr = np.dstack([arr, (alpha * 255).round().astype(np.uint8)])
    Image.fromarray(arr, "RGBA" if alpha is not None else "RGB").save(path)


def test_loadimage_alpha_mask_through_maskprep_and_pasteback(comfy):
    rng = np.random.default_rng(0)
    rgb = rng.random((96, 128, 3))
    alpha = np.ones((96, 128))
    alpha[30:60, 40:90] = 0.0  # transparent = the hole (LoadImage: mask = 1 - alpha)
    save_png(comfy.base / "input" / "mask_nodes_alpha.png", rgb, alpha)
    image, mask = result(comfy.call("LoadImage", image="mask_nodes_alpha.png"))
    assert mask.shape == (1, 96, 128) and mask[0, 40, 50] == 1 and mask[0, 5, 5] == 0
    fill_img, _, stitch = prep(comfy, image, mask, feather=4)
    out, = result(comfy.call("PasteBack", fill=torch.ones_like(fill_img), feather=-1, stitch=stitch))
    assert out.shape == image.shape
    far = torch.ones(96, 128, dtype=torch.bool)
    far[30 - 6:60 + 6, 40 - 6:90 + 6] = False  # beyond grow 0 + feather 4 (+1)
    assert torch.equal(out[0, far], image[0, far])
    assert torch.allclose(out[0, 30:60, 40:90], torch.ones(30, 50, 3), atol=1e-6)


def test_loadimage_without_alpha_says_how_to_get_a_mask(comfy):
    save_png(comfy.base / "input" / "mask_nodes_rgb.png", np.full((40, 50, 3), 0.25))
    image, mask = result(comfy.call("LoadImage", image="mask_nodes_rgb.png"))
    assert mask.shape[-2:] == (64, 64) and not mask.any()
    with pytest.raises(ValueError, match="mask editor"):
        prep(comfy, image, mask)
    # ...and with outpaint padding the empty mask is fine: the padding is the hole
    fill_img, fill_mask, stitch = prep(comfy, image, mask, pad_right=24, target_mp=0.0, multiple=1)
    out, = result(comfy.call("PasteBack", fill=torch.zeros_like(fill_img), feather=-1, stitch=stitch))
    assert out.shape == (1, 40, 74, 3)
    assert torch.equal(out[:, :, :50 - 9], image[:, :, :50 - 9])  # feather 8 reaches 8 px in
    assert (out[:, :, 50:] == 0).all()


def test_fp16_rgba_and_feather_override_through_the_nodes(comfy):
    image = torch.rand(1, 80, 80, 4).half()
    mask = torch.zeros(1, 80, 80)
    mask[0, 30:50, 30:50] = 1
    fill_img, _, stitch = prep(comfy, image, mask, feather=2)
    out, = result(comfy.call("PasteBack", fill=fill_img * 0, feather=6, stitch=stitch))
    assert out.dtype == torch.float16 and out.shape == image.shape
    assert torch.equal(out[..., 3], image[..., 3])
    assert not torch.equal(out[0, 26, 40, :3], image[0, 26, 40, :3])  # 4 px out: only the override reaches
    assert torch.equal(out[0, :20], image[0, :20])


def test_pasteback_errors_name_the_fix(comfy):
    with pytest.raises(ValueError, match="STITCH .* or both the original image and its mask"):
        comfy.call("PasteBack", fill=torch.rand(1, 8, 8, 3), feather=-1)
    image = torch.rand(2, 32, 32, 3)
    mask = torch.ones(1, 32, 32)
    with pytest.raises(ValueError, match=r"3 fill image\(s\) for 2 source image\(s\)"):
        comfy.call("PasteBack", fill=torch.rand(3, 32, 32, 3), feather=-1, image=image, mask=mask)
    _, _, stitch = prep(comfy, image, mask)
    with pytest.raises(ValueError, match=r"5 fill image\(s\) for 2 source image\(s\)"):
        comfy.call("PasteBack", fill=torch.rand(5, 64, 64, 3), feather=-1, stitch=stitch)
