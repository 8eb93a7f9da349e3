// FluxFill web extension: what a hosted node (FalFill, WaveSpeedFill) shows besides its widgets.
// - a read-only status panel (a DOM widget, never serialized): the estimated price from
//   POST /fluxfill/price, today's spend and the daily limit when one is set, whether the provider's
//   key is configured and which widgets the chosen endpoint does not take. Its height follows its text (measured), so every line is shown;
// - widgets the chosen endpoint does not take keep their values (saved in the workflow, sent in
//   the API prompt, ignored by the backend) but are greyed with their label (canvas widgets:
//   widget.disabled) or take no space (DOM text boxes, which the frontends hide when disabled:
//   widget.hidden), so the node never shows an empty hole;
// - a sentinel value ("the endpoint's default": -1 for steps / guidance / strength, "default"
//   for output_format) is explained in the widget's label with the chosen endpoint's value,
//   e.g. "steps (-1 = 28)"; the widget's value is never rewritten.
// Which widgets, labels and price request: widgets.js. Updates are event driven (widget
// callbacks, configure, connections, the panel's ResizeObserver, the key form); no polling.
// No side effects: the entry file (web/fluxfill.js) calls these.
import { app } from "../../../scripts/app.js";
import {
  configuredKeys, endpointOf, fetchKeyFlags, fetchLimit, hasTable, noteSpend, postJSON, providerEnvVar, providerOf,
  providerTitle, spendStatus,
} from "./route.js";
import { priceRequest, sentinelLabels, unusedWidgets, widgetMap } from "./widgets.js";

const STATUS_WIDGET = "fluxfill_status";
const LINE_HEIGHT = 15;           // px, the panel's CSS below (11px font, line-height 1.35)
const PANEL_LINES = ["fluxfill-price", "fluxfill-size", "fluxfill-spend", "fluxfill-key", "fluxfill-unused"];

// ------------------------------------------------------------------------ graph helpers
const isDomWidget = (widget) => typeof HTMLElement !== "undefined" && widget.element instanceof HTMLElement;

/** Run `listener(this, args)` after `target[method]` (whatever was there before) on each call. */
function runAfter(target, method, listener) {
  const original = target[method];
  target[method] = function (...args) {
    const result = original?.apply(this, args);
    listener(this, args);
    return result;
  };
}

function* graphNodes() {
  const graphs = new Set([app.graph, app.canvas?.graph]);
  for (const subgraph of app.graph?.subgraphs?.values?.() ?? []) graphs.add(subgraph);
  for (const graph of graphs) yield* (graph?.nodes ?? graph?._nodes ?? []);
}

// ------------------------------------------------------------------------ layout
function setLine(panel, lineClass, text, state) {
  const line = panel.el.querySelector(`.${lineClass}`);
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
  const panel = node.fluxfill;
  const before = minHeight(node);
  const changed = change();
  if (!changed && panel.fitted) return;
  const after = minHeight(node);
  const height = node.size[1];
  let wanted;
  if (!panel.fitted) wanted = panel.configured ? Math.max(height, after) : after;   // new node: its natural size
  else wanted = Math.max(after, height + (after - before));
  panel.fitted = true;
  if (Math.abs(wanted - height) > 0.5) node.setSize([node.size[0], wanted]);
  node.setDirtyCanvas?.(true, true);
}

/** Let a DOM widget take no space while hidden. 1.47 and newer leave hidden widgets out of the
 *  layout; 1.32.9 only leaves them out of computeSize, and still gives a DOM widget the height
 *  its options ask for: ask for 0 while hidden (undefined otherwise: the frontend's own CSS). */
function collapsible(widget) {
  if (widget.fluxfillCollapsible) return;
  widget.fluxfillCollapsible = true;
  const options = widget.options ?? (widget.options = {});
  const getMin = options.getMinHeight, getMax = options.getMaxHeight;
  options.getMinHeight = function (...args) { return widget.hidden ? 0 : getMin?.apply(this, args); };
  options.getMaxHeight = function (...args) { return widget.hidden ? 0 : getMax?.apply(this, args); };
}

/** Grey (canvas widgets) or hide (DOM widgets) one widget, or put back what this extension
 *  changed; true when something changed. */
function greyWidget(panel, name, widget, unused) {
  if (unused) {
    if (panel.greyed.has(name)) return false;
    const property = isDomWidget(widget) ? "hidden" : "disabled";
    if (property === "hidden") collapsible(widget);
    panel.greyed.set(name, [property, widget[property]]);       // what to put back
    widget[property] = true;
    return true;
  }
  if (!panel.greyed.has(name)) return false;                    // only restore what this extension changed
  const [property, was] = panel.greyed.get(name);
  widget[property] = was ?? false;
  panel.greyed.delete(name);
  return true;
}

/** Show `label` on a widget (undefined: its own label again); true when something changed. */
function labelWidget(panel, name, widget, label) {
  if (label !== undefined) {
    if (!panel.labels.has(name)) panel.labels.set(name, widget.label);
    if (widget.label === label) return false;
    widget.label = label;
    return true;
  }
  if (!panel.labels.has(name)) return false;
  widget.label = panel.labels.get(name);
  panel.labels.delete(name);
  return true;
}

// ------------------------------------------------------------------------ updates
function showKeyLine(panel, provider) {
  const flags = configuredKeys();
  if (!flags || !provider) return;
  const configured = !!flags[provider];
  const envVar = providerEnvVar(provider);
  setLine(panel, "fluxfill-key", configured ? `${providerTitle(provider)} key: configured`
    : `${providerTitle(provider)} key: not set (Settings › FluxFill${envVar ? `, or ${envVar}` : ""})`,
          configured ? "yes" : "no");
}

/** "today: $X of $Y limit" when a daily spend limit is set (the server's text), else nothing. */
function showSpendLine(panel) {
  const info = spendStatus();
  if (!info) return;
  const text = info.error ? `spend limit: ${info.error}` : info.text || "";
  setLine(panel, "fluxfill-spend", text, info.error ? "error" : info.limit_usd == null ? "none" : String(info.limit_usd));
}

/** Ask for the price of what the node would request now (unless that was the last request). */
function requestPrice(panel, node, widgets, endpoint) {
  const [body, note] = priceRequest(node, widgets, endpoint);
  const signature = JSON.stringify(body);
  if (signature === panel.priceSig) return;
  panel.priceSig = signature;
  const sequence = ++panel.seq;
  const answered = (usd) => {
    panel.el.dataset.usd = usd == null ? "" : String(usd);
    panel.el.dataset.priceFor = signature;
  };
  postJSON("/fluxfill/price", body).then((price) => {
    if (sequence !== panel.seq) return;                 // a newer request is under way
    const from = price.source ? ` · price from ${price.source}` : "";   // fal's pricing API or the built-in table
    setLine(panel, "fluxfill-price", `≈ ${price.text} per source image${from}`, price.usd == null ? "unknown" : String(price.usd));
    setLine(panel, "fluxfill-size", `output: ${note}`);
    noteSpend(price.spend);
    showSpendLine(panel);
    answered(price.usd);
  }, (error) => {
    if (sequence !== panel.seq) return;
    setLine(panel, "fluxfill-price", `price: ${error.message}`, "error");
    answered(null);
  });
}

/** Grey / hide unused widgets, label sentinels, refresh the key line, ask for a new price. */
function update(node) {
  const panel = node.fluxfill;
  if (!panel) return;
  panel.pending = false;
  const widgets = widgetMap(node);
  const endpoint = endpointOf(node, widgets);
  const unused = unusedWidgets(node, widgets, endpoint);
  const labels = sentinelLabels(node, widgets, endpoint, unused);

  resizing(node, () => {
    let changed = false;
    for (const [name, widget] of Object.entries(widgets)) {
      if (name === STATUS_WIDGET) continue;
      changed = greyWidget(panel, name, widget, name in unused) || changed;
      changed = labelWidget(panel, name, widget, labels[name]) || changed;
    }
    const names = Object.keys(unused);
    const notTaken = names.filter((name) => unused[name].startsWith("not used"));
    setLine(panel, "fluxfill-unused", notTaken.length ? `not used by ${endpoint}: ${notTaken.join(", ")}` : "",
            String(names.length));
    panel.el.dataset.unused = names.join(",");
    panel.el.dataset.endpoint = endpoint ?? "";
    return changed;
  });

  showKeyLine(panel, providerOf(node.comfyClass));
  showSpendLine(panel);
  if (hasTable() && endpoint) requestPrice(panel, node, widgets, endpoint);
}

/** Update once, after the current task (several events in a row make one update). */
function schedule(node) {
  const panel = node.fluxfill;
  if (!panel || panel.pending) return;
  panel.pending = true;
  queueMicrotask(() => update(node));
}

/** Update every hosted node of the open graphs (the key flags changed). */
export function updateHostedNodes() {
  for (const node of graphNodes()) if (node.fluxfill) update(node);
}

/** Fetch the key flags again and show them on every hosted node. */
export async function refreshKeys() {
  const flags = await fetchKeyFlags();
  updateHostedNodes();
  return flags;
}

/** Fetch today's spend and the limit again (a run finished, the limit changed) and show them. */
export async function refreshSpend() {
  const info = await fetchLimit();
  updateHostedNodes();
  return info;
}

/** Update a hosted node type's nodes when a workflow's values were just applied (configure) or
 *  a widget input was linked or unlinked. */
export function watchHostedNodeType(nodeType) {
  runAfter(nodeType.prototype, "onConfigure", (node) => {
    if (node.fluxfill) { node.fluxfill.configured = true; schedule(node); }
  });
  runAfter(nodeType.prototype, "onConnectionsChange", (node) => schedule(node));
}

/** A node of a hosted type was loaded from a workflow (loadedGraphNode). */
export function nodeLoaded(node) {
  if (node.fluxfill) { node.fluxfill.configured = true; schedule(node); }
}

// ------------------------------------------------------------------------ the panel
/** The panel's height: its text as laid out (when shown), else an estimate from its lines. */
function panelHeight(panel) {
  const measured = panel.inner.offsetHeight;
  if (measured > 0) return measured + 4;
  const lines = Array.from(panel.inner.children).filter((line) => line.style.display !== "none" && line.textContent);
  return Math.max(1, lines.length) * LINE_HEIGHT + 4;
}

function panelElements() {
  const el = document.createElement("div");
  el.className = "fluxfill-status";
  el.style.cssText = "font: 11px/1.35 sans-serif; color: var(--input-text, #ddd); padding: 0 4px;"
    + "box-sizing: border-box; overflow: hidden; pointer-events: none; opacity: 0.9;";
  const inner = document.createElement("div");
  inner.className = "fluxfill-status-text";
  inner.style.cssText = "white-space: pre-wrap; overflow-wrap: anywhere; padding: 2px 0;";
  for (const lineClass of PANEL_LINES) {
    const line = document.createElement("div");
    line.className = lineClass;
    if (lineClass === "fluxfill-unused") line.style.opacity = "0.7";
    inner.appendChild(line);
  }
  el.appendChild(inner);
  inner.querySelector(".fluxfill-price").textContent = "price: …";
  return [el, inner];
}

/** Add the status panel to a new hosted node (node.fluxfill) and show its first update. */
export function addStatusPanel(node) {
  const [el, inner] = panelElements();
  const panel = { el, inner, widget: null, greyed: new Map(), labels: new Map(), priceSig: null, seq: 0,
                  height: PANEL_LINES.length * LINE_HEIGHT + 4, fitted: false, configured: false, pending: false };
  node.fluxfill = panel;
  const margin = () => panel.widget?.margin ?? 10;
  const widget = node.addDOMWidget(STATUS_WIDGET, "fluxfill-status", el, {
    serialize: false, hideOnZoom: false,
    // exactly the text's height: the frontends lay DOM widgets out between these two
    getMinHeight: () => panel.height + 2 * margin(), getMaxHeight: () => panel.height + 2 * margin(),
  });
  panel.widget = widget;
  widget.serialize = false;                 // not in widgets_values (it is the last widget)
  if (widget.options) widget.options.serialize = false;   // not in the API prompt
  // the text's laid-out height: lines appear, disappear, wrap when the node is narrower
  if (typeof ResizeObserver !== "undefined") {
    panel.observer = new ResizeObserver(() => {
      const height = panelHeight(panel);
      if (panel.inner.offsetHeight > 0 && Math.abs(height - panel.height) > 0.5) {
        resizing(node, () => { panel.height = height; return true; });
      }
    });
    panel.observer.observe(inner);
  }
  runAfter(node, "onRemoved", () => panel.observer?.disconnect());
  // user edits: update at once
  for (const other of node.widgets ?? []) {
    if (other !== widget) runAfter(other, "callback", () => schedule(node));
  }
  schedule(node);
}
