"""The daily spend limit in REAL ComfyUI servers against the loopback emulators: a run whose
estimate would take today's spend over the limit is refused before anything reaches the
emulator; cached and resumed requests are free and never refused; flux-lora-fill counts at its
family's rate; the setting is stored beside the keys and FLUXFILL_DAILY_LIMIT_USD wins.

Two servers: one with the limit in its environment ($0.12), one with it in the settings file.
Prices used: fal flux-pro/v1/fill bills $0.05 per image (a 64×64 output rounds up to 1 MP),
WaveSpeed $0.035 per image. Tests run in file order (each server's ledger grows)."""
import json
import os
import stat

import pytest
import requests

from comfy_host import ComfyServer, make_base_dir
from emulators import FalEmulator, WaveSpeedEmulator
from test_hosted_nodes_graphs import FAL_KEY, WS_KEY, assert_ok, emulator_env, error_text, graph, outputs

pytestmark = pytest.mark.timeout(180)
PRO = "fal-ai/flux-pro/v1/fill"
LIMIT_ENV = "FLUXFILL_DAILY_LIMIT_USD"


@pytest.fixture(scope="module")
def emus():
    with FalEmulator(FAL_KEY, queue_seconds=0.0, run_seconds=0.05) as fal, \
            WaveSpeedEmulator(WS_KEY, queue_seconds=0.0, run_seconds=0.05) as ws:
        yield fal, ws


@pytest.fixture(scope="module")
def env_server(emus, tmp_path_factory):
    srv = ComfyServer(make_base_dir(tmp_path_factory.mktemp("limit_env")),
                      env={**emulator_env(*emus), LIMIT_ENV: "0.12"}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def set_server(emus, tmp_path_factory):
    srv = ComfyServer(make_base_dir(tmp_path_factory.mktemp("limit_set")),
                      env={**emulator_env(*emus), LIMIT_ENV: ""}).start()
    yield srv
    srv.stop()


def ledger(server) -> list[dict]:
    f = server.base / "user" / "fluxfill" / "ledger.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def calls(emus) -> int:
    """Uploads, submits, polls... everything but asking fal's pricing API for the price."""
    return sum(emu.count() - emu.count("pricing") for emu in emus)


def refused(server, emus, g) -> str:
    """Run `g`, expect the limit's refusal; nothing may reach either emulator."""
    before, lines = calls(emus), len(ledger(server))
    msg = error_text(server.run(g, timeout=60))
    assert msg.startswith("fluxfill.SpendLimitExceeded: "), msg
    assert calls(emus) == before, "nothing may be uploaded or submitted"
    assert len(ledger(server)) == lines
    assert "Nothing was uploaded or submitted" in msg and "Cached results and resumed requests" in msg
    return msg


def ran(server, g) -> dict:
    h = server.run(g, timeout=60)
    assert_ok(server, h)
    return h


def set_limit(server, value):
    r = requests.post(server.url + "/fluxfill/limit", data=json.dumps({"limit_usd": value}), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------- limit from the environment
def test_env_limit_refuses_the_run_that_would_cross_it(env_server, emus):
    g, _ = graph(env_server, "FalFill", endpoint=PRO, num_images=3, prompt="three doors")
    msg = refused(env_server, emus, g)
    for text in ("FalFill: refused by the daily spend limit of $0.12", "today's FluxFill spend is $0.00",
                 "this run's estimate $0.15", LIMIT_ENV, "restart ComfyUI"):
        assert text in msg, msg


def test_a_run_under_the_limit_goes_through_and_the_ledger_grows(env_server, emus):
    fal = emus[0]
    n0 = len(fal.requests)
    g, name = graph(env_server, "FalFill", endpoint=PRO, num_images=2, prompt="two doors")
    ran(env_server, g)
    assert len(fal.requests) == n0 + 1
    (entry,) = ledger(env_server)
    assert entry["cost_usd"] == pytest.approx(0.10) and entry["endpoint"] == PRO
    spend = outputs(env_server, name)[1]["spend"]
    assert spend["today_usd"] == 0 and spend["limit_usd"] == 0.12 and spend["limit_source"] == "env"
    assert spend["counted_usd"] == pytest.approx(0.10) and spend["estimated"] is False


@pytest.mark.parametrize("node,inputs,estimate", [
    ("FalFill", {"endpoint": PRO}, "$0.05"),
    ("WaveSpeedFill", {}, "$0.0350"),
])
def test_the_next_paid_run_would_cross_it(env_server, emus, node, inputs, estimate):
    g, _ = graph(env_server, node, w=256, h=256, prompt=f"one more door {node}", **inputs)
    msg = refused(env_server, emus, g)
    assert "today's FluxFill spend is $0.10" in msg and f"this run's estimate {estimate}" in msg, msg


def test_cached_rerun_is_never_refused_but_force_new_is(env_server, emus):
    g, name = graph(env_server, "FalFill", endpoint=PRO, num_images=2, prompt="two doors", name="again")
    before = calls(emus)
    ran(env_server, g)
    assert calls(emus) == before, "the cached result is returned: nothing sent"
    report = outputs(env_server, name)[1]
    assert report["results"][0]["cached"] is True and report["spend"]["counted_usd"] == 0
    assert report["spend"]["today_usd"] == pytest.approx(0.10)
    g["2"]["inputs"]["force_new"] = True                   # a new, paid request: counted
    assert "this run's estimate $0.10" in refused(env_server, emus, g)


def test_env_var_wins_over_the_setting(env_server, emus):
    info = env_server.get("/fluxfill/limit").json()
    assert info["limit_usd"] == 0.12 and info["source"] == "env" and info["env_overrides"] is True
    assert info["env_var"] == LIMIT_ENV and info["today_usd"] == pytest.approx(0.10)
    info = set_limit(env_server, 50)
    assert info["stored_usd"] == 50 and info["limit_usd"] == 0.12 and info["env_overrides"] is True
    f = env_server.base / "user" / "fluxfill" / "settings.json"
    assert json.loads(f.read_text()) == {"daily_limit_usd": 50.0}
    g, _ = graph(env_server, "FalFill", endpoint=PRO, prompt="still over")
    assert LIMIT_ENV in refused(env_server, emus, g)
    price = requests.post(env_server.url + "/fluxfill/price", timeout=30, data=json.dumps(
        {"node": "FalFill", "endpoint": PRO, "width": 64, "height": 64})).json()
    assert price["spend"]["limit_usd"] == 0.12 and price["spend"]["today_usd"] == pytest.approx(0.10)


# ---------------------------------------------------------------- limit from the settings file
@pytest.mark.parametrize("value,text", [("abc", "must be a number"), (-1, "0 or more"), (True, "must be a number")])
def test_settings_route_refuses_bad_limits(set_server, value, text):
    r = requests.post(set_server.url + "/fluxfill/limit", data=json.dumps({"limit_usd": value}), timeout=30)
    assert r.status_code == 400 and text in r.json()["error"]
    assert not (set_server.base / "user" / "fluxfill" / "settings.json").exists()


def test_settings_route_stores_the_limit(set_server):
    assert set_server.get("/fluxfill/limit").json()["limit_usd"] is None
    info = set_limit(set_server, "1.5")
    assert info["limit_usd"] == 1.5 and info["source"] == "settings" and info["env_overrides"] is False
    f = set_server.base / "user" / "fluxfill" / "settings.json"
    assert json.loads(f.read_text()) == {"daily_limit_usd": 1.5}
    assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert set_limit(set_server, None)["limit_usd"] is None and json.loads(f.read_text()) == {}


def test_a_resumed_request_is_never_refused(set_server, emus):
    fal = emus[0]
    set_limit(set_server, 1.0)
    n0 = len(fal.requests)
    fal.next_job(queue_seconds=0.0, run_seconds=None)
    g, name = graph(set_server, "FalFill", endpoint=PRO, timeout_s=2, prompt="slow door")
    assert "deadline" in error_text(set_server.run(g, timeout=60))
    set_limit(set_server, 0.01)                         # now the pending request's cost is over it
    fal.finish_job(fal.requests[n0]["request_id"])
    ran(set_server, g)
    assert len(fal.requests) == n0 + 1, "resumed, not submitted again"
    assert outputs(set_server, name)[1]["results"][0]["resumed"] is True
    g2, _ = graph(set_server, "FalFill", endpoint=PRO, prompt="a new door")
    msg = refused(set_server, emus, g2)
    assert "limit of $0.01" in msg and "today's FluxFill spend is $0.05" in msg
    assert "Settings › FluxFill › Daily spend limit" in msg and "user/fluxfill/settings.json" in msg
    assert str(set_server.base) not in msg


def test_flux_lora_fill_counts_at_the_family_rate(set_server, emus):
    set_limit(set_server, 0.06)                         # today: $0.05
    g, _ = graph(set_server, "FalFill", endpoint="fal-ai/flux-lora-fill", image_size="custom",
                 width=1024, height=1024, prompt="a fill door")
    msg = refused(set_server, emus, g)
    assert "this run's estimate $0.0350" in msg
    assert "estimated at the family rate of fal-ai/flux-lora/inpainting" in msg
    set_limit(set_server, 1.0)
    g, name = graph(set_server, "FalFill", endpoint="fal-ai/flux-lora-fill", prompt="a small fill door")
    ran(set_server, g)
    report = outputs(set_server, name)[1]
    small = 0.035 * 64 * 64 / 1024 ** 2
    assert report["cost_usd"] is None and report["spend"]["estimated"] is True
    assert report["spend"]["counted_usd"] == pytest.approx(small, abs=1e-6)
    assert "estimated at the family rate" in report["spend"]["counted_basis"]
    last = ledger(set_server)[-1]
    assert last["cost_usd"] is None and last["estimate_usd"] == pytest.approx(small, abs=1e-6)
    assert set_server.get("/fluxfill/limit").json()["today_usd"] == pytest.approx(0.05 + small, abs=1e-6)
