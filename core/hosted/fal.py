"""FalClient: fal.ai's queue API and CDN upload, on `requests`.

    client = FalClient.from_env(user_dir)             # FAL_KEY / keys.json, FAL_*_URL
    url = client.upload(png_bytes, "image/png")       # fal CDN (token flow)
    handle, result = client.run("fal-ai/flux-lora/inpainting", payload,
                                progress=..., cancelled=..., deadline=600,
                                on_submitted=journal_write)

Submit is retried like fal's own client (408/409/429, ingress 502/503/504 without
x-fal-request-id, transport errors; backoff with jitter, Retry-After honoured); polls,
results and uploads too. The key goes only to the queue/rest/api origins, as `Key <key>`.

Progress and completion are learnt from fal's status stream (`GET {status_url}/stream?logs=1`,
server-sent events, the way fal's own client waits): a helper thread reads it and hands each
update to the poll loop at once, so a finished job is noticed within milliseconds and no poll
request is needed meanwhile (a poll every STREAMED_POLL_S still checks). The poll loop stays in
charge (cancel, deadline, failures, resume); a stream that is refused or breaks only means the
regular polls take over.
`pricing(endpoint_id)`: fal's platform pricing API (`FAL_API_URL`, default https://api.fal.ai),
one short try (live_prices.py decides what to do without it).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime

from . import keys
from .client import Poll, PollSchedule, QueueClient
from .errors import ResultUnavailable, TransportError
from .retry import Deadline, RetryPolicy, fal_submit, polls
from .transport import Redactor, Transport, check_url, make_session, origin

log = logging.getLogger("fluxfill.hosted")
DEFAULT_QUEUE_URL = "https://queue.fal.run"
DEFAULT_REST_URL = "https://rest.fal.ai"
DEFAULT_API_URL = "https://api.fal.ai"
PRICING_TIMEOUT_S = 3.0
STREAM_READ_TIMEOUT_S = 20.0     # fal sends a keep-alive every 15 s


@dataclass
class FalHandle:
    endpoint: str
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FalHandle:
        return cls(**{k: d[k] for k in ("endpoint", "request_id", "status_url", "response_url",
                                         "cancel_url")})


class FalClient(QueueClient):
    provider = "fal"

    def __init__(self, key: keys.Secret | str, *, queue_url: str = DEFAULT_QUEUE_URL,
                 rest_url: str = DEFAULT_REST_URL, api_url: str = DEFAULT_API_URL,
                 policy: RetryPolicy | None = None, poll: PollSchedule | None = None, session=None,
                 stream: bool = True):
        key = key if isinstance(key, keys.Secret) else keys.Secret(key)
        self.queue_url = check_url(queue_url.rstrip("/"), "FAL_QUEUE_URL")
        self.rest_url = check_url(rest_url.rstrip("/"), "FAL_REST_URL")
        self.api_url = check_url(api_url.rstrip("/"), "FAL_API_URL")
        self.use_stream = stream
        self._stream_session = None
        transport = Transport("fal", [self.queue_url, self.rest_url, self.api_url], f"Key {key.reveal()}",
                              policy=policy, session=session, redactor=Redactor([key.reveal()]),
                              key_hint=keys.where("fal"))
        super().__init__(transport, poll)
        self._cdn: tuple[str, str, float] | None = None   # (base_url, auth header, expiry)

    @classmethod
    def from_env(cls, user_dir=None, env=None, **kw) -> FalClient:
        env = os.environ if env is None else env
        kw.setdefault("queue_url", env.get("FAL_QUEUE_URL") or DEFAULT_QUEUE_URL)
        kw.setdefault("rest_url", env.get("FAL_REST_URL") or DEFAULT_REST_URL)
        kw.setdefault("api_url", env.get("FAL_API_URL") or DEFAULT_API_URL)
        return cls(keys.load_key("fal", user_dir, env), **kw)

    def __repr__(self):
        return f"FalClient(queue_url={self.queue_url!r}, rest_url={self.rest_url!r}, api_url={self.api_url!r})"

    # ------------------------------------------------------------------ prices
    def pricing(self, endpoint_id: str, *, timeout: float = PRICING_TIMEOUT_S) -> list[dict]:
        """fal's published prices of `endpoint_id`: [{endpoint_id, unit_price, unit, currency}].
        One try within `timeout` seconds; any failure raises (the caller uses its table)."""
        _, body = self.t.call("GET", f"{self.api_url}/v1/models/pricing", what="pricing",
                              params={"endpoint_id": endpoint_id}, deadline=Deadline(timeout))
        prices = body.get("prices") if isinstance(body, dict) else None
        if not isinstance(prices, list):
            raise TransportError("fal pricing: answer has no prices list")
        return prices

    # ------------------------------------------------------------------ uploads
    def _cdn_token(self, deadline, cancelled) -> tuple[str, str]:
        if self._cdn and self._cdn[2] > time.time() + 60:
            return self._cdn[0], self._cdn[1]
        _, body = self.t.call("POST", f"{self.rest_url}/storage/auth/token?storage_type=fal-cdn-v3",
                              what="upload token", json={}, retry=polls, deadline=deadline,
                              cancelled=cancelled)
        try:
            base = check_url(str(body["base_url"]).rstrip("/"), "fal CDN base_url")
            auth = f"{body.get('token_type') or 'Bearer'} {body['token']}"
        except (KeyError, TypeError):
            raise TransportError("fal upload token: unexpected answer (no token/base_url)") from None
        self.t.redact.add(str(body["token"]))
        expiry = time.time() + 600
        try:
            expiry = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError):
            pass
        self._cdn = (base, auth, expiry)
        return base, auth

    def upload(self, data: bytes, content_type: str = "image/png", file_name: str = "image.png",
               *, deadline=None, cancelled=None) -> str:
        """Upload bytes to the fal CDN; returns the public access_url."""
        base, auth = self._cdn_token(deadline, cancelled)
        _, body = self.t.call("POST", f"{base}/files/upload", what="upload", data=data,
                              headers={"Authorization": auth, "Content-Type": content_type,
                                       "X-Fal-File-Name": file_name},
                              retry=polls, deadline=deadline, cancelled=cancelled)
        url = body.get("access_url") if isinstance(body, dict) else None
        if not isinstance(url, str):
            raise TransportError("fal upload: answer has no access_url")
        return url

    # ------------------------------------------------------------------ queue
    def _app_base(self, endpoint: str, request_id: str) -> str:
        app = "/".join(endpoint.strip("/").split("/")[:2])   # status drops the sub-path
        return f"{self.queue_url}/{app}/requests/{request_id}"

    def _trusted(self, url, fallback: str) -> str:
        """Use the server's URL only if it is on the queue origin (the key goes there)."""
        if isinstance(url, str) and origin(url) == origin(self.queue_url):
            try:
                return check_url(url, "fal queue URL")
            except ValueError:
                pass
        return fallback

    def submit(self, endpoint: str, payload: dict, *, deadline=None, cancelled=None) -> FalHandle:
        _, body = self.t.call("POST", f"{self.queue_url}/{endpoint.strip('/')}", what="submit",
                              json=payload, retry=fal_submit, deadline=deadline, cancelled=cancelled,
                              abandonable=False)
        rid = body.get("request_id") if isinstance(body, dict) else None
        if not isinstance(rid, str) or not rid:
            raise TransportError("fal submit: answer has no request_id")
        base = self._app_base(endpoint, rid)
        return FalHandle(endpoint, rid, self._trusted(body.get("status_url"), base + "/status"),
                         self._trusted(body.get("response_url"), base),
                         self._trusted(body.get("cancel_url"), base + "/cancel"))

    def status(self, handle: FalHandle, *, logs: bool = True, deadline=None, cancelled=None) -> dict:
        sep = "&" if "?" in handle.status_url else "?"
        _, body = self.t.call("GET", handle.status_url + (f"{sep}logs=1" if logs else ""),
                              what="status", retry=polls, deadline=deadline, cancelled=cancelled,
                              poll=True)
        if not isinstance(body, dict) or "status" not in body:
            raise TransportError("fal status: answer has no status")
        return body

    def _poll(self, handle, deadline, cancelled) -> Poll:
        return self._as_poll(self.status(handle, deadline=deadline, cancelled=cancelled))

    @staticmethod
    def _as_poll(body: dict) -> Poll:
        """A status answer (a poll's, or an event of the status stream) as a Poll."""
        status = body.get("status")
        logs = [str(x.get("message", "")) for x in (body.get("logs") or []) if isinstance(x, dict)]
        if status == "IN_QUEUE":
            return Poll("queued", position=body.get("queue_position"), raw=body)
        if status == "IN_PROGRESS":
            return Poll("running", logs=logs, raw=body)
        if status == "COMPLETED":
            if body.get("error"):
                kind = "cancelled" if body.get("error_type") == "request_cancelled" else "failed"
                error_type = f" [{body['error_type']}]" if body.get("error_type") else ""
                return Poll(kind, logs=logs, error=f"{body['error']}{error_type}", raw=body)
            return Poll("done", logs=logs, raw=body)
        return Poll("running", logs=logs, raw=body)   # unknown states: keep waiting

    # ------------------------------------------------------------------ status stream
    def _watch(self, handle: FalHandle, deadline, cancelled) -> threading.Event | None:
        """Read the status stream (with logs) on a helper thread; the returned event is set on
        each update the stream reports, whose Poll it leaves in `wake.poll` for the loop to use
        instead of a request of its own (and set when the stream ends or breaks: the loop then
        polls at once). `wake.stop` (set by the loop when it is done) makes the thread leave."""
        if not self.use_stream or not self.t.is_api(handle.status_url):
            return None
        wake, stop, ended = threading.Event(), threading.Event(), threading.Event()
        wake.stop, wake.ended, wake.poll = stop, ended, None
        if self._stream_session is None:
            self._stream_session = make_session(pool_size=16)
        session = self._stream_session
        url = handle.status_url.split("?", 1)[0] + "/stream?logs=1"
        headers = self.t._headers(url, {"Accept": "text/event-stream"})

        def read():
            resp, last = None, None
            try:
                rem = deadline.remaining() if deadline else STREAM_READ_TIMEOUT_S
                timeout = (min(self.t.policy.connect_timeout, max(rem, 0.1)), STREAM_READ_TIMEOUT_S)
                resp = session.get(url, headers=headers, stream=True, timeout=timeout,
                                   allow_redirects=False)
                if resp.status_code != 200:
                    log.debug("fal status stream of %s: HTTP %s (polling)", handle.request_id,
                              resp.status_code)
                    return
                for line in _lines(resp):
                    if stop.is_set():
                        return
                    if not line.startswith(b"data:"):
                        continue
                    try:
                        body = json.loads(line[5:])
                        status = body.get("status")
                    except (ValueError, AttributeError):
                        continue
                    if status is None:
                        continue
                    key = (status, len(body.get("logs") or []))
                    if key != last:
                        last = key
                        wake.poll = self._as_poll(body)
                        wake.set()
                    if status == "COMPLETED":
                        return
            except Exception as e:  # noqa: BLE001 - a broken stream: the polls carry on
                if not stop.is_set():
                    log.debug("fal status stream of %s broke: %s (polling)", handle.request_id,
                              self.t.redact(e))
            finally:
                ended.set()
                wake.set()
                if resp is not None:
                    resp.close()
        threading.Thread(target=read, name="fluxfill-fal-stream", daemon=True).start()
        return wake

    def result(self, handle: FalHandle, *, deadline=None, cancelled=None) -> dict:
        _, body = self.t.call("GET", handle.response_url, what="result", retry=polls,
                              deadline=deadline, cancelled=cancelled, poll=True)
        if not isinstance(body, dict) or not isinstance(body.get("images"), list):
            raise TransportError(f"fal result of {handle.request_id}: answer has no images list")
        return body

    def cancel(self, handle: FalHandle) -> str:
        """PUT cancel_url → CANCELLATION_REQUESTED | ALREADY_COMPLETED | NOT_FOUND."""
        resp, body = self.t.call("PUT", handle.cancel_url, what="cancel", retry=polls,
                                 deadline=Deadline(10), accept=(400, 404), want_json=False)
        try:
            status = resp.json().get("status")
        except (ValueError, AttributeError):
            status = None
        if resp.status_code == 404:
            return status or "NOT_FOUND"
        return status or ("CANCELLATION_REQUESTED" if resp.status_code < 300 else f"HTTP {resp.status_code}")

    @staticmethod
    def result_location(handle: FalHandle) -> str:
        """Where the paid result can still be fetched (with the key) after a local failure."""
        return f"GET {handle.response_url}"

    @staticmethod
    def outputs(result: dict) -> tuple[list[str], list[bool | None]]:
        """Output URLs and per-image NSFW flags; an image the result carries no flag for has
        None (unknown), never False (clean)."""
        urls, flags = [], []
        nsfw = result.get("has_nsfw_concepts")
        nsfw = nsfw if isinstance(nsfw, list) else []
        for i, img in enumerate(result.get("images") or []):
            url = img.get("url") if isinstance(img, dict) else None
            if not isinstance(url, str):
                raise ResultUnavailable("fal result: an image has no url")
            urls.append(url)
            flags.append(bool(nsfw[i]) if i < len(nsfw) and nsfw[i] is not None else None)
        return urls, flags


def _lines(resp):
    """The lines of a streamed response as they arrive: each received piece is split at once
    (requests' iter_lines would wait for a full read buffer, or read byte by byte)."""
    pending = b""
    for piece in resp.iter_content(chunk_size=None):
        pending += piece
        *done, pending = pending.split(b"\n")
        for line in done:
            yield line.rstrip(b"\r")
    if pending:
        yield pending
