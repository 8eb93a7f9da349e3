// FluxFill web extension: the entry file, the only module with side effects (it fetches the
// route's table and registers the extension, once). ComfyUI serves every .js under web/ and the
// frontend imports each one; the modules under fluxfill/ only define things:
//   fluxfill/route.js    the pack's routes (/fluxfill/endpoints, key flags), input specs, providers
//   fluxfill/widgets.js  what the chosen endpoint makes of a node's widgets (unused, labels, price)
//   fluxfill/panel.js    the status panel of hosted nodes, greying, sentinel labels, the price
//   fluxfill/keys.js     the Settings › FluxFill key form (write-only) and daily spend limit form
//   fluxfill/seed.js     the seed control of new hosted nodes ("fixed")
// Plain DOM and widget APIs only, event driven, no polling; tested on the frontends the hosts pin
// (1.32.9 on v0.3.75, 1.47.12 on 0.30.0) and on 1.58.1. Everything about the hosted endpoints
// comes from GET /fluxfill/endpoints: nothing of it is typed in here.
//
// Progress text (queue position, elapsed) sent by the nodes with send_progress_text is shown
// by the frontends themselves (their "progress_text" handler adds a text preview widget).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { keyForm, limitForm } from "./fluxfill/keys.js";
import {
  addStatusPanel, nodeLoaded, refreshKeys, refreshSpend, updateHostedNodes, watchHostedNodeType,
} from "./fluxfill/panel.js";
import { hasTable, isPackNode, loadTable, providerOf, registerPackNode } from "./fluxfill/route.js";
import { applyNewNodeControls } from "./fluxfill/seed.js";

// fetched once, as soon as the extension loads; init() waits for it (at most a few seconds), so
// the table is there before any node is created
const tableReady = loadTable();

app.registerExtension({
  name: "FluxFill.Hosted",
  settings: [{
    id: "FluxFill.ProviderKeys",
    category: ["FluxFill", "API keys", "Provider keys"],
    name: "Provider API keys (saved in the server's key file, never in workflows or settings)",
    tooltip: "Write-only: the key goes to the ComfyUI server (user/fluxfill/keys.json, mode 600) and "
      + "is never shown again. Environment variables take precedence.",
    // a custom form that never calls the setting's setter: nothing is stored by the frontend
    type: () => keyForm(updateHostedNodes),
    defaultValue: "",
  }, {
    id: "FluxFill.DailyLimit",
    category: ["FluxFill", "Spending", "Daily spend limit"],
    name: "Daily spend limit (USD; empty = no limit)",
    tooltip: "What FluxFill may spend per calendar day, counted from user/fluxfill/ledger.jsonl. Stored in the "
      + "server's user/fluxfill/settings.json; the environment variable the form names wins over it.",
    // a custom form that never calls the setting's setter: the server's file holds the value
    type: () => limitForm(updateHostedNodes),
    defaultValue: "",
  }],
  async init() {
    await tableReady;                    // before the node definitions are registered
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!registerPackNode(nodeData)) return;
    await tableReady;
    if (providerOf(nodeData.name)) watchHostedNodeType(nodeType);
  },
  async setup() {
    await tableReady;
    try {
      await refreshKeys();
    } catch (error) {
      console.warn("FluxFill: key status unavailable:", error.message);
    }
    // today's spend grows when a run ends: the queue's status event says so (no polling)
    const spendUnavailable = (error) => console.warn("FluxFill: spend status unavailable:", error.message);
    api.addEventListener("status", () => refreshSpend().catch(spendUnavailable));
    refreshSpend().catch(spendUnavailable);
  },
  nodeCreated(node) {
    if (!isPackNode(node.comfyClass)) return;
    applyNewNodeControls(node);
    if (hasTable() && providerOf(node.comfyClass)) addStatusPanel(node);
  },
  loadedGraphNode(node) {
    nodeLoaded(node);
  },
});
