"""Fidelity of the loopback emulators, proven with the providers' OFFICIAL clients
(fal-client, wavespeed SDK), unmodified: fal_client reaches the emulator through its own
https_proxy / SSL_CERT_FILE environment settings (it hard-codes https:// hosts), the
wavespeed SDK through its `base_url` argument. See tests/emulators/README.md."""
import base64
import io

import fal_client
import httpx
import numpy as np
import pytest
import requests
from PIL import Image

import wavespeed
from emulators import FalEmulator, WaveSpeedEmulator, fill_colour

pytestmark = pytest.mark.timeout(60)
KEY = "emu-key"
W, H = 64, 48
BOX = (16, 12, 48, 36)  # masked region (x0, y0, x1, y1)


def _png(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def pictures():
    src = Image.new("RGB", (W, H), (10, 200, 30))
    mask = Image.new("L", (W, H), 0)
    mask.paste(255, BOX)
    return src, mask


def _check_fill(data: bytes, prompt: str, seed: int, index: int = 0, tol: int = 0):
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert img.shape == (H, W, 3)
    inside = img[BOX[1] + 4:BOX[3] - 4, BOX[0] + 4:BOX[2] - 4]
    assert np.abs(inside - np.array(fill_colour(prompt, seed, index))).max() <= tol
    assert np.abs(img[2, 2] - np.array((10, 200, 30))).max() <= tol


# --------------------------------------------------------------------------- fal.ai
@pytest.fixture
def fal(monkeypatch):
    with FalEmulator(KEY, run_seconds=0.15) as emu:
        for name, value in emu.official_client_env().items():
            monkeypatch.setenv(name, value)
        yield emu, fal_client.SyncClient(key=KEY)


def _fal_inputs(client, pictures):
    src, mask = pictures
    return client.upload_image(src, format="png"), client.upload(_png(mask), "image/png",
                                                                 "mask.png")


def test_fal_subscribe_uploads_logs_result_and_billing(fal, pictures):
    emu, client = fal
    emu.run_seconds = 0.6  # long enough for several polls while IN_PROGRESS, even under load
    image_url, mask_url = _fal_inputs(client, pictures)
    assert image_url.startswith("https://v3.fal.media/files/")
    events = []
    result = client.subscribe(
        "fal-ai/flux-lora/inpainting", with_logs=True, on_queue_update=events.append,
        arguments={"prompt": "a red box", "image_url": image_url, "mask_url": mask_url,
                   "seed": 7, "output_format": "png", "num_images": 2})
    assert isinstance(events[-1], fal_client.Completed)
    assert any(isinstance(e, fal_client.InProgress) and e.logs for e in events)
    assert events[-1].metrics["inference_time"] == pytest.approx(0.6)
    assert result["seed"] == 7 and result["has_nsfw_concepts"] == [False, False]
    for i, image in enumerate(result["images"]):
        assert (image["width"], image["height"], image["content_type"]) == (W, H, "image/png")
        data = httpx.get(image["url"]).content
        assert len(data) == image["file_size"]
        _check_fill(data, "a red box", 7, i)
    assert result["images"][0]["url"] != result["images"][1]["url"]
    sent = emu.requests[-1]
    assert sent["payload"]["prompt"] == "a red box" and sent["mask_format"] == "PNG"
    assert sent["image_size"] == (W, H) and "authorization" not in sent["headers"]
    assert [u["via"] for u in emu.uploads] == ["cdn", "cdn"]
    assert len(emu.billed) == 1 and emu.billed[0]["outputs"] == 2


def test_fal_queue_position_cancel_and_already_completed(fal, pictures):
    emu, client = fal
    emu.queue_seconds = None  # jobs wait until start_job()
    image_url, mask_url = _fal_inputs(client, pictures)
    args = {"prompt": "p", "image_url": image_url, "mask_url": mask_url}
    first = client.submit("fal-ai/flux-pro/v1/fill", args)
    second = client.submit("fal-ai/flux-pro/v1/fill", args, priority="low", hint="h1")
    assert "/fal-ai/flux-pro/requests/" in second.status_url  # endpoint sub-path dropped
    assert second.status() == fal_client.Queued(position=1)
    second.cancel()
    assert second.request_id in emu.cancelled
    done = second.status()
    assert isinstance(done, fal_client.Completed) and done.error_type == "request_cancelled"
    assert first.status() == fal_client.Queued(position=0)
    emu.start_job(first.request_id)
    assert isinstance(first.status(with_logs=True), fal_client.InProgress)
    assert first.get()["images"][0]["width"] == W
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        first.cancel()
    assert err.value.status_code == 400
    assert emu.requests[-1]["headers"]["x-fal-queue-priority"] == "low"
    assert [b["request_id"] for b in emu.billed] == [first.request_id]


def test_fal_client_retries_429_and_ingress_errors(fal, pictures):
    emu, client = fal
    image_url, mask_url = _fal_inputs(client, pictures)
    emu.inject("submit", "429", count=2, retry_after=0)
    emu.inject("status", "502-ingress")
    emu.inject("status", "reset")
    emu.inject("result", "503-ingress")
    result = client.subscribe("fal-ai/flux-lora-fill",
                              {"image_url": image_url, "mask_url": mask_url, "seed": 3})
    assert result["images"][0]["content_type"] == "image/jpeg"  # the endpoint's default
    assert emu.count("submit") == 3 and len(emu.jobs) == 1
    assert emu.count("result") == 2 and len(emu.billed) == 1
    assert [c["status"] for c in emu.calls if c["route"] == "status"][:2] == [502, "reset"]


def test_fal_client_does_not_retry_app_503_and_duplicates_a_dropped_submit(fal, pictures):
    emu, client = fal
    image_url, mask_url = _fal_inputs(client, pictures)
    args = {"prompt": "p", "image_url": image_url, "mask_url": mask_url}
    emu.inject("submit", "503")  # from the app (x-fal-request-id): not an ingress error
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit("fal-ai/flux-lora/inpainting", args)
    assert err.value.status_code == 503 and emu.count("submit") == 1
    emu.inject("submit", "drop-response")  # job created, answer lost: the client resubmits
    client.subscribe("fal-ai/flux-lora/inpainting", args)
    assert len(emu.jobs) == 2 and len(emu.billed) == 2


@pytest.mark.parametrize("endpoint, change, loc", [
    ("fal-ai/flux-lora/inpainting", {"num_images": 5}, "num_images"),
    ("fal-ai/flux-lora/inpainting", {"num_inference_steps": 0}, "num_inference_steps"),
    ("fal-ai/flux-lora/inpainting", {"strength": 0.0}, "strength"),
    ("fal-ai/flux-lora-fill", {"guidance_scale": 3.5}, "guidance_scale"),
    ("fal-ai/flux-lora-fill", {"image_size": "huge"}, "image_size"),
    ("fal-ai/flux-pro/v1/fill", {"safety_tolerance": 2}, "safety_tolerance"),
    ("fal-ai/flux-pro/v1/fill", {"prompt": None}, "prompt"),
    ("fal-ai/flux-general/inpainting", {"output_format": "webp"}, "output_format"),
    # fal's generated schema for flux-general (fal-js zod types): guidance 0-20, conditioning 0-2
    ("fal-ai/flux-general/inpainting", {"guidance_scale": 25}, "guidance_scale"),
    ("fal-ai/flux-general/inpainting", {"num_images": 11}, "num_images"),
    ("fal-ai/flux-general/inpainting", {"controlnets": [
        {"path": "p", "control_image_url": "u", "conditioning_scale": 2.5}]}, "controlnets"),
    ("fal-ai/flux-general/inpainting", {"controlnet_unions": [{"path": "p", "controls": [
        {"control_image_url": "u", "control_mode": "canny", "conditioning_scale": -1}]}]},
     "controlnet_unions"),
    ("fal-ai/flux-general/inpainting", {"controlnet_unions": [{"path": "p", "controls": [
        {"control_image_url": "u", "control_mode": "edges"}]}]}, "controlnet_unions"),
])
def test_fal_validation_errors_are_422(fal, pictures, endpoint, change, loc):
    emu, client = fal
    src, mask = pictures
    args = {"prompt": "p", "image_url": fal_client.encode_image(src, "png"),
            "mask_url": fal_client.encode_image(mask, "png"), **change}
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.run(endpoint, {k: v for k, v in args.items() if v is not None})
    assert err.value.status_code == 422
    assert err.value.message[0]["loc"][:2] == ["body", loc]
    assert emu.requests[-1]["status"] == 422 and not emu.jobs


def test_fal_flux_general_takes_the_edges_of_its_published_ranges(fal, pictures):
    emu, client = fal
    src, mask = pictures
    control = {"control_image_url": fal_client.encode_image(src, "png"), "conditioning_scale": 2}
    result = client.run("fal-ai/flux-general/inpainting", {
        "prompt": "q", "seed": 3, "image_url": fal_client.encode_image(src, "png"),
        "mask_url": fal_client.encode_image(mask, "png"), "guidance_scale": 20, "num_images": 2,
        "controlnets": [{"path": "p", **control}],
        "controlnet_unions": [{"path": "u", "controls": [{**control, "control_mode": "depth",
                                                           "conditioning_scale": 0}]}]})
    assert len(result["images"]) == 2 and result["seed"] == 3      # one seed per request
    assert emu.requests[-1]["status"] == 200
    assert emu.billed[-1]["usd"] == pytest.approx(0.075 * 2)      # each image rounded up to 1 MP


def test_fal_rejects_jpeg_mask_and_mismatched_pro_sizes(fal, pictures):
    emu, client = fal
    src, mask = pictures
    jpeg_mask = fal_client.encode(_png(mask, "JPEG"), "image/jpeg")
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit("fal-ai/flux-lora/inpainting", {
            "prompt": "p", "image_url": fal_client.encode_image(src, "png"),
            "mask_url": jpeg_mask})
    assert err.value.status_code == 422 and emu.requests[-1]["mask_format"] == "JPEG"
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        client.submit("fal-ai/flux-pro/v1/fill", {
            "prompt": "p", "image_url": fal_client.encode_image(src, "png"),
            "mask_url": fal_client.encode_image(mask.resize((32, 24)), "png")})
    assert "must match" in err.value.message[0]["msg"]


def test_fal_sync_run_data_uris_and_general_png_default(fal, pictures):
    emu, client = fal
    src, mask = pictures
    result = client.run("fal-ai/flux-general/inpainting", {
        "prompt": "q", "seed": 11, "image_url": fal_client.encode_image(src, "png"),
        "mask_url": fal_client.encode_image(mask, "png"), "sync_mode": True,
        "loras": [{"path": "x.safetensors", "scale": {"transformer": 0.5}}],
        "image_size": {"width": W, "height": H}})
    url = result["images"][0]["url"]
    assert url.startswith("data:image/png;base64,")
    _check_fill(fal_client.client.base64.b64decode(url.split(",", 1)[1]), "q", 11)
    assert emu.requests[-1]["mode"] == "sync"


def test_fal_failed_nsfw_and_missing_result_file(fal, pictures):
    emu, client = fal
    image_url, mask_url = _fal_inputs(client, pictures)
    args = {"prompt": "p", "image_url": image_url, "mask_url": mask_url}
    emu.next_job(fail="CUDA out of memory", error_type="runner_error")
    handle = client.submit("fal-ai/flux-lora/inpainting", args)
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        handle.get()
    assert err.value.status_code == 500 and err.value.message == "CUDA out of memory"
    status = handle.status()
    assert status.error == "CUDA out of memory" and status.error_type == "runner_error"
    emu.next_job(nsfw=True)
    emu.next_job(result_404=True)
    nsfw = client.subscribe("fal-ai/flux-lora/inpainting", {**args, "output_format": "png"})
    assert nsfw["has_nsfw_concepts"] == [True]
    assert Image.open(io.BytesIO(httpx.get(nsfw["images"][0]["url"]).content)).getextrema() \
        == ((0, 0),) * 3
    gone = client.subscribe("fal-ai/flux-lora/inpainting", args)
    assert httpx.get(gone["images"][0]["url"]).status_code == 404
    assert len(emu.billed) == 2  # the failed job is not billed


def test_fal_status_stream_sends_sse_until_completed(fal, pictures):
    emu, client = fal
    image_url, mask_url = _fal_inputs(client, pictures)
    handle = client.submit("fal-ai/flux-lora/inpainting", {
        "prompt": "p", "image_url": image_url, "mask_url": mask_url})
    resp = httpx.get(handle.status_url + "/stream", headers={"Authorization": f"Key {KEY}"})
    assert resp.headers["content-type"] == "text/event-stream"
    events = [line for line in resp.text.splitlines() if line.startswith("data: ")]
    assert '"IN_PROGRESS"' in events[0] and '"COMPLETED"' in events[-1]


def test_fal_repoll_by_request_id_after_client_restart(fal, pictures):
    emu, client = fal
    emu.run_seconds = None  # runs until finish_job()
    image_url, mask_url = _fal_inputs(client, pictures)
    request_id = client.submit("fal-ai/flux-lora/inpainting", {
        "prompt": "p", "image_url": image_url, "mask_url": mask_url}).request_id
    del client
    fresh = fal_client.SyncClient(key=KEY)
    assert isinstance(fresh.status("fal-ai/flux-lora/inpainting", request_id),
                      fal_client.InProgress)
    emu.finish_job(request_id)
    assert fresh.result("fal-ai/flux-lora/inpainting", request_id)["images"]


def test_fal_upload_falls_back_to_storage_and_auth_is_checked(fal, pictures):
    emu, client = fal
    emu.inject("upload", "500")  # v3 CDN upload fails: the client falls back to initiate+PUT
    url = client.upload(b"hello", "text/plain", "hello.txt")
    assert httpx.get(url).content == b"hello"
    assert [u["via"] for u in emu.uploads] == ["initiate"]
    with pytest.raises(fal_client.FalClientHTTPError) as err:
        fal_client.SyncClient(key="wrong").submit("fal-ai/flux-lora/inpainting", {})
    assert err.value.status_code == 401


# ----------------------------------------------------------------------- WaveSpeedAI
@pytest.fixture
def ws():
    with WaveSpeedEmulator(KEY, run_seconds=0.1) as emu:
        yield emu, wavespeed.Client(api_key=KEY, base_url=emu.base_url, retry_interval=0.01)


def _ws_inputs(client, pictures, tmp_path):
    src, mask = pictures
    (tmp_path / "src.png").write_bytes(_png(src))
    return client.upload(str(tmp_path / "src.png")), client.upload(io.BytesIO(_png(mask)))


def test_wavespeed_upload_run_result_and_billing(ws, pictures, tmp_path):
    emu, client = ws
    image, mask = _ws_inputs(client, pictures, tmp_path)
    out = client.run("wavespeed-ai/flux-fill-dev", {
        "image": image, "mask_image": mask, "prompt": "blue", "seed": 9,
        "size": "256*256", "num_images": 2, "loras": [{"path": "a", "scale": 1.0}]},
        poll_interval=0.05)
    assert len(out["outputs"]) == 2
    img = Image.open(io.BytesIO(requests.get(out["outputs"][1]).content))
    assert img.size == (256, 256)
    assert img.getpixel((128, 128)) == fill_colour("blue", 9, 1)
    sent = emu.requests[-1]
    assert sent["headers"]["x-client-name"] == "wavespeed-python"
    assert sent["mask_format"] == "PNG" and "authorization" not in sent["headers"]
    assert [u["via"] for u in emu.uploads] == ["ticket", "ticket"]
    assert emu.billed == [{"request_id": sent["request_id"], "endpoint":
                           "wavespeed-ai/flux-fill-dev", "outputs": 2, "usd": 0.07}]


def test_wavespeed_polls_are_retried_but_submit_never(ws, pictures, tmp_path):
    emu, client = ws
    image, mask = _ws_inputs(client, pictures, tmp_path)
    args = {"image": image, "mask_image": mask, "prompt": "p"}
    emu.inject("result", "503")
    emu.inject("result", "429")
    emu.inject("result", "reset")
    emu.inject("result", "hang", seconds=3)
    assert client.run("wavespeed-ai/flux-fill-dev", args, poll_interval=0.05,
                      timeout=0.5)["outputs"]
    assert emu.count("result") >= 5
    emu.inject("submit", "503")
    with pytest.raises(RuntimeError, match="HTTP 503"):
        client.run("wavespeed-ai/flux-fill-dev", args)
    emu.inject("submit", "drop-response")  # the task exists although the client saw no answer
    with pytest.raises(RuntimeError, match="did not return a response"):
        client.run("wavespeed-ai/flux-fill-dev", args)
    assert emu.count("submit") == 3 and len(emu.jobs) == 2


@pytest.mark.parametrize("change, field", [
    ({"size": "100*1024"}, "size"), ({"size": "1024x1024"}, "size"),
    ({"guidance_scale": 3.5}, "guidance_scale"), ({"num_images": 5}, "num_images"),
    ({"seed": -2}, "seed"), ({"loras": [{"path": "a", "scale": 1}] * 4}, "loras"),
    ({"loras": [{"path": "a", "scale": 4.5}]}, "loras.0.scale"),
    ({"image": "data:image/png;base64,AAAA"}, "image"),
])
def test_wavespeed_validation(ws, pictures, tmp_path, change, field):
    emu, client = ws
    image, mask = _ws_inputs(client, pictures, tmp_path)
    with pytest.raises(RuntimeError, match="HTTP 400"):
        client.run("wavespeed-ai/flux-fill-dev",
                   {"image": image, "mask_image": mask, "prompt": "p", **change})
    assert emu.requests[-1]["status"] == 400 and not emu.jobs
    assert ".".join(map(str, emu.requests[-1]["errors"][0]["loc"][1:])) == field


def test_wavespeed_failed_task_sync_mode_and_base64(ws, pictures, tmp_path):
    emu, client = ws
    image, mask = _ws_inputs(client, pictures, tmp_path)
    args = {"image": image, "mask_image": mask, "prompt": "p", "size": "256*256"}
    emu.next_job(fail="content policy")
    with pytest.raises(RuntimeError, match="content policy"):
        client.run("wavespeed-ai/flux-fill-dev", args, poll_interval=0.05)
    failed_id = next(iter(emu.jobs))
    assert client.get_result(failed_id)["data"]["status"] == "failed"  # HTTP 200
    polls = emu.count("result")
    out = client.run("wavespeed-ai/flux-fill-dev", {**args, "enable_base64_output": True},
                     enable_sync_mode=True)
    encoded = out["outputs"][0]                  # plain base64, no data: prefix (WaveSpeed's docs)
    assert not encoded.startswith("data:")
    assert Image.open(io.BytesIO(base64.b64decode(encoded))).size == (256, 256)
    assert emu.count("result") == polls  # sync mode answered without polling
    assert len(emu.billed) == 1


def test_wavespeed_sync_mode_gateway_504_and_the_task_still_bills(ws, pictures, tmp_path):
    emu, client = ws
    image, mask = _ws_inputs(client, pictures, tmp_path)
    emu.sync_gateway_timeout, emu.run_seconds = 0.1, 0.4
    with pytest.raises(RuntimeError, match="HTTP 504"):
        client.run("wavespeed-ai/flux-fill-dev", {"image": image, "mask_image": mask, "prompt": "p"},
                   enable_sync_mode=True, max_retries=0)
    (sent,) = emu.requests
    assert sent["status"] == 504 and emu.count("submit") == 1
    assert client.get_result(sent["request_id"])["data"]["status"] in ("processing", "completed")
    emu.finish_job(sent["request_id"])
    assert [b["request_id"] for b in emu.billed] == [sent["request_id"]]


def test_wavespeed_cancel_and_repoll_after_restart(ws, pictures, tmp_path):
    emu, client = ws
    emu.queue_seconds = None
    image, mask = _ws_inputs(client, pictures, tmp_path)
    args = {"image": image, "mask_image": mask, "prompt": "p", "size": "256*256"}
    queued = client._submit("wavespeed-ai/flux-fill-dev", args)[0]
    kept = client._submit("wavespeed-ai/flux-fill-dev", args)[0]
    headers = {"Authorization": f"Bearer {KEY}"}
    cancel = requests.delete(f"{emu.base_url}/api/v3/predictions/{queued}", headers=headers)
    assert cancel.status_code == 200 and queued in emu.cancelled
    fresh = wavespeed.Client(api_key=KEY, base_url=emu.base_url)
    assert fresh.get_result(queued)["data"]["status"] == "cancelled"
    assert fresh.get_result(kept)["data"]["status"] == "created"
    emu.start_job(kept)
    assert fresh.get_result(kept)["data"]["status"] == "processing"
    emu.finish_job(kept)
    assert fresh.get_result(kept)["data"]["outputs"]
    again = requests.delete(f"{emu.base_url}/api/v3/predictions/{kept}", headers=headers)
    assert again.status_code == 400


def test_wavespeed_binary_upload_and_auth(ws, pictures):
    emu, client = ws
    src, _ = pictures
    resp = requests.post(f"{emu.base_url}/api/v3/media/upload/binary",
                         headers={"Authorization": f"Bearer {KEY}"},
                         files={"file": ("src.png", _png(src), "image/png")})
    url = resp.json()["data"]["download_url"]
    assert requests.get(url).content == _png(src)
    with pytest.raises(RuntimeError, match="HTTP 401"):
        wavespeed.Client(api_key="wrong", base_url=emu.base_url).run(
            "wavespeed-ai/flux-fill-dev", {"image": url, "mask_image": url, "prompt": "p"})
