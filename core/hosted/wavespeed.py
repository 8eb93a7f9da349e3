"""WaveSpeedClient: WaveSpeedAI's v3 REST API (`wavespeed-ai/flux-fill-dev`).

    client = WaveSpeedClient.from_env(user_dir)        # WAVESPEED_API_KEY / keys.json
    url = client.upload(png_bytes, "image/png")        # /api/v3/media/upload/binary
    handle, result = client.run("wavespeed-ai/flux-fill-dev", payload, ...)

The submit POST is never re-sent once it may have reached the server: a lost answer, and a
5xx answer (with enable_sync_mode the gateway may answer 504 while the task runs on, and is
billed), may be a billed task, so SubmitUncertain is raised instead; it is retried only when
nothing can have been created — connection refused / connect timeout, or an explicit 429.
Outputs may be URLs, data URIs, or (enable_base64_output) plain base64 without a `data:`
prefix: `outputs` turns the latter into data URIs, so a paid result is never lost for it. Polls, uploads and
cancels are retried on 429/5xx/transport errors. Auth: `Bearer <key>`, API origin only.
WaveSpeed's API has no way to list recent predictions (only GET by id), so an uncertain
submit cannot be looked up: the provider journals it as "uncertain" and says so.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from . import keys
from .client import Poll, PollSchedule, QueueClient
from .errors import HostedError, RemoteRejected, ResultUnavailable, SubmitUncertain, TransportError
from .retry import Deadline, RetryPolicy, polls, positively_refused
from .transport import Redactor, Transport, check_url

DEFAULT_API_URL = "https://api.wavespeed.ai"
_STATES = {"created": "queued", "pending": "queued", "processing": "running",
           "completed": "done", "failed": "failed", "cancelled": "cancelled", "canceled": "cancelled"}


@dataclass
class WaveSpeedHandle:
    endpoint: str
    request_id: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WaveSpeedHandle:
        return cls(d["endpoint"], d["request_id"])


class WaveSpeedClient(QueueClient):
    provider = "wavespeed"

    def __init__(self, key: keys.Secret | str, *, api_url: str = DEFAULT_API_URL,
                 policy: RetryPolicy | None = None, poll: PollSchedule | None = None, session=None):
        key = key if isinstance(key, keys.Secret) else keys.Secret(key)
        self.api_url = check_url(api_url.rstrip("/"), "WAVESPEED_API_URL")
        transport = Transport("wavespeed", [self.api_url], f"Bearer {key.reveal()}", policy=policy,
                              session=session, redactor=Redactor([key.reveal()]),
                              key_hint=keys.where("wavespeed"))
        super().__init__(transport, poll)

    @classmethod
    def from_env(cls, user_dir=None, env=None, **kw) -> WaveSpeedClient:
        env = os.environ if env is None else env
        kw.setdefault("api_url", env.get("WAVESPEED_API_URL") or DEFAULT_API_URL)
        return cls(keys.load_key("wavespeed", user_dir, env), **kw)

    def __repr__(self):
        return f"WaveSpeedClient(api_url={self.api_url!r})"

    @staticmethod
    def _data(body, what: str) -> dict:
        if not isinstance(body, dict):
            raise TransportError(f"wavespeed {what}: answer is not an object")
        code = body.get("code")
        if code not in (None, 200):
            raise RemoteRejected(f"wavespeed {what}: {body.get('message') or 'error'} (code {code})",
                                 status=code if isinstance(code, int) else None)
        data = body.get("data")
        if not isinstance(data, dict):
            raise TransportError(f"wavespeed {what}: answer has no data object")
        return data

    def upload(self, data: bytes, content_type: str = "image/png", file_name: str = "image.png",
               *, deadline=None, cancelled=None) -> str:
        _, body = self.t.call("POST", f"{self.api_url}/api/v3/media/upload/binary", what="upload",
                              files={"file": (file_name, data, content_type)}, retry=polls,
                              deadline=deadline, cancelled=cancelled)
        url = self._data(body, "upload").get("download_url")
        if not isinstance(url, str):
            raise TransportError("wavespeed upload: answer has no download_url")
        return url

    def submit(self, endpoint: str, payload: dict, *, deadline=None, cancelled=None) -> WaveSpeedHandle:
        try:
            _, body = self.t.call("POST", f"{self.api_url}/api/v3/{endpoint.strip('/')}",
                                  what="submit", json=payload, retry=positively_refused,
                                  deadline=deadline, cancelled=cancelled, abandonable=False)
        except TransportError as e:
            if e.status is None or e.status >= 500:   # no answer (timeout, reset) or a 5xx
                raise SubmitUncertain(
                    f"{e} — the task may have been created (and may be billed); it was NOT sent "
                    f"again", status=e.status) from None
            raise
        try:
            rid = self._data(body, "submit").get("id")
        except TransportError as e:
            raise SubmitUncertain(f"{e} — the task may exist; not re-sent") from None
        if not isinstance(rid, str) or not rid:
            raise SubmitUncertain("wavespeed submit: answer has no task id; the task may exist; "
                                  "not re-sent")
        return WaveSpeedHandle(endpoint, rid)

    def _url(self, handle: WaveSpeedHandle, suffix: str = "") -> str:
        return f"{self.api_url}/api/v3/predictions/{handle.request_id}{suffix}"

    def prediction(self, handle, *, deadline=None, cancelled=None) -> dict:
        _, body = self.t.call("GET", self._url(handle, "/result"), what="poll", retry=polls,
                              deadline=deadline, cancelled=cancelled, poll=True)
        return self._data(body, "poll")

    def _poll(self, handle, deadline, cancelled) -> Poll:
        data = self.prediction(handle, deadline=deadline, cancelled=cancelled)
        state = _STATES.get(str(data.get("status")).lower(), "running")
        return Poll(state, error=data.get("error") or None, raw=data)

    def result(self, handle, *, deadline=None, cancelled=None) -> dict:
        data = self.prediction(handle, deadline=deadline, cancelled=cancelled)
        if str(data.get("status")).lower() != "completed" or not isinstance(data.get("outputs"), list):
            raise TransportError(f"wavespeed result of {handle.request_id}: not completed")
        return data

    def cancel(self, handle) -> str:
        try:
            resp, _ = self.t.call("DELETE", self._url(handle), what="cancel", retry=polls,
                                  deadline=Deadline(10), accept=(400, 404), want_json=False)
        except HostedError as e:
            return f"cancel failed: {e}"
        if resp.status_code == 404:
            return "NOT_FOUND"
        if resp.status_code == 400:
            return "ALREADY_COMPLETED"
        return "CANCELLATION_REQUESTED"

    def result_location(self, handle) -> str:
        """Where the paid result can still be fetched (with the key) after a local failure."""
        return f"GET {self._url(handle, '/result')}"

    @staticmethod
    def outputs(result: dict) -> tuple[list[str], list[bool | None]]:
        """Output URLs (plain base64 outputs as data URIs) and per-output NSFW flags: None
        (unknown) where the result carries none, never False (clean)."""
        urls = result.get("outputs") or []
        nsfw = result.get("has_nsfw_contents")
        nsfw = nsfw if isinstance(nsfw, list) else []
        if not all(isinstance(u, str) for u in urls):
            raise ResultUnavailable("wavespeed result: an output is not a URL")
        return ([_as_url(u) for u in urls],
                [bool(nsfw[i]) if i < len(nsfw) and nsfw[i] is not None else None for i in range(len(urls))])


def _as_url(output: str) -> str:
    """A URL or data URI as it is; plain base64 (enable_base64_output) as a data URI."""
    text = output.strip()
    if text.startswith(("https://", "http://", "data:")):
        return text
    payload = "".join(text.split())
    payload += "=" * (-len(payload) % 4)
    return "data:application/octet-stream;base64," + payload
