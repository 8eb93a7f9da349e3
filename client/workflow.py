"""Editing an API-format workflow before it is queued: load it (UI-format files are
refused), find nodes by id / class_type / title, set inputs, randomize seeds, pick the
LoadImage an --image goes to."""
import json
import random
from pathlib import Path

from .errors import EXIT_USAGE, RunnerError


def load_workflow(path) -> dict:
    """An API-format workflow {node_id: {"class_type", "inputs"}}; UI-format is refused."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunnerError(f"workflow file not found: {path}", EXIT_USAGE) from None
    except (OSError, ValueError) as e:
        raise RunnerError(f"workflow {path} is not readable JSON: {e}", EXIT_USAGE) from None
    if isinstance(data, dict) and "prompt" in data and isinstance(data["prompt"], dict) \
            and "nodes" not in data:
        data = data["prompt"]          # a saved /prompt body
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        raise RunnerError(
            f"{path} is a UI-format workflow (it has 'nodes' and 'links'); the runner needs the "
            "API format: in ComfyUI use Workflow > Export (API) (older menus: 'Save (API Format)', "
            "enabled by the dev-mode setting) and pass that file", EXIT_USAGE)
    bad = [k for k, v in data.items() if not (isinstance(v, dict) and "class_type" in v)] \
        if isinstance(data, dict) else ["<top level>"]
    if not data or bad:
        raise RunnerError(f"{path} is not an API-format workflow: entries {bad[:5]} have no "
                          "class_type (export it with Export (API))", EXIT_USAGE)
    for node in data.values():
        node.setdefault("inputs", {})
    return data


def resolve_node(prompt: dict, ref: str) -> str:
    """A node id from REF: a node id, a unique class_type, or a unique _meta.title."""
    if ref in prompt:
        return ref
    for what, key in (("class_type", lambda n: n.get("class_type")),
                      ("title", lambda n: (n.get("_meta") or {}).get("title"))):
        hits = [nid for nid, n in prompt.items() if key(n) == ref]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise RunnerError(f"node '{ref}' is ambiguous: {len(hits)} nodes have that {what} "
                              f"(ids {', '.join(hits)}); use the node id", EXIT_USAGE)
    known = ", ".join(f"{nid}={n['class_type']}" for nid, n in prompt.items())
    raise RunnerError(f"no node '{ref}' in the workflow (by id, class_type or title); nodes: {known}",
                      EXIT_USAGE)


def parse_value(text: str):
    """JSON when it parses (numbers, true/false, lists, quoted strings), else the raw string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_set(prompt: dict, spec: str) -> tuple[str, str]:
    """Apply one `NODE.INPUT=VALUE`; NODE may itself contain dots (titles), INPUT may not."""
    target, sep, value = spec.partition("=")
    node_ref, dot, name = target.rpartition(".")
    if not sep or not dot or not node_ref or not name:
        raise RunnerError(f"--set {spec!r}: expected NODE.INPUT=VALUE, e.g. --set 6.text=\"a red door\" "
                          "or --set KSampler.steps=20", EXIT_USAGE)
    return set_input(prompt, target, parse_value(value), f"--set {spec!r}")


def set_input(prompt: dict, target: str, value, what: str | None = None) -> tuple[str, str]:
    """Set `NODE.INPUT` (NODE as in resolve_node) to an already-parsed value; (node id, input)."""
    what = what or repr(target)
    node_ref, dot, name = target.rpartition(".")
    if not dot or not node_ref or not name:
        raise RunnerError(f"{what}: expected NODE.INPUT, e.g. KSampler.steps", EXIT_USAGE)
    try:
        nid = resolve_node(prompt, node_ref)
    except RunnerError as e:
        raise RunnerError(f"{what}: {e}", EXIT_USAGE) from None
    inputs = prompt[nid]["inputs"]
    if name not in inputs:
        raise RunnerError(f"{what}: node {nid} ({prompt[nid]['class_type']}) has no input "
                          f"'{name}'; its inputs: {', '.join(inputs) or 'none'}", EXIT_USAGE)
    inputs[name] = value
    return nid, name


def randomize_seeds(prompt: dict, rng=None) -> dict:
    """Give every literal `seed` / `noise_seed` input a fresh random value: {"NODE.INPUT": seed}."""
    rng = rng or random.SystemRandom()
    changed = {}
    for nid, node in prompt.items():
        for name in ("seed", "noise_seed"):
            if isinstance(node["inputs"].get(name), int):
                node["inputs"][name] = rng.randrange(0, 2**31)   # within every stock seed range
                changed[f"{nid}.{name}"] = node["inputs"][name]
    return changed


def image_target(prompt: dict, spec: str) -> tuple[str, Path]:
    """`NODE=path` or `path` (the workflow's only LoadImage) -> (node id, file path)."""
    node_ref, sep, path = spec.partition("=")
    if sep and not Path(spec).exists():
        nid = resolve_node(prompt, node_ref)
    else:
        path = spec
        loaders = [nid for nid, n in prompt.items() if n["class_type"] == "LoadImage"]
        if len(loaders) != 1:
            raise RunnerError(f"--image {spec}: the workflow has {len(loaders)} LoadImage nodes "
                              f"({', '.join(loaders) or 'none'}); name one: --image NODE=path", EXIT_USAGE)
        nid = loaders[0]
    p = Path(path)
    if not p.is_file():
        raise RunnerError(f"--image {spec}: no such file {p}", EXIT_USAGE)
    if "image" not in prompt[nid]["inputs"]:
        raise RunnerError(f"--image {spec}: node {nid} ({prompt[nid]['class_type']}) has no 'image' input",
                          EXIT_USAGE)
    return nid, p


def batch_target(prompt: dict, ref: str | None = None) -> str:
    """The node whose `image` input each batch row's image goes to: REF (as resolve_node), or
    the workflow's only LoadImage."""
    if ref:
        nid = resolve_node(prompt, ref)
    else:
        loaders = [nid for nid, n in prompt.items() if n["class_type"] == "LoadImage"]
        if len(loaders) != 1:
            raise RunnerError(f"--batch: the workflow has {len(loaders)} LoadImage nodes "
                              f"({', '.join(loaders) or 'none'}); name the one for the batch images: "
                              "--image NODE=", EXIT_USAGE)
        nid = loaders[0]
    if "image" not in prompt[nid]["inputs"]:
        raise RunnerError(f"--batch: node {nid} ({prompt[nid]['class_type']}) has no 'image' input",
                          EXIT_USAGE)
    return nid
