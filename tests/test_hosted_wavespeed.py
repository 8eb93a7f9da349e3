"""WaveSpeedClient / WaveSpeedProvider against the loopback WaveSpeed emulator."""
import logging
import threading

import numpy as np
import pytest
import torch

from emulators import WaveSpeedEmulator, bomb_png, fill_colour
from fluxfill.core.fill_protocol import FillHooks, FillRequest
from fluxfill.core.hosted.client import PollSchedule
from fluxfill.core.hosted.errors import (AuthError, DeadlineExceeded, HostedValidationError,
                                         NSFWBlocked, OutputRefused, RemoteCancelled, RemoteFailed,
                                         RemoteRejected, ResultUnavailable, SubmitUncertain,
                                         TransportError)
from fluxfill.core.hosted.journal import Journal, Ledger
from fluxfill.core.hosted.provider import WaveSpeedProvider
from fluxfill.core.hosted.retry import RetryPolicy
from fluxfill.core.hosted.wavespeed import WaveSpeedClient

KEY = "ws-SECRET-key-0123456789abcdef"
FAST = RetryPolicy(tries=5, backoff=0.01, backoff_cap=0.05, retry_after_cap=0.05,
                   connect_timeout=1.0, read_timeout=0.5)
POLL = PollSchedule(first=0.02, factor=1.2, max=0.1, flat=5)
H, W = 264, 300
EP = "wavespeed-ai/flux-fill-dev"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def emu():
    e = WaveSpeedEmulator(KEY, run_seconds=0.1, hang_seconds=2.0, retry_after="0.01").start()
    yield e
    e.stop()


def provider(emu, tmp_path, key=KEY, **kw):
    c = WaveSpeedClient(key, api_url=emu.base_url, policy=FAST, poll=POLL)
    return WaveSpeedProvider(c, EP, tmp_path / "state", **kw)


def request(prompt="a blue vase", seed=3, n=1, params=None, loras=None, size=(H, W)):
    h, w = size
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    img = torch.stack([y, x, torch.full_like(x, (seed % 5) / 5)], dim=-1)
    mask = torch.zeros(h, w)
    mask[100:200, 100:200] = 1.0
    return FillRequest(img, mask, prompt, seed, n, loras=loras or [], params=params or {})


def assert_filled(res, req):
    for i in range(res.images.shape[0]):
        out = res.images[i].numpy()
        colour = np.array(fill_colour(req.prompt, req.seed, i)) / 255.0
        assert np.abs(out[150, 150] - colour).max() < 0.02
        assert np.abs(out[5, 5] - req.image[5, 5].numpy()).max() < 0.02


def test_every_parameter_reaches_the_api(emu, tmp_path):
    stack = [("https://example.com/a.safetensors", 0.5, 1.0), ("owner/lora-b", 4.0, 1.0)]
    req = request(n=3, loras=stack, params={"steps": 20, "guidance": 29.5, "enable_safety_checker": False,
                                            "loras": [{"path": "owner/c", "scale": 0}]})
    prov = provider(emu, tmp_path)
    res = prov.fill(req, FillHooks())
    assert res.images.shape == (3, H, W, 3)
    assert_filled(res, req)
    sent = emu.requests[-1]
    p = sent["payload"]
    assert sent["status"] == 200 and sent["unknown_fields"] == []
    assert p["size"] == f"{W}*{H}" and p["num_inference_steps"] == 20 and p["guidance_scale"] == 29.5
    assert p["seed"] == 3 and p["num_images"] == 3 and p["enable_safety_checker"] is False
    assert p["loras"] == [{"path": "https://example.com/a.safetensors", "scale": 0.5},
                          {"path": "owner/lora-b", "scale": 4.0}, {"path": "owner/c", "scale": 0.0}]
    assert p["image"].startswith(emu.base_url) and p["mask_image"].startswith(emu.base_url)
    assert [u["via"] for u in emu.uploads] == ["binary", "binary"]
    assert sent["mask_format"] == "PNG" and sent["image_size"] == sent["mask_size"] == (W, H)
    assert res.meta["cost_usd"] == pytest.approx(0.105) == emu.billed[0]["usd"]
    assert res.meta["estimate_usd"] == pytest.approx(0.105)
    assert Ledger(tmp_path / "state").total() == pytest.approx(0.105)


def test_explicit_size_and_defaults(emu, tmp_path):
    res = provider(emu, tmp_path).fill(request(params={"size": "512*256"}), FillHooks())
    p = emu.requests[-1]["payload"]
    assert p["size"] == "512*256" and p["guidance_scale"] == 30 and p["num_inference_steps"] == 28
    assert res.images.shape == (1, 256, 512, 3)


def test_out_of_range_input_size_is_refused_before_sending(emu, tmp_path):
    with pytest.raises(HostedValidationError, match="input image is 300x200.*256-1536"):
        provider(emu, tmp_path).fill(request(size=(200, 300)), FillHooks())
    with pytest.raises(HostedValidationError, match="at most 3 LoRAs"):
        provider(emu, tmp_path).fill(request(loras=[("a/b", 1.0, 1.0)] * 4), FillHooks())
    assert emu.calls == []


def test_submit_429_is_retried(emu, tmp_path):
    emu.inject("submit", "429", 2)
    provider(emu, tmp_path).fill(request(), FillHooks())
    assert emu.count("submit") == 3 and len(emu.billed) == 1


@pytest.mark.parametrize("kind", ["reset", "drop-response", "hang", "malformed"])
def test_submit_is_never_resent_when_the_answer_is_lost(emu, tmp_path, kind):
    emu.inject("submit", kind, 1)
    with pytest.raises(SubmitUncertain, match="NOT sent again|not re-sent"):
        provider(emu, tmp_path).fill(request(), FillHooks())
    assert emu.count("submit") == 1


@pytest.mark.parametrize("kind", ["500", "503", "502-ingress", "504-ingress"])
def test_a_submit_answered_5xx_is_uncertain_and_never_resent(emu, tmp_path, kind):
    """A 5xx may come after the task was created (sync mode: the gateway's 504 while it runs):
    treated like a lost answer — journaled "uncertain", not re-sent, noted on the re-run."""
    emu.inject("submit", kind, 1)
    with pytest.raises(SubmitUncertain, match=kind[:3]) as ei:
        provider(emu, tmp_path).fill(request(), FillHooks())
    assert isinstance(ei.value, TransportError) and "NOT sent again" in str(ei.value)
    assert emu.count("submit") == 1
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "uncertain"


def test_sync_mode_504_while_the_task_runs_on_and_bills(tmp_path):
    with WaveSpeedEmulator(KEY, run_seconds=0.6, sync_gateway_timeout=0.1) as emu:
        req = request(params={"enable_sync_mode": True})
        with pytest.raises(SubmitUncertain, match="504") as ei:
            provider(emu, tmp_path).fill(req, FillHooks())
        (sent,) = emu.requests
        assert sent["status"] == 504 and sent["request_id"] in emu.jobs and emu.count("submit") == 1
        assert "may have been created and billed" in str(ei.value)
        last = Journal(tmp_path / "state").entries()[-1]
        assert last["status"] == "uncertain" and last["request_id"] is None
        _wait(lambda: emu.state(sent["request_id"]) == "completed")
        assert [b["request_id"] for b in emu.billed] == [sent["request_id"]]   # it did bill
        emu.sync_gateway_timeout, emu.run_seconds = None, 0.1
        res = provider(emu, tmp_path).fill(req, FillHooks())
        assert any("earlier submit of these same inputs" in n for n in res.meta["notes"])
        assert emu.count("submit") == 2


def _wait(cond, timeout=10.0):
    import time
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("route,kind,count", [
    ("result", "429", 3), ("result", "500", 2), ("result", "502-ingress", 1), ("result", "reset", 2),
    ("result", "malformed", 2), ("result", "hang", 1), ("upload", "503", 1), ("upload", "reset", 1),
    ("file", "500", 1), ("file", "reset", 1)])
def test_polls_uploads_and_downloads_are_retried(emu, tmp_path, route, kind, count):
    emu.inject(route, kind, count)
    req = request()
    assert_filled(provider(emu, tmp_path).fill(req, FillHooks()), req)
    assert emu.count("submit") == 1 and len(emu.billed) == 1


def test_401_and_400(emu, tmp_path):
    with pytest.raises(AuthError, match="WAVESPEED_API_KEY") as ei:
        provider(emu, tmp_path, key="ws-wrong-key-999999").fill(request(), FillHooks())
    assert "ws-wrong-key-999999" not in str(ei.value)
    emu.inject("submit", "422", 1)
    with pytest.raises(RemoteRejected, match="Injected error"):
        provider(emu, tmp_path).fill(request(), FillHooks())


def test_failed_task(emu, tmp_path):
    emu.next_job(fail="inference crashed")
    with pytest.raises(RemoteFailed, match="inference crashed"):
        provider(emu, tmp_path).fill(request(), FillHooks())
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "failed"


def test_nsfw(emu, tmp_path):
    emu.next_job(nsfw=True)
    with pytest.raises(NSFWBlocked, match="flagged image 1 of 1 as NSFW"):
        provider(emu, tmp_path).fill(request(), FillHooks())
    res = provider(emu, tmp_path, nsfw="keep").fill(request(), FillHooks())
    assert res.meta["nsfw"] == [True] and float(res.images.max()) == 0.0 and emu.count("submit") == 1


def test_output_404(emu, tmp_path):
    emu.next_job(result_404=True)
    with pytest.raises(ResultUnavailable, match="billed"):
        provider(emu, tmp_path).fill(request(n=2), FillHooks())
    assert Ledger(tmp_path / "state").entries()[0]["cost_usd"] == pytest.approx(0.07) == emu.billed[0]["usd"]


@pytest.mark.parametrize("data_uri", [False, True])
def test_base64_output_with_or_without_a_data_prefix(emu, tmp_path, data_uri):
    """WaveSpeed sends plain base64 (no `data:` prefix): the paid result is decoded, cached,
    and a re-run reads the cache."""
    emu.base64_data_uri = data_uri
    req = request(n=2, params={"enable_base64_output": True})
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    (job,) = emu.jobs.values()
    assert all(o.startswith("data:") == data_uri for o in job.outputs)
    assert emu.count("file") == 0 and Journal(tmp_path / "state").entries()[-1]["status"] == "completed"
    assert provider(emu, tmp_path).fill(req, FillHooks()).meta["cached"] and emu.count("submit") == 1


def test_plain_base64_outputs_become_data_uris():
    urls, _ = WaveSpeedClient.outputs({"outputs": ["iVBORw0KGgo\nAAAA", "https://x/y.png",
                                                   "data:image/png;base64,AA=="]})
    assert urls == ["data:application/octet-stream;base64,iVBORw0KGgoAAAA=", "https://x/y.png",
                    "data:image/png;base64,AA=="]


def test_outputs_without_nsfw_flags_are_unknown_not_clean(emu, tmp_path):
    emu.next_job(nsfw=None)                       # has_nsfw_contents: []
    res = provider(emu, tmp_path).fill(request(n=2), FillHooks())
    assert res.meta["nsfw"] == [None, None] and "nsfw_message" not in res.meta
    assert any("no NSFW flag" in n and "unknown" in n for n in res.meta["notes"])
    assert res.meta["seeds"] == [3] and res.meta["seed"] == 3      # one per request: the seed sent


def test_a_decompression_bomb_output_is_refused_and_not_left_pending(emu, tmp_path):
    emu.next_job(output_data=bomb_png(30000, 30000))
    with pytest.raises(OutputRefused) as ei:
        provider(emu, tmp_path).fill(request(), FillHooks())
    rid, msg = ei.value.request_id, str(ei.value)
    assert "30000x30000" in msg and "67,108,864 pixels (8192x8192)" in msg
    assert f"/api/v3/predictions/{rid}/result" in msg and KEY not in msg
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "refused"
    assert Ledger(tmp_path / "state").entries()[0]["cost_usd"] == pytest.approx(0.035)
    res = provider(emu, tmp_path).fill(request(), FillHooks())
    assert res.meta["request_id"] != rid and emu.count("submit") == 2


def test_sync_mode(emu, tmp_path):
    req = request(params={"enable_sync_mode": True})
    assert_filled(provider(emu, tmp_path).fill(req, FillHooks()), req)


@pytest.mark.parametrize("when,plan", [("in queue", {"queue_seconds": None}),
                                       ("running", {"run_seconds": None})])
def test_cancel(emu, tmp_path, when, plan):
    emu.next_job(**plan)
    flag = threading.Event()
    hooks = FillHooks(progress=lambda f, t: flag.set() if when in t else None, cancelled=flag.is_set)
    with pytest.raises(RemoteCancelled) as ei:
        provider(emu, tmp_path).fill(request(), hooks)
    assert ei.value.request_id in emu.cancelled and emu.billed == []
    assert emu.count("cancel", method="DELETE") == 1
    # the status check after the DELETE confirms it stopped: terminal, a re-run submits anew
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "cancelled"
    res = provider(emu, tmp_path).fill(request(), FillHooks())
    assert res.meta["request_id"] != ei.value.request_id and emu.count("submit") == 2
    assert [b["request_id"] for b in emu.billed] == [res.meta["request_id"]]


def test_deadline_then_resume_bills_once(emu, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="fluxfill.hosted")
    emu.next_job(run_seconds=None)
    with pytest.raises(DeadlineExceeded, match="resume") as ei:
        provider(emu, tmp_path, deadline_s=0.3).fill(request(), FillHooks())
    emu.finish_job(ei.value.request_id)
    res = provider(emu, tmp_path).fill(request(), FillHooks())
    assert res.meta["resumed"] and res.meta["request_id"] == ei.value.request_id
    assert emu.count("submit") == 1 and len(emu.billed) == 1
    assert provider(emu, tmp_path).fill(request(), FillHooks()).meta["cached"]
    blobs = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert KEY.encode() not in blobs and KEY not in caplog.text and KEY not in str(ei.value)


@pytest.mark.timeout(20)
def test_cancel_acts_during_a_hung_poll(tmp_path):
    """The result poll hangs far past this test's timeout, with a 60 s poll read timeout:
    Cancel still cancels the remote task and raises while the poll hangs."""
    with WaveSpeedEmulator(KEY, run_seconds=None, hang_seconds=60.0) as emu:
        emu.inject("result", "hang", 1, seconds=60)
        slow = RetryPolicy(tries=3, backoff=0.01, read_timeout=60.0, poll_read_timeout=60.0)
        prov = WaveSpeedProvider(WaveSpeedClient(KEY, api_url=emu.base_url, policy=slow, poll=POLL),
                                 EP, tmp_path / "state")
        hooks = FillHooks(cancelled=lambda: emu.count("result") > 0)
        with pytest.raises(RemoteCancelled) as ei:
            prov.fill(request(), hooks)
        assert ei.value.request_id in emu.cancelled and emu.billed == []
        assert emu.count("cancel", method="DELETE") == 1
        assert Journal(tmp_path / "state").entries()[-1]["status"] == "cancelled"


# ---------------------------------------------------------------- a DELETE that came too late; uncertain submits
def test_cancel_not_honoured_the_rerun_returns_that_tasks_result(emu, tmp_path):
    emu.honour_cancel = False
    emu.next_job(run_seconds=None)
    flag = threading.Event()
    hooks = FillHooks(progress=lambda f, t: flag.set() if "running" in t else None, cancelled=flag.is_set)
    with pytest.raises(RemoteCancelled, match="may still finish and be billed") as ei:
        provider(emu, tmp_path).fill(request(), hooks)
    rid = ei.value.request_id
    assert rid in emu.cancelled and Journal(tmp_path / "state").entries()[-1]["status"] == "cancel_requested"
    emu.finish_job(rid)
    req = request()
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    assert res.meta["request_id"] == rid and res.meta["resumed"]
    assert any("cancelled earlier but completed" in n for n in res.meta["notes"])
    assert emu.count("submit") == 1 and [b["request_id"] for b in emu.billed] == [rid]
    assert provider(emu, tmp_path).fill(req, FillHooks()).meta["cached"]


def test_unconfirmed_cancel_that_did_stop_the_task_then_a_rerun_submits_anew(emu, tmp_path):
    emu.next_job(run_seconds=None)
    flag = threading.Event()

    def progress(f, text):
        if "running" in text and not flag.is_set():
            emu.inject("result", "500", 10)          # the check after the DELETE fails
            flag.set()
    with pytest.raises(RemoteCancelled) as ei:
        provider(emu, tmp_path).fill(request(), FillHooks(progress=progress, cancelled=flag.is_set))
    rid = ei.value.request_id
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "cancel_requested"
    emu.clear_faults()
    res = provider(emu, tmp_path).fill(request(), FillHooks())
    assert res.meta["request_id"] != rid and emu.count("submit") == 2
    assert any(f"request {rid}, cancelled earlier" in n for n in res.meta["notes"])
    assert [b["request_id"] for b in emu.billed] == [res.meta["request_id"]]
    assert [e for e in Journal(tmp_path / "state").entries() if e["request_id"] == rid][-1]["status"] == "cancelled"


def test_an_uncertain_submit_is_journaled_and_noted_on_the_rerun(emu, tmp_path):
    """drop-response: the task IS created, then the connection is reset. Nothing is re-sent;
    the journal records "uncertain"; the message says what that means; the re-run (a new
    task: WaveSpeed cannot list tasks) carries a note about the earlier submit."""
    emu.inject("submit", "drop-response", 1)
    with pytest.raises(SubmitUncertain) as ei:
        provider(emu, tmp_path).fill(request(), FillHooks())
    msg = str(ei.value)
    assert "NOT sent again" in msg and "may have been created and billed" in msg
    assert "no way to look a task up without its id" in msg and "submits a NEW task" in msg
    assert KEY not in msg and len(emu.jobs) == 1 and emu.count("submit") == 1
    last = Journal(tmp_path / "state").entries()[-1]
    assert last["status"] == "uncertain" and last["request_id"] is None and last["provider"] == "wavespeed"
    req = request()
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    assert emu.count("submit") == 2 and res.meta["input_hash"] == last["input_hash"]
    assert any("earlier submit of these same inputs" in n for n in res.meta["notes"])
    assert provider(emu, tmp_path).fill(req, FillHooks()).meta["cached"]   # noted once, then cached
