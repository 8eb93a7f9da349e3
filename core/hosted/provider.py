"""FalProvider / WaveSpeedProvider: the FillProvider (core/fill_protocol.py) of hosted fills.

`fill(request, hooks)` for one source image:
  validate params (endpoints table) → encode image/mask (PNG; mask "L", image-sized) →
  input hash → cached result? return it (free) → pending journal entry? resume that request
  (an entry "cancel_requested" — a running job the user cancelled, which may have finished
  and been billed anyway — is resumed too: its result if it completed, else a new submit)
  → else data URI or upload, submit, journal "pending" at once → poll (progress, cancel,
  deadline) → download (size cap, safe decode) → cache + ledger + journal "completed" →
  FillResult(images [n,H,W,3] float, meta).

Errors: RemoteCancelled (node → interrupt; the entry becomes "cancelled" only when the
provider confirms the job stopped), DeadlineExceeded (entry stays pending: re-run resumes),
SubmitUncertain (WaveSpeed submit without an answer: journaled "uncertain", noted on the next
run of the same inputs), RemoteFailed (not billed), NSFWBlocked (with `.result`, when nsfw="raise"),
HostedValidationError (before anything is sent), AuthError, TransportError, …
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import fill_protocol as FP
from . import endpoints as E
from . import images as I
from . import pricing
from .errors import (DeadlineExceeded, HostedError, HostedValidationError, NSFWBlocked,
                     RemoteCancelled, RemoteFailed, ResultUnavailable, SubmitUncertain)
from .fal import FalClient, FalHandle
from .journal import Journal, Ledger, ResultCache, hash_lock, input_hash
from .transport import Deadline
from .wavespeed import WaveSpeedClient, WaveSpeedHandle

log = logging.getLogger("fluxfill.hosted")
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


@dataclass
class Prepared:
    """Everything decided before the network: validated params, encoded inputs, hash, price."""
    params: dict                    # validated; extra images still in memory
    hash_params: dict               # images replaced by "sha256:<hex>"
    image_png: bytes
    mask_png: bytes
    size: tuple[int, int]           # input (w, h)
    input_hash: str
    estimate: pricing.PriceEstimate
    extra_png: dict[int, bytes] = field(default_factory=dict)   # id(image) -> PNG
    prepare_s: float = 0.0


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


def _merge_loras(endpoint: E.Endpoint, stack, params: dict) -> list:
    from ..lora_list import hosted_loras
    try:
        loras = hosted_loras(stack) if stack else []
    except ValueError as e:
        raise HostedValidationError(f"lora_stack: {e}", field="lora_stack") from None
    loras += list(params.get("loras") or [])
    if loras and not endpoint.takes("loras"):
        raise HostedValidationError(f"{endpoint.id} takes no LoRAs: remove the lora_stack or choose "
                                    f"an endpoint with LoRA support", field="loras")
    return loras


class HostedProvider:
    """Shared flow; subclasses bind the client and handle types."""
    name = "?"
    label = "?"                     # the provider's name in messages
    handle_type: Any = None

    def __init__(self, client, endpoint: str, state_dir: str | Path, *, force_new: bool = False,
                 deadline_s: float | None = 600.0, nsfw: str = "raise",
                 max_download_bytes: int = MAX_DOWNLOAD_BYTES, data_uri_limit: int | None = None):
        self.ep = E.get(endpoint)
        if self.ep.provider != self.name:
            raise HostedValidationError(f"{endpoint} is a {self.ep.provider} endpoint, not {self.name}",
                                        field="endpoint")
        if nsfw not in ("raise", "keep"):
            raise HostedValidationError("nsfw must be 'raise' or 'keep'", field="nsfw")
        self.client = client
        self.state_dir = Path(state_dir)
        self.journal = Journal(self.state_dir)
        self.cache = ResultCache(self.state_dir)
        self.ledger = Ledger(self.state_dir)
        self.force_new = force_new
        self.deadline_s = deadline_s
        self.nsfw = nsfw
        self.max_download_bytes = max_download_bytes
        self.data_uri_limit = self.ep.data_uri_limit if data_uri_limit is None else data_uri_limit
        self._prepared: dict[int, tuple[FP.FillRequest, Prepared]] = {}
        self._prepared_lock = threading.Lock()

    def __repr__(self):
        return f"{type(self).__name__}({self.ep.id!r}, state_dir={str(self.state_dir)!r})"

    # ------------------------------------------------------------------ before the network
    def prepare(self, request: FP.FillRequest) -> Prepared:
        """Validate and encode. The result is kept for `fill` of this very request object
        (the node prepares to validate and estimate, then fills: the PNGs are made once)."""
        t = time.monotonic()
        prep = self._prepare(request)
        prep.prepare_s = time.monotonic() - t
        with self._prepared_lock:
            self._prepared[id(request)] = (request, prep)
        return prep

    def _take_prepared(self, request: FP.FillRequest) -> Prepared:
        with self._prepared_lock:
            hit = self._prepared.pop(id(request), None)
        if hit is not None and hit[0] is request:
            return hit[1]
        t = time.monotonic()
        prep = self._prepare(request)
        prep.prepare_s = time.monotonic() - t
        return prep

    def _prepare(self, request: FP.FillRequest) -> Prepared:
        params = dict(request.params or {})
        for k in ("prompt", "seed", "num_images"):
            params.pop(k, None)
        params = {E.canonical_name(k): v for k, v in params.items()}
        params["loras"] = _merge_loras(self.ep, request.loras, params)
        if not self.ep.takes("loras"):
            params.pop("loras")
        params.update(prompt=request.prompt, seed=int(request.seed), num_images=int(request.num_images))
        image_png, size = I.encode_image(request.image)
        mask_png = I.encode_mask(request.mask, size)
        for key in ("image_size", "size"):          # unset: the output follows the input
            if self.ep.takes(key) and params.get(key) is None:
                params[key] = {"width": size[0], "height": size[1]}
        try:
            validated = E.validate(self.ep.id, params)
        except HostedValidationError as e:
            if "size" in (e.field or "") and params.get("size") == {"width": size[0], "height": size[1]}:
                raise HostedValidationError(
                    f"{e} — the input image is {size[0]}x{size[1]}; {self.ep.id} takes 256-1536 per "
                    f"side: crop (CropToMask) or resize the image, or set size explicitly",
                    field="size") from None
            raise
        extra: dict[int, bytes] = {}

        def placeholder(img):
            png = extra.get(id(img))
            if png is None:
                png = extra[id(img)] = I.encode_image(img)[0]
            return "sha256:" + I.sha256(png)

        hash_params = E.map_images(validated, placeholder)
        hash_params["__inputs__"] = {"image": I.sha256(image_png), "mask": I.sha256(mask_png)}
        key = input_hash(self.name, self.ep.id, hash_params)
        est = pricing.estimate_for(self.ep.id, validated, size)
        return Prepared(validated, hash_params, image_png, mask_png, size, key, est, extra)

    def estimate(self, request: FP.FillRequest) -> pricing.PriceEstimate:
        return self._prepare(request).estimate

    # ------------------------------------------------------------------ the flow
    def fill(self, request: FP.FillRequest, hooks: FP.FillHooks | None = None) -> FP.FillResult:
        hooks = hooks or FP.FillHooks()
        prep = self._take_prepared(request)
        with hash_lock(prep.input_hash):
            if not self.force_new:
                cached = self._from_cache(prep, request)
                if cached is not None:
                    hooks.progress(1.0, f"{self.name}: cached result (no new request, no cost)")
                    return self._check_nsfw(cached)
            return self._fill_remote(prep, request, hooks)

    def _fill_remote(self, prep: Prepared, request, hooks) -> FP.FillResult:
        deadline = Deadline(self.deadline_s)
        t0 = time.monotonic()
        notes: list[str] = []
        pending = None if self.force_new else self.journal.pending(prep.input_hash)
        if pending is not None and pending.get("status") == "cancel_requested":
            done = self._resume_cancelled(prep, request, hooks, pending, deadline, t0, notes)
            if done is not None:
                return done
            pending = None                       # it surely stopped unbilled: submit anew
        handle = self.handle_type.from_dict(pending["urls"]) if pending else None
        payload = None
        if handle is None:
            notes += self._uncertain_note(prep)
            payload = self._payload(prep, hooks, deadline)
        times: dict[str, float] = {}

        def on_submitted(h):
            nonlocal handle
            handle = h                 # the journal marks below need its URLs
            times["submitted"] = time.monotonic() - t0
            try:
                self.journal.record(prep.input_hash, provider=self.name, endpoint=self.ep.id,
                                    request_id=h.request_id, status="pending", urls=h.to_dict(),
                                    estimate_usd=prep.estimate.usd)
            except OSError as e:   # the job is submitted (and billed): keep waiting for it
                log.warning("%s: journal write failed for request %s: %s", self.name,
                            h.request_id, e)
                notes.append(f"journal write failed ({e}): request {h.request_id} was not "
                             f"recorded; had this run been interrupted it could not be resumed")

        try:
            handle, result = self.client.run(self.ep.id, payload, progress=hooks.progress,
                                             cancelled=hooks.cancelled, deadline=deadline,
                                             on_submitted=on_submitted, handle=handle)
        except SubmitUncertain as e:
            raise self._submit_uncertain(prep, e) from None
        except RemoteFailed as e:
            self._mark(prep, e.request_id, "failed", str(e), handle)
            raise
        except RemoteCancelled as e:
            self._mark_cancel(prep, e, handle)
            raise
        except ResultUnavailable as e:
            if pending is not None and e.status in (404, 410):
                self._mark(prep, pending["request_id"], "expired", str(e), handle)
                raise ResultUnavailable(
                    f"{self.name} request {pending['request_id']} (resumed from the journal) is no "
                    f"longer known to the provider: {e}. Re-running submits a NEW, paid request.",
                    request_id=pending["request_id"], status=e.status) from None
            raise
        times["done"] = time.monotonic() - t0
        return self._finish(prep, request, hooks, handle, result, deadline, times, t0,
                            resumed=pending is not None, notes=notes)

    # ------------------------------------------------------------------ cancel / uncertain
    def _mark_cancel(self, prep, e: RemoteCancelled, handle) -> None:
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
        self._mark(prep, e.request_id, status, str(e), handle)

    def _resume_cancelled(self, prep, request, hooks, pending, deadline, t0, notes):
        """A job cancelled earlier while running: if it completed anyway (billed), return its
        result; if the provider reports it cancelled/failed/unknown, mark it so and return
        None (the caller submits anew)."""
        rid = pending["request_id"]
        handle = self.handle_type.from_dict(pending["urls"])
        try:
            handle, result = self.client.run(self.ep.id, None, progress=hooks.progress,
                                             cancelled=hooks.cancelled, deadline=deadline,
                                             handle=handle)
        except RemoteFailed as e:
            status = "cancelled" if getattr(e, "state", "") == "cancelled" else "failed"
            self._mark(prep, rid, status, str(e), handle)
            notes.append(f"request {rid}, cancelled earlier, did not complete ({status}, not "
                         f"billed): a new request was submitted")
            return None
        except ResultUnavailable as e:
            if e.status not in (404, 410):
                raise
            self._mark(prep, rid, "expired", str(e), handle)
            notes.append(f"request {rid}, cancelled earlier, is no longer known to "
                         f"{self.name}: a new request was submitted")
            return None
        except RemoteCancelled as e:
            self._mark_cancel(prep, e, handle)
            raise
        notes.append(f"request {rid} was cancelled earlier but completed anyway (and is billed): "
                     f"its result is returned; no new request was submitted")
        times = {"done": time.monotonic() - t0}
        return self._finish(prep, request, hooks, handle, result, deadline, times, t0,
                            resumed=True, notes=notes)

    def _submit_uncertain(self, prep, e: SubmitUncertain) -> SubmitUncertain:
        """Journal the lost submit (no request id is known) and say what it means."""
        msg = (f"{e}. The {self.label} task may have been created and billed, but {self.label} "
               f"gives no way to look a task up without its id (its API has no list of recent "
               f"predictions), so it cannot be resumed. Re-running the same inputs submits a NEW "
               f"task (possibly paying twice) — check your {self.label} account's usage/billing "
               f"first if that matters.")
        err = self._safe(self.journal.record, "journal", prep.input_hash, provider=self.name,
                         endpoint=self.ep.id, request_id=None, status="uncertain", error=str(e),
                         estimate_usd=prep.estimate.usd)
        if err:
            msg += f" ({err})"
        return SubmitUncertain(msg, status=e.status)

    def _uncertain_note(self, prep) -> list[str]:
        """A note for the run after an uncertain submit of the same inputs."""
        last = self.journal.latest(prep.input_hash)
        if not last or last.get("status") != "uncertain":
            return []
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last.get("ts") or 0))
        return [f"an earlier submit of these same inputs ({when}) got no answer: that {self.label} "
                f"task may exist and be billed, but cannot be looked up without its id; this run "
                f"submitted a new task"]

    def _payload(self, prep: Prepared, hooks, deadline) -> dict:
        hooks.progress(0.01, f"{self.name}: sending inputs")
        uploaded: dict[int, str] = {}

        def ref(data: bytes, name: str) -> str:
            uri = I.data_uri(data)
            if len(uri) <= self.data_uri_limit:
                return uri
            return self.client.upload(data, "image/png", name, deadline=deadline,
                                      cancelled=hooks.cancelled)

        image_url = ref(prep.image_png, "image.png")
        mask_url = ref(prep.mask_png, "mask.png")

        def extra(img):
            if id(img) not in uploaded:
                uploaded[id(img)] = ref(prep.extra_png[id(img)], "control.png")
            return uploaded[id(img)]

        params = E.map_images(prep.params, extra)
        return E.build_payload(self.ep.id, params, image_url, mask_url)

    def _mark(self, prep, request_id, status, error, handle):
        if request_id:
            self._safe(self.journal.record, "journal", prep.input_hash, provider=self.name,
                       endpoint=self.ep.id, request_id=request_id, status=status,
                       urls=handle.to_dict() if handle else {}, error=error)

    def _safe(self, fn, what: str, *a, **kw) -> str | None:
        """Bookkeeping that must not cost the user a paid result: an OSError (disk full,
        permissions) is logged and returned as a note instead of raised."""
        try:
            fn(*a, **kw)
            return None
        except OSError as e:
            log.warning("%s: %s write failed: %s", self.name, what, e)
            return f"{what} write failed: {e}"

    def _finish(self, prep, request, hooks, handle, result, deadline, times, t0, resumed,
                notes=()) -> FP.FillResult:
        rid = handle.request_id
        urls, flags = self.client.outputs(result)
        files = []
        try:
            for i, url in enumerate(urls):
                hooks.progress(0.9 + 0.08 * i / max(1, len(urls)),
                               f"{self.name}: downloading output {i + 1}/{len(urls)}")
                data, _ = self.client.download(url, max_bytes=self.max_download_bytes,
                                               deadline=deadline, cancelled=hooks.cancelled)
                files.append(data)
            arrays = [I.decode_image(d) for d in files]
        except RemoteCancelled:
            raise RemoteCancelled(f"{self.name} request {rid}: cancelled while downloading; the "
                                  f"result is paid and stays in the journal: re-run to fetch it",
                                  request_id=rid) from None
        except ResultUnavailable as e:
            cost = self._cost(result, None)
            self._safe(self.ledger.append, "ledger", provider=self.name, endpoint=self.ep.id,
                       request_id=rid, cost_usd=cost.usd, images=len(urls),
                       input_hash=prep.input_hash, outputs_lost=True)
            self._mark(prep, rid, "lost", str(e), handle)
            raise ResultUnavailable(f"{self.name} request {rid} completed (and is billed) but an "
                                    f"output could not be downloaded: {e}. Re-running submits a new "
                                    f"request.", request_id=rid, status=e.status) from None
        except DeadlineExceeded:
            raise DeadlineExceeded(f"{self.name} request {rid}: deadline passed while downloading; "
                                   f"it stays pending in the journal: re-run the same inputs to "
                                   f"fetch it without paying again", request_id=rid) from None
        times["downloaded"] = time.monotonic() - t0
        sizes = [(a.shape[1], a.shape[0]) for a in arrays]
        cost = self._cost(result, sizes)
        meta = self._meta(prep, request, handle, result, flags, sizes, cost, times, resumed)
        notes = list(notes)
        cache_err = self._safe(self.cache.put, "result cache", prep.input_hash, files, meta)
        notes += [n for n in (cache_err, self._safe(
            self.ledger.append, "ledger", provider=self.name, endpoint=self.ep.id, request_id=rid,
            cost_usd=cost.usd, images=len(files), input_hash=prep.input_hash)) if n]
        if cache_err is None:
            # only once the outputs are on disk: "completed" means a re-run reads the cache;
            # without them the entry stays pending, so a re-run fetches the paid result again
            notes += [n for n in [self._safe(
                self.journal.record, "journal", prep.input_hash, provider=self.name,
                endpoint=self.ep.id, request_id=rid, status="completed", urls=handle.to_dict())] if n]
        if notes:
            meta["notes"] = notes
        hooks.progress(1.0, f"{self.name}: done")
        return self._check_nsfw(FP.FillResult(_stack(arrays), meta))

    def _cost(self, result, sizes) -> pricing.PriceEstimate:
        if sizes is None:
            sizes = []
            for img in result.get("images") or []:
                if isinstance(img, dict) and img.get("width") and img.get("height"):
                    sizes.append((int(img["width"]), int(img["height"])))
        return pricing.actual(self.ep.id, sizes)

    def _meta(self, prep, request, handle, result, flags, sizes, cost, times, resumed) -> dict:
        seed = result.get("seed", prep.params.get("seed"))
        timings = {"prepare": round(prep.prepare_s, 3), **{k: round(v, 3) for k, v in times.items()}}
        if isinstance(result.get("timings"), dict):
            timings["provider"] = result["timings"]
        return {"provider": self.name, "endpoint": self.ep.id, "request_id": handle.request_id,
                "request_ids": [handle.request_id], "seed": seed, "seeds": [seed] * len(sizes),
                "num_images": len(sizes), "sizes": [list(s) for s in sizes], "nsfw": flags,
                "cost_usd": cost.usd, "cost_basis": cost.basis,
                "estimate_usd": prep.estimate.usd, "cached": False, "resumed": resumed,
                "timings": timings, "input_hash": prep.input_hash, "index": request.index,
                "params": {k: v for k, v in prep.hash_params.items() if k != "__inputs__"}}

    def _from_cache(self, prep: Prepared, request) -> FP.FillResult | None:
        hit = self.cache.get(prep.input_hash)
        if hit is None:
            return None
        files, meta = hit
        try:
            arrays = [I.decode_image(d) for d in files]
        except HostedError:
            return None
        meta = {**meta, "cached": True, "cost_usd": 0.0, "original_cost_usd": meta.get("cost_usd"),
                "index": request.index}
        meta.pop("files", None)
        return FP.FillResult(_stack(arrays), meta)

    def _check_nsfw(self, res: FP.FillResult) -> FP.FillResult:
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
    return torch.from_numpy(np.stack(arrays)).float()


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
