"""Pure parts of the hosted core: URL rule, redaction, keys, journal / cache / ledger, image
encoding and safe decoding."""
import io
import json
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from fluxfill.core.hosted import images, keys, retry, transport
from emulators import bomb_png
from fluxfill.core.hosted.errors import (HostedValidationError, InsecureURL, MissingKey, OutputRefused,
                                         TransportError)
from fluxfill.core.hosted.fal import FalClient
from fluxfill.core.hosted.journal import Journal, Ledger, ResultCache, input_hash
from fluxfill.core.hosted.wavespeed import WaveSpeedClient

SECRET = "fal-id-123456:sk-SECRET-abcdef987654"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/x", "http://127.5.6.7/x", "http://localhost:1/x",
                                 "http://[::1]:9/x", "https://queue.fal.run", "https://1.2.3.4/x"])
def test_allowed_urls(url):
    assert transport.check_url(url, "t") == url


@pytest.mark.parametrize("url,text", [("http://queue.fal.run/x", "only allowed to loopback"),
                                      ("http://10.0.0.1/x", "only allowed to loopback"),
                                      ("http://localhost.evil.com/x", "only allowed to loopback"),
                                      ("ftp://127.0.0.1/x", "expected an https:// URL"),
                                      ("file:///etc/passwd", "expected an https:// URL")])
def test_refused_urls(url, text):
    with pytest.raises(InsecureURL, match=text):
        transport.check_url(url, "FAL_QUEUE_URL")
    with pytest.raises(ValueError):
        transport.check_url(url, "x")


def test_clients_refuse_plain_http_base_urls():
    with pytest.raises(InsecureURL, match="FAL_QUEUE_URL"):
        FalClient("k", queue_url="http://queue.fal.run")
    with pytest.raises(InsecureURL, match="FAL_REST_URL"):
        FalClient("k", rest_url="http://example.com")
    with pytest.raises(InsecureURL, match="WAVESPEED_API_URL"):
        WaveSpeedClient.from_env(env={"WAVESPEED_API_KEY": "k", "WAVESPEED_API_URL": "http://api.x.ai"})
    c = FalClient.from_env(env={"FAL_KEY": "k", "FAL_QUEUE_URL": "http://127.0.0.1:9/q"})
    assert c.queue_url == "http://127.0.0.1:9/q" and c.rest_url == "https://rest.fal.ai"


def test_redactor():
    r = transport.Redactor([SECRET])
    text = f"bad key {SECRET}; id fal-id-123456; secret sk-SECRET-abcdef987654; Authorization: Key abcdefgh123"
    out = r(text)
    assert "SECRET" not in out and "fal-id-123456" not in out and "abcdefgh123" not in out
    assert out.count("***") >= 3
    assert r("Bearer zzzzzzzzzz") == "Bearer ***"


def test_secret_and_clients_hide_the_key():
    s = keys.Secret(SECRET)
    assert SECRET not in repr(s) + str(s) + f"{s}" + repr([s])
    assert s.reveal() == SECRET
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(s)
    fal = FalClient(SECRET, queue_url="http://127.0.0.1:1/q", rest_url="http://127.0.0.1:1/r")
    wavespeed = WaveSpeedClient(SECRET, api_url="http://127.0.0.1:1")
    for obj in (fal, wavespeed, fal.t, wavespeed.t, fal.t.redact):
        assert "SECRET" not in repr(obj)


def test_keys_env_wins_over_file(tmp_path):
    keys.save_key("fal", "file-fal-key", tmp_path)
    keys.save_key("wavespeed", "file-ws-key", tmp_path)
    f = tmp_path / "fluxfill" / "keys.json"
    assert json.loads(f.read_text()) == {"fal": "file-fal-key", "wavespeed": "file-ws-key"}
    assert (f.stat().st_mode & 0o777) == 0o600
    assert keys.load_key("fal", tmp_path, env={}).reveal() == "file-fal-key"
    assert keys.load_key("fal", tmp_path, env={"FAL_KEY": " env-key "}).reveal() == "env-key"
    assert keys.load_key("wavespeed", tmp_path, env={"FAL_KEY": "x"}).reveal() == "file-ws-key"


def test_missing_and_broken_key_files(tmp_path):
    with pytest.raises(MissingKey) as ei:
        keys.load_key("wavespeed", tmp_path, env={})
    assert "WAVESPEED_API_KEY" in str(ei.value) and "keys.json" in str(ei.value)
    (tmp_path / "fluxfill").mkdir()
    (tmp_path / "fluxfill" / "keys.json").write_text("{not json " + SECRET)
    with pytest.raises(MissingKey) as ei:
        keys.load_key("fal", tmp_path, env={})
    assert "not valid JSON" in str(ei.value) and SECRET not in str(ei.value)
    with pytest.raises(ValueError, match="unknown provider"):
        keys.load_key("replicate", tmp_path, env={})


# ------------------------------------------------------------------ journal / cache / ledger
def test_journal_latest_state_wins_and_torn_lines_are_skipped(tmp_path):
    j = Journal(tmp_path)
    h = input_hash("fal", "fal-ai/flux-lora-fill", {"seed": 1})
    assert j.pending(h) is None
    j.record(h, provider="fal", endpoint="e", request_id="r1", status="pending", urls={"a": 1})
    assert j.pending(h)["request_id"] == "r1"
    with open(j.path, "a") as fh:
        fh.write('{"input_hash": "torn')          # a crash mid-write
    j2 = Journal(tmp_path)                        # a new process
    assert j2.pending(h)["urls"] == {"a": 1}
    j2.record(h, provider="fal", endpoint="e", request_id="r1", status="completed")
    assert j2.pending(h) is None and j2.latest(h)["status"] == "completed"


@pytest.mark.parametrize("status,resumable", [("pending", True), ("cancel_requested", True),
                                               ("cancelled", False), ("failed", False),
                                               ("expired", False), ("lost", False), ("uncertain", False)])
def test_journal_resumes_pending_and_cancel_requested_only(tmp_path, status, resumable):
    """A running job the user cancelled may still finish and be billed: "cancel_requested"
    is resumed like "pending"; confirmed stops and uncertain submits (no id) are not."""
    j = Journal(tmp_path)
    h = input_hash("wavespeed", "e", {"seed": 2})
    j.record(h, provider="wavespeed", endpoint="e", request_id="r1", status="pending")
    j.record(h, provider="wavespeed", endpoint="e", status=status,
             request_id=None if status == "uncertain" else "r1")
    assert (j.pending(h) is not None) is resumable


def test_input_hash_is_canonical_and_seed_sensitive():
    a = input_hash("fal", "e", {"x": 1, "seed": 2, "l": [{"p": 1, "s": 2}]})
    assert a == input_hash("fal", "e", {"seed": 2, "l": [{"s": 2, "p": 1}], "x": 1})
    assert a != input_hash("fal", "e", {"x": 1, "seed": 3, "l": [{"p": 1, "s": 2}]})
    assert a != input_hash("wavespeed", "e", {"x": 1, "seed": 2, "l": [{"p": 1, "s": 2}]})


def test_result_cache_roundtrip_and_overwrite(tmp_path):
    c = ResultCache(tmp_path)
    png = images.png_bytes(np.zeros((4, 4, 3), np.uint8), "RGB")
    key = "ab" * 32
    assert c.get(key) is None
    c.put(key, [png, png], {"request_id": "r"})
    files, meta = c.get(key)
    assert files == [png, png] and meta["request_id"] == "r" and meta["files"] == ["0.png", "1.png"]
    c.put(key, [png], {"request_id": "r2"})
    assert c.get(key)[1]["request_id"] == "r2" and len(c.get(key)[0]) == 1
    assert not [p for p in c.root.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError):
        c.get("../../etc")


def test_ledger_appends_once_per_request_across_threads(tmp_path):
    led = Ledger(tmp_path)
    threads = [threading.Thread(target=led.append, kwargs=dict(
        provider="fal", endpoint="e", request_id="r1", cost_usd=0.05, images=1, input_hash="h"))
        for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    led.append(provider="fal", endpoint="e", request_id="r2", cost_usd=0.1, images=2, input_hash="h")
    assert [e["request_id"] for e in Ledger(tmp_path).entries()] == ["r1", "r2"]
    assert led.total() == pytest.approx(0.15)


# ------------------------------------------------------------------ images
def test_encode_image_and_mask():
    img = torch.rand(1, 20, 30, 4)
    data, size = images.encode_image(img)
    assert size == (30, 20)
    im = Image.open(io.BytesIO(data))
    assert im.format == "PNG" and im.mode == "RGB" and im.size == (30, 20)
    expect = (np.clip(img[0, :, :, :3].numpy(), 0, 1) * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(np.asarray(im), expect)
    m = torch.zeros(20, 30)
    m[5:10, 5:10] = 1.0
    m[0, 0] = 0.5
    mk = Image.open(io.BytesIO(images.encode_mask(m, size)))
    assert mk.format == "PNG" and mk.mode == "L" and mk.size == (30, 20)
    a = np.asarray(mk)
    assert a[6, 6] == 255 and a[15, 15] == 0 and a[0, 0] == 128
    with pytest.raises(HostedValidationError, match="mask is 30x19 but the image is 30x20"):
        images.encode_mask(torch.zeros(19, 30), size)
    grey, _ = images.encode_image(np.full((3, 3), 0.5, np.float32))
    assert Image.open(io.BytesIO(grey)).mode == "RGB"


def test_decode_image_is_safe():
    ok = images.png_bytes(np.full((6, 5, 3), 255, np.uint8), "RGB")
    a = images.decode_image(ok)
    assert a.shape == (6, 5, 3) and a.dtype == np.float32 and a.max() == 1.0
    with pytest.raises(TransportError, match="not a valid PNG/JPEG/WebP"):
        images.decode_image(b"<html>404</html>")
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    with pytest.raises(TransportError, match="not a valid"):
        images.decode_image(gif.getvalue())
    big = io.BytesIO()
    Image.new("L", (4000, 4000)).save(big, format="PNG")      # small file, many pixels
    with pytest.raises(OutputRefused, match=r"claims 4000x4000 \(16,000,000 pixels\), over the cap of "
                                            r"1,000,000 pixels \(1000x1000\)"):
        images.decode_image(big.getvalue(), max_pixels=1_000_000)
    with pytest.raises(OutputRefused, match="not a valid"):
        images.decode_image(ok[:40])                                   # truncated


def test_a_decompression_bomb_is_refused_naming_its_size_and_the_cap():
    """30000x30000 is over PIL's own bomb limit too, which used to hide the size."""
    bomb = bomb_png(30000, 30000)
    assert len(bomb) < 1000 and images.header_size(bomb) == (30000, 30000)
    with pytest.raises(OutputRefused) as ei:
        images.decode_image(bomb)
    msg = str(ei.value)
    assert "decompression bomb" in msg and "30000x30000" in msg and "900,000,000 pixels" in msg
    assert "cap of 67,108,864 pixels (8192x8192)" in msg and ei.value.size == (30000, 30000)
    assert isinstance(ei.value, TransportError)


def test_data_uris():
    uri = images.data_uri(b"\x89PNGxyz")
    assert uri.startswith("data:image/png;base64,")
    assert images.decode_data_uri(uri, 100) == (b"\x89PNGxyz", "image/png")
    with pytest.raises(TransportError, match="limit"):
        images.decode_data_uri(uri, 2)
    with pytest.raises(OutputRefused):
        images.decode_data_uri("data:image/png;base64,@@@", 100)


def test_retry_policy_honours_retry_after():
    class R:
        headers = {"Retry-After": "3"}
    p = retry.RetryPolicy(backoff=0.01, backoff_cap=0.02, retry_after_cap=10)
    assert p.delay(1, R()) == 3.0
    p.retry_after_cap = 0.5
    assert p.delay(1, R()) == 0.5
    assert 0.005 <= p.delay(1, None) <= 0.015
    assert p.delay(20, None) <= 0.03


def test_retry_predicates():
    import requests

    class Resp:
        def __init__(self, code, headers=None):
            self.status_code, self.headers = code, headers or {}
    assert retry.fal_submit(Resp(429), None) and retry.fal_submit(Resp(408), None)
    assert retry.fal_submit(Resp(503), None)                                  # ingress
    assert not retry.fal_submit(Resp(503, {"x-fal-request-id": "r"}), None)   # the app answered
    assert not retry.fal_submit(Resp(500, {"x-fal-request-id": "r"}), None)
    assert not retry.fal_submit(Resp(422), None)
    assert retry.fal_submit(None, requests.ReadTimeout())
    assert retry.positively_refused(Resp(429), None)
    assert not retry.positively_refused(Resp(503), None)
    assert not retry.positively_refused(None, requests.ReadTimeout())
    assert retry.positively_refused(None, requests.ConnectTimeout())
    assert retry.polls(Resp(502), None) and retry.polls(Resp(429), None) and not retry.polls(Resp(404), None)


@pytest.mark.parametrize("shape", [(1024, 1024, 3), (1031, 517, 3), (1200, 1100)])
def test_big_pngs_are_compressed_in_bands_and_stay_lossless(shape):
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 0.7, shape[1]).reshape((1, shape[1]) + (1,) * (len(shape) - 2))
    a = rng.random(shape) * 0.3 + ramp
    a[100:300] = 0.5                                     # flat rows: runs across band edges
    a = np.clip(a, 0, 1).astype(np.float32)
    data = images.png_bytes(images.to_uint8(a), "L" if len(shape) == 2 else "RGB")
    assert len(data) < a.size                            # compressed
    img = Image.open(io.BytesIO(data))
    img.load()                                           # CRC and Adler-32 checked
    assert (np.asarray(img) == images.to_uint8(a)).all()


def test_to_uint8_rounds_and_clips():
    x = torch.tensor([[-0.5, 0.0, 0.5 / 255, 0.499, 1.0, 7.0]])
    assert images.to_uint8(x).tolist() == [[0, 0, 1, 127, 255, 255]]


def test_poll_schedule_tightens_at_the_expected_end():
    from fluxfill.core.hosted.client import PollSchedule
    s = PollSchedule(first=0.1, max=1.0, flat=2, near=0.025, grace=0.5)
    assert s.next_delay(0, None, 10.0) == 0.1
    assert s.next_delay(0, 10.06, 10.0) == pytest.approx(0.06)    # poll right at the expected end
    assert s.next_delay(0, 9.9, 10.0) == 0.025                    # overdue: poll often...
    assert s.next_delay(0, 9.0, 10.0) == 0.1                      # ...but not forever
    assert s.next_delay(100, 30.0, 10.0) == 1.0                   # far away: the schedule


# ---------------------------------------------------------------- the daily spend limit
def test_limit_env_wins_and_bad_values_name_their_source(tmp_path):
    from fluxfill.core.hosted import spend
    assert spend.daily_limit(tmp_path, env={}) == spend.Limit(None, None, None)
    spend.save_limit(tmp_path, 2.5)
    assert spend.daily_limit(tmp_path, env={}) == spend.Limit(2.5, "settings", 2.5)
    assert spend.daily_limit(tmp_path, env={spend.ENV_VAR: " 0.5 "}) == spend.Limit(0.5, "env", 2.5)
    assert spend.daily_limit(tmp_path, env={spend.ENV_VAR: ""}).source == "settings"
    for bad in ("five", "-1", "nan", "inf"):
        with pytest.raises(HostedValidationError, match=spend.ENV_VAR):
            spend.daily_limit(tmp_path, env={spend.ENV_VAR: bad})
    spend.settings_file(tmp_path).write_text('{"daily_limit_usd": "lots"}')
    with pytest.raises(HostedValidationError, match="settings.json"):
        spend.daily_limit(tmp_path, env={})
    spend.save_limit(tmp_path, None)
    assert json.loads(spend.settings_file(tmp_path).read_text()) == {}


def test_spent_today_counts_todays_costs_and_estimates(tmp_path):
    import time

    from fluxfill.core.hosted import spend
    ledger = Ledger(tmp_path)
    ledger.append(provider="fal", endpoint="fal-ai/flux-pro/v1/fill", request_id="a", cost_usd=0.05,
                  images=1, input_hash="h")
    ledger.append(provider="fal", endpoint="fal-ai/flux-lora-fill", request_id="b", cost_usd=None,
                  images=1, input_hash="h", estimate_usd=0.02)
    ledger.append(provider="fal", endpoint="fal-ai/flux-lora-fill", request_id="c", cost_usd=None,
                  images=2, input_hash="h")                 # older line: 1 MP per image at $0.035
    ledger.append(provider="fal", endpoint="e", request_id="d", cost_usd=9.0, images=1,
                  input_hash="h", ts=time.time() - 86400 * 2)     # not today's spend
    assert spend.spent_today(tmp_path) == pytest.approx(0.05 + 0.02 + 0.07)


def test_unpublished_prices_count_at_a_published_family_rate():
    from fluxfill.core.hosted import endpoint_table, pricing
    for endpoint_id, endpoint in endpoint_table.ENDPOINTS.items():
        if endpoint.price.kind is None:
            family = endpoint_table.get(endpoint.price.estimate_from)
            assert family.price.kind is not None and family.provider == endpoint.provider
            assert pricing.estimate(endpoint_id, 1024, 1024).usd is None     # the display is unchanged
            counted = pricing.counted_actual(endpoint_id, [(1024, 1024)])
            assert counted.usd == family.price.usd and counted.estimated and "family rate" in counted.basis


def test_the_check_refuses_only_what_crosses_the_limit():
    from fluxfill.core.hosted import pricing, spend
    from fluxfill.core.hosted.errors import SpendLimitExceeded
    limit = spend.Limit(1.0, "settings", 1.0)
    spend.check("FalFill", limit, 0.5, pricing.PriceEstimate(0.5, "x"), "user/fluxfill/settings.json")
    spend.check("FalFill", spend.Limit(None, None, None), 99, pricing.PriceEstimate(None, "x"), "s")
    with pytest.raises(SpendLimitExceeded) as e:
        spend.check("FalFill", limit, 0.5, pricing.PriceEstimate(0.51, "x"), "user/fluxfill/settings.json")
    for text in ("$1.00", "$0.50", "$0.51", "Settings › FluxFill › Daily spend limit", spend.ENV_VAR):
        assert text in str(e.value)
    assert type(e.value).__module__ == "fluxfill"
    with pytest.raises(SpendLimitExceeded, match="cannot be estimated"):
        spend.check("FalFill", limit, 0.0, pricing.PriceEstimate(None, "x"), "s")
