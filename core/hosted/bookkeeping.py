"""The journal, result cache and ledger writes of one hosted endpoint (see journal.py).

Bookkeeping must never cost the user a paid result: a write that fails (disk full,
permissions) is logged and comes back as a note for the result's meta, instead of raising.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from . import pricing
from .errors import RemoteCancelled, SubmitUncertain
from .journal import Journal, Ledger, ResultCache

log = logging.getLogger("fluxfill.hosted")


class Bookkeeping:
    def __init__(self, state_dir: Path, provider: str, label: str, endpoint: str):
        self.provider = provider        # "fal" | "wavespeed": journal/ledger entries
        self.label = label              # the provider's name in messages
        self.endpoint = endpoint
        self.journal = Journal(state_dir)
        self.cache = ResultCache(state_dir)
        self.ledger = Ledger(state_dir)

    def safe(self, fn, what: str, *a, **kw) -> str | None:
        """Run one write; an OSError is logged and returned as a note instead of raised."""
        try:
            fn(*a, **kw)
            return None
        except OSError as e:
            log.warning("%s: %s write failed: %s", self.provider, what, e)
            return f"{what} write failed: {e}"

    def mark(self, input_hash: str, request_id, status: str, error: str, handle) -> None:
        if request_id:
            self.safe(self.journal.record, "journal", input_hash, provider=self.provider,
                      endpoint=self.endpoint, request_id=request_id, status=status,
                      urls=handle.to_dict() if handle else {}, error=error)

    def submitted(self, input_hash: str, handle, estimate_usd) -> str | None:
        """Journal "pending" the moment the submit answers; a failed write is a note."""
        try:
            self.journal.record(input_hash, provider=self.provider, endpoint=self.endpoint,
                                request_id=handle.request_id, status="pending", urls=handle.to_dict(),
                                estimate_usd=estimate_usd)
        except OSError as e:   # the job is submitted (and billed): keep waiting for it
            log.warning("%s: journal write failed for request %s: %s", self.provider,
                        handle.request_id, e)
            return (f"journal write failed ({e}): request {handle.request_id} was not "
                    f"recorded; had this run been interrupted it could not be resumed")
        return None

    def mark_cancel(self, input_hash: str, e: RemoteCancelled, handle) -> None:
        """After a user cancel: "cancelled" (terminal) only when the provider confirmed the
        job stopped; a running job that was only signalled may still finish and be billed,
        so it becomes "cancel_requested" and a re-run resumes it. A job already finished, or
        one whose cancel did not get through, stays "pending"."""
        remote = str(getattr(e, "remote", ""))
        state = getattr(e, "remote_state", "unknown")
        if not e.request_id or remote.startswith(("ALREADY_COMPLETED", "cancel failed")) \
                or state == "done":
            return
        status = "cancelled" if state in ("cancelled", "failed", "gone") else "cancel_requested"
        self.mark(input_hash, e.request_id, status, str(e), handle)

    def submit_uncertain(self, input_hash: str, e: SubmitUncertain, estimate_usd) -> SubmitUncertain:
        """Journal the lost submit (no request id is known) and say what it means."""
        msg = (f"{e}. The {self.label} task may have been created and billed, but {self.label} "
               f"gives no way to look a task up without its id (its API has no list of recent "
               f"predictions), so it cannot be resumed. Re-running the same inputs submits a NEW "
               f"task (possibly paying twice) — check your {self.label} account's usage/billing "
               f"first if that matters.")
        err = self.safe(self.journal.record, "journal", input_hash, provider=self.provider,
                        endpoint=self.endpoint, request_id=None, status="uncertain", error=str(e),
                        estimate_usd=estimate_usd)
        if err:
            msg += f" ({err})"
        return SubmitUncertain(msg, status=e.status)

    def rerun_notes(self, input_hash: str) -> list[str]:
        """A note for a new submit after an uncertain submit, or a billed request whose outputs
        were lost or refused, of the same inputs."""
        last = self.journal.latest(input_hash)
        if not last or last.get("status") not in ("uncertain", "lost", "refused"):
            return []
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.get("ts") or 0))
        if last["status"] != "uncertain":
            return [f"an earlier request of these same inputs ({last.get('request_id')}, {when}) completed "
                    f"and was billed but its outputs were {last['status']}; this run submitted a new request"]
        return [f"an earlier submit of these same inputs ({when}) got no answer: that {self.label} "
                f"task may exist and be billed, but cannot be looked up without its id; this run "
                f"submitted a new task"]

    def outputs_lost(self, input_hash: str, handle, cost_usd, images: int, error: str,
                     status: str = "lost") -> None:
        """A completed (billed) job whose outputs could not be downloaded ("lost") or opened
        ("refused"): a ledger line, and a terminal journal state (never "pending" forever)."""
        self.safe(self.ledger.append, "ledger", provider=self.provider, endpoint=self.endpoint,
                  request_id=handle.request_id, cost_usd=cost_usd, images=images,
                  input_hash=input_hash, **{f"outputs_{status}": True})
        self.mark(input_hash, handle.request_id, status, error, handle)

    def completed(self, input_hash: str, handle, files: list[bytes], meta: dict, cost_usd) -> list[str]:
        """Cache the outputs, add the ledger line, then journal "completed"; notes of failed writes."""
        rid = handle.request_id
        cache_err = self.safe(self.cache.put, "result cache", input_hash, files, meta)
        # no published price: the ledger keeps the family-rate estimate the spend limit counts
        unknown = {} if cost_usd is not None else {
            "estimate_usd": pricing.counted_actual(self.endpoint, [tuple(s) for s in meta.get("sizes") or []]).usd}
        notes = [n for n in (cache_err, self.safe(
            self.ledger.append, "ledger", provider=self.provider, endpoint=self.endpoint,
            request_id=rid, cost_usd=cost_usd, images=len(files), input_hash=input_hash, **unknown)) if n]
        if cache_err is None:
            # only once the outputs are on disk: "completed" means a re-run reads the cache;
            # without them the entry stays pending, so a re-run fetches the paid result again
            notes += [n for n in [self.safe(
                self.journal.record, "journal", input_hash, provider=self.provider,
                endpoint=self.endpoint, request_id=rid, status="completed", urls=handle.to_dict())] if n]
        return notes
