// FluxFill web extension: the Settings › FluxFill key form. Write-only: it POSTs a provider key
// to /fluxfill/keys (stored in the server's key file) and shows only which providers have one.
// It never calls the setting's setter, so the key is never in the frontend's settings store,
// comfy.settings.json, localStorage or a workflow. No side effects.
import { fetchKeyFlags, loadTable, providerIds, providerTitle, saveKey } from "./route.js";

const FIELD_STYLE = ";padding:3px 6px; border-radius:4px; border:1px solid var(--border-color, #555);"
  + "background:var(--comfy-input-bg, #222); color:var(--input-text, #ddd)";

function button(text, className, type) {
  const element = document.createElement("button");
  element.textContent = text;
  element.className = className;
  if (type) element.type = type;
  return element;
}

/** The form; `onKeysChanged()` runs after a key was saved or removed. */
export function keyForm(onKeysChanged) {
  const form = document.createElement("form");    // a form: browsers expect password fields in one
  form.className = "fluxfill-keys";
  form.autocomplete = "off";
  form.style.cssText = "display:flex; flex-wrap:wrap; gap:6px; align-items:center; justify-content:flex-end";
  const provider = document.createElement("select");
  provider.name = "fluxfill-provider";
  const listProviders = () => {
    const listed = new Set(Array.from(provider.options).map((option) => option.value));
    for (const id of providerIds()) if (!listed.has(id)) provider.add(new Option(providerTitle(id), id));
  };
  listProviders();
  const key = document.createElement("input");
  Object.assign(key, { type: "password", name: "fluxfill-key", placeholder: "paste the API key",
                       autocomplete: "new-password", spellcheck: false });
  key.style.width = "16em";
  const save = button("Save key", "fluxfill-save");
  const remove = button("Remove", "fluxfill-remove", "button");
  const status = document.createElement("div");
  status.className = "fluxfill-key-status";
  status.style.cssText = "flex-basis:100%; text-align:right; font-size:12px; opacity:0.8";
  for (const field of [provider, key, save, remove]) field.style.cssText += FIELD_STYLE;

  const show = (flags, message = "") => {
    listProviders();
    status.textContent = (message ? message + " — " : "")
      + providerIds().map((id) => `${providerTitle(id)}: ${flags[id] ? "configured" : "not set"}`).join(" · ");
  };
  const send = async (value) => {
    const chosen = provider.value;
    key.value = "";                       // the field never keeps the key
    try {
      const flags = await saveKey(chosen, value);
      show(flags, value ? `${providerTitle(chosen)} key saved` : `${providerTitle(chosen)} key removed`);
      onKeysChanged?.();
    } catch (error) {
      status.textContent = `not saved: ${error.message}`;
    }
  };
  form.onsubmit = (event) => { event.preventDefault(); if (key.value.trim()) send(key.value.trim()); };
  remove.onclick = () => send("");
  form.append(provider, key, save, remove, status);
  loadTable().then(() => fetchKeyFlags())
    .then((flags) => show(flags), (error) => { status.textContent = error.message; });
  return form;
}
