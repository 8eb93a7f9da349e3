"""Where hosted requests meet ComfyUI while they run: worker threads, progress, Cancel.

- Cancel is ComfyUI's interrupt flag (`processing_interrupted()`, read, never cleared); the
  core's RemoteCancelled (raised after it cancelled the remote job) becomes
  `InterruptProcessingException`, the one exception that ends a prompt with a clean
  `execution_interrupted`.
- Progress goes to the node (ProgressBar + progress text) from the node's own thread: the
  requests run on worker threads, which only record their state, because ComfyUI's
  progress hook reads per-prompt context that worker threads do not have.
"""
from __future__ import annotations

import threading
import time

import comfy.model_management
import comfy.utils

from ..core.fill_protocol import FillHooks, FillRequest, run_batch
from ..core.hosted.errors import HostedError, RemoteCancelled
from .node_errors import for_user
from .progress_text import send_progress_text

Interrupt = comfy.model_management.InterruptProcessingException


def cancelled() -> bool:
    """ComfyUI's Cancel button (POST /interrupt). Read only: ComfyUI clears it itself."""
    return comfy.model_management.processing_interrupted()


class BatchProgress:
    """Thread-safe state of N concurrent requests, shown on the node from its own thread."""

    def __init__(self, count: int, unique_id):
        self.count = count
        self.unique_id = unique_id
        self.fractions = [0.0] * count
        self.texts = [""] * count
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.bar = comfy.utils.ProgressBar(100 * count, node_id=unique_id) if unique_id is not None else None
        self.last_text = None
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
        send_progress_text(text, self.unique_id)

    def pump(self):
        with self.lock:
            fractions, texts = list(self.fractions), list(self.texts)
        if self.bar is not None and not self.interrupted.is_set():
            try:
                self.bar.update_absolute(int(sum(fractions) * 100), 100 * self.count)
            except Interrupt:
                self.interrupted.set()      # re-raised by run_requests once the jobs are cancelled
        elapsed = time.monotonic() - self.started
        if self.count == 1:
            body = texts[0]
        else:
            body = "\n".join(f"image {i + 1}/{self.count}: {t}" for i, t in enumerate(texts) if t)
        message = f"{body}\n[{elapsed:.0f}s elapsed]" if body else f"[{elapsed:.0f}s elapsed]"
        if message != self.last_text:
            self.last_text = message
            self.text(message)


class IndexedProvider:
    """Gives each request its own progress slot (run_batch shares one FillHooks)."""

    def __init__(self, inner, progress: BatchProgress):
        self.inner = inner
        self.name = inner.name
        self.progress = progress

    def fill(self, request: FillRequest, hooks: FillHooks):
        return self.inner.fill(request, FillHooks(progress=self.progress.hook(request.index),
                                                  cancelled=hooks.cancelled))


def run_requests(node: str, provider, requests: list[FillRequest], unique_id, concurrency: int,
                 first_text: str):
    """Run the batch on worker threads; progress and cancel from this (the node's) thread.

    Returns the FillResults in request order. RemoteCancelled -> InterruptProcessingException;
    other core errors keep their type, with the node's name in front of the message."""
    progress = BatchProgress(len(requests), unique_id)
    progress.text(first_text)
    outcome: dict = {}

    def work():
        try:
            outcome["results"] = run_batch(IndexedProvider(provider, progress), requests,
                                           FillHooks(cancelled=progress.cancelled), concurrency=concurrency)
        except BaseException as e:  # noqa: BLE001 - handed to the node thread below
            outcome["error"] = e

    worker = threading.Thread(target=work, name=f"fluxfill-{node}", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
        progress.pump()
    progress.pump()
    error = outcome.get("error")
    if isinstance(error, RemoteCancelled) or (
            progress.cancelled() and (error is None or isinstance(error, HostedError))):
        raise Interrupt() from error       # finished results stay in the cache: a re-run is free
    if error is None:
        return outcome["results"]
    raise for_user(error, node)
