// FluxFill web extension: what the chosen endpoint makes of a hosted node's widgets, from the
// route's table: which widgets it does not take, the labels of widgets showing a sentinel
// ("steps (-1 = 28)"), and the POST /fluxfill/price body for the node's current values. Pure
// functions: the panel (panel.js) shows their answers. No side effects.
import { endpointInfo, imageSizePreset, paramOf, sentinelOf, widgetFields } from "./route.js";

/** {widget name: widget} of a node. */
export const widgetMap = (node) => Object.fromEntries((node.widgets ?? []).map((widget) => [widget.name, widget]));

const formatValue = (value) => (typeof value === "string" ? value : JSON.stringify(value));

/** {widget name: reason} for widgets the chosen endpoint (or image_size) makes unused. */
export function unusedWidgets(node, widgets, endpoint) {
  const fields = widgetFields(node.comfyClass);
  const info = endpointInfo(endpoint);
  if (!fields || !info) return {};
  const takes = new Set(info.params.map((param) => param.name));
  const unused = {};
  for (const [name, field] of Object.entries(fields)) {
    if (widgets[name] && !takes.has(field)) unused[name] = `not used by ${endpoint}`;
  }
  // fal's image_size: width / height only mean something with "custom"
  const sizeField = fields.image_size ?? "image_size";
  if (widgets.image_size && takes.has(sizeField) && widgets.image_size.value !== "custom") {
    for (const name of ["width", "height"]) {
      if (widgets[name] && fields[name] === sizeField) unused[name] = "only used when image_size is custom";
    }
  }
  return unused;
}

/** {widget name: label} for widgets showing their sentinel, with the endpoint's own value. */
export function sentinelLabels(node, widgets, endpoint, unused) {
  const labels = {};
  for (const [name, field] of Object.entries(widgetFields(node.comfyClass) ?? {})) {
    if (!widgets[name] || name in unused) continue;
    const sentinel = sentinelOf(node.comfyClass, name);
    if (sentinel === undefined || widgets[name].value !== sentinel) continue;
    const param = paramOf(endpoint, field);
    if (param && param.default !== null && param.default !== undefined) {
      labels[name] = `${name} (${formatValue(sentinel)} = ${formatValue(param.default)})`;
    }
  }
  return labels;
}

/** The POST /fluxfill/price body, and a note on how the size was chosen. */
export function priceRequest(node, widgets, endpoint) {
  const numImages = Number(widgets.num_images?.value ?? 1);
  let size = null, note;
  if (widgets.image_size) {                             // fal: preset / custom / the input's size
    const takesSize = endpointInfo(endpoint)?.params.some((param) => param.name === "image_size");
    const choice = widgets.image_size.value;
    if (takesSize && choice === "custom") size = [Number(widgets.width?.value), Number(widgets.height?.value)];
    else if (takesSize && imageSizePreset(choice)) size = imageSizePreset(choice);
    note = size ? `${size[0]}×${size[1]}` : "input size; estimated at 1024×1024";
  } else {                                              // width / height, 0 = the input's size
    const width = Number(widgets.width?.value) || 0, height = Number(widgets.height?.value) || 0;
    if (width > 0 && height > 0) size = [width, height];
    note = size ? `${width}×${height}` : "input size";
  }
  size ??= [1024, 1024];
  return [{ node: node.comfyClass, endpoint, width: size[0], height: size[1], num_images: numImages }, note];
}
