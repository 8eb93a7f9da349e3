"""fal's pricing API (live_prices.py) and status stream (FalClient._watch), against the real
loopback fal emulator."""
import json
import socket
import threading
import time

import pytest
import torch

from emulators import FalEmulator
from fluxfill.core.fill_protocol import FillHooks, FillRequest
from fluxfill.core.hosted import live_prices, pricing
from fluxfill.core.hosted.client import PollSchedule
from fluxfill.core.hosted.errors import RemoteCancelled
from fluxfill.core.hosted.fal import FalClient
from fluxfill.core.hosted.provider import FalProvider
from fluxfill.core.hosted.retry import RetryPolicy

KEY = "fal-key-id-12:sk-live-price-secret-42"
FAST = RetryPolicy(tries=3, backoff=0.01, backoff_cap=0.05, connect_timeout=1.0, read_timeout=2.0)
SLOW_POLL = PollSchedule(first=3.0, factor=1.0, max=3.0, flat=1000)   # the stream must do it
LORA = "fal-ai/flux-lora/inpainting"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def emu():
    with FalEmulator(KEY, run_seconds=0.1, hang_seconds=5.0) as e:
        yield e


@pytest.fixture(autouse=True)
def no_remembered_failures():
    live_prices._failed.clear()
    yield
    live_prices._failed.clear()


def client(emu, **kw):
    return FalClient(KEY, queue_url=emu.queue_url, rest_url=emu.rest_url, api_url=emu.api_url,
                     policy=FAST, **kw)


def test_pricing_api_figures_are_used_and_cached_for_a_day(emu, tmp_path):
    emu.prices[LORA]["unit_price"] = 0.04
    c = client(emu)
    info = live_prices.lookup(LORA, tmp_path, c.pricing)
    assert info.live and info.source.startswith("fal pricing API (fetched ")
    assert pricing.estimate(LORA, 1024, 2048, 1, info.price).usd == pytest.approx(0.08)
    assert pricing.actual(LORA, [(1024, 1024)], info.price).usd == pytest.approx(0.04)
    assert emu.count("pricing") == 1
    assert emu.calls[-1]["path"] == "/v1/models/pricing"
    cached = json.loads((tmp_path / "prices.json").read_text())
    assert cached[LORA]["unit_price"] == 0.04 and cached[LORA]["unit"] == "megapixels"
    emu.prices[LORA]["unit_price"] = 0.05
    again = live_prices.lookup(LORA, tmp_path, c.pricing)            # from the cache
    assert emu.count("pricing") == 1 and again.price.usd == 0.04
    later = live_prices.lookup(LORA, tmp_path, c.pricing, now=time.time() + 25 * 3600)
    assert emu.count("pricing") == 2 and later.price.usd == 0.05      # a day old: fetched anew


def test_rounding_rule_of_the_table_is_kept(emu, tmp_path):
    info = live_prices.lookup("fal-ai/flux-pro/v1/fill", tmp_path, client(emu).pricing)
    assert info.live and info.price.kind == "per_mp_ceil"
    assert pricing.estimate("fal-ai/flux-pro/v1/fill", 1500, 1500, 1, info.price).usd == pytest.approx(0.15)


def test_unknown_unit_or_currency_falls_back_to_the_table_saying_why(emu, tmp_path):
    emu.prices[LORA]["unit"] = "compute seconds"
    info = live_prices.lookup(LORA, tmp_path, client(emu).pricing)
    assert info.price is None and "built-in table ($0.035 per megapixel)" in info.source
    assert "unit 'compute seconds' not known" in info.source
    emu.prices["fal-ai/flux-general/inpainting"].update(unit="images", currency="EUR")
    info = live_prices.lookup("fal-ai/flux-general/inpainting", tmp_path, client(emu).pricing)
    assert info.price is None and "not USD" in info.source
    emu.prices["fal-ai/flux-pro/v1/fill"].update(unit="images", unit_price=0.06)
    info = live_prices.lookup("fal-ai/flux-pro/v1/fill", tmp_path, client(emu).pricing)
    assert pricing.estimate("fal-ai/flux-pro/v1/fill", 2048, 2048, 2, info.price).usd == pytest.approx(0.12)


def test_an_error_is_one_try_then_the_table_and_not_asked_again_soon(emu, tmp_path):
    emu.inject("pricing", "500", 5)
    c = client(emu)
    info = live_prices.lookup(LORA, tmp_path, c.pricing)
    assert info.price is None and "unavailable" in info.source and emu.count("pricing") == 1
    assert live_prices.lookup(LORA, tmp_path, c.pricing).price is None
    assert emu.count("pricing") == 1                                   # remembered failure
    assert not (tmp_path / "prices.json").exists()


def test_an_unpublished_endpoint_stays_unknown_and_the_key_is_required(emu, tmp_path):
    info = live_prices.lookup("fal-ai/flux-lora-fill", tmp_path, client(emu).pricing)
    assert info.price is None and "lists no price" in info.source
    bad = FalClient("wrong", queue_url=emu.queue_url, rest_url=emu.rest_url, api_url=emu.api_url)
    info = live_prices.lookup(LORA, tmp_path / "other", bad.pricing)
    assert info.price is None and "AuthError" in info.source


def test_offline_costs_at_most_the_short_timeout(tmp_path):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)                 # accepts, never answers: a hanging API
    port = srv.getsockname()[1]
    try:
        c = FalClient(KEY, queue_url=f"http://127.0.0.1:{port}", rest_url=f"http://127.0.0.1:{port}",
                      api_url=f"http://127.0.0.1:{port}")
        t = time.monotonic()
        info = live_prices.lookup(LORA, tmp_path, lambda e: c.pricing(e, timeout=0.5))
        assert info.price is None and time.monotonic() - t < 2.0
    finally:
        srv.close()


def _job_request():
    img = torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(64, 64)
    mask[16:48, 16:48] = 1
    return FillRequest(img, mask, "p", 3, 1)


def test_the_status_stream_notices_completion_at_once(tmp_path):
    with FalEmulator(KEY, run_seconds=0.6) as emu:
        prov = FalProvider(client(emu, poll=SLOW_POLL), LORA, tmp_path)
        t = time.monotonic()
        res = prov.fill(_job_request(), FillHooks())
        wall = time.monotonic() - t
        assert res.images.shape[0] == 1 and emu.count("stream") == 1
        assert wall < 1.5, wall              # polling alone: the second poll at 3 s
        assert emu.count("status") <= 3        # first poll, then one per stream event


def test_a_refused_stream_falls_back_to_polling(tmp_path):
    with FalEmulator(KEY, run_seconds=0.3) as emu:
        emu.inject("stream", "500", 1)
        poll = PollSchedule(first=0.05, factor=1.0, max=0.05, flat=1000)
        res = FalProvider(client(emu, poll=poll), LORA, tmp_path).fill(_job_request(), FillHooks())
        assert res.images.shape[0] == 1 and emu.count("stream") == 1 and emu.count("status") > 3


def test_cancel_acts_within_a_second_while_the_stream_is_open(tmp_path):
    with FalEmulator(KEY, run_seconds=None, hang_seconds=30.0) as emu:
        prov = FalProvider(client(emu, poll=SLOW_POLL), LORA, tmp_path)
        flag = threading.Event()
        threading.Timer(0.8, flag.set).start()
        t = time.monotonic()
        with pytest.raises(RemoteCancelled):
            prov.fill(_job_request(), FillHooks(cancelled=flag.is_set))
        assert time.monotonic() - t < 0.8 + 1.0
        assert emu.count("stream") == 1 and len(emu.cancelled) == 1 and not emu.billed
