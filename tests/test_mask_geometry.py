"""Crop geometry (core.crop_geometry): pure integer arithmetic, property-tested."""
import math

from hypothesis import assume, given, settings, strategies as st

from fluxfill.core.crop_geometry import MEGAPIXEL, output_size, plan_crop, side_cap

SETTINGS = settings(max_examples=200, deadline=None)


@st.composite
def scenes(draw):
    cw, ch = draw(st.integers(16, 5000)), draw(st.integers(16, 5000))
    n = draw(st.integers(1, 4))
    boxes = []
    for _ in range(n):
        if draw(st.booleans()) and n > 1 and draw(st.booleans()):
            boxes.append(None)
            continue
        x0, y0 = draw(st.integers(0, cw - 1)), draw(st.integers(0, ch - 1))
        boxes.append((x0, y0, draw(st.integers(x0 + 1, cw)), draw(st.integers(y0 + 1, ch))))
    opts = dict(crop=draw(st.booleans()), context_factor=draw(st.floats(1.0, 3.0)),
                context_px=draw(st.integers(0, 200)), target_mp=draw(st.sampled_from([0.0, 0.25, 1.0, 2.0])),
                multiple=draw(st.sampled_from([1, 8, 16, 64])), max_side=draw(st.integers(64, 4096)))
    return cw, ch, boxes, opts


@SETTINGS
@given(scenes())
def test_boxes_hold_the_mask_and_stay_in_the_canvas(scene):
    cw, ch, boxes, opts = scene
    plan = plan_crop(cw, ch, boxes, **opts)
    assert len(plan.origins) == len(boxes)
    assert 0 < plan.crop_w <= cw and 0 < plan.crop_h <= ch
    for box, (x0, y0, x1, y1) in zip(boxes, plan.boxes):
        assert 0 <= x0 and 0 <= y0 and x1 <= cw and y1 <= ch
        if box is not None:
            assert x0 <= box[0] and y0 <= box[1] and box[2] <= x1 and box[3] <= y1
    if not opts["crop"]:
        assert (plan.crop_w, plan.crop_h) == (cw, ch) and set(plan.origins) == {(0, 0)}


@SETTINGS
@given(scenes())
def test_output_size_is_a_multiple_within_max_side(scene):
    cw, ch, boxes, opts = scene
    plan = plan_crop(cw, ch, boxes, **opts)
    m, cap = opts["multiple"], side_cap(opts["max_side"], opts["multiple"])
    assert plan.out_w % m == 0 and plan.out_h % m == 0
    assert plan.out_w <= cap and plan.out_h <= cap


@SETTINGS
@given(scenes())
def test_one_scale_for_both_axes_when_the_canvas_allows(scene):
    cw, ch, boxes, opts = scene
    plan = plan_crop(cw, ch, boxes, **opts)
    sx, sy = plan.scale
    # the crop is widened to the fill's aspect; only a canvas edge (or rounding) can stop that
    if opts["crop"] and plan.crop_w < cw and plan.crop_h < ch:
        assert abs(sx - sy) <= max(sx, sy) * (1.0 / min(plan.crop_w, plan.crop_h) + 1e-9) + 1e-9


@given(st.integers(16, 4000), st.integers(16, 4000), st.sampled_from([0.5, 1.0, 2.0]))
@SETTINGS
def test_target_megapixels_is_met_unless_capped(w, h, mp):
    ow, oh = output_size(w, h, mp, 16, 100000)
    assume(min(w, h) * math.sqrt(mp * MEGAPIXEL / (w * h)) >= 64)  # rounding dominates tiny sides
    assert abs(ow * oh / (mp * MEGAPIXEL) - 1) < 0.3
    assert abs(ow / oh - w / h) / (w / h) < 0.3


def test_native_size_gives_scale_one():
    plan = plan_crop(1000, 800, [(100, 100, 300, 250)], target_mp=0.0, multiple=16,
                     context_factor=1.0, context_px=10)
    assert plan.scale == (1.0, 1.0) and plan.crop_w % 16 == 0
    assert plan.boxes[0][0] <= 100 and plan.boxes[0][2] >= 300


def test_defaults_for_a_512_hole():
    plan = plan_crop(4096, 4096, [(1000, 1000, 1512, 1512)])
    assert (plan.out_w, plan.out_h) == (1024, 1024)
    assert plan.crop_w == plan.crop_h == math.ceil(512 * 1.2) + 64
    x0, y0, x1, y1 = plan.boxes[0]
    assert x0 < 1000 and x1 > 1512 and abs((x0 + x1) / 2 - 1256) <= 1


def test_max_side_serves_wavespeed():
    ow, oh = output_size(4000, 1000, 1.0, 16, 1536)
    assert ow == 1536 and oh % 16 == 0 and oh < ow
