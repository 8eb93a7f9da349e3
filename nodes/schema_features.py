"""Schema fields that only newer hosts have, used behind a feature check.

ComfyUI 0.30 adds `search_aliases` and `price_badge` to `io.Schema`; v0.3.75's Schema has
neither and would fail on the unknown keyword. `schema_extras(...)` keeps only the fields
this host's Schema declares, so one node definition loads cleanly on both.

Price badges are not used: the frontends (1.47.12, 1.58.1) draw them only for nodes marked as
API nodes (`api_node`), in Comfy credits, and API nodes are the host's own, paid through a Comfy
account; a hosted FluxFill node shows its price in the extension's panel instead.
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
