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

Besides the host's pinned frontend, the browser tests run on every frontend build named in
scripts/hosts.sh (FLUXFILL_FRONTENDS, unpacked by scripts/setup.sh into .hosts/frontend-VERSION/),
served by the same host with `main.py --front-end-root`: see FRONTENDS and frontend_server().
1.58.1 has the same globals, search dialog and Run button as 1.47.12.
"""
import contextlib
import os
import re
import tempfile
import time
from pathlib import Path

from comfy_host import ROOT, ComfyServer

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
    (r'"Error fetching file size:" TypeError: Failed to fetch\s+at fetchFileSize',
     "1.32.9's missing-models dialog asks huggingface.co for the size of a workflow's model download "
     "links (the shipped workflows carry them): test machines have no internet"),
    (r'/api/jobs\?\S* - Failed to load resource: .* 404'
     r'|"\[Jobs API\] Error fetching jobs:" JobsApiError: Failed to fetch jobs: 404'
     r'|"Failed to fetch queue:" JobsApiError: Failed to fetch jobs: 404',
     "1.58.1's queue panel reads /api/jobs, which ComfyUI v0.3.75 does not serve (0.30.0 does): the "
     "newest frontend on the oldest host, a host/frontend gap, not the pack's"),
    (r"vue\.esm-browser\.prod\.js \S+ TypeError: Cannot read properties of undefined \(reading 'id'\)\s+at onChange",
     "1.32.9's own start-up (a settings watcher)"),
]

PINNED = "pinned"


def extra_frontends() -> list[str]:
    """The frontend versions scripts/hosts.sh lists (FLUXFILL_FRONTENDS) besides the pinned ones."""
    text = (ROOT / "scripts" / "hosts.sh").read_text()
    m = re.search(r'^FLUXFILL_FRONTENDS="([^"]*)"', text, re.M)
    return m.group(1).split() if m else []


# what the browser tests are parametrized over: the host's own frontend, then the newer builds
FRONTENDS = [PINNED] + extra_frontends()


def frontend_root(version: str) -> Path | None:
    """The unpacked build of `version` (None for the host's pinned frontend)."""
    if version == PINNED:
        return None
    root = ROOT / ".hosts" / f"frontend-{version}"
    if not (root / "index.html").is_file():
        raise RuntimeError(f"frontend {version} is not set up ({root} has no index.html): run `make setup`")
    return root


def frontend_server(base: Path, frontend: str, env: dict | None = None) -> ComfyServer:
    """A started server of the host under test, serving `frontend` (PINNED or a version)."""
    root = frontend_root(frontend)
    args = [] if root is None else ["--front-end-root", str(root)]
    return ComfyServer(base, env=env, args=args).start()


def shot_name(name: str, frontend: str) -> str:
    """README screenshots keep their names on the pinned frontend; other builds get a suffix."""
    return name if frontend == PINNED else f"{name}-{frontend}"


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
        return self.js("return (app.graph.nodes || app.graph._nodes)"
                       ".map(n => ({id: n.id, type: n.type, title: n.title}))")

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
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.keys import Keys
        for _ in range(3):
            box = self._search_input()
            if box is None:
                return
            # Empty the box first: on 1.32.9 a box that closes with typed text fires `change`
            # after PrimeVue's AutoComplete is gone (TypeError in onChange, a console error)
            try:
                box.send_keys(Keys.CONTROL, "a")
                box.send_keys(Keys.BACKSPACE)
                box.send_keys(Keys.ESCAPE)
            except StaleElementReferenceException:      # it closed by itself meanwhile
                pass
            time.sleep(0.2)

    # ---------------------------------------------------------------- nodes, settings, crops
    def add_node(self, node_type: str, pos=(40, 40)) -> int:
        """Create a node of `node_type` on the canvas (as the search dialog does); its id."""
        return self.js("""const n = LiteGraph.createNode(arguments[0]);
            if (!n) throw new Error('unknown node type ' + arguments[0]);
            n.pos = arguments[1]; app.graph.add(n); app.canvas.setDirty(true, true); return n.id;""",
                       node_type, list(pos))

    def add_node_from_search(self, query: str, display_name: str, timeout: float = 10.0) -> int:
        """Add a node as a user does: double-click the canvas, type, pick `display_name` with the
        arrow keys and Enter. Returns the new node's id."""
        from selenium.webdriver.common.keys import Keys
        before = set(n["id"] for n in self.graph_nodes())
        names = self.search_nodes(query, timeout)
        if display_name not in names:
            raise BrowserError(f"the search for {query!r} listed {names[:10]}, not {display_name!r}")
        box = self._search_input()
        for _ in range(names.index(display_name)):
            box.send_keys(Keys.ARROW_DOWN)
            time.sleep(0.1)
        box.send_keys(Keys.ENTER)
        new = self.wait_for("""const before = new Set(arguments[0]);
            const n = (app.graph.nodes || app.graph._nodes).filter(n => !before.has(n.id));
            return n.length === 1 ? n[0].id : null;""", timeout, f"a node added from the search for {query!r}",
                            list(before))
        # Enter closes the dialog by itself (keys sent to a box that is closing reach the canvas)
        deadline = time.monotonic() + 5
        while self._search_input() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        # 1.47 and newer: the node follows the mouse until a click places it (Escape would
        # cancel it, later, on whatever node has its id): click, as a user does
        if self.js("return app.canvas.state?.ghostNodeId != null"):
            from selenium.webdriver.common.action_chains import ActionChains
            canvas = self.driver.find_element("css selector", "canvas#graph-canvas")
            ActionChains(self.driver).move_to_element_with_offset(canvas, 0, 0).click().perform()
            self.wait_for("return app.canvas.state?.ghostNodeId == null", timeout, "the new node placed")
        return new

    def control_value(self, node_id, seed: str = "seed") -> str | None:
        """The seed's control_after_generate value (1.32.9 and 1.47.12 may name that widget after
        a string control_after_generate in the input spec, so it is found through the seed)."""
        return self.js("""const n = app.graph.getNodeById(arguments[0]);
            const s = n.widgets.find(w => w.name === arguments[1]);
            const c = (s && s.linkedWidgets || []).find(w => w.type === 'combo')
                || n.widgets.find(w => w.name === 'control_after_generate');
            return c ? c.value : null;""", node_id, seed)

    def set_control(self, node_id, value: str, seed: str = "seed"):
        """Pick the seed's control_after_generate value as a user does (value, then callback)."""
        self.js("""const n = app.graph.getNodeById(arguments[0]);
            const s = n.widgets.find(w => w.name === arguments[1]);
            const c = (s && s.linkedWidgets || []).find(w => w.type === 'combo')
                || n.widgets.find(w => w.name === 'control_after_generate');
            c.value = arguments[2]; c.callback?.(c.value, app.canvas, n, null, null);
            app.canvas.setDirty(true, true);""", node_id, seed, value)

    def show_node(self, node_id, at=(320, 150), scale: float = 1.0):
        """Put a node at page position `at` at the given zoom (1 = 100%), the window tall enough
        for all of it; returns its rect (see node_rect)."""
        h = self.js("return app.graph.getNodeById(arguments[0]).size[1] + LiteGraph.NODE_TITLE_HEIGHT", node_id)
        size = self.driver.get_window_size()
        want = int(at[1] + h * scale + 160)
        if size["height"] < want:
            self.driver.set_window_size(size["width"], want)
            time.sleep(0.3)
        self.js("""const n = app.graph.getNodeById(arguments[0]), c = document.querySelector('canvas#graph-canvas');
            const r = c.getBoundingClientRect(), ds = app.canvas.ds, s = arguments[3];
            ds.scale = s;
            ds.offset = [(arguments[1] - r.left) / s - n.pos[0],
                         (arguments[2] - r.top) / s - n.pos[1] + LiteGraph.NODE_TITLE_HEIGHT];
            app.canvas.setDirty(true, true);""", node_id, at[0], at[1], scale)
        time.sleep(0.5)
        return self.node_rect(node_id)

    def widget_layout(self, node_id) -> list[dict]:
        """Each widget as laid out: name, label, y and height (node coordinates), hidden,
        disabled, DOM element shown (or None for canvas widgets)."""
        return self.js("""const n = app.graph.getNodeById(arguments[0]);
            return n.widgets.map(w => ({name: w.name, label: w.label ?? null, value: w.value ?? null,
                y: w.y ?? w.last_y ?? null, h: w.computedHeight ?? null, hidden: !!w.hidden,
                disabled: !!(w.disabled || w.computedDisabled),
                dom: w.element instanceof HTMLElement ? (w.element.offsetParent !== null
                    && getComputedStyle(w.element).display !== 'none') : null}));""", node_id)

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
                disabled: !!w.disabled, hidden: !!w.hidden, type: w.type}]));""", node_id)

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
