"""LORA_STACK: the de-facto stack format (Efficiency, Comfyroll, Easy-Use) plus hosted paths.

A stack is a list of `(lora_name, strength_model, strength_clip)` tuples, names relative to
models/loras; entries named "None" are ignored. FluxFill keeps that shape so other packs'
stack consumers read FluxFill stacks unchanged, and carries the hosted path (URL or
Hugging Face repo, for fal.ai / WaveSpeed fills) inside the name: `LoraName` is a `str`
whose value is the local file name (or, for a hosted-only row, the hosted path itself) and
which also has `.local` and `.hosted` attributes. Pure: no comfy imports.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Extensions of LoRA files in models/loras; a plain name carrying one of these is a local file.
LORA_FILE_EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin")
_HF_REPO = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class LoraName(str):
    """A LoRA name that reads as a plain string (the local file, else the hosted path)."""

    local: str | None
    hosted: str | None

    def __new__(cls, local: str | None = None, hosted: str | None = None):
        local = local or None
        hosted = hosted or None
        if local is None and hosted is None:
            raise ValueError("a LoRA needs a local file name or a hosted path")
        obj = super().__new__(cls, local if local is not None else hosted)
        obj.local = local
        obj.hosted = hosted
        return obj

    def __reduce__(self):  # copy / deepcopy / pickle keep both paths
        return (LoraName, (self.local, self.hosted))

    def __repr__(self):
        return f"LoraName(local={self.local!r}, hosted={self.hosted!r})"


@dataclass(frozen=True)
class LoraEntry:
    local: str | None
    hosted: str | None
    strength_model: float
    strength_clip: float

    @property
    def label(self) -> str:
        return self.local or self.hosted or ""


def is_hosted_path(name: str) -> bool:
    """An http(s) URL, or a Hugging Face repo "owner/name" that is not a LoRA file name."""
    name = name.strip()
    if name.lower().startswith(("http://", "https://")):
        return True
    return bool(_HF_REPO.match(name)) and not name.lower().endswith(LORA_FILE_EXTENSIONS)


def _is_none(name) -> bool:
    return name is None or str(name).strip() in ("", "None")


def normalize_stack(stack) -> list[LoraEntry]:
    """Entries of a LORA_STACK from FluxFill or another pack; "None" and empty names dropped.

    This is what `FillRequest.loras` holds for every fill (local and hosted); a list of
    entries passes through unchanged."""
    entries = []
    for item in stack or []:
        if isinstance(item, LoraEntry):      # already normalized (FillRequest.loras)
            entries.append(item)
            continue
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise ValueError(f"LORA_STACK entry {item!r} is not a (lora_name, strength_model, "
                             "strength_clip) tuple")
        name = item[0]
        strength_model = float(item[1])
        strength_clip = float(item[2]) if len(item) > 2 else strength_model
        if isinstance(name, str) and hasattr(name, "local") and hasattr(name, "hosted"):
            # a LoraName (duck-typed: a second copy of this module makes another class)
            entries.append(LoraEntry(name.local, name.hosted, strength_model, strength_clip))
            continue
        if _is_none(name):
            continue
        name = str(name).strip()
        if is_hosted_path(name):
            entries.append(LoraEntry(None, name, strength_model, strength_clip))
        else:
            entries.append(LoraEntry(name, None, strength_model, strength_clip))
    return entries


def to_tuples(entries: list[LoraEntry]) -> list[tuple]:
    return [(LoraName(e.local, e.hosted), e.strength_model, e.strength_clip) for e in entries]


def stack_from_rows(rows, incoming=None) -> list[tuple]:
    """The incoming stack (kept first: it is upstream) followed by the active rows.

    rows: dicts with keys on, local, hosted, strength_model, strength_clip."""
    entries = normalize_stack(incoming)
    for row in rows:
        if not row.get("on", True):
            continue
        local = None if _is_none(row.get("local")) else str(row["local"]).strip()
        hosted = None if _is_none(row.get("hosted")) else str(row["hosted"]).strip()
        if local is None and hosted is None:
            continue
        entries.append(LoraEntry(local, hosted, float(row.get("strength_model", 1.0)),
                                 float(row.get("strength_clip", 1.0))))
    return to_tuples(entries)


def local_loras(stack) -> list[LoraEntry]:
    """Entries to apply with ComfyUI's LoraLoader; every entry must name a local file."""
    entries = normalize_stack(stack)
    for e in entries:
        if e.local is None:
            raise ValueError(f"LoRA '{e.hosted}' is a hosted path: it cannot be applied locally "
                             "unless a local file is named too (LoraStack: pick the file in the "
                             "row's local dropdown, or remove the row for local fills)")
    return entries


def hosted_loras(stack, layer_scales: dict | None = None) -> list[dict]:
    """`[{"path", "scale"}]` for fal.ai / WaveSpeed; every entry must carry a hosted path.

    The one way a stack becomes hosted LoRAs. layer_scales (fal's flux-general only):
    {LoRA position (1 = first) or hosted path: {layer: scale}} replaces those LoRAs' scale."""
    out = []
    for e in normalize_stack(stack):
        if e.hosted is None:
            raise ValueError(f"LoRA '{e.local}' is a local file only: hosted fills need a hosted path "
                             "(URL or Hugging Face repo) in LoraStack's hosted field for that row")
        out.append({"path": e.hosted, "scale": e.strength_model})
    for key, scales in (layer_scales or {}).items():
        position = int(key) - 1 if str(key).isdigit() else next(
            (i for i, lora in enumerate(out) if lora["path"] == key), None)
        if position is None or not 0 <= position < len(out):
            raise ValueError(f"lora_layer_scales key {key!r} names no LoRA of lora_stack "
                             f"(use 1..{len(out)} or a hosted path)")
        if not isinstance(scales, dict):
            raise ValueError(f"lora_layer_scales[{key!r}] must be an object {{layer: scale}}")
        out[position] = {"path": out[position]["path"], "scale": scales}
    return out


def describe(stack) -> str:
    """One readable line per active LoRA (the LoraStack node's text output)."""
    entries = normalize_stack(stack)
    if not entries:
        return "(no LoRAs)"
    lines = []
    for i, e in enumerate(entries, 1):
        line = f"{i}. {e.label}  model {e.strength_model:g}, clip {e.strength_clip:g}"
        if e.local and e.hosted:
            line += f"  (hosted: {e.hosted})"
        elif e.hosted:
            line += "  (hosted only)"
        lines.append(line)
    return "\n".join(lines)
