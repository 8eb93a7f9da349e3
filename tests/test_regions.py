"""Separate regions, context mask, paste limit, colour match and mask hints in the pure core
(core.prep, core.regions, core.stitch, core.color_match, core.mask_hints)."""
import pytest
import torch

from fluxfill.core.prep import PrepOptions, prepare
from fluxfill.core.regions import MAX_REGIONS
from fluxfill.core.stitch import blend_on_canvas, paste


def photo(h=240, w=320, n=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([0.3 + 0.5 * xx, 0.2 + 0.6 * yy, 0.5 - 0.3 * xx * yy], -1)
    return (base[None] + 0.02 * torch.rand(n, h, w, 3, generator=g)).clamp(0, 1)


def holes(h, w, boxes, n=1):
    mask = torch.zeros(n, h, w)
    for x0, y0, x1, y1 in boxes:
        mask[:, y0:y1, x0:x1] = 1
    return mask


def separate(**kw):
    return PrepOptions(regions="separate", **kw)


def test_one_crop_per_region_in_reading_order_and_one_image_back():
    image = photo()
    mask = holes(240, 320, [(250, 20, 290, 60), (20, 30, 60, 70), (130, 170, 170, 210)])
    fill, fill_mask, stitch = prepare(image, mask, separate())
    assert fill.shape[0] == fill_mask.shape[0] == len(stitch.pieces) == 3
    # reading order: the two top holes overlap in height, so they are one row, read left to right
    centres = [(p.origin[0] + p.crop_size[0] / 2, p.origin[1] + p.crop_size[1] / 2) for p in stitch.pieces]
    assert centres[0][0] < 100 < 200 < centres[1][0] and centres[2][1] > 150
    out = paste(stitch, torch.zeros_like(fill))
    assert out.shape == image.shape
    keep = blend_on_canvas(stitch)[0] == 0
    assert torch.equal(out[0][keep], image[0][keep])
    for x0, y0, x1, y1 in [(250, 20, 290, 60), (20, 30, 60, 70), (130, 170, 170, 210)]:
        assert (out[0, y0:y1, x0:x1] == 0).all()


def test_regions_share_the_images_target_mp():
    image = photo(600, 800)
    mask = holes(600, 800, [(50, 50, 150, 150), (600, 400, 700, 500), (50, 450, 150, 550), (600, 50, 700, 150)])
    fill, _, stitch = prepare(image, mask, separate(target_mp=1.0))
    assert fill.shape[0] == 4
    assert 4 * fill.shape[1] * fill.shape[2] == pytest.approx(1024 * 1024, rel=0.1)
    assert all(stitch.scale(p)[0] > 1.5 for p in stitch.pieces)            # each region gets more detail
    together, _, tstitch = prepare(image, mask, PrepOptions(target_mp=1.0))
    assert tstitch.scale(tstitch.pieces[0])[0] < stitch.scale(stitch.pieces[0])[0]


@pytest.mark.parametrize("apart, regions", [(60, 1), (70, 2)])
def test_parts_closer_than_region_gap_are_one_region(apart, regions):
    mask = holes(200, 400, [(50, 50, 100, 150), (100 + apart, 50, 200 + apart, 150)])
    _, _, stitch = prepare(photo(200, 400), mask, separate(feather=0, region_gap=64))
    assert len(stitch.pieces) == regions


def test_diagonal_distance_counts():
    # the nearest pixels 45 px apart in x and in y: 63.6 px, closer than 64; 51 and 51: 72, not
    for step, regions in ((44, 1), (50, 2)):
        mask = holes(300, 300, [(20, 20, 80, 80), (80 + step, 80 + step, 140 + step, 140 + step)])
        _, _, stitch = prepare(photo(300, 300), mask, separate(feather=0, region_gap=64))
        assert len(stitch.pieces) == regions


def test_grow_joins_parts_before_regions_are_counted():
    mask = holes(200, 300, [(50, 50, 100, 150), (120, 50, 170, 150)])    # 20 px apart
    assert len(prepare(photo(200, 300), mask, separate(region_gap=0, feather=0))[2].pieces) == 2
    assert len(prepare(photo(200, 300), mask, separate(region_gap=0, feather=0, grow=12))[2].pieces) == 1


def test_a_dot_inside_a_ring_is_one_region_when_holes_are_filled():
    mask = holes(400, 400, [(50, 50, 350, 70), (50, 330, 350, 350), (50, 50, 70, 350), (330, 50, 350, 350)])
    mask[0, 195:205, 195:205] = 1                                            # far (>64 px) from the ring
    assert len(prepare(photo(400, 400), mask, separate(feather=0))[2].pieces) == 2
    _, _, stitch = prepare(photo(400, 400), mask, separate(feather=0, fill_holes=True))
    assert len(stitch.pieces) == 1 and bool((stitch.pieces[0].fill_mask > 0).sum() > 300 * 300 * 0.9)


def test_too_many_regions_is_an_error_naming_the_fix():
    boxes = [(10 + 80 * (i % 6), 10 + 80 * (i // 6), 20 + 80 * (i % 6), 20 + 80 * (i // 6)) for i in range(18)]
    mask = holes(230, 430, boxes)
    with pytest.raises(ValueError, match=rf"more than {MAX_REGIONS} separate regions.*raise region_gap.*together"):
        prepare(photo(230, 430), mask, separate(feather=0))
    speckles = (torch.rand(1, 1200, 1200, generator=torch.Generator().manual_seed(0)) > 0.9999).float()
    with pytest.raises(ValueError, match="more than 16 separate regions"):   # ~150 specks far apart
        prepare(photo(1200, 1200), speckles, separate(feather=0))
    assert len(prepare(photo(230, 430), mask, separate(feather=0, region_gap=80))[2].pieces) == 1


def test_one_part_separate_equals_together():
    image = photo(200, 300, n=2)
    mask = holes(200, 300, [(100, 60, 180, 120)])
    a = prepare(image, mask, separate())
    b = prepare(image, mask, PrepOptions())
    assert torch.equal(a[0], b[0])
    assert [(p.source, p.origin, p.crop_size) for p in a[2].pieces] == [(p.source, p.origin, p.crop_size)
                                                                        for p in b[2].pieces]
    assert torch.equal(paste(a[2], a[0]), paste(b[2], b[0]))


def test_one_mask_for_a_batch_gives_every_image_its_regions_image_major():
    image = photo(200, 300, n=2)
    mask = holes(200, 300, [(20, 20, 60, 60), (200, 120, 260, 180)])
    fill, _, stitch = prepare(image, mask, separate())
    assert [p.source for p in stitch.pieces] == [0, 0, 1, 1]
    out = paste(stitch, torch.stack([torch.full(fill.shape[1:], v) for v in (0.1, 0.2, 0.3, 0.4)]))
    assert out.shape[0] == 2
    assert torch.allclose(out[0, 30:50, 30:50], torch.tensor(0.1)) and torch.allclose(out[1, 130:170, 210:250],
                                                                                       torch.tensor(0.4))
    two = paste(stitch, torch.rand(8, *fill.shape[1:]))                   # 2 fills per crop: 2 per image
    assert two.shape[0] == 4


def test_outpaint_strips_are_a_region_of_their_own():
    mask = holes(200, 300, [(20, 20, 60, 60)])
    fill, _, stitch = prepare(photo(200, 300), mask, separate(pad=(0, 0, 64, 0), feather=0))
    assert len(stitch.pieces) == 2 and stitch.canvas_size == (364, 200)
    out = paste(stitch, torch.ones_like(fill))          # resampled: 1 to float error
    assert torch.allclose(out[0, :, 300:], torch.tensor(1.0)) and torch.allclose(out[0, 20:60, 20:60],
                                                                                  torch.tensor(1.0))


def test_context_mask_widens_the_crop_but_is_not_filled():
    image = photo(300, 400)
    mask = holes(300, 400, [(300, 100, 340, 140)])
    context = holes(300, 400, [(40, 100, 80, 140)])
    _, fill_mask, plain = prepare(image, mask, PrepOptions(target_mp=0.0))
    _, fill_mask_ctx, wide = prepare(image, mask, PrepOptions(target_mp=0.0), context=context)
    (x, _), (cw, _) = wide.pieces[0].origin, wide.pieces[0].crop_size
    assert x <= 40 and x + cw >= 340 and cw > plain.pieces[0].crop_size[0]
    assert fill_mask.sum() == fill_mask_ctx.sum()                            # the context is not filled
    mask2 = holes(300, 400, [(300, 100, 340, 140), (40, 250, 80, 290)])
    context2 = holes(300, 400, [(200, 100, 240, 140)])                      # 60 px from the first hole
    _, _, stitch = prepare(image, mask2, separate(), context=context2)
    first, second = stitch.pieces
    assert first.origin[0] <= 200 and first.origin[0] + first.crop_size[0] >= 340   # it went to the nearest
    assert second.origin[1] > 140                                                # and to that one only
    with pytest.raises(ValueError, match="context_mask"):
        prepare(image, mask, PrepOptions(), context=torch.zeros(1, 64, 64))


def test_paste_back_mask_limits_the_paste_to_less_than_was_filled():
    image = photo()
    mask = holes(240, 320, [(100, 80, 200, 160)])
    fill, _, stitch = prepare(image, mask, PrepOptions(feather=0))
    limit = torch.zeros(1, 240, 320)
    limit[0, :, :150] = 1
    out = paste(stitch, torch.zeros_like(fill), limit=limit)
    assert (out[0, 80:160, 100:150] == 0).all()
    assert torch.equal(out[0, 80:160, 150:200], image[0, 80:160, 150:200])
    with pytest.raises(ValueError, match="mask .* limits where the fill is pasted"):
        paste(stitch, fill, limit=torch.ones(1, 64, 64))


def cast_case(cast):
    """An image, a one-hole STITCH and a fill that is the original crop with a known colour cast."""
    image = photo(256, 256)
    mask = holes(256, 256, [(96, 96, 160, 160)])
    fill, _, stitch = prepare(image, mask, PrepOptions(target_mp=0.0, feather=6))
    return image, stitch, (fill + cast(fill)).clamp(0, 1)


@pytest.mark.parametrize("cast", [
    lambda f: torch.tensor([0.12, -0.05, 0.08]),                          # a flat cast
    lambda f: 0.15 * f,                                                   # a gain: different on dark and bright
    lambda f: torch.linspace(-0.1, 0.1, f.shape[2]).view(1, 1, -1, 1),    # a left-to-right gradient
])
def test_colour_match_removes_a_known_cast_inside_the_hole_and_at_the_seam(cast):
    image, stitch, fill = cast_case(cast)
    plain = paste(stitch, fill)
    matched = paste(stitch, fill, color_match=1.0)
    hole, seam = (slice(100, 156), slice(100, 156)), (slice(92, 164), slice(94, 98))
    for area in (hole, seam):
        before = (plain[0][area] - image[0][area]).abs().mean()
        after = (matched[0][area] - image[0][area]).abs().mean()
        assert after < 0.3 * before, (before, after)
    keep = blend_on_canvas(stitch)[0] == 0
    assert torch.equal(matched[0][keep], image[0][keep])
    half = paste(stitch, fill, color_match=0.5)
    assert (matched[0][hole] - image[0][hole]).abs().mean() < (half[0][hole] - image[0][hole]).abs().mean() < \
        (plain[0][hole] - image[0][hole]).abs().mean()


def test_colour_match_at_zero_is_todays_paste():
    image, stitch, fill = cast_case(lambda f: 0.1)
    assert torch.equal(paste(stitch, fill, color_match=0.0), paste(stitch, fill))


def test_colour_match_follows_a_two_tone_border():
    image = torch.zeros(1, 200, 200, 3)
    image[:, :, :100] = 0.2                                                # dark left, bright right
    image[:, :, 100:] = 0.8
    mask = holes(200, 200, [(70, 70, 130, 130)])
    fill, _, stitch = prepare(image, mask, PrepOptions(target_mp=0.0, feather=4))
    drifted = fill * 0.8                                                   # darker by 20%: -0.04 left, -0.16 right
    matched = paste(stitch, drifted, color_match=1.0)
    left, right = matched[0, 72:128, 70:80], matched[0, 72:128, 120:130]   # the hole's left and right edges
    assert (left - 0.2).abs().mean() < 0.02 and (right - 0.8).abs().mean() < 0.03
    offset = (image[0] - paste(stitch, drifted)[0])[70:130, 70:130].mean()   # one global offset would leave
    assert (left - 0.2).abs().mean() < 0.3 * abs(0.2 - (0.16 + offset))    # most of the error on the dark side


def hints_of(mask, **kw):
    said = []
    prepare(photo(120, 160), mask, PrepOptions(**kw), on_hint=said.append)
    return said


def test_hints_name_the_input_that_fixes_the_mask():
    hole = holes(120, 160, [(40, 40, 100, 90)])
    assert hints_of(hole) == []
    (soft,) = hints_of(hole * 0.6)
    assert "never fully opaque (highest value 0.6)" in soft and "set threshold to 0.60" in soft
    assert hints_of(hole * 0.6, threshold=0.6) == []                      # the hint's fix works
    small = holes(120, 160, [(40, 40, 80, 70)])
    (inverted,) = hints_of(1 - small)
    assert "covers 94%" in inverted and "turn on invert" in inverted
    assert "turn invert off" in hints_of(small, invert=True)[0]
    (empty,) = hints_of(torch.zeros(1, 120, 160), pad=(0, 0, 32, 0))
    assert "only the outpaint padding" in empty and "fine" in empty
    with pytest.raises(ValueError, match="empty"):                         # nothing to fill stays an error
        hints_of(torch.zeros(1, 120, 160))
    batch = holes(120, 160, [(40, 40, 100, 90)], n=3) * torch.tensor([1.0, 0.5, 0.7]).view(3, 1, 1)
    said = []
    prepare(photo(120, 160, n=3), batch, PrepOptions(), on_hint=said.append)
    assert said and "images 1, 2" in said[0] and "0.5 to 0.7" in said[0]


def test_regions_that_share_a_small_target_mp_get_a_hint():
    boxes = [(20 + 110 * (i % 4), 20 + 150 * (i // 4), 60 + 110 * (i % 4), 60 + 150 * (i // 4)) for i in range(8)]
    said = []
    fill, _, _ = prepare(photo(300, 460), holes(300, 460, boxes), separate(), on_hint=said.append)
    assert fill.shape[0] == 8
    assert said == [f"8 regions share target_mp 1: each is filled at {fill.shape[2]}x{fill.shape[1]}; raise "
                    f"target_mp for more detail (8 gives each region about 1 megapixel)."]
    said.clear()
    prepare(photo(300, 460), holes(300, 460, boxes), separate(target_mp=8.0), on_hint=said.append)
    assert said == []
