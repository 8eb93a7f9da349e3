"""run.py (client/) against the real ComfyUI server: `python run.py ...` as a user runs it."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from comfy_host import ROOT

from fluxfill.client.errors import RunnerError
from fluxfill.client.workflow import apply_set, parse_value, randomize_seeds


def run_cli(server, *args, timeout=120):
    return subprocess.run([sys.executable, "run.py", *map(str, args), "--server", server.url],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def write(tmp_path, name, data) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


def saved_paths(proc) -> list:
    from pathlib import Path
    return [Path(line) for line in proc.stdout.splitlines() if line.strip()]


INVERT = {"1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}, "_meta": {"title": "Source"}},
          "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
          "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "runner_inv"}}}

EMPTY = {"1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 24, "batch_size": 1, "color": 0}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "runner_empty"}}}

TINY = {"1": {"class_type": "FluxFillTestTinyModels", "inputs": {"seed": 0, "variant": "dev"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a door"}},
        "3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0],
            "seed": 1, "steps": 3, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "runner_tiny"}}}


# ------------------------------------------------------------------ pure parts

def test_set_parses_json_values_and_resolves_id_class_and_title():
    p = json.loads(json.dumps(INVERT))
    p["1"]["_meta"]["title"] = "My.Source v2"          # a title with dots
    apply_set(p, "3.filename_prefix=x")
    apply_set(p, "ImageInvert.image=[\"1\", 0]")
    apply_set(p, "My.Source v2.image=a=b.png")  # '=' after the first belongs to VALUE
    assert p["3"]["inputs"]["filename_prefix"] == "x"
    assert p["2"]["inputs"]["image"] == ["1", 0]
    assert p["1"]["inputs"]["image"] == "a=b.png"
    assert parse_value("20") == 20 and parse_value("true") is True
    assert parse_value("a red door") == "a red door" and parse_value('"42"') == "42"


def test_set_errors_name_the_problem():
    p = json.loads(json.dumps(TINY))
    p["7"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "b"}}
    with pytest.raises(RunnerError, match="ambiguous.*ids 6, 7"):
        apply_set(p, "SaveImage.filename_prefix=x")
    with pytest.raises(RunnerError, match="no node 'Nope'.*4=KSampler"):
        apply_set(p, "Nope.steps=3")
    with pytest.raises(RunnerError, match="has no input 'stepz'.*steps"):
        apply_set(p, "KSampler.stepz=3")
    with pytest.raises(RunnerError, match="NODE.INPUT=VALUE"):
        apply_set(p, "KSampler=3")


def test_seed_random_changes_literal_seeds_only():
    p = json.loads(json.dumps(TINY))
    changed = randomize_seeds(p, rng=__import__("random").Random(5))
    assert sorted(changed) == ["1.seed", "4.seed"] and changed["4.seed"] == p["4"]["inputs"]["seed"]
    assert p["4"]["inputs"]["seed"] != 1 and 0 <= p["4"]["inputs"]["seed"] < 2**31


# ------------------------------------------------------------------ against the server

def test_invert_uploads_input_and_downloads_output(comfy_server, tmp_path):
    src = np.zeros((8, 16, 3), np.uint8)
    src[..., 0], src[..., 1], src[..., 2] = 10, 200, np.arange(16, dtype=np.uint8)[None] * 10
    Image.fromarray(src).save(tmp_path / "in.png")
    wf = write(tmp_path, "wf.json", INVERT)
    proc = run_cli(comfy_server, wf, "--image", tmp_path / "in.png", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    paths = saved_paths(proc)
    assert len(paths) == 1 and paths[0].parent == tmp_path / "out" and paths[0].is_file()
    got = np.asarray(Image.open(paths[0]).convert("RGB"))
    # SaveImage truncates float*255 to uint8, so 1 - 200/255 can come back as 54, not 55
    assert got.shape == src.shape and np.abs(got.astype(int) - (255 - src.astype(int))).max() <= 1
    assert "done" in proc.stderr                      # the progress line finished
    # the same file the server saved, byte for byte
    assert paths[0].read_bytes() == (comfy_server.base / "output" / paths[0].name).read_bytes()


def test_image_by_node_title_and_set_by_class_type(comfy_server, tmp_path):
    Image.new("RGB", (4, 4), (0, 0, 0)).save(tmp_path / "black.png")
    wf = write(tmp_path, "wf.json", INVERT)
    proc = run_cli(comfy_server, wf, "--image", f"Source={tmp_path / 'black.png'}",
                   "--set", "SaveImage.filename_prefix=runner_titled", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    [path] = saved_paths(proc)
    assert path.name.startswith("runner_titled")
    assert np.all(np.asarray(Image.open(path).convert("RGB")) == 255)


def test_set_changes_the_result(comfy_server, tmp_path):
    wf = write(tmp_path, "wf.json", EMPTY)
    proc = run_cli(comfy_server, wf, "--set", "1.width=40", "--set", "EmptyImage.height=10",
                   "--set", "1.color=65280", "--out", tmp_path / "o")   # 0x00FF00: green
    assert proc.returncode == 0, proc.stderr
    [path] = saved_paths(proc)
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape == (10, 40, 3) and np.all(img == [0, 255, 0])


def test_execution_error_exits_nonzero_with_the_nodes_error(comfy_server, tmp_path):
    wf = write(tmp_path, "wf.json", {
        "1": EMPTY["1"],
        "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                       "scale_by": 0.01}},   # 32x24 -> 0x0: raises at run time
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "runner_fail"}}})
    proc = run_cli(comfy_server, wf, "--out", tmp_path / "o")
    assert proc.returncode == 1
    assert "node 2 (ImageScaleBy) failed" in proc.stderr
    assert "sizes should be greater than 0" in proc.stderr
    assert proc.stdout.strip() == ""


def test_validation_error_prints_each_nodes_errors(comfy_server, tmp_path):
    wf = write(tmp_path, "wf.json", {**INVERT, "4": {**EMPTY["1"]},
                                     "5": {"class_type": "SaveImage",
                                           "inputs": {"images": ["4", 0], "filename_prefix": "v"}}})
    proc = run_cli(comfy_server, wf, "--set", "1.image=no_such_file.png", "--set", "4.width=0",
                   "--out", tmp_path / "o")
    assert proc.returncode == 1
    assert "rejected" in proc.stderr
    assert "node 1 (LoadImage) [input 'image']" in proc.stderr and "no_such_file.png" in proc.stderr
    assert "node 4 (EmptyImage) [input 'width']" in proc.stderr


def test_partly_valid_workflow_runs_the_valid_output_and_exits_nonzero(comfy_server, tmp_path):
    wf = write(tmp_path, "wf.json", {**INVERT, "4": EMPTY["1"], "5": {
        "class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "runner_partial"}}})
    proc = run_cli(comfy_server, wf, "--set", "1.image=no_such_file.png", "--out", tmp_path / "o")
    assert proc.returncode == 1
    assert "node 1 (LoadImage) [input 'image']" in proc.stderr and "only the outputs that passed" in proc.stderr
    [path] = saved_paths(proc)                        # the valid branch ran and was downloaded
    assert path.name.startswith("runner_partial") and Image.open(path).size == (32, 24)


def test_ui_format_workflow_is_refused(comfy_server, tmp_path):
    ui = {"last_node_id": 2, "last_link_id": 1, "links": [[1, 1, 0, 2, 0, "IMAGE"]], "version": 0.4,
          "nodes": [{"id": 1, "type": "EmptyImage", "widgets_values": [8, 8, 1, 0]},
                    {"id": 2, "type": "SaveImage", "widgets_values": ["x"]}]}
    proc = run_cli(comfy_server, write(tmp_path, "ui.json", ui), "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert "UI-format" in proc.stderr and "Export (API)" in proc.stderr


def test_unreachable_server_is_reported(tmp_path):
    class Nowhere:
        url = "http://127.0.0.1:9"          # discard port: nothing listens
    proc = run_cli(Nowhere, write(tmp_path, "wf.json", EMPTY), "--out", tmp_path)
    assert proc.returncode == 1 and "cannot reach ComfyUI" in proc.stderr


@pytest.fixture
def tiny_available(comfy_server):
    if "FluxFillTestTinyModels" not in comfy_server.object_info():
        pytest.skip("test pack fluxfill_test_models did not load")


def test_progress_bar_follows_sampler_steps(comfy_server, tmp_path, tiny_available):
    proc = run_cli(comfy_server, write(tmp_path, "wf.json", TINY), "--seed-random", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "#4 KSampler |####################| 3/3" in proc.stderr
    assert "[6/6 nodes] done" in proc.stderr
    assert "4.seed = " in proc.stderr
    [path] = saved_paths(proc)
    assert Image.open(path).size == (64, 64)


def _start_long_run(comfy_server, tmp_path, *extra):
    proc = subprocess.Popen([sys.executable, "run.py", write(tmp_path, "wf.json", TINY), "--server", comfy_server.url,
                             "--set", "KSampler.steps=10000", "--seed-random", "--out", tmp_path, *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:                    # wait until the sampler runs
        seen.append(line)
        if "KSampler" in line:
            return proc, seen
    raise AssertionError("the sampler never started:\n" + "".join(seen))


def _last_status(comfy_server) -> list:
    hist = comfy_server.get("/history?max_items=1").json()
    return [kind for kind, _ in next(iter(hist.values()))["status"]["messages"]]


def _queue_empty(comfy_server, wait=30.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        q = comfy_server.get("/queue").json()
        if not q["queue_running"] and not q["queue_pending"]:
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_interrupts_the_prompt_on_the_server(comfy_server, tmp_path, tiny_available):
    proc, _ = _start_long_run(comfy_server, tmp_path)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert _queue_empty(comfy_server)
    assert "execution_interrupted" in _last_status(comfy_server)


def test_overall_timeout_interrupts_and_exits_124(comfy_server, tmp_path, tiny_available):
    proc, _ = _start_long_run(comfy_server, tmp_path, "--timeout", "5")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 124, err
    assert "timed out after 5s" in err
    assert _queue_empty(comfy_server)
    assert "execution_interrupted" in _last_status(comfy_server)


MASK_PREP = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder.png"}},
    "2": {"class_type": "MaskPrep", "inputs": {
        "image": ["1", 0], "mask": ["1", 1], "invert": False, "threshold": 0.0, "fill_holes": False, "grow": 0,
        "feather": 8, "crop": True, "context_factor": 1.2, "context_px": 4, "target_mp": 0.0, "multiple": 1,
        "max_side": 2048, "pad_left": 0, "pad_top": 0, "pad_right": 0, "pad_bottom": 0}},
    "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},        # the "fill": the crop inverted
    "4": {"class_type": "PasteBack", "inputs": {"fill": ["3", 0], "feather": -1, "stitch": ["2", 2]}},
    "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "runner_maskprep"}}}


def test_mask_prep_paste_back_graph(comfy_server, tmp_path):
    """LoadImage (alpha = mask) -> MaskPrep -> ImageInvert -> PasteBack: outside the mask the
    original comes back exactly, inside it the fill; --set on the pack's node changes that."""
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    alpha = np.full((48, 64, 1), 255, np.uint8)
    alpha[10:26, 20:36] = 0                       # LoadImage's mask is 1 - alpha
    Image.fromarray(np.concatenate([rgb, alpha], -1), "RGBA").save(tmp_path / "src.png")
    hole = alpha[..., 0] == 0
    wf = write(tmp_path, "wf.json", MASK_PREP)
    results = {}
    for feather in (0, 8):
        proc = run_cli(comfy_server, wf, "--image", f"1={tmp_path / 'src.png'}", "--set", f"MaskPrep.feather={feather}",
                       "--out", tmp_path / f"out{feather}")
        assert proc.returncode == 0, proc.stderr
        [path] = saved_paths(proc)
        results[feather] = np.asarray(Image.open(path).convert("RGB")).astype(int)
    src = rgb.astype(int)
    for got in results.values():
        assert got.shape == src.shape
        assert np.abs(got[hole] - (255 - src[hole])).max() <= 1          # the fill, inside the mask
    assert np.array_equal(results[0][~hole], src[~hole])                # hard edge: original outside
    far = np.ones_like(hole)
    far[10 - 10:26 + 10, 20 - 10:36 + 10] = False                       # > feather px from the mask
    assert np.array_equal(results[8][far], src[far])
    assert not np.array_equal(results[8][~hole], src[~hole])            # feather 8 blends next to it


def test_execution_error_names_no_server_folders():
    """The server is often another computer: the runner names the raising file without its folders."""
    from fluxfill.client.runner import format_execution_error
    err = {"node_id": "7", "node_type": "FalFill", "exception_type": "fluxfill.MissingKey",
           "exception_message": "FalFill: no fal.ai API key.",
           "traceback": ['  File "/srv/comfy/execution.py", line 10, in execute\n',
                         '  File "/srv/comfy/custom_nodes/ComfyUI-FluxFill/nodes/hosted_run.py", line 58, '
                         'in make_provider\n']}
    text = format_execution_error(err, {})
    assert text.startswith("node 7 (FalFill) failed: fluxfill.MissingKey: FalFill: no fal.ai API key.")
    assert "custom_nodes/ComfyUI-FluxFill/nodes/hosted_run.py:58 in make_provider" in text
    assert "/srv" not in text
