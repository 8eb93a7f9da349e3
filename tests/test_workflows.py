"""The example workflows (workflows/) on the real host: listed by the templates menu, loaded
into the real frontend and queued from the page, and their API twins posted to /prompt.

Stand-ins, the only changes made to a test's copy of a workflow: the stock model loaders
(UNETLoader, DualCLIPLoader, VAELoader, which cannot load tiny models) become the test
pack's FluxFillTestTinyModels, and FluxFillLocal runs 2 steps; fal.ai and WaveSpeedAI are
the loopback emulators, reached through the env vars the pack reads. Everything else —
the shipped input images, MaskPrep, the fills, PasteBack, ImageStitch, SaveImage — runs as
a user gets it.
"""
import copy
import importlib.util
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_host import ROOT, ComfyServer, execution_error, make_base_dir
from emulators import FalEmulator, WaveSpeedEmulator, fill_colour
from test_hosted_nodes_graphs import FAL_KEY, WS_KEY, emulator_env

pytestmark = pytest.mark.timeout(240)

WF = ROOT / "workflows"
INPUTS = WF / "inputs"
PACK = "ComfyUI-FluxFill"          # the folder name make_base_dir links the pack under
NAMES = ["local_fill", "fal_fill", "wavespeed_fill", "large_photo_edit", "outpaint", "ab_compare", "several_holes"]
STOCK_LOADERS = {"UNETLoader": 0, "DualCLIPLoader": 1, "VAELoader": 2}   # -> tiny node's output slot
REAL_MODEL_FILES = {"UNETLoader": ["flux1-fill-dev.safetensors", "default"],
                    "DualCLIPLoader": ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux"],
                    "VAELoader": ["ae.safetensors"]}
# the folder each stock loader reads (ComfyUI's folder names, as in the official templates)
LOADER_DIRECTORY = {"UNETLoader": "diffusion_models", "DualCLIPLoader": "text_encoders", "VAELoader": "vae"}
LOCAL_NAMES = ["local_fill", "large_photo_edit", "outpaint", "ab_compare", "several_holes"]   # with model loaders
# what both frontends offer to download (missingModelDownload.ts: isModelDownloadable)
DOWNLOADABLE_URL = ("https://huggingface.co/", "https://civitai.com/")
DOWNLOADABLE_NAME = (".safetensors", ".sft", ".ckpt", ".pth", ".pt")
TEST_STEPS = 2
TEST_MP = 0.1            # MaskPrep target_mp in the test copies: the tiny fills run on CPU
# source image, mask grow + feather of its MaskPrep (pixels further away are the original's),
# expected size of the saved image (w, h), panels side by side (A/B)
EXPECT = {
    "local_fill": ("fluxfill_photo.png", 8 + 16, (1024, 768), 1),
    "fal_fill": ("fluxfill_photo.png", 8 + 16, (1024, 768), 1),
    "wavespeed_fill": ("fluxfill_photo.png", 8 + 16, (1024, 768), 1),
    "large_photo_edit": ("fluxfill_large_photo.png", 8 + 16, (2048, 1536), 1),
    "outpaint": ("fluxfill_outpaint.png", 16 + 24, (512 + 192 + 192, 384 + 128), 1),
    "ab_compare": ("fluxfill_photo.png", 8 + 16, (3 * 1024 + 2 * 16, 768), 3),
    "several_holes": ("fluxfill_flower_beds.png", 8 + 16, (2048, 1536), 1),
}
# which fill made each panel (left to right): hosted panels carry the emulators' fill colour
PANELS = {"fal_fill": ["FalFill"], "wavespeed_fill": ["WaveSpeedFill"],
          "ab_compare": ["FluxFillLocal", "FalFill", "WaveSpeedFill"]}


def ui_workflow(name: str) -> dict:
    return json.loads((WF / f"{name}.json").read_text())


def api_workflow(name: str) -> dict:
    return json.loads((WF / "api" / f"{name}.api.json").read_text())


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def emus():
    with FalEmulator(FAL_KEY, queue_seconds=0.0, run_seconds=0.05) as fal, \
            WaveSpeedEmulator(WS_KEY, queue_seconds=0.0, run_seconds=0.05) as ws:
        yield fal, ws


@pytest.fixture(scope="module")
def server(emus, tmp_path_factory):
    srv = ComfyServer(make_base_dir(tmp_path_factory.mktemp("workflows")), env=emulator_env(*emus)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    from browser import opened_page
    with opened_page(server.url, "fluxfill-workflows-") as p:
        yield p


# ---------------------------------------------------------------- the files themselves
def test_every_workflow_ships_in_both_formats():
    assert sorted(p.stem for p in WF.glob("*.json")) == sorted(NAMES)
    assert sorted(p.name for p in (WF / "api").glob("*.json")) == sorted(f"{n}.api.json" for n in NAMES)
    for name in NAMES:
        ui, api = ui_workflow(name), api_workflow(name)
        assert ui["version"] == 0.4 and ui["last_node_id"] == max(n["id"] for n in ui["nodes"])
        assert ui["last_link_id"] == max(link[0] for link in ui["links"])
        executed = {str(n["id"]): n["type"] for n in ui["nodes"] if n["type"] not in ("Note", "MarkdownNote")}
        assert {k: v["class_type"] for k, v in api.items()} == executed, name
        for node in ui["nodes"]:      # real model file names, as users have them
            if node["type"] in REAL_MODEL_FILES:
                assert node["widgets_values"][:len(REAL_MODEL_FILES[node["type"]])] == REAL_MODEL_FILES[node["type"]]
            if node["type"] == "LoadImage":
                assert (INPUTS / node["widgets_values"][0]).is_file()
        for node in api.values():
            if node["class_type"] in ("FluxFillLocal", "FalFill", "WaveSpeedFill"):
                assert node["inputs"]["prompt"] and node["inputs"]["seed"] == 1234


def shipped_models() -> dict:
    """{file name: {"name", "url", "directory"}} over every loader of every shipped UI workflow
    (the same file carries the same metadata everywhere: checked here)."""
    seen = {}
    for name in NAMES:
        for node in ui_workflow(name)["nodes"]:
            for m in node.get("properties", {}).get("models", []):
                assert seen.setdefault(m["name"], m) == m, f"{name}: {m['name']} differs from another workflow's"
    return seen


def test_every_model_loader_names_its_files_with_download_links():
    """The frontend's missing-models list: properties.models on each loader, entries whose name is
    one of the node's widget values, each downloadable (a Hugging Face URL ending in that file)."""
    with_loaders = []
    for name in NAMES:
        ui = ui_workflow(name)
        assert "models" not in ui, name        # per node, as the official templates do
        for node in ui["nodes"]:
            models = node.get("properties", {}).get("models")
            if node["type"] not in LOADER_DIRECTORY:
                assert models is None, f"{name}: {node['type']} has model metadata"
                continue
            with_loaders.append(name)
            files = [v for v in node["widgets_values"] if isinstance(v, str) and v.endswith(DOWNLOADABLE_NAME)]
            assert files == REAL_MODEL_FILES[node["type"]][:len(files)] and files, (name, node["widgets_values"])
            assert [m["name"] for m in models] == files, f"{name} {node['type']}: names differ from the widgets"
            for m in models:
                assert set(m) == {"name", "url", "directory"}, m
                assert m["directory"] == LOADER_DIRECTORY[node["type"]], m
                assert m["url"].startswith(DOWNLOADABLE_URL) and m["name"].endswith(DOWNLOADABLE_NAME), m
                hf_file = r"https://huggingface\.co/[\w.-]+/[\w.-]+/resolve/main/([\w.-]+/)*" + re.escape(m["name"])
                assert re.fullmatch(hf_file, m["url"]), m["url"]
    assert sorted(set(with_loaders)) == sorted(LOCAL_NAMES)
    assert sorted(shipped_models()) == sorted({f for fs in REAL_MODEL_FILES.values() for f in fs if "." in f})


def _official_fill_template():
    """ComfyUI's own FLUX.1 Fill template, from the host's workflow-templates package."""
    for pkg in ("comfyui_workflow_templates_json", "comfyui_workflow_templates_media_image",
                "comfyui_workflow_templates"):
        spec = importlib.util.find_spec(pkg)
        for loc in (spec.submodule_search_locations or []) if spec else []:
            path = Path(loc) / "templates" / "flux_fill_inpaint_example.json"
            if path.is_file():
                return path
    return None


def test_model_metadata_is_the_official_fill_templates():
    path = _official_fill_template()
    if path is None:
        pytest.skip("this host has no comfyui workflow templates package with flux_fill_inpaint_example.json")
    tpl = json.loads(path.read_text())
    official = {}
    for graph in [tpl, *tpl.get("definitions", {}).get("subgraphs", [])]:
        for node in graph["nodes"]:
            for m in node.get("properties", {}).get("models", []):
                official[m["name"]] = m
    ours = shipped_models()
    assert {n: official.get(n) for n in ours} == ours, f"differs from {path}"


def test_readme_model_table_matches_the_workflows():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- models-table:begin -->", 1)[1].split("<!-- models-table:end -->", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.strip().splitlines()[2:]]
    documented = {}
    for file, folder, _loader, url in rows:
        assert file.startswith("`") and folder.startswith("`models/"), (file, folder)
        name = file.strip("`")
        assert name not in documented, f"{name} twice in the README's model table"
        documented[name] = {"name": name, "url": url, "directory": folder.strip("`").removeprefix("models/")}
    assert documented == shipped_models()
    assert list(documented) == list(build_workflows().MODEL_DOWNLOADS)     # the same order as the builder's


def build_workflows():
    """workflows/build_workflows.py as a module (its browser/server imports are lazy or stdlib)."""
    spec = importlib.util.spec_from_file_location("fluxfill_build_workflows", WF / "build_workflows.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rebuilding_gives_the_shipped_model_metadata():
    """The builder's last step (tidy) adds the metadata: on the shipped files it changes nothing."""
    builder = build_workflows()
    for name in NAMES:
        ui = ui_workflow(name)
        assert builder.tidy(copy.deepcopy(ui)) == ui, name
        assert json.dumps(ui, indent=2) + "\n" == (WF / f"{name}.json").read_text(), f"{name}: not the builder's format"


def test_ab_compare_feeds_three_fills_from_one_mask_prep():
    api = api_workflow("ab_compare")
    [prep] = [k for k, v in api.items() if v["class_type"] == "MaskPrep"]
    fills = {v["class_type"]: v for v in api.values()
             if v["class_type"] in ("FluxFillLocal", "FalFill", "WaveSpeedFill")}
    assert set(fills) == {"FluxFillLocal", "FalFill", "WaveSpeedFill"}
    for f in fills.values():
        assert f["inputs"]["image"] == [prep, 0] and f["inputs"]["mask"] == [prep, 1]
    assert api[prep]["inputs"]["max_side"] <= 1536          # WaveSpeed's limit


def test_input_images_are_small_and_as_documented():
    sizes = {"fluxfill_photo.png": ((1024, 768), "RGBA"), "fluxfill_large_photo.png": ((2048, 1536), "RGBA"),
             "fluxfill_outpaint.png": ((512, 384), "RGB"), "fluxfill_flower_beds.png": ((2048, 1536), "RGBA")}
    assert sorted(p.name for p in INPUTS.glob("*.png")) == sorted(sizes)
    for name, (size, mode) in sizes.items():
        path = INPUTS / name
        assert path.stat().st_size < 300 * 1024, name
        with Image.open(path) as im:
            assert (im.size, im.mode) == (size, mode), name
            if mode == "RGBA":       # a mask for LoadImage: some transparent pixels, mostly opaque
                alpha = np.asarray(im.getchannel("A"))
                assert 0.001 < (alpha == 0).mean() < 0.1, name


def _example_inputs_module():
    """nodes/example_inputs.py on its own (stdlib only; importing nodes/ would need the host)."""
    spec = importlib.util.spec_from_file_location("fluxfill_example_inputs", ROOT / "nodes" / "example_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_copy_example_inputs_never_overwrites_and_never_raises(tmp_path):
    mod = _example_inputs_module()
    (tmp_path / "fluxfill_photo.png").write_bytes(b"the user's own file")
    copied = mod.copy_example_inputs(tmp_path)
    assert sorted(copied) == ["fluxfill_flower_beds.png", "fluxfill_large_photo.png", "fluxfill_outpaint.png"]
    assert (tmp_path / "fluxfill_photo.png").read_bytes() == b"the user's own file"
    assert (tmp_path / "fluxfill_outpaint.png").read_bytes() == (INPUTS / "fluxfill_outpaint.png").read_bytes()
    assert mod.copy_example_inputs(tmp_path) == []
    blocked = tmp_path / "not_a_dir"
    blocked.write_text("x")
    assert mod.copy_example_inputs(blocked) == []          # logged, not raised


def test_pack_copied_the_inputs_into_the_servers_input_folder(server):
    for src in INPUTS.glob("*.png"):
        assert (server.base / "input" / src.name).read_bytes() == src.read_bytes()


def test_templates_menu_lists_the_ui_workflows_only(server):
    listing = server.get("/api/workflow_templates").json()
    assert sorted(listing[PACK]) == sorted(NAMES), listing      # API twins (workflows/api/) not listed
    for name in NAMES:
        served = server.get(f"/api/workflow_templates/{PACK}/{name}.json").json()
        assert served == ui_workflow(name)


# ---------------------------------------------------------------- stand-ins
def tiny_api(prompt: dict) -> dict:
    """The API prompt with the stock loaders replaced by the tiny-model node; 2 steps, 0.1 MP."""
    p = copy.deepcopy(prompt)
    loaders = {k: v["class_type"] for k, v in p.items() if v["class_type"] in STOCK_LOADERS}
    if loaders:
        tiny = str(max(int(k) for k in p) + 1)
        p[tiny] = {"class_type": "FluxFillTestTinyModels", "inputs": {"seed": 0, "variant": "fill"}}
        for k in loaders:
            del p[k]
        for node in p.values():
            for name, value in node["inputs"].items():
                if isinstance(value, list) and value[0] in loaders:
                    node["inputs"][name] = [tiny, STOCK_LOADERS[loaders[value[0]]]]
    for node in p.values():
        if node["class_type"] == "FluxFillLocal":
            node["inputs"]["steps"] = TEST_STEPS
        if node["class_type"] == "MaskPrep":
            node["inputs"]["target_mp"] = TEST_MP
    return p


def comparable(prompt: dict) -> dict:
    """{id: (class_type, inputs)} with links to the tiny-model node (whatever its id) by slot."""
    tiny = {k for k, v in prompt.items() if v["class_type"] == "FluxFillTestTinyModels"}
    out = {}
    for k, v in prompt.items():
        if k in tiny:
            continue
        inputs = {n: (["tiny", x[1]] if isinstance(x, list) and x[0] in tiny else x) for n, x in v["inputs"].items()}
        out[k] = (v["class_type"], inputs)
    return out


TINY_JS = """
const slots = arguments[0], steps = arguments[1], mp = arguments[2];
const g = app.graph, nodes = () => (g.nodes || g._nodes).slice();
const link = id => (g.links.get ? g.links.get(id) : g.links[id]);
const loaders = nodes().filter(n => n.type in slots);
if (loaders.length) {
  const tiny = LiteGraph.createNode('FluxFillTestTinyModels');
  g.add(tiny);
  tiny.pos = [loaders[0].pos[0], loaders[0].pos[1]];
  for (const n of loaders) {
    const targets = (n.outputs[0].links || []).map(id => link(id)).map(l => [l.target_id, l.target_slot]);
    g.remove(n);
    for (const [id, slot] of targets) tiny.connect(slots[n.type], g.getNodeById(id), slot);
  }
}
for (const n of nodes().filter(n => n.type === 'FluxFillLocal'))
  n.widgets.find(w => w.name === 'steps').value = steps;
for (const n of nodes().filter(n => n.type === 'MaskPrep'))
  n.widgets.find(w => w.name === 'target_mp').value = mp;
app.graph.setDirtyCanvas(true, true);
return nodes().map(n => n.type);
"""


OFFERED_JS = """
const names = arguments[0], openDetails = arguments[1];
const vis = e => e.offsetParent !== null || getComputedStyle(e).position === 'fixed';
const download = b => vis(b) && /^Download\\b/.test((b.innerText || '').trim()) && !/all/i.test(b.innerText);
// 1.47.12 lists missing models in the Errors panel behind the "N errors found" toast
const details = Array.from(document.querySelectorAll('button'))
  .find(b => vis(b) && b.innerText.trim() === 'View details');
if (openDetails && details) details.click();
const leaves = Array.from(document.querySelectorAll('body *')).filter(e => vis(e) && e.children.length === 0);
const rows = {};
for (const n of names) for (const leaf of leaves.filter(e => (e.innerText || '').includes(n))) {
  let row = leaf;       // the smallest element around the name that has its own Download button
  while (row && !Array.from(row.querySelectorAll('button')).some(download)) row = row.parentElement;
  if (row && !names.some(m => m !== n && row.innerText.includes(m)))
    rows[n] = row.innerText.replace(/\\s+/g, ' ').trim();
}
return {rows, details: !!details};
"""


def offered_models(page, names, timeout: float = 20.0) -> dict:
    """{file: the text of its row} for each of `names` the page offers to download, as a user sees
    it: 1.32.9's Missing Models dialog (folder / name, Download, Copy URL), 1.47.12's Errors panel
    (name, folder, Download) opened from the error toast. Waits until all are there or `timeout`."""
    deadline, clicked, res = time.monotonic() + timeout, False, {"rows": {}}
    while time.monotonic() < deadline:
        res = page.js(OFFERED_JS, names, not clicked)
        clicked = clicked or res["details"]
        if len(res["rows"]) == len(names):
            break
        time.sleep(0.3)
    return res["rows"]


# ---------------------------------------------------------------- checks on the results
def _source(name: str):
    file, reach, size, panels = EXPECT[name]
    with Image.open(INPUTS / file) as im:
        rgb = np.asarray(im.convert("RGB")).astype(np.int16)
        hole = (np.asarray(im.getchannel("A")) == 0) if im.mode == "RGBA" else None
    return rgb, hole, reach, size, panels


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Every pixel within r (a square) of the mask: of each hole, when there are several."""
    from scipy import ndimage
    return ndimage.maximum_filter(mask, size=2 * r + 1)


def check_result(server, name: str, history: dict, save_id: str, prompt: dict):
    """The saved image: its size, the original outside the mask, a fill inside (for hosted
    fills, the colour the emulator paints for this prompt and seed: a cached result is fine)."""
    err = execution_error(history)
    assert err is None, f"{name}: {err.get('exception_message')}\n{''.join(err.get('traceback', []))}"
    images = history["outputs"][save_id]["images"]
    assert len(images) == 1 and images[0]["filename"].startswith(name)
    path = server.base / images[0].get("type", "output") / images[0].get("subfolder", "") / images[0]["filename"]
    out = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
    src, hole, reach, (w, h), panels = _source(name)
    assert out.shape == (h, w, 3), f"{name}: saved {out.shape[1]}x{out.shape[0]}, expected {w}x{h}"
    if name == "outpaint":       # the source sits at (pad_left, pad_top) = (192, 0), untouched inside
        inner = out[0:384 - reach, 192 + reach:192 + 512 - reach]
        assert np.array_equal(inner, src[0:384 - reach, reach:512 - reach])
        new = np.concatenate([out[:, :192 - 8].reshape(-1, 3), out[384 + 8:].reshape(-1, 3)])
        assert new.std() > 0 and not np.array_equal(out[:, :192], np.zeros_like(out[:, :192]))
        return
    panel_w = src.shape[1]
    keep = ~_dilate(hole, reach + 2)
    ys, xs = np.nonzero(hole)
    core = (slice(ys.min() + 12, ys.max() - 11), slice(xs.min() + 12, xs.max() - 11))
    fills = [v for v in prompt.values() if v["class_type"] in ("FluxFillLocal", "FalFill", "WaveSpeedFill")]
    kinds = PANELS.get(name, ["FluxFillLocal"])
    for i, kind in enumerate(kinds):
        if kind != "FluxFillLocal":
            [f] = [v["inputs"] for v in fills if v["class_type"] == kind]
            want = fill_colour(f["prompt"], f["seed"], 0)
            panel = out[:, i * (panel_w + 16):i * (panel_w + 16) + panel_w]
            got = np.median(panel[core].reshape(-1, 3), axis=0)
            assert np.abs(got - want).max() <= 3, \
                f"{name} panel {i} ({kind}): {got} inside the mask, emulator paints {want}"
    for i in range(panels):      # A/B: each panel is the photo with its own fill
        panel = out[:, i * (panel_w + 16):i * (panel_w + 16) + panel_w]
        assert np.array_equal(panel[keep], src[keep]), f"{name} panel {i}: pixels outside the mask changed"
        assert np.abs(panel[hole] - src[hole]).mean() > 1.0, f"{name} panel {i}: the masked area was not filled"


def save_node_id(ui: dict) -> str:
    [save] = [n for n in ui["nodes"] if n["type"] == "SaveImage"]
    return str(save["id"])


def wait_new_prompt(server, before: set, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = {k: v for k, v in server.get("/history").json().items() if k not in before}
        done = [v for v in new.values() if v.get("status", {}).get("completed") is not None
                and v["status"].get("status_str") in ("success", "error")]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no queued prompt finished in {timeout:.0f}s:\n{server.log_tail()}")


# ---------------------------------------------------------------- runs
@pytest.mark.parametrize("name", NAMES)
def test_api_twin_runs_through_post_prompt(server, emus, name):
    fal, ws = emus
    api = api_workflow(name)
    history = server.run(tiny_api(api), timeout=180)
    [save_id] = [k for k, v in api.items() if v["class_type"] == "SaveImage"]
    check_result(server, name, history, save_id, api)
    kinds = {v["class_type"] for v in api.values()}
    # the first run of a hosted fill reaches the emulator; an identical one later may come
    # from the pack's result cache (user/fluxfill/cache), so: at least once so far
    assert bool(fal.requests) >= ("FalFill" in kinds) and bool(ws.requests) >= ("WaveSpeedFill" in kinds)


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_loads_and_runs_from_the_page(server, page, name):
    # the file exactly as the templates menu serves it
    ui = page.js_async(f"const r = await fetch('/api/workflow_templates/{PACK}/{name}.json'); return await r.json();")
    assert ui == ui_workflow(name)
    page.load_workflow(ui)
    if name in LOCAL_NAMES:       # this server has no FLUX files: the page offers them, the user closes that
        models = {m["name"]: m for n in ui["nodes"] for m in n.get("properties", {}).get("models", [])}
        rows = offered_models(page, list(models))
        assert sorted(rows) == sorted(models), f"offered {rows} (screenshot {page.screenshot(name + '-models')})"
        for file, row in rows.items():
            assert models[file]["directory"] in row, row
        page.close_dialogs()
    types = page.js(TINY_JS, STOCK_LOADERS, TEST_STEPS, TEST_MP)
    assert not set(types) & set(STOCK_LOADERS)
    print("screenshot:", page.screenshot(f"{name}-loaded"))
    before = set(server.get("/history").json())
    page.queue(via="button")
    history = wait_new_prompt(server, before)
    print("screenshot:", page.screenshot(f"{name}-done"))
    check_result(server, name, history, save_node_id(ui), history["prompt"][2])
    # what the page sent is the API twin (with the same stand-ins): the two files agree, and
    # this frontend reads the widget values where the builder's frontend put them
    assert comparable(history["prompt"][2]) == comparable(tiny_api(api_workflow(name)))
    errors, ignored = page.console_errors()
    # 1.32.9's Missing Models dialog asks huggingface.co for each file's size (fetchFileSize):
    # without internet that is an error it logs; only that message, only from that function
    offline = [m for m in errors
               if '"Error fetching file size:" TypeError: Failed to fetch' in m and "at fetchFileSize" in m]
    errors = [m for m in errors if m not in offline]
    ignored += [(m, "1.32.9's Missing Models dialog measuring the downloads; no internet here") for m in offline]
    for msg, why in ignored:
        print(f"ignored console error ({why}): {msg[:200]}")
    assert not errors, "console errors:\n" + "\n".join(errors)
