"""FalProvider / WaveSpeedProvider: the FillProvider (core/fill_protocol.py) of hosted fills.

`fill(request, hooks)` for one source image:
  validate params (endpoint table) → encode image/mask (PNG; mask "L", image-sized) →
  input hash → cached result? return it (free) → pending journal entry? resume that request
  (an entry "cancel_requested" — a running job the user cancelled, which may have finished
  and been billed anyway — is resumed too: its result if it completed, else a new submit)
  → else data URI or upload, submit, journal "pending" at once → poll (progress, cancel,
  deadline) → download (size cap, safe decode) → cache + ledger + journal "completed" →
  FillResult(images [n,H,W,3] float, meta).

Errors: RemoteCancelled (node → interrupt; the entry becomes "cancelled" only when the
provider confirms the job stopped), DeadlineExceeded (entry stays pending: re-run resumes),
SubmitUncertain (WaveSpeed submit without an answer or with a 5xx: journaled "uncertain", noted
on the next run of the same inputs), OutputRefused (a billed output that is a decompression bomb
or no image: journaled "refused", the message names the size, the cap and the request id to fetch
it by), RemoteFailed (not billed), NSFWBlocked (with `.result`, when nsfw="raise"),
HostedValidationError (before anything is sent), AuthError, TransportError, …
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..fill_protocol import FillHooks, FillRequest, FillResult
from . import endpoint_table, pricing
from .bookkeeping import Bookkeeping
from .errors import (DeadlineExceeded, HostedError, HostedValidationError, NSFWBlocked, OutputRefused,
                     RemoteCancelled, RemoteFailed, ResultUnavailable, SubmitUncertain)
from .fal import FalClient, FalHandle
from .images import data_uri, decode_image
from .journal import hash_lock
from .params import build_payload, map_images, output_size
from .preparation import Prepared, prepare
from .retry import Deadline
from .wavespeed import WaveSpeedClient, WaveSpeedHandle

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


def nsfw_message(meta: dict) -> str:
    """Human text for outputs flagged by the provider's safety checker."""
    flags = meta.get("nsfw") or []
    bad = [i + 1 for i, f in enumerate(flags) if f]
    if not bad:
        return ""
    which = f"image {bad[0]}" if len(bad) == 1 else "images " + ", ".join(map(str, bad))
    hint = ("lower the safety strictness (safety_tolerance)" if meta.get("endpoint") == "fal-ai/flux-pro/v1/fill"
            else "change the prompt or seed, or turn enable_safety_checker off")
    return (f"{meta.get('provider')} flagged {which} of {len(flags)} as NSFW (request "
            f"{meta.get('request_id')}); flagged outputs are blank/black, not a real fill. To retry: "
            f"{hint}.")


@dataclass
class _Run:
    """One remote fill on its way: submit or resume → poll → download → bookkeeping."""
    prep: Prepared
    request: FillRequest
    hooks: FillHooks
    deadline: Deadline
    t0: float = field(default_factory=time.monotonic)
    times: dict[str, float] = field(default_factory=dict)   # seconds since t0 per stage
    notes: list[str] = field(default_factory=list)          # meta["notes"] of the result
    handle: Any = None              # the provider's handle once submitted (or resumed)
    resumed: bool = False           # a journal entry's request, not a new submit

    def mark_time(self, stage: str) -> None:
        self.times[stage] = time.monotonic() - self.t0


class HostedProvider:
    """Shared flow; subclasses bind the client and handle types."""
    name = "?"
    label = "?"                     # the provider's name in messages
    handle_type: Any = None

    def __init__(self, client, endpoint: str, state_dir: str | Path, *, force_new: bool = False,
                 deadline_s: float | None = 600.0, nsfw: str = "raise",
                 max_download_bytes: int = MAX_DOWNLOAD_BYTES, data_uri_limit: int | None = None):
        self.ep = endpoint_table.get(endpoint)
        if self.ep.provider != self.name:
            raise HostedValidationError(f"{endpoint} is a {self.ep.provider} endpoint, not {self.name}",
                                        field="endpoint")
        if nsfw not in ("raise", "keep"):
            raise HostedValidationError("nsfw must be 'raise' or 'keep'", field="nsfw")
        self.client = client
        self.state_dir = Path(state_dir)
        self.books = Bookkeeping(self.state_dir, self.name, self.label, self.ep.id)
        self.journal, self.cache, self.ledger = self.books.journal, self.books.cache, self.books.ledger
        self.force_new = force_new
        self.deadline_s = deadline_s
        self.nsfw = nsfw
        self.max_download_bytes = max_download_bytes
        self.price = None          # a live price (live_prices.for_provider); None: the table
        self.data_uri_limit = self.ep.data_uri_limit if data_uri_limit is None else data_uri_limit
        self._prepared: dict[int, tuple[FillRequest, Prepared]] = {}
        self._prepared_lock = threading.Lock()

    def __repr__(self):
        return f"{type(self).__name__}({self.ep.id!r}, state_dir={str(self.state_dir)!r})"

    # ------------------------------------------------------------------ before the network
    def prepare(self, request: FillRequest) -> Prepared:
        """Validate and encode. The result is kept for `fill` of this very request object
        (the node prepares to validate and estimate, then fills: the PNGs are made once)."""
        prep = prepare(self.ep, self.name, request, self.price)
        with self._prepared_lock:
            self._prepared[id(request)] = (request, prep)
        return prep

    def prepare_all(self, requests: list[FillRequest], concurrency: int = 4) -> list[Prepared]:
        """prepare() of every request of a batch, before anything is sent (the node validates
        and prices the whole batch first), on up to `concurrency` threads: the PNG encoding
        runs in zlib and numpy, which release the GIL. In request order; the first request's
        error, in that order, is raised."""
        if concurrency <= 1 or len(requests) <= 1:
            return [self.prepare(request) for request in requests]
        with ThreadPoolExecutor(max_workers=min(concurrency, len(requests)),
                                thread_name_prefix="fluxfill-prepare") as pool:
            futures = [pool.submit(self.prepare, request) for request in requests]
            return [future.result() for future in futures]

    def _take_prepared(self, request: FillRequest) -> Prepared:
        with self._prepared_lock:
            hit = self._prepared.pop(id(request), None)
        if hit is not None and hit[0] is request:
            return hit[1]
        return prepare(self.ep, self.name, request, self.price)

    def estimate(self, request: FillRequest) -> pricing.PriceEstimate:
        return prepare(self.ep, self.name, request, self.price).estimate

    # ------------------------------------------------------------------ the flow
    def fill(self, request: FillRequest, hooks: FillHooks | None = None) -> FillResult:
        hooks = hooks or FillHooks()
        prep = self._take_prepared(request)
        with hash_lock(prep.input_hash):
            if not self.force_new:
                cached = self._from_cache(prep, request)
                if cached is not None:
                    hooks.progress(1.0, f"{self.name}: cached result (no new request, no cost)")
                    return self._check_nsfw(cached)
            return self._fill_remote(_Run(prep, request, hooks, Deadline(self.deadline_s)))

    def _fill_remote(self, run: _Run) -> FillResult:
        prep = run.prep
        pending = None if self.force_new else self.books.journal.pending(prep.input_hash)
        if pending is not None and pending.get("status") == "cancel_requested":
            done = self._resume_cancelled(run, pending)
            if done is not None:
                return done
            pending = None                       # it surely stopped unbilled: submit anew
        run.handle = self.handle_type.from_dict(pending["urls"]) if pending else None
        run.resumed = pending is not None
        payload = None
        if run.handle is None:
            run.notes += self.books.rerun_notes(prep.input_hash)
            payload = self._payload(run)

        def on_submitted(handle):
            run.handle = handle        # the journal marks below need its URLs
            run.mark_time("submitted")
            note = self.books.submitted(prep.input_hash, handle, prep.estimate.usd)
            if note:
                run.notes.append(note)

        try:
            run.handle, result = self._run_client(run, payload, on_submitted=on_submitted)
        except SubmitUncertain as e:
            raise self.books.submit_uncertain(prep.input_hash, e, prep.estimate.usd) from None
        except RemoteFailed as e:
            self.books.mark(prep.input_hash, e.request_id, "failed", str(e), run.handle)
            raise
        except RemoteCancelled as e:
            self.books.mark_cancel(prep.input_hash, e, run.handle)
            raise
        except ResultUnavailable as e:
            if pending is not None and e.status in (404, 410):
                self.books.mark(prep.input_hash, pending["request_id"], "expired", str(e), run.handle)
                raise ResultUnavailable(
                    f"{self.name} request {pending['request_id']} (resumed from the journal) is no "
                    f"longer known to the provider: {e}. Re-running submits a NEW, paid request.",
                    request_id=pending["request_id"], status=e.status) from None
            raise
        run.mark_time("done")
        return self._finish(run, result)

    def _run_client(self, run: _Run, payload: dict | None, on_submitted=None):
        """Submit `payload` (or resume `run.handle`) and wait: (handle, result JSON)."""
        return self.client.run(self.ep.id, payload, progress=run.hooks.progress,
                               cancelled=run.hooks.cancelled, deadline=run.deadline,
                               on_submitted=on_submitted, handle=run.handle)

    def _resume_cancelled(self, run: _Run, pending: dict) -> FillResult | None:
        """A job cancelled earlier while running: if it completed anyway (billed), return its
        result; if the provider reports it cancelled/failed/unknown, mark it so and return
        None (the caller submits anew)."""
        rid, input_hash = pending["request_id"], run.prep.input_hash
        run.handle = self.handle_type.from_dict(pending["urls"])
        try:
            run.handle, result = self._run_client(run, None)
        except RemoteFailed as e:
            status = "cancelled" if getattr(e, "state", "") == "cancelled" else "failed"
            self.books.mark(input_hash, rid, status, str(e), run.handle)
            run.notes.append(f"request {rid}, cancelled earlier, did not complete ({status}, not "
                             f"billed): a new request was submitted")
            return None
        except ResultUnavailable as e:
            if e.status not in (404, 410):
                raise
            self.books.mark(input_hash, rid, "expired", str(e), run.handle)
            run.notes.append(f"request {rid}, cancelled earlier, is no longer known to "
                             f"{self.name}: a new request was submitted")
            return None
        except RemoteCancelled as e:
            self.books.mark_cancel(input_hash, e, run.handle)
            raise
        run.notes.append(f"request {rid} was cancelled earlier but completed anyway (and is billed): "
                         f"its result is returned; no new request was submitted")
        run.resumed = True
        run.mark_time("done")
        return self._finish(run, result)

    def _payload(self, run: _Run) -> dict:
        run.hooks.progress(0.01, f"{self.name}: sending inputs")
        uploaded: dict[int, str] = {}

        def ref(data: bytes, name: str) -> str:
            uri = data_uri(data)
            if len(uri) <= self.data_uri_limit:
                return uri
            return self.client.upload(data, "image/png", name, deadline=run.deadline,
                                      cancelled=run.hooks.cancelled)

        image_url = ref(run.prep.image_png, "image.png")
        mask_url = ref(run.prep.mask_png, "mask.png")

        def extra(img):
            if id(img) not in uploaded:
                uploaded[id(img)] = ref(run.prep.extra_png[id(img)], "control.png")
            return uploaded[id(img)]

        params = map_images(run.prep.params, extra)
        return build_payload(self.ep.id, params, image_url, mask_url)

    # ------------------------------------------------------------------ the result
    def _finish(self, run: _Run, result: dict) -> FillResult:
        prep, hooks, rid = run.prep, run.hooks, run.handle.request_id
        urls, flags = self.client.outputs(result)
        files = []
        try:
            for i, url in enumerate(urls):
                hooks.progress(0.9 + 0.08 * i / max(1, len(urls)),
                               f"{self.name}: downloading output {i + 1}/{len(urls)}")
                data, _ = self.client.download(url, max_bytes=self.max_download_bytes,
                                               deadline=run.deadline, cancelled=hooks.cancelled)
                files.append(data)
            arrays = [decode_image(d) for d in files]
        except OutputRefused as e:
            raise self._refused(run, result, len(urls), e) from None
        except RemoteCancelled:
            raise RemoteCancelled(f"{self.name} request {rid}: cancelled while downloading; the "
                                  f"result is paid and stays in the journal: re-run to fetch it",
                                  request_id=rid) from None
        except ResultUnavailable as e:
            self.books.outputs_lost(prep.input_hash, run.handle, self._cost(result, None, run, len(urls)).usd,
                                    len(urls), str(e))
            raise ResultUnavailable(f"{self.name} request {rid} completed (and is billed) but an "
                                    f"output could not be downloaded: {e}. Re-running submits a new "
                                    f"request.", request_id=rid, status=e.status) from None
        except DeadlineExceeded:
            raise DeadlineExceeded(f"{self.name} request {rid}: deadline passed while downloading; "
                                   f"it stays pending in the journal: re-run the same inputs to "
                                   f"fetch it without paying again", request_id=rid) from None
        run.mark_time("downloaded")
        sizes = [(a.shape[1], a.shape[0]) for a in arrays]
        cost = self._cost(result, sizes)
        meta = self._meta(run, result, flags, sizes, cost)
        notes = run.notes + self.books.completed(prep.input_hash, run.handle, files, meta, cost.usd)
        if notes:
            meta["notes"] = notes
        hooks.progress(1.0, f"{self.name}: done")
        return self._check_nsfw(FillResult(_stack(arrays), meta))

    def _refused(self, run: _Run, result: dict, images: int, e: OutputRefused) -> OutputRefused:
        """A completed (billed) job whose output is not opened (a bomb, not an image): the
        ledger keeps the cost, the journal a terminal "refused" (a re-run submits anew, with a
        note) and the message says where the paid result can still be fetched."""
        rid = run.handle.request_id
        msg = (f"{self.name} request {rid} completed (and is billed) but its output was not opened: {e}. "
               f"The paid result can still be fetched from {self.label} under request id {rid} "
               f"({self.client.result_location(run.handle)}, with your key). Re-running the same "
               f"inputs submits a NEW, paid request.")
        self.books.outputs_lost(run.prep.input_hash, run.handle, self._cost(result, None, run, images).usd,
                                images, msg, status="refused")
        err = OutputRefused(msg, size=e.size)
        err.request_id = rid
        return err

    def _cost(self, result, sizes, run: _Run | None = None, count: int = 0) -> pricing.PriceEstimate:
        """The cost of the outputs (sizes), or of `count` outputs not decoded: their sizes from
        the result (fal lists them), else the size the request asked for (WaveSpeed)."""
        if sizes is None:
            sizes = [(int(img["width"]), int(img["height"])) for img in result.get("images") or []
                     if isinstance(img, dict) and img.get("width") and img.get("height")]
            if not sizes and run is not None:
                sizes = [output_size(self.ep.id, run.prep.params, run.prep.size)] * count
        return pricing.actual(self.ep.id, sizes, self.price)

    def _meta(self, run: _Run, result: dict, flags, sizes, cost: pricing.PriceEstimate) -> dict:
        """The result's report entry. Seeds: the provider returns ONE seed per request (fal's
        `seed`; WaveSpeed returns none: the seed sent), not one per image, so `seeds` lists
        that one and no per-image seed is invented. NSFW flags the result lacks are None."""
        prep, rid = run.prep, run.handle.request_id
        seed = result.get("seed", prep.params.get("seed"))
        timings = {"prepare": round(prep.prepare_s, 3), **{k: round(v, 3) for k, v in run.times.items()}}
        if isinstance(result.get("timings"), dict):
            timings["provider"] = result["timings"]
        if len(sizes) > 1:
            how = "returned by" if "seed" in result else "sent to"
            run.notes.append(f"seed {seed} is the request's one seed ({how} {self.label}); "
                             f"{self.label} does not report a seed per image")
        if any(f is None for f in flags):
            run.notes.append(f"{self.label} returned no NSFW flag for some outputs: reported as unknown "
                             f"(null), not as clean")
        return {"provider": self.name, "endpoint": self.ep.id, "request_id": rid,
                "request_ids": [rid], "seed": seed, "seeds": [seed],
                "num_images": len(sizes), "sizes": [list(s) for s in sizes], "nsfw": flags,
                "cost_usd": cost.usd, "cost_basis": cost.basis,
                "estimate_usd": prep.estimate.usd, "cached": False, "resumed": run.resumed,
                "timings": timings, "input_hash": prep.input_hash, "index": run.request.index,
                "params": {k: v for k, v in prep.hash_params.items() if k != "__inputs__"}}

    def _from_cache(self, prep: Prepared, request: FillRequest) -> FillResult | None:
        hit = self.books.cache.get(prep.input_hash)
        if hit is None:
            return None
        files, meta = hit
        try:
            arrays = [decode_image(d) for d in files]
        except HostedError:
            return None
        meta = {**meta, "cached": True, "cost_usd": 0.0, "original_cost_usd": meta.get("cost_usd"),
                "index": request.index}
        meta.pop("files", None)
        return FillResult(_stack(arrays), meta)

    def _check_nsfw(self, res: FillResult) -> FillResult:
        msg = nsfw_message(res.meta)
        if msg:
            res.meta["nsfw_message"] = msg
            if self.nsfw == "raise":
                raise NSFWBlocked(msg + " (set nsfw='keep' to receive the images anyway)",
                                  request_id=res.meta.get("request_id"), result=res)
        return res


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    if len({a.shape for a in arrays}) > 1:
        raise ResultUnavailable(f"outputs differ in size: {[a.shape[:2] for a in arrays]}")
    return torch.from_numpy(arrays[0][None] if len(arrays) == 1 else np.stack(arrays)).float()


class FalProvider(HostedProvider):
    name = "fal"
    label = "fal.ai"
    handle_type = FalHandle

    @classmethod
    def from_env(cls, endpoint: str, user_dir, *, env=None, client_kw: dict | None = None, **kw):
        """Key and base URLs from the environment / `<user_dir>/fluxfill/keys.json`; state in
        `<user_dir>/fluxfill`."""
        client = FalClient.from_env(user_dir, env=env, **(client_kw or {}))
        return cls(client, endpoint, Path(user_dir) / "fluxfill", **kw)


class WaveSpeedProvider(HostedProvider):
    name = "wavespeed"
    label = "WaveSpeed"
    handle_type = WaveSpeedHandle

    @classmethod
    def from_env(cls, endpoint: str, user_dir, *, env=None, client_kw: dict | None = None, **kw):
        client = WaveSpeedClient.from_env(user_dir, env=env, **(client_kw or {}))
        return cls(client, endpoint, Path(user_dir) / "fluxfill", **kw)
