"""The real ComfyUI frontend in headless Chromium (Selenium), for browser tests.

Chromium and chromedriver come from Debian packages (scripts/browser_deps.sh): the machines
have no internet, so neither Playwright's nor Selenium Manager's browser download works;
passing both binary paths keeps Selenium Manager out of it.

Works with the frontends both hosts ship (comfyui-frontend-package 1.47.12 on 0.30.0, 1.32.9
on v0.3.75). On both, `window.app` (ComfyApp), `window.LiteGraph`, `app.loadGraphData`,
`app.queuePrompt` and `window.__COMFYUI_FRONTEND_VERSION__` exist, and double-clicking empty
canvas opens the node search dialog with a focused `role=combobox` input whose
`aria-controls` names the results list (`[role=option]` items; the first text line of an
item is the node's display name). What differs is only the markup around it: 1.47.12 a
custom list (`#results-list`, div options), 1.32.9 a PrimeVue AutoComplete (`ul`, li options).
"""
import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

CHROMIUM = os.environ.get("FLUXFILL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FLUXFILL_CHROMEDRIVER", "/usr/bin/chromedriver")

# Console errors that a stock host prints with NO custom nodes at all (checked on both hosts
# with an empty custom_nodes/): each is matched narrowly and printed by the tests, never hidden.
KNOWN_NOISE = [
    (r"/(api/userdata/)?user\.css - Failed to load resource: .* 404",
     "optional user stylesheet; a fresh user folder has none"),
    (r"/favicon\.ico - Failed to load resource: .* 404", "1.32.9 asks for /favicon.ico, which ComfyUI does not serve"),
    (r"/api/userdata(\?dir=(workflows|subgraphs)|/comfy\.templates\.json)\S* - Failed to load resource: .* 404",
     "per-user folders and files that a fresh user folder does not have yet"),
    (r"^https?://(?!127\.0\.0\.1[:/]|localhost[:/])\S+ - Failed to load resource: net::ERR_",
     "a request to another site (comfy.org release notes; huggingface.co model links the default "
     "graph probes on 1.47.12): test machines have no internet. Failures of the server's own "
     "URLs still count"),
    (r'"ComfyApp graph accessed before initialization"', "1.47.12's own start-up"),
    (r"vue\.esm-browser\.prod\.js \S+ TypeError: Cannot read properties of undefined \(reading 'id'\)\s+at onChange",
     "1.32.9's own start-up (a settings watcher)"),
]

READY_JS = """return !!(window.app && window.app.canvas && window.LiteGraph && app.graph
    && document.querySelector('canvas#graph-canvas')
    && Object.keys(LiteGraph.registered_node_types || {}).length > 0)"""


class BrowserError(AssertionError):
    pass


@contextlib.contextmanager
def opened_page(url: str, prefix: str, **kw):
    """A ComfyPage already opened on `url`, its screenshots in $FLUXFILL_SCREENSHOTS or a new
    /tmp/<prefix>* folder (not pytest's tmp_path: it keeps 3 runs, deleting them before anyone looks)."""
    shots = Path(os.environ.get("FLUXFILL_SCREENSHOTS") or tempfile.mkdtemp(prefix=prefix))
    print(f"\nbrowser screenshots: {shots}")
    with ComfyPage(url, shots_dir=shots, **kw) as page:
        page.open()
        print(f"frontend {page.frontend_version}")
        yield page


class ComfyPage:
    """One headless Chromium on a ComfyUI server's page. Use as a context manager."""

    def __init__(self, url: str, shots_dir=None, width: int = 1600, height: int = 1000):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        for binary in (CHROMIUM, CHROMEDRIVER):
            if not Path(binary).is_file():
                raise RuntimeError(f"{binary} is missing: run `bash scripts/browser_deps.sh` "
                                   "(apt-get install chromium chromium-driver)")
        self.url = url.rstrip("/")
        self.shots_dir = Path(shots_dir or tempfile.mkdtemp(prefix="fluxfill-shots-"))
        self.shots_dir.mkdir(parents=True, exist_ok=True)
        self._profile = tempfile.TemporaryDirectory(prefix="fluxfill-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={self._profile.name}", f"--window-size={width},{height}"):
            opts.add_argument(arg)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_script_timeout(60)
        self.driver.set_page_load_timeout(60)
        self._log: list[dict] = []
        self.search_opened_by = None

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.driver.quit()
        finally:
            self._profile.cleanup()

    def open(self, timeout: float = 90.0, returning_user: bool = True) -> "ComfyPage":
        """Load the page and wait until the app, its graph and the node definitions are there.

        returning_user: a fresh user folder makes 1.47.12 open the templates browser over the
        canvas on the first visit; set the setting a returning user has (through the server's
        own /settings route) so the canvas is free, and close any dialog still open."""
        if returning_user:
            import requests
            requests.post(f"{self.url}/settings/Comfy.TutorialCompleted", json=True, timeout=10).raise_for_status()
        self.driver.get(self.url + "/")
        self.wait_for(READY_JS, timeout, "the ComfyUI app to be ready (window.app, app.graph, node types)")
        time.sleep(0.5)    # extensions' setup() runs just after; let their console output land
        self.dismissed = self.close_dialogs()
        return self

    def open_dialogs(self) -> list[str]:
        return self.js("""return Array.from(document.querySelectorAll('[role=dialog]'))
            .filter(d => d.offsetParent !== null || getComputedStyle(d).position === 'fixed')
            .map(d => (d.innerText || '').trim().split('\\n')[0]);""")

    def close_dialogs(self) -> list[str]:
        """Close open dialogs with Escape, as a user would; returns the first line of each."""
        from selenium.webdriver.common.keys import Keys
        closed = []
        for _ in range(5):
            dialogs = self.open_dialogs()
            if not dialogs:
                break
            closed += dialogs
            self.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
            time.sleep(0.3)
        return closed

    @property
    def frontend_version(self) -> str:
        return self.js("return window.__COMFYUI_FRONTEND_VERSION__ || ''")

    # ---------------------------------------------------------------- helpers
    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def js_async(self, body: str, *args):
        """Run `body` (which may use await) and return its value; a thrown error raises."""
        script = ("const done = arguments[arguments.length - 1];"
                  f"(async () => {{ {body} }})().then(v => done({{ok: v === undefined ? null : v}}),"
                  " e => done({err: String(e && e.stack || e)}));")
        res = self.driver.execute_async_script(script, *args)
        if "err" in res:
            raise BrowserError(f"in the page: {res['err']}")
        return res["ok"]

    def wait_for(self, script: str, timeout: float, what: str, *args):
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                shot = self.screenshot("timeout")
                raise BrowserError(f"timed out after {timeout:.0f}s waiting for {what} (screenshot {shot})")
            time.sleep(0.2)

    def screenshot(self, name: str) -> Path:
        path = self.shots_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
        self.driver.save_screenshot(str(path))
        return path

    # ---------------------------------------------------------------- console
    def console(self) -> list[dict]:
        """Every console entry so far ({level, message, timestamp}); Chrome hands each out once."""
        self._log += self.driver.get_log("browser")
        return list(self._log)

    def console_errors(self) -> tuple[list[str], list[tuple[str, str]]]:
        """(errors, ignored): SEVERE messages, minus KNOWN_NOISE which comes back with its reason."""
        errors, ignored = [], []
        for entry in self.console():
            if entry["level"] != "SEVERE":
                continue
            msg = entry["message"]
            reason = next((why for pat, why in KNOWN_NOISE if re.search(pat, msg)), None)
            (ignored.append((msg, reason)) if reason else errors.append(msg))
        return errors, ignored

    # ---------------------------------------------------------------- graph
    def node_types(self) -> list[str]:
        return self.js("return Object.keys(LiteGraph.registered_node_types)")

    def graph_nodes(self) -> list[dict]:
        return self.js("return (app.graph.nodes || app.graph._nodes).map(n => ({id: n.id, type: n.type, title: n.title}))")

    def load_workflow(self, workflow: dict):
        """Load a UI-format (LiteGraph) workflow the way File > Open does."""
        self.js_async("await app.loadGraphData(arguments[0]);", workflow)
        want = len(workflow.get("nodes", []))
        self.wait_for(f"return (app.graph.nodes || app.graph._nodes).length === {want}", 10,
                      f"{want} nodes on the canvas")

    def queue(self, via: str = "button"):
        """Queue the current graph: click the page's Queue/Run button, or call app.queuePrompt."""
        if via == "api":
            self.js_async("await app.queuePrompt(0, 1);")
            return
        # 1.47.12: [data-testid=queue-button] "Run" (its neighbour with aria-label Run is the
        # mode menu); 1.32.9: a "Run" button; the legacy menu (hidden on both): "Queue Prompt"
        button = self.js("""return Array.from(document.querySelectorAll('button')).find(b =>
            b.offsetParent !== null && (b.dataset.testid === 'queue-button'
            || ['Run', 'Queue Prompt'].includes(b.innerText.trim()))) || null;""")
        if button is not None:
            button.click()
            return
        raise BrowserError("no Queue/Run button is visible on the page (screenshot "
                           f"{self.screenshot('no-queue-button')})")

    def node_outputs(self, node_id) -> dict | None:
        """The outputs the page received for a node over the websocket (images shown on it)."""
        return self.js("""const id = String(arguments[0]);
            const store = app.nodeOutputs || {};
            const hit = store[id] || Object.entries(store).find(([k]) => k.split(':').pop() === id)?.[1];
            const n = app.graph.getNodeById(Number(id));
            return hit || (n && n.images ? {images: n.images} : null);""", node_id)

    # ---------------------------------------------------------------- node search
    def _empty_canvas_point(self):
        """Offsets from the canvas centre of a point that shows bare canvas (no node, no panel)."""
        return self.js("""const c = document.querySelector('canvas#graph-canvas');
            const r = c.getBoundingClientRect();
            const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
            for (const [dx, dy] of [[0, 0], [-0.3, -0.3], [0.3, 0.3], [-0.3, 0.3], [0.3, -0.3],
                                    [0, 0.35], [0, -0.35], [-0.4, 0], [0.4, 0]]) {
              const x = cx + dx * r.width, y = cy + dy * r.height;
              if (document.elementFromPoint(x, y) !== c) continue;
              const p = app.canvas.convertEventToCanvasOffset({clientX: x, clientY: y});
              if (app.graph.getNodeOnPos(p[0], p[1])) continue;
              if (app.graph.getGroupOnPos && app.graph.getGroupOnPos(p[0], p[1])) continue;
              return [Math.round(x - cx), Math.round(y - cy)];
            }
            return null;""")

    def _search_input(self):
        """The focused search combobox, if the node search dialog is open."""
        return self.js("""const a = document.activeElement;
            return a && a.tagName === 'INPUT' && a.getAttribute('role') === 'combobox'
                && a.closest('[role=dialog], [role=search]') ? a : null;""")

    def open_node_search(self, timeout: float = 10.0):
        """Open the node search dialog as a user does: double-click empty canvas."""
        from selenium.webdriver.common.action_chains import ActionChains
        self.close_node_search()
        canvas = self.driver.find_element("css selector", "canvas#graph-canvas")
        offset = self._empty_canvas_point()
        if offset is None:
            raise BrowserError(f"no empty canvas spot to double-click (screenshot {self.screenshot('no-empty-spot')})")
        ActionChains(self.driver).move_to_element_with_offset(canvas, *offset).double_click().perform()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            box = self._search_input()
            if box is not None:
                self.search_opened_by = "double-click"
                return box
            time.sleep(0.1)
        raise BrowserError("double-clicking the canvas did not open the node search dialog "
                           f"(screenshot {self.screenshot('no-search-dialog')})")

    def search_nodes(self, query: str, timeout: float = 10.0) -> list[str]:
        """Type `query` into the node search dialog; the display names it lists, best first."""
        box = self.open_node_search()
        box.send_keys(query)
        names_js = """const box = arguments[0];
            const list = document.getElementById(box.getAttribute('aria-controls'));
            if (!list) return null;
            return Array.from(list.querySelectorAll('[role=option]'))
                .map(o => (o.innerText || '').split('\\n')[0].replace(/\\u00a0/g, ' ').trim())
                .filter(Boolean);"""
        deadline = time.monotonic() + timeout
        last, stable = None, 0
        while time.monotonic() < deadline:       # the search is debounced: wait for a steady list
            names = self.js(names_js, box)
            if names and box.get_attribute("value") == query:
                stable = stable + 1 if names == last else 0
                if stable >= 2:
                    return names
            last = names
            time.sleep(0.15)
        return last or []

    def close_node_search(self):
        from selenium.webdriver.common.keys import Keys
        for _ in range(3):
            box = self._search_input()
            if box is None:
                return
            # Empty the box first: on 1.32.9 a box that closes with typed text fires `change`
            # after PrimeVue's AutoComplete is gone (TypeError in onChange, a console error)
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(Keys.BACKSPACE)
            box.send_keys(Keys.ESCAPE)
            time.sleep(0.2)

    # ---------------------------------------------------------------- nodes, settings, crops
    def add_node(self, node_type: str, pos=(40, 40)) -> int:
        """Create a node of `node_type` on the canvas (as the search dialog does); its id."""
        return self.js("""const n = LiteGraph.createNode(arguments[0]);
            if (!n) throw new Error('unknown node type ' + arguments[0]);
            n.pos = arguments[1]; app.graph.add(n); app.canvas.setDirty(true, true); return n.id;""",
                       node_type, list(pos))

    def set_widget(self, node_id, name: str, value):
        """Set a widget the way a user edit does: value, then the widget's callback."""
        self.js("""const n = app.graph.getNodeById(arguments[0]);
            const w = n.widgets.find(w => w.name === arguments[1]);
            if (!w) throw new Error('no widget ' + arguments[1]);
            w.value = arguments[2]; w.callback?.(w.value, app.canvas, n, null, null);
            app.canvas.setDirty(true, true);""", node_id, name, value)

    def widget_values(self, node_id) -> dict:
        return self.js("""const n = app.graph.getNodeById(arguments[0]);
            return Object.fromEntries(n.widgets.map(w => [w.name, {value: w.value ?? null,
                disabled: !!w.disabled, type: w.type}]));""", node_id)

    def reset_view(self):
        self.js("app.canvas.ds.offset = [0, 0]; app.canvas.ds.scale = 1; app.canvas.setDirty(true, true);")
        time.sleep(0.3)

    def node_rect(self, node_id) -> list[float]:
        """[x, y, w, h] of a node (title bar included) in page CSS pixels."""
        return self.js("""const n = app.graph.getNodeById(arguments[0]);
            const c = document.querySelector('canvas#graph-canvas').getBoundingClientRect();
            const ds = app.canvas.ds, th = LiteGraph.NODE_TITLE_HEIGHT;
            return [c.left + (n.pos[0] + ds.offset[0]) * ds.scale, c.top + (n.pos[1] - th + ds.offset[1]) * ds.scale,
                    n.size[0] * ds.scale, (n.size[1] + th) * ds.scale];""", node_id)

    def element_rect(self, element) -> list[float]:
        return self.js("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width, r.height];",
                       element)

    def screenshot_crop(self, name: str, rect, pad: int = 8, max_width: int = 900) -> Path:
        """A screenshot of one area (CSS pixels [x, y, w, h]), small enough for a README."""
        from PIL import Image
        full = self.screenshot(name)
        ratio = self.js("return window.devicePixelRatio || 1")
        with Image.open(full) as img:
            x, y, w, h = (v * ratio for v in rect)
            box = (max(0, int(x - pad)), max(0, int(y - pad)),
                   min(img.width, int(x + w + pad)), min(img.height, int(y + h + pad)))
            out = img.crop(box).convert("RGB")
        if out.width > max_width:
            out = out.resize((max_width, round(out.height * max_width / out.width)), Image.LANCZOS)
        out.save(full, optimize=True)
        return full

    def open_settings(self, category: str, timeout: float = 10.0):
        """Open the settings dialog (the frontend's own command) on one category of the left list."""
        self.js_async("await app.extensionManager.command.execute('Comfy.ShowSettingsDialog');")
        # the innermost visible element of the dialog showing exactly that name (1.32.9: a listbox
        # option; 1.47.12: a nav item with an icon): a click on it bubbles to the item
        find = """const hits = Array.from(document.querySelectorAll('[role=dialog] *')).filter(e =>
                e.offsetParent !== null && (e.innerText || '').trim() === arguments[0]);
            return hits.find(e => !hits.some(o => o !== e && e.contains(o))) || null;"""
        item = self.wait_for(find, timeout, f"the settings category {category!r}", category)
        item.click()
        time.sleep(0.5)
