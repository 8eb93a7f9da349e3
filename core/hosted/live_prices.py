"""fal's published prices (its platform pricing API), cached for a day, else the built-in table.

    info = lookup("fal-ai/flux-lora/inpainting", state_dir, client.pricing)
    pricing.estimate(endpoint, w, h, n, price=info.price)      # info.price None: the table
    info.source   # "fal pricing API (fetched 2025-06-01)" | "built-in table ($0.035 per megapixel)"

`GET https://api.fal.ai/v1/models/pricing?endpoint_id=...` (key auth) answers
`{prices: [{endpoint_id, unit_price, unit, currency}]}`. The answer is kept in
`<state_dir>/prices.json` (atomic write) per endpoint for a day. A failed fetch (offline,
error, timeout: one try of at most FETCH_TIMEOUT_S) falls back to the table and is not tried
again for RETRY_AFTER_S in this process, so an offline machine pays the timeout once, not per
fill. Units known: megapixels (the table's rounding rule is kept: flux-pro and flux-general
round each image up to whole megapixels) and images; any other unit or a currency other than
USD: the table, and the source says why. A megapixel is 1024×1024 pixels (as in pricing.py).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import endpoint_table
from .endpoint_table import Price

log = logging.getLogger("fluxfill.hosted")
CACHE_FILE = "prices.json"
MAX_AGE_S = 24 * 3600
FETCH_TIMEOUT_S = 3.0
RETRY_AFTER_S = 600.0
MP_UNITS = {"megapixel", "megapixels", "mp", "mps", "1m pixels"}
IMAGE_UNITS = {"image", "images", "output", "outputs"}
_failed: dict[tuple[str, str], float] = {}     # (state_dir, endpoint) -> monotonic time
_lock = threading.Lock()


@dataclass(frozen=True)
class PriceInfo:
    price: Price | None     # the live figure as a table Price; None: the built-in table serves
    source: str             # where the figure came from, for the panel and the report

    @property
    def live(self) -> bool:
        return self.price is not None


def table_source(endpoint_id: str, why: str = "") -> str:
    text = f"built-in table ({endpoint_table.get(endpoint_id).price.source})"
    return f"{text}; {why}" if why else text


def to_price(endpoint_id: str, entry: dict, fetched_at: float) -> tuple[Price | None, str]:
    """A pricing-API entry as a table Price, or (None, why the table serves instead)."""
    try:
        usd = float(entry["unit_price"])
        unit = str(entry.get("unit") or "").strip()
        currency = str(entry.get("currency") or "USD").strip().upper()
    except (KeyError, TypeError, ValueError):
        return None, "fal pricing API answer not understood"
    if currency != "USD" or not usd >= 0:
        return None, f"fal pricing API quotes {entry.get('unit_price')} {currency}, not USD"
    table = endpoint_table.get(endpoint_id).price
    day = datetime.fromtimestamp(fetched_at).date().isoformat()
    if unit.lower() in MP_UNITS:
        kind = table.kind if table.kind in ("per_mp", "per_mp_ceil") else "per_mp"
        rounded = ", rounded up per image" if kind == "per_mp_ceil" else ""
        return Price(kind, usd, f"${usd:g} per megapixel{rounded} (fal pricing API, fetched {day})"), ""
    if unit.lower() in IMAGE_UNITS:
        return Price("per_image", usd, f"${usd:g} per image (fal pricing API, fetched {day})"), ""
    return None, f"fal pricing API unit {unit!r} not known to FluxFill"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _from_entry(endpoint_id: str, entry: dict) -> PriceInfo:
    price, why = to_price(endpoint_id, entry, float(entry.get("fetched_at") or 0))
    if price is None:
        return PriceInfo(None, table_source(endpoint_id, why))
    day = datetime.fromtimestamp(float(entry["fetched_at"])).date().isoformat()
    return PriceInfo(price, f"fal pricing API (fetched {day})")


def lookup(endpoint_id: str, state_dir, fetch, *, now: float | None = None) -> PriceInfo:
    """The price of `endpoint_id`: the cached pricing-API figure (under a day old), else a fresh
    one from `fetch(endpoint_id) -> [{endpoint_id, unit_price, unit, currency}]`, else the table.
    Never raises: any failure is the table, said so in `source`."""
    now = time.time() if now is None else now
    path = Path(state_dir) / CACHE_FILE
    with _lock:
        cached = _read(path).get(endpoint_id)
    if isinstance(cached, dict) and 0 <= now - float(cached.get("fetched_at") or -1e18) < MAX_AGE_S:
        return _from_entry(endpoint_id, cached)
    key = (str(Path(state_dir)), endpoint_id)
    with _lock:
        failed = _failed.get(key)
    if failed is not None and time.monotonic() - failed < RETRY_AFTER_S:
        return PriceInfo(None, table_source(endpoint_id, "fal pricing API unavailable"))
    try:
        answer = fetch(endpoint_id)
        entry = next(e for e in answer if isinstance(e, dict) and e.get("endpoint_id") == endpoint_id)
    except StopIteration:
        why = "fal pricing API lists no price for it"
    except Exception as e:  # noqa: BLE001 - offline or any error: the table serves
        why = f"fal pricing API unavailable ({type(e).__name__})"
        log.info("FluxFill: fal pricing API for %s: %s", endpoint_id, e)
    else:
        entry = {k: entry.get(k) for k in ("unit_price", "unit", "currency")} | {"fetched_at": now}
        with _lock:
            data = _read(path)
            data[endpoint_id] = entry
            try:
                _write(path, data)
            except OSError as e:
                log.warning("FluxFill: could not cache fal prices in %s: %s", path, e)
            _failed.pop(key, None)
        return _from_entry(endpoint_id, entry)
    with _lock:
        _failed[key] = time.monotonic()
    return PriceInfo(None, table_source(endpoint_id, why))


def for_endpoint(endpoint_id: str, state_dir, client) -> PriceInfo:
    """What estimates of `endpoint_id` use: fal's live price through `client` (a FalClient),
    else (WaveSpeed, no client) the table."""
    if client is None or not hasattr(client, "pricing"):
        return PriceInfo(None, table_source(endpoint_id))
    return lookup(endpoint_id, state_dir, client.pricing)


def for_provider(provider) -> PriceInfo:
    """What a hosted provider's estimates use: fal's live price, WaveSpeed's table."""
    return for_endpoint(provider.ep.id, provider.state_dir, provider.client if provider.name == "fal" else None)
