"""Tooltip and description text of the hosted nodes, written from the endpoint table.

Defaults, ranges, prices and which endpoint takes what live in core/hosted/endpoint_table.py
only; the hosted nodes' tooltips and descriptions are composed here from it, so a change in
the table shows everywhere (node, README, web extension) at once.
"""
from ..core.hosted import endpoint_table
from ..core.hosted.params import number_text
from ..core.hosted.pricing import price_text


def short_name(endpoint_id: str) -> str:
    """fal-ai/flux-lora-fill -> flux-lora-fill (the provider prefix is the node's already)."""
    return endpoint_id.split("/", 1)[1] if endpoint_id.startswith("fal-ai/") else endpoint_id


def names(endpoint_ids) -> str:
    shown = [short_name(e) for e in endpoint_ids]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def taking(endpoint_ids, field: str) -> list[str]:
    return [e for e in endpoint_ids if endpoint_table.get(e).takes(field)]


def who_takes(endpoint_ids, field: str) -> str:
    """"Only X takes it." or "Not taken by Y." — whichever list is shorter."""
    yes = taking(endpoint_ids, field)
    no = [e for e in endpoint_ids if e not in yes]
    if not no:
        return ""
    if len(yes) <= len(no):
        return f"Only {names(yes)} take{'s' if len(yes) == 1 else ''} it."
    return f"Not taken by {names(no)}."


def only_prefix(endpoint_ids, field: str) -> str:
    """"flux-pro/v1/fill only: " / "flux-lora-fill and flux-lora/inpainting: " for a widget
    that some endpoints take."""
    yes = taking(endpoint_ids, field)
    return f"{names(yes)}{' only' if len(yes) == 1 else ''}: "


def rule_range(rule) -> str:
    return f"{number_text(rule.min)}-{number_text(rule.max)}"


def defaults_text(endpoint_ids, field: str) -> str:
    """The endpoints' defaults and ranges of `field`: "28 (1-50)" when all agree, else
    "30 on flux-lora-fill (28-35), 3.5 on flux-lora/inpainting and flux-general/inpainting (0-35)"."""
    groups: dict[tuple, list[str]] = {}
    for endpoint_id in taking(endpoint_ids, field):
        rule = endpoint_table.get(endpoint_id).rules[field]
        groups.setdefault((rule.default, rule.min, rule.max), []).append(endpoint_id)
    parts = [f"{number_text(default)} ({number_text(low)}-{number_text(high)})" if len(groups) == 1
             else f"{number_text(default)} on {names(ids)} ({number_text(low)}-{number_text(high)})"
             for (default, low, high), ids in groups.items()]
    return ", ".join(parts)


def widest(endpoint_ids, field: str) -> tuple[float, float]:
    """(min, max) over the endpoints taking `field`: the widget's range; the chosen
    endpoint's own range is checked before anything is sent."""
    rules = [endpoint_table.get(e).rules[field] for e in taking(endpoint_ids, field)]
    return min(r.min for r in rules), max(r.max for r in rules)


def endpoint_choice_text(endpoint_ids) -> str:
    lines = [f"{short_name(e)}: {endpoint_table.get(e).title} (price: {price_text(e)})" for e in endpoint_ids]
    return "; ".join(lines)


def choice_defaults_text(endpoint_ids, field: str) -> str:
    """"jpeg on flux-lora-fill, flux-lora/inpainting and flux-pro/v1/fill; png on flux-general/inpainting"."""
    groups: dict = {}
    for endpoint_id in taking(endpoint_ids, field):
        groups.setdefault(endpoint_table.get(endpoint_id).rules[field].default, []).append(endpoint_id)
    if len(groups) == 1:
        return str(next(iter(groups)))
    return "; ".join(f"{default} on {names(ids)}" for default, ids in groups.items())
