"""WaveSpeedEmulator: WaveSpeedAI's v3 REST API (api.wavespeed.ai) on 127.0.0.1 for
wavespeed-ai/flux-fill-dev: submit, poll, cancel, uploads and file serving. See README.md."""
from __future__ import annotations

import base64
import email.parser
import email.policy
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ._base import EmulatorBase, Request, Response
from ._images import (InputError, data_uri, encode, fill_colour, open_image, parse_data_uri,
                      render)
from ._validate import check_object

MODEL = "wavespeed-ai/flux-fill-dev"
PRICE_PER_IMAGE = 0.035
SCHEMA = {
    "image": {"type": "str", "required": True},
    "mask_image": {"type": "str", "required": True},
    "prompt": {"type": "str", "required": True},
    "size": {"type": "str"},
    "num_inference_steps": {"type": "int", "ge": 1, "le": 50},
    "seed": {"type": "int", "ge": -1, "le": 2147483647},
    "guidance_scale": {"type": "float", "ge": 28, "le": 35},
    "num_images": {"type": "int", "ge": 1, "le": 4},
    "loras": {"type": "list", "max_items": 3, "items": {"type": "object", "fields": {
        "path": {"type": "str", "required": True},
        "scale": {"type": "float", "required": True, "ge": 0, "le": 4}}}},
    "enable_safety_checker": {"type": "bool"},
    "enable_base64_output": {"type": "bool"},
    "enable_sync_mode": {"type": "bool"},
}
_SIZE = re.compile(r"^(\d+)\*(\d+)$")


@dataclass
class WsJob:
    id: str
    payload: dict
    seed: int
    out_size: tuple
    source: object
    mask: object
    submitted: float
    created_at: str
    start_at: float | None
    run_seconds: float | None
    plan: dict = field(default_factory=dict)
    finish_at: float | None = None
    cancelled: bool = False
    cancel_requested: bool = False
    outputs: list | None = None
    nsfw: list | None = None
    billed: dict | None = None
    # one render at a time PER JOB (finalize is reached from several polls at once);
    # different jobs render in parallel, as a real service's workers would
    finalize_lock: threading.Lock = field(default_factory=threading.Lock, repr=False,
                                          compare=False)


def _env(code: int, message: str, data=None, **headers) -> Response:
    return Response.json(code if code < 1000 else 200,
                         {"code": code, "message": message, "data": data}, **headers)


def _ingress(code: int) -> Response:
    """A gateway's own answer (nginx HTML, no envelope)."""
    return Response(code, (f"<html><body><center><h1>{code}</h1></center><hr>"
                           f"<center>nginx</center></body></html>").encode(), "text/html")


class WaveSpeedEmulator(EmulatorBase):
    routes = {"submit", "result", "cancel", "upload", "file"}

    def __init__(self, key: str = "test-key", *, queue_seconds: float | None = 0.0,
                 run_seconds: float | None = 0.2, accept_data_uris: bool = False,
                 require_png_mask: bool = True, honour_cancel: bool = True,
                 sync_timeout: float = 30.0, sync_gateway_timeout: float | None = None,
                 base64_data_uri: bool = False, hang_seconds: float = 30.0,
                 retry_after: str = "1", rng_seed: int = 0):
        super().__init__(hang_seconds=hang_seconds, retry_after=retry_after)
        self.key = key
        self.queue_seconds, self.run_seconds = queue_seconds, run_seconds
        self.accept_data_uris, self.require_png_mask = accept_data_uris, require_png_mask
        self.honour_cancel, self.sync_timeout = honour_cancel, sync_timeout
        # sync mode: the gateway answers 504 after this long while the task runs on (and bills)
        self.sync_gateway_timeout = sync_gateway_timeout
        # enable_base64_output: plain base64 as WaveSpeed sends it; True: with a data: prefix
        self.base64_data_uri = base64_data_uri
        self.requests: list[dict] = []
        self.cancelled: set[str] = set()
        self.uploads: list[dict] = []
        self._rng = random.Random(rng_seed)

    def start(self):
        super().start()
        self.base_url = self.origin
        return self

    # test-facing API (same meaning as FalEmulator's) ---------------------------------
    def next_job(self, *, fail: str | None = None, nsfw=False, result_404: bool = False,
                 output_data: bytes | None = None, queue_seconds=..., run_seconds=...) -> None:
        """nsfw=None: the result carries no flags (`has_nsfw_contents: []`); output_data: the
        output files hold these bytes instead of the rendered image."""
        self._plan_next({"fail": fail, "nsfw": nsfw, "result_404": result_404,
                         "output_data": output_data}, queue_seconds, run_seconds)

    @property
    def billed(self) -> list[dict]:
        """One entry per completed task: id, outputs, usd ($0.035 per image)."""
        with self.lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            if self.state(job.id) in ("completed", "failed"):
                self._finalize(job)
        with self.lock:
            return [j.billed for j in self.jobs.values() if j.billed]

    def add_file(self, data: bytes, content_type: str = "image/png",
                 name: str = "file.png") -> str:
        return f"{self.base_url}/files/{self._store(data, content_type, name)}"

    # routing -------------------------------------------------------------------------
    def _locate(self, tls_host, path, headers):
        return "api", path, self.origin

    def _resolve(self, req: Request):
        p, m = req.path.rstrip("/"), req.method
        if p == f"/api/v3/{MODEL}" and m == "POST":
            return "submit", self._submit
        if p.startswith("/api/v3/predictions/"):
            rest = p[len("/api/v3/predictions/"):].split("/")
            if len(rest) == 2 and rest[1] == "result" and m == "GET":
                return "result", self._result
            if len(rest) == 1 and m == "GET":
                return "result", self._result
            if len(rest) == 1 and m == "DELETE":
                return "cancel", self._cancel
            return None, None
        if p == "/api/v3/media/upload/binary" and m == "POST":
            return "upload", self._upload_binary
        if p == "/api/v3/media/uploads" and m == "POST":
            return "upload", self._upload_ticket
        if p.startswith("/upload/") and m == "PUT":
            return "upload", self._upload_put
        if p.startswith("/files/") and m in ("GET", "HEAD"):
            return "file", self._file
        if p.startswith("/api/v3/") and m == "POST":
            return "submit", None
        return None, None

    def _not_found(self, req):
        return _env(404, f"not found: {req.method} {req.path}")

    def _fault_response(self, fault, req) -> Response:
        kind = fault.kind
        if kind == "429":
            return _env(429, "Too many requests", **{"Retry-After": str(
                fault.opts.get("retry_after", self.retry_after))})
        if kind.endswith("-ingress"):
            return _ingress(int(kind[:3]))
        if kind == "malformed":
            return Response(200, b'{"code": 200, "data": {"id": ', "application/json")
        messages = {"500": "Internal server error", "503": "Service unavailable",
                    "401": "Unauthorized", "404": "Not found", "422": "Injected error"}
        return _env(int(kind), messages[kind])

    def _auth_error(self, req):
        if req.headers.get("authorization") != f"Bearer {self.key}":
            return _env(401, "Invalid or missing API key (expected 'Authorization: "
                             "Bearer <key>')")
        return None

    # submission ----------------------------------------------------------------------
    def _load_input(self, url: str, what: str):
        if url.startswith("data:"):
            if not self.accept_data_uris:
                raise InputError(f"{what}: must be a URL (upload the file first)",
                                 "invalid_url")
            return open_image(parse_data_uri(url)[0], what)
        parts = urlsplit(url)
        key = parts.path[len("/files/"):] if parts.scheme == "http" and \
            parts.netloc == f"127.0.0.1:{self.port}" and parts.path.startswith("/files/") \
            else None
        with self.lock:
            found = self.files.get(key) if key else None
        if found is None:
            raise InputError(f"{what}: could not download {url[:120]!r}", "download_error")
        return open_image(found[0], what)

    def _submit(self, req):
        try:
            payload = req.json()
        except ValueError:
            payload = None
        entry = {"endpoint": MODEL, "payload": payload, "request_id": None, "status": None,
                 "headers": {k: v for k, v in req.headers.items() if k != "authorization"},
                 "errors": [], "image_size": None, "mask_size": None, "image_format": None,
                 "mask_format": None, "unknown_fields": []}
        with self.lock:
            self.requests.append(entry)
        if (bad := self._auth_error(req)) is not None:
            entry["status"] = 401
            return bad
        if not isinstance(payload, dict):
            errors = [{"loc": ["body"], "msg": "body must be a JSON object", "type": "json"}]
        else:
            errors = check_object(payload, SCHEMA)
            entry["unknown_fields"] = sorted(set(payload) - set(SCHEMA))
        size = (payload or {}).get("size") or "1024*1024"
        match = _SIZE.match(size) if isinstance(size, str) else None
        if not errors and (not match or not all(256 <= int(v) <= 1536
                                                for v in match.groups())):
            errors.append({"loc": ["body", "size"], "type": "value_error",
                           "msg": f"size must be 'W*H' with each side 256-1536, got {size!r}"})
        images = {}
        for name in ("image", "mask_image") if not errors else ():
            try:
                img = self._load_input(payload[name], name)
            except InputError as exc:
                errors.append({"loc": ["body", name], "msg": str(exc), "type": exc.kind})
                continue
            images[name] = img
            which = "image" if name == "image" else "mask"
            entry[f"{which}_size"], entry[f"{which}_format"] = img.size, img.format
        if "mask_image" in images and self.require_png_mask \
                and images["mask_image"].format != "PNG":
            errors.append({"loc": ["body", "mask_image"], "type": "image_format",
                           "msg": f"mask_image must be PNG (got {images['mask_image'].format})"})
        if errors:
            entry["status"], entry["errors"] = 400, errors
            first = errors[0]
            return _env(400, f"{'.'.join(str(x) for x in first['loc'][1:])}: {first['msg']}")
        job = self._new_job(payload, (int(match[1]), int(match[2])), images)
        with self.lock:
            self.jobs[job.id] = job
            entry["request_id"], entry["status"] = job.id, 200
        if payload.get("enable_sync_mode"):
            end = self._end(job)
            wait = self.sync_timeout if end is None else end - time.monotonic()
            gateway = self.sync_gateway_timeout
            if gateway is not None and wait > gateway:
                self.stop_event.wait(min(gateway, self.hang_seconds))
                entry["status"] = 504              # the task exists (entry["request_id"])
                return _ingress(504)
            self.stop_event.wait(max(0.0, min(wait, self.sync_timeout, self.hang_seconds)))
        return _env(200, "success", self._data(req, job))

    def _new_job(self, payload, out_size, images) -> WsJob:
        with self.lock:
            plan = self._plans.pop(0) if self._plans else {}
            seed = payload.get("seed", -1)
            seed = self._rng.randrange(2 ** 31) if seed is None or seed == -1 else seed
        queue_s = plan.get("queue_seconds", self.queue_seconds)
        now = time.monotonic()
        return WsJob(uuid.uuid4().hex, payload, seed, out_size, images["image"],
                     images["mask_image"], now,
                     datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                     None if queue_s is None else now + queue_s,
                     plan.get("run_seconds", self.run_seconds), plan)

    # job state -----------------------------------------------------------------------
    def _end(self, job):
        if job.start_at is None:
            return job.finish_at
        end = None if job.run_seconds is None else job.start_at + job.run_seconds
        if job.finish_at is not None:
            end = job.finish_at if end is None else min(end, job.finish_at)
        return end

    def _state(self, job, now) -> str:
        if job.cancelled:
            return "cancelled"
        if job.start_at is None or now < job.start_at:
            return "created"
        end = self._end(job)
        if end is None or now < end:
            return "processing"
        return "failed" if job.plan.get("fail") else "completed"

    def _data(self, req, job) -> dict:
        with self.lock:
            status = self._state(job, time.monotonic())
        if status == "completed":
            self._finalize(job)
        done = status == "completed"
        error = job.plan.get("fail") if status == "failed" else \
            ("cancelled by user" if status == "cancelled" else "")
        if status == "processing" and job.payload.get("enable_sync_mode"):
            error = "Sync mode timed out; query the result later"
        return {"id": job.id, "model": MODEL, "outputs": job.outputs if done else [],
                "urls": {"get": f"{self.base_url}/api/v3/predictions/{job.id}/result"},
                "has_nsfw_contents": job.nsfw if done else [], "status": status,
                "created_at": job.created_at, "error": error or "",
                "timings": {"inference": int((job.run_seconds or 0) * 1000) if done else 0}}

    def _finalize(self, job: WsJob) -> None:
        with job.finalize_lock:
            if job.outputs is not None or job.plan.get("fail") or job.cancelled:
                return
            p = job.payload
            n = p.get("num_images") or 1
            nsfw = job.plan.get("nsfw", False)
            flags = [bool(nsfw[i]) if isinstance(nsfw, (list, tuple)) else bool(nsfw)
                     for i in range(n)]
            if p.get("enable_safety_checker") is False:
                flags = [False] * n
            outputs = []
            for i in range(n):
                img = render(job.source, job.mask, job.out_size,
                             fill_colour(p["prompt"], job.seed, i), black=flags[i])
                data, ctype = encode(img, "png")
                if job.plan.get("output_data") is not None:     # e.g. a decompression bomb
                    data = job.plan["output_data"]
                if p.get("enable_base64_output"):
                    outputs.append(data_uri(data, ctype) if self.base64_data_uri
                                   else base64.b64encode(data).decode())
                    continue
                key = self._store(data, ctype, f"{job.id[:8]}_{i}.png")
                if job.plan.get("result_404"):
                    with self.lock:
                        self.files.pop(key, None)
                outputs.append(f"{self.base_url}/files/{key}")
            job.outputs, job.nsfw = outputs, [] if nsfw is None else flags
            with self.lock:
                job.billed = {"request_id": job.id, "endpoint": MODEL, "outputs": n,
                              "usd": round(n * PRICE_PER_IMAGE, 6)}

    def _job(self, req):
        job_id = req.path[len("/api/v3/predictions/"):].split("/")[0]
        with self.lock:
            return self.jobs.get(job_id)

    def _result(self, req):
        if (bad := self._auth_error(req)) is not None:
            return bad
        job = self._job(req)
        if job is None:
            return _env(404, "prediction not found")
        return _env(200, "success", self._data(req, job))

    def _cancel(self, req):
        if (bad := self._auth_error(req)) is not None:
            return bad
        job = self._job(req)
        if job is None:
            return _env(404, "prediction not found")
        with self.lock:
            status = self._state(job, time.monotonic())
            if status in ("completed", "failed", "cancelled"):
                return _env(400, f"prediction already {status}")
            self.cancelled.add(job.id)
            job.cancel_requested = True
            if status == "created" or self.honour_cancel:
                job.cancelled = True
        return _env(200, "success", self._data(req, job))

    # uploads and files ---------------------------------------------------------------
    def _upload_binary(self, req):
        if (bad := self._auth_error(req)) is not None:
            return bad
        ctype = req.headers.get("content-type", "")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + req.body)
        part = next((p for p in msg.iter_parts() if p.get_param(
            "name", header="content-disposition") == "file"), None) \
            if msg.is_multipart() else None
        if part is None:
            return _env(400, "multipart form field 'file' is required")
        data = part.get_payload(decode=True) or b""
        name = part.get_filename() or "upload.bin"
        key = self._store(data, part.get_content_type(), name)
        with self.lock:
            self.uploads.append({"via": "binary", "key": key, "file_name": name,
                                 "content_type": part.get_content_type(), "size": len(data)})
        return _env(200, "success", {"type": part.get_content_maintype(),
                                     "download_url": f"{self.base_url}/files/{key}",
                                     "filename": name, "size": len(data)})

    def _upload_ticket(self, req):
        """The SDK's two-step upload: a ticket, then a PUT of the bytes."""
        if (bad := self._auth_error(req)) is not None:
            return bad
        info = req.json() or {}
        name = info.get("filename") or "upload.bin"
        ctype = info.get("content_type") or "application/octet-stream"
        key = f"{uuid.uuid4().hex[:16]}/{name}"
        with self.lock:
            self.uploads.append({"via": "ticket", "key": key, "file_name": name,
                                 "content_type": ctype, "size": None,
                                 "declared_size": info.get("size")})
        return _env(200, "success", {
            "upload": {"method": "PUT", "url": f"{self.base_url}/upload/{key}?sig=emu",
                       "headers": {"Content-Type": ctype}},
            "download_url": f"{self.base_url}/files/{key}"})

    def _upload_put(self, req):
        key = req.path[len("/upload/"):]
        with self.lock:
            pending = [u for u in self.uploads if u["via"] == "ticket" and u["key"] == key]
            if not pending:
                return Response(404, b"unknown upload URL", "text/plain")
            pending[-1]["size"] = len(req.body)
            self.files[key] = (req.body, req.headers.get("content-type",
                                                         "application/octet-stream"))
        return Response(200, b"", "text/plain")

    def _file(self, req):
        with self.lock:
            found = self.files.get(req.path[len("/files/"):])
        if found is None:
            return Response(404, b"not found", "text/plain")
        return Response(200, found[0], found[1])
