"""Glue shared by FalFill and WaveSpeedFill: batch splitting, keys, progress, cancel, report.

The hosted core (core/hosted) is pure; this module is where it meets ComfyUI:
- keys and state live under ComfyUI's user directory (`folder_paths.get_user_directory()`);
- cancel is ComfyUI's interrupt flag (`processing_interrupted()`, read, never cleared);
  the core's RemoteCancelled (raised after it cancelled the remote job) becomes
  `InterruptProcessingException`, the one exception that ends a prompt with a clean
  `execution_interrupted`;
- progress goes to the node (ProgressBar + progress text) from the node's own thread: the
  requests run on worker threads, which only record their state, because ComfyUI's
  progress hook reads per-prompt context that worker threads do not have.
"""
from __future__ import annotations

import json
import threading
import time

import comfy.model_management
import comfy.utils
import folder_paths

from ..core.fill_protocol import FillHooks, FillRequest, report_json, run_batch
from ..core.hosted import keys as K
from ..core.hosted.errors import HostedError, MissingKey, RemoteCancelled
from ..core.hosted.provider import nsfw_message
from . import hosted_routes  # noqa: F401  (registers /fluxfill/* routes when a server runs)

PROVIDER_TITLES = {"fal": "fal.ai", "wavespeed": "WaveSpeedAI"}


def user_dir() -> str:
    return folder_paths.get_user_directory()


def make_provider(cls, node: str, endpoint: str, *, force_new: bool, timeout_s: float):
    """The core provider with the key and state from ComfyUI's user directory."""
    provider = cls.name
    try:
        return cls.from_env(endpoint, user_dir(), force_new=force_new, deadline_s=float(timeout_s),
                            nsfw="keep")
    except MissingKey:
        raise MissingKey(
            f"{node}: no {PROVIDER_TITLES[provider]} API key. Set the {K.ENV_VARS[provider]} "
            f"environment variable before starting ComfyUI, or save the key in the FluxFill "
            f"settings (stored in {K.key_file(user_dir())}, never in the workflow).") from None
    except HostedError as e:
        _prefix(e, node)
        raise


def _prefix(e: BaseException, node: str):
    if e.args and isinstance(e.args[0], str) and not e.args[0].startswith(node):
        e.args = (f"{node}: {e.args[0]}",) + tuple(e.args[1:])


def cancelled() -> bool:
    """ComfyUI's Cancel button (POST /interrupt). Read only: ComfyUI clears it itself."""
    return comfy.model_management.processing_interrupted()


Interrupt = comfy.model_management.InterruptProcessingException


class _Progress:
    """Thread-safe state of N concurrent requests, shown on the node from its own thread."""

    def __init__(self, n: int, unique_id, node: str):
        self.n = n
        self.unique_id = unique_id
        self.node = node
        self.fractions = [0.0] * n
        self.texts = [""] * n
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.bar = comfy.utils.ProgressBar(100 * n, node_id=unique_id) if unique_id is not None else None
        self._sent = None
        # ComfyUI's progress hook raises InterruptProcessingException AND clears the flag; the
        # latch keeps the cancel visible to the worker threads until they cancelled the jobs.
        self.interrupted = threading.Event()

    def cancelled(self) -> bool:
        return self.interrupted.is_set() or cancelled()

    def hook(self, index: int):
        def progress(fraction: float, text: str):
            with self.lock:
                self.fractions[index] = max(self.fractions[index], float(fraction))
                self.texts[index] = text
        return progress

    def text(self, text: str):
        if self.unique_id is None:
            return
        from server import PromptServer
        if getattr(PromptServer, "instance", None) is not None:
            PromptServer.instance.send_progress_text(text, self.unique_id)

    def pump(self):
        with self.lock:
            fr, texts = list(self.fractions), list(self.texts)
        if self.bar is not None and not self.interrupted.is_set():
            try:
                self.bar.update_absolute(int(sum(fr) * 100), 100 * self.n)
            except Interrupt:
                self.interrupted.set()      # re-raised by run_requests once the jobs are cancelled
        el = time.monotonic() - self.t0
        if self.n == 1:
            body = texts[0]
        else:
            body = "\n".join(f"image {i + 1}/{self.n}: {t}" for i, t in enumerate(texts) if t)
        msg = f"{body}\n[{el:.0f}s elapsed]" if body else f"[{el:.0f}s elapsed]"
        if msg != self._sent:
            self._sent = msg
            self.text(msg)


class _IndexedProvider:
    """Gives each request its own progress slot (run_batch shares one FillHooks)."""

    def __init__(self, inner, progress: _Progress):
        self.inner = inner
        self.name = inner.name
        self.progress = progress

    def fill(self, request: FillRequest, hooks: FillHooks):
        return self.inner.fill(request, FillHooks(progress=self.progress.hook(request.index),
                                                  cancelled=hooks.cancelled))


def run_requests(node: str, provider, requests: list[FillRequest], unique_id, concurrency: int,
                 first_text: str):
    """Run the batch on worker threads; progress and cancel from this (the node's) thread.

    Returns the FillResults in request order. RemoteCancelled → InterruptProcessingException;
    other core errors keep their type, with the node's name in front of the message."""
    progress = _Progress(len(requests), unique_id, node)
    progress.text(first_text)
    box: dict = {}

    def work():
        try:
            box["results"] = run_batch(_IndexedProvider(provider, progress), requests,
                                       FillHooks(cancelled=progress.cancelled), concurrency=concurrency)
        except BaseException as e:  # noqa: BLE001 - handed to the node thread below
            box["error"] = e

    t = threading.Thread(target=work, name=f"fluxfill-{node}", daemon=True)
    t.start()
    while t.is_alive():
        t.join(0.1)
        progress.pump()
    progress.pump()
    err = box.get("error")
    if isinstance(err, RemoteCancelled) or (progress.cancelled() and (err is None or isinstance(err, HostedError))):
        raise Interrupt() from err       # finished results stay in the cache: a re-run is free
    if err is None:
        return box["results"]
    _prefix(err, node)
    raise err


def nsfw_check(node: str, results) -> None:
    """Raise if the provider's safety checker flagged any output (after caching: re-running
    the same inputs reads the cache, so nothing paid is lost). Flagged outputs are blank or
    black, never silently passed on."""
    lines = []
    for r in results:
        msg = nsfw_message(r.meta)
        if msg:
            lines.append(f"source image {r.meta.get('index', 0) + 1}: {msg}")
    if lines:
        raise RuntimeError(f"{node}: blocked by the provider's NSFW safety checker. " + " ".join(lines)
                           + " The unflagged outputs of these requests are kept in the result cache "
                           "(user/fluxfill/cache).")


def build_report(provider: str, node: str, endpoint: str, results, *, estimate, notes: list[str],
                 ignored: list[str], t0: float, **extra) -> str:
    cost = [r.meta.get("cost_usd") for r in results]
    actual = None if any(c is None for c in cost) else round(sum(cost), 6)
    notes = list(notes)
    for r in results:
        i = r.meta.get("index", 0) + 1
        if r.meta.get("cached"):
            notes.append(f"image {i}: result cache hit (request {r.meta.get('request_id')}, no new "
                         f"request, no cost; force_new sends a new one)")
        elif r.meta.get("resumed"):
            notes.append(f"image {i}: resumed request {r.meta.get('request_id')} from the journal "
                         f"(not paid twice)")
        notes.extend(f"image {i}: {n}" for n in r.meta.get("notes", []))
    return report_json(provider, results, node=node, endpoint=endpoint, requests=len(results),
                       request_ids=[r.meta.get("request_id") for r in results],
                       seeds=[r.meta.get("seeds") for r in results],
                       nsfw=[r.meta.get("nsfw") for r in results],
                       estimate_usd=estimate.usd, estimate_basis=estimate.basis,
                       cost_usd=actual, ignored=ignored, notes=notes,
                       total_s=round(time.monotonic() - t0, 3), **extra)


def times_estimate(est, n: int):
    """The estimate of one request, for `n` requests (one per source image)."""
    if n == 1:
        return est
    usd = None if est.usd is None else round(est.usd * n, 6)
    return type(est)(usd, f"{est.basis} × {n} requests", est.megapixels)


def estimate_text(endpoint: str, est, n_requests: int, num_images: int, size: tuple[int, int]) -> str:
    w, h = size
    return (f"{endpoint}: {n_requests} request(s) × {num_images} image(s) at {w}x{h} — estimated "
            f"{est.text()} (cached results are free)")


def parse_json_widget(node: str, name: str, text: str, kind: type, example: str):
    """A JSON STRING widget: empty means empty; errors name the widget and show an example."""
    text = (text or "").strip()
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{node}: {name} is not valid JSON ({e}). Example: {example}") from None
    if kind is list and isinstance(value, dict):
        value = [value]
    if not isinstance(value, kind):
        raise ValueError(f"{node}: {name} must be a JSON {'list' if kind is list else 'object'}. "
                         f"Example: {example}")
    return value
