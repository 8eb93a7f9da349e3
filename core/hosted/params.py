"""Validation and payloads against the endpoint table (endpoint_table.py).

`validate` checks every field and fills in the endpoint's defaults, `split_params` sorts
a node's widgets into those an endpoint takes and those it does not, `build_payload` makes
the provider's JSON body, `output_size` says what size the endpoint will produce.

Image-valued sub-fields (fill_image.fill_image_url, controlnets[].control_image_url, …) take
either a URL string (https/http/data:) or an image (torch tensor [H,W,C] / numpy / PIL); the
provider encodes and uploads images (`map_images`) before `build_payload`.
"""
from __future__ import annotations

import math
import numbers
from typing import Any
from collections.abc import Callable

from .endpoint_table import CONTROL_MODES, FIELDS, IMAGE_SIZE_PRESETS, Endpoint, Rule, canonical_name, get
from .errors import HostedValidationError


# ---------------------------------------------------------------- value checks
def _err(ep: Endpoint, name: str, msg: str):
    return HostedValidationError(f"{ep.id}: {name} {msg}", field=name)


def number_text(x):
    """A rule bound or value as people write it: 35.0 -> 35."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


def _int(ep, name, v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise _err(ep, name, f"must be an integer, got {type(v).__name__}")
    if not isinstance(v, numbers.Integral):
        if not math.isfinite(v) or not float(v).is_integer():
            raise _err(ep, name, f"must be a whole number, got {v}")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _err(ep, name, f"must be between {number_text(lo)} and {number_text(hi)}, got {v}")
    return v


def _float(ep, name, v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise _err(ep, name, f"must be a number, got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v):
        raise _err(ep, name, f"must be a finite number, got {v}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _err(ep, name, f"must be between {number_text(lo)} and {number_text(hi)}, got {number_text(v)}")
    return v


def _bool(ep, name, v):
    if isinstance(v, bool):
        return v
    if hasattr(v, "dtype") and str(getattr(v, "dtype", "")) == "bool":
        return bool(v)
    raise _err(ep, name, f"must be true or false, got {v!r}")


def _str(ep, name, v):
    if not isinstance(v, str):
        raise _err(ep, name, f"must be a string, got {type(v).__name__}")
    return v


def is_image_value(v) -> bool:
    """An in-memory image (tensor / ndarray / PIL) rather than a URL."""
    return hasattr(v, "shape") or hasattr(v, "getbands")


def _image_ref(ep, name, v):
    if is_image_value(v):
        return v
    if isinstance(v, str) and v.split(":", 1)[0] in ("https", "http", "data", "sha256") and len(v) > 8:
        return v
    raise _err(ep, name, "must be an image or an https:// / data: URL")


def _size_pair(ep, name, v, lo, hi):
    if isinstance(v, str) and name == "size":
        sep = "*" if "*" in v else ("x" if "x" in v.lower() else None)
        parts = v.lower().split(sep) if sep else []
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise _err(ep, name, f"must look like \"1024*768\", got {v!r}")
        w, h = (int(p) for p in parts)
    elif isinstance(v, dict):
        if set(v) - {"width", "height"} or len(v) != 2:
            raise _err(ep, name, "must be {width, height}")
        w, h = v["width"], v["height"]
    elif isinstance(v, (tuple, list)) and len(v) == 2:
        w, h = v
    else:
        raise _err(ep, name, f"must be {{width, height}} or (width, height), got {v!r}")
    w = _int(ep, f"{name}.width", w, lo, hi)
    h = _int(ep, f"{name}.height", h, lo, hi)
    return w, h


def _image_size(ep, name, v, rule):
    if isinstance(v, str):
        if v not in IMAGE_SIZE_PRESETS:
            raise _err(ep, name, f"must be one of {', '.join(IMAGE_SIZE_PRESETS)} or {{width, height}}, got {v!r}")
        return v
    w, h = _size_pair(ep, name, v, 1, 14142)
    return {"width": w, "height": h}


def _loras(ep, name, v, rule):
    if not isinstance(v, (list, tuple)):
        raise _err(ep, name, "must be a list of {path, scale}")
    if rule.max_items is not None and len(v) > rule.max_items:
        raise _err(ep, name, f"takes at most {rule.max_items} LoRAs, got {len(v)}")
    out = []
    for i, item in enumerate(v):
        where = f"{name}[{i}]"
        if not isinstance(item, dict) or set(item) - {"path", "scale"} or "path" not in item:
            raise _err(ep, where, "must be {path, scale}")
        path = item["path"]
        if not isinstance(path, str) or not path.strip():
            raise _err(ep, f"{where}.path", "must be a non-empty URL or Hugging Face repo path")
        scale = item.get("scale", 1.0)
        if isinstance(scale, dict):
            if not rule.per_layer:
                raise _err(ep, f"{where}.scale", "must be a number here (per-layer scale dicts are "
                           "only taken by fal-ai/flux-general/inpainting)")
            if not scale:
                raise _err(ep, f"{where}.scale", "per-layer dict is empty")
            scale = {str(k): _float(ep, f"{where}.scale[{k}]", s, rule.scale_min, rule.scale_max)
                     for k, s in scale.items()}
        else:
            scale = _float(ep, f"{where}.scale", scale, rule.scale_min, rule.scale_max)
        out.append({"path": path.strip(), "scale": scale})
    return out


def _obj(ep, where, v, spec: dict[str, tuple]):
    """Check a dict against spec {key: (checker, required)}; unknown keys are errors."""
    if not isinstance(v, dict):
        raise _err(ep, where, f"must be an object with keys {', '.join(spec)}")
    unknown = set(v) - set(spec)
    if unknown:
        raise _err(ep, where, f"has unknown keys {sorted(unknown)}; it takes {', '.join(spec)}")
    out = {}
    for key, (check, required) in spec.items():
        if v.get(key) is None:
            if required:
                raise _err(ep, f"{where}.{key}", "is required")
            continue
        out[key] = check(ep, f"{where}.{key}", v[key])
    return out


def _frac(lo, hi):
    return lambda ep, n, v: _float(ep, n, v, lo, hi)


def _cn_common(rule: Rule) -> dict:
    """The fields of a controlnet and of a union's control; conditioning_scale's range is the
    table's (rule.scale_min/scale_max: 0-2 on flux-general)."""
    return {
        "control_image_url": (_image_ref, True),
        "conditioning_scale": (_frac(rule.scale_min, rule.scale_max), False),
        "mask_image_url": (_image_ref, False),
        "mask_threshold": (_frac(0.01, 0.99), False),
        "start_percentage": (_frac(0, 1), False),
        "end_percentage": (_frac(0, 1), False),
    }


def _controlnet(rule: Rule) -> dict:
    return {"path": (_str, True), "config_url": (_str, False), "variant": (_str, False), **_cn_common(rule)}


def _union_input(rule: Rule) -> dict:
    return {**_cn_common(rule), "control_mode": (lambda ep, n, v: _choice(ep, n, v, CONTROL_MODES), True)}


_FILL_IMAGE = {"fill_image_url": (_image_ref, True), "in_context_fill": (_bool, False),
               "use_prompt": (_bool, False)}


def _choice(ep, name, v, choices):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool) and str(v) in choices:
        v = str(v)   # safety_tolerance 2 -> "2"
    if v not in choices:
        raise _err(ep, name, f"must be one of {', '.join(map(str, choices))}, got {v!r}")
    return v


def _list_of(ep, name, v, rule, check):
    if not isinstance(v, (list, tuple)):
        raise _err(ep, name, "must be a list")
    if rule.max_items is not None and len(v) > rule.max_items:
        raise _err(ep, name, f"takes at most {rule.max_items} item(s), got {len(v)}")
    return [check(f"{name}[{i}]", item) for i, item in enumerate(v)]


def _union(ep, where, item, rule: Rule):
    out = _obj(ep, where, item, {"path": (_str, True), "config_url": (_str, False),
                                  "variant": (_str, False), "controls": (lambda e, n, x: x, True)})
    controls = out["controls"]
    if not isinstance(controls, (list, tuple)) or not controls:
        raise _err(ep, f"{where}.controls", "must be a non-empty list")
    spec = _union_input(rule)
    out["controls"] = [_obj(ep, f"{where}.controls[{i}]", c, spec) for i, c in enumerate(controls)]
    return out


def _check(ep: Endpoint, name: str, v, rule: Rule):
    t = FIELDS[name].type
    if t == "int":
        return _int(ep, name, v, rule.min, rule.max)
    if t == "float":
        return _float(ep, name, v, rule.min, rule.max)
    if t == "bool":
        return _bool(ep, name, v)
    if t == "str":
        return _str(ep, name, v)
    if t == "enum":
        return _choice(ep, name, v, rule.choices)
    if t == "image_size":
        return _image_size(ep, name, v, rule)
    if t == "size":
        w, h = _size_pair(ep, name, v, rule.min, rule.max)
        return f"{w}*{h}"
    if t == "loras":
        return _loras(ep, name, v, rule)
    if t == "fill_image":
        return _obj(ep, name, v, _FILL_IMAGE)
    if t == "controlnets":
        return _list_of(ep, name, v, rule, lambda where, item: _obj(ep, where, item, _controlnet(rule)))
    if t == "controlnet_unions":
        return _list_of(ep, name, v, rule, lambda where, item: _union(ep, where, item, rule))
    raise AssertionError(t)


# ---------------------------------------------------------------- public API
def split_params(endpoint_id: str, params: dict) -> tuple[dict, dict]:
    """(taken, ignored): the params `endpoint_id` takes and those it does not (e.g. a node's
    widgets for another endpoint). Aliases are resolved; None values count as unset."""
    ep = get(endpoint_id)
    taken, ignored = {}, {}
    for k, v in params.items():
        name = canonical_name(k)
        (taken if ep.takes(name) else ignored)[name] = v
    return taken, ignored


def validate(endpoint_id: str, params: dict) -> dict:
    """Check every field against `endpoint_id`'s table and fill in the endpoint's defaults.

    Raises HostedValidationError naming the field and its range for bad values, unknown
    fields, and fields the endpoint does not take. None means "unset". Returns a new dict
    with canonical names (idempotent: validate(validate(p)) == validate(p))."""
    ep = get(endpoint_id)
    out: dict[str, Any] = {}
    for k, v in params.items():
        name = canonical_name(k)
        if name not in FIELDS:
            raise HostedValidationError(f"{ep.id}: unknown parameter {k!r}; it takes "
                                        f"{', '.join(ep.rules)}", field=k)
        if not ep.takes(name):
            raise HostedValidationError(f"{ep.id}: does not take {name!r}; it takes "
                                        f"{', '.join(ep.rules)}", field=name)
        if name in out and v is not None:
            raise HostedValidationError(f"{ep.id}: {name} given twice (as {k!r} and its alias)", field=name)
        if v is None:
            continue
        out[name] = _check(ep, name, v, ep.rules[name])
    for name, rule in ep.rules.items():
        if name not in out:
            if rule.required and name == "prompt":
                raise HostedValidationError(
                    f"{ep.id}: prompt is required (write what to paint; fal-ai/flux-lora-fill "
                    f"accepts an empty prompt)", field="prompt")
            if rule.required:
                raise HostedValidationError(f"{ep.id}: {name} is required", field=name)
            if rule.default is not None:
                out[name] = list(rule.default) if isinstance(rule.default, list) else rule.default
    if ep.rules.get("prompt", Rule()).required and not str(out.get("prompt", "")).strip():
        raise HostedValidationError(f"{ep.id}: prompt must not be empty (write what to paint; "
                                    f"fal-ai/flux-lora-fill accepts an empty prompt)", field="prompt")
    return out


def map_images(params: dict, fn: Callable[[Any], str]) -> dict:
    """A copy of validated params with every in-memory image replaced by fn(image)."""
    def conv(v):
        return fn(v) if is_image_value(v) else v

    out = dict(params)
    if isinstance(out.get("fill_image"), dict):
        fi = dict(out["fill_image"])
        fi["fill_image_url"] = conv(fi["fill_image_url"])
        out["fill_image"] = fi
    for key in ("controlnets", "controlnet_unions"):
        if isinstance(out.get(key), list):
            items = []
            for item in out[key]:
                item = dict(item)
                for k in ("control_image_url", "mask_image_url"):
                    if k in item:
                        item[k] = conv(item[k])
                if "controls" in item:
                    item["controls"] = [{k: conv(x) if k.endswith("_url") else x for k, x in c.items()}
                                        for c in item["controls"]]
                items.append(item)
            out[key] = items
    return out


def build_payload(endpoint_id: str, validated: dict, image_url: str, mask_url: str) -> dict:
    """The JSON body for the provider: image/mask under the endpoint's own key names, then
    every validated field (only fields this endpoint takes; empty lists and an empty optional
    prompt are omitted). No key is ever part of a payload."""
    ep = get(endpoint_id)
    body: dict[str, Any] = {ep.image_key: image_url, ep.mask_key: mask_url}
    for name, v in validated.items():
        if not ep.takes(name):
            raise HostedValidationError(f"{ep.id}: does not take {name!r}", field=name)
        if is_image_value(v) or any(is_image_value(x) for x in _leaves(v)):
            raise HostedValidationError(f"{ep.id}: {name} still holds an image; upload it first "
                                        f"(map_images)", field=name)
        if v == [] or (name == "prompt" and v == "" and not ep.rules[name].required):
            continue
        body[name] = v
    return body


def _leaves(v):
    if isinstance(v, dict):
        for x in v.values():
            yield from _leaves(x)
    elif isinstance(v, list):
        for x in v:
            yield from _leaves(x)
    else:
        yield v


def output_size(endpoint_id: str, validated: dict, input_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) the endpoint will produce: image_size / size when set, else the input's."""
    v = validated.get("image_size") or validated.get("size")
    if isinstance(v, str) and v in IMAGE_SIZE_PRESETS:
        return IMAGE_SIZE_PRESETS[v]
    if isinstance(v, dict):
        return v["width"], v["height"]
    if isinstance(v, str) and "*" in v:
        w, h = v.split("*")
        return int(w), int(h)
    return input_size

