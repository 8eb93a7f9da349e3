"""The one run path of the hosted fill nodes (FalFill, WaveSpeedFill).

Each hosted node maps its own widgets to endpoint fields (a `HostedRun`); `run_hosted` does
the rest, the same for both: batch split and mask checks, the provider (key and state from
ComfyUI's user folder), validation and price estimate before anything is sent, the requests
(concurrent, with progress and Cancel), the NSFW check and the report.
The LoRA stack travels as `FillRequest.loras` (core.lora_list entries, as for local fills);
the provider turns it into the endpoint's LoRA list.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from collections.abc import Callable

import folder_paths
import torch
from comfy_api.v0_0_2 import io

from ..core import lora_list
from ..core.fill_protocol import FillRequest, report_json
from ..core.hosted import endpoint_table, keys, live_prices, pricing, spend
from ..core.hosted.endpoint_table import PROVIDER_TITLES
from ..core.hosted.errors import HostedError, HostedValidationError, InvalidKeyFile, MissingKey, NSFWBlocked
from ..core.hosted.params import output_size
from ..core.hosted.provider import nsfw_message
from .fill_shape import check_masks, per_image
from .hosted_progress import run_requests
from .node_errors import for_user, relative_to_comfyui


@dataclass
class HostedRun:
    """What a hosted node decided from its widgets; everything else is shared."""
    node: str                        # node id: the first word of every message
    provider_class: type             # core FalProvider / WaveSpeedProvider
    endpoint: str
    params: dict                     # endpoint fields from the widgets (same for every image)
    force_new: bool
    timeout_s: float
    max_concurrency: int
    ignored: list[str] = field(default_factory=list)   # widgets the endpoint does not take
    # per source image: (index, image, mask) -> that image's params (e.g. "$image" placeholders)
    image_params: Callable | None = None


def user_dir() -> str:
    return folder_paths.get_user_directory()


def make_provider(run: HostedRun):
    """The core provider with the key and state from ComfyUI's user directory."""
    name = run.provider_class.name
    try:
        return run.provider_class.from_env(run.endpoint, user_dir(), force_new=run.force_new,
                                           deadline_s=float(run.timeout_s), nsfw="keep")
    except InvalidKeyFile as e:
        raise for_user(e, run.node) from None
    except MissingKey:
        key_file = relative_to_comfyui(str(keys.key_file(user_dir())))
        raise MissingKey(
            f"{run.node}: no {PROVIDER_TITLES[name]} API key. Set the {keys.ENV_VARS[name]} environment "
            f"variable before starting ComfyUI, or save the key in the FluxFill settings (stored in "
            f"{key_file}, never in the workflow).") from None
    except HostedError as e:
        raise for_user(e, run.node) from None


def stack_for_endpoint(endpoint: str, lora_stack, node: str) -> tuple[list, list[str]]:
    """(FillRequest.loras, notes): the stack's entries, or none (with a note) where the
    endpoint takes no LoRAs (switching endpoints must not break a graph)."""
    try:
        loras = lora_list.normalize_stack(lora_stack)
    except ValueError as e:
        raise for_user(HostedValidationError(f"lora_stack: {e}", field="lora_stack"), node) from None
    endpoint_spec = endpoint_table.get(endpoint)
    if loras and not endpoint_spec.takes("loras"):
        return [], [f"lora_stack ({len(loras)} LoRA(s); {endpoint} takes no LoRAs)"]
    return loras, []


def run_hosted(run: HostedRun, image, mask, prompt: str, seed: int, num_images: int, lora_stack,
               unique_id) -> io.NodeOutput:
    started = time.monotonic()
    count = image.shape[0]
    masks = per_image(mask, count, "mask", run.node)
    check_masks(masks, image, run.node, paid=True)
    loras, lora_notes = stack_for_endpoint(run.endpoint, lora_stack, run.node)
    ignored = run.ignored + lora_notes
    requests = []
    for i in range(count):
        params = run.image_params(i, image[i], masks[i]) if run.image_params else dict(run.params)
        requests.append(FillRequest(image=image[i], mask=masks[i], prompt=prompt, seed=seed,
                                    num_images=num_images, loras=loras, params=params, index=i))
    provider = make_provider(run)
    price = live_prices.for_provider(provider)     # fal's pricing API (cached a day), else the table
    provider.price = price.price
    try:   # validates everything before any request; fill() reuses each request's PNGs
        preps = provider.prepare_all(requests, run.max_concurrency)
    except (HostedError, ValueError) as e:
        raise for_user(e, run.node) from None
    prepared = preps[0]
    estimate = pricing.for_requests(prepared.estimate, count)
    spend_report = check_spend(run, provider, preps)     # may refuse: nothing sent yet
    size = output_size(run.endpoint, prepared.params, prepared.size)
    text = estimate_text(run.endpoint, estimate, count, num_images, size) + spend_text(spend_report)
    text += f"\nprice from {price.source}"
    if ignored:
        text += "\nignored (not taken by this endpoint): " + "; ".join(ignored)
    results = run_requests(run.node, provider, requests, unique_id, run.max_concurrency, text)
    nsfw_check(run.node, results)
    report = build_report(provider.name, run.node, run.endpoint, results, estimate=estimate,
                          ignored=ignored, started=started, num_images=num_images,
                          size=f"{size[0]}*{size[1]}", loras=lora_list.describe(loras), spend=spend_report)
    return io.NodeOutput(torch.cat([r.images for r in results], dim=0), report)


def check_spend(run: HostedRun, provider, preps) -> dict:
    """The daily spend limit (core/hosted/spend.py) before anything is sent: the requests that
    are not cached or resumed, counted at their estimate (or their family's rate where the
    endpoint publishes none), plus today's ledger spend, against the limit. The report's entry."""
    try:
        limit = spend.daily_limit(user_dir())
    except HostedError as e:
        raise for_user(e, run.node) from None
    free = spend.free_requests(provider, preps)
    counted = [pricing.counted_for(run.endpoint, p.params, p.size, provider.price)
               for p, f in zip(preps, free) if not f]
    usd = None if any(c.usd is None for c in counted) else round(sum(c.usd for c in counted), 6)
    basis = f"{len(counted)} of {len(preps)} request(s) paid" + (f": {counted[0].basis} each" if counted else "")
    this_run = pricing.PriceEstimate(usd, basis, estimated=any(c.estimated for c in counted))
    spent = spend.spent_today(provider.state_dir)
    settings = relative_to_comfyui(str(spend.settings_file(user_dir())))
    spend.check(run.node, limit, spent, this_run, settings)
    return {"today_usd": spent, "limit_usd": limit.usd, "limit_source": limit.source, "counted_usd": usd,
            "counted_basis": basis, "estimated": this_run.estimated, "free_requests": sum(free)}


def spend_text(report: dict) -> str:
    counted = "" if report["counted_usd"] is None else f"; this run counts {spend.money(report['counted_usd'])}"
    if report["estimated"]:
        counted += ", estimated at the family rate"
    if report["limit_usd"] is None:
        return f"\n(no published price{counted})" if report["estimated"] else ""
    return "\n" + spend.limit_line(report["today_usd"], report["limit_usd"]) + counted


def nsfw_check(node: str, results) -> None:
    """Raise if the provider's safety checker flagged any output (after caching: re-running
    the same inputs reads the cache, so nothing paid is lost). Flagged outputs are blank or
    black, never silently passed on."""
    lines = []
    for result in results:
        message = nsfw_message(result.meta)
        if message:
            lines.append(f"source image {result.meta.get('index', 0) + 1}: {message}")
    if lines:
        raise NSFWBlocked(f"{node}: blocked by the provider's NSFW safety checker. " + " ".join(lines)
                          + " The unflagged outputs of these requests are kept in the result cache "
                          "(user/fluxfill/cache).")


def build_report(provider: str, node: str, endpoint: str, results, *, estimate, ignored: list[str],
                 started: float, **extra) -> str:
    costs = [r.meta.get("cost_usd") for r in results]
    actual = None if any(c is None for c in costs) else round(sum(costs), 6)
    notes = []
    for result in results:
        image_no = result.meta.get("index", 0) + 1
        if result.meta.get("cached"):
            notes.append(f"image {image_no}: result cache hit (request {result.meta.get('request_id')}, "
                         f"no new request, no cost; force_new sends a new one)")
        elif result.meta.get("resumed"):
            notes.append(f"image {image_no}: resumed request {result.meta.get('request_id')} from the "
                         f"journal (not paid twice)")
        notes.extend(f"image {image_no}: {note}" for note in result.meta.get("notes", []))
    report = report_json(provider, results, node=node, endpoint=endpoint, requests=len(results),
                         request_ids=[r.meta.get("request_id") for r in results],
                         seeds=[r.meta.get("seeds") for r in results],
                         nsfw=[r.meta.get("nsfw") for r in results],
                         estimate_usd=estimate.usd, estimate_basis=estimate.basis,
                         cost_usd=actual, ignored=ignored, notes=notes,
                         total_s=round(time.monotonic() - started, 3), **extra)
    return relative_to_comfyui(report)     # notes may quote a file of this machine


def estimate_text(endpoint: str, estimate, requests: int, num_images: int, size: tuple[int, int]) -> str:
    width, height = size
    return (f"{endpoint}: {requests} request(s) × {num_images} image(s) at {width}x{height} — estimated "
            f"{estimate.text()} (cached results are free)")


def parse_json_widget(node: str, name: str, text: str, kind: type, example: str):
    """A JSON STRING widget: empty means empty; errors name the widget and show an example."""
    text = (text or "").strip()
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except ValueError as e:
        raise HostedValidationError(f"{node}: {name} is not valid JSON ({e}). Example: {example}") from None
    if kind is list and isinstance(value, dict):
        value = [value]
    if not isinstance(value, kind):
        raise HostedValidationError(f"{node}: {name} must be a JSON {'list' if kind is list else 'object'}. "
                         f"Example: {example}")
    return value
