"""MaskPrep's pipeline and PasteBack's paste in the pure core (core.prep, core.stitch).

The hard guarantee: wherever the blend mask is 0, the output is bit-identical to the input;
crop then paste of an unchanged fill gives the original back (exactly at scale 1)."""
import pytest
import torch
from hypothesis import given, settings, strategies as st

from fluxfill.core.prep import PrepOptions, prepare
from fluxfill.core.stitch import blend_on_canvas, fills_per_piece, from_mask, paste

SETTINGS = settings(max_examples=60, deadline=None)


def canvas_blend(stitch, k=1):
    """The blend mask of each output image on the whole canvas (zeros outside the crop boxes)."""
    return blend_on_canvas(stitch).repeat_interleave(k, 0)


def in_image(out, stitch):
    left, top, _, _ = stitch.pad
    _, h, w, _ = stitch.images.shape
    return out[:, top:top + h, left:left + w]


@st.composite
def cases(draw):
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(8, 72)), draw(st.integers(8, 72))
    c = draw(st.sampled_from([3, 4]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    image = torch.rand(n, h, w, c, generator=g)
    m = 1 if draw(st.booleans()) else n
    mask = torch.zeros(m, h, w)
    for i in range(m):
        x0, y0 = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
        mask[i, y0:draw(st.integers(y0 + 1, h)), x0:draw(st.integers(x0 + 1, w))] = 1
        if draw(st.booleans()):
            mask[i] *= torch.rand(h, w, generator=g) > 0.3  # ragged, with holes
    pad = tuple(draw(st.sampled_from([0, 0, 5, 16])) for _ in range(4))
    opt = PrepOptions(invert=draw(st.booleans()), threshold=draw(st.sampled_from([0.0, 0.5])),
                      fill_holes=draw(st.booleans()), grow=draw(st.integers(-4, 6)),
                      feather=draw(st.integers(0, 6)), pad=pad, crop=draw(st.booleans()),
                      context_factor=draw(st.floats(1.0, 2.0)), context_px=draw(st.integers(0, 12)),
                      target_mp=draw(st.sampled_from([0.0, 0.0, 0.004, 0.02])),
                      multiple=draw(st.sampled_from([1, 8, 16])), max_side=draw(st.integers(64, 256)),
                      regions=draw(st.sampled_from(["together", "together", "separate"])),
                      region_gap=draw(st.sampled_from([0, 4, 64])))
    return image, mask, opt


def prepare_or_skip(image, mask, opt):
    try:
        return prepare(image, mask, opt)
    except ValueError as e:  # an empty mask (e.g. after invert), too many regions: user errors, said clearly
        assert "empty" in str(e) or "raise region_gap" in str(e)
        return None


@SETTINGS
@given(cases(), st.integers(1, 2))
def test_outside_the_blend_mask_nothing_changes(case, k):
    image, mask, opt = case
    got = prepare_or_skip(image, mask, opt)
    if got is None:
        return
    fill_img, fill_mask, stitch = got
    pieces = len(stitch.pieces)
    assert fill_img.shape[0] == pieces and fill_img.shape[-1] == 3
    if opt.regions == "together":
        assert pieces == image.shape[0]
        assert fill_mask.shape == (mask.shape[0], fill_img.shape[1], fill_img.shape[2])
    else:
        assert fill_mask.shape == (pieces, fill_img.shape[1], fill_img.shape[2])
        assert [p.source for p in stitch.pieces] == sorted(p.source for p in stitch.pieces)  # image-major
    fills = torch.rand(pieces * k, *fill_img.shape[1:])  # k fills per crop
    out = paste(stitch, fills, color_match=draw_cm(k))
    w_all, h_all = stitch.canvas_size
    assert out.shape == (image.shape[0] * k, h_all, w_all, image.shape[-1])   # per source, never per region
    keep = in_image(canvas_blend(stitch, k), stitch) == 0
    orig = image.repeat_interleave(k, 0)
    assert torch.equal(in_image(out, stitch)[keep], orig[keep])
    if any(opt.pad):  # the new area is always part of the hole: fully replaced
        pad_area = torch.ones(h_all, w_all, dtype=torch.bool)
        left, top, _, _ = stitch.pad
        pad_area[top:top + image.shape[1], left:left + image.shape[2]] = False
        assert (canvas_blend(stitch, k)[:, pad_area] == 1).all()


def draw_cm(k):
    return (0.0, 1.0)[k - 1]   # colour match on (k = 2) or off: outside the blend, nothing moves either way


@SETTINGS
@given(cases())
def test_crop_then_paste_of_the_unchanged_fill_is_the_original(case):
    image, mask, opt = case
    opt.target_mp = 0.0  # native size: scale 1 unless the canvas is not a multiple
    got = prepare_or_skip(image, mask, opt)
    if got is None:
        return
    fill_img, _, stitch = got
    out = in_image(paste(stitch, fill_img), stitch)
    if all(stitch.scale(p) == (1.0, 1.0) for p in stitch.pieces):
        assert torch.equal(out[..., :3], image[..., :3])
        assert torch.equal(out[..., 3:], image[..., 3:])  # alpha untouched
    else:
        keep = in_image(canvas_blend(stitch), stitch) == 0
        assert torch.equal(out[keep], image[keep])


def smooth_image(n, h, w, c=3):
    y = torch.linspace(0, 1, h).view(1, h, 1, 1)
    x = torch.linspace(0, 1, w).view(1, 1, w, 1)
    phase = torch.arange(n * c, dtype=torch.float32).view(n, 1, 1, c)
    return 0.5 + 0.4 * torch.sin(3 * x + 2 * y + phase)


def test_round_trip_through_a_resize_stays_close():
    image = smooth_image(2, 240, 320)
    mask = torch.zeros(1, 240, 320)
    mask[0, 100:140, 120:200] = 1
    fill_img, _, stitch = prepare(image, mask, PrepOptions(target_mp=0.25))
    assert stitch.scale(stitch.pieces[0])[0] > 2  # upscaled for the fill, downscaled (antialiased) on the way back
    out = paste(stitch, fill_img)
    assert (out - image).abs().max() < 2e-3


def test_fill_lands_inside_the_hole():
    image = torch.rand(1, 100, 120, 3)
    mask = torch.zeros(1, 100, 120)
    mask[0, 30:60, 40:90] = 1
    fill_img, fill_mask, stitch = prepare(image, mask, PrepOptions(feather=4, target_mp=0.1))
    out = paste(stitch, torch.ones_like(fill_img) * torch.tensor([1.0, 0.0, 0.0]))
    red = torch.tensor([1.0, 0.0, 0.0]).expand(30, 50, 3)
    assert torch.allclose(out[0, 30:60, 40:90], red, atol=1e-6)  # resampled: equal to float error
    assert 0 < out[0, 28, 60, 1] < image[0, 28, 60, 1] + 1e-6 or image[0, 28, 60, 1] == 0  # ramp
    assert torch.equal(out[0, :20], image[0, :20])  # beyond the feather


def test_fp16_and_rgba_keep_bits_and_alpha():
    image = torch.rand(2, 64, 80, 4).half()
    mask = torch.zeros(2, 64, 80)
    mask[0, 10:30, 10:30] = 1
    mask[1, 40:60, 50:70] = 1
    fill_img, _, stitch = prepare(image, mask, PrepOptions(feather=3, target_mp=0.05))
    assert fill_img.dtype == torch.float16 and fill_img.shape[-1] == 3
    out = paste(stitch, torch.zeros_like(fill_img))
    assert out.dtype == torch.float16 and out.shape == image.shape
    keep = canvas_blend(stitch) == 0
    assert torch.equal(out[keep], image[keep])
    assert torch.equal(out[..., 3], image[..., 3])  # RGB fill of an RGBA image: alpha kept
    assert (out[0, 10:30, 10:30, :3] == 0).all()


def test_fill_of_another_size_is_resized_antialiased():
    image = torch.full((1, 64, 64, 3), 0.5)
    mask = torch.zeros(1, 64, 64)
    mask[0, 16:48, 16:48] = 1
    _, _, stitch = prepare(image, mask, PrepOptions(target_mp=0.0, feather=0, context_px=0))
    cw, ch = stitch.pieces[0].crop_size
    stripes = torch.zeros(1, ch * 4, cw * 4, 3)
    stripes[:, ::2] = 1.0  # one-pixel stripes: aliasing would turn these into bands
    out = paste(stitch, stripes)
    hole = out[0, 20:44, 20:44]
    assert (hole - 0.5).abs().max() < 0.05


def test_fill_counts_map_to_pieces():
    assert fills_per_piece(2, 2, 2) == 1
    assert fills_per_piece(1, 1, 3) == 3
    assert fills_per_piece(2, 2, 6) == 3
    assert fills_per_piece(1, 3, 6) == 2            # 3 regions of one image, 2 fills each
    with pytest.raises(ValueError, match=r"3 fill image\(s\) for 2 source image\(s\)"):
        fills_per_piece(2, 2, 3)
    with pytest.raises(ValueError, match=r"4 fill image\(s\) for 3 crops \(regions\) of 1 source"):
        fills_per_piece(1, 3, 4)


def test_k_fills_per_source_go_to_their_own_source():
    image = torch.rand(2, 40, 40, 3)
    mask = torch.zeros(2, 40, 40)
    mask[0, 5:15, 5:15] = 1
    mask[1, 25:35, 25:35] = 1
    fill_img, _, stitch = prepare(image, mask, PrepOptions(target_mp=0.0, feather=0, multiple=1))
    fills = torch.stack([torch.full(fill_img.shape[1:], v) for v in (0.1, 0.2, 0.3, 0.4)])
    out = paste(stitch, fills)
    assert out.shape[0] == 4
    assert torch.equal(out[1, 5:15, 5:15], torch.full((10, 10, 3), 0.2))
    assert torch.equal(out[1, 25:35, 25:35], image[0, 25:35, 25:35])
    assert torch.equal(out[2, 25:35, 25:35], torch.full((10, 10, 3), 0.3))
    assert torch.equal(out[3, 5:15, 5:15], image[1, 5:15, 5:15])


def test_outpaint_grows_the_canvas_and_fills_only_the_new_area():
    image = torch.rand(1, 50, 60, 3)
    empty = torch.zeros(1, 64, 64)  # LoadImage's mask for an image without alpha
    fill_img, fill_mask, stitch = prepare(image, empty, PrepOptions(pad=(0, 0, 30, 10), feather=0, target_mp=0.0,
                                                                   multiple=1))
    assert stitch.canvas_size == (90, 60)
    out = paste(stitch, torch.ones_like(fill_img))
    assert out.shape == (1, 60, 90, 3)
    assert torch.equal(out[0, :50, :60], image[0])
    assert (out[0, :, 60:] == 1).all() and (out[0, 50:] == 1).all()
    assert fill_mask.sum() > 0


@pytest.mark.parametrize("mask, needle", [
    (torch.zeros(1, 64, 64), "mask editor"),
    (torch.ones(1, 64, 64), "give a mask of the image's size"),
    (torch.zeros(1, 50, 60), "empty"),
    (torch.ones(3, 50, 60), "2 image(s) and 3 masks"),
    (None, "no mask is connected"),
])
def test_bad_masks_say_what_to_do(mask, needle):
    with pytest.raises(ValueError, match="MaskPrep") as e:
        prepare(torch.rand(2, 50, 60, 3), mask, PrepOptions())
    assert needle in str(e.value)


def test_paste_without_stitch_from_image_and_mask():
    image = torch.rand(2, 30, 40, 3)
    mask = torch.zeros(1, 30, 40)
    mask[0, 10:20, 10:30] = 1
    st_ = from_mask(image, mask, feather=0)
    out = paste(st_, torch.zeros(2, 15, 20, 3))  # half size: resized to the image
    assert torch.equal(out[:, 10:20, 10:30], torch.zeros(2, 10, 20, 3))
    assert torch.equal(out[mask.expand(2, -1, -1) == 0], image[mask.expand(2, -1, -1) == 0])
    with pytest.raises(ValueError, match="image's size"):
        from_mask(image, torch.zeros(1, 64, 64))


def test_a_foreign_stitch_is_refused_clearly():
    with pytest.raises(TypeError, match="MaskPrep"):
        paste({"x": [0]}, torch.rand(1, 8, 8, 3))  # e.g. another pack's STITCH dict


def test_large_outputs_live_in_their_own_mapping_as_long_as_the_tensor():
    import gc
    from fluxfill.core.stitch import new_output
    t = new_output((1, 2048, 4096, 3), torch.float32, "cpu")  # 96 MiB: the huge-page path
    t.fill_(0.25)
    gc.collect()
    assert t.is_contiguous() and t.shape == (1, 2048, 4096, 3) and float(t[0, -1, -1, -1]) == 0.25
    image = torch.rand(1, 2048, 4096, 3)
    mask = torch.zeros(1, 2048, 4096)
    mask[0, 100:200, 300:400] = 1
    fill_img, _, stitch = prepare(image, mask, PrepOptions(target_mp=0.0, multiple=1))
    out = paste(stitch, fill_img)
    del stitch, fill_img
    gc.collect()
    assert torch.equal(out, image)
