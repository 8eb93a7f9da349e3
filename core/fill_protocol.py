"""The one provider protocol behind the three fill nodes: a request in, images + metadata out.

A provider (local sampler, fal.ai, WaveSpeed) implements `fill(request, hooks) -> FillResult`
for ONE source image; `run_batch` (below) spreads a batch of B images over it, in order,
with bounded concurrency for hosted providers. Tensors follow ComfyUI's layout
(IMAGE [H, W, C] float 0..1 per image, MASK [H, W] float 0..1) but nothing here imports comfy.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from collections.abc import Callable

import torch


@dataclass
class FillRequest:
    image: torch.Tensor          # [H, W, C] float 0..1, one source image
    mask: torch.Tensor           # [H, W] float 0..1, 1 = regenerate
    prompt: str
    seed: int                    # seed of the first fill; fill i uses seed + i where the provider allows
    num_images: int
    loras: list = field(default_factory=list)   # core.lora_list entries
    params: dict[str, Any] = field(default_factory=dict)  # provider-specific, already validated
    index: int = 0               # position of this image in the node's batch


@dataclass
class FillResult:
    images: torch.Tensor         # [num_images, H, W, 3] float 0..1
    meta: dict[str, Any] = field(default_factory=dict)  # provider, endpoint, request_id, seeds, timings, nsfw, cost


@dataclass
class FillHooks:
    """How a provider talks back to the node: progress and cancel, both thread-safe."""
    progress: Callable[[float, str], None] = lambda fraction, text: None
    cancelled: Callable[[], bool] = lambda: False


class FillProvider(Protocol):
    name: str

    def fill(self, request: FillRequest, hooks: FillHooks) -> FillResult: ...


def run_batch(provider: FillProvider, requests: list[FillRequest], hooks: FillHooks,
              concurrency: int = 1) -> list[FillResult]:
    """Run one request per source image; results come back in request order.

    With concurrency > 1 the requests run on threads (hosted providers wait on the network);
    the first exception is raised after the others finished, so no paid result is dropped
    by an early exit (providers persist what they received before raising)."""
    if concurrency <= 1 or len(requests) <= 1:
        return [provider.fill(r, hooks) for r in requests]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(requests))) as pool:
        futures = [pool.submit(provider.fill, r, hooks) for r in requests]
        results, first_error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as e:  # noqa: BLE001 - re-raised below, after the others finished
                first_error = first_error or e
        if first_error is not None:
            raise first_error
        return results


def report_json(provider: str, results: list[FillResult], **extra) -> str:
    """The `report` output shared by the fill nodes."""
    return json.dumps({"provider": provider, **extra, "results": [r.meta for r in results]},
                      indent=1, default=str)
