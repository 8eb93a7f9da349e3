"""A small schema checker producing pydantic-style errors ({loc, msg, type}), enough for the
endpoints' published input schemas. A spec maps field name -> dict with keys:
type: str|int|float|bool|enum|object|list|any, required, ge, le, choices, fields (object),
items (list item spec), max_items, one_of (list of alternative specs)."""
from __future__ import annotations


def _err(loc, msg, kind, value):
    return {"loc": list(loc), "msg": msg, "type": kind, "input": value}


def check_value(value, spec: dict, loc: tuple) -> list[dict]:
    kind = spec.get("type", "any")
    if "one_of" in spec:
        for alt in spec["one_of"]:
            if not check_value(value, alt, loc):
                return []
        return [_err(loc, spec.get("msg", "Input matches none of the allowed forms"),
                     "union_error", value)]
    if kind == "str" and not isinstance(value, str):
        return [_err(loc, "Input should be a valid string", "string_type", value)]
    if kind == "bool" and not isinstance(value, bool):
        return [_err(loc, "Input should be a valid boolean", "bool_type", value)]
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return [_err(loc, "Input should be a valid integer", "int_type", value)]
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return [_err(loc, "Input should be a valid number", "float_type", value)]
    if kind == "enum" and value not in spec["choices"]:
        opts = ", ".join(repr(c) for c in spec["choices"])
        return [_err(loc, f"Input should be {opts}", "enum", value)]
    if kind in ("int", "float"):
        if "ge" in spec and value < spec["ge"]:
            return [_err(loc, f"Input should be greater than or equal to {spec['ge']}",
                         "greater_than_equal", value)]
        if "le" in spec and value > spec["le"]:
            return [_err(loc, f"Input should be less than or equal to {spec['le']}",
                         "less_than_equal", value)]
    if kind == "object":
        if not isinstance(value, dict):
            return [_err(loc, "Input should be a valid dictionary", "dict_type", value)]
        return check_object(value, spec.get("fields", {}), loc)
    if kind == "list":
        if not isinstance(value, list):
            return [_err(loc, "Input should be a valid list", "list_type", value)]
        if "max_items" in spec and len(value) > spec["max_items"]:
            return [_err(loc, f"List should have at most {spec['max_items']} items",
                         "too_long", value)]
        errors = []
        for i, item in enumerate(value):
            errors += check_value(item, spec.get("items", {}), loc + (i,))
        return errors
    return []


def check_object(payload: dict, fields: dict, loc: tuple = ("body",)) -> list[dict]:
    errors = []
    for name, spec in fields.items():
        if name not in payload or payload[name] is None:
            if spec.get("required"):
                errors.append(_err(loc + (name,), "Field required", "missing", None))
            continue
        errors += check_value(payload[name], spec, loc + (name,))
    return errors
