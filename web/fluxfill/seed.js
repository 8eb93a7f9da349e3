// FluxFill web extension: the seed control of a NEW node. Each queue of a hosted node is a paid
// request, so its seed starts at "fixed": the input spec says so (a string
// control_after_generate), which 1.47 and newer already honour but 1.32.9 does not. A node
// configured from a saved workflow keeps what was saved. No side effects.
import { providerOf, specsOf } from "./route.js";

// ComfyUI's own control_after_generate modes (a frontend fact, not the pack's)
const CONTROL_MODES = ["fixed", "increment", "decrement", "randomize", "increment-wrap"];

/** {seed widget name: mode} a NEW node of this class starts with: the input spec's string
 *  control_after_generate; for hosted nodes (paid per request) "fixed" when the spec says nothing. */
function newNodeControls(nodeClass) {
  const controls = {};
  for (const [name, spec] of Object.entries(specsOf(nodeClass))) {
    const control = spec.control_after_generate;
    if (typeof control === "string" && CONTROL_MODES.includes(control)) controls[name] = control;
    else if ((control === true || name === "seed") && spec.type === "INT" && providerOf(nodeClass)) controls[name] = "fixed";
  }
  return controls;
}

/** Set the control widget of each seed: run from nodeCreated, i.e. before a workflow's values
 *  are applied (configure), so a loaded node keeps the value it was saved with. */
export function applyNewNodeControls(node) {
  for (const [name, mode] of Object.entries(newNodeControls(node.comfyClass))) {
    const seed = node.widgets?.find((widget) => widget.name === name);
    // 1.32.9 and 1.47.12 name the control widget after a string control_after_generate ("fixed")
    const control = seed?.linkedWidgets?.find((widget) => widget.type === "combo" && CONTROL_MODES.includes(widget.value))
      ?? node.widgets?.find((widget) => widget.name === "control_after_generate");
    if (control && control.value !== mode && (control.options?.values ?? CONTROL_MODES).includes(mode)) {
      control.value = mode;
    }
  }
}
