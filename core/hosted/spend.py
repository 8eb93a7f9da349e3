"""The daily spend limit: what FluxFill may spend per calendar day (the machine's local date).

- The limit: `FLUXFILL_DAILY_LIMIT_USD` in the environment wins; else `daily_limit_usd` in
  `<user_dir>/fluxfill/settings.json` (beside keys.json; unlike a key it may be shown). None,
  empty or absent: no limit. An invalid value is an error naming where it came from.
- Today's spend: the ledger (`ledger.jsonl`) entries of today, each at its `cost_usd`, or its
  `estimate_usd` where the endpoint publishes no price (the family rate, pricing.counted_actual).
- `check`: before anything is uploaded or submitted, a run whose estimate would take today's
  spend over the limit raises SpendLimitExceeded. Requests served from the result cache or
  resumed from the journal cost nothing and are never counted (`free_requests`).
"""
from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from . import pricing
from .errors import HostedValidationError, SpendLimitExceeded
from .journal import Ledger
from .keys import write_private_json

ENV_VAR = "FLUXFILL_DAILY_LIMIT_USD"
SETTINGS_FILE = Path("fluxfill") / "settings.json"
KEY = "daily_limit_usd"
HOW_TO_RAISE_SETTING = "Settings › FluxFill › Daily spend limit"


@dataclass(frozen=True)
class Limit:
    usd: float | None          # None: no limit
    source: str | None         # "env" | "settings" | None
    stored_usd: float | None   # what settings.json holds (shown even when the env var wins)

    def how_to_raise(self, settings_file: str) -> str:
        if self.source == "env":
            return (f"the limit comes from the {ENV_VAR} environment variable (it overrides the "
                    f"setting): raise or unset it and restart ComfyUI")
        return (f"change it in {HOW_TO_RAISE_SETTING} (stored in {settings_file}), or set "
                f"{ENV_VAR} before starting ComfyUI")


def settings_file(user_dir: str | os.PathLike) -> Path:
    return Path(user_dir) / SETTINGS_FILE


def parse_limit(value, where: str) -> float | None:
    """A limit in USD (>= 0) from text or a number; None/"" = no limit."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        usd = float(value)
    except (TypeError, ValueError):
        raise HostedValidationError(f"{where} must be a number of US dollars (e.g. 5 or 2.50), or empty "
                                    f"for no limit; got {value!r}", field=KEY) from None
    if not math.isfinite(usd) or usd < 0:
        raise HostedValidationError(f"{where} must be 0 or more US dollars; got {value!r}", field=KEY)
    return usd


def _read_settings(user_dir) -> dict:
    f = settings_file(user_dir)
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise HostedValidationError(f"{f} is not valid JSON ({type(e).__name__}); expected "
                                    f'{{"{KEY}": 5.0}}', field=KEY) from None
    if not isinstance(data, dict):
        raise HostedValidationError(f'{f} must be a JSON object like {{"{KEY}": 5.0}}', field=KEY)
    return data


def daily_limit(user_dir: str | os.PathLike, env=None) -> Limit:
    env = os.environ if env is None else env
    stored = parse_limit(_read_settings(user_dir).get(KEY), f"{KEY} in {settings_file(user_dir)}")
    from_env = parse_limit(env.get(ENV_VAR), f"the {ENV_VAR} environment variable")
    if from_env is not None:
        return Limit(from_env, "env", stored)
    return Limit(stored, "settings" if stored is not None else None, stored)


def save_limit(user_dir: str | os.PathLike, value) -> Path:
    """Store the limit (None/"" removes it), keeping any other settings; mode 0600."""
    usd = parse_limit(value, "the daily spend limit")
    f = settings_file(user_dir)
    f.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = _read_settings(user_dir)
    except HostedValidationError:
        data = {}                       # a broken file is replaced by a good one
    if usd is None:
        data.pop(KEY, None)
    else:
        data[KEY] = usd
    return write_private_json(f, data)


def entry_cost(entry: dict) -> float:
    """What one ledger line counts: its cost, else its estimate (no published price), else the
    endpoint's family rate at 1 megapixel per image (older lines without an estimate)."""
    for name in ("cost_usd", "estimate_usd"):
        if isinstance(entry.get(name), (int, float)):
            return float(entry[name])
    try:
        n = int(entry.get("images") or 0)
        return pricing.counted_actual(entry.get("endpoint", ""), [(1024, 1024)] * n).usd or 0.0
    except (HostedValidationError, TypeError, ValueError):
        return 0.0


def spent_today(state_dir: str | os.PathLike, today: datetime.date | None = None) -> float:
    """The sum of today's (local date) ledger lines; only today's are read (the time index)."""
    today = today or datetime.date.today()
    start = datetime.datetime.combine(today, datetime.time()).timestamp()
    end = datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time()).timestamp()
    total = 0.0
    for entry in Ledger(state_dir).entries(since=start - 7200, until=end + 7200):
        try:
            day = datetime.date.fromtimestamp(float(entry.get("ts")))
        except (TypeError, ValueError, OverflowError, OSError):
            continue
        if day == today:
            total += entry_cost(entry)
    return round(total, 6)


def free_requests(provider, prepared: list) -> list[bool]:
    """Per Prepared: True when it costs nothing — its result is in the cache (unless the
    provider has force_new, which sends a new request) or its request is resumed from the
    journal (one indexed lookup per request)."""
    if provider.force_new:
        return [False] * len(prepared)
    out = []
    for prep in prepared:
        rec = provider.journal.latest(prep.input_hash)
        resumed = bool(rec and rec.get("status") in provider.journal.RESUMABLE and rec.get("request_id"))
        out.append(resumed or provider.cache.get(prep.input_hash) is not None)
    return out


def limit_line(today_usd: float, limit_usd: float) -> str:
    """The line the node's progress text and the hosted nodes' panel show when a limit is set."""
    return f"today: {money(today_usd)} of {money(limit_usd)} limit"


def money(usd: float | None) -> str:
    """$0.12, or $0.0350 where cents are not enough."""
    if usd is None:
        return "unknown"
    return f"${usd:.2f}" if abs(usd * 100 - round(usd * 100)) < 1e-6 else f"${usd:.4f}"


def check(node: str, limit: Limit, spent: float, run_estimate: pricing.PriceEstimate,
          settings_path: str) -> None:
    """Raise SpendLimitExceeded when today's spend plus this run's estimate passes the limit
    (an estimate at a family's rate says so in its basis; an unknown estimate is refused)."""
    if limit.usd is None:
        return
    usd = run_estimate.usd
    if usd is not None and spent + usd <= limit.usd + 1e-9:
        return
    what = (f"this run's estimate {money(usd)} ({run_estimate.basis})" if usd is not None
            else "this run's cost cannot be estimated")
    raise SpendLimitExceeded(
        f"{node}: refused by the daily spend limit of {money(limit.usd)}: today's FluxFill spend is "
        f"{money(spent)} and {what} would take it "
        f"over. Nothing was uploaded or submitted. To raise it: {limit.how_to_raise(settings_path)}. "
        f"Cached results and resumed requests cost nothing and are never refused.")
