"""HTTP routes for the FluxFill web extension, thin over core/hosted (also served under /api).

GET  /fluxfill/keys       → {"fal": bool, "wavespeed": bool}: configured or not, never the key
POST /fluxfill/keys       {provider, key} → stores the key in <user dir>/fluxfill/keys.json
                          (write-only; an empty key removes it); answers the flags only
POST /fluxfill/price      {node, endpoint, width, height, num_images, batch} → estimated cost,
                          with today's spend and the daily limit (`spend`, as GET /fluxfill/limit);
                          `source`: "fal pricing API (fetched <date>)" or "built-in table (...)"
GET  /fluxfill/limit      → {limit_usd, source ("env" | "settings" | null), stored_usd, env_var,
                          env_overrides, today_usd, text} (the daily spend limit; it may be shown)
POST /fluxfill/limit      {limit_usd: number | null} → stores it in <user dir>/fluxfill/settings.json
GET  /fluxfill/endpoints  → every hosted endpoint: parameters, defaults, ranges, price,
                          which node widget sets which parameter, and the image_size presets

`register()` adds them to the running PromptServer; the pack's entry point (nodes/__init__.py)
is the one place that calls it. Without a server (tests, scripts) it does nothing.
"""
from __future__ import annotations

import logging
import os
import sys

from ..core.hosted import endpoint_table, keys, live_prices, pricing, spend
from ..core.hosted.errors import HostedError
from ..core.hosted.presentation import describe
from . import fal_fill, wavespeed_fill
from .hosted_run import user_dir
from .node_errors import relative_to_comfyui

log = logging.getLogger("fluxfill.hosted")
MAX_KEY_LENGTH = 1024
NODES = {"FalFill": "fal", "WaveSpeedFill": "wavespeed"}
WIDGET_FIELDS = {"FalFill": fal_fill.WIDGET_FIELDS, "WaveSpeedFill": wavespeed_fill.WIDGET_FIELDS}
REGISTERED = False


def _state_dir():
    return os.path.join(user_dir(), "fluxfill")


def key_flags() -> dict:
    out = {}
    for provider in keys.ENV_VARS:
        try:
            keys.load_key(provider, user_dir())
            out[provider] = True
        except Exception:  # noqa: BLE001 - missing or unreadable: not configured
            out[provider] = False
    return out


def store_key(body) -> dict:
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object {provider, key}")
    provider, key = body.get("provider"), body.get("key")
    if provider not in keys.ENV_VARS:
        raise ValueError(f"provider must be one of {', '.join(keys.ENV_VARS)}")
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or any(c.isspace() for c in key.strip()):
        raise ValueError("key must be a string without spaces or line breaks")
    keys.save_key(provider, key, user_dir())
    log.info("FluxFill: %s key %s in the key file", provider, "stored" if key.strip() else "removed")
    return key_flags()


def price(body) -> dict:
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object {node, endpoint, width, height, num_images, batch}")
    node = body.get("node", "FalFill")
    if node not in NODES:
        raise ValueError(f"node must be one of {', '.join(NODES)}")
    endpoint = body.get("endpoint") or endpoint_table.endpoints_for(NODES[node])[0]
    if endpoint not in endpoint_table.ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; "
                         f"{node} takes {', '.join(endpoint_table.endpoints_for(NODES[node]))}")
    if endpoint_table.get(endpoint).provider != NODES[node]:
        raise ValueError(f"{endpoint} is not an endpoint of {node}")
    nums = {}
    for name, lo, hi in (("width", 1, 16384), ("height", 1, 16384), ("num_images", 1, 4), ("batch", 1, 4096)):
        v = body.get(name, 1 if name in ("num_images", "batch") else None)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"{name} must be an integer between {lo} and {hi}")
        nums[name] = v
    live = live_price(endpoint)
    one = pricing.estimate(endpoint, nums["width"], nums["height"], nums["num_images"], live.price)
    total = pricing.for_requests(one, nums["batch"])
    return {"node": node, "endpoint": endpoint, "usd": total.usd, "basis": total.basis,
            "text": total.text(), "per_request_usd": one.usd,
            "source": live.source, "live": live.live, "spend": limit_info()}


def live_price(endpoint: str) -> live_prices.PriceInfo:
    """fal's pricing API (cached a day in the user folder; one short try), else the table."""
    client = None
    if endpoint_table.get(endpoint).provider == "fal":
        from ..core.hosted.fal import FalClient
        try:
            client = FalClient.from_env(user_dir())
        except HostedError as e:        # no key (or a broken key file): the table
            why = f"fal pricing API not asked ({type(e).__name__})"
            return live_prices.PriceInfo(None, live_prices.table_source(endpoint, why))
    return live_prices.for_endpoint(endpoint, _state_dir(), client)


def limit_info() -> dict:
    """The daily spend limit and today's spend; an invalid limit is answered as `error`."""
    out = {"env_var": spend.ENV_VAR, "limit_usd": None, "source": None, "stored_usd": None,
           "env_overrides": False}
    try:
        limit = spend.daily_limit(user_dir())
        out.update(limit_usd=limit.usd, source=limit.source, stored_usd=limit.stored_usd,
                   env_overrides=limit.source == "env")
    except HostedError as e:
        out["error"] = relative_to_comfyui(str(e))
    out["today_usd"] = spend.spent_today(_state_dir())
    # the status panel's line (empty without a limit)
    out["text"] = "" if out["limit_usd"] is None else spend.limit_line(out["today_usd"], out["limit_usd"])
    return out


def store_limit(body) -> dict:
    if not isinstance(body, dict) or "limit_usd" not in body:
        raise ValueError("expected a JSON object {limit_usd: number of US dollars, or null for no limit}")
    spend.save_limit(user_dir(), body["limit_usd"])      # HostedValidationError is a ValueError
    log.info("FluxFill: daily spend limit %s", "removed" if body["limit_usd"] in (None, "") else "stored")
    return limit_info()


def endpoint_info() -> dict:
    """Everything the web extension shows: per endpoint its parameters (defaults, ranges),
    price and title; per node which widget sets which field; provider titles; presets."""
    out = {}
    for endpoint_id, endpoint in endpoint_table.ENDPOINTS.items():
        node = next(n for n, p in NODES.items() if p == endpoint.provider)
        out[endpoint_id] = {"provider": endpoint.provider, "node": node, "title": endpoint.title,
                            "price": pricing.price_text(endpoint_id), "note": endpoint.note,
                            "params": describe(endpoint_id)}
    return {"endpoints": out, "widgets": WIDGET_FIELDS, "nodes": NODES,
            "providers": {name: {"title": title, "env_var": keys.ENV_VARS[name]}
                          for name, title in endpoint_table.PROVIDER_TITLES.items()},
            "image_size_presets": {k: list(v) for k, v in endpoint_table.IMAGE_SIZE_PRESETS.items()}}


def register() -> bool:
    """Add the routes to the running PromptServer (once). False when there is none."""
    global REGISTERED
    if REGISTERED:
        return True
    if "server" not in sys.modules:      # not inside a running ComfyUI (tests, scripts)
        return False
    try:
        from server import PromptServer
    except ImportError:
        return False
    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        return False
    from aiohttp import web
    routes = instance.routes

    def answer(fn, *args):
        try:
            return web.json_response(fn(*args))
        except ValueError as e:
            return web.json_response({"error": str(e)}, status=400)

    async def body_of(request):
        try:
            return await request.json()
        except ValueError:
            return None

    @routes.get("/fluxfill/keys")
    async def get_keys(request):
        return answer(key_flags)

    @routes.post("/fluxfill/keys")
    async def post_keys(request):
        return answer(store_key, await body_of(request))

    @routes.post("/fluxfill/price")
    async def post_price(request):     # may wait on fal's pricing API: off the event loop
        import asyncio
        body = await body_of(request)
        return await asyncio.get_running_loop().run_in_executor(None, answer, price, body)

    @routes.get("/fluxfill/limit")
    async def get_limit(request):
        return answer(limit_info)

    @routes.post("/fluxfill/limit")
    async def post_limit(request):
        return answer(store_limit, await body_of(request))

    @routes.get("/fluxfill/endpoints")
    async def get_endpoints(request):
        return answer(endpoint_info)

    REGISTERED = True
    return True
