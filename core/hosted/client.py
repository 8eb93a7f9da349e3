"""The queue-polling loop shared by FalClient and WaveSpeedClient.

A subclass provides `submit`, `_poll(handle) -> Poll`, `result(handle)`, `cancel(handle)`.
`run()` submits (or resumes a given handle), hands the handle to `on_submitted` at once
(the journal write), then polls with a short-then-growing interval, reporting progress,
checking `cancelled()` every loop and the overall deadline; on cancel it cancels the remote
job, asks once for its state (`RemoteCancelled.remote_state`: "cancelled"/"failed"/"gone"
mean it surely stopped unbilled; "running"/"queued"/"unknown" mean it may still finish and
be billed) and raises RemoteCancelled; on deadline it raises DeadlineExceeded naming the
request.

The submit always gets at least MIN_SUBMIT_S of time (`submit_deadline`), even when the
overall deadline is nearly spent: a submit cut short by a tiny read timeout may still have
created a (billed) job whose id is then lost.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

from .errors import DeadlineExceeded, HostedError, RemoteCancelled, ResultUnavailable
from .retry import Deadline
from .transport import Transport

log = logging.getLogger("fluxfill.hosted")
_STEP_RE = re.compile(r"(\d+)\s*/\s*(\d+)")
MIN_SUBMIT_S = 30.0        # the least time (read timeout included) a submit is given
CANCEL_CHECK_S = 5.0       # the one status check after a cancel
STREAMED_POLL_S = 1.0      # poll interval while a status stream is live (it reports each change)


def submit_deadline(deadline: Deadline, minimum: float = MIN_SUBMIT_S) -> Deadline:
    """The deadline for a submit: the overall one, but never less than `minimum` seconds
    left (so its read timeout is sane). A deadline already passed stays passed: nothing is
    sent then."""
    rem = deadline.remaining()
    if rem <= 0 or rem >= minimum:
        return deadline
    return Deadline(minimum)

Progress = Callable[[float, str], None]


@dataclass
class PollSchedule:
    """Seconds between polls: `first` for the first `flat` polls, then times `factor` per
    poll up to `max`; back to `first` whenever the job changes state (so a short job's
    completion is noticed within ~first seconds, a long one costs ~1 request/s).

    While the job reports "step k/N" logs, its end is extrapolated from the step rate; when
    that end falls before the next regular poll, polls come every `near` seconds from then
    until `grace` seconds past it (completion is noticed within ~near, not ~first/max)."""
    first: float = 0.1
    factor: float = 1.1
    max: float = 1.0
    flat: int = 30
    near: float = 0.025
    grace: float = 0.5

    def interval(self, n: int) -> float:
        k = min(max(0, n - self.flat), 200)
        return min(self.max, self.first * (self.factor ** k))

    def next_delay(self, n: int, expected_end: float | None, now: float) -> float:
        d = self.interval(n)
        if expected_end is not None:
            left = expected_end - now
            if -self.grace < left < d:
                return max(self.near, left)
        return d


@dataclass
class Poll:
    state: str                       # queued | running | done | failed | cancelled
    position: int | None = None
    logs: list[str] = field(default_factory=list)
    error: str | None = None
    raw: dict = field(default_factory=dict)


class QueueClient:
    provider = "?"

    def __init__(self, transport: Transport, poll: PollSchedule | None = None):
        self.t = transport
        self.poll_schedule = poll or PollSchedule()

    # subclasses implement -------------------------------------------------------------
    def submit(self, endpoint: str, payload: dict, *, deadline=None, cancelled=None):
        raise NotImplementedError

    def _poll(self, handle, deadline, cancelled) -> Poll:
        raise NotImplementedError

    def result(self, handle, *, deadline=None, cancelled=None) -> dict:
        raise NotImplementedError

    def _watch(self, handle, deadline, cancelled):
        """Optional: a threading.Event set when the provider pushes an update (fal's status
        stream), with `.poll` (that update as a Poll, or None), `.stop` (set when the loop is
        done) and `.ended` (the push channel closed: plain polling from then on). None:
        polling only."""
        return None

    def cancel(self, handle) -> str:
        raise NotImplementedError

    def download(self, url: str, *, max_bytes: int, deadline=None, cancelled=None):
        from .images import decode_data_uri
        if url.startswith("data:"):
            return decode_data_uri(url, max_bytes)
        return self.t.download(url, max_bytes=max_bytes, deadline=deadline, cancelled=cancelled)

    # the loop ---------------------------------------------------------------------------
    def run(self, endpoint: str, payload: dict | None, *, progress: Progress | None = None,
            cancelled: Callable[[], bool] | None = None, deadline: Deadline | float | None = None,
            on_submitted: Callable[[Any], None] | None = None, handle=None) -> tuple[Any, dict]:
        """Submit `payload` (or resume `handle`), wait, return (handle, result JSON)."""
        progress = progress or (lambda f, t: None)
        cancelled = cancelled or (lambda: False)
        if not isinstance(deadline, Deadline):
            deadline = Deadline(deadline)
        if handle is None:
            progress(0.02, f"{self.provider}: submitting to {endpoint}")
            handle = self.submit(endpoint, payload, deadline=submit_deadline(deadline),
                                 cancelled=cancelled)
            if on_submitted is not None:
                on_submitted(handle)
        else:
            progress(0.02, f"{self.provider}: resuming request {handle.request_id}")
        return handle, self.wait(handle, progress=progress, cancelled=cancelled, deadline=deadline)

    def wait(self, handle, *, progress: Progress, cancelled, deadline: Deadline) -> dict:
        rid = handle.request_id
        n, last_state, seen_logs = 0, None, 0
        t_prev, run_start, expected_end = time.monotonic(), None, None
        wake = self._watch(handle, deadline, cancelled)
        try:
            while True:
                if cancelled():
                    raise RemoteCancelled(f"{self.provider}: cancelled")
                if deadline.expired():
                    raise DeadlineExceeded("deadline passed")
                p = getattr(wake, "poll", None)
                if p is not None:          # the stream's latest update: no request needed
                    wake.poll = None
                else:
                    p = self._poll(handle, deadline, cancelled)
                now = time.monotonic()
                if p.state == "running" and run_start is None:   # started between two polls
                    run_start = (t_prev + now) / 2 if last_state == "queued" else t_prev
                t_prev = now
                if p.state != last_state:
                    n, last_state = 0, p.state
                for line in p.logs[seen_logs:]:
                    log.debug("%s %s: %s", self.provider, rid, self.t.redact(line))
                seen_logs = max(seen_logs, len(p.logs))
                el = deadline.elapsed()
                if p.state == "queued":
                    pos = "" if p.position is None else f" (position {p.position})"
                    progress(0.05, f"{self.provider}: in queue{pos} · {el:.1f}s")
                elif p.state == "running":
                    frac, text = 0.1, "running"
                    if p.logs:
                        text = p.logs[-1][:120]
                        m = _STEP_RE.search(p.logs[-1])
                        if m and int(m.group(2)) > 0:
                            k, total = int(m.group(1)), int(m.group(2))
                            frac = 0.1 + 0.75 * min(1.0, k / total)
                            if k > 0:
                                expected_end = run_start + (now - run_start) * total / min(k, total)
                    progress(frac, f"{self.provider}: {self.t.redact(text)} · {el:.1f}s")
                elif p.state == "done":
                    progress(0.87, f"{self.provider}: done after {el:.1f}s, fetching result")
                    return self.result(handle, deadline=deadline, cancelled=cancelled)
                elif p.state in ("failed", "cancelled"):
                    from .errors import RemoteFailed
                    err = RemoteFailed(self.t.redact(
                        f"{self.provider} request {rid} {p.state}: {p.error or 'no reason given'} "
                        f"(failed jobs are not billed)"), request_id=rid)
                    err.state = p.state
                    raise err
                delay = self.poll_schedule.next_delay(n, expected_end, time.monotonic())
                if wake is not None and not wake.ended.is_set():
                    delay = max(delay, STREAMED_POLL_S)     # the stream reports changes at once
                self._sleep(delay, wake, deadline, cancelled)
                n += 1
        except RemoteCancelled:
            outcome = self._cancel_quietly(handle)
            state = "unknown"
            if not outcome.startswith(("ALREADY_COMPLETED", "cancel failed")):
                state = self.state_after_cancel(handle)
            text = f"{self.provider} request {rid} cancelled (remote: {outcome})"
            if state not in ("cancelled", "failed", "gone"):
                text += ("; the provider has not confirmed it stopped: it may still finish and be "
                         "billed, so it stays in the journal and a re-run of the same inputs "
                         "fetches its result instead of paying again")
            err = RemoteCancelled(text, request_id=rid)
            err.remote, err.remote_state = outcome, state
            raise err from None
        except DeadlineExceeded:
            raise DeadlineExceeded(
                f"{self.provider} request {rid} still running when the deadline "
                f"({deadline.seconds:g}s) passed; it stays pending in the journal: run the same "
                f"inputs again to resume it without paying twice", request_id=rid) from None
        except HostedError as e:
            if e.request_id is None:
                e.request_id = rid
            raise
        finally:
            if wake is not None:
                wake.stop.set()

    def _sleep(self, delay: float, wake, deadline: Deadline, cancelled) -> None:
        """Wait `delay` seconds before the next poll, in 50 ms slices watching Cancel and the
        deadline; with a live push channel (`wake`), the next poll comes as soon as it reports
        a change."""
        if wake is None or wake.ended.is_set() and not wake.is_set():
            return self.t.sleep(delay, deadline, cancelled, "poll")
        end = time.monotonic() + delay
        while not wake.wait(min(0.05, max(0.0, end - time.monotonic()))):
            if cancelled is not None and cancelled():
                raise RemoteCancelled(f"{self.provider} poll: cancelled")
            if deadline.remaining() <= 0:
                raise DeadlineExceeded(f"{self.provider} poll: deadline passed")
            if time.monotonic() >= end:
                return
        wake.clear()

    def state_after_cancel(self, handle) -> str:
        """One status check right after a cancel: the Poll state ("cancelled" when the
        provider removed/stopped the job), "gone" (404/410) or "unknown" (no answer)."""
        try:
            return self._poll(handle, Deadline(CANCEL_CHECK_S), None).state
        except ResultUnavailable as e:
            return "gone" if e.status in (404, 410) else "unknown"
        except Exception as e:  # noqa: BLE001 - unknown: the entry stays resumable
            log.info("%s: state of %s after cancel unknown: %s", self.provider, handle.request_id,
                     self.t.redact(e))
            return "unknown"

    def _cancel_quietly(self, handle) -> str:
        try:
            return self.cancel(handle)
        except Exception as e:  # noqa: BLE001 - the user's cancel must still win
            log.warning("%s: cancelling request %s failed: %s", self.provider, handle.request_id,
                        self.t.redact(e))
            return f"cancel failed: {type(e).__name__}"
