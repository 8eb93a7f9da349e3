// FluxFill web extension: the Settings › FluxFill forms. The key form is write-only: it POSTs a
// provider key to /fluxfill/keys (stored in the server's key file) and shows only which providers
// have one. The daily spend limit form shows and stores the limit (POST /fluxfill/limit, beside
// the keys in user/fluxfill/settings.json; unlike a key it may be shown) and says when the
// environment variable overrides it. Neither calls the setting's setter, so nothing is in the
// frontend's settings store, comfy.settings.json, localStorage or a workflow. No side effects.
import { fetchKeyFlags, fetchLimit, loadTable, providerIds, providerTitle, saveKey, saveLimit } from "./route.js";

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

function limitStatus(info) {
  const dollars = (usd) => `$${Number(usd).toFixed(2)}`;
  if (info.error) return info.error;
  if (info.env_overrides) {
    return `${info.env_var} = ${dollars(info.limit_usd)} overrides this setting`
      + (info.stored_usd != null ? ` (stored: ${dollars(info.stored_usd)})` : "") + ` — ${info.text}`;
  }
  return info.limit_usd == null ? `no limit — today: ${dollars(info.today_usd)}` : info.text;
}

/** The daily spend limit form (empty = no limit); `onLimitChanged()` runs after it was saved. */
export function limitForm(onLimitChanged) {
  const form = document.createElement("form");
  form.className = "fluxfill-limit";
  form.autocomplete = "off";
  form.style.cssText = "display:flex; flex-wrap:wrap; gap:6px; align-items:center; justify-content:flex-end";
  const limit = document.createElement("input");
  Object.assign(limit, { type: "number", name: "fluxfill-limit", min: "0", step: "0.01", placeholder: "no limit" });
  limit.style.width = "8em";
  const save = button("Save limit", "fluxfill-save-limit");
  const status = document.createElement("div");
  status.className = "fluxfill-limit-status";
  status.style.cssText = "flex-basis:100%; text-align:right; font-size:12px; opacity:0.8";
  for (const field of [limit, save]) field.style.cssText += FIELD_STYLE;
  const show = (info, message = "") => {
    limit.value = info.stored_usd == null ? "" : String(info.stored_usd);
    status.textContent = (message ? message + " — " : "") + limitStatus(info);
  };
  form.onsubmit = async (event) => {
    event.preventDefault();
    const value = limit.value.trim();
    try {
      const info = await saveLimit(value === "" ? null : Number(value));
      show(info, value === "" ? "limit removed" : "limit saved");
      onLimitChanged?.();
    } catch (error) {
      status.textContent = `not saved: ${error.message}`;
    }
  };
  form.append(limit, save, status);
  fetchLimit().then((info) => show(info), (error) => { status.textContent = error.message; });
  return form;
}
