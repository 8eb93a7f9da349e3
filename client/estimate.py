"""The hosted price of a batch before anything is sent, from the pack's own price rules
(core/hosted/pricing.py and endpoint_table.py, pure modules) and each job's own image.

For every hosted fill node (FalFill, WaveSpeedFill) in a job's workflow: the endpoint and
num_images from its widgets; the size it is sent, traced back through its `image` input —
the batch image itself (LoadImage), or MaskPrep's output, computed with MaskPrep's own crop
arithmetic (core/crop_geometry.py) from the job's mask and MaskPrep's widgets (the blend
box is the mask's box grown by grow + feather) — with separate regions, MaskPrep's own code
(core.prep, with torch) gives the fill size and one request per region; then the output size (image_size / width /
height, else that input size) and `pricing.estimate`. Any other node in between is assumed
to keep the size (said in the note). An estimate, like the node's own: the provider's
invoice is authoritative; cached results cost nothing.
"""
from dataclasses import dataclass, field

import numpy as np

HOSTED_NODES = {"FalFill": None, "WaveSpeedFill": "wavespeed-ai/flux-fill-dev"}   # None: endpoint widget


def _pure():
    """(pricing, endpoint_table, crop_geometry) of the pack's core: `fluxfill.core` when the
    client is imported as part of the pack (tests), top-level `core` under run.py."""
    try:
        from ..core import crop_geometry
        from ..core.hosted import endpoint_table, pricing
    except ImportError:             # client/ is a top-level package (run.py at the pack root)
        from core import crop_geometry
        from core.hosted import endpoint_table, pricing
    return pricing, endpoint_table, crop_geometry


@dataclass
class NodePrice:
    node: str
    endpoint: str
    size: tuple[int, int]           # output size per image
    num_images: int
    usd: float | None               # None: the endpoint publishes no price
    notes: list = field(default_factory=list)
    requests: int = 1               # one per image the node gets: MaskPrep's separate regions


@dataclass
class JobPrice:
    nodes: list                     # [NodePrice]

    @property
    def usd(self) -> float | None:
        if any(n.usd is None for n in self.nodes):
            return None
        return round(sum(n.usd for n in self.nodes), 6)


def _literal(inputs: dict, name: str, default):
    v = inputs.get(name, default)
    return default if isinstance(v, list) else v          # a link: the widget's default


def _bbox(m: np.ndarray):
    ys, xs = np.nonzero(m)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _inner(box, n: int):
    """The box of what a shrink by n leaves of a box (None if nothing)."""
    x0, y0, x1, y1 = box[0] + n, box[1] + n, box[2] - n, box[3] - n
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def maskprep_size(inputs: dict, size: tuple[int, int], mask: np.ndarray | None) -> tuple[int, int] | None:
    """The size of MaskPrep's image output for this image and mask (None: MaskPrep would
    refuse it: no mask and no outpaint padding)."""
    _, _, geometry = _pure()
    w, h = size
    v = {k: _literal(inputs, k, d) for k, d in (
        ("invert", False), ("threshold", 0.0), ("grow", 0), ("feather", 8), ("crop", True),
        ("context_factor", 1.2), ("context_px", 32), ("target_mp", 1.0), ("multiple", 16),
        ("max_side", 2048), ("pad_left", 0), ("pad_top", 0), ("pad_right", 0), ("pad_bottom", 0))}
    left, top, right, bottom = (max(0, int(v[k])) for k in ("pad_left", "pad_top", "pad_right", "pad_bottom"))
    cw, ch = w + left + right, h + top + bottom
    grow, feather = int(v["grow"]), max(0, int(v["feather"]))
    m = None
    if mask is not None:
        m = 1.0 - mask if v["invert"] else mask
        if v["threshold"] > 0:                           # MaskPrep's threshold makes the mask hard
            m = np.where(m < v["threshold"], 0.0, 1.0)
    strips = [strip for on, strip in ((left, (0, 0, left, ch)), (top, (0, 0, cw, top)),
                                      (right, (left + w, 0, cw, ch)), (bottom, (0, top + h, cw, ch))) if on > 0]
    soft = None if m is None else _bbox(m > 0)
    if soft is None and not strips:
        return None                 # MaskPrep: "the mask is empty"
    boxes = []                      # (box in the canvas, grown by): the blend mask's reach
    fg = None if m is None else _bbox(m >= 0.5)
    if fg is not None and grow < 0:  # a shrink first (what is left of a box), then the feather
        fg = _inner(fg, -grow)
    if fg is not None:
        boxes.append((fg, max(0, grow) + feather))
    if soft is not None and grow >= 0:
        boxes.append((soft, 0))     # soft values stay (a shrink zeroes them)
    boxes = [((b[0] + left, b[1] + top, b[2] + left, b[3] + top), by) for b, by in boxes]
    boxes += [(strip, max(0, grow) + feather) for strip in strips]   # the outpaint area is a hole too
    grown = [(b[0] - by, b[1] - by, b[2] + by, b[3] + by) for b, by in boxes]
    box = None
    if grown:
        box = (max(0, min(g[0] for g in grown)), max(0, min(g[1] for g in grown)),
               min(cw, max(g[2] for g in grown)), min(ch, max(g[3] for g in grown)))
    plan = geometry.plan_crop(cw, ch, [box], bool(v["crop"]), float(v["context_factor"]),
                              int(v["context_px"]), float(v["target_mp"]), int(v["multiple"]), int(v["max_side"]))
    return plan.out_w, plan.out_h


def separate_regions(inputs: dict, size: tuple[int, int], mask: np.ndarray | None):
    """(fill size, region count) of MaskPrep with regions = separate: the node's own code
    (core.prep, which needs torch) on this mask; None when MaskPrep would refuse it."""
    import torch
    try:
        from ..core.prep import PrepOptions, prepare
    except ImportError:             # client/ is a top-level package (run.py at the pack root)
        from core.prep import PrepOptions, prepare
    w, h = size
    v = {k: _literal(inputs, k, d) for k, d in PrepOptions().__dict__.items() if k != "pad"}
    pad = tuple(int(_literal(inputs, f"pad_{side}", 0)) for side in ("left", "top", "right", "bottom"))
    image = torch.zeros(1, 1, 1, 3).expand(1, h, w, 3)      # only the mask decides the crops
    try:
        fills, _, _ = prepare(image, None if mask is None else torch.from_numpy(np.asarray(mask, np.float32))[None],
                              PrepOptions(pad=pad, **v))
    except ValueError:
        return None
    return (fills.shape[2], fills.shape[1]), fills.shape[0]


def traced_size(prompt: dict, link, loader: str, size, mask, notes: list):
    """(size, count) of the images arriving through `link` ([node id, output]) for one job:
    count is 1, or MaskPrep's number of separate regions; None when unknown."""
    if not isinstance(link, list) or len(link) != 2 or str(link[0]) not in prompt:
        return None
    nid, out = str(link[0]), int(link[1])
    node = prompt[nid]
    if nid == loader:
        return size, 1
    if node["class_type"] == "MaskPrep" and out == 0:
        src = traced_size(prompt, node["inputs"].get("image"), loader, size, mask, notes)
        if src is None:
            return None
        mlink = node["inputs"].get("mask")
        from_loader = isinstance(mlink, list) and str(mlink[0]) == loader and int(mlink[1]) == 1
        job_mask = mask if from_loader else None
        if _literal(node["inputs"], "regions", "together") == "separate":
            return separate_regions(node["inputs"], src[0], job_mask)
        got = maskprep_size(node["inputs"], src[0], job_mask)
        return None if got is None else (got, src[1])
    image_in = node["inputs"].get("image") or node["inputs"].get("images") or node["inputs"].get("fill")
    got = traced_size(prompt, image_in, loader, size, mask, notes)
    if got is not None:
        notes.append(f"assumes node {nid} ({node['class_type']}) keeps the image size")
    return got


def hosted_output_size(endpoint, node: dict, in_size: tuple[int, int]) -> tuple[int, int]:
    _, table, _ = _pure()
    inputs = node["inputs"]
    if node["class_type"] == "WaveSpeedFill":
        w, h = int(_literal(inputs, "width", 0)), int(_literal(inputs, "height", 0))
        return w or in_size[0], h or in_size[1]
    if not endpoint.takes("image_size"):
        return in_size
    choice = _literal(inputs, "image_size", "input")
    if choice == "custom":
        return int(_literal(inputs, "width", 1024)), int(_literal(inputs, "height", 1024))
    return table.IMAGE_SIZE_PRESETS.get(choice, in_size)


def job_price(prompt: dict, loader: str, size: tuple[int, int], mask: np.ndarray | None) -> JobPrice:
    """The hosted price of one job: one entry per hosted fill node of its workflow."""
    pricing, table, _ = _pure()
    nodes = []
    for nid, node in prompt.items():
        if node["class_type"] not in HOSTED_NODES:
            continue
        notes = []
        endpoint_id = HOSTED_NODES[node["class_type"]] or _literal(node["inputs"], "endpoint", "fal-ai/flux-lora-fill")
        endpoint = table.get(endpoint_id)
        traced = traced_size(prompt, node["inputs"].get("image"), loader, size, mask, notes)
        if traced is None:
            traced = (1024, 1024), 1
            notes.append("input size unknown here: 1024x1024 assumed")
        in_size, requests = traced
        out = hosted_output_size(endpoint, node, in_size)
        n = int(_literal(node["inputs"], "num_images", 1))
        est = pricing.for_requests(pricing.estimate(endpoint_id, out[0], out[1], n), requests)
        nodes.append(NodePrice(nid, endpoint_id, out, n, est.usd, notes, requests))
    return JobPrice(nodes)


def summary(prices: list[JobPrice], skipped: int = 0) -> tuple[float | None, list[str]]:
    """(total USD or None if any price is unknown, lines grouped by endpoint and size)."""
    groups: dict = {}
    for job in prices:
        for n in job.nodes:
            g = groups.setdefault((n.node, n.endpoint, n.size, n.num_images, n.requests, n.usd), [0, set()])
            g[0] += 1
            g[1].update(n.notes)
    lines, total, unknown = [], 0.0, False
    for (node, endpoint, size, num, requests, usd), (count, notes) in sorted(groups.items(),
                                                                            key=lambda kv: kv[0][:5]):
        each = "price unknown (not published)" if usd is None else f"${usd:.4f} each"
        sub = "" if usd is None else f" = ${usd * count:.4f}"
        regions = f" x {requests} region(s)" if requests > 1 else ""
        lines.append(f"  node {node} {endpoint}: {count} job(s){regions} x {num} image(s) at {size[0]}x{size[1]}, "
                     f"{each}{sub}" + (f" ({'; '.join(sorted(notes))})" if notes else ""))
        if usd is None:
            unknown = True
        else:
            total += usd * count
    if not groups:
        lines.append("  no hosted fill nodes in the workflow: nothing is billed by a provider")
    if skipped:
        lines.append(f"  {skipped} job(s) already done in the manifest: not counted (not sent again)")
    return (None if unknown else round(total, 6)), lines
