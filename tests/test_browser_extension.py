"""FluxFill's web extension (web/fluxfill.js) in the host's real frontend, headless Chromium.

One server for the module, with the fal/WaveSpeed emulators: FAL_KEY is set in its
environment, the WaveSpeed key is not (the test stores it through the settings form).
Tests run in file order. With FLUXFILL_SCREENSHOTS=DIR the named README screenshots
(hosted-node-price.png, node-search.png, settings-keys.png, progress-text.png,
maskprep-pasteback.png) are written there; otherwise to a temporary folder."""
import json
import time

import numpy as np
import pytest
from PIL import Image

from browser import opened_page
from comfy_host import ComfyServer, execution_error, make_base_dir
from emulators import FalEmulator, WaveSpeedEmulator
from test_browser_smoke import assert_no_console_errors
from test_hosted_nodes_graphs import FAL_KEY, emulator_env

pytestmark = pytest.mark.timeout(240)
WS_SECRET = "ws-SECRET-from-the-page-3f9a1c"
DISPLAY_NAMES = ["Mask Prep (FluxFill)", "Paste Back (FluxFill)", "FLUX Fill (local)",
                 "LoRA Stack (FluxFill)", "FLUX Fill (fal.ai)", "FLUX Fill (WaveSpeedAI)"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with FalEmulator(FAL_KEY, run_seconds=2.5) as fal, WaveSpeedEmulator("unused", run_seconds=0.05) as ws:
        env = emulator_env(fal, ws, with_keys=False)
        env["FAL_KEY"] = FAL_KEY
        srv = ComfyServer(make_base_dir(tmp_path_factory.mktemp("browser_ext")), env=env).start()
        yield srv
        srv.stop()


@pytest.fixture(scope="module")
def page(server):
    with opened_page(server.url, "fluxfill-browser-", width=1280, height=860) as p:
        yield p


def status_text(page, node_id) -> str:
    return page.js("return app.graph.getNodeById(arguments[0]).fluxfill.el.innerText", node_id)


def wait_price(page, node_id, previous=None, timeout=10.0) -> str:
    """The status panel's price line once it is there (and differs from `previous`)."""
    return page.wait_for("""const st = app.graph.getNodeById(arguments[0])?.fluxfill;
        if (!st || !st.priceSig || st.el.dataset.priceFor !== st.priceSig) return null;   // not answered yet
        const t = st.el.querySelector('.fluxfill-price').textContent;
        return t !== arguments[1] ? t : null;""", timeout,
                         f"the price on node {node_id}", node_id, previous)


def fresh_graph(page):
    """A new blank workflow, as File > New does. (Not app.graph.clear(): 1.47.12 keeps widget
    state per node id, so a new node reusing a cleared node's id would inherit its values.)"""
    page.js_async("await app.extensionManager.command.execute('Comfy.NewBlankWorkflow');")
    page.wait_for("return (app.graph.nodes || app.graph._nodes).length === 0", 10, "a blank workflow")
    page.reset_view()


def test_extension_loads_without_console_errors(page, server):
    assert "/extensions/ComfyUI-FluxFill/fluxfill.js" in server.get("/extensions").json()
    assert page.js("return (app.extensions || []).some(e => e.name === 'FluxFill.Hosted')")
    assert {"FalFill", "WaveSpeedFill", "MaskPrep", "PasteBack"} <= set(page.node_types())
    assert_no_console_errors(page)


@pytest.mark.parametrize("name", DISPLAY_NAMES)
def test_node_found_by_search(page, name):
    names = page.search_nodes(name)
    if name == "FLUX Fill (fal.ai)":
        box = page.js("""const b = document.activeElement.closest('[role=dialog], [role=search]');
            const r = b.getBoundingClientRect(); return [r.left, r.top, r.width, Math.min(r.height, 420)];""")
        print("screenshot:", page.screenshot_crop("node-search", box))
    page.close_node_search()
    assert name in names[:3], f"search for {name!r} listed {names[:10]}"
    assert_no_console_errors(page)


def test_price_follows_num_images_endpoint_and_size(page):
    fresh_graph(page)
    fal = page.add_node("FalFill", (20, 40))
    ws = page.add_node("WaveSpeedFill", (460, 40))
    page.set_widget(fal, "endpoint", "fal-ai/flux-lora/inpainting")
    one = wait_price(page, fal)
    assert one.startswith("≈ $0.0350") and "× 1" in one, one          # 1 MP at $0.035/MP
    page.set_widget(fal, "num_images", 3)
    three = wait_price(page, fal, one)
    assert three.startswith("≈ $0.1050"), three
    page.set_widget(fal, "endpoint", "fal-ai/flux-general/inpainting")
    general = wait_price(page, fal, three)
    assert general.startswith("≈ $0.2250"), general                    # $0.075/MP × 3
    page.set_widget(fal, "image_size", "square")                       # 512x512 = 0.25 MP
    small = wait_price(page, fal, general)
    assert small.startswith("≈ $0.0562") or small.startswith("≈ $0.0563"), small
    assert "512×512" in status_text(page, fal)
    page.set_widget(fal, "endpoint", "fal-ai/flux-lora-fill")
    assert "price unknown" in wait_price(page, fal, small)
    page.set_widget(fal, "endpoint", "fal-ai/flux-lora/inpainting")
    page.set_widget(fal, "image_size", "input")
    page.set_widget(fal, "num_images", 2)
    wait_price(page, fal, "price unknown")

    ws_one = wait_price(page, ws)
    assert ws_one.startswith("≈ $0.0350"), ws_one                      # per image
    page.set_widget(ws, "num_images", 4)
    assert wait_price(page, ws, ws_one).startswith("≈ $0.1400")
    # the key line: FAL_KEY is in the server's environment, the WaveSpeed key is nowhere yet
    assert "fal.ai key: configured" in status_text(page, fal)
    assert "WaveSpeedAI key: not set" in status_text(page, ws)
    time.sleep(0.5)
    print("screenshot:", page.screenshot_crop("hosted-node-price", page.node_rect(ws)))
    assert_no_console_errors(page)


GREYED = {
    "fal-ai/flux-lora-fill": {"strength", "safety_tolerance", "enhance_prompt", "controlnets",
                              "controlnet_unions", "width", "height"},
    "fal-ai/flux-pro/v1/fill": {"image_size", "width", "height", "steps", "guidance", "strength",
                                "enable_safety_checker", "acceleration", "paste_back", "resize_to_original",
                                "in_context_fill", "use_prompt", "lora_layer_scales", "controlnets",
                                "controlnet_unions"},
}


def greyed(page, node_id) -> set:
    return {k for k, v in page.widget_values(node_id).items() if v["disabled"]}


def test_unused_widgets_greyed_and_values_survive_save_load_and_api_export(page, server):
    fresh_graph(page)
    fal = page.add_node("FalFill", (20, 40))
    page.set_widget(fal, "endpoint", "fal-ai/flux-lora-fill")
    page.wait_for("return app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'strength').disabled",
                  5, "strength greyed on flux-lora-fill", fal)
    assert greyed(page, fal) == GREYED["fal-ai/flux-lora-fill"]
    page.set_widget(fal, "image_size", "custom")                       # width/height now used
    page.wait_for("return !app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'width').disabled",
                  5, "width enabled with image_size custom", fal)
    page.set_widget(fal, "endpoint", "fal-ai/flux-pro/v1/fill")
    page.wait_for("return app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'steps').disabled",
                  5, "steps greyed on flux-pro", fal)
    assert greyed(page, fal) == GREYED["fal-ai/flux-pro/v1/fill"]
    assert "not used by fal-ai/flux-pro/v1/fill" in status_text(page, fal)
    # greyed widgets keep what the user set; the endpoint's defaults are not written into them
    edits = {"steps": 12, "guidance": 31.5, "strength": 0.4, "width": 768, "height": 512,
             "controlnets": '[{"path": "x"}]', "safety_tolerance": "5", "num_images": 2, "prompt": "a red door"}
    for name, value in edits.items():
        page.set_widget(fal, name, value)
    before = page.widget_values(fal)
    assert {k: before[k]["value"] for k in edits} == edits

    # save → load (File > Save / Open go through these two)
    # as a saved file: JSON text (undefined fields dropped), then opened again
    saved = page.js_async("""window.__fluxfillSaved = JSON.stringify(app.graph.serialize());
        await app.loadGraphData(JSON.parse(window.__fluxfillSaved));
        return JSON.parse(window.__fluxfillSaved);""")
    node = next(n for n in saved["nodes"] if str(n["id"]) == str(fal))
    assert "fluxfill_status" not in json.dumps(node.get("widgets_values"))
    page.wait_for("return !!app.graph.getNodeById(arguments[0])?.fluxfill", 5, "the node reloaded", fal)
    after = page.widget_values(fal)
    assert {k: after[k]["value"] for k in before if k != "fluxfill_status"} == \
           {k: before[k]["value"] for k in before if k != "fluxfill_status"}
    page.wait_for("return app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'steps').disabled",
                  5, "greying restored after load", fal)
    assert greyed(page, fal) == GREYED["fal-ai/flux-pro/v1/fill"]

    # API export: every input of the node, greyed ones included, with their values
    prompt = page.js_async("return (await app.graphToPrompt()).output;")
    inputs = prompt[str(fal)]["inputs"]
    info = server.object_info("FalFill")["FalFill"]["input"]
    widget_inputs = {k for k, v in info["required"].items() if k not in ("image", "mask")}
    assert widget_inputs <= set(inputs), widget_inputs - set(inputs)
    assert "fluxfill_status" not in inputs
    assert {k: inputs[k] for k in edits} == edits
    assert inputs["endpoint"] == "fal-ai/flux-pro/v1/fill" and inputs["image_size"] == "custom"
    assert_no_console_errors(page)


def test_key_settings_entry_is_write_only(page, server):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    fresh_graph(page)
    ws = page.add_node("WaveSpeedFill", (20, 40))
    page.wait_for("return /key: not set/.test(app.graph.getNodeById(arguments[0]).fluxfill.el.innerText)",
                  5, "WaveSpeed key shown as not set", ws)
    page.open_settings("FluxFill")
    form = page.wait_for("return document.querySelector('form.fluxfill-keys')", 10, "the FluxFill key form")
    Select(form.find_element("css selector", "select")).select_by_value("wavespeed")
    field = form.find_element("css selector", "input[name=fluxfill-key]")
    assert field.get_attribute("type") == "password"
    field.send_keys(WS_SECRET)
    field.send_keys(Keys.ENTER)                      # Enter submits, as the Save button does
    page.wait_for("return /WaveSpeedAI key saved/.test(document.querySelector('.fluxfill-key-status').textContent)",
                  10, "the key form to confirm")
    assert field.get_attribute("value") == ""
    print("screenshot:", page.screenshot_crop("settings-keys", page.js("""
        const d = document.querySelector('form.fluxfill-keys').closest('[role=dialog]').getBoundingClientRect();
        return [d.left, d.top, d.width, Math.min(d.height, 380)];""")))

    assert server.get("/fluxfill/keys").json() == {"fal": True, "wavespeed": True}
    assert json.loads((server.base / "user" / "fluxfill" / "keys.json").read_text()) == {"wavespeed": WS_SECRET}
    page.close_dialogs()
    page.wait_for("return /WaveSpeedAI key: configured/.test(app.graph.getNodeById(arguments[0]).fluxfill.el.innerText)",
                  5, "the node to show the key as configured", ws)

    # the key is nowhere the frontend keeps or sees things
    settings_files = list((server.base / "user").rglob("comfy.settings.json"))
    assert settings_files and not any(WS_SECRET in f.read_text() for f in settings_files)
    seen = page.js_async("""
        const texts = [JSON.stringify(app.graph.serialize()), JSON.stringify((await app.graphToPrompt()).output),
                       JSON.stringify({...localStorage}), JSON.stringify({...sessionStorage}),
                       document.documentElement.outerHTML];
        for (const path of ['/fluxfill/keys', '/fluxfill/endpoints', '/settings', '/settings/FluxFill.ProviderKeys'])
            texts.push(await (await fetch('/api' + path)).text());
        return texts;""")
    for text in seen:
        assert WS_SECRET not in text and FAL_KEY not in text
    assert not any(WS_SECRET in f.read_text(errors="replace") for f in (server.base / "user").rglob("*")
                   if f.is_file() and f.name != "keys.json")
    assert_no_console_errors(page)


def test_progress_text_of_a_hosted_run_shows_on_the_node(page, server):
    """The fal emulator takes 2.5 s: the node's progress text (sent with send_progress_text)
    is shown by the frontend itself, in its text preview widget on the node."""
    fresh_graph(page)
    pat = page.add_node("FluxFillTestPattern", (20, 40))
    fal = page.add_node("FalFill", (340, 40))
    prev = page.add_node("PreviewImage", (780, 40))
    page.js("""const [a, b, c] = Array.from(arguments).map(id => app.graph.getNodeById(id));
        a.connect(0, b, 0); a.connect(1, b, 1); b.connect(0, c, 0);""", pat, fal, prev)
    page.set_widget(fal, "endpoint", "fal-ai/flux-lora/inpainting")
    page.set_widget(fal, "prompt", "a blue window")
    page.set_widget(fal, "control_after_generate", "fixed")
    page.queue(via="button")
    read = """const n = app.graph.getNodeById(arguments[0]);
        const w = (n.widgets || []).find(w => w.name === '$$node-text-preview' || w.type === 'progressText');
        return w && w.value ? String(w.value) : null;"""
    texts, deadline = set(), time.monotonic() + 60
    while time.monotonic() < deadline:
        t = page.js(read, fal)
        if t:
            texts.add(t)
        if any("elapsed" in t for t in texts) and len(texts) >= 2:
            break
        time.sleep(0.2)
    # the bottom of the node (status panel and progress text) near the bottom of the canvas
    page.js("""const n = app.graph.getNodeById(arguments[0]), c = document.querySelector('canvas#graph-canvas');
        app.canvas.ds.scale = 1; app.canvas.ds.offset = [90 - n.pos[0], c.clientHeight - 30 - n.pos[1] - n.size[1]];
        app.canvas.setDirty(true, true);""", fal)
    time.sleep(0.4)
    x, y, w, h = page.node_rect(fal)
    print("screenshot:", page.screenshot_crop("progress-text", [x, y + h - 300, w, 300]))
    print("progress texts seen:", texts)
    for entry in server.get("/history").json().values():
        assert not execution_error(entry), execution_error(entry)
    # the node's own texts: its estimate first, then the request's state and the time elapsed
    assert any("elapsed" in t and ("fal" in t or "queue" in t) for t in texts), texts
    page.wait_for("const o = app.nodeOutputs || {}; return !!(o[String(arguments[0])]?.images?.length)",
                  60, "the preview image", prev)
    assert_no_console_errors(page)


def test_maskprep_pasteback_workflow_from_the_page(page, server, tmp_path):
    """LoadImage (RGBA upload: transparent = masked) → MaskPrep → PasteBack → SaveImage."""
    rgb = np.zeros((96, 128, 4), np.uint8)
    rgb[..., 0] = np.arange(128, dtype=np.uint8)[None] * 2
    rgb[..., 1] = 90
    rgb[..., 3] = 255
    rgb[30:60, 40:80, 3] = 0
    src = tmp_path / "fluxfill_browser_src.png"
    Image.fromarray(rgb, "RGBA").save(src)
    name = server.upload_image(src)
    fresh_graph(page)
    load = page.add_node("LoadImage", (70, 110))
    prep = page.add_node("MaskPrep", (400, 110))
    paste = page.add_node("PasteBack", (700, 110))
    save = page.add_node("SaveImage", (960, 110))
    time.sleep(1.0)              # let the new node's default preview load first, then pick ours
    page.set_widget(load, "image", name)
    page.set_widget(save, "filename_prefix", "fluxfill_browser_ext")
    page.js("""const [l, m, p, s] = Array.from(arguments).map(id => app.graph.getNodeById(id));
        l.connect(0, m, 0); l.connect(1, m, 'mask'); m.connect(0, p, 0); m.connect(2, p, 'stitch');
        p.connect(0, s, 0);""", load, prep, paste, save)
    before = set(server.get("/history").json())
    page.queue(via="button")
    deadline, entry = time.monotonic() + 90, None
    while entry is None and time.monotonic() < deadline:
        new = {k: v for k, v in server.get("/history").json().items() if k not in before}
        entry = next((v for v in new.values() if v.get("status", {}).get("completed")), None)
        time.sleep(0.3)
    assert entry is not None, f"the workflow did not finish: {server.get('/history').json()}"
    [path] = server.output_files(entry)
    out = np.asarray(Image.open(path).convert("RGB"))
    assert out.shape == (96, 128, 3)
    assert np.array_equal(out[:20], rgb[:20, :, :3])        # far from the mask: the original, exactly
    page.wait_for("const o = app.nodeOutputs || {}; return !!(o[String(arguments[0])]?.images?.length)",
                  30, "the saved image on the SaveImage node", save)
    shown = page.node_outputs(save)
    assert [i["filename"] for i in shown["images"]] == [path.name]
    time.sleep(0.5)
    r = page.node_rect(load)
    s = page.node_rect(save)
    print("screenshot:", page.screenshot_crop("maskprep-pasteback", [r[0], r[1], s[0] + s[2] - r[0],
                                                                    max(r[3], s[3], page.node_rect(prep)[3])]))
    assert_no_console_errors(page)
