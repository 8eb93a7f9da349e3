"""/fluxfill/* routes in a REAL ComfyUI server started WITHOUT keys in its environment:
key flags, the write-only key file, price estimates and the endpoint table. Tests run in
file order (the key is stored half-way)."""
import json
import os
import stat

import pytest
import requests

from comfy_host import ComfyServer, make_base_dir
from emulators import FalEmulator, WaveSpeedEmulator
from test_hosted_nodes_graphs import (FAL_KEY, WS_KEY, assert_ok, emulator_env, error_text, graph,
                                      outputs, widget_defaults)

pytestmark = pytest.mark.timeout(120)
SECRETS = [FAL_KEY, FAL_KEY.split(":")[1], WS_KEY]


@pytest.fixture(scope="module")
def emus():
    with FalEmulator(FAL_KEY, run_seconds=0.05) as fal, WaveSpeedEmulator(WS_KEY, run_seconds=0.05) as ws:
        yield fal, ws


@pytest.fixture(scope="module")
def server(emus, tmp_path_factory):
    srv = ComfyServer(make_base_dir(tmp_path_factory.mktemp("routes")),
                      env=emulator_env(*emus, with_keys=False)).start()
    yield srv
    srv.stop()


def post(server, path, body):
    return requests.post(server.url + path, data=json.dumps(body), timeout=30)


def test_no_keys_configured(server):
    assert server.get("/fluxfill/keys").json() == {"fal": False, "wavespeed": False}
    assert server.get("/api/fluxfill/keys").json() == {"fal": False, "wavespeed": False}


def test_missing_key_is_a_clear_error(server, emus):
    calls = emus[1].count()
    g, _ = graph(server, "WaveSpeedFill", w=256, h=256)
    msg = error_text(server.run(g, timeout=60))
    assert "no WaveSpeedAI API key" in msg and "WAVESPEED_API_KEY" in msg
    # named relative to ComfyUI's folder (the server may be used from another computer), and
    # the type is the core's own, without the pack's file-system path
    assert "user/fluxfill/keys.json" in msg and str(server.base) not in msg
    assert msg.startswith("fluxfill.MissingKey: WaveSpeedFill: no WaveSpeedAI API key"), msg
    assert emus[1].count() == calls


def test_broken_key_file_is_named_relative_to_comfyui(server, emus):
    key_file = server.base / "user" / "fluxfill" / "keys.json"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text("{not json", encoding="utf-8")
    try:
        g, _ = graph(server, "FalFill", w=256, h=256)
        msg = error_text(server.run(g, timeout=60))
    finally:
        key_file.unlink()
    assert msg.startswith("fluxfill.InvalidKeyFile: FalFill: user/fluxfill/keys.json is not valid JSON"), msg
    assert str(server.base) not in msg


@pytest.mark.parametrize("body,text", [
    ({"provider": "openai", "key": "x"}, "provider must be one of"),
    ({"provider": "fal", "key": 5}, "key must be a string"),
    ({"provider": "fal", "key": "two words"}, "without spaces"),
    (["fal", "x"], "expected a JSON object"),
])
def test_bad_key_posts_are_refused(server, body, text):
    r = post(server, "/fluxfill/keys", body)
    assert r.status_code == 400 and text in r.json()["error"]
    assert not (server.base / "user" / "fluxfill" / "keys.json").exists()


def test_store_key_is_write_only_and_used(server, emus):
    fal = emus[0]
    r = post(server, "/fluxfill/keys", {"provider": "fal", "key": FAL_KEY})
    assert r.status_code == 200 and r.json() == {"fal": True, "wavespeed": False}
    assert not any(s in r.text for s in SECRETS)
    f = server.base / "user" / "fluxfill" / "keys.json"
    assert json.loads(f.read_text()) == {"fal": FAL_KEY}
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    n0 = len(fal.requests)
    g, name = graph(server, "FalFill", endpoint="fal-ai/flux-lora/inpainting")
    h = server.run(g, timeout=60)
    assert_ok(server, h)
    assert len(fal.requests) == n0 + 1 and outputs(server, name)[0].shape == (1, 64, 64, 3)
    everything = server.log_text() + server.get("/history").text + server.get("/fluxfill/keys").text
    assert not any(s in everything for s in SECRETS)


def test_empty_key_removes_it(server):
    post(server, "/fluxfill/keys", {"provider": "wavespeed", "key": WS_KEY})
    assert server.get("/fluxfill/keys").json() == {"fal": True, "wavespeed": True}
    assert post(server, "/fluxfill/keys", {"provider": "wavespeed", "key": ""}).json() == \
        {"fal": True, "wavespeed": False}


@pytest.mark.parametrize("body,usd", [
    ({"node": "FalFill", "endpoint": "fal-ai/flux-lora/inpainting", "width": 1024, "height": 1024,
      "num_images": 2, "batch": 3}, 0.21),
    ({"node": "FalFill", "endpoint": "fal-ai/flux-pro/v1/fill", "width": 1500, "height": 1500}, 0.15),
    ({"node": "FalFill", "endpoint": "fal-ai/flux-general/inpainting", "width": 512, "height": 512}, 0.075),
    ({"node": "FalFill", "endpoint": "fal-ai/flux-lora-fill", "width": 1024, "height": 1024}, None),
    ({"node": "WaveSpeedFill", "width": 768, "height": 768, "num_images": 4, "batch": 2}, 0.28),
])
def test_price(server, body, usd):
    r = post(server, "/fluxfill/price", body)
    assert r.status_code == 200, r.text
    data = r.json()
    if usd is None:
        assert data["usd"] is None and "unknown" in data["text"]
    else:
        assert data["usd"] == pytest.approx(usd, abs=1e-6) and data["text"].startswith("$")


@pytest.mark.parametrize("body,text", [
    ({"node": "WaveSpeedFill", "endpoint": "fal-ai/flux-lora-fill", "width": 512, "height": 512}, "not an endpoint of"),
    ({"node": "FalFill", "endpoint": "fal-ai/nope", "width": 512, "height": 512}, "unknown endpoint"),
    ({"node": "FalFill", "width": 0, "height": 512}, "width must be an integer"),
    ({"node": "FalFill", "width": 512, "height": 512, "num_images": 5}, "num_images must be"),
    ({"node": "Other", "width": 512, "height": 512}, "node must be one of"),
])
def test_price_refuses_bad_input(server, body, text):
    r = post(server, "/fluxfill/price", body)
    assert r.status_code == 400 and text in r.json()["error"]


def test_endpoint_table_matches_the_nodes(server):
    data = server.get("/fluxfill/endpoints").json()
    eps = data["endpoints"]
    assert set(eps) == {"fal-ai/flux-lora-fill", "fal-ai/flux-lora/inpainting", "fal-ai/flux-pro/v1/fill",
                        "fal-ai/flux-general/inpainting", "wavespeed-ai/flux-fill-dev"}
    rows = {r["name"]: r for r in eps["fal-ai/flux-lora-fill"]["params"]}
    assert rows["guidance_scale"]["default"] == 30 and rows["guidance_scale"]["range"] == "28 – 35"
    assert {r["name"]: r["default"] for r in eps["fal-ai/flux-lora/inpainting"]["params"]}["guidance_scale"] == 3.5
    assert eps["wavespeed-ai/flux-fill-dev"]["node"] == "WaveSpeedFill"
    fields = {r["name"] for e in eps.values() for r in e["params"]}
    shared = {"prompt", "seed", "num_images", "endpoint", "force_new", "max_concurrency", "timeout_s"}
    for node in ("FalFill", "WaveSpeedFill"):
        info = server.object_info(node)[node]["input"]
        widgets = set(widget_defaults(server, node)) | set(info.get("optional", {})) - {"image", "mask"}
        mapped = data["widgets"][node]
        assert widgets - shared == set(mapped), node     # every endpoint widget is mapped ...
        assert set(mapped.values()) <= fields            # ... to a real endpoint parameter
