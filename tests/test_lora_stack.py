"""LoraStack in the real host, in-process: plain widgets, the Efficiency/Comfyroll format, chaining."""
from comfy_host import combo_options

ROW_KEYS = ["on", "name", "hosted", "strength_model", "strength_clip"]


def rows(**over):
    values = {}
    for i in range(1, 4):
        values.update({f"lora_{i}_on": True, f"lora_{i}_name": "None", f"lora_{i}_hosted": "",
                       f"lora_{i}_strength_model": 1.0, f"lora_{i}_strength_clip": 1.0})
    values.update(over)
    return values


def test_plain_widgets_per_row_and_fresh_files_listed(comfy):
    (comfy.base / "models" / "loras" / "listed_lora.safetensors").write_bytes(b"")
    cls = comfy.nodes.NODE_CLASS_MAPPINGS["LoraStack"]
    assert cls.CATEGORY == "FluxFill/lora" and tuple(cls.RETURN_TYPES) == ("LORA_STACK", "STRING")
    spec = cls.INPUT_TYPES()
    assert list(spec["required"]) == [f"lora_{i}_{k}" for i in range(1, 4) for k in ROW_KEYS]
    assert [spec["required"]["lora_1_" + k][0] for k in ("on", "hosted", "strength_model", "strength_clip")] == \
        ["BOOLEAN", "STRING", "FLOAT", "FLOAT"]
    choices = combo_options(spec["required"]["lora_2_name"])
    assert choices[0] == "None" and "listed_lora.safetensors" in choices
    assert list(spec["optional"]) == ["lora_stack"]
    for section in spec.values():
        assert all(opts.get("tooltip") for _, opts in section.values())


def test_output_is_the_de_facto_stack_and_a_readable_list(comfy):
    efficiency_stack = [("None", 1.0, 1.0), ("upstream.safetensors", 0.4, 0.4)]
    stack, text = comfy.call("LoraStack", lora_stack=efficiency_stack, **rows(
        lora_1_name="a.safetensors", lora_1_strength_model=0.8, lora_1_strength_clip=0.5,
        lora_2_on=False, lora_2_name="b.safetensors",
        lora_3_hosted="https://example.com/c.safetensors", lora_3_strength_model=0.6))
    # Another pack's loader reads (name, strength_model, strength_clip) and treats the name as a str.
    assert [(str(n), sm, sc) for n, sm, sc in stack] == [
        ("upstream.safetensors", 0.4, 0.4), ("a.safetensors", 0.8, 0.5),
        ("https://example.com/c.safetensors", 0.6, 1.0)]
    assert all(isinstance(n, str) and len(t) == 3 for t in stack for n in t[:1])
    assert stack[2][0].hosted == "https://example.com/c.safetensors" and stack[2][0].local is None
    assert text.splitlines() == ["1. upstream.safetensors  model 0.4, clip 0.4",
                                 "2. a.safetensors  model 0.8, clip 0.5",
                                 "3. https://example.com/c.safetensors  model 0.6, clip 1  (hosted only)"]


def test_chained_stacks_keep_hosted_paths_and_empty_stack_says_so(comfy):
    first, _ = comfy.call("LoraStack", **rows(lora_1_name="a.safetensors", lora_1_hosted="owner/a"))
    second, text = comfy.call("LoraStack", lora_stack=first, **rows(lora_1_name="b.safetensors"))
    assert [(n.local, n.hosted) for n, _, _ in second] == [("a.safetensors", "owner/a"), ("b.safetensors", None)]
    assert type(second[0][0]).__name__ == "LoraName"  # the host loads the pack as another module
    empty, text = comfy.call("LoraStack", **rows())
    assert empty == [] and text == "(no LoRAs)"
