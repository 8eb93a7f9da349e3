"""FluxFill's web extension (web/fluxfill.js and its modules, web/fluxfill/*.js) in the real
frontend, headless Chromium: the host's pinned frontend (1.32.9 on v0.3.75, 1.47.12 on 0.30.0)
and every newer build scripts/hosts.sh lists (1.58.1), served by the same host with
--front-end-root.

One server per frontend (module-scoped, parametrized: pytest runs every test on one frontend,
then on the next), with the fal/WaveSpeed emulators: FAL_KEY is set in its environment, the
WaveSpeed key is not (the key test stores it through the settings form). Tests run in file order
on each frontend. With FLUXFILL_SCREENSHOTS=DIR the named README screenshots (fal-node.png,
hosted-node-price.png, node-search.png, settings-keys.png, settings-limit.png,
hosted-node-limit.png, progress-text.png, maskprep-pasteback.png, maskprep-hint.png) are written there on the pinned
frontend, with a -VERSION suffix on the others; otherwise to a temporary folder. All node
screenshots are taken at 100% zoom."""
import json
import re
import time

import numpy as np
import pytest
from PIL import Image

from browser import FRONTENDS, PINNED, frontend_server, opened_page, shot_name
from comfy_host import ROOT, execution_error, make_base_dir
from emulators import FalEmulator, WaveSpeedEmulator
from test_browser_smoke import assert_no_console_errors
from test_hosted_nodes_graphs import FAL_KEY, emulator_env

pytestmark = pytest.mark.timeout(240)
WS_SECRET = "ws-SECRET-from-the-page-3f9a1c"
DISPLAY_NAMES = ["Mask Prep (FluxFill)", "Paste Back (FluxFill)", "FLUX Fill (local)",
                 "LoRA Stack (FluxFill)", "FLUX Fill (fal.ai)", "FLUX Fill (WaveSpeedAI)"]
FAL_ENDPOINTS = ["fal-ai/flux-lora-fill", "fal-ai/flux-lora/inpainting", "fal-ai/flux-pro/v1/fill",
                 "fal-ai/flux-general/inpainting"]


@pytest.fixture(scope="module", params=FRONTENDS)
def frontend(request):
    """PINNED (the host's own frontend package) or a frontend version from scripts/hosts.sh."""
    return request.param


@pytest.fixture(scope="module")
def server(frontend, tmp_path_factory):
    with FalEmulator(FAL_KEY, run_seconds=2.5) as fal, WaveSpeedEmulator(WS_SECRET, run_seconds=0.05) as ws:
        env = emulator_env(fal, ws, with_keys=False)
        env["FAL_KEY"] = FAL_KEY
        srv = frontend_server(make_base_dir(tmp_path_factory.mktemp("browser_ext")), frontend, env)
        yield srv
        srv.stop()


@pytest.fixture(scope="module")
def page(server, frontend):
    with opened_page(server.url, "fluxfill-browser-", width=1280, height=860) as p:
        p.frontend = frontend
        if frontend != PINNED:
            assert p.frontend_version == frontend
        yield p


@pytest.fixture(scope="module")
def table(server):
    return server.get("/fluxfill/endpoints").json()


def shot(page, name):
    return shot_name(name, page.frontend)


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


def provider_title(table, provider) -> str:
    """What the panel calls a provider: the route's title, else the one in its node's display name."""
    title = (table.get("providers") or {}).get(provider, {}).get("title")
    return title or {"fal": "fal.ai", "wavespeed": "WaveSpeedAI"}[provider]


# ---------------------------------------------------------------- loads, search, price
WEB_FILES = sorted((ROOT / "web").rglob("*.js"))
ENTRY = ROOT / "web" / "fluxfill.js"


def _extension_url(server, path) -> str | None:
    """The URL the frontend imports web/<path> from (the host lists every .js under web/)."""
    tail = "/ComfyUI-FluxFill/" + path.relative_to(ROOT / "web").as_posix()
    return next((u for u in server.get("/extensions").json() if u.endswith(tail)), None)


def test_extension_loads_without_console_errors(page, server):
    # the frontend imports each of them as an extension (see test_only_the_entry_file_has_side_effects)
    unlisted = [str(p.relative_to(ROOT)) for p in WEB_FILES if _extension_url(server, p) is None]
    assert not unlisted, f"not in GET /extensions: {unlisted}"
    assert page.js("return (app.extensions || []).some(e => e.name === 'FluxFill.Hosted')")
    assert {"FalFill", "WaveSpeedFill", "MaskPrep", "PasteBack"} <= set(page.node_types())
    assert_no_console_errors(page)


@pytest.mark.parametrize("name", DISPLAY_NAMES)
def test_node_found_by_search(page, name):
    names = page.search_nodes(name)
    if name == "FLUX Fill (fal.ai)":
        box = page.js("""const b = document.activeElement.closest('[role=dialog], [role=search]');
            const r = b.getBoundingClientRect(); return [r.left, r.top, r.width, Math.min(r.height, 420)];""")
        print("screenshot:", page.screenshot_crop(shot(page, "node-search"), box))
    page.close_node_search()
    assert name in names[:3], f"search for {name!r} listed {names[:10]}"
    assert_no_console_errors(page)


def test_price_follows_num_images_endpoint_and_size(page, table):
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
    page.set_widget(fal, "endpoint", "fal-ai/flux-lora/inpainting")
    back = wait_price(page, fal, general)
    assert back.startswith("≈ $0.1050"), back
    page.set_widget(fal, "image_size", "square")                       # 512x512 = 0.25 MP
    small = wait_price(page, fal, back)
    assert small.startswith("≈ $0.026"), small                         # $0.035/MP × 0.25 MP × 3
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
    assert f"{provider_title(table, 'fal')} key: configured" in status_text(page, fal)
    assert f"{provider_title(table, 'wavespeed')} key: not set" in status_text(page, ws)
    page.show_node(ws)
    print("screenshot:", page.screenshot_crop(shot(page, "hosted-node-price"), page.node_rect(ws)))
    assert_no_console_errors(page)


# ---------------------------------------------------------------- how a hosted node looks (100% zoom)
def panel_geometry(page, node_id) -> dict:
    return page.js("""const st = app.graph.getNodeById(arguments[0]).fluxfill;
        const b = st.el.getBoundingClientRect(), t = st.inner.getBoundingClientRect();
        return {box: [b.left, b.top, b.width, b.height], text: [t.left, t.top, t.width, t.height],
                shown: st.el.offsetParent !== null && getComputedStyle(st.el).display !== 'none'
                    && getComputedStyle(st.el).visibility !== 'hidden',
                lines: Array.from(st.inner.children).filter(l => l.style.display !== 'none' && l.textContent)
                    .map(l => l.textContent)};""", node_id)


def widgets_area(page, node_id) -> list[float]:
    """[x, y, w, h] in page pixels from the first widget's top to the status panel's top."""
    return page.js("""const n = app.graph.getNodeById(arguments[0]);
        const c = document.querySelector('canvas#graph-canvas').getBoundingClientRect(), ds = app.canvas.ds;
        const ws = n.widgets.filter(w => !w.hidden);
        const top = ws[0].y ?? ws[0].last_y, st = n.widgets.find(w => w.name === 'fluxfill_status');
        const bottom = st.y ?? st.last_y;
        return [c.left + (n.pos[0] + ds.offset[0]) * ds.scale, c.top + (n.pos[1] + top + ds.offset[1]) * ds.scale,
                n.size[0] * ds.scale, (bottom - top) * ds.scale];""", node_id)


def longest_blank_band(png, area, ratio=1.0) -> int:
    """The tallest run of pixel rows, inside the widgets' column, showing nothing but the node's
    own background (sampled in the node's left margin, where no widget draws): an empty hole."""
    x, y, w, h = (round(v * ratio) for v in area)
    img = np.asarray(Image.open(png).convert("RGB")).astype(np.int16)
    band = img[y:y + h, x + 20:x + w - 20]
    bg = img[y:y + h, x + 4:x + 5]                       # per row: the margin column
    blank = (np.abs(band - bg).max(axis=2) <= 6).all(axis=1)
    best = run = 0
    for b in blank:
        run = run + 1 if b else 0
        best = max(best, run)
    return best


def expected_labels(table, node, endpoint, values) -> dict:
    """{widget: label} the node should show for sentinel values, from the route's table."""
    fields = table["widgets"][node]
    params = {p["name"]: p for p in table["endpoints"][endpoint]["params"]}
    out = {}
    for name, sentinel in (("steps", -1), ("guidance", -1), ("strength", -1), ("output_format", "default")):
        if name in fields and values.get(name) == sentinel and fields[name] in params \
                and params[fields[name]]["default"] is not None:
            d = params[fields[name]]["default"]
            out[name] = f"{name} ({sentinel if isinstance(sentinel, str) else json.dumps(sentinel)} = " \
                        f"{d if isinstance(d, str) else json.dumps(d)})"
    return out


def check_node_look(page, table, node_id, node, endpoint, name) -> list[dict]:
    """At 100% zoom: the panel shows all its lines inside the node, no widget leaves an empty
    hole, unused widgets are greyed with their label or take no space, and sentinels say what
    they mean. Returns the layout; saves screenshot `name`."""
    rect = page.show_node(node_id)
    assert page.js("return app.canvas.ds.scale") == 1
    geo = panel_geometry(page, node_id)
    full = page.screenshot(name + "-full")
    ratio = page.js("return window.devicePixelRatio || 1")
    print("screenshot:", page.screenshot_crop(name, rect, max_width=1200))
    bx, by, bw, bh = geo["box"]
    tx, ty, tw, th = geo["text"]
    assert geo["shown"] and bh > 0, geo
    assert ty >= by - 0.5 and ty + th <= by + bh + 0.5, \
        f"{name}: the panel's text ({th:.0f} px) is cut off by its box ({bh:.0f} px): {geo}"
    assert by + bh <= rect[1] + rect[3] + 0.5, f"{name}: the panel reaches below the node: {geo} {rect}"
    assert len(geo["lines"]) >= 3, geo                      # price, size, key (+ unused widgets)

    layout = page.widget_layout(node_id)
    by_name = {w["name"]: w for w in layout}
    unused = set(filter(None, page.js("return app.graph.getNodeById(arguments[0]).fluxfill.el.dataset.unused",
                                      node_id).split(",")))
    shown = [w for w in layout if not w["hidden"]]
    for a, b in zip(shown, shown[1:]):                      # each shown widget right after the one above
        gap = b["y"] - (a["y"] + a["h"])
        assert -0.5 <= gap <= 6, f"{name}: {gap:.0f} px between {a['name']} and {b['name']}: {layout}"
    for w in shown:
        if w["dom"] is not None and w["h"] > 0:             # a text box given room is on screen
            assert w["dom"], f"{name}: {w['name']} has {w['h']:.0f} px but its text box is not shown"
    for n in unused:
        w = by_name[n]
        if w["dom"] is None:
            assert w["disabled"] and not w["hidden"], f"{name}: unused {n} should be greyed: {w}"
        else:
            assert w["hidden"], f"{name}: unused text box {n} should take no space: {w}"
    for w in layout:                                        # nothing else hidden by the extension
        if w["name"] not in unused and w["name"] != "fluxfill_status":
            assert not w["hidden"], w
    band = longest_blank_band(full, widgets_area(page, node_id), ratio)
    assert band <= 26, f"{name}: an empty band of {band} px among the widgets (screenshot {full})"

    values = {w["name"]: w["value"] for w in layout}
    want = expected_labels(table, node, endpoint, values)
    for w in ("steps", "guidance", "strength", "output_format"):
        if w in by_name:
            assert by_name[w]["label"] in ((want[w],) if w in want else (None, w)), (name, by_name[w], want)
    return layout


def test_hosted_nodes_show_all_panel_text_no_holes_and_what_defaults_mean(page, table):
    fresh_graph(page)
    fal = page.add_node("FalFill", (0, 0))
    for endpoint in FAL_ENDPOINTS:
        page.set_widget(fal, "endpoint", endpoint)
        wait_price(page, fal)
        short = endpoint.split("/", 1)[1].replace("/", "-")
        check_node_look(page, table, fal, "FalFill", endpoint,
                        shot(page, "fal-node" if endpoint == FAL_ENDPOINTS[0] else f"fal-node-{short}"))
    labels = {w["name"]: w["label"] for w in page.widget_layout(fal)}
    assert labels["steps"] == "steps (-1 = 28)" and labels["guidance"] == "guidance (-1 = 3.5)" \
        and labels["strength"] == "strength (-1 = 0.85)", labels        # flux-general/inpainting

    page.set_widget(fal, "endpoint", FAL_ENDPOINTS[0])
    page.set_widget(fal, "output_format", "default")
    page.set_widget(fal, "steps", 12)
    wait_price(page, fal)
    layout = check_node_look(page, table, fal, "FalFill", FAL_ENDPOINTS[0], shot(page, "fal-node-edited"))
    labels = {w["name"]: w["label"] for w in layout}
    assert labels["guidance"] == "guidance (-1 = 30)" and labels["output_format"] == "output_format (default = jpeg)"
    assert labels["steps"] in (None, "steps")                # 12 is not a sentinel
    # the saved values stay the sentinels; no label text is saved
    saved = page.js("return JSON.stringify(app.graph.serialize())")
    node = next(n for n in json.loads(saved)["nodes"] if str(n["id"]) == str(fal))
    assert -1 in node["widgets_values"] and "default" in node["widgets_values"], node["widgets_values"]
    assert "(-1 =" not in saved and "(default =" not in saved
    prompt = page.js_async("return (await app.graphToPrompt()).output;")[str(fal)]["inputs"]
    assert (prompt["guidance"], prompt["strength"], prompt["output_format"], prompt["steps"]) == (-1, -1, "default", 12)

    # a narrow node: lines wrap, the panel grows with them
    page.js("const n = app.graph.getNodeById(arguments[0]); n.setSize([300, n.size[1]]);"
            " app.canvas.setDirty(true, true);", fal)
    time.sleep(0.5)
    check_node_look(page, table, fal, "FalFill", FAL_ENDPOINTS[0], shot(page, "fal-node-narrow"))

    ws = page.add_node("WaveSpeedFill", (700, 0))
    wait_price(page, ws)
    check_node_look(page, table, ws, "WaveSpeedFill", "wavespeed-ai/flux-fill-dev", shot(page, "wavespeed-node"))
    assert_no_console_errors(page)


# ---------------------------------------------------------------- unused widgets keep their values
UNUSED = {
    "fal-ai/flux-lora-fill": {"strength", "safety_tolerance", "enhance_prompt", "controlnets",
                              "controlnet_unions", "width", "height"},
    "fal-ai/flux-pro/v1/fill": {"image_size", "width", "height", "steps", "guidance", "strength",
                                "enable_safety_checker", "acceleration", "paste_back", "resize_to_original",
                                "in_context_fill", "use_prompt", "lora_layer_scales", "controlnets",
                                "controlnet_unions"},
}
TEXT_BOXES = {"prompt", "controlnets", "controlnet_unions"}     # multiline: DOM widgets


def unused(page, node_id) -> set:
    """Widgets shown as unused: greyed (canvas widgets) or taking no space (text boxes)."""
    return {k for k, v in page.widget_values(node_id).items() if v["disabled"] or v["hidden"]}


def test_unused_widgets_greyed_and_values_survive_save_load_and_api_export(page, server):
    fresh_graph(page)
    fal = page.add_node("FalFill", (20, 40))
    page.set_widget(fal, "endpoint", "fal-ai/flux-lora-fill")
    page.wait_for("return app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'strength').disabled",
                  5, "strength greyed on flux-lora-fill", fal)
    assert unused(page, fal) == UNUSED["fal-ai/flux-lora-fill"]
    values = page.widget_values(fal)
    assert {k for k in UNUSED["fal-ai/flux-lora-fill"] if values[k]["hidden"]} == {"controlnets", "controlnet_unions"}
    page.set_widget(fal, "image_size", "custom")                       # width/height now used
    page.wait_for("return !app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'width').disabled",
                  5, "width enabled with image_size custom", fal)
    page.set_widget(fal, "endpoint", "fal-ai/flux-pro/v1/fill")
    page.wait_for("return app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'steps').disabled",
                  5, "steps greyed on flux-pro", fal)
    assert unused(page, fal) == UNUSED["fal-ai/flux-pro/v1/fill"]
    assert "not used by fal-ai/flux-pro/v1/fill" in status_text(page, fal)
    # unused widgets keep what the user set; the endpoint's defaults are not written into them
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
    assert unused(page, fal) == UNUSED["fal-ai/flux-pro/v1/fill"]

    # API export: every input of the node, unused ones included, with their values
    prompt = page.js_async("return (await app.graphToPrompt()).output;")
    inputs = prompt[str(fal)]["inputs"]
    info = server.object_info("FalFill")["FalFill"]["input"]
    widget_inputs = {k for k, v in info["required"].items() if k not in ("image", "mask")}
    assert widget_inputs <= set(inputs), widget_inputs - set(inputs)
    assert "fluxfill_status" not in inputs
    assert {k: inputs[k] for k in edits} == edits
    assert inputs["endpoint"] == "fal-ai/flux-pro/v1/fill" and inputs["image_size"] == "custom"

    # back to an endpoint that takes everything the user set: nothing greyed or hidden stays so
    page.set_widget(fal, "endpoint", "fal-ai/flux-general/inpainting")
    page.wait_for("return !app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'controlnets').hidden",
                  5, "controlnets shown on flux-general", fal)
    assert not ({"steps", "guidance", "strength", "controlnets", "controlnet_unions", "width", "height"}
                & unused(page, fal))
    assert_no_console_errors(page)


# ---------------------------------------------------------------- seed of new hosted nodes
def test_new_hosted_nodes_start_fixed_loaded_workflows_keep_their_seed_control(page, server):
    fresh_graph(page)
    fal = page.add_node_from_search("FLUX Fill (fal.ai)", "FLUX Fill (fal.ai)")     # as a user adds it
    ws = page.add_node("WaveSpeedFill", (500, 40))                                   # LiteGraph.createNode
    local = page.add_node("FluxFillLocal", (900, 40))
    assert page.js("return app.graph.getNodeById(arguments[0]).type", fal) == "FalFill"
    assert (page.control_value(fal), page.control_value(ws), page.control_value(local)) == \
           ("fixed", "fixed", "randomize")
    # the user can still pick randomize, and a saved workflow keeps what it saved
    page.set_control(fal, "randomize")
    page.set_control(ws, "increment")
    page.set_control(local, "fixed")
    saved = page.js("return JSON.stringify(app.graph.serialize())")
    fresh_graph(page)
    page.js_async("await app.loadGraphData(JSON.parse(arguments[0]));", saved)
    page.wait_for("return (app.graph.nodes || app.graph._nodes).length === 3", 10, "the saved workflow")
    time.sleep(0.3)
    assert (page.control_value(fal), page.control_value(ws), page.control_value(local)) == \
           ("randomize", "increment", "fixed")
    # ... also when it is dropped / opened as a file with a hosted node on randomize
    wf = json.loads(saved)
    fresh_graph(page)
    page.load_workflow(wf)
    time.sleep(0.3)
    assert page.control_value(fal) == "randomize"
    # a new node after that is fixed again
    again = page.add_node("FalFill", (20, 600))
    assert page.control_value(again) == "fixed"
    assert_no_console_errors(page)


# ---------------------------------------------------------------- events, not polling; facts from the route
def _code_only(js: str) -> str:
    js = re.sub(r"/\*.*?\*/", "", js, flags=re.S)
    return "\n".join(re.sub(r"(^|\s)//.*$", "", line) for line in js.splitlines())


def test_only_the_entry_file_has_side_effects():
    """The frontend imports every web/**/*.js as an extension: only web/fluxfill.js may do
    anything when imported (fetch the table, register the extension); the other modules' top
    level only imports, declares and exports."""
    declaration = re.compile(r"(import|export|const|let|function|async function|function\*)\b|[}\])]")
    for path in WEB_FILES:
        code = _code_only(path.read_text())
        if path == ENTRY:
            assert code.count("registerExtension(") == 1
            continue
        assert "registerExtension" not in code, path.name
        top_level = [line for line in code.splitlines() if line.strip() and not line[0].isspace()]
        statements = [line for line in top_level if not declaration.match(line)]
        assert not statements, f"{path.relative_to(ROOT)} runs code when imported: {statements}"


def test_extension_declares_no_endpoint_facts_and_does_not_poll(table):
    code = "\n".join(_code_only(path.read_text()) for path in WEB_FILES)
    assert "setInterval" not in code
    facts = set(table["endpoints"]) | {ep["title"] for ep in table["endpoints"].values()} \
        | {ep["node"] for ep in table["endpoints"].values()} \
        | {"fal.ai", "WaveSpeedAI", "FAL_KEY", "WAVESPEED_API_KEY"} \
        | {p.get("title", "") for p in (table.get("providers") or {}).values()} - {""}
    for widgets in table["widgets"].values():
        facts |= {f"'{w}'" for w in widgets} | {f'"{w}"' for w in widgets if w not in ("endpoint", "image_size")}
    typed = sorted(f for f in facts if f in code)
    # the two widget names the panel's price logic reads (image_size presets/custom, width/height)
    assert set(typed) <= {'"image_size"', '"width"', '"height"', '"custom"'}, typed


def test_input_specs_are_read_in_both_object_info_shapes(page, server):
    """V1 combos are ([options], {...}), the V3 schema's ("COMBO", {"options": [...]}): the same
    spec either way (the module as the frontend loaded it: same URL, so not evaluated twice)."""
    url = _extension_url(server, ROOT / "web" / "fluxfill" / "route.js")
    got = page.js_async("""const m = await import(arguments[0]);
        return [m.readSpec([['png', 'jpeg', 'default'], {default: 'png', tooltip: 't'}]),
                m.readSpec(['COMBO', {options: ['png', 'jpeg', 'default'], default: 'png', tooltip: 't'}]),
                m.readSpec(['INT', {default: -1, min: -1, max: 50}]), m.readSpec(['IMAGE']), m.readSpec(null)];""", url)
    combo = {"type": "COMBO", "options": ["png", "jpeg", "default"], "default": "png", "tooltip": "t"}
    assert got == [combo, combo, {"type": "INT", "default": -1, "min": -1, "max": 50}, {"type": "IMAGE"}, None]
    assert page.js("return (app.extensions || []).filter(e => e.name === 'FluxFill.Hosted').length") == 1
    assert_no_console_errors(page)


def test_updates_follow_loads_and_edits_without_polling(page):
    fresh_graph(page)
    fal = page.add_node("FalFill", (20, 40))
    page.set_widget(fal, "endpoint", "fal-ai/flux-pro/v1/fill")
    saved = page.js("return JSON.stringify(app.graph.serialize())")
    fresh_graph(page)
    # a workflow opened: configure applies the values without any widget callback
    page.js_async("await app.loadGraphData(JSON.parse(arguments[0]));", saved)
    page.wait_for("""const n = app.graph.getNodeById(arguments[0]);
        return n && n.fluxfill && n.widgets.find(w => w.name === 'steps').disabled
            && n.fluxfill.el.dataset.endpoint === 'fal-ai/flux-pro/v1/fill';""", 5, "the loaded node greyed", fal)
    assert unused(page, fal) == UNUSED["fal-ai/flux-pro/v1/fill"]
    # a value changed behind the frontend's back (no callback, no event) is not picked up:
    # nothing polls; the next event (here the user's next edit) brings the node up to date
    page.js("app.graph.getNodeById(arguments[0]).widgets.find(w => w.name === 'endpoint').value"
            " = 'fal-ai/flux-lora-fill'", fal)
    time.sleep(1.6)
    shown = page.js("return app.graph.getNodeById(arguments[0]).fluxfill.el.dataset.endpoint", fal)
    assert shown == "fal-ai/flux-pro/v1/fill"
    page.set_widget(fal, "num_images", 2)
    page.wait_for("return app.graph.getNodeById(arguments[0]).fluxfill.el.dataset.endpoint === 'fal-ai/flux-lora-fill'",
                  5, "the update after the edit", fal)
    assert unused(page, fal) == UNUSED["fal-ai/flux-lora-fill"]
    # a link made or removed is an event too
    pat = page.add_node("FluxFillTestPattern", (-400, 40))
    page.js("""const n = app.graph.getNodeById(arguments[0]);
        n.widgets.find(w => w.name === 'endpoint').value = 'fal-ai/flux-general/inpainting';
        app.graph.getNodeById(arguments[1]).connect(0, n, 0);""", fal, pat)
    page.wait_for("return app.graph.getNodeById(arguments[0]).fluxfill.el.dataset.endpoint"
                  " === 'fal-ai/flux-general/inpainting'",
                  5, "the update after connecting", fal)
    assert_no_console_errors(page)


# ---------------------------------------------------------------- keys, progress, a graph run
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
    print("screenshot:", page.screenshot_crop(shot(page, "settings-keys"), page.js("""
        const d = document.querySelector('form.fluxfill-keys').closest('[role=dialog]').getBoundingClientRect();
        return [d.left, d.top, d.width, Math.min(d.height, 380)];""")))

    assert server.get("/fluxfill/keys").json() == {"fal": True, "wavespeed": True}
    assert json.loads((server.base / "user" / "fluxfill" / "keys.json").read_text()) == {"wavespeed": WS_SECRET}
    page.close_dialogs()
    page.wait_for("return /WaveSpeedAI key: configured/"
                  ".test(app.graph.getNodeById(arguments[0]).fluxfill.el.innerText)",
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


def save_limit_in_settings(page, value: str, confirmation: str):
    from selenium.webdriver.common.keys import Keys
    page.open_settings("FluxFill")
    form = page.wait_for("return document.querySelector('form.fluxfill-limit')", 10, "the FluxFill limit form")
    field = form.find_element("css selector", "input[name=fluxfill-limit]")
    page.js("arguments[0].value = ''", field)
    if value:
        field.send_keys(value)
    field.send_keys(Keys.ENTER)                      # Enter submits, as the Save button does
    page.wait_for("return document.querySelector('.fluxfill-limit-status').textContent.startsWith(arguments[0])",
                  10, "the limit form to confirm", confirmation)
    return form, field


def test_daily_limit_setting_is_stored_and_shown_on_the_panel(page, server):
    fresh_graph(page)
    node = page.add_node("WaveSpeedFill", (20, 40))
    wait_price(page, node)
    assert "limit" not in status_text(page, node)
    form, field = save_limit_in_settings(page, "5", "limit saved")
    assert field.get_attribute("value") == "5"      # unlike a key, the limit is shown
    settings = server.base / "user" / "fluxfill" / "settings.json"
    assert json.loads(settings.read_text()) == {"daily_limit_usd": 5.0}
    expected = server.get("/fluxfill/limit").json()["text"]
    assert re.fullmatch(r"today: \$\d+\.\d+ of \$5\.00 limit", expected), expected
    assert expected in form.find_element("css selector", ".fluxfill-limit-status").text
    print("screenshot:", page.screenshot_crop(shot(page, "settings-limit"), page.js("""
        const d = document.querySelector('form.fluxfill-limit').closest('[role=dialog]').getBoundingClientRect();
        return [d.left, d.top, d.width, Math.min(d.height, 380)];""")))
    page.close_dialogs()
    page.wait_for("return app.graph.getNodeById(arguments[0]).fluxfill.el.innerText.includes(arguments[1])",
                  5, "the panel's spend line", node, expected)
    page.show_node(node)
    geometry = panel_geometry(page, node)
    assert geometry["shown"] and expected in geometry["lines"], geometry
    print("screenshot:", page.screenshot_crop(shot(page, "hosted-node-limit"), page.node_rect(node)))
    # removed again (empty = no limit): the line goes, later tests run without a limit
    save_limit_in_settings(page, "", "limit removed")
    assert json.loads(settings.read_text()) == {}
    page.close_dialogs()
    page.wait_for("return !app.graph.getNodeById(arguments[0]).fluxfill.el.innerText.includes('limit')",
                  5, "the spend line to go", node)
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
    page.set_control(fal, "fixed")
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
    print("screenshot:", page.screenshot_crop(shot(page, "progress-text"), [x, y + h - 300, w, 300]))
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
    print("screenshot:", page.screenshot_crop(shot(page, "maskprep-pasteback"), [r[0], r[1], s[0] + s[2] - r[0],
                                                                    max(r[3], s[3], page.node_rect(prep)[3])]))
    assert_no_console_errors(page)


def test_maskprep_hint_and_new_widgets_on_the_canvas(page, server, tmp_path):
    """A half-opaque mask (alpha 128 in the hole): MaskPrep's hint, which names the input to
    change, shows on the node as its progress text; the run still completes. The new widgets
    (regions, region_gap; color_match) are there, set from the page, and the node shows them."""
    rgb = np.zeros((120, 200, 4), np.uint8)
    rgb[..., 1] = np.arange(200, dtype=np.uint8)[None]
    rgb[..., 2] = 120
    rgb[..., 3] = 255
    rgb[20:50, 20:60, 3] = 128
    rgb[70:100, 130:180, 3] = 128
    src = tmp_path / "fluxfill_browser_soft.png"
    Image.fromarray(rgb, "RGBA").save(src)
    name = server.upload_image(src)
    fresh_graph(page)
    load = page.add_node("LoadImage", (40, 60))
    prep = page.add_node("MaskPrep", (360, 60))
    paste = page.add_node("PasteBack", (700, 60))
    save = page.add_node("SaveImage", (1000, 60))
    time.sleep(1.0)
    page.set_widget(load, "image", name)
    page.set_widget(prep, "regions", "separate")
    page.set_widget(paste, "color_match", 0.5)
    page.js("""const [l, m, p, s] = Array.from(arguments).map(id => app.graph.getNodeById(id));
        l.connect(0, m, 0); l.connect(1, m, 'mask'); m.connect(0, p, 0); m.connect(2, p, 'stitch');
        p.connect(0, s, 0);""", load, prep, paste, save)
    # what the frontend shows on a node is what its progress_text events bring (1.58.1 clears a
    # job's texts when the job ends, too fast to read back): record them as the page receives them
    page.js("""window.__fluxfillTexts = [];
        window.comfyAPI.api.api.addEventListener('progress_text',
            (e) => window.__fluxfillTexts.push([String(e.detail.nodeId), e.detail.text]));""")
    before = set(server.get("/history").json())
    page.queue(via="button")
    read = """const n = app.graph.getNodeById(arguments[0]);
        const w = (n.widgets || []).find(w => w.name === '$$node-text-preview' || w.type === 'progressText');
        return w && w.value ? String(w.value) : null;"""
    hint = page.wait_for("""return (window.__fluxfillTexts.find(([node, text]) => node === String(arguments[0])
        && text.includes('never fully opaque')) || [])[1] || null;""", 60, "MaskPrep's hint", prep)
    assert "set threshold to 0.49" in hint, hint
    deadline, entry = time.monotonic() + 60, None
    while entry is None and time.monotonic() < deadline:
        new = {k: v for k, v in server.get("/history").json().items() if k not in before}
        entry = next((v for v in new.values() if v.get("status", {}).get("completed")), None)
        time.sleep(0.3)
    assert entry is not None and not execution_error(entry), entry
    if page.frontend == PINNED:            # the pinned frontends keep it on the node after the run
        assert "never fully opaque" in (page.js(read, prep) or ""), page.js(read, prep)
    sent = entry["prompt"][2]
    assert sent[str(prep)]["inputs"]["regions"] == "separate" and sent[str(paste)]["inputs"]["color_match"] == 0.5
    page.js("""const n = app.graph.getNodeById(arguments[0]); app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [60 - n.pos[0], 140 - n.pos[1]]; app.canvas.setDirty(true, true);""", load)
    time.sleep(0.5)
    r, m, p = page.node_rect(load), page.node_rect(prep), page.node_rect(paste)
    print("screenshot:", page.screenshot_crop(shot(page, "maskprep-hint"),
                                              [r[0], r[1], p[0] + p[2] - r[0], max(r[3], m[3], p[3])],
                                              max_width=1600))
    assert_no_console_errors(page)


# ---------------------------------------------------------------- the shipped workflows
WORKFLOWS = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))


def _graph_of(wf: dict) -> dict:
    """What a saved UI workflow says about its graph: nodes (type, mode, widget values) and links."""
    nodes = {str(n["id"]): (n["type"], n.get("mode", 0), n.get("widgets_values") or []) for n in wf["nodes"]}
    links = sorted(tuple(link[:6]) for link in wf["links"])
    return {"nodes": nodes, "links": links}


def _api_of(prompt: dict) -> dict:
    return {k: (v["class_type"], v["inputs"]) for k, v in prompt.items()}


@pytest.mark.parametrize("name", WORKFLOWS)
def test_shipped_workflow_loads_round_trips_and_exports_its_api_twin(page, server, frontend, name):
    """Every workflows/NAME.json in this frontend: opened as the templates menu serves it, its API
    export (graphToPrompt) is workflows/api/NAME.api.json (node ids, types, inputs), saving and
    opening it again changes nothing, the hosted seeds stay as saved. On the newer frontends it
    is also queued from the page (with test_workflows' stand-ins: tiny models, emulators) and
    checked; on the pinned one test_workflows.py queues it."""
    ui = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    api = json.loads((ROOT / "workflows" / "api" / f"{name}.api.json").read_text())
    served = page.js_async("const r = await fetch(arguments[0]); return await r.json();",
                           f"/api/workflow_templates/ComfyUI-FluxFill/{name}.json")
    assert served == ui
    fresh_graph(page)
    page.load_workflow(served)
    exported = page.js_async("return (await app.graphToPrompt()).output;")
    assert _api_of(exported) == _api_of(api), name
    for node in ui["nodes"]:
        if node["type"] in ("FalFill", "WaveSpeedFill", "FluxFillLocal"):
            assert page.control_value(node["id"]) == node["widgets_values"][2], (name, node["type"])
    # save → open: the same graph, the same export
    saved = page.js_async("""const s = JSON.stringify(app.graph.serialize());
        await app.loadGraphData(JSON.parse(s)); return JSON.parse(s);""")
    got, want = _graph_of(saved), _graph_of(ui)
    assert got["links"] == want["links"], name
    assert got["nodes"] == want["nodes"], {k: (got["nodes"].get(k), v) for k, v in want["nodes"].items()
                                           if got["nodes"].get(k) != v}
    page.wait_for(f"return (app.graph.nodes || app.graph._nodes).length === {len(ui['nodes'])}", 10,
                  "the reopened graph")
    assert _api_of(page.js_async("return (await app.graphToPrompt()).output;")) == _api_of(api), name
    print("screenshot:", page.screenshot(shot(page, f"workflow-{name}")))
    assert_no_console_errors(page)
    if frontend == PINNED:
        return

    from test_workflows import STOCK_LOADERS, TEST_MP, TEST_STEPS, TINY_JS, check_result, comparable, \
        save_node_id, tiny_api, wait_new_prompt
    if not server.get("/fluxfill/keys").json().get("wavespeed"):
        import requests
        requests.post(server.url + "/fluxfill/keys", json={"provider": "wavespeed", "key": WS_SECRET},
                      timeout=10).raise_for_status()
    types = page.js(TINY_JS, STOCK_LOADERS, TEST_STEPS, TEST_MP)
    assert not set(types) & set(STOCK_LOADERS)
    before = set(server.get("/history").json())
    page.queue(via="button")
    history = wait_new_prompt(server, before)
    check_result(server, name, history, save_node_id(ui), history["prompt"][2])
    assert comparable(history["prompt"][2]) == comparable(tiny_api(api))
    assert_no_console_errors(page)
