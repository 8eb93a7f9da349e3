"""core/lora_list.py: the LORA_STACK format shared with Efficiency/Comfyroll, plus hosted paths."""
import copy
import pickle

import pytest

from fluxfill.core import lora_list
from fluxfill.core.lora_list import LoraEntry, LoraName


def test_lora_name_reads_as_plain_string_and_carries_both_paths():
    both = LoraName("style.safetensors", "https://example.com/style.safetensors")
    assert both == "style.safetensors" and isinstance(both, str)
    assert (both.local, both.hosted) == ("style.safetensors", "https://example.com/style.safetensors")
    hosted_only = LoraName(None, "owner/flux-style")
    assert hosted_only == "owner/flux-style" and hosted_only.local is None
    for clone in (copy.deepcopy(both), pickle.loads(pickle.dumps(both))):
        assert isinstance(clone, LoraName) and (clone.local, clone.hosted) == (both.local, both.hosted)
    with pytest.raises(ValueError):
        LoraName(None, "")


def test_normalize_accepts_other_packs_tuples_and_drops_none():
    stack = [("None", 1.0, 1.0), ("a.safetensors", 0.8, 0.5), ("", 1, 1), ["sub/b.safetensors", 1, 0.25],
             ("https://hf.co/x/y/resolve/main/l.safetensors", 0.7, 0.7), ("owner/repo-name", 0.6, 0.6),
             (LoraName("c.safetensors", "owner/c"), 1.2, 0.3)]
    assert lora_list.normalize_stack(stack) == [
        LoraEntry("a.safetensors", None, 0.8, 0.5),
        LoraEntry("sub/b.safetensors", None, 1.0, 0.25),
        LoraEntry(None, "https://hf.co/x/y/resolve/main/l.safetensors", 0.7, 0.7),
        LoraEntry(None, "owner/repo-name", 0.6, 0.6),
        LoraEntry("c.safetensors", "owner/c", 1.2, 0.3),
    ]
    assert lora_list.normalize_stack(None) == []
    with pytest.raises(ValueError, match="not a"):
        lora_list.normalize_stack(["just-a-name"])


@pytest.mark.parametrize("name, hosted", [
    ("https://x.org/a.safetensors", True), ("http://x.org/a", True), ("owner/name", True),
    ("owner/name.v2", True), ("a.safetensors", False), ("folder/a.safetensors", False),
    ("deep/folder/a", False), ("a", False), ("folder\\a.safetensors", False),
])
def test_hosted_path_detection(name, hosted):
    assert lora_list.is_hosted_path(name) is hosted


def test_stack_from_rows_chains_incoming_first_and_skips_off_and_empty_rows():
    incoming = [("up.safetensors", 0.5, 0.5), ("None", 1, 1)]
    rows = [
        {"on": True, "local": "a.safetensors", "hosted": "", "strength_model": 0.8, "strength_clip": 1.0},
        {"on": False, "local": "b.safetensors", "hosted": "", "strength_model": 1.0, "strength_clip": 1.0},
        {"on": True, "local": "None", "hosted": "  ", "strength_model": 1.0, "strength_clip": 1.0},
        {"on": True, "local": "None", "hosted": "owner/only-hosted", "strength_model": 0.9, "strength_clip": 0.0},
        {"on": True, "local": "c.safetensors", "hosted": "https://x.org/c",
         "strength_model": 1.1, "strength_clip": 0.2},
    ]
    stack = lora_list.stack_from_rows(rows, incoming)
    assert [tuple(map(type, t)) for t in stack] == [(LoraName, float, float)] * 4
    assert [(str(n), m, c) for n, m, c in stack] == [
        ("up.safetensors", 0.5, 0.5), ("a.safetensors", 0.8, 1.0),
        ("owner/only-hosted", 0.9, 0.0), ("c.safetensors", 1.1, 0.2)]
    assert stack[3][0].hosted == "https://x.org/c"
    # A FluxFill stack fed back in (chaining) keeps its hosted paths.
    again = lora_list.stack_from_rows([], stack)
    assert lora_list.normalize_stack(again) == lora_list.normalize_stack(stack)


def test_local_loras_refuses_hosted_only_entries():
    stack = [(LoraName("a.safetensors", "owner/a"), 1.0, 0.5), ("b.safetensors", 0.3, 0.3)]
    assert [e.local for e in lora_list.local_loras(stack)] == ["a.safetensors", "b.safetensors"]
    with pytest.raises(ValueError, match="cannot be applied locally unless a local file is named too"):
        lora_list.local_loras(stack + [(LoraName(None, "owner/x"), 1.0, 1.0)])
    with pytest.raises(ValueError, match="https://x.org/y"):
        lora_list.local_loras([("https://x.org/y", 1.0, 1.0)])


def test_hosted_loras_uses_strength_model_as_scale_and_refuses_local_only():
    stack = [(LoraName("a.safetensors", "owner/a"), 0.7, 0.1), ("https://x.org/b.safetensors", 1.0, 1.0)]
    assert lora_list.hosted_loras(stack) == [{"path": "owner/a", "scale": 0.7},
                                             {"path": "https://x.org/b.safetensors", "scale": 1.0}]
    with pytest.raises(ValueError, match="hosted fills need a hosted path.*LoraStack's hosted field"):
        lora_list.hosted_loras([("local.safetensors", 1.0, 1.0)])
    assert lora_list.hosted_loras([]) == []


def test_describe():
    assert lora_list.describe([]) == "(no LoRAs)"
    text = lora_list.describe([(LoraName("a.safetensors", "owner/a"), 0.8, 1.0), ("owner/b", 0.5, 0.5)])
    assert text.splitlines() == ["1. a.safetensors  model 0.8, clip 1  (hosted: owner/a)",
                                 "2. owner/b  model 0.5, clip 0.5  (hosted only)"]
