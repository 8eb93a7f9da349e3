"""FalFill / WaveSpeedFill inside a REAL ComfyUI server, against the loopback emulators.

One server per module (env: keys + base URLs pointing at the emulators started in this
process). Graphs are posted in API format; the emulators record exactly what arrived."""
import json
import time
from pathlib import Path

import numpy as np
import pytest

from comfy_host import ComfyServer, make_base_dir, was_interrupted
from emulators import FalEmulator, WaveSpeedEmulator, bomb_png
from test_hosted_nodes_graphs import (FAL_KEY, WS_KEY, assert_ok, emulator_env, error_text, graph, listen,
                                      lora_node, outputs, pattern_node, payloads)

pytestmark = pytest.mark.timeout(120)
HOSTED_LORA = "https://example.com/loras/door.safetensors"


@pytest.fixture(scope="module")
def emus():
    with FalEmulator(FAL_KEY, queue_seconds=0.0, run_seconds=0.1) as fal, \
            WaveSpeedEmulator(WS_KEY, queue_seconds=0.0, run_seconds=0.1) as ws:
        yield fal, ws


@pytest.fixture(scope="module")
def server(emus, tmp_path_factory):
    fal, ws = emus
    srv = ComfyServer(make_base_dir(tmp_path_factory.mktemp("hosted")), env=emulator_env(fal, ws)).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def fresh(emus):
    for emu in emus:
        emu.clear_faults()
        emu.queue_seconds, emu.run_seconds = 0.0, 0.1
    yield


@pytest.fixture
def fal(emus):
    return emus[0]


@pytest.fixture
def ws(emus):
    return emus[1]


def run_ok(server, g):
    h = server.run(g, timeout=60)
    assert_ok(server, h)
    return h


# ---------------------------------------------------------------- payloads per endpoint
def test_flux_lora_fill_payload(server, fal):
    n0 = len(fal.requests)
    extra = {"5": pattern_node(seed=11), "6": lora_node([[HOSTED_LORA, 0.8, 1.0]])}
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-lora-fill", steps=20, seed=42,
                    acceleration="regular", paste_back=False, resize_to_original=True,
                    in_context_fill=True, strength=0.5, safety_tolerance="5",
                    fill_image=["5", 0], lora_stack=["6", 0], extra=extra)
    run_ok(server, g)
    (p,) = payloads(fal, n0)
    assert set(p) == {"image_url", "mask_url", "prompt", "seed", "num_images", "image_size",
                      "num_inference_steps", "loras", "guidance_scale", "sync_mode",
                      "enable_safety_checker", "output_format", "acceleration", "paste_back",
                      "fill_image", "resize_to_original"}
    assert p["guidance_scale"] == 30 and p["num_inference_steps"] == 20 and p["seed"] == 42
    assert p["image_size"] == {"width": 64, "height": 64} and p["output_format"] == "png"
    assert p["loras"] == [{"path": HOSTED_LORA, "scale": 0.8}]
    assert p["acceleration"] == "regular" and p["paste_back"] is False and p["resize_to_original"] is True
    assert p["fill_image"]["in_context_fill"] is True and p["fill_image"]["use_prompt"] is False
    assert p["fill_image"]["fill_image_url"].startswith("data:image/png;base64,")
    assert p["image_url"].startswith("data:image/png") and p["mask_url"].startswith("data:image/png")
    images, report = outputs(server, name)
    assert images.shape == (1, 64, 64, 3)
    assert report["provider"] == "fal" and report["endpoint"] == "fal-ai/flux-lora-fill"
    assert report["request_ids"] == [fal.requests[n0]["request_id"]]
    ignored = " ".join(report["ignored"])
    assert "strength=0.5" in ignored and "safety_tolerance='5'" in ignored


def _data_uri_image(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def test_flux_lora_inpainting_payload(server, fal):
    n0 = len(fal.requests)
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting", strength=0.6,
                    image_size="custom", width=96, height=80, output_format="jpeg",
                    enable_safety_checker=False, sync_mode=True, paste_back=False, enhance_prompt=True,
                    lora_stack=["6", 0], extra={"6": lora_node([[HOSTED_LORA, 0.7, 1.0]])})
    run_ok(server, g)
    (p,) = payloads(fal, n0)
    assert set(p) == {"image_url", "mask_url", "prompt", "seed", "num_images", "image_size",
                      "num_inference_steps", "loras", "guidance_scale", "sync_mode",
                      "enable_safety_checker", "output_format", "acceleration", "strength"}
    assert p["guidance_scale"] == 3.5 and p["num_inference_steps"] == 28 and p["strength"] == 0.6
    assert p["image_size"] == {"width": 96, "height": 80} and p["output_format"] == "jpeg"
    assert p["sync_mode"] is True and p["enable_safety_checker"] is False
    images, report = outputs(server, name)
    assert images.shape == (1, 80, 96, 3)
    ignored = " ".join(report["ignored"])
    assert "paste_back=False" in ignored and "enhance_prompt=True" in ignored
    assert report["cost_usd"] == pytest.approx(0.035 * 96 * 80 / 1024 ** 2, abs=1e-6)
    assert report["estimate_usd"] == pytest.approx(report["cost_usd"], abs=1e-6)


def test_flux_pro_fill_payload(server, fal):
    n0 = len(fal.requests)
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-pro/v1/fill", safety_tolerance="5",
                    enhance_prompt=True, steps=20, guidance=5.0, image_size="square", seed=77,
                    lora_stack=["6", 0], extra={"6": lora_node([[HOSTED_LORA, 0.7, 1.0]])})
    run_ok(server, g)
    (p,) = payloads(fal, n0)
    assert set(p) == {"image_url", "mask_url", "prompt", "seed", "num_images", "sync_mode",
                      "output_format", "safety_tolerance", "enhance_prompt"}
    assert p["safety_tolerance"] == "5" and p["enhance_prompt"] is True and p["seed"] == 77
    images, report = outputs(server, name)
    assert images.shape == (1, 64, 64, 3)
    ignored = " ".join(report["ignored"])
    for text in ("steps=20", "guidance=5.0", "image_size='square'", "lora_stack"):
        assert text in ignored
    assert report["cost_usd"] == pytest.approx(0.05)   # one image, rounded up to 1 MP


def test_flux_general_payload_controlnets_and_layer_scales(server, fal):
    n0 = len(fal.requests)
    cn = [{"path": "XLabs-AI/flux-controlnet-canny", "control_image_url": "$control_image",
           "conditioning_scale": 0.6}]
    un = [{"path": "InstantX/FLUX.1-dev-Controlnet-Union", "controls": [
        {"control_image_url": "$image", "control_mode": "tile"},
        {"control_image_url": "$mask", "control_mode": "gray", "conditioning_scale": 0.3}]}]
    layers = {"1": {"transformer.single_transformer_blocks.0": 0.5}}
    extra = {"5": pattern_node(seed=11), "6": lora_node([[HOSTED_LORA, 0.8, 1.0], ["owner/lora-two", 1.1, 1.0]]),
             "7": {"class_type": "FluxFillTestSaveTensor", "inputs": {"name": "gen_mask", "mask": ["1", 1]}}}
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-general/inpainting", num_images=2,
                    strength=0.7, guidance=4.0, controlnets=json.dumps(cn), controlnet_unions=json.dumps(un),
                    lora_layer_scales=json.dumps(layers), control_image=["5", 0], lora_stack=["6", 0],
                    output_format="default", extra=extra)
    run_ok(server, g)
    (p,) = payloads(fal, n0)
    assert set(p) == {"image_url", "mask_url", "prompt", "seed", "num_images", "image_size",
                      "num_inference_steps", "loras", "controlnets", "controlnet_unions", "guidance_scale",
                      "sync_mode", "enable_safety_checker", "strength", "output_format"}
    assert p["output_format"] == "png"           # "default": the endpoint's own
    assert p["loras"] == [{"path": HOSTED_LORA, "scale": layers["1"]},
                          {"path": "owner/lora-two", "scale": 1.1}]
    assert p["guidance_scale"] == 4.0 and p["strength"] == 0.7 and p["num_images"] == 2
    control = _data_uri_image(p["controlnets"][0]["control_image_url"])
    source = _data_uri_image(p["image_url"])
    assert p["controlnets"][0]["conditioning_scale"] == 0.6 and p["controlnets"][0]["path"] == cn[0]["path"]
    assert control.shape == source.shape and not np.array_equal(control, source)
    tile, gray = p["controlnet_unions"][0]["controls"]
    assert np.array_equal(_data_uri_image(tile["control_image_url"]), source)
    mask = np.load(server.base / "output" / "gen_mask.npy")[0]
    assert np.array_equal(_data_uri_image(gray["control_image_url"])[..., 0], (mask * 255).round().astype(np.uint8))
    assert gray["control_mode"] == "gray" and gray["conditioning_scale"] == 0.3
    images, report = outputs(server, name)
    assert images.shape == (2, 64, 64, 3) and report["ignored"] == []


@pytest.mark.parametrize("inputs,text", [
    ({"endpoint": "fal-ai/flux-lora-fill", "guidance": 10.0}, "guidance_scale must be between 28 and 35, got 10"),
    ({"endpoint": "fal-ai/flux-lora/inpainting", "strength": 0.0}, "strength must be between 0.01 and 1, got 0"),
    ({"endpoint": "fal-ai/flux-pro/v1/fill", "prompt": " "}, "prompt must not be empty"),
    ({"endpoint": "fal-ai/flux-general/inpainting", "controlnets": "[{path: 1}"}, "controlnets is not valid JSON"),
    ({"endpoint": "fal-ai/flux-general/inpainting",
      "controlnets": '[{"path": "x/y", "control_image_url": "$control_image"}]'}, "no control_image is connected"),
    ({"endpoint": "fal-ai/flux-general/inpainting", "lora_layer_scales": '{"3": {"a": 1}}'},
     "names no LoRA of lora_stack"),
    ({"endpoint": "fal-ai/flux-lora-fill", "lora_stack": ["6", 0]}, "local file only"),
])
def test_bad_values_rejected_before_sending(server, fal, inputs, text):
    calls = fal.count()
    g, _ = graph(server, "FalFill", extra={"6": lora_node([["door.safetensors", 1.0, 1.0]])}, **inputs)
    h = server.run(g, timeout=60)
    msg = error_text(h)
    assert text in msg and "FalFill" in msg
    assert fal.count() == calls          # nothing reached the provider


def _saver(name: str, src: list, kind: str = "images") -> dict:
    return {"class_type": "FluxFillTestSaveTensor", "inputs": {"name": name, kind: src}}


@pytest.mark.parametrize("node", ["FalFill", "WaveSpeedFill"])
def test_batch_of_two_times_num_images_two_in_order(server, emus, node):
    emu = emus[0] if node == "FalFill" else emus[1]
    n0 = len(emu.requests)
    emu.next_job(run_seconds=0.8)     # the first submission finishes last
    emu.next_job(run_seconds=0.05)
    side = 64 if node == "FalFill" else 256
    kw = {"endpoint": "fal-ai/flux-lora/inpainting"} if node == "FalFill" else {}
    g, name = graph(server, node, w=side, h=side, batch=2, num_images=2, pattern_seed=5,
                    extra={"7": _saver("batch_in_" + node, ["1", 0]),
                           "8": _saver("batch_mask_" + node, ["1", 1], "mask")},
                    **kw)
    run_ok(server, g)
    assert [p["num_images"] for p in payloads(emu, n0)] == [2, 2]
    images, report = outputs(server, name)
    src = np.load(server.base / "output" / f"batch_in_{node}.npy")
    keep = np.load(server.base / "output" / f"batch_mask_{node}.npy")[0] < 0.5
    assert images.shape == (4, side, side, 3)
    for k in range(4):   # outside the mask each output is its own source image (PNG-exact)
        assert np.abs(images[k][keep] - src[k // 2][keep]).max() <= 0.5 / 255 + 1e-6, k
    assert not np.allclose(src[0][keep], src[1][keep], atol=0.05)
    ids = {r["request_id"]: r for r in emu.requests[n0:]}
    assert report["request_ids"] == [r["request_id"] for r in report["results"]]
    assert set(report["request_ids"]) == set(ids) and len(ids) == 2
    assert [r["index"] for r in report["results"]] == [0, 1]
    assert len(emu.billed) >= 2


# ---------------------------------------------------------------- transport faults
FAL_FAULTS = [
    ("submit", "429", 3, {"retry_after": "0"}),
    ("submit", "503-ingress", 2, {}),
    ("status", "500", 2, {}),
    ("status", "reset", 2, {}),
    ("status", "malformed", 1, {}),
    ("status", "hang", 1, {"seconds": 1}),
    ("result", "reset", 1, {}),
    ("file", "503", 2, {}),
]


@pytest.mark.parametrize("route,kind,count,opts", FAL_FAULTS, ids=[f"{r}-{k}" for r, k, _, _ in FAL_FAULTS])
def test_fal_recovers_from_transient_faults(server, fal, route, kind, count, opts):
    n0 = len(fal.requests)
    fal.inject(route, kind, count, **opts)
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting")
    run_ok(server, g)
    rids = [r["request_id"] for r in fal.requests[n0:] if r.get("request_id")]
    assert len(rids) == 1, "one job, never submitted twice"
    assert [b["request_id"] for b in fal.billed].count(rids[0]) == 1
    assert outputs(server, name)[1]["request_ids"] == rids


@pytest.mark.parametrize("route,kind,count", [("result", "500", 2), ("upload", "reset", 1),
                                              ("submit", "429", 2), ("file", "reset", 1)])
def test_wavespeed_recovers_from_transient_faults(server, ws, route, kind, count):
    n0 = len(ws.requests)
    ws.inject(route, kind, count, retry_after="0")
    g, name = graph(server, "WaveSpeedFill", w=256, h=256)
    run_ok(server, g)
    rids = [r["request_id"] for r in ws.requests[n0:] if r.get("request_id")]
    assert len(rids) == 1
    assert outputs(server, name)[1]["request_ids"] == rids


FAL_FATAL = [
    ("401", lambda e: e.inject("submit", "401"), ["rejected the API key", "FAL_KEY"]),
    ("422", lambda e: e.inject("submit", "422"), ["refused the request (HTTP 422)"]),
    ("500", lambda e: e.inject("submit", "500"), ["HTTP 500"]),
    ("failed", lambda e: e.next_job(fail="CUDA out of memory"), ["CUDA out of memory", "not billed"]),
    ("result404", lambda e: e.next_job(result_404=True), ["could not be downloaded", "billed"]),
    ("nsfw", lambda e: e.next_job(nsfw=True), ["NSFW", "enable_safety_checker"]),
]


@pytest.mark.parametrize("case,setup,texts", FAL_FATAL, ids=[c[0] for c in FAL_FATAL])
def test_fal_errors_are_clear(server, fal, case, setup, texts):
    setup(fal)
    g, _ = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting")
    msg = error_text(server.run(g, timeout=60))
    assert msg.split(": ", 1)[1].startswith("FalFill: "), msg
    for t in texts:
        assert t in msg
    assert FAL_KEY not in msg and "SECRET" not in msg


@pytest.mark.parametrize("case,setup,texts", [
    ("401", lambda e: e.inject("submit", "401"), ["rejected the API key", "WAVESPEED_API_KEY"]),
    ("failed", lambda e: e.next_job(fail="worker crashed"), ["worker crashed", "not billed"]),
    ("nsfw", lambda e: e.next_job(nsfw=[False, True]), ["NSFW", "image 2 of 2"]),
])
def test_wavespeed_errors_are_clear(server, ws, case, setup, texts):
    setup(ws)
    g, _ = graph(server, "WaveSpeedFill", w=256, h=256, num_images=2)
    msg = error_text(server.run(g, timeout=60))
    for t in texts:
        assert t in msg, msg
    assert WS_KEY not in msg and "SECRET" not in msg


def test_nsfw_result_is_cached_and_safety_checker_off_sends_anew(server, fal):
    n0 = len(fal.requests)
    fal.next_job(nsfw=[True, False])
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting", num_images=2)
    assert "image 1 of 2" in error_text(server.run(g, timeout=60))
    assert len(fal.requests) == n0 + 1
    g["2"]["inputs"]["max_concurrency"] = 3           # ComfyUI runs it again; the cache answers
    assert "NSFW" in error_text(server.run(g, timeout=60))
    assert len(fal.requests) == n0 + 1, "the flagged result came from the cache, not a new request"
    g["2"]["inputs"]["enable_safety_checker"] = False
    run_ok(server, g)
    assert len(fal.requests) == n0 + 2 and fal.requests[-1]["payload"]["enable_safety_checker"] is False


def test_disk_cache_and_force_new(server, fal):
    n0 = len(fal.requests)
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting", seed=5)
    run_ok(server, g)
    first, rep1 = outputs(server, name)
    g["2"]["inputs"]["max_concurrency"] = 2            # not part of the request: cache hit
    run_ok(server, g)
    again, rep2 = outputs(server, name)
    assert len(fal.requests) == n0 + 1
    assert np.array_equal(first, again)
    assert rep2["results"][0]["cached"] is True and rep2["cost_usd"] == 0
    assert any("cache hit" in n for n in rep2["notes"])
    g["2"]["inputs"]["force_new"] = True
    run_ok(server, g)
    assert len(fal.requests) == n0 + 2
    assert outputs(server, name)[1]["results"][0]["cached"] is False


# ---------------------------------------------------------------- size rules (WaveSpeed)
@pytest.mark.parametrize("size,inputs,text", [
    ((1600, 256), {}, "max_side 1536"),
    ((256, 256), {"width": 200}, "width must be 0 (input size) or between 256 and 1536"),
    ((256, 256), {"lora_stack": ["6", 0], "_loras": 4}, "at most 3"),
    ((256, 256), {"lora_stack": ["6", 0], "_scale": 5.0}, "between 0 and 4"),
])
def test_wavespeed_rejects_before_sending(server, ws, size, inputs, text):
    calls = ws.count()
    n, scale = inputs.pop("_loras", 1), inputs.pop("_scale", 1.0)
    extra = {"6": lora_node([[f"owner/lora-{i}", scale, 1.0] for i in range(n)])}
    g, _ = graph(server, "WaveSpeedFill", w=size[0], h=size[1], extra=extra, **inputs)
    msg = error_text(server.run(g, timeout=60))
    assert text in msg and "WaveSpeedFill" in msg
    assert ws.count() == calls


def test_wavespeed_payload(server, ws):
    n0, up0 = len(ws.requests), len(ws.uploads)
    g, name = graph(server, "WaveSpeedFill", w=256, h=320, steps=20, guidance=31.5, seed=9, num_images=2,
                    enable_safety_checker=False, lora_stack=["6", 0],
                    extra={"6": lora_node([[HOSTED_LORA, 1.5, 1.0], ["owner/repo", 0.5, 1.0]])})
    run_ok(server, g)
    (p,) = payloads(ws, n0)
    assert set(p) == {"image", "mask_image", "prompt", "size", "num_inference_steps", "seed",
                      "guidance_scale", "num_images", "loras", "enable_safety_checker",
                      "enable_base64_output", "enable_sync_mode"}
    assert p["size"] == "256*320" and p["num_inference_steps"] == 20 and p["guidance_scale"] == 31.5
    assert p["seed"] == 9 and p["enable_safety_checker"] is False and p["num_images"] == 2
    assert p["loras"] == [{"path": HOSTED_LORA, "scale": 1.5}, {"path": "owner/repo", "scale": 0.5}]
    assert len(ws.uploads) == up0 + 2 and p["image"].startswith(ws.base_url)
    images, report = outputs(server, name)
    assert images.shape == (2, 320, 256, 3)
    assert report["cost_usd"] == pytest.approx(0.07) and report["estimate_usd"] == pytest.approx(0.07)


# ---------------------------------------------------------------- cancel, deadline, resume
def _wait_for(cond, timeout=20.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _submitted(emu, n0):
    return _wait_for(lambda: next((r["request_id"] for r in emu.requests[n0:] if r.get("request_id")), None),
                     what="a submission")


@pytest.mark.parametrize("node,phase", [("FalFill", "queued"), ("FalFill", "running"),
                                        ("WaveSpeedFill", "running")])
def test_cancel_cancels_the_remote_job(server, emus, node, phase):
    emu = emus[0] if node == "FalFill" else emus[1]
    n0 = len(emu.requests)
    if phase == "queued":
        emu.next_job(queue_seconds=None)
    else:
        emu.next_job(queue_seconds=0.0, run_seconds=None)
    side = 64 if node == "FalFill" else 256
    g, name = graph(server, node, w=side, h=side)
    ans = server.queue(g)
    rid = _submitted(emu, n0)
    if node != "FalFill":
        state = "processing"
    else:
        state = "IN_QUEUE" if phase == "queued" else "IN_PROGRESS"
    _wait_for(lambda: emu.state(rid) == state, what=state)
    time.sleep(0.3)                      # the node is polling
    server.interrupt()
    h = server.wait(ans["prompt_id"], timeout=60)
    assert was_interrupted(h), h["status"]
    assert rid in emu.cancelled
    assert rid not in [b["request_id"] for b in emu.billed]
    journal = (server.base / "user" / "fluxfill" / "hosted_journal.jsonl").read_text().splitlines()
    last = [json.loads(x) for x in journal if rid in x][-1]
    assert last["status"] == "cancelled"
    # the next prompt runs normally: the interrupt flag was left to ComfyUI
    g2, _ = graph(server, node, w=side, h=side)
    run_ok(server, g2)


def test_deadline_keeps_the_request_and_a_rerun_resumes_it(server, fal):
    n0 = len(fal.requests)
    fal.next_job(queue_seconds=0.0, run_seconds=None)
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting", timeout_s=2)
    msg = error_text(server.run(g, timeout=60))
    assert "deadline" in msg and "pending" in msg
    rid = fal.requests[n0]["request_id"]
    fal.finish_job(rid)
    run_ok(server, g)
    assert len(fal.requests) == n0 + 1, "resumed, not submitted again"
    report = outputs(server, name)[1]
    assert report["results"][0]["resumed"] is True and report["request_ids"] == [rid]
    assert any("resumed" in n for n in report["notes"])
    assert [b["request_id"] for b in fal.billed].count(rid) == 1


def test_progress_text_and_bar_reach_the_client(server, fal):
    fal.next_job(queue_seconds=0.4, run_seconds=0.4)
    texts, events, stop = listen(server)
    try:
        g, _ = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting")
        run_ok(server, g)
        time.sleep(0.3)
    finally:
        stop()
    mine = [text for node, text in texts if node == "2"]
    assert any("estimated $" in x for x in mine), mine
    assert any("in queue (position 0)" in x for x in mine), mine
    assert any("step " in x for x in mine), mine          # provider logs
    assert any("elapsed" in x for x in mine)
    bars = [e["data"] for e in events if e.get("type") == "progress" and e["data"].get("node") == "2"]
    assert bars and bars[-1]["value"] == bars[-1]["max"] == 100


def test_keys_are_never_saved_or_logged(server, fal, ws):
    """Run both nodes into a real SaveImage (PNG metadata), then look everywhere."""
    from PIL import Image
    g, _ = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting")
    g2, _ = graph(server, "WaveSpeedFill", w=256, h=256)
    g.update({"12": {**g2["2"], "inputs": {**g2["2"]["inputs"], "image": ["11", 0], "mask": ["11", 1]}},
              "11": pattern_node(256, 256),
              "13": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "keys_fal"}},
              "14": {"class_type": "SaveImage", "inputs": {"images": ["12", 0], "filename_prefix": "keys_ws"}}})
    fal.inject("submit", "401")          # an auth error is logged and stored in the history too
    server.run(g, timeout=60)
    h = run_ok(server, g)
    pngs = server.output_files(h)
    assert len(pngs) == 2
    secrets = [FAL_KEY, WS_KEY, FAL_KEY.split(":")[1], "SECRET"]
    for png in pngs:
        text = json.dumps(Image.open(png).text)
        assert "FalFill" in text or "WaveSpeedFill" in text     # the metadata is there ...
        assert not any(s in text for s in secrets)             # ... without any key
    history = server.get("/history").text
    assert "rejected the API key" in history
    assert not any(s in history for s in secrets)
    answer = server.get("/fluxfill/keys")
    assert answer.json() == {"fal": True, "wavespeed": True}
    assert not any(s in answer.text for s in secrets)
    scanned = 0
    for path in server.base.rglob("*"):
        if path.is_file() and "custom_nodes" not in path.parts:
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path
            scanned += 1
    state = server.base / "user" / "fluxfill"
    assert (state / "hosted_journal.jsonl").is_file() and (state / "ledger.jsonl").is_file()
    assert any((state / "cache").iterdir()) and scanned > 10


def test_server_killed_mid_poll_resumes_from_the_journal(emus, tmp_path):
    fal, ws = emus
    base = make_base_dir(tmp_path / "kill")
    env = emulator_env(fal, ws)
    first = ComfyServer(base, env=env).start()
    try:
        n0 = len(fal.requests)
        fal.next_job(queue_seconds=0.0, run_seconds=None)
        g, name = graph(first, "FalFill", endpoint="fal-ai/flux-lora/inpainting", prompt="resume me")
        first.queue(g)
        rid = _submitted(fal, n0)
        journal = base / "user" / "fluxfill" / "hosted_journal.jsonl"
        _wait_for(lambda: journal.is_file() and rid in journal.read_text(), what="the journal entry")
        _wait_for(lambda: fal.count("status") > 0, what="polling")
    finally:
        first.stop(kill=True)
    fal.finish_job(rid)
    second = ComfyServer(base, env=env).start()
    try:
        run_ok(second, g)
        report = outputs(second, name)[1]
    finally:
        second.stop()
    assert len(fal.requests) == n0 + 1, "no second submission"
    assert report["request_ids"] == [rid] and report["results"][0]["resumed"] is True
    assert [b["request_id"] for b in fal.billed].count(rid) == 1


# ---------------------------------------------------------------- shipped workflows
WORKFLOWS = ["fal_fill", "wavespeed_fill"]
WF_DIR = Path(__file__).resolve().parents[1] / "workflows"


@pytest.mark.parametrize("wf", WORKFLOWS)
def test_workflow_runs_end_to_end(server, emus, wf):
    """LoadImage (RGBA with a transparent hole) → MaskPrep → fill → PasteBack → SaveImage."""
    from PIL import Image
    rng = np.random.default_rng(3)
    rgb = (rng.random((256, 320, 3)) * 255).astype(np.uint8)
    alpha = np.full((256, 320), 255, np.uint8)
    alpha[90:150, 120:200] = 0                       # LoadImage: mask = 1 - alpha
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(server.base / "input" / "example.png")
    api = json.loads((WF_DIR / "api" / f"{wf}.api.json").read_text())
    api["1"]["inputs"]["image"] = "example.png"      # this test's own image, not the shipped photo
    emu = emus[0] if wf == "fal_fill" else emus[1]
    n0 = len(emu.requests)
    h = run_ok(server, api)
    assert len(emu.requests) == n0 + 1
    (png,) = server.output_files(h)
    out = np.asarray(Image.open(png).convert("RGB"))
    assert out.shape == (256, 320, 3)
    far = np.ones((256, 320), bool)
    far[60:180, 90:230] = False                      # well outside the hole and its feather
    assert np.array_equal(out[far], rgb[far])
    assert not np.array_equal(out[100:140, 130:190], rgb[100:140, 130:190])


# ---------------------------------------------------------------- provider truth (the providers' schemas)
def test_flux_general_guidance_over_20_is_refused_before_any_upload(server, fal):
    """FalFill's guidance widget goes to 35 (flux-lora's range); on flux-general fal's schema
    says 0-20: 25 is a clear error naming that range, before anything is sent."""
    calls, n0, u0 = fal.count(), len(fal.requests), len(fal.uploads)
    g, _ = graph(server, "FalFill", endpoint="fal-ai/flux-general/inpainting", guidance=25.0)
    msg = error_text(server.run(g, timeout=60))
    assert "FalFill" in msg and "guidance_scale must be between 0 and 20, got 25" in msg, msg
    assert fal.count() == calls and len(fal.uploads) == u0 and len(fal.requests) == n0
    cn = [{"path": "x/canny", "control_image_url": "$image", "conditioning_scale": 2.5}]
    g, _ = graph(server, "FalFill", endpoint="fal-ai/flux-general/inpainting", controlnets=json.dumps(cn))
    assert "conditioning_scale must be between 0 and 2, got 2.5" in error_text(server.run(g, timeout=60))
    assert fal.count() == calls
    g, _ = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting", guidance=25.0)
    run_ok(server, g)                               # 25 is fine where fal takes 0-35
    (p,) = payloads(fal, n0)
    assert p["guidance_scale"] == 25.0


def test_report_lists_one_seed_per_request_and_the_rounded_up_general_price(server, fal):
    n0 = len(fal.requests)
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-general/inpainting", seed=31, num_images=2, batch=2)
    run_ok(server, g)
    assert [p["seed"] for p in payloads(fal, n0)] == [31, 31]
    report = outputs(server, name)[1]
    assert report["seeds"] == [[31], [31]]            # fal returns one seed per request
    assert [r["seeds"] for r in report["results"]] == [[31], [31]]
    assert any("does not report a seed per image" in n for n in report["notes"])
    # 64x64 outputs: each image is billed as one whole megapixel on flux-general
    assert report["estimate_usd"] == pytest.approx(0.075 * 2 * 2) == report["cost_usd"]


def test_wavespeed_result_without_nsfw_flags_reports_them_unknown(server, ws):
    ws.next_job(nsfw=None)
    g, name = graph(server, "WaveSpeedFill", w=256, h=256, num_images=2)
    run_ok(server, g)
    report = outputs(server, name)[1]
    assert report["nsfw"] == [[None, None]]
    assert any("unknown" in n and "not as clean" in n for n in report["notes"])


def test_a_bomb_output_names_size_cap_and_request_id_and_is_not_left_pending(server, fal):
    n0 = len(fal.requests)
    fal.next_job(output_data=bomb_png(30000, 30000))
    g, _ = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting")
    msg = error_text(server.run(g, timeout=60))
    rid = fal.requests[n0]["request_id"]
    assert "OutputRefused" in msg and "30000x30000" in msg and "67,108,864 pixels (8192x8192)" in msg
    assert f"under request id {rid}" in msg and FAL_KEY not in msg
    journal = (server.base / "user" / "fluxfill" / "hosted_journal.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in journal if rid in x][-1]["status"] == "refused"
