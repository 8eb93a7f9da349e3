// FluxFill web extension: what the server says. The pack's HTTP routes (GET /fluxfill/endpoints,
// the key flags of GET /fluxfill/keys, the spend limit of GET /fluxfill/limit), the input specs
// of the pack's nodes from /object_info, and the questions the other modules ask of them: which nodes are hosted and by which provider, the
// endpoint a node will call, its parameters, which widget value means "the endpoint's default".
// Nothing about the endpoints is typed in here. No side effects: loadTable() is started by the
// entry file (web/fluxfill.js).
import { api } from "../../../scripts/api.js";

// the pack's folder (this file is /extensions/<pack folder>/fluxfill/route.js): the pack's nodes
// have python_module "custom_nodes.<pack folder>"
const PACK_FOLDER = decodeURIComponent(new URL("..", import.meta.url).pathname.split("/").filter(Boolean).pop());
const TABLE_TIMEOUT_MS = 8000;

let table = null;              // GET /fluxfill/endpoints
let tableLoading = null;       // its promise, once loadTable() was called
let keyFlags = null;           // GET /fluxfill/keys: {provider: bool}
const SPECS = {};              // node class -> {input name: spec} (see readSpec)
const DISPLAY_NAMES = {};      // node class -> display name
const PACK_NODES = new Set();  // node classes of this pack

// ------------------------------------------------------------------------ HTTP
export async function call(path, init) {
  const response = await api.fetchApi(path, init);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

export const postJSON = (path, body) => call(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

/** GET /fluxfill/endpoints, once (later calls get the same promise): the table, or null when
 *  the route did not answer within a few seconds. */
export function loadTable() {
  tableLoading ??= Promise.race([
    call("/fluxfill/endpoints").then((answer) => { table = answer; return answer; }),
    new Promise((_, reject) => setTimeout(() => reject(new Error("no answer within 8 s")), TABLE_TIMEOUT_MS)),
  ]).catch((error) => { console.warn("FluxFill: hosted node status unavailable:", error.message); return null; });
  return tableLoading;
}

export const hasTable = () => table !== null;

/** {provider: key configured} as last fetched or saved (null before that). */
export const configuredKeys = () => keyFlags;

export async function fetchKeyFlags() {
  keyFlags = await call("/fluxfill/keys");
  return keyFlags;
}

/** Store a provider's key in the server's key file (an empty key removes it); the new flags. */
export async function saveKey(provider, key) {
  keyFlags = await postJSON("/fluxfill/keys", { provider, key });
  return keyFlags;
}

/** The daily spend limit and today's spend (GET /fluxfill/limit, or the `spend` of a price
 *  answer): {limit_usd, today_usd, source, stored_usd, env_var, env_overrides, text}; null before. */
let spendInfo = null;
export const spendStatus = () => spendInfo;
export const noteSpend = (info) => { if (info && typeof info === "object") spendInfo = info; return spendInfo; };

export async function fetchLimit() {
  return noteSpend(await call("/fluxfill/limit"));
}

/** Store the daily limit in the server's settings file (null: no limit); the new status. */
export async function saveLimit(limitUsd) {
  return noteSpend(await postJSON("/fluxfill/limit", { limit_usd: limitUsd }));
}

// ------------------------------------------------------------------------ input specs
/** One input of /object_info in either shape: V1 ([options], {...}) / ("INT", {...}), or the
 *  V3 schema's ("COMBO", {options: [...]}). → {type, options?, default?, min?, ...} */
export function readSpec(spec) {
  if (!Array.isArray(spec) || spec.length === 0) return null;
  const [type, extra] = spec;
  const options = extra && typeof extra === "object" ? extra : {};
  if (Array.isArray(type)) return { ...options, type: "COMBO", options: type };
  if (type === "COMBO") {
    const choices = Array.isArray(options.options) ? options.options : Array.isArray(options.values) ? options.values : [];
    return { ...options, type, options: choices };
  }
  return { ...options, type: String(type) };
}

function readSpecs(nodeData) {
  const specs = {};
  for (const group of ["required", "optional"]) {
    for (const [name, spec] of Object.entries(nodeData?.input?.[group] ?? {})) {
      const read = readSpec(spec);
      if (read) specs[name] = read;
    }
  }
  return specs;
}

/** Remember a node definition of this pack (its input specs, display name); false for others'. */
export function registerPackNode(nodeData) {
  const module = String(nodeData?.python_module ?? "");
  if (module !== `custom_nodes.${PACK_FOLDER}` && !module.startsWith(`custom_nodes.${PACK_FOLDER}.`)) return false;
  PACK_NODES.add(nodeData.name);
  SPECS[nodeData.name] = readSpecs(nodeData);
  DISPLAY_NAMES[nodeData.name] = nodeData.display_name ?? nodeData.name;
  return true;
}

export const isPackNode = (nodeClass) => PACK_NODES.has(nodeClass);

/** {input name: spec} of a pack node class. */
export const specsOf = (nodeClass) => SPECS[nodeClass] ?? {};

// ------------------------------------------------------------------------ providers
/** {node class: provider id} of the hosted nodes: the route's `nodes`, and its endpoints' nodes. */
function hostedClasses() {
  const classes = {};
  for (const [nodeClass, provider] of Object.entries(table?.nodes ?? {})) {
    if (typeof provider === "string") classes[nodeClass] = provider;
  }
  for (const endpoint of Object.values(table?.endpoints ?? {})) {
    if (endpoint?.node && endpoint.provider) classes[endpoint.node] ??= endpoint.provider;
  }
  for (const [provider, info] of Object.entries(table?.providers ?? {})) {
    for (const nodeClass of [].concat(info?.node ?? [], info?.nodes ?? [])) classes[nodeClass] ??= provider;
  }
  return classes;
}

/** The provider of a hosted node class; undefined for other nodes. */
export const providerOf = (nodeClass) => hostedClasses()[nodeClass];

/** Every provider id the route or the key flags know, in the route's order. */
export function providerIds() {
  const ids = [...Object.keys(table?.providers ?? {}), ...Object.values(hostedClasses()), ...Object.keys(keyFlags ?? {})];
  return [...new Set(ids)];
}

/** The provider's display title: the route's `providers[p].title`; meanwhile, the title of its
 *  node's display name in parentheses ("FLUX Fill (fal.ai)"), else the provider id. */
export function providerTitle(provider) {
  const title = table?.providers?.[provider]?.title;
  if (title) return title;
  const nodeClass = Object.entries(hostedClasses()).find(([, owner]) => owner === provider)?.[0];
  const inParentheses = nodeClass && DISPLAY_NAMES[nodeClass] && /\(([^()]+)\)\s*$/.exec(DISPLAY_NAMES[nodeClass]);
  return inParentheses ? inParentheses[1] : provider;
}

export const providerEnvVar = (provider) =>
  table?.providers?.[provider]?.env_var ?? table?.providers?.[provider]?.env ?? null;

// ------------------------------------------------------------------------ endpoints
/** The route's endpoint entry: {node, provider, title, params: [{name, default, ...}], ...}. */
export const endpointInfo = (endpoint) => table?.endpoints?.[endpoint];

/** {widget name: endpoint field} of a hosted node class (the route's `widgets`), or undefined. */
export const widgetFields = (nodeClass) => table?.widgets?.[nodeClass];

/** The [width, height] of a named image_size preset, or undefined. */
export const imageSizePreset = (name) => table?.image_size_presets?.[name];

const endpointsOf = (nodeClass) =>
  Object.entries(table?.endpoints ?? {}).filter(([, info]) => info.node === nodeClass).map(([id]) => id);

/** The endpoint a node will call: its endpoint widget's value, or its only endpoint. */
export function endpointOf(node, widgets) {
  const chosen = widgets.endpoint?.value;
  if (chosen && endpointInfo(chosen)) return chosen;
  return endpointsOf(node.comfyClass)[0];
}

/** The endpoint's parameter `field` ({name, default, ...}), or undefined. */
export const paramOf = (endpoint, field) => endpointInfo(endpoint)?.params?.find((param) => param.name === field);

/** The value of a widget that means "the endpoint's default": the route's
 *  `sentinels[node][widget]` when given; meanwhile read from the input spec: a number input whose
 *  default and minimum are -1, or a combo offering "default". */
export function sentinelOf(nodeClass, name) {
  const sentinels = table?.sentinels?.[nodeClass];
  if (sentinels && typeof sentinels === "object") return name in sentinels ? sentinels[name] : undefined;
  const spec = SPECS[nodeClass]?.[name];
  if (!spec) return undefined;
  if ((spec.type === "INT" || spec.type === "FLOAT") && spec.default === -1 && spec.min === -1) return -1;
  if (spec.type === "COMBO" && spec.options.includes("default")) return "default";
  return undefined;
}
