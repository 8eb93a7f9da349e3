"""HTTP plumbing shared by the fal and WaveSpeed clients.

- `check_url`: https anywhere, plain http only to loopback hosts (127.0.0.0/8, localhost, ::1).
- `Redactor`: removes keys (and `Key …`/`Bearer …` credentials) from any text we raise or log.
- `Transport.call`: one HTTP call with (connect, read) timeouts, an overall `Deadline`, a
  caller-chosen retry predicate and the `RetryPolicy`'s backoff (all three in retry.py).
  Cancel is checked between tries and, for calls that are safe to abandon (polls, results,
  uploads, downloads), DURING a try: the request runs on a helper thread while the caller
  watches `cancelled()`, so a hung poll cannot delay Cancel by a read timeout. Submits are
  never abandoned (their answer holds the request id of a job that may be billed). Polls also use a shorter read timeout
  (`RetryPolicy.poll_read_timeout`): they are safe to retry.
- The Authorization header is attached ONLY to URLs whose origin is one of the provider's
  API origins; downloads (`Transport.download`) never carry it, and follow redirects by hand
  so each hop is re-checked.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from .errors import (AuthError, DeadlineExceeded, InsecureURL, RemoteCancelled, RemoteRejected,
                     ResultUnavailable, TransportError)
from .retry import Deadline, MalformedJSON, RetryPolicy, RetryPredicate, never, polls

log = logging.getLogger("fluxfill.hosted")


# ---------------------------------------------------------------- URL rules
def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str) -> str:
    """Return `url` if it may be used: https, or http to a loopback host. Raise InsecureURL."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    if parts.scheme == "http":
        raise InsecureURL(f"{what}: plain http is only allowed to loopback hosts (127.0.0.1, localhost, "
                          f"::1), not {parts.hostname!r}; use an https:// URL")
    raise InsecureURL(f"{what}: expected an https:// URL, got scheme {parts.scheme!r}")


def origin(url: str) -> tuple[str, str, int]:
    p = urlsplit(url)
    port = p.port or (443 if p.scheme == "https" else 80)
    return (p.scheme, (p.hostname or "").lower(), port)


# ---------------------------------------------------------------- redaction
_CRED_RE = re.compile(r"\b(Key|Bearer|Token)\s+[A-Za-z0-9._:\-+/=]{6,}", re.IGNORECASE)


class Redactor:
    """Replaces every registered secret (and its id/secret halves) with ***."""

    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        if not secret:
            return
        parts = [secret] + [p for p in secret.split(":") if len(p) >= 6]
        for p in parts:
            if p not in self._secrets:
                self._secrets.append(p)
        self._secrets.sort(key=len, reverse=True)

    def __call__(self, text) -> str:
        text = str(text)
        for s in self._secrets:
            text = text.replace(s, "***")
        return _CRED_RE.sub(lambda m: m.group(1) + " ***", text)

    def __repr__(self):
        return f"Redactor({len(self._secrets)} secrets)"


# ---------------------------------------------------------------- session / transport
def make_session(pool_size: int = 8) -> requests.Session:
    s = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


def body_excerpt(resp: requests.Response, n: int = 300) -> str:
    try:
        text = resp.text
    except Exception:  # noqa: BLE001
        return "<unreadable body>"
    text = " ".join(text.split())
    return text[:n] + ("…" if len(text) > n else "")


def error_detail(resp: requests.Response) -> str:
    """fal 422 `{detail: [{loc, msg}]}`, `{detail, error_type}`, WaveSpeed `{code, message}`."""
    try:
        body = resp.json()
    except ValueError:
        return body_excerpt(resp)
    if isinstance(body, dict):
        det = body.get("detail")
        if isinstance(det, list):
            return "; ".join(
                f"{'.'.join(str(x) for x in d.get('loc', []) if x != 'body')}: {d.get('msg')}"
                if isinstance(d, dict) else str(d) for d in det)
        if det:
            return f"{det} ({body.get('error_type')})" if body.get("error_type") else str(det)
        if body.get("message"):
            return str(body["message"])
    return body_excerpt(resp)


class Transport:
    """One provider's HTTP side: session, auth scoping, retries, redaction."""

    def __init__(self, provider: str, api_urls: Iterable[str], auth_value: str | None, *,
                 policy: RetryPolicy | None = None, session: requests.Session | None = None,
                 redactor: Redactor | None = None, key_hint: str = ""):
        self.provider = provider
        self.policy = policy or RetryPolicy()
        self.session = session or make_session()
        self.redact = redactor or Redactor()
        self._api_origins = {origin(u) for u in api_urls}
        self._auth = auth_value
        self.key_hint = key_hint
        self._extra_origins: dict[tuple, str] = {}   # e.g. the fal CDN with its own token
        self._lock = threading.Lock()

    def __repr__(self):
        return f"Transport({self.provider!r}, origins={sorted(self._api_origins)})"

    def allow_token(self, url: str, header_value: str) -> None:
        """Send `header_value` as Authorization to `url`'s origin (fal CDN upload token)."""
        self.redact.add(header_value.split(" ", 1)[-1])
        with self._lock:
            self._extra_origins[origin(url)] = header_value

    def is_api(self, url: str) -> bool:
        return origin(url) in self._api_origins

    def _headers(self, url: str, extra: dict | None) -> dict:
        h = dict(extra or {})
        o = origin(url)
        if "Authorization" in h:        # the caller's own credential (fal CDN token)
            pass
        elif o in self._api_origins and self._auth:
            h["Authorization"] = self._auth
        elif o in self._extra_origins:
            h["Authorization"] = self._extra_origins[o]
        return h

    def _timeout(self, deadline: Deadline | None, what: str, read: float | None = None):
        rem = deadline.remaining() if deadline else float("inf")
        if rem <= 0:
            raise DeadlineExceeded(f"{self.provider} {what}: deadline passed")
        read = self.policy.read_timeout if read is None else min(read, self.policy.read_timeout)
        return (min(self.policy.connect_timeout, rem), min(read, rem))

    def _watched(self, fn, cancelled, deadline: Deadline | None, what: str):
        """Run `fn()` on a helper thread; return its value or raise its exception, but raise
        RemoteCancelled / DeadlineExceeded as soon as the caller is cancelled or out of time
        (checked every 50 ms). An abandoned call ends on its own (read timeout) and its
        answer is dropped: use only for calls that are safe to abandon."""
        if cancelled is None and deadline is None:
            return fn()
        box: dict = {}
        done = threading.Event()

        def work():
            try:
                box["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                box["error"] = e
            finally:
                done.set()

        threading.Thread(target=work, name=f"fluxfill-{self.provider}-{what}", daemon=True).start()
        while not done.wait(0.05):
            if cancelled is not None and cancelled():
                raise RemoteCancelled(f"{self.provider} {what}: cancelled")
            if deadline is not None and deadline.expired():
                raise DeadlineExceeded(f"{self.provider} {what}: deadline passed")
        if "error" in box:
            raise box["error"]
        return box["value"]

    def sleep(self, seconds: float, deadline: Deadline | None, cancelled, what: str) -> None:
        """Sleep in short slices, watching cancel and the deadline."""
        end = time.monotonic() + seconds
        while True:
            if cancelled is not None and cancelled():
                raise RemoteCancelled(f"{self.provider} {what}: cancelled")
            left = end - time.monotonic()
            if deadline is not None and deadline.remaining() < left:
                raise DeadlineExceeded(f"{self.provider} {what}: deadline passed while waiting to retry")
            if left <= 0:
                return
            time.sleep(min(left, 0.05))

    def call(self, method: str, url: str, *, what: str, retry: RetryPredicate = never,
             deadline: Deadline | None = None, cancelled=None, want_json: bool = True,
             accept: tuple[int, ...] = (), headers: dict | None = None, poll: bool = False,
             abandonable: bool = True, **kw):
        """One API call. Returns `(response, parsed_json_or_None)` for 2xx and for statuses in
        `accept`; raises a classified HostedError otherwise (messages redacted).
        `poll`: use the shorter poll read timeout. `abandonable=False` (submits): never give
        up on a try in flight, even on cancel — its answer may name a billed job."""
        check_url(url, f"{self.provider} {what}")
        hdrs = self._headers(url, headers)
        attempt = 0
        while True:
            attempt += 1
            if cancelled is not None and cancelled():
                raise RemoteCancelled(f"{self.provider} {what}: cancelled")
            resp, exc = None, None
            timeout = self._timeout(deadline, what, self.policy.poll_read_timeout if poll else None)

            def send(timeout=timeout):
                return self.session.request(method, url, headers=hdrs, allow_redirects=False,
                                            timeout=timeout, **kw)
            try:
                resp = self._watched(send, cancelled, deadline, what) if abandonable else send()
            except requests.RequestException as e:
                exc = e
            if resp is not None:
                log.debug("%s %s %s -> %s", self.provider, method, url, resp.status_code)
                if 200 <= resp.status_code < 300:
                    if not want_json:
                        return resp, None
                    try:
                        return resp, resp.json()
                    except ValueError:
                        exc = MalformedJSON(f"malformed JSON (HTTP {resp.status_code}): "
                                            f"{body_excerpt(resp, 120)}")
                elif resp.status_code in accept:
                    return resp, None
            resp_for_retry = None if exc is not None else resp
            if attempt < self.policy.tries and retry(resp_for_retry, exc):
                delay = self.policy.delay(attempt, resp_for_retry)
                log.info("%s %s: retry %d/%d in %.2fs (%s)", self.provider, what, attempt,
                         self.policy.tries - 1, delay,
                         self.redact(exc) if exc else f"HTTP {resp.status_code}")
                self.sleep(delay, deadline, cancelled, what)
                continue
            raise self._classify(what, resp, exc, attempt)

    def _classify(self, what, resp, exc, attempt):
        tries = f" after {attempt} tries" if attempt > 1 else ""
        if exc is not None:
            name = type(exc).__name__
            if isinstance(exc, MalformedJSON):
                return TransportError(self.redact(f"{self.provider} {what}: {exc}{tries}"))
            return TransportError(self.redact(f"{self.provider} {what}: {name}: {exc}{tries}"))
        code = resp.status_code
        detail = self.redact(error_detail(resp))
        if code in (401, 403):
            return AuthError(f"{self.provider} rejected the API key (HTTP {code}) during {what}: "
                             f"{detail}. Check {self.key_hint}.", status=code)
        if code in (400, 422):
            return RemoteRejected(f"{self.provider} refused the request (HTTP {code}) during {what}: "
                                  f"{detail}", status=code)
        if code in (404, 410):
            return ResultUnavailable(f"{self.provider} {what}: not found (HTTP {code}): {detail}",
                                     status=code)
        return TransportError(f"{self.provider} {what}: HTTP {code}{tries}: {detail}", status=code)

    # ------------------------------------------------------------ downloads
    def download(self, url: str, *, max_bytes: int, deadline: Deadline | None = None,
                 cancelled=None, what: str = "download") -> tuple[bytes, str]:
        """GET an output file WITHOUT credentials; redirects followed by hand (each hop must
        pass `check_url`), retried like a poll, capped at `max_bytes`. Returns (bytes, type)."""
        attempt = 0
        current = url
        hops = 0
        while True:
            attempt += 1
            check_url(current, f"{self.provider} {what}")
            if cancelled is not None and cancelled():
                raise RemoteCancelled(f"{self.provider} {what}: cancelled")
            resp, exc = None, None
            timeout = self._timeout(deadline, what, self.policy.poll_read_timeout)

            def fetch(url=current, timeout=timeout):
                r = self.session.get(url, stream=True, allow_redirects=False, timeout=timeout)
                if r.status_code == 200:     # the body is read on the helper thread too
                    return r, self._read_capped(r, max_bytes, what)
                return r, None
            try:
                resp, body = self._watched(fetch, cancelled, deadline, what)
                if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                    hops += 1
                    if hops > 5:
                        raise TransportError(f"{self.provider} {what}: too many redirects")
                    current = urljoin(current, resp.headers["Location"])
                    resp.close()
                    attempt -= 1
                    continue
                if body is not None:
                    return body, resp.headers.get("Content-Type", "")
            except requests.RequestException as e:
                exc = e
            if attempt < self.policy.tries and polls(resp, exc):
                if resp is not None:
                    resp.close()
                self.sleep(self.policy.delay(attempt, resp), deadline, cancelled, what)
                continue
            if resp is not None:
                resp.close()
            raise self._classify(what, resp, exc, attempt)

    def _read_capped(self, resp, max_bytes: int, what: str) -> bytes:
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            resp.close()
            raise TransportError(f"{self.provider} {what}: output is {int(length)} bytes, over the "
                                 f"{max_bytes}-byte limit")
        chunks, total = [], 0
        try:  # a RequestException mid-body propagates to download(), which retries it
            for chunk in resp.iter_content(256 * 1024):
                total += len(chunk)
                if total > max_bytes:
                    raise TransportError(f"{self.provider} {what}: output exceeds the "
                                         f"{max_bytes}-byte limit")
                chunks.append(chunk)
        finally:
            resp.close()
        return b"".join(chunks)
