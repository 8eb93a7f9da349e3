"""MaskPrep and PasteBack in a real ComfyUI server: listed in /object_info, and an API-format
prompt LoadImage -> MaskPrep -> (ImageInvert) -> PasteBack -> SaveImage that keeps every
pixel outside the mask."""
import numpy as np
from PIL import Image

from comfy_host import execution_error


def test_object_info_lists_the_six_nodes_with_tooltips(comfy_server):
    info = comfy_server.object_info()
    categories = {"MaskPrep": "FluxFill/mask", "PasteBack": "FluxFill/mask", "FluxFillLocal": "FluxFill/fill",
                  "FalFill": "FluxFill/fill", "WaveSpeedFill": "FluxFill/fill", "LoraStack": "FluxFill/lora"}
    for node_id, category in categories.items():
        assert node_id in info, f"{node_id} not registered:\n{comfy_server.log_tail()}"
        node = info[node_id]
        assert (node["category"] == category and node["description"]
                and node["python_module"].startswith("custom_nodes."))
        for section in ("required", "optional"):
            for name, spec in node["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    assert info["MaskPrep"]["output"] == ["IMAGE", "MASK", "STITCH"]
    for fill in ("FluxFillLocal", "FalFill", "WaveSpeedFill"):     # one shape: swap a node, keep the links
        assert info[fill]["output"] == ["IMAGE", "STRING"] and info[fill]["output_name"] == ["images", "report"]
        assert list(info[fill]["input"]["required"])[:5] == ["image", "mask", "prompt", "seed", "num_images"]
        assert "lora_stack" in info[fill]["input"]["optional"]
    assert "stitch" in info["PasteBack"]["input"]["optional"]
    failed = [ln for ln in comfy_server.log_text().splitlines() if "IMPORT FAILED" in ln and "FluxFill" in ln]
    assert not failed, "\n".join(failed)


def test_loadimage_maskprep_pasteback_saveimage(comfy_server, tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    alpha = np.full((120, 160), 255, np.uint8)
    alpha[40:80, 50:110] = 0  # transparent = masked (LoadImage's mask is 1 - alpha)
    src = tmp_path / "server_mask_src.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    name = comfy_server.upload_image(src)

    spec = comfy_server.object_info("MaskPrep")["MaskPrep"]["input"]["required"]
    prep_inputs = {k: v[1]["default"] for k, v in spec.items() if "default" in v[1]}
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "MaskPrep", "inputs": {**prep_inputs, "image": ["1", 0], "mask": ["1", 1]}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "PasteBack", "inputs": {"fill": ["3", 0], "stitch": ["2", 2], "feather": -1}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "fluxfill_mask"}},
    }
    history = comfy_server.run(prompt, timeout=180)
    assert execution_error(history) is None, execution_error(history)
    files = comfy_server.output_files(history)
    assert len(files) == 1
    out = np.asarray(Image.open(files[0]).convert("RGB"))
    assert out.shape == (120, 160, 3)  # the original size, not the fill's

    # what LoadImage -> SaveImage gives for an untouched pixel (float32 /255, *255, truncated)
    expected = np.clip(255.0 * (rgb.astype(np.float32) / 255.0), 0, 255).astype(np.uint8)
    reach = prep_inputs["grow"] + prep_inputs["feather"] + 1
    outside = np.ones((120, 160), bool)
    outside[40 - reach:80 + reach, 50 - reach:110 + reach] = False
    assert np.array_equal(out[outside], expected[outside])
    hole = out[45:75, 55:105].astype(int)
    inverted = 255 - rgb[45:75, 55:105].astype(int)
    assert np.abs(hole - inverted).mean() < 40  # the fill (inverted crop, resized back) landed
    assert np.abs(hole - rgb[45:75, 55:105].astype(int)).mean() > 60
