"""What a batch is made of: the rows of INPUTS, each row's mask, and each job's own workflow.

INPUTS is a folder of images, or a CSV / JSONL table:
- folder: every image (png, jpg, jpeg, webp, bmp, tif, tiff; sorted by name) except masks;
  the mask is the image's alpha channel (transparent = fill, LoadImage's rule) or a sibling
  `NAME.mask.png` (white = fill), which wins when both exist.
- table: columns `image` (required), `mask` (white = fill), `prompt`, `seed`, and any
  `NODE.INPUT` (a per-row --set). Paths are relative to the table's folder; empty cells
  are not set. CSV values are read like --set values (JSON if they parse), except
  `prompt` (always text); JSONL values keep their JSON types.
A row's `prompt` goes to every node with a text `prompt` input (the fill nodes), or else to
the only CLIPTextEncode's `text`; its `seed` to every literal `seed` / `noise_seed` input.
"""
import copy
import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import EXIT_USAGE, RunnerError
from .workflow import parse_value, set_input

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
MASK_SUFFIX = ".mask.png"
COLUMNS = ("image", "mask", "prompt", "seed")
BATCH_INPUT = "<batch image>"       # the loader's image in the job key (the file's hash counts)


@dataclass
class Row:
    index: int                      # 0-based, in INPUTS order
    image: Path
    mask: Path | None = None        # white = fill; None: the image's alpha (if any)
    prompt: str | None = None
    seed: int | None = None
    sets: dict = field(default_factory=dict)    # "NODE.INPUT" -> value
    where: str = ""                 # "rows.csv line 3", for messages

    def params(self) -> dict:
        """The row's own parameters, as the manifest and results.csv show them."""
        out = {k: v for k, v in (("prompt", self.prompt), ("seed", self.seed)) if v is not None}
        return {**out, **self.sets}


def is_mask_file(p: Path) -> bool:
    return p.name.lower().endswith(MASK_SUFFIX)


def read_inputs(path) -> list[Row]:
    p = Path(path)
    if p.is_dir():
        rows = folder_rows(p)
    elif p.suffix.lower() == ".csv":
        rows = table_rows(p, csv_records(p))
    elif p.suffix.lower() in (".jsonl", ".ndjson"):
        rows = table_rows(p, jsonl_records(p))
    elif not p.exists():
        raise RunnerError(f"--batch {path}: no such folder or file", EXIT_USAGE)
    else:
        raise RunnerError(f"--batch {path}: give a folder of images, a .csv or a .jsonl file", EXIT_USAGE)
    if not rows:
        raise RunnerError(f"--batch {path}: no images found", EXIT_USAGE)
    return rows


def folder_rows(folder: Path) -> list[Row]:
    images = sorted(p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not is_mask_file(p))
    rows = []
    for i, img in enumerate(images):
        sibling = img.with_name(img.stem + MASK_SUFFIX)
        rows.append(Row(i, img, sibling if sibling.is_file() else None, where=img.name))
    return rows


def csv_records(path: Path):
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        for n, rec in enumerate(reader, start=2):
            yield n, {k.strip(): v for k, v in rec.items() if k and v is not None and v.strip() != ""}, True


def jsonl_records(path: Path):
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise RunnerError(f"{path.name} line {n}: not JSON ({e})", EXIT_USAGE) from None
        if not isinstance(rec, dict):
            raise RunnerError(f"{path.name} line {n}: expected an object with an 'image' key", EXIT_USAGE)
        yield n, {k: v for k, v in rec.items() if v is not None and v != ""}, False


def table_rows(path: Path, records) -> list[Row]:
    rows = []
    for n, rec, text in records:
        where = f"{path.name} line {n}"
        bad = [k for k in rec if k not in COLUMNS and "." not in k]
        if bad:
            raise RunnerError(f"{where}: unknown column(s) {', '.join(bad)}; columns are image, mask, "
                              "prompt, seed and NODE.INPUT (a per-row --set)", EXIT_USAGE)
        if "image" not in rec:
            raise RunnerError(f"{where}: no image", EXIT_USAGE)
        image = path.parent / str(rec["image"])
        mask = path.parent / str(rec["mask"]) if "mask" in rec else None
        for what, p in (("image", image), ("mask", mask)):
            if p is not None and not p.is_file():
                raise RunnerError(f"{where}: {what} {p} not found", EXIT_USAGE)
        seed = rec.get("seed")
        if seed is not None:
            try:
                seed = int(seed)
            except (TypeError, ValueError):
                raise RunnerError(f"{where}: seed {seed!r} is not a whole number", EXIT_USAGE) from None
        sets = {k: (parse_value(v) if text else v) for k, v in rec.items() if "." in k}
        prompt = None if rec.get("prompt") is None else str(rec["prompt"])
        rows.append(Row(len(rows), image, mask, prompt, seed, sets, where))
    return rows


def job_names(rows: list[Row]) -> list[str]:
    """One output name per row: the image's stem, plus the row number where stems repeat."""
    stems = [r.image.stem for r in rows]
    return [s if stems.count(s) == 1 else f"{s}-{r.index + 1}" for s, r in zip(stems, rows)]


# ---------------------------------------------------------------- masks

def load_mask(row: Row) -> tuple[tuple[int, int], np.ndarray | None]:
    """((width, height), the mask LoadImage will give: [h, w] float, 1 = fill) or None when
    the image has neither alpha nor a sibling mask."""
    with Image.open(row.image) as im:
        size = im.size
        if row.mask is None:
            if "A" not in im.getbands() and not (im.mode == "P" and "transparency" in im.info):
                return size, None
            alpha = np.asarray(im.convert("RGBA").getchannel("A"), np.float32) / 255.0
            return size, 1.0 - alpha
    with Image.open(row.mask) as m:
        if m.size != size:
            raise RunnerError(f"{row.where}: mask {row.mask.name} is {m.size[0]}x{m.size[1]} but the "
                              f"image is {size[0]}x{size[1]}")
        return size, np.asarray(m.convert("L"), np.float32) / 255.0


def upload_file(row: Row, work_dir: Path) -> Path:
    """The file to upload for a row: the image itself, or (with a mask file) the image with
    alpha = 255 - mask, so that LoadImage's mask is the given one; made once in work_dir."""
    if row.mask is None:
        return row.image
    out = work_dir / f"{row.index:05d}_{row.image.stem}.png"
    if not out.is_file():
        _, mask = load_mask(row)
        with Image.open(row.image) as im:
            rgba = im.convert("RGB").convert("RGBA")
        rgba.putalpha(Image.fromarray((255 - np.round(mask * 255)).astype(np.uint8), "L"))
        work_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        rgba.save(tmp, format="PNG")
        tmp.replace(out)
    return out


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- one job's workflow

def prompt_targets(prompt: dict) -> list[tuple[str, str]]:
    hits = [(nid, "prompt") for nid, n in prompt.items() if isinstance(n["inputs"].get("prompt"), str)]
    if not hits:
        enc = [nid for nid, n in prompt.items()
               if n["class_type"] == "CLIPTextEncode" and isinstance(n["inputs"].get("text"), str)]
        hits = [(enc[0], "text")] if len(enc) == 1 else []
    return hits


def seed_targets(prompt: dict) -> list[tuple[str, str]]:
    return [(nid, name) for nid, n in prompt.items() for name in ("seed", "noise_seed")
            if isinstance(n["inputs"].get(name), int) and not isinstance(n["inputs"].get(name), bool)]


def job_prompt(base: dict, row: Row) -> dict:
    """The workflow for one row: --set already in `base`; then the row's prompt, seed, NODE.INPUT."""
    p = copy.deepcopy(base)
    for value, targets, what in ((row.prompt, prompt_targets(p), "prompt"), (row.seed, seed_targets(p), "seed")):
        if value is None:
            continue
        if not targets:
            raise RunnerError(f"{row.where}: a {what} is given but the workflow has no {what} input to "
                              f"take it; use a NODE.INPUT column", EXIT_USAGE)
        for nid, name in targets:
            p[nid]["inputs"][name] = value
    for target, value in row.sets.items():
        set_input(p, target, value, f"{row.where}: column {target!r}")
    return p


def job_key(prompt: dict, target: str, image_hash: str, extra_uploads: dict) -> str:
    """Identity of a job: its workflow with the batch image (and fixed --image files) named by
    content hash. The same command over the same files gives the same keys."""
    p = copy.deepcopy(prompt)
    p[target]["inputs"]["image"] = BATCH_INPUT
    for nid, digest in extra_uploads.items():
        p[nid]["inputs"]["image"] = "sha256:" + digest
    text = json.dumps({"prompt": p, "image": image_hash}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
