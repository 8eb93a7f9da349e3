// FluxFill web extension (ComfyUI frontends 1.32.9 and 1.47.12), plain DOM and widget APIs only.
//
// On FalFill / WaveSpeedFill: a read-only status panel (a DOM widget, never serialized) with
// the estimated price from POST /fluxfill/price and whether the provider's key is configured
// (GET /fluxfill/keys: flags only). Widgets the chosen endpoint does not take are greyed
// (widget.disabled): they keep their values, which still go to the workflow and the API
// prompt, and the backend ignores them exactly as it does without this extension.
// Endpoint defaults are never rewritten here: FalFill's -1 sentinels already mean "the
// endpoint's own default" (guidance 30 on flux-lora-fill, 3.5 elsewhere).
//
// Settings › FluxFill: a write-only form that POSTs a provider key to /fluxfill/keys (stored in
// the server's key file). It never calls the setting's setter, so the key is never in the
// frontend's settings store, comfy.settings.json, localStorage or a workflow.
//
// Progress text (queue position, elapsed) sent by the nodes with send_progress_text is shown
// by both frontends themselves (their "progress_text" handler adds a text preview widget).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const HOSTED = { FalFill: "fal", WaveSpeedFill: "wavespeed" };
const TITLES = { fal: "fal.ai", wavespeed: "WaveSpeedAI" };
const ENV_VARS = { fal: "FAL_KEY", wavespeed: "WAVESPEED_API_KEY" };
const WAVESPEED_ENDPOINT = "wavespeed-ai/flux-fill-dev";
const STATUS_WIDGET = "fluxfill_status";
const POLL_MS = 700;

let table = null;      // GET /fluxfill/endpoints
let keyFlags = null;   // GET /fluxfill/keys: {fal: bool, wavespeed: bool}

async function call(path, init) {
  const r = await api.fetchApi(path, init);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${path}: HTTP ${r.status}`);
  return body;
}

const postJSON = (path, body) => call(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

function* hostedNodes() {
  const graphs = new Set([app.graph, app.canvas?.graph]);
  for (const sg of app.graph?.subgraphs?.values?.() ?? []) graphs.add(sg);
  for (const g of graphs) {
    for (const node of g?.nodes ?? g?._nodes ?? []) {
      if (HOSTED[node.comfyClass ?? node.type] && node.fluxfill) yield node;
    }
  }
}

const widgetMap = (node) => Object.fromEntries((node.widgets ?? []).map((w) => [w.name, w]));

/** {widget name: reason} for FalFill widgets the chosen endpoint (or image_size) makes unused. */
function unusedWidgets(node, w) {
  const fields = table?.widgets?.[node.comfyClass];
  const ep = table?.endpoints?.[w.endpoint?.value];
  if (!fields || !ep) return {};
  const takes = new Set(ep.params.map((p) => p.name));
  const out = {};
  for (const [name, field] of Object.entries(fields)) {
    if (w[name] && !takes.has(field)) out[name] = `not used by ${w.endpoint.value}`;
  }
  if (takes.has("image_size") && w.image_size?.value !== "custom") {
    for (const name of ["width", "height"]) if (w[name]) out[name] = "only used when image_size is custom";
  }
  return out;
}

/** The POST /fluxfill/price body, and a note on how the size was chosen. */
function priceRequest(node, w) {
  const num_images = Number(w.num_images?.value ?? 1);
  if (node.comfyClass === "WaveSpeedFill") {
    const width = Number(w.width?.value) || 0, height = Number(w.height?.value) || 0;
    const known = width > 0 && height > 0;
    return [{ node: node.comfyClass, endpoint: WAVESPEED_ENDPOINT, width: known ? width : 1024,
              height: known ? height : 1024, num_images },
            known ? `${width}×${height}` : "input size (price per image)"];
  }
  const endpoint = w.endpoint?.value;
  const takesSize = table?.endpoints?.[endpoint]?.params.some((p) => p.name === "image_size");
  let size = null, note;
  if (takesSize && w.image_size?.value === "custom") {
    size = [Number(w.width?.value), Number(w.height?.value)];
  } else if (takesSize && table.image_size_presets?.[w.image_size?.value]) {
    size = table.image_size_presets[w.image_size.value];
  }
  if (size) note = `${size[0]}×${size[1]}`;
  else note = "input size; estimated at 1024×1024";
  size ??= [1024, 1024];
  return [{ node: node.comfyClass, endpoint, width: size[0], height: size[1], num_images }, note];
}

function setLine(el, cls, text, state) {
  const line = el.querySelector(`.${cls}`);
  if (line.textContent !== text) line.textContent = text;
  if (state !== undefined) line.dataset.state = state;
  line.style.display = text ? "" : "none";
}

/** Grey unused widgets, refresh the key line, and ask for a new price when its inputs changed. */
function update(node) {
  const st = node.fluxfill;
  const w = widgetMap(node);
  const unused = unusedWidgets(node, w);
  let changed = false;
  for (const [name, widget] of Object.entries(w)) {
    if (name === STATUS_WIDGET) continue;
    const off = name in unused;
    if (off) {
      if (!widget.disabled) { widget.disabled = true; changed = true; }
      st.greyed.add(name);
    } else if (st.greyed.has(name)) {   // only re-enable what this extension greyed
      widget.disabled = false; st.greyed.delete(name); changed = true;
    }
  }
  const names = Object.keys(unused);
  const ep = w.endpoint?.value;
  const greyNote = names.filter((n) => unused[n].startsWith("not used"));
  setLine(st.el, "fluxfill-unused", greyNote.length
    ? `greyed, not used by ${ep}: ${greyNote.join(", ")}` : "", String(names.length));
  st.el.dataset.unused = names.join(",");

  const provider = HOSTED[node.comfyClass];
  if (keyFlags) {
    const ok = !!keyFlags[provider];
    setLine(st.el, "fluxfill-key", ok ? `${TITLES[provider]} key: configured`
      : `${TITLES[provider]} key: not set (Settings › FluxFill, or ${ENV_VARS[provider]})`, ok ? "yes" : "no");
  }
  if (table) {
    const [body, note] = priceRequest(node, w);
    const sig = JSON.stringify(body);
    if (sig !== st.priceSig) {
      st.priceSig = sig;
      const seq = ++st.seq;
      postJSON("/fluxfill/price", body).then((p) => {
        if (seq !== st.seq) return;                      // a newer request is under way
        setLine(st.el, "fluxfill-price", `≈ ${p.text} per source image`, p.usd == null ? "unknown" : String(p.usd));
        setLine(st.el, "fluxfill-size", `output: ${note}`);
        st.el.dataset.usd = p.usd == null ? "" : String(p.usd);
        st.el.dataset.priceFor = sig;
      }, (e) => {
        if (seq !== st.seq) return;
        setLine(st.el, "fluxfill-price", `price: ${e.message}`, "error");
        st.el.dataset.usd = "";
        st.el.dataset.priceFor = sig;
      });
    }
  }
  if (changed) node.setDirtyCanvas?.(true, true);
}

function addStatusWidget(node) {
  const el = document.createElement("div");
  el.className = "fluxfill-status";
  el.style.cssText = "font: 11px/1.35 sans-serif; color: var(--input-text, #ddd); padding: 2px 6px;"
    + "white-space: pre-wrap; overflow: hidden; pointer-events: none; opacity: 0.9;";
  for (const cls of ["fluxfill-price", "fluxfill-size", "fluxfill-key", "fluxfill-unused"]) {
    const line = document.createElement("div");
    line.className = cls;
    if (cls === "fluxfill-unused") line.style.opacity = "0.7";
    el.appendChild(line);
  }
  el.querySelector(".fluxfill-price").textContent = "price: …";
  const widget = node.addDOMWidget(STATUS_WIDGET, "fluxfill-status", el, {
    serialize: false, hideOnZoom: false, getMinHeight: () => 64, getMaxHeight: () => 96,
  });
  widget.serialize = false;                 // not in widgets_values (it is the last widget)
  if (widget.options) widget.options.serialize = false;   // not in the API prompt
  node.fluxfill = { el, widget, greyed: new Set(), priceSig: null, seq: 0 };
  // user edits: update at once (the poll below also catches loads and programmatic changes)
  for (const w of node.widgets ?? []) {
    if (w === widget) continue;
    const cb = w.callback;
    w.callback = function (...args) {
      const r = cb?.apply(this, args);
      queueMicrotask(() => update(node));
      return r;
    };
  }
  const size = node.computeSize?.();
  if (size) node.setSize?.([Math.max(node.size?.[0] ?? 0, size[0]), Math.max(node.size?.[1] ?? 0, size[1])]);
}

export async function refreshKeys() {
  keyFlags = await call("/fluxfill/keys");
  for (const node of hostedNodes()) update(node);
  return keyFlags;
}

// ------------------------------------------------------------------- settings: provider keys
function keyForm() {
  const box = document.createElement("form");    // a form: browsers expect password fields in one
  box.className = "fluxfill-keys";
  box.autocomplete = "off";
  box.style.cssText = "display:flex; flex-wrap:wrap; gap:6px; align-items:center; justify-content:flex-end";
  const provider = document.createElement("select");
  provider.name = "fluxfill-provider";
  for (const [value, title] of Object.entries(TITLES)) provider.add(new Option(title, value));
  const key = document.createElement("input");
  Object.assign(key, { type: "password", name: "fluxfill-key", placeholder: "paste the API key",
                       autocomplete: "new-password", spellcheck: false });
  key.style.width = "16em";
  const save = document.createElement("button");
  save.textContent = "Save key";
  save.className = "fluxfill-save";
  const remove = document.createElement("button");
  remove.textContent = "Remove";
  remove.className = "fluxfill-remove";
  remove.type = "button";
  const status = document.createElement("div");
  status.className = "fluxfill-key-status";
  status.style.cssText = "flex-basis:100%; text-align:right; font-size:12px; opacity:0.8";
  for (const el of [provider, key, save, remove]) {
    el.style.cssText += ";padding:3px 6px; border-radius:4px; border:1px solid var(--border-color, #555);"
      + "background:var(--comfy-input-bg, #222); color:var(--input-text, #ddd)";
  }
  const show = (flags, msg = "") => {
    status.textContent = (msg ? msg + " — " : "")
      + Object.entries(TITLES).map(([p, t]) => `${t}: ${flags[p] ? "configured" : "not set"}`).join(" · ");
  };
  const send = async (value) => {
    const p = provider.value;
    key.value = "";                       // the field never keeps the key
    try {
      const flags = await postJSON("/fluxfill/keys", { provider: p, key: value });
      keyFlags = flags;
      show(flags, value ? `${TITLES[p]} key saved` : `${TITLES[p]} key removed`);
      for (const node of hostedNodes()) update(node);
    } catch (e) {
      status.textContent = `not saved: ${e.message}`;
    }
  };
  box.onsubmit = (e) => { e.preventDefault(); if (key.value.trim()) send(key.value.trim()); };
  remove.onclick = () => send("");
  box.append(provider, key, save, remove, status);
  call("/fluxfill/keys").then((f) => show(f), (e) => { status.textContent = e.message; });
  return box;
}

app.registerExtension({
  name: "FluxFill.Hosted",
  settings: [{
    id: "FluxFill.ProviderKeys",
    category: ["FluxFill", "API keys", "Provider keys"],
    name: "Provider API keys (saved in the server's key file, never in workflows or settings)",
    tooltip: "Write-only: the key goes to the ComfyUI server (user/fluxfill/keys.json, mode 600) and "
      + "is never shown again. Environment variables FAL_KEY / WAVESPEED_API_KEY take precedence.",
    // a custom form that never calls the setting's setter: nothing is stored by the frontend
    type: () => keyForm(),
    defaultValue: "",
  }],
  async setup() {
    try {
      table = await call("/fluxfill/endpoints");
      await refreshKeys();
    } catch (e) {
      console.warn("FluxFill: hosted node status unavailable:", e.message);
    }
    setInterval(() => { for (const node of hostedNodes()) update(node); }, POLL_MS);
  },
  nodeCreated(node) {
    if (!HOSTED[node.comfyClass]) return;
    addStatusWidget(node);
    setTimeout(() => update(node), 0);    // after a workflow's values are applied
  },
});
