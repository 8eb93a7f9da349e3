"""FalClient / FalProvider against the loopback fal emulator (real HTTP on 127.0.0.1)."""
import logging
import sqlite3
import threading

import numpy as np
import pytest
import requests
import torch

from emulators import FalEmulator, bomb_png, fill_colour
from fluxfill.core.fill_protocol import FillHooks, FillRequest, run_batch
from fluxfill.core.hosted.client import PollSchedule
from fluxfill.core.hosted.errors import (AuthError, DeadlineExceeded, HostedError,
                                         HostedValidationError, InsecureURL, NSFWBlocked,
                                         OutputRefused, RemoteCancelled, RemoteFailed,
                                         RemoteRejected, ResultUnavailable, TransportError)
from fluxfill.core.hosted.fal import FalClient
from fluxfill.core.hosted.journal import Journal, Ledger
from fluxfill.core.hosted.provider import FalProvider
from fluxfill.core.hosted.retry import RetryPolicy
from fluxfill.core.hosted.transport import make_session

KEY = "fal-key-id-77:sk-VERY-SECRET-fal-0123456789"
FAST = RetryPolicy(tries=5, backoff=0.01, backoff_cap=0.05, retry_after_cap=0.05,
                   connect_timeout=1.0, read_timeout=0.5)
POLL = PollSchedule(first=0.02, factor=1.2, max=0.1, flat=5)
H, W = 64, 96
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def emu():
    e = FalEmulator(KEY, run_seconds=0.1, hang_seconds=2.0, retry_after="0.01").start()
    yield e
    e.stop()


class Recorder:
    """Every HTTP request the client sends: (method, url, Authorization header)."""

    def __init__(self):
        self.session = make_session()
        self.sent = []
        self.session.hooks["response"].append(self._hook)

    def _hook(self, resp, *a, **k):
        self.sent.append((resp.request.method, resp.request.url, resp.request.headers.get("Authorization")))


def client(emu, key=KEY, rec=None, **kw):
    return FalClient(key, queue_url=emu.queue_url, rest_url=emu.rest_url, policy=kw.pop("policy", FAST),
                     poll=POLL, session=rec.session if rec else None, **kw)


def provider(emu, tmp_path, endpoint="fal-ai/flux-lora/inpainting", rec=None, key=KEY, **kw):
    return FalProvider(client(emu, key, rec), endpoint, tmp_path / "state", **kw)


def request(prompt="a red door", seed=5, n=1, params=None, loras=None, index=0):
    y, x = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    img = torch.stack([y, x, torch.full_like(x, (seed % 7) / 7)], dim=-1)   # smooth: JPEG-safe
    mask = torch.zeros(H, W)
    mask[16:48, 24:72] = 1.0
    return FillRequest(img, mask, prompt, seed, n, loras=loras or [], params=params or {}, index=index)


def assert_filled(res, req, fmt="png"):
    """Inside the mask: the emulator's colour for (prompt, seed, i); outside: the source."""
    tol = 0.02 if fmt == "png" else 0.06
    for i in range(res.images.shape[0]):
        out = res.images[i].numpy()
        colour = np.array(fill_colour(req.prompt, req.seed, i)) / 255.0
        assert np.abs(out[30, 40] - colour).max() < tol
        assert np.abs(out[2, 2] - req.image[2, 2].numpy()).max() < tol + 0.01


FULL = {
    "fal-ai/flux-lora-fill": {"image_size": {"width": W, "height": H}, "steps": 12, "guidance": 31.5,
                              "enable_safety_checker": False, "output_format": "png",
                              "acceleration": "regular", "paste_back": True, "resize_to_original": True,
                              "fill_image": {"fill_image_url": "https://example.com/f.png",
                                             "in_context_fill": True, "use_prompt": True},
                              "loras": [{"path": "https://example.com/l.safetensors", "scale": 0.6}]},
    "fal-ai/flux-lora/inpainting": {"num_inference_steps": 20, "guidance_scale": 4.5, "strength": 0.7,
                                    "output_format": "png", "acceleration": "regular",
                                    "enable_safety_checker": True},
    "fal-ai/flux-pro/v1/fill": {"safety_tolerance": 5, "enhance_prompt": True, "output_format": "png"},
    "fal-ai/flux-general/inpainting": {"steps": 10, "guidance": 3.0, "strength": 0.9,
                                       "loras": [{"path": "owner/repo", "scale": {"layer.0": 0.5}}],
                                       "controlnets": [{"path": "XLabs/canny", "control_image_url":
                                                        torch.rand(H, W, 3), "conditioning_scale": 0.7}],
                                       "controlnet_unions": [{"path": "InstantX/union", "controls": [
                                           {"control_image_url": "https://example.com/d.png",
                                            "control_mode": "depth"}]}]},
}


@pytest.mark.parametrize("endpoint", list(FULL))
def test_each_endpoint_with_its_params(emu, tmp_path, endpoint):
    stack = [("https://example.com/stack.safetensors", 0.8, 1.0)] if endpoint != "fal-ai/flux-pro/v1/fill" else []
    req = request(n=2, params=FULL[endpoint], loras=stack)
    prov = provider(emu, tmp_path, endpoint)
    est = prov.estimate(req)
    res = prov.fill(req, FillHooks())
    assert res.images.shape == (2, H, W, 3) and res.images.dtype == torch.float32
    assert_filled(res, req)
    sent = emu.requests[-1]
    assert sent["status"] == 200 and sent["unknown_fields"] == []
    p = sent["payload"]
    assert p["prompt"] == "a red door" and p["seed"] == 5 and p["num_images"] == 2
    assert p["image_url"].startswith("data:image/png;base64,")
    assert sent["image_format"] == "PNG" and sent["mask_format"] == "PNG"
    assert sent["image_size"] == sent["mask_size"] == (W, H)
    if endpoint == "fal-ai/flux-lora-fill":
        assert p["guidance_scale"] == 31.5 and p["num_inference_steps"] == 12 and p["paste_back"] is True
        assert p["fill_image"]["in_context_fill"] is True and p["acceleration"] == "regular"
        assert p["loras"] == [{"path": "https://example.com/stack.safetensors", "scale": 0.8},
                              {"path": "https://example.com/l.safetensors", "scale": 0.6}]
        assert est.usd is None and res.meta["cost_usd"] is None
    if endpoint == "fal-ai/flux-lora/inpainting":
        assert p["strength"] == 0.7 and p["guidance_scale"] == 4.5 and p["image_size"] == {"width": W, "height": H}
    if endpoint == "fal-ai/flux-pro/v1/fill":
        assert p["safety_tolerance"] == "5" and p["enhance_prompt"] is True
        assert not {"loras", "guidance_scale", "num_inference_steps", "image_size", "strength",
                    "enable_safety_checker"} & set(p)
    if endpoint == "fal-ai/flux-general/inpainting":
        assert p["loras"][1] == {"path": "owner/repo", "scale": {"layer.0": 0.5}}
        assert p["controlnets"][0]["control_image_url"].startswith("data:image/png;base64,")
        assert p["controlnet_unions"][0]["controls"][0]["control_mode"] == "depth"
    billed = emu.billed
    assert len(billed) == 1 and billed[0]["request_id"] == res.meta["request_id"]
    assert res.meta["cost_usd"] == (billed[0]["usd"] if billed[0]["usd"] is None else pytest.approx(billed[0]["usd"]))
    assert est.usd == res.meta["estimate_usd"]
    assert res.meta["seed"] == 5 and res.meta["nsfw"] == [False, False] and res.meta["cached"] is False
    assert res.meta["seeds"] == [5]          # fal returns ONE seed per request, not one per image
    assert any("does not report a seed per image" in n for n in res.meta["notes"])
    ledger = Ledger(tmp_path / "state").entries()
    assert [e["request_id"] for e in ledger] == [res.meta["request_id"]]


def test_uploads_use_the_cdn_token_and_key_goes_only_to_the_api(emu, tmp_path):
    rec = Recorder()
    prov = provider(emu, tmp_path, rec=rec, data_uri_limit=0)
    req = request()
    res = prov.fill(req, FillHooks())
    assert_filled(res, req)
    assert [u["via"] for u in emu.uploads] == ["cdn", "cdn"]
    p = emu.requests[-1]["payload"]
    assert p["image_url"].startswith(emu.cdn_url) and p["mask_url"].startswith(emu.cdn_url)
    assert emu.count("token") == 1                     # the token is reused for the mask
    for _method, url, auth in rec.sent:
        if "/cdn/files/upload" in url:
            assert auth.startswith("Bearer ") and KEY not in auth
        elif "/cdn/" in url:
            assert auth is None, url                   # downloads carry no credential
        else:
            assert auth == f"Key {KEY}"
    assert any("/cdn/files/" in u and m == "GET" for m, u, _ in rec.sent)


def test_progress_reports_queue_logs_and_elapsed(emu, tmp_path):
    emu.next_job(queue_seconds=0.15, run_seconds=0.25)
    seen = []
    provider(emu, tmp_path).fill(request(), FillHooks(progress=lambda f, t: seen.append((f, t))))
    texts = " | ".join(t for _, t in seen)
    assert "in queue (position 0)" in texts and "step " in texts and "s" in texts
    fracs = [f for f, _ in seen]
    assert fracs == sorted(fracs) and fracs[-1] == 1.0


@pytest.mark.parametrize("route,kind,count", [
    ("submit", "429", 3), ("submit", "502-ingress", 1), ("submit", "503-ingress", 1),
    ("submit", "504-ingress", 1), ("submit", "reset", 2), ("submit", "hang", 1),
    ("status", "429", 2), ("status", "500", 2), ("status", "503", 1), ("status", "reset", 2),
    ("status", "malformed", 2), ("status", "hang", 1), ("result", "502-ingress", 1),
    ("result", "reset", 1), ("result", "malformed", 1), ("file", "503", 2), ("file", "reset", 1),
    ("token", "429", 1), ("upload", "500", 1),
])
def test_transient_faults_are_retried(emu, tmp_path, route, kind, count):
    emu.inject(route, kind, count)
    prov = provider(emu, tmp_path, data_uri_limit=0 if route in ("token", "upload") else None)
    req = request()
    res = prov.fill(req, FillHooks())
    assert_filled(res, req)
    assert len(emu.billed) == 1
    assert emu.count(route) > count


def test_app_5xx_on_submit_is_not_retried(emu, tmp_path):
    emu.inject("submit", "500", 1)           # carries x-fal-request-id: the app answered
    with pytest.raises(TransportError, match="HTTP 500") as ei:
        provider(emu, tmp_path).fill(request(), FillHooks())
    assert ei.value.status == 500 and emu.count("submit") == 1
    assert Journal(tmp_path / "state").entries() == []


def test_429_storm_exhausts_retries(emu, tmp_path):
    emu.inject("submit", "429", 50)
    with pytest.raises(TransportError, match="HTTP 429 after 5 tries"):
        provider(emu, tmp_path).fill(request(), FillHooks())
    assert emu.count("submit") == 5 and emu.billed == []


def test_401_names_the_key_source_and_hides_the_key(emu, tmp_path):
    bad = "sk-WRONG-key-abcdef123456"
    with pytest.raises(AuthError) as ei:
        provider(emu, tmp_path, key=bad).fill(request(), FillHooks())
    msg = str(ei.value)
    assert "HTTP 401" in msg and "FAL_KEY" in msg and bad not in msg and emu.count("submit") == 1


def test_422_is_reported_with_the_providers_detail(emu, tmp_path):
    emu.inject("submit", "422", 1)
    with pytest.raises(RemoteRejected, match="Injected error") as ei:
        provider(emu, tmp_path).fill(request(), FillHooks())
    assert ei.value.status == 422 and emu.count("submit") == 1


def test_validation_fails_before_anything_is_sent(emu, tmp_path):
    with pytest.raises(HostedValidationError, match="strength must be between 0.01 and 1"):
        provider(emu, tmp_path).fill(request(params={"strength": 2}), FillHooks())
    with pytest.raises(HostedValidationError, match="local file only"):
        provider(emu, tmp_path).fill(request(loras=[("mine.safetensors", 1.0, 1.0)]), FillHooks())
    with pytest.raises(HostedValidationError, match="takes no LoRAs"):
        provider(emu, tmp_path, "fal-ai/flux-pro/v1/fill").fill(
            request(loras=[("https://x.com/a.safetensors", 1.0, 1.0)]), FillHooks())
    assert emu.calls == []


def test_nsfw_outputs_raise_a_clear_error_or_are_flagged(emu, tmp_path):
    emu.next_job(nsfw=[False, True])
    with pytest.raises(NSFWBlocked) as ei:
        provider(emu, tmp_path).fill(request(n=2), FillHooks())
    msg = str(ei.value)
    assert "flagged image 2 of 2 as NSFW" in msg and "enable_safety_checker" in msg
    assert ei.value.result.meta["nsfw"] == [False, True] and ei.value.result.images.shape[0] == 2
    kept = provider(emu, tmp_path, nsfw="keep").fill(request(n=2), FillHooks())   # from cache
    assert kept.meta["cached"] and kept.meta["nsfw"] == [False, True] and "NSFW" in kept.meta["nsfw_message"]
    assert emu.count("submit") == 1 and len(emu.billed) == 1


def test_result_url_404_is_reported_as_billed_and_lost(emu, tmp_path):
    emu.next_job(result_404=True)
    with pytest.raises(ResultUnavailable, match="completed \\(and is billed\\)") as ei:
        provider(emu, tmp_path).fill(request(), FillHooks())
    rid = ei.value.request_id
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "lost"
    assert Ledger(tmp_path / "state").entries()[0]["request_id"] == rid
    res = provider(emu, tmp_path).fill(request(), FillHooks())      # a re-run submits anew
    assert res.meta["request_id"] != rid and emu.count("submit") == 2


def test_failed_job_is_not_resumed_and_a_rerun_submits_again(emu, tmp_path):
    emu.next_job(fail="CUDA out of memory", error_type="runner_error")
    with pytest.raises(RemoteFailed, match="CUDA out of memory.*not billed"):
        provider(emu, tmp_path).fill(request(), FillHooks())
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "failed"
    provider(emu, tmp_path).fill(request(), FillHooks())
    assert emu.count("submit") == 2 and len(emu.billed) == 1


def _cancel_when(text):
    flag = threading.Event()
    return flag, FillHooks(progress=lambda f, t: flag.set() if text in t else None,
                              cancelled=flag.is_set)


def test_cancel_while_queued(emu, tmp_path):
    emu.next_job(queue_seconds=None)
    flag, hooks = _cancel_when("in queue")
    with pytest.raises(RemoteCancelled) as ei:
        provider(emu, tmp_path).fill(request(), hooks)
    rid = ei.value.request_id
    assert rid in emu.cancelled and emu.jobs[rid].cancelled and emu.billed == []
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "cancelled"


def test_cancel_while_running(emu, tmp_path):
    emu.next_job(run_seconds=None)
    flag, hooks = _cancel_when("Starting inference")
    with pytest.raises(RemoteCancelled, match="CANCELLATION_REQUESTED") as ei:
        provider(emu, tmp_path).fill(request(), hooks)
    assert ei.value.request_id in emu.cancelled and emu.billed == []


def test_deadline_leaves_the_request_pending_and_a_rerun_resumes_it(emu, tmp_path):
    emu.next_job(run_seconds=None)
    with pytest.raises(DeadlineExceeded, match="run the same inputs again to resume") as ei:
        provider(emu, tmp_path, deadline_s=0.4).fill(request(), FillHooks())
    rid = ei.value.request_id
    assert Journal(tmp_path / "state").pending  # entry exists
    entries = Journal(tmp_path / "state").entries()
    assert entries[-1]["status"] == "pending" and entries[-1]["request_id"] == rid
    emu.finish_job(rid)
    res = provider(emu, tmp_path).fill(request(), FillHooks())        # a new client, same dir
    assert res.meta["request_id"] == rid and res.meta["resumed"] is True
    assert emu.count("submit") == 1 and len(emu.billed) == 1
    again = provider(emu, tmp_path).fill(request(), FillHooks())
    assert again.meta["cached"] and again.meta["cost_usd"] == 0.0 and emu.count("submit") == 1
    assert torch.equal(again.images, res.images)
    new = provider(emu, tmp_path, force_new=True).fill(request(), FillHooks())
    assert new.meta["request_id"] != rid and emu.count("submit") == 2


class Killed(BaseException):
    """Stands in for a thread/process dying mid-poll (nothing in the client catches it)."""


def test_killed_mid_poll_then_a_new_client_resumes(emu, tmp_path):
    emu.next_job(run_seconds=0.5)

    def die(f, t):
        if "step" in t:
            raise Killed()
    with pytest.raises(Killed):
        provider(emu, tmp_path).fill(request(), FillHooks(progress=die))
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "pending"
    res = provider(emu, tmp_path).fill(request(), FillHooks())
    assert res.meta["resumed"] and emu.count("submit") == 1 and len(emu.billed) == 1


def test_resumed_request_unknown_to_the_provider(emu, tmp_path):
    emu.next_job(run_seconds=None)
    with pytest.raises(DeadlineExceeded) as ei:
        provider(emu, tmp_path, deadline_s=0.3).fill(request(), FillHooks())
    emu.jobs.pop(ei.value.request_id)                       # expired on the provider's side
    with pytest.raises(ResultUnavailable, match="NEW, paid request"):
        provider(emu, tmp_path).fill(request(), FillHooks())
    provider(emu, tmp_path).fill(request(), FillHooks())
    assert emu.count("submit") == 2


def test_sync_mode_data_uri_outputs(emu, tmp_path):
    req = request(params={"sync_mode": True, "output_format": "png"})
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    assert emu.count("file") == 0


def test_jpeg_outputs_and_concurrent_batch(emu, tmp_path):
    prov = provider(emu, tmp_path)
    reqs = [request(seed=s, index=i) for i, s in enumerate((1, 2, 3))]
    results = run_batch(prov, reqs, FillHooks(), concurrency=3)
    for r, q in zip(results, reqs):
        assert_filled(r, q, fmt="jpeg")
        assert r.meta["index"] == q.index
    assert len(emu.billed) == 3 and len({r.meta["request_id"] for r in results}) == 3


def test_identical_concurrent_requests_pay_once(emu, tmp_path):
    prov = provider(emu, tmp_path)
    results = run_batch(prov, [request(), request()], FillHooks(), concurrency=2)
    assert emu.count("submit") == 1 and sorted(r.meta["cached"] for r in results) == [False, True]


def test_key_never_leaks_into_files_logs_or_errors(emu, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="fluxfill.hosted")
    errors = []
    emu.inject("status", "429", 2)
    provider(emu, tmp_path, data_uri_limit=0).fill(request(), FillHooks())
    for plan in ({"fail": f"boom {KEY}"}, {"nsfw": True}, {"result_404": True}):
        emu.next_job(**plan)
        try:
            provider(emu, tmp_path).fill(request(seed=len(errors) + 10), FillHooks())
        except HostedError as e:
            errors.append(str(e) + repr(e))
    emu.inject("submit", "422", 1)
    for fn in (lambda: provider(emu, tmp_path).fill(request(seed=99), FillHooks()),
               lambda: provider(emu, tmp_path, key=KEY + "x").fill(request(seed=98), FillHooks())):
        try:
            fn()
        except HostedError as e:
            errors.append(str(e) + repr(e))
    assert len(errors) == 5
    secret_parts = [KEY, "sk-VERY-SECRET-fal-0123456789"]
    blobs = [p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert len(blobs) >= 4
    for part in secret_parts:
        assert not any(part.encode() in b for b in blobs)
        assert part not in caplog.text
        assert not any(part in e for e in errors)
    assert "***" in errors[0]                                # the echoed key was redacted
    for r in emu.requests:
        assert "authorization" not in {k.lower() for k in r["headers"]}
        assert KEY not in str(r["payload"])


def test_plain_http_output_urls_to_other_hosts_are_refused(emu, tmp_path):
    c = client(emu)
    with pytest.raises(InsecureURL):
        c.download("http://example.com/x.png", max_bytes=10)
    with pytest.raises(TransportError, match="limit"):
        c.download(emu.add_file(b"\x89PNG" + b"0" * 5000), max_bytes=100)


def test_low_level_client_calls(emu):
    c = client(emu)
    png = np.zeros((8, 8, 3), np.uint8)
    from fluxfill.core.hosted.images import png_bytes, data_uri
    url = c.upload(png_bytes(png, "RGB"), "image/png", "x.png")
    assert requests.get(url).content.startswith(b"\x89PNG")
    emu.next_job(queue_seconds=None)
    h = c.submit("fal-ai/flux-pro/v1/fill", {"prompt": "p", "image_url": url,
                                              "mask_url": data_uri(png_bytes(png[:, :, 0], "L"))})
    assert h.status_url.endswith(f"/fal-ai/flux-pro/requests/{h.request_id}/status")
    assert c.status(h)["status"] == "IN_QUEUE"
    assert c.cancel(h) == "CANCELLATION_REQUESTED"
    assert h.request_id in emu.cancelled


# ---------------------------------------------------------------- cancel latency, double work, bookkeeping
SLOW = RetryPolicy(tries=3, backoff=0.01, backoff_cap=0.05, connect_timeout=5.0, read_timeout=60.0,
                   poll_read_timeout=60.0)


def _cancel_once(emu, route):
    """A cancel flag that rises once the emulator has received a `route` call."""
    return FillHooks(cancelled=lambda: emu.count(route) > 0)


@pytest.mark.timeout(20)
def test_cancel_acts_during_a_hung_poll():
    """The status poll hangs (60 s, far past this test's timeout) and the poll read timeout is
    60 s: only watching the cancel flag during the call lets Cancel act: the remote job is
    cancelled and RemoteCancelled raised while the poll is still hanging."""
    with FalEmulator(KEY, run_seconds=None, hang_seconds=60.0) as emu, \
            __import__("tempfile").TemporaryDirectory() as tmp:
        emu.inject("status", "hang", 1, seconds=60)
        prov = FalProvider(FalClient(KEY, queue_url=emu.queue_url, rest_url=emu.rest_url,
                                     policy=SLOW, poll=POLL), "fal-ai/flux-lora/inpainting", tmp)
        with pytest.raises(RemoteCancelled, match="CANCELLATION_REQUESTED") as ei:
            prov.fill(request(), _cancel_once(emu, "status"))
        rid = ei.value.request_id
        assert rid in emu.cancelled and emu.jobs[rid].cancelled and emu.billed == []
        # the one hung poll (cancel did not wait it out), the cancel, then one status check
        # that confirms the job stopped: only then is the entry terminal
        assert emu.count("status") == 2
        assert [c["route"] for c in emu.calls][-2:] == ["cancel", "status"]
        assert Journal(tmp).entries()[-1]["status"] == "cancelled"


def test_prepare_then_fill_encodes_the_inputs_once(emu, tmp_path, monkeypatch):
    from fluxfill.core.hosted import images
    calls = []
    real = images.encode_image
    monkeypatch.setattr(images, "encode_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    prov = provider(emu, tmp_path)
    req = request()
    prep = prov.prepare(req)
    res = prov.fill(req, FillHooks())
    assert len(calls) == 1 and res.meta["input_hash"] == prep.input_hash
    assert_filled(res, req)
    other = request()                        # an equal but different object: prepared anew
    prov.prepare(req)
    prov.fill(other, FillHooks())
    assert len(calls) == 3


def test_journal_write_failure_after_submit_keeps_the_paid_result(emu, tmp_path, monkeypatch):
    from fluxfill.core.hosted import store
    insert = store._insert_journal

    def failing(con, rec):                               # the database refuses the "pending" row
        if rec.get("status") == "pending":
            raise sqlite3.OperationalError("disk I/O error")
        return insert(con, rec)
    monkeypatch.setattr(store, "_insert_journal", failing)
    req = request()
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    assert any("journal write failed" in n for n in res.meta["notes"])
    assert len(emu.billed) == 1
    assert provider(emu, tmp_path).fill(req, FillHooks()).meta["cached"]   # the cache has it
    assert emu.count("submit") == 1


def test_cache_write_failure_keeps_the_request_resumable(emu, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "cache").write_text("not a directory")
    req = request()
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    assert any("result cache write failed" in n for n in res.meta["notes"])
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "pending"
    (tmp_path / "state" / "cache").unlink()
    again = provider(emu, tmp_path).fill(req, FillHooks())
    assert again.meta["resumed"] and again.meta["request_id"] == res.meta["request_id"]
    assert emu.count("submit") == 1 and len(emu.billed) == 1
    assert len(Ledger(tmp_path / "state").entries()) == 1


def test_a_cancel_that_did_not_get_through_stays_resumable(emu, tmp_path):
    emu.next_job(run_seconds=None)
    emu.inject("cancel", "500", 20)
    flag, hooks = _cancel_when("Starting inference")
    with pytest.raises(RemoteCancelled, match="cancel failed") as ei:
        provider(emu, tmp_path).fill(request(), hooks)
    rid = ei.value.request_id
    assert rid not in emu.cancelled
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "pending"
    emu.clear_faults()
    emu.finish_job(rid)                      # it ran on and is billed: the re-run fetches it
    res = provider(emu, tmp_path).fill(request(), FillHooks())
    assert res.meta["resumed"] and res.meta["request_id"] == rid
    assert emu.count("submit") == 1 and len(emu.billed) == 1


# ---------------------------------------------------------------- cancel of a running job: resumable until confirmed
def test_cancel_confirmed_by_the_provider_is_terminal_and_a_rerun_submits_anew(emu, tmp_path):
    emu.next_job(run_seconds=None)
    flag, hooks = _cancel_when("Starting inference")
    with pytest.raises(RemoteCancelled) as ei:
        provider(emu, tmp_path).fill(request(), hooks)
    rid = ei.value.request_id
    assert ei.value.remote_state == "cancelled"          # the status check after the cancel
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "cancelled"
    req = request()
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    assert res.meta["request_id"] != rid and not res.meta["resumed"]
    assert emu.count("submit") == 2 and [b["request_id"] for b in emu.billed] == [res.meta["request_id"]]


def test_cancel_not_honoured_the_rerun_returns_that_jobs_result(emu, tmp_path):
    """fal only signals a running job: this one finishes and is billed anyway. The entry
    stays resumable ("cancel_requested"), so the re-run fetches it instead of paying again."""
    emu.honour_cancel = False
    emu.next_job(run_seconds=None)
    flag, hooks = _cancel_when("Starting inference")
    with pytest.raises(RemoteCancelled, match="may still finish and be billed") as ei:
        provider(emu, tmp_path).fill(request(), hooks)
    rid = ei.value.request_id
    assert rid in emu.cancelled and not emu.jobs[rid].cancelled
    last = Journal(tmp_path / "state").entries()[-1]
    assert last["status"] == "cancel_requested" and last["request_id"] == rid
    emu.finish_job(rid)
    req = request()
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    assert res.meta["request_id"] == rid and res.meta["resumed"]
    assert any("cancelled earlier but completed" in n for n in res.meta["notes"])
    assert emu.count("submit") == 1 and [b["request_id"] for b in emu.billed] == [rid]
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "completed"
    again = provider(emu, tmp_path).fill(req, FillHooks())
    assert again.meta["cached"] and emu.count("submit") == 1 and len(Ledger(tmp_path / "state").entries()) == 1


@pytest.mark.parametrize("rerun_fault", [None, "404"])
def test_unconfirmed_cancel_that_did_stop_the_job_then_a_rerun_submits_anew(emu, tmp_path, rerun_fault):
    """The status check after the cancel gets no answer: the entry stays "cancel_requested".
    The re-run learns the job was cancelled (or is unknown: 404), marks it terminal and submits
    once more; only the new job is billed."""
    emu.next_job(run_seconds=None)
    flag = threading.Event()

    def progress(f, text):
        if "Starting inference" in text and not flag.is_set():
            emu.inject("status", "500", 10)          # the check after the cancel fails
            flag.set()
    with pytest.raises(RemoteCancelled) as ei:
        provider(emu, tmp_path).fill(request(), FillHooks(progress=progress, cancelled=flag.is_set))
    rid = ei.value.request_id
    assert emu.jobs[rid].cancelled and ei.value.remote_state == "unknown"
    assert Journal(tmp_path / "state").entries()[-1]["status"] == "cancel_requested"
    emu.clear_faults()
    if rerun_fault:
        emu.inject("status", rerun_fault, 1)
    req = request()
    res = provider(emu, tmp_path).fill(req, FillHooks())
    assert_filled(res, req)
    assert res.meta["request_id"] != rid and emu.count("submit") == 2
    assert any(f"request {rid}, cancelled earlier" in n for n in res.meta["notes"])
    assert [b["request_id"] for b in emu.billed] == [res.meta["request_id"]]
    first = [e for e in Journal(tmp_path / "state").entries() if e["request_id"] == rid]
    assert first[-1]["status"] == ("expired" if rerun_fault else "cancelled")


def test_a_submit_gets_a_sane_time_even_near_the_deadline():
    from fluxfill.core.hosted.client import MIN_SUBMIT_S, submit_deadline
    from fluxfill.core.hosted.retry import Deadline
    from fluxfill.core.hosted.transport import Transport
    t = Transport("fal", ["https://queue.fal.run"], "Key k", policy=RetryPolicy(read_timeout=60.0))
    near = Deadline(0.05)
    connect, read = t._timeout(submit_deadline(near), "submit")
    assert read >= MIN_SUBMIT_S - 1 and MIN_SUBMIT_S >= 30
    far = Deadline(600)
    assert submit_deadline(far) is far and t._timeout(far, "submit")[1] == 60.0
    passed = Deadline(0.0)
    with pytest.raises(DeadlineExceeded):        # a passed deadline sends nothing
        t._timeout(submit_deadline(passed), "submit")


# ---------------------------------------------------------------- provider truth (fal's published schemas)
def _range_edges():
    """(endpoint, field, value): every numeric bound of the pack's table for fal, and the
    conditioning_scale bounds of flux-general's controlnets."""
    from fluxfill.core.hosted.endpoint_table import ENDPOINTS, endpoints_for
    out = []
    for ep in endpoints_for("fal"):
        for name, rule in ENDPOINTS[ep].rules.items():
            if name != "seed" and rule.min is not None and rule.max is not None and not rule.choices:
                out += [(ep, name, rule.min), (ep, name, rule.max)]
    return out


def test_the_pack_accepts_nothing_fal_refuses(emu, tmp_path):
    """Every bound the pack allows reaches the emulator (fal's own schema, written out on its
    own) and is accepted there; flux-general's guidance 25 is refused by both."""
    from fluxfill.core.hosted.images import data_uri, encode_image
    from fluxfill.core.hosted.params import build_payload, validate
    png = encode_image(torch.rand(H, W, 3))[0]
    fal = client(emu)
    general = "fal-ai/flux-general/inpainting"
    cases = _range_edges() + [(general, "controlnets", [{"path": "p", "control_image_url": data_uri(png),
                                                         "conditioning_scale": scale}]) for scale in (0, 2)]
    cases += [(general, "controlnet_unions", [{"path": "p", "controls": [
        {"control_image_url": data_uri(png), "control_mode": "canny", "conditioning_scale": scale}]}])
        for scale in (0, 2)]
    assert (general, "guidance_scale", 20) in cases and len(cases) > 20
    for ep, name, value in cases:
        params = validate(ep, {"prompt": "p", name: value})
        fal.submit(ep, build_payload(ep, params, data_uri(png), data_uri(png)))
        assert emu.requests[-1]["status"] == 200, (ep, name, value, emu.requests[-1]["errors"])
    for name, bad in [("guidance_scale", 25), ("controlnets", [{"path": "p", "control_image_url": data_uri(png),
                                                                 "conditioning_scale": 2.5}])]:
        with pytest.raises(HostedValidationError, match="between 0 and 2"):
            validate(general, {"prompt": "p", name: bad})
        body = {"prompt": "p", "image_url": data_uri(png), "mask_url": data_uri(png), name: bad}
        with pytest.raises(RemoteRejected, match=name):
            fal.submit(general, body)
        assert emu.requests[-1]["status"] == 422


def test_flux_general_is_billed_and_estimated_per_whole_megapixel(emu, tmp_path):
    req = request(n=2, params={"image_size": {"width": 1024, "height": 768}})
    prov = provider(emu, tmp_path, "fal-ai/flux-general/inpainting")
    res = prov.fill(req, FillHooks())
    (billed,) = emu.billed
    assert billed["usd"] == pytest.approx(0.075 * 2)            # 0.75 MP each, rounded up to 1
    assert res.meta["estimate_usd"] == pytest.approx(0.15) and res.meta["cost_usd"] == pytest.approx(0.15)


def test_outputs_without_nsfw_flags_are_unknown_not_clean():
    result = {"images": [{"url": "https://v3.fal.media/files/a.png"}, {"url": "https://v3.fal.media/files/b.png"}],
              "seed": 1}
    assert FalClient.outputs(result)[1] == [None, None]
    assert FalClient.outputs({**result, "has_nsfw_concepts": [True]})[1] == [True, None]


def test_a_decompression_bomb_output_names_size_cap_and_request_id(emu, tmp_path):
    """The CDN serves a PNG whose header claims 30000x30000: refused before decoding, with the
    size, the cap and the request id to fetch the paid result by; the journal entry is
    terminal ("refused", never pending forever), the ledger keeps the cost."""
    emu.next_job(output_data=bomb_png(30000, 30000))
    with pytest.raises(OutputRefused) as ei:
        provider(emu, tmp_path).fill(request(), FillHooks())
    rid, msg = ei.value.request_id, str(ei.value)
    assert rid == emu.requests[-1]["request_id"] and [b["request_id"] for b in emu.billed] == [rid]
    assert "30000x30000" in msg and "900,000,000 pixels" in msg and "67,108,864 pixels (8192x8192)" in msg
    assert f"under request id {rid}" in msg and f"/requests/{rid}" in msg and "billed" in msg
    assert KEY not in msg and KEY.split(":")[1] not in msg
    last = Journal(tmp_path / "state").entries()[-1]
    assert last["status"] == "refused" and last["request_id"] == rid and "30000x30000" in last["error"]
    assert Journal(tmp_path / "state").pending(last["input_hash"]) is None
    (line,) = Ledger(tmp_path / "state").entries()
    assert line["request_id"] == rid and line["outputs_refused"] is True
    req = request()
    res = provider(emu, tmp_path).fill(req, FillHooks())        # a re-run submits anew, with a note
    assert_filled(res, req)
    assert res.meta["request_id"] != rid and emu.count("submit") == 2
    assert any(rid in n and "refused" in n for n in res.meta["notes"])
