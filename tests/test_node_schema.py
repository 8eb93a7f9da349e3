"""The nodes' public schema never moves: saved UI workflows store widget values by position.

tests/data/node_schema_v1.json is what the V1 pack served (the same on both hosts); the V3
nodes must serve the same ids, names, order, sections, types, defaults and ranges, plus only
the inputs added since (ADDED), each optional and after all earlier ones."""
import json
from pathlib import Path

import pytest

SNAPSHOT = json.loads((Path(__file__).parent / "data" / "node_schema_v1.json").read_text())
NODES = [k for k in SNAPSHOT if not k.startswith("_")]
HOST_LISTS = {"sampler_name", "scheduler", "lora_1_name", "lora_2_name", "lora_3_name"}  # the host's files/samplers
KEYS = ("default", "min", "max", "step", "multiline", "label_on", "label_off")


def public_schema(info: dict) -> dict:
    out = {"display_name": info["display_name"], "category": info["category"], "output": info["output"],
           "output_name": info["output_name"], "input_order": info["input_order"], "inputs": {},
           "hidden": sorted(info["input"].get("hidden", {}))}
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            kind, opts = spec[0], spec[1] if len(spec) > 1 else {}
            entry = {"section": section}
            if isinstance(kind, list) or kind == "COMBO":
                entry["type"] = "COMBO"
                if name not in HOST_LISTS:
                    entry["options"] = kind if isinstance(kind, list) else opts["options"]
            else:
                entry["type"] = kind
            entry.update({k: opts[k] for k in KEYS if k in opts})
            out["inputs"][name] = entry
    return out


# Inputs added since the V1 snapshot: optional (API prompts saved without them still validate),
# after every earlier input (widget positions in saved UI workflows stay), defaults = the old behaviour.
ADDED = {
    "MaskPrep": {"inputs": {
        "regions": {"section": "optional", "type": "COMBO", "options": ["together", "separate"], "default": "together"},
        "region_gap": {"section": "optional", "type": "INT", "default": 64, "min": 0, "max": 4096, "step": 1},
        "context_mask": {"section": "optional", "type": "MASK"}}, "hidden": ["unique_id"]},
    "PasteBack": {"inputs": {
        "color_match": {"section": "optional", "type": "FLOAT", "default": 0.0, "min": 0.0, "max": 1.0,
                        "step": 0.05}}},
}


def expected_schema(node_id: str) -> dict:
    want = json.loads(json.dumps(SNAPSHOT[node_id]))
    added = ADDED.get(node_id, {})
    for name, entry in added.get("inputs", {}).items():
        want["input_order"].setdefault(entry["section"], []).append(name)
        want["inputs"][name] = entry
    want["hidden"] = sorted(want["hidden"] + added.get("hidden", []))
    if want["hidden"]:
        want["input_order"]["hidden"] = want["hidden"]
    return want


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.get("/object_info").json()


@pytest.mark.parametrize("node_id", NODES)
def test_schema_is_unchanged(object_info, node_id):
    assert node_id in object_info, f"{node_id} is not registered"
    assert public_schema(object_info[node_id]) == expected_schema(node_id)


def test_hosted_seeds_start_fixed_and_local_randomizes(object_info):
    """A new hosted node shows "fixed": each new seed is a new paid request."""
    for node_id in ("FalFill", "WaveSpeedFill"):
        assert object_info[node_id]["input"]["required"]["seed"][1]["control_after_generate"] == "fixed"
    assert object_info["FluxFillLocal"]["input"]["required"]["seed"][1]["control_after_generate"] is True


def test_nodes_are_v3(comfy):
    from comfy_api.v0_0_2 import io
    for node_id in NODES:
        cls = comfy.nodes.NODE_CLASS_MAPPINGS[node_id]
        assert isinstance(cls, type) and issubclass(cls, io.ComfyNode), node_id
        assert cls.GET_SCHEMA().node_id == node_id
