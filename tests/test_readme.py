"""The README's promises that can drift: endpoint tables, node ids, every node input documented."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
sys.path.insert(0, str(ROOT / "scripts"))
import readme_tables  # noqa: E402


def test_endpoint_tables_are_current():
    assert readme_tables.render(README) == README, "run: python scripts/readme_tables.py"
    for eid in ("fal-ai/flux-lora-fill", "fal-ai/flux-lora/inpainting", "fal-ai/flux-pro/v1/fill",
                "fal-ai/flux-general/inpainting", "wavespeed-ai/flux-fill-dev"):
        assert f"#### {eid}" in README


def test_two_commands_exist_in_makefile():
    makefile = (ROOT / "Makefile").read_text()
    assert "make run" in README and "make test" in README
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_node_input_is_documented(comfy):
    """Each input name of the six nodes appears in the README (LoraStack rows as lora_N_*)."""
    for node_id in ("MaskPrep", "PasteBack", "FluxFillLocal", "LoraStack", "FalFill", "WaveSpeedFill"):
        assert f"`{node_id}`" in README, node_id
        spec = comfy.nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()
        for section in ("required", "optional"):
            for name in spec.get(section, {}):
                doc_name = re.sub(r"^lora_\d_", "lora_N_", name)
                assert doc_name in README, f"{node_id}.{name} is not documented in README.md"
