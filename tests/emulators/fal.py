"""FalEmulator: fal.ai's queue (queue.fal.run), sync runs (fal.run), storage (rest.fal.ai),
CDN (v3.fal.media) and platform pricing API (api.fal.ai) on 127.0.0.1, for the four FLUX fill
endpoints. See README.md."""
from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from ._base import CA_FILE, EmulatorBase, Request, Response
from ._images import (InputError, data_uri, encode, fill_colour, open_image, parse_data_uri,
                      render)
from ._validate import check_object

PRESETS = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
           "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768),
           "landscape_16_9": (1024, 576)}
_IMAGE_SIZE = {"one_of": [
    {"type": "enum", "choices": list(PRESETS)},
    {"type": "object", "fields": {"width": {"type": "int", "required": True, "ge": 1, "le": 14142},
                                  "height": {"type": "int", "required": True, "ge": 1,
                                             "le": 14142}}}],
    "msg": f"Input should be one of {', '.join(PRESETS)} or {{width, height}}"}
_STEPS = {"type": "int", "ge": 1, "le": 50}
_ACCEL = {"type": "enum", "choices": ["none", "regular"]}
_LORAS = {"type": "list", "items": {"type": "object", "fields": {
    "path": {"type": "str", "required": True}, "scale": {"type": "float"}}}}
_CONTROL = {"conditioning_scale": {"type": "float", "ge": 0, "le": 2},
            "mask_image_url": {"type": "str"},
            "mask_threshold": {"type": "float", "ge": 0.01, "le": 0.99},
            "start_percentage": {"type": "float", "ge": 0, "le": 1},
            "end_percentage": {"type": "float", "ge": 0, "le": 1}}
_COMMON = {
    "prompt": {"type": "str", "required": True},
    "image_url": {"type": "str", "required": True},
    "mask_url": {"type": "str", "required": True},
    "seed": {"type": "int"},
    "sync_mode": {"type": "bool"},
    "num_images": {"type": "int", "ge": 1, "le": 4},
    "output_format": {"type": "enum", "choices": ["jpeg", "png"]},
    "enable_safety_checker": {"type": "bool"},
}
SCHEMAS = {
    "fal-ai/flux-lora-fill": {
        **_COMMON, "prompt": {"type": "str"}, "image_size": _IMAGE_SIZE,
        "num_inference_steps": _STEPS, "loras": _LORAS,
        "guidance_scale": {"type": "float", "ge": 28, "le": 35}, "acceleration": _ACCEL,
        "paste_back": {"type": "bool"}, "resize_to_original": {"type": "bool"},
        "fill_image": {"type": "object", "fields": {
            "fill_image_url": {"type": "str", "required": True},
            "in_context_fill": {"type": "bool"}, "use_prompt": {"type": "bool"}}}},
    "fal-ai/flux-lora/inpainting": {
        **_COMMON, "image_size": _IMAGE_SIZE, "num_inference_steps": _STEPS, "loras": _LORAS,
        "guidance_scale": {"type": "float", "ge": 0, "le": 35}, "acceleration": _ACCEL,
        "strength": {"type": "float", "ge": 0.01, "le": 1}},
    "fal-ai/flux-pro/v1/fill": {
        **{k: v for k, v in _COMMON.items() if k != "enable_safety_checker"},
        "safety_tolerance": {"type": "enum", "choices": [str(i) for i in range(1, 7)]},
        "enhance_prompt": {"type": "bool"}},
    # flux-general: fal's generated client schema (fal-js libs/client/src/types/image/zod.gen.ts,
    # zFluxGeneralInpaintingInput / zControlNet / zControlNetUnionInput), written out here on
    # its own, NOT copied from the pack's endpoint table (a shared mistake would go unseen)
    "fal-ai/flux-general/inpainting": {
        **_COMMON, "image_size": _IMAGE_SIZE, "num_inference_steps": _STEPS,
        "num_images": {"type": "int", "ge": 1, "le": 10},
        "guidance_scale": {"type": "float", "ge": 0, "le": 20},
        "strength": {"type": "float", "ge": 0.01, "le": 1},
        "loras": {"type": "list", "items": {"type": "object", "fields": {
            "path": {"type": "str", "required": True},
            "scale": {"one_of": [{"type": "float"}, {"type": "object"}]}}}},
        "controlnets": {"type": "list", "items": {"type": "object", "fields": {
            "path": {"type": "str", "required": True},
            "control_image_url": {"type": "str", "required": True},
            **_CONTROL, "config_url": {"type": "str"}, "variant": {"type": "str"}}}},
        "controlnet_unions": {"type": "list", "items": {"type": "object", "fields": {
            "path": {"type": "str", "required": True},
            "controls": {"type": "list", "required": True, "items": {"type": "object", "fields": {
                "control_image_url": {"type": "str", "required": True},
                "control_mode": {"type": "enum", "required": True, "choices": [
                    "canny", "tile", "depth", "blur", "pose", "gray", "low-quality"]},
                **_CONTROL}}},
            "config_url": {"type": "str"}, "variant": {"type": "str"}}}}},
}
DEFAULT_FORMAT = {"fal-ai/flux-general/inpainting": "png"}
# USD per megapixel (1 MP = 1024*1024 px); flux-pro and flux-general round each image up to
# whole MP (their pages: "billed by rounding up to nearest megapixel").
PRICES = {"fal-ai/flux-lora-fill": None, "fal-ai/flux-lora/inpainting": 0.035,
          "fal-ai/flux-pro/v1/fill": 0.05, "fal-ai/flux-general/inpainting": 0.075}
ROUNDED_UP = {"fal-ai/flux-pro/v1/fill", "fal-ai/flux-general/inpainting"}
HOSTS = {"queue.fal.run": "queue", "queue.falrun.com": "queue", "fal.run": "run",
         "falrun.com": "run", "rest.fal.ai": "rest", "v3.fal.media": "cdn",
         "v3b.fal.media": "cdn", "fal.media": "cdn", "api.fal.ai": "api"}
DATA_URI_LIMIT = 10 * 1024 * 1024


@dataclass
class FalJob:
    request_id: str
    endpoint: str
    app: str                      # owner/alias: the part status/result/cancel URLs keep
    payload: dict
    seed: int
    out_size: tuple
    fmt: str
    source: object
    mask: object
    cdn_base: str
    submitted: float
    start_at: float | None
    run_seconds: float | None
    plan: dict = field(default_factory=dict)
    finish_at: float | None = None
    cancelled: bool = False       # removed from the queue or stopped while running
    cancel_requested: bool = False
    result: dict | None = None
    billed: bool = False
    outputs: list | None = None   # [(data, content type)], rendered while the job runs
    # one render at a time PER JOB (finalize is reached from several polls at once);
    # different jobs render in parallel, as a real service's workers would
    finalize_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                          compare=False)


class FalEmulator(EmulatorBase):
    routes = {"submit", "status", "stream", "result", "cancel", "run", "token", "upload", "file",
              "pricing"}
    tls_hosts = frozenset(HOSTS)

    def __init__(self, key: str = "test-key", *, queue_seconds: float | None = 0.0,
                 run_seconds: float | None = 0.2, strict: bool = False,
                 require_png_mask: bool = True, honour_cancel: bool = True,
                 hang_seconds: float = 30.0, retry_after: str = "1", rng_seed: int = 0):
        super().__init__(hang_seconds=hang_seconds, retry_after=retry_after)
        self.key = key
        self.queue_seconds, self.run_seconds = queue_seconds, run_seconds
        self.strict, self.require_png_mask = strict, require_png_mask
        self.honour_cancel = honour_cancel
        self.requests: list[dict] = []
        self.cancelled: set[str] = set()
        self.uploads: list[dict] = []
        self.cdn_tokens: set[str] = set()
        self._rng = random.Random(rng_seed)
        # what GET /v1/models/pricing answers per endpoint (tests change it); unpublished: absent
        self.prices = {ep: {"endpoint_id": ep, "unit_price": usd, "unit": "megapixels",
                            "currency": "USD"} for ep, usd in PRICES.items() if usd is not None}

    def start(self):
        super().start()
        self.queue_url = f"{self.origin}/queue"
        self.run_url = f"{self.origin}/run"
        self.rest_url = f"{self.origin}/rest"
        self.cdn_url = f"{self.origin}/cdn"
        self.api_url = f"{self.origin}/api"
        self.proxy_url = self.origin
        self.ca_file = CA_FILE
        return self

    def official_client_env(self) -> dict:
        """Environment that points the unmodified fal_client at this emulator (README)."""
        return {"HTTPS_PROXY": self.proxy_url, "https_proxy": self.proxy_url,
                "SSL_CERT_FILE": CA_FILE, "NO_PROXY": "", "no_proxy": ""}

    # test-facing API -----------------------------------------------------------------
    def next_job(self, *, fail: str | None = None, error_type: str | None = None,
                 fail_status: int = 500, nsfw=False, result_404: bool = False,
                 output_data: bytes | None = None, queue_seconds=..., run_seconds=...) -> None:
        """Plan the outcome of the next accepted submission (FIFO, one plan per job).
        `output_data`: every output file holds these bytes instead of the rendered image."""
        self._plan_next({"fail": fail, "error_type": error_type, "fail_status": fail_status,
                         "nsfw": nsfw, "result_404": result_404, "output_data": output_data},
                        queue_seconds, run_seconds)

    @property
    def billed(self) -> list[dict]:
        """One entry per request that produced outputs: request_id, endpoint, outputs,
        megapixels, usd (None where the price is unpublished)."""
        with self.lock:
            jobs = list(self.jobs.values())
        now = time.monotonic()
        for job in jobs:
            if self._state(job, now) == "COMPLETED":
                self._finalize(job)
        with self.lock:
            return [j.billed for j in self.jobs.values() if j.billed]

    def add_file(self, data: bytes, content_type: str = "image/png",
                 name: str = "file.png") -> str:
        """Put a file on the emulator's CDN; returns its plain-HTTP URL."""
        return f"{self.cdn_url}/files/{self._store(data, content_type, name)}"

    # routing -------------------------------------------------------------------------
    def _locate(self, tls_host, path, headers):
        if tls_host:
            return HOSTS[tls_host], path, f"https://{tls_host}"
        service, _, rest = path.lstrip("/").partition("/")
        return service, "/" + rest, f"{self.origin}/{service}"

    def _resolve(self, req: Request):
        s, p, m = req.service, req.path, req.method
        if s == "queue":
            parts = p.strip("/").split("/")
            if "requests" in parts and parts.index("requests") >= 2:
                i = parts.index("requests")
                tail = parts[i + 2:]
                if tail == ["status"] and m == "GET":
                    return "status", self._status
                if tail == ["status", "stream"] and m == "GET":
                    return "stream", self._status
                if tail == ["cancel"] and m == "PUT":
                    return "cancel", self._cancel
                if tail == [] and m == "GET":
                    return "result", self._result
                return None, None
            return ("submit", self._submit) if m == "POST" else (None, None)
        if s == "run":
            return ("run", self._run) if m == "POST" else (None, None)
        if s == "api":
            return ("pricing", self._pricing) if p == "/v1/models/pricing" and m == "GET" \
                else (None, None)
        if s == "rest":
            if p == "/storage/auth/token" and m == "POST":
                return "token", self._token
            if p == "/storage/upload/initiate" and m == "POST":
                return "upload", self._initiate
            return None, None
        if s == "cdn":
            if p == "/files/upload" and m == "POST":
                return "upload", self._cdn_upload
            if p.startswith("/gcs-upload/") and m == "PUT":
                return "upload", self._gcs_put
            if p.startswith("/files/") and m in ("GET", "HEAD"):
                return "file", self._file
        return None, None

    def _not_found(self, req):
        return Response.json(404, {"detail": f"Not found: {req.method} {req.path}"})

    def _fault_response(self, fault, req) -> Response:
        kind = fault.kind
        rid = {"x-fal-request-id": uuid.uuid4().hex}
        if kind == "429":
            return Response.json(429, {"detail": "Too many requests"}, **rid,
                                 **{"Retry-After": str(fault.opts.get("retry_after",
                                                                      self.retry_after))})
        if kind.endswith("-ingress"):
            code = int(kind[:3])
            body = (f"<html><head><title>{code}</title></head><body><center><h1>{code}"
                    f"</h1></center><hr><center>nginx</center></body></html>").encode()
            return Response(code, body, "text/html")
        if kind == "500":
            return Response.json(500, {"detail": "Internal server error"}, **rid)
        if kind == "503":
            return Response.json(503, {"detail": "Runner unavailable",
                                       "error_type": "runner_unavailable"}, **rid)
        if kind == "malformed":
            return Response(200, b'{"request_id": "trunc', "application/json", rid)
        if kind == "401":
            return Response.json(401, {"detail": "Invalid API key"})
        if kind == "404":
            return Response.json(404, {"detail": "Not found"}, **rid)
        return Response.json(422, {"detail": [{"loc": ["body"], "msg": "Injected error",
                                               "type": "value_error"}]}, **rid)

    def _auth_error(self, req) -> Response | None:
        if req.headers.get("authorization") != f"Key {self.key}":
            return Response.json(401, {"detail": "Invalid or missing API key "
                                                 "(expected 'Authorization: Key <key>')"})
        return None

    # submission ----------------------------------------------------------------------
    def _record(self, req, endpoint, mode, payload, **extra) -> dict:
        entry = {"endpoint": endpoint, "mode": mode, "payload": payload,
                 "headers": {k: v for k, v in req.headers.items() if k != "authorization"},
                 "query": dict(req.query), "request_id": None, "status": None,
                 "errors": [], "image_size": None, "mask_size": None, "image_format": None,
                 "mask_format": None, "unknown_fields": [], **extra}
        with self.lock:
            self.requests.append(entry)
        return entry

    def _load_input(self, url: str, what: str):
        if url.startswith("data:"):
            if len(url) > DATA_URI_LIMIT * 4 // 3 + 100:
                raise InputError(f"{what}: data URI larger than 10 MiB", "file_too_large")
            data, _ = parse_data_uri(url)
        else:
            key = self._own_file_key(url)
            with self.lock:
                found = self.files.get(key) if key else None
            if found is None:
                raise InputError(f"{what}: could not download {url[:120]!r} (the emulator "
                                 f"serves only data URIs and its own files)",
                                 "file_download_error")
            data = found[0]
        return open_image(data, what, decode=False)    # decoded by the job's render

    def _own_file_key(self, url: str) -> str | None:
        parts = urlsplit(url)
        if parts.scheme == "http" and parts.netloc == f"127.0.0.1:{self.port}" \
                and parts.path.startswith("/cdn/files/"):
            return parts.path[len("/cdn/files/"):]
        if parts.scheme == "https" and HOSTS.get(parts.hostname or "") == "cdn" \
                and parts.path.startswith("/files/"):
            return parts.path[len("/files/"):]
        return None

    def _validate(self, req, mode):
        """Returns (entry, job-or-None, error Response-or-None)."""
        endpoint = req.path.strip("/")
        try:
            payload = req.json()
        except ValueError:
            payload = None
        entry = self._record(req, endpoint, mode, payload)
        if (bad := self._auth_error(req)) is not None:
            entry["status"] = 401
            return entry, None, bad
        if endpoint not in SCHEMAS:
            entry["status"] = 404
            return entry, None, Response.json(404, {"detail": f"Application '{endpoint}' "
                                                              f"not found"})
        if not isinstance(payload, dict):
            errors = [{"loc": ["body"], "msg": "Input should be a JSON object",
                       "type": "dict_type"}]
        else:
            schema = SCHEMAS[endpoint]
            errors = check_object(payload, schema)
            entry["unknown_fields"] = sorted(set(payload) - set(schema))
            if self.strict:
                errors += [{"loc": ["body", k], "msg": "Extra inputs are not permitted",
                            "type": "extra_forbidden"} for k in entry["unknown_fields"]]
        source = mask = None
        if not errors:
            for name in ("image_url", "mask_url"):
                try:
                    img = self._load_input(payload[name], name)
                except InputError as exc:
                    errors.append({"loc": ["body", name], "msg": str(exc), "type": exc.kind})
                    continue
                which = "image" if name == "image_url" else "mask"
                entry[f"{which}_size"] = img.size
                entry[f"{which}_format"] = img.format
                source, mask = (img, mask) if which == "image" else (source, img)
            if mask is not None and self.require_png_mask and mask.format != "PNG":
                errors.append({"loc": ["body", "mask_url"], "type": "image_format",
                               "msg": f"mask must be PNG (got {mask.format})"})
            if not errors and endpoint == "fal-ai/flux-pro/v1/fill" \
                    and source.size != mask.size:
                errors.append({"loc": ["body", "mask_url"], "type": "value_error",
                               "msg": f"mask size {mask.size} must match image size "
                                      f"{source.size}"})
        if errors:
            entry["status"], entry["errors"] = 422, errors
            return entry, None, Response.json(422, {"detail": errors})
        return entry, self._new_job(req, endpoint, payload, source, mask), None

    def _new_job(self, req, endpoint, payload, source, mask) -> FalJob:
        size = payload.get("image_size")
        out = PRESETS[size] if isinstance(size, str) else \
            (size["width"], size["height"]) if isinstance(size, dict) else source.size
        if endpoint == "fal-ai/flux-pro/v1/fill" or payload.get("resize_to_original"):
            out = source.size
        with self.lock:
            plan = self._plans.pop(0) if self._plans else {}
            seed = payload["seed"] if payload.get("seed") is not None \
                else self._rng.randrange(2 ** 31)
        queue_s = plan.get("queue_seconds", self.queue_seconds)
        now = time.monotonic()
        app = "/".join(endpoint.split("/")[:2])
        cdn_base = "https://v3.fal.media" if req.tls_host else self.cdn_url
        fmt = payload.get("output_format") or DEFAULT_FORMAT.get(endpoint, "jpeg")
        return FalJob(uuid.uuid4().hex, endpoint, app, payload, seed, tuple(out), fmt,
                      source, mask, cdn_base, now,
                      None if queue_s is None else now + queue_s,
                      plan.get("run_seconds", self.run_seconds), plan)

    def _urls(self, req, job):
        base = f"{req.base}/{job.app}/requests/{job.request_id}"
        return {"request_id": job.request_id, "response_url": base,
                "status_url": base + "/status", "cancel_url": base + "/cancel"}

    def _submit(self, req):
        entry, job, error = self._validate(req, "queue")
        if error is not None:
            return error
        with self.lock:
            self.jobs[job.request_id] = job
            entry["request_id"], entry["status"] = job.request_id, 200
            position = self._position(job, time.monotonic())
        threading.Thread(target=self._render_while_running, args=(job,), daemon=True).start()
        return Response.json(200, {**self._urls(req, job), "queue_position": position},
                             **{"x-fal-request-id": job.request_id})

    def _run(self, req):
        """fal.run: the same job model, answered when the job completes (bounded wait)."""
        entry, job, error = self._validate(req, "sync")
        if error is not None:
            return error
        if job.start_at is None:
            job.start_at = job.submitted
        if job.run_seconds is None:
            job.run_seconds = 0.0
        with self.lock:
            self.jobs[job.request_id] = job
            entry["request_id"], entry["status"] = job.request_id, 200
        self.stop_event.wait(max(0.0, min(job.start_at + job.run_seconds - time.monotonic(),
                                          self.hang_seconds)))
        return self._result_response(job)

    # job state -----------------------------------------------------------------------
    def _state(self, job: FalJob, now: float) -> str:
        if job.cancelled:
            return "COMPLETED"
        if job.start_at is None or now < job.start_at:
            return "IN_QUEUE"
        end = job.finish_at if job.run_seconds is None else job.start_at + job.run_seconds
        if job.finish_at is not None:
            end = job.finish_at if end is None else min(end, job.finish_at)
        return "IN_PROGRESS" if end is None or now < end else "COMPLETED"

    def _position(self, job, now) -> int:
        return sum(1 for j in self.jobs.values() if j.submitted < job.submitted
                   and self._state(j, now) == "IN_QUEUE")

    def _logs(self, job, now, state) -> list[dict]:
        steps = min(int(job.payload.get("num_inference_steps") or 28), 50)
        if state == "IN_QUEUE" or job.start_at is None:
            return []
        if state == "COMPLETED":
            done = steps
        elif job.run_seconds:
            done = min(steps, int(steps * (now - job.start_at) / job.run_seconds))
        else:
            done = 0
        stamp = datetime.now(timezone.utc).isoformat()
        logs = [{"message": "Starting inference", "level": "INFO", "source": "user",
                 "timestamp": stamp}]
        logs += [{"message": f"step {k}/{steps}", "level": "INFO", "source": "user",
                  "timestamp": stamp} for k in range(1, done + 1)]
        return logs

    def _status_body(self, req, job, with_logs: bool) -> dict:
        now = time.monotonic()
        with self.lock:
            state = self._state(job, now)
            body = {"status": state, **self._urls(req, job),
                    "logs": self._logs(job, now, state) if with_logs else None}
            if state == "IN_QUEUE":
                body["queue_position"] = self._position(job, now)
        if state == "COMPLETED":
            self._finalize(job)
            body["metrics"] = {"inference_time": None if job.cancelled else job.run_seconds}
            if job.cancelled:
                body["error"], body["error_type"] = "Request cancelled", "request_cancelled"
            elif job.plan.get("fail"):
                body["error"] = job.plan["fail"]
                body["error_type"] = job.plan.get("error_type")
        return body

    def _job_for(self, req) -> FalJob | None:
        parts = req.path.strip("/").split("/")
        i = parts.index("requests")
        with self.lock:
            job = self.jobs.get(parts[i + 1])
        return job if job is not None and job.app == "/".join(parts[:i]) else None

    def _status(self, req):
        if (bad := self._auth_error(req)) is not None:
            return bad
        job = self._job_for(req)
        if job is None:
            return Response.json(404, {"detail": "Request not found"})
        with_logs = req.query.get("logs", "0").lower() in ("1", "true")
        if req.path.endswith("/stream"):
            return self._stream(req, job, with_logs)
        return Response.json(200, self._status_body(req, job, with_logs),
                             **{"x-fal-request-id": job.request_id})

    def _stream(self, req, job, with_logs):
        """SSE, sent as it happens (chunked): an event at once, then one on every state change
        (every log line with logs=1) until COMPLETED, a keep-alive comment every 15 s, at most
        hang_seconds in all."""
        def events():
            last, sent_at = None, time.monotonic()
            deadline = sent_at + self.hang_seconds
            while not self.stop_event.is_set() and time.monotonic() < deadline:
                body = self._status_body(req, job, with_logs)
                key = (body["status"], len(body.get("logs") or []))
                if key != last:
                    last, sent_at = key, time.monotonic()
                    yield f"data: {json.dumps(body)}\n\n".encode()
                    if body["status"] == "COMPLETED":
                        return
                elif time.monotonic() - sent_at >= 15:
                    sent_at = time.monotonic()
                    yield b": keep-alive\n\n"
                self.stop_event.wait(self._until_change(job))
        return Response(200, b"", "text/event-stream", {"x-fal-request-id": job.request_id},
                        stream=events())

    def _until_change(self, job: FalJob, most: float = 0.05) -> float:
        """Seconds until the job's next scheduled change (start, next step log, end), at most
        `most` (held jobs, cancels and test-driven finishes are noticed within that), so a
        stream wakes when there is news rather than every few milliseconds."""
        now = time.monotonic()
        times = []
        if job.start_at is not None and now < job.start_at:
            times.append(job.start_at)
        elif job.start_at is not None and job.run_seconds:
            steps = min(int(job.payload.get("num_inference_steps") or 28), 50)
            done = int(steps * (now - job.start_at) / job.run_seconds)
            times.append(job.start_at + job.run_seconds * min(done + 1, steps) / steps)
        return max(0.001, min([most, *(t - now for t in times)]))

    def _pricing(self, req):
        """fal's platform pricing API: {prices: [{endpoint_id, unit_price, unit, currency}]}."""
        if (bad := self._auth_error(req)) is not None:
            return bad
        wanted = req.query.get("endpoint_id")
        with self.lock:
            prices = [dict(p) for ep, p in self.prices.items() if wanted in (None, ep)]
        return Response.json(200, {"prices": prices, "next_cursor": None, "has_more": False})

    def _result(self, req):
        if (bad := self._auth_error(req)) is not None:
            return bad
        job = self._job_for(req)
        if job is None:
            return Response.json(404, {"detail": "Request not found"})
        with self.lock:
            state = self._state(job, time.monotonic())
        if state != "COMPLETED":
            return Response.json(400, {"detail": "Request is still in progress"},
                                 **{"x-fal-request-id": job.request_id})
        return self._result_response(job)

    def _result_response(self, job) -> Response:
        self._finalize(job)
        rid = {"x-fal-request-id": job.request_id}
        if job.cancelled:
            return Response.json(400, {"detail": "Request cancelled",
                                       "error_type": "request_cancelled"}, **rid)
        if job.plan.get("fail"):
            body = {"detail": job.plan["fail"]}
            if job.plan.get("error_type"):
                body["error_type"] = job.plan["error_type"]
            return Response.json(job.plan.get("fail_status", 500), body, **rid)
        return Response.json(200, job.result, **rid)

    def _flags(self, job: FalJob) -> list[bool]:
        n = job.payload.get("num_images") or 1
        nsfw = job.plan.get("nsfw", False)
        if job.payload.get("enable_safety_checker") is False:
            return [False] * n
        return [bool(nsfw[i]) if isinstance(nsfw, (list, tuple)) else bool(nsfw) for i in range(n)]

    def _render(self, job: FalJob) -> None:
        """The job's output images, drawn and encoded once (job.finalize_lock held)."""
        if job.outputs is not None:
            return
        p, flags = job.payload, self._flags(job)
        job.outputs = [encode(render(job.source, job.mask, job.out_size,
                                     fill_colour(p.get("prompt") or "", job.seed, i),
                                     paste_back=p.get("paste_back", True) is not False, black=flags[i]),
                              job.fmt) for i in range(len(flags))]

    def _render_while_running(self, job: FalJob) -> None:
        """A worker draws the outputs during the job's run time, as a real service's runner
        does: when the status turns COMPLETED they are ready (a job whose start is held, or
        that fails or is cancelled, renders when it completes, if ever)."""
        if job.start_at is None or job.plan.get("fail"):
            return
        if self.stop_event.wait(max(0.0, job.start_at - time.monotonic())) or job.cancelled:
            return
        with job.finalize_lock:
            if not job.cancelled:
                self._render(job)

    def _finalize(self, job: FalJob) -> None:
        """Render (unless done while running), store and bill a completed job exactly once."""
        with job.finalize_lock:
            if job.result is not None or job.cancelled or job.plan.get("fail"):
                return
            p = job.payload
            self._render(job)
            n, flags = len(job.outputs), self._flags(job)
            images = []
            for i, (data, ctype) in enumerate(job.outputs):
                if job.plan.get("output_data") is not None:     # e.g. a decompression bomb
                    data = job.plan["output_data"]
                name = f"{job.request_id[:8]}_{i}.{job.fmt.replace('jpeg', 'jpg')}"
                if p.get("sync_mode"):
                    url = data_uri(data, ctype)
                else:
                    key = self._store(data, ctype, name)
                    if job.plan.get("result_404"):
                        with self.lock:
                            self.files.pop(key, None)
                    url = f"{job.cdn_base}/files/{key}"
                images.append({"url": url, "width": job.out_size[0],
                               "height": job.out_size[1], "content_type": ctype,
                               "file_name": name, "file_size": len(data)})
            job.result = {"images": images, "seed": job.seed, "prompt": p.get("prompt") or "",
                          "has_nsfw_concepts": flags,
                          "timings": {"inference": job.run_seconds or 0.0}}
            mp_each = job.out_size[0] * job.out_size[1] / (1024 * 1024)
            price = PRICES[job.endpoint]
            if price is None:
                usd = None
            elif job.endpoint in ROUNDED_UP:
                usd = round(n * math.ceil(mp_each - 1e-9) * price, 6)
            else:
                usd = round(n * mp_each * price, 6)
            with self.lock:
                job.billed = {"request_id": job.request_id, "endpoint": job.endpoint,
                              "outputs": n, "megapixels": round(n * mp_each, 6), "usd": usd}

    def _cancel(self, req):
        if (bad := self._auth_error(req)) is not None:
            return bad
        job = self._job_for(req)
        if job is None:
            return Response.json(404, {"status": "NOT_FOUND", "detail": "Request not found"})
        with self.lock:
            state = self._state(job, time.monotonic())
            if state == "COMPLETED":
                return Response.json(400, {"status": "ALREADY_COMPLETED"},
                                     **{"x-fal-request-id": job.request_id})
            self.cancelled.add(job.request_id)
            job.cancel_requested = True
            if state == "IN_QUEUE" or self.honour_cancel:
                job.cancelled = True
        return Response.json(202, {"status": "CANCELLATION_REQUESTED"},
                             **{"x-fal-request-id": job.request_id})

    # storage -------------------------------------------------------------------------
    def _token(self, req):
        if (bad := self._auth_error(req)) is not None:
            return bad
        token = uuid.uuid4().hex
        with self.lock:
            self.cdn_tokens.add(token)
        base = "https://v3.fal.media" if req.tls_host else self.cdn_url
        expires = datetime.now(timezone.utc) + timedelta(minutes=30)
        return Response.json(200, {"token": token, "token_type": "Bearer", "base_url": base,
                                   "expires_at": expires.isoformat()})

    def _cdn_upload(self, req):
        auth = req.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.cdn_tokens:
            return Response.json(401, {"detail": "Invalid CDN token"})
        ctype = req.headers.get("content-type", "application/octet-stream")
        name = req.headers.get("x-fal-file-name") or "upload.bin"
        key = self._store(req.body, ctype, name)
        with self.lock:
            self.uploads.append({"via": "cdn", "key": key, "content_type": ctype,
                                 "file_name": name, "size": len(req.body)})
        return Response.json(200, {"access_url": f"{req.base}/files/{key}"})

    def _initiate(self, req):
        if (bad := self._auth_error(req)) is not None:
            return bad
        info = req.json() or {}
        name = info.get("file_name") or "upload.bin"
        key = f"{uuid.uuid4().hex[:16]}/{name}"
        cdn = "https://v3.fal.media" if req.tls_host else self.cdn_url
        with self.lock:
            self.uploads.append({"via": "initiate", "key": key,
                                 "content_type": info.get("content_type"), "file_name": name,
                                 "size": None})
        return Response.json(200, {"upload_url": f"{cdn}/gcs-upload/{key}",
                                   "file_url": f"{cdn}/files/{key}"})

    def _gcs_put(self, req):
        key = req.path[len("/gcs-upload/"):]
        with self.lock:
            pending = [u for u in self.uploads if u["via"] == "initiate" and u["key"] == key]
            if not pending:
                return Response.json(404, {"detail": "unknown upload URL"})
            pending[-1]["size"] = len(req.body)
            self.files[key] = (req.body, req.headers.get("content-type",
                                                         "application/octet-stream"))
        return Response(200, b"", "text/plain")

    def _file(self, req):
        with self.lock:
            found = self.files.get(req.path[len("/files/"):])
        if found is None:
            return Response.json(404, {"detail": "File not found"})
        return Response(200, found[0], found[1])
