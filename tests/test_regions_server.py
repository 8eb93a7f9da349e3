"""Several holes in one photo, end to end in a REAL ComfyUI server (the host under test):
LoadImage (a 2048x1536 photo whose alpha marks 3 separate holes) -> MaskPrep(regions separate) ->
FalFill / WaveSpeedFill (loopback emulators) or FluxFillLocal (tiny model) -> PasteBack.

3 crops go out, each much smaller than the one crop around all three (together); one image comes
back at the original size; every pixel away from the holes is bit-identical; the billed
megapixels are the sum of the three. MaskPrep's hints reach the node and the server log."""
import json

import numpy as np
import pytest
from PIL import Image

from comfy_host import ComfyServer, make_base_dir
from emulators import FalEmulator, WaveSpeedEmulator
from test_hosted_nodes_graphs import FAL_KEY, WS_KEY, assert_ok, emulator_env, listen, widget_defaults

pytestmark = pytest.mark.timeout(300)
W, H = 2048, 1536
HOLES = [(200, 100, 400, 300), (1500, 600, 1800, 760), (300, 900, 450, 1100)]   # x0, y0, x1, y1
FEATHER = 8


def photo() -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 [H, W, 3], alpha uint8 [H, W]): a smooth photo-like image, holes transparent."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([0.5 + 0.4 * np.sin(xx / 300), 0.5 + 0.4 * np.cos(yy / 250),
                    0.4 + 0.2 * np.sin((xx + yy) / 500)], -1)
    rgb += np.random.default_rng(0).normal(0, 0.02, rgb.shape)
    alpha = np.full((H, W), 255, np.uint8)
    for x0, y0, x1, y1 in HOLES:
        alpha[y0:y1, x0:x1] = 0
    return (rgb.clip(0, 1) * 255).round().astype(np.uint8), alpha


@pytest.fixture(scope="module")
def emus():
    with FalEmulator(FAL_KEY, queue_seconds=0.0, run_seconds=0.1) as fal, \
            WaveSpeedEmulator(WS_KEY, queue_seconds=0.0, run_seconds=0.1) as ws:
        yield fal, ws


@pytest.fixture(scope="module")
def server(emus, tmp_path_factory):
    srv = ComfyServer(make_base_dir(tmp_path_factory.mktemp("regions")), env=emulator_env(*emus)).start()
    rgb, alpha = photo()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(srv.base / "input" / "three_holes.png")
    soft = alpha.copy()
    soft[alpha == 0] = 128                                   # a half-opaque brush: mask 0.5 at most
    Image.fromarray(np.dstack([rgb, soft]), "RGBA").save(srv.base / "input" / "soft_holes.png")
    yield srv
    srv.stop()


def fill_node(server, kind: str) -> dict:
    inputs = widget_defaults(server, kind)
    inputs.update(image=["2", 0], mask=["2", 1], prompt="a window", seed=5)
    if kind == "FalFill":
        inputs["endpoint"] = "fal-ai/flux-lora/inpainting"      # a published price per megapixel
    if kind == "FluxFillLocal":
        inputs.update(model=["9", 0], clip=["9", 1], vae=["9", 2], steps=2)
    return {"class_type": kind, "inputs": inputs}


def holes_graph(server, kind: str, regions: str = "separate", image: str = "three_holes.png", **prep) -> dict:
    mask_prep = widget_defaults(server, "MaskPrep")
    mask_prep.update(image=["1", 0], mask=["1", 1], regions=regions, feather=FEATHER, **prep)
    g = {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
         "2": {"class_type": "MaskPrep", "inputs": mask_prep},
         "3": fill_node(server, kind),
         "4": {"class_type": "PasteBack", "inputs": {"fill": ["3", 0], "feather": -1, "stitch": ["2", 2]}},
         "5": {"class_type": "FluxFillTestSaveTensor", "inputs": {"name": f"out_{kind}_{regions}", "images": ["4", 0]}},
         "6": {"class_type": "FluxFillTestSaveTensor", "inputs": {"name": f"crops_{kind}_{regions}",
                                                                  "images": ["2", 0]}},
         "7": {"class_type": "FluxFillTestSaveText", "inputs": {"text": ["3", 1], "name": f"report_{kind}_{regions}"}}}
    if kind == "FluxFillLocal":
        g["9"] = {"class_type": "FluxFillTestTinyModels", "inputs": {"seed": 0, "variant": "fill"}}
    return g


def run(server, g):
    h = server.run(g, timeout=240)
    assert_ok(server, h)
    out = server.base / "output"
    kind, regions = g["3"]["class_type"], g["2"]["inputs"]["regions"]
    return (np.load(out / f"out_{kind}_{regions}.npy"), np.load(out / f"crops_{kind}_{regions}.npy"),
            json.loads((out / f"report_{kind}_{regions}.txt").read_text()))


def away_from_holes(margin: int) -> np.ndarray:
    far = np.ones((H, W), bool)
    for x0, y0, x1, y1 in HOLES:
        far[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin] = False
    return far


def assert_pasted_back(out: np.ndarray):
    rgb, _ = photo()
    original = rgb.astype(np.float32) / 255.0
    assert out.shape == (1, H, W, 3)                                   # one image, the original size
    far = away_from_holes(FEATHER + 2)
    assert np.array_equal(out[0][far], original[far])                  # bit-identical outside every blend
    for x0, y0, x1, y1 in HOLES:                                       # every hole was filled
        assert not np.array_equal(out[0, y0:y1, x0:x1], original[y0:y1, x0:x1])


@pytest.mark.parametrize("kind", ["FalFill", "WaveSpeedFill", "FluxFillLocal"])
def test_three_holes_three_small_crops_one_image_back(server, emus, kind):
    emu = {"FalFill": emus[0], "WaveSpeedFill": emus[1]}.get(kind)
    n0 = len(emu.requests) if emu else 0
    billed0 = len(emu.billed) if emu else 0
    out, crops, report = run(server, holes_graph(server, kind))
    assert crops.shape[0] == 3                                         # 3 crops went out
    assert_pasted_back(out)
    _, together, _ = run(server, holes_graph(server, kind, regions="together"))
    assert together.shape[0] == 1
    each, whole = crops.shape[1] * crops.shape[2], together.shape[1] * together.shape[2]
    assert each * 2.5 < whole                                          # each much smaller than the one crop
    assert len(report["results"]) == 3
    if emu is None:
        return
    sent = emu.requests[n0:]
    assert len(sent) == 4 and [r["image_size"] for r in sent[:3]] == [tuple(crops.shape[2:0:-1])] * 3
    billed = emu.billed[billed0:billed0 + 3]
    if kind == "FalFill":                                              # billed megapixels: the sum of the three
        assert sum(b["megapixels"] for b in billed) == pytest.approx(3 * each / 2**20, abs=1e-5)
        estimate = report["estimate_usd"]
        assert estimate == pytest.approx(sum(b["usd"] for b in billed), abs=1e-4)
    else:
        assert len(billed) == 3


def test_holes_closer_than_region_gap_are_one_region(server):
    _, crops, _ = run(server, holes_graph(server, "FalFill", region_gap=800))
    assert crops.shape[0] == 2                      # holes 0 and 2 are 600 px apart, hole 1 over 1000
    _, crops, _ = run(server, holes_graph(server, "FalFill", region_gap=0))
    assert crops.shape[0] == 3


def test_a_half_opaque_mask_gets_a_hint_on_the_node_and_in_the_log(server):
    texts, _, stop = listen(server)
    try:
        out, crops, _ = run(server, holes_graph(server, "FalFill", image="soft_holes.png"))
    finally:
        stop()
    hints = [text for node, text in texts if node == "2"]
    # LoadImage's mask is 1 - 128/255 = 0.498 there; the suggested threshold is at most that
    assert any("never fully opaque (highest value 0.498)" in t and "set threshold to 0.49" in t for t in hints), texts
    assert "never fully opaque (highest value 0.498)" in server.log_text()
    assert crops.shape[0] == 3                                         # a hint never stops the run
    texts, _, stop = listen(server)
    try:
        run(server, holes_graph(server, "FalFill", image="soft_holes.png", threshold=0.49))
    finally:
        stop()
    assert not [t for node, t in texts if node == "2" and "never fully opaque" in t]   # threshold fixed it
