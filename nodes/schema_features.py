"""Schema fields that only newer hosts have, used behind a feature check.

ComfyUI 0.30 adds `search_aliases` and `price_badge` to `io.Schema`; v0.3.75's Schema has
neither and would fail on the unknown keyword. `schema_extras(...)` keeps only the fields
this host's Schema declares, so one node definition loads cleanly on both.
"""
import dataclasses

from comfy_api.v0_0_2 import io

SCHEMA_FIELDS = frozenset(field.name for field in dataclasses.fields(io.Schema))


def has_schema_field(name: str) -> bool:
    return name in SCHEMA_FIELDS


def schema_extras(**fields) -> dict:
    """The given Schema keyword arguments that this host supports (None values dropped)."""
    return {name: value for name, value in fields.items()
            if value is not None and has_schema_field(name)}


def price_badge(expr: str, widgets: list[str]):
    """A native price badge (0.30+): a JSONata expression over the node's widgets, or None
    where the host has no price badges."""
    if not has_schema_field("price_badge"):
        return None
    return io.PriceBadge(expr=expr, depends_on=io.PriceBadgeDepends(widgets=widgets))
