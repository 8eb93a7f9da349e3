// FluxFill web extension. Plain DOM and widget APIs only; tested on the frontends the hosts pin
// (1.32.9 on v0.3.75, 1.47.12 on 0.30.0) and on 1.58.1.
//
// Everything about the hosted endpoints comes from the pack's route GET /fluxfill/endpoints
// (which nodes are hosted, their providers and titles, endpoint parameters and defaults, which
// widget sets which field, the image_size presets): nothing of it is typed in here.
//
// On hosted nodes (FalFill, WaveSpeedFill):
// - a read-only status panel (a DOM widget, never serialized): the estimated price from
//   POST /fluxfill/price, whether the provider's key is configured (GET /fluxfill/keys: flags
//   only) and which widgets the chosen endpoint does not take. Its height follows its text
//   (measured), so every line is always shown;
// - widgets the chosen endpoint does not take keep their values (saved in the workflow, sent in
//   the API prompt, ignored by the backend) but are shown greyed with their label (canvas
//   widgets: widget.disabled) or take no space (DOM text boxes, which the frontends hide when
//   disabled: widget.hidden), so the node never shows an empty hole;
// - a sentinel value ("the endpoint's default": -1 for steps / guidance / strength, "default"
//   for output_format) is explained in the widget's label with the chosen endpoint's value,
//   e.g. "steps (-1 = 28)"; the widget's value is never rewritten;
// - a NEW node's seed starts at "fixed" (each queue of a hosted node is a paid request). The
//   input spec says so (a string control_after_generate), which 1.47 and newer already honour
//   but 1.32.9 does not; a node configured from a saved workflow keeps what was saved.
//
// Updates are event driven: widget callbacks (user edits), onConfigure / loadedGraphNode (a
// workflow loaded, pasted, undone), onConnectionsChange, a ResizeObserver on the panel's text,
// and the key form. No polling.
//
// Settings › FluxFill: a write-only form that POSTs a provider key to /fluxfill/keys (stored in
// the server's key file). It never calls the setting's setter, so the key is never in the
// frontend's settings store, comfy.settings.json, localStorage or a workflow.
//
// Progress text (queue position, elapsed) sent by the nodes with send_progress_text is shown
// by the frontends themselves (their "progress_text" handler adds a text preview widget).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const STATUS_WIDGET = "fluxfill_status";
// ComfyUI's own control_after_generate modes (a frontend fact, not the pack's)
const CONTROL_MODES = ["fixed", "increment", "decrement", "randomize", "increment-wrap"];
// the folder this file is served from (/extensions/<pack folder>/fluxfill.js): the pack's
// nodes have python_module "custom_nodes.<pack folder>"
const PACK_FOLDER = decodeURIComponent(new URL(import.meta.url).pathname.split("/").slice(-2)[0]);
const LINE_HEIGHT = 15;           // px, the panel's CSS below (11px font, line-height 1.35)

let table = null;      // GET /fluxfill/endpoints
let keyFlags = null;   // GET /fluxfill/keys: {provider: bool}
const SPECS = {};      // node class -> {input name: spec} from /object_info (both shapes, see readSpec)
const DISPLAY = {};    // node class -> display name
const PACK_NODES = new Set();   // node classes of this pack

async function call(path, init) {
  const r = await api.fetchApi(path, init);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${path}: HTTP ${r.status}`);
  return body;
}

const postJSON = (path, body) => call(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

// fetched once, as soon as the extension loads; init() waits for it (at most a few seconds), so
// the table is there before any node is created
const tableReady = Promise.race([
  call("/fluxfill/endpoints").then((t) => { table = t; return t; }),
  new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 8 s")), 8000)),
]).catch((e) => { console.warn("FluxFill: hosted node status unavailable:", e.message); return null; });

// ------------------------------------------------------------------------ input specs
/** One input of /object_info in either shape: V1 ([options], {...}) / ("INT", {...}), or the
 *  V3 schema's ("COMBO", {options: [...]}). → {type, options?, default?, min?, ...} */
export function readSpec(spec) {
  if (!Array.isArray(spec) || spec.length === 0) return null;
  const [type, extra] = spec;
  const opts = extra && typeof extra === "object" ? extra : {};
  if (Array.isArray(type)) return { ...opts, type: "COMBO", options: type };
  if (type === "COMBO") {
    const options = Array.isArray(opts.options) ? opts.options : Array.isArray(opts.values) ? opts.values : [];
    return { ...opts, type, options };
  }
  return { ...opts, type: String(type) };
}

function readSpecs(nodeData) {
  const out = {};
  for (const group of ["required", "optional"]) {
    for (const [name, spec] of Object.entries(nodeData?.input?.[group] ?? {})) {
      const s = readSpec(spec);
      if (s) out[name] = s;
    }
  }
  return out;
}

const isPackNode = (nodeData) => {
  const mod = String(nodeData?.python_module ?? "");
  return mod === `custom_nodes.${PACK_FOLDER}` || mod.startsWith(`custom_nodes.${PACK_FOLDER}.`);
};

// ------------------------------------------------------------------------ the route's table
/** {node class: provider id} of the hosted nodes: the route's `nodes`, and its endpoints' nodes. */
function hostedClasses() {
  const out = {};
  for (const [n, p] of Object.entries(table?.nodes ?? {})) if (typeof p === "string") out[n] = p;
  for (const ep of Object.values(table?.endpoints ?? {})) if (ep?.node && ep.provider) out[ep.node] ??= ep.provider;
  for (const [p, info] of Object.entries(table?.providers ?? {})) {
    for (const n of [].concat(info?.node ?? [], info?.nodes ?? [])) out[n] ??= p;
  }
  return out;
}

const providerOf = (cls) => hostedClasses()[cls];

/** Every provider id the route or the key flags know, in the route's order. */
function providerIds() {
  const ids = [...Object.keys(table?.providers ?? {}), ...Object.values(hostedClasses()), ...Object.keys(keyFlags ?? {})];
  return [...new Set(ids)];
}

/** The provider's display title: the route's `providers[p].title`; meanwhile, the title of its
 *  node's display name in parentheses ("FLUX Fill (fal.ai)"), else the provider id. */
function providerTitle(p) {
  const t = table?.providers?.[p]?.title;
  if (t) return t;
  const cls = Object.entries(hostedClasses()).find(([, q]) => q === p)?.[0];
  const m = cls && DISPLAY[cls] && /\(([^()]+)\)\s*$/.exec(DISPLAY[cls]);
  return m ? m[1] : p;
}

const providerEnvVar = (p) => table?.providers?.[p]?.env_var ?? table?.providers?.[p]?.env ?? null;

const endpointsOf = (cls) => Object.entries(table?.endpoints ?? {}).filter(([, ep]) => ep.node === cls).map(([id]) => id);

/** The endpoint a node will call: its endpoint widget's value, or its only endpoint. */
function endpointOf(node, w) {
  const v = w.endpoint?.value;
  if (v && table?.endpoints?.[v]) return v;
  return endpointsOf(node.comfyClass)[0];
}

const paramOf = (ep, field) => table?.endpoints?.[ep]?.params?.find((p) => p.name === field);

/** The value of a widget that means "the endpoint's default": the route's
 *  `sentinels[node][widget]` when given; meanwhile read from the input spec: a number input whose
 *  default and minimum are -1, or a combo offering "default". */
function sentinelOf(cls, name) {
  const s = table?.sentinels?.[cls];
  if (s && typeof s === "object") return name in s ? s[name] : undefined;
  const spec = SPECS[cls]?.[name];
  if (!spec) return undefined;
  if ((spec.type === "INT" || spec.type === "FLOAT") && spec.default === -1 && spec.min === -1) return -1;
  if (spec.type === "COMBO" && spec.options.includes("default")) return "default";
  return undefined;
}

const fmt = (v) => (typeof v === "string" ? v : JSON.stringify(v));

// ------------------------------------------------------------------------ graph helpers
const widgetMap = (node) => Object.fromEntries((node.widgets ?? []).map((w) => [w.name, w]));
const isDomWidget = (w) => typeof HTMLElement !== "undefined" && w.element instanceof HTMLElement;

function* graphNodes() {
  const graphs = new Set([app.graph, app.canvas?.graph]);
  for (const sg of app.graph?.subgraphs?.values?.() ?? []) graphs.add(sg);
  for (const g of graphs) yield* (g?.nodes ?? g?._nodes ?? []);
}

function* hostedNodes() {
  for (const node of graphNodes()) if (node.fluxfill) yield node;
}

// ------------------------------------------------------------------------ what the endpoint uses
/** {widget name: reason} for widgets the chosen endpoint (or image_size) makes unused. */
function unusedWidgets(node, w, ep) {
  const fields = table?.widgets?.[node.comfyClass];
  const spec = table?.endpoints?.[ep];
  if (!fields || !spec) return {};
  const takes = new Set(spec.params.map((p) => p.name));
  const out = {};
  for (const [name, field] of Object.entries(fields)) {
    if (w[name] && !takes.has(field)) out[name] = `not used by ${ep}`;
  }
  // fal's image_size: width / height only mean something with "custom"
  if (w.image_size && takes.has(fields.image_size ?? "image_size") && w.image_size.value !== "custom") {
    for (const name of ["width", "height"]) {
      if (w[name] && fields[name] === (fields.image_size ?? "image_size")) out[name] = "only used when image_size is custom";
    }
  }
  return out;
}

/** {widget name: label} for widgets showing their sentinel, with the endpoint's own value. */
function sentinelLabels(node, w, ep, unused) {
  const fields = table?.widgets?.[node.comfyClass] ?? {};
  const out = {};
  for (const [name, field] of Object.entries(fields)) {
    if (!w[name] || name in unused) continue;
    const sentinel = sentinelOf(node.comfyClass, name);
    if (sentinel === undefined || w[name].value !== sentinel) continue;
    const p = paramOf(ep, field);
    if (p && p.default !== null && p.default !== undefined) out[name] = `${name} (${fmt(sentinel)} = ${fmt(p.default)})`;
  }
  return out;
}

/** The POST /fluxfill/price body, and a note on how the size was chosen. */
function priceRequest(node, w, ep) {
  const num_images = Number(w.num_images?.value ?? 1);
  let size = null, note;
  if (w.image_size) {                                   // fal: preset / custom / the input's size
    const takesSize = table?.endpoints?.[ep]?.params.some((p) => p.name === "image_size");
    if (takesSize && w.image_size.value === "custom") size = [Number(w.width?.value), Number(w.height?.value)];
    else if (takesSize && table.image_size_presets?.[w.image_size.value]) size = table.image_size_presets[w.image_size.value];
    note = size ? `${size[0]}×${size[1]}` : "input size; estimated at 1024×1024";
  } else {                                              // width / height, 0 = the input's size
    const width = Number(w.width?.value) || 0, height = Number(w.height?.value) || 0;
    if (width > 0 && height > 0) size = [width, height];
    note = size ? `${width}×${height}` : "input size";
  }
  size ??= [1024, 1024];
  return [{ node: node.comfyClass, endpoint: ep, width: size[0], height: size[1], num_images }, note];
}

// ------------------------------------------------------------------------ the panel
function setLine(st, cls, text, state) {
  const line = st.el.querySelector(`.${cls}`);
  if (line.textContent !== text) line.textContent = text;
  if (state !== undefined) line.dataset.state = state;
  line.style.display = text ? "" : "none";
}

/** The node's minimum height, as the frontend lays it out (widgets, slots, the panel). */
const minHeight = (node) => node.computeSize?.()?.[1] ?? node.size[1];

/** Run `change` (which may show, hide or resize widgets) and keep the node fitting: grow or
 *  shrink it by what the layout needs more or less, never below its minimum. The first fit of
 *  a node (just created, or configured from a workflow) sets the height outright. */
function resizing(node, change) {
  const st = node.fluxfill;
  const before = minHeight(node);
  const changed = change();
  if (!changed && st.fitted) return;
  const after = minHeight(node);
  const h = node.size[1];
  let want;
  if (!st.fitted) want = st.configured ? Math.max(h, after) : after;   // new node: its natural size
  else want = Math.max(after, h + (after - before));
  st.fitted = true;
  if (Math.abs(want - h) > 0.5) node.setSize([node.size[0], want]);
  node.setDirtyCanvas?.(true, true);
}

/** Let a DOM widget take no space while hidden. 1.47 and newer leave hidden widgets out of the
 *  layout; 1.32.9 only leaves them out of computeSize, and still gives a DOM widget the height
 *  its options ask for: ask for 0 while hidden (undefined otherwise: the frontend's own CSS). */
function collapsible(widget) {
  if (widget.fluxfillCollapsible) return;
  widget.fluxfillCollapsible = true;
  const o = widget.options ?? (widget.options = {});
  const min = o.getMinHeight, max = o.getMaxHeight;
  o.getMinHeight = function (...a) { return widget.hidden ? 0 : min?.apply(this, a); };
  o.getMaxHeight = function (...a) { return widget.hidden ? 0 : max?.apply(this, a); };
}

/** Grey / hide unused widgets, label sentinels, refresh the key line, ask for a new price. */
function update(node) {
  const st = node.fluxfill;
  if (!st) return;
  st.pending = false;
  const w = widgetMap(node);
  const ep = endpointOf(node, w);
  const unused = unusedWidgets(node, w, ep);
  const labels = sentinelLabels(node, w, ep, unused);

  resizing(node, () => {
    let changed = false;
    for (const [name, widget] of Object.entries(w)) {
      if (name === STATUS_WIDGET) continue;
      const off = name in unused;
      const prop = isDomWidget(widget) ? "hidden" : "disabled";
      if (off) {
        if (!st.greyed.has(name)) {
          if (prop === "hidden") collapsible(widget);
          st.greyed.set(name, [prop, widget[prop]]);       // what to put back
          widget[prop] = true;
          changed = true;
        }
      } else if (st.greyed.has(name)) {                    // only restore what this extension changed
        const [p, was] = st.greyed.get(name);
        widget[p] = was ?? false;
        st.greyed.delete(name);
        changed = true;
      }
      const label = labels[name];
      if (label !== undefined) {
        if (!st.labels.has(name)) st.labels.set(name, widget.label);
        if (widget.label !== label) { widget.label = label; changed = true; }
      } else if (st.labels.has(name)) {
        widget.label = st.labels.get(name);
        st.labels.delete(name);
        changed = true;
      }
    }
    const names = Object.keys(unused);
    const notTaken = names.filter((n) => unused[n].startsWith("not used"));
    setLine(st, "fluxfill-unused", notTaken.length ? `not used by ${ep}: ${notTaken.join(", ")}` : "",
            String(names.length));
    st.el.dataset.unused = names.join(",");
    st.el.dataset.endpoint = ep ?? "";
    return changed;
  });

  const provider = providerOf(node.comfyClass);
  if (keyFlags && provider) {
    const ok = !!keyFlags[provider];
    const env = providerEnvVar(provider);
    setLine(st, "fluxfill-key", ok ? `${providerTitle(provider)} key: configured`
      : `${providerTitle(provider)} key: not set (Settings › FluxFill${env ? `, or ${env}` : ""})`, ok ? "yes" : "no");
  }
  if (table && ep) {
    const [body, note] = priceRequest(node, w, ep);
    const sig = JSON.stringify(body);
    if (sig !== st.priceSig) {
      st.priceSig = sig;
      const seq = ++st.seq;
      postJSON("/fluxfill/price", body).then((p) => {
        if (seq !== st.seq) return;                      // a newer request is under way
        setLine(st, "fluxfill-price", `≈ ${p.text} per source image`, p.usd == null ? "unknown" : String(p.usd));
        setLine(st, "fluxfill-size", `output: ${note}`);
        st.el.dataset.usd = p.usd == null ? "" : String(p.usd);
        st.el.dataset.priceFor = sig;
      }, (e) => {
        if (seq !== st.seq) return;
        setLine(st, "fluxfill-price", `price: ${e.message}`, "error");
        st.el.dataset.usd = "";
        st.el.dataset.priceFor = sig;
      });
    }
  }
}

/** Update once, after the current task (several events in a row make one update). */
function schedule(node) {
  const st = node.fluxfill;
  if (!st || st.pending) return;
  st.pending = true;
  queueMicrotask(() => update(node));
}

/** The panel's height: its text as laid out (when shown), else an estimate from its lines. */
function panelHeight(st) {
  const measured = st.inner.offsetHeight;
  if (measured > 0) return measured + 4;
  const lines = Array.from(st.inner.children).filter((l) => l.style.display !== "none" && l.textContent).length;
  return Math.max(1, lines) * LINE_HEIGHT + 4;
}

function addStatusWidget(node) {
  const el = document.createElement("div");
  el.className = "fluxfill-status";
  el.style.cssText = "font: 11px/1.35 sans-serif; color: var(--input-text, #ddd); padding: 0 4px;"
    + "box-sizing: border-box; overflow: hidden; pointer-events: none; opacity: 0.9;";
  const inner = document.createElement("div");
  inner.className = "fluxfill-status-text";
  inner.style.cssText = "white-space: pre-wrap; overflow-wrap: anywhere; padding: 2px 0;";
  for (const cls of ["fluxfill-price", "fluxfill-size", "fluxfill-key", "fluxfill-unused"]) {
    const line = document.createElement("div");
    line.className = cls;
    if (cls === "fluxfill-unused") line.style.opacity = "0.7";
    inner.appendChild(line);
  }
  el.appendChild(inner);
  inner.querySelector(".fluxfill-price").textContent = "price: …";
  const st = { el, inner, widget: null, greyed: new Map(), labels: new Map(), priceSig: null, seq: 0,
               height: 4 * LINE_HEIGHT + 4, fitted: false, configured: false, pending: false };
  node.fluxfill = st;
  const margin = () => st.widget?.margin ?? 10;
  const widget = node.addDOMWidget(STATUS_WIDGET, "fluxfill-status", el, {
    serialize: false, hideOnZoom: false,
    // exactly the text's height: the frontends lay DOM widgets out between these two
    getMinHeight: () => st.height + 2 * margin(), getMaxHeight: () => st.height + 2 * margin(),
  });
  st.widget = widget;
  widget.serialize = false;                 // not in widgets_values (it is the last widget)
  if (widget.options) widget.options.serialize = false;   // not in the API prompt
  // the text's laid-out height: lines appear, disappear, wrap when the node is narrower
  if (typeof ResizeObserver !== "undefined") {
    st.observer = new ResizeObserver(() => {
      const h = panelHeight(st);
      if (st.inner.offsetHeight > 0 && Math.abs(h - st.height) > 0.5) {
        resizing(node, () => { st.height = h; return true; });
      }
    });
    st.observer.observe(inner);
  }
  const onRemoved = node.onRemoved;
  node.onRemoved = function (...args) {
    st.observer?.disconnect();
    return onRemoved?.apply(this, args);
  };
  // user edits: update at once
  for (const w of node.widgets ?? []) {
    if (w === widget) continue;
    const cb = w.callback;
    w.callback = function (...args) {
      const r = cb?.apply(this, args);
      schedule(node);
      return r;
    };
  }
}

export async function refreshKeys() {
  keyFlags = await call("/fluxfill/keys");
  for (const node of hostedNodes()) update(node);
  return keyFlags;
}

// ------------------------------------------------------------------------ seed of new nodes
/** {seed widget name: mode} a NEW node of this class starts with: the input spec's string
 *  control_after_generate; for hosted nodes (paid per request) "fixed" when the spec says nothing. */
function newNodeControls(cls) {
  const out = {};
  for (const [name, spec] of Object.entries(SPECS[cls] ?? {})) {
    const c = spec.control_after_generate;
    if (typeof c === "string" && CONTROL_MODES.includes(c)) out[name] = c;
    else if ((c === true || name === "seed") && spec.type === "INT" && providerOf(cls)) out[name] = "fixed";
  }
  return out;
}

/** Set the control widget of each seed: run from nodeCreated, i.e. before a workflow's values
 *  are applied (configure), so a loaded node keeps the value it was saved with. */
function applyNewNodeControls(node) {
  const wanted = newNodeControls(node.comfyClass);
  for (const [name, mode] of Object.entries(wanted)) {
    const seed = node.widgets?.find((w) => w.name === name);
    // 1.32.9 and 1.47.12 name the control widget after a string control_after_generate ("fixed")
    const control = seed?.linkedWidgets?.find((w) => w.type === "combo" && CONTROL_MODES.includes(w.value))
      ?? node.widgets?.find((w) => w.name === "control_after_generate");
    if (control && control.value !== mode && (control.options?.values ?? CONTROL_MODES).includes(mode)) {
      control.value = mode;
    }
  }
}

// ------------------------------------------------------------------------ settings: provider keys
function keyForm() {
  const box = document.createElement("form");    // a form: browsers expect password fields in one
  box.className = "fluxfill-keys";
  box.autocomplete = "off";
  box.style.cssText = "display:flex; flex-wrap:wrap; gap:6px; align-items:center; justify-content:flex-end";
  const provider = document.createElement("select");
  provider.name = "fluxfill-provider";
  const fillProviders = () => {
    const have = new Set(Array.from(provider.options).map((o) => o.value));
    for (const p of providerIds()) if (!have.has(p)) provider.add(new Option(providerTitle(p), p));
  };
  fillProviders();
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
    fillProviders();
    status.textContent = (msg ? msg + " — " : "")
      + providerIds().map((p) => `${providerTitle(p)}: ${flags[p] ? "configured" : "not set"}`).join(" · ");
  };
  const send = async (value) => {
    const p = provider.value;
    key.value = "";                       // the field never keeps the key
    try {
      const flags = await postJSON("/fluxfill/keys", { provider: p, key: value });
      keyFlags = flags;
      show(flags, value ? `${providerTitle(p)} key saved` : `${providerTitle(p)} key removed`);
      for (const node of hostedNodes()) update(node);
    } catch (e) {
      status.textContent = `not saved: ${e.message}`;
    }
  };
  box.onsubmit = (e) => { e.preventDefault(); if (key.value.trim()) send(key.value.trim()); };
  remove.onclick = () => send("");
  box.append(provider, key, save, remove, status);
  tableReady.then(() => call("/fluxfill/keys")).then((f) => { keyFlags = f; show(f); },
                                                      (e) => { status.textContent = e.message; });
  return box;
}

// ------------------------------------------------------------------------ the extension
app.registerExtension({
  name: "FluxFill.Hosted",
  settings: [{
    id: "FluxFill.ProviderKeys",
    category: ["FluxFill", "API keys", "Provider keys"],
    name: "Provider API keys (saved in the server's key file, never in workflows or settings)",
    tooltip: "Write-only: the key goes to the ComfyUI server (user/fluxfill/keys.json, mode 600) and "
      + "is never shown again. Environment variables take precedence.",
    // a custom form that never calls the setting's setter: nothing is stored by the frontend
    type: () => keyForm(),
    defaultValue: "",
  }],
  async init() {
    await tableReady;                    // before the node definitions are registered
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!isPackNode(nodeData)) return;
    PACK_NODES.add(nodeData.name);
    SPECS[nodeData.name] = readSpecs(nodeData);
    DISPLAY[nodeData.name] = nodeData.display_name ?? nodeData.name;
    await tableReady;
    if (!providerOf(nodeData.name)) return;
    const proto = nodeType.prototype;
    const onConfigure = proto.onConfigure;
    proto.onConfigure = function (...args) {          // a workflow's values were just applied
      const r = onConfigure?.apply(this, args);
      if (this.fluxfill) { this.fluxfill.configured = true; schedule(this); }
      return r;
    };
    const onConnectionsChange = proto.onConnectionsChange;
    proto.onConnectionsChange = function (...args) {  // a widget input linked or unlinked
      const r = onConnectionsChange?.apply(this, args);
      schedule(this);
      return r;
    };
  },
  async setup() {
    await tableReady;
    try {
      await refreshKeys();
    } catch (e) {
      console.warn("FluxFill: key status unavailable:", e.message);
    }
  },
  nodeCreated(node) {
    if (!PACK_NODES.has(node.comfyClass)) return;
    applyNewNodeControls(node);
    if (!table || !providerOf(node.comfyClass)) return;
    addStatusWidget(node);
    schedule(node);
  },
  loadedGraphNode(node) {
    if (node.fluxfill) { node.fluxfill.configured = true; schedule(node); }
  },
});
