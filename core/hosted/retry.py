"""When a hosted call is retried, and for how long a request may take in all.

- `Deadline`: one overall time limit for a request (submit + polls + download).
- `RetryPolicy`: tries, exponential backoff with jitter and Retry-After honoured (parsed by
  urllib3's `Retry`), (connect, read) timeouts, and the shorter poll read timeout.
- Retry predicates `(response, exception) -> bool`, chosen per call by the clients: `never`,
  `polls` (safe-to-repeat calls), `fal_submit` (fal's own client rule) and
  `positively_refused` (non-idempotent WaveSpeed submits: only when no task can exist).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from collections.abc import Callable

import requests
from urllib3.util.retry import Retry


class Deadline:
    """An overall time limit for one request (submit + polls + download)."""

    def __init__(self, seconds: float | None, clock=time.monotonic):
        self._clock = clock
        self.start = clock()
        self.seconds = seconds
        self.end = None if seconds is None else self.start + seconds

    def remaining(self) -> float:
        return float("inf") if self.end is None else self.end - self._clock()

    def elapsed(self) -> float:
        return self._clock() - self.start

    def expired(self) -> bool:
        return self.remaining() <= 0


@dataclass
class RetryPolicy:
    tries: int = 8                 # total attempts per call
    backoff: float = 0.1           # first backoff, seconds; doubles each try
    backoff_cap: float = 30.0
    jitter: tuple[float, float] = (0.5, 1.5)
    retry_after_cap: float = 60.0  # never wait longer than this for Retry-After
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    poll_read_timeout: float = 15.0   # GET status/result: a hung poll is retried, not waited out

    def delay(self, attempt: int, resp: requests.Response | None) -> float:
        d = min(self.backoff_cap, self.backoff * (2 ** (attempt - 1))) * random.uniform(*self.jitter)
        if resp is not None and resp.headers.get("Retry-After"):
            try:
                ra = Retry().parse_retry_after(resp.headers["Retry-After"])
                d = max(d, min(float(ra), self.retry_after_cap))
            except Exception:  # noqa: BLE001 - an unparseable header only loses the hint
                pass
        return d


class MalformedJSON(Exception):
    pass


RetryPredicate = Callable[[requests.Response | None, BaseException | None], bool]


def never(resp, exc) -> bool:
    return False


def polls(resp, exc) -> bool:
    """Safe-to-repeat calls (GET status/result, PUT cancel, uploads): 408/409/425/429/5xx,
    transport errors and malformed JSON."""
    if exc is not None:
        return isinstance(exc, (requests.RequestException, MalformedJSON))
    return resp.status_code in (408, 409, 425, 429) or resp.status_code >= 500


def fal_submit(resp, exc) -> bool:
    """fal's own client rule: 408/409/429, ingress 502/503/504 (answered by the edge, so no
    x-fal-request-id header) and transport errors."""
    if exc is not None:
        return isinstance(exc, requests.RequestException)
    if resp.status_code in (408, 409, 429):
        return True
    return resp.status_code in (502, 503, 504) and "x-fal-request-id" not in resp.headers


def not_sent(exc) -> bool:
    """True when the request surely never reached the server (refused / connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        from urllib3.exceptions import NewConnectionError
        return isinstance(reason, NewConnectionError)
    return False


def positively_refused(resp, exc) -> bool:
    """For non-idempotent submits (WaveSpeed): retry only when no task can exist — the
    connection was never made, or the server answered 429 (rate limited, nothing created)."""
    if exc is not None:
        return not_sent(exc)
    return resp.status_code == 429

