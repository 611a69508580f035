// DOM helpers: elements, accessible forms with field errors, tables, formatting.

import { ApiError } from "./api.js";

/** Builds an element: h("a", {href: "/"}, "Home"). `on` maps events to handlers. */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith("svg:");
  const el = svg
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === "class") {
      el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "text") {
      el.textContent = value;
    } else if (key === "checked" || key === "value" || key === "disabled" || key === "selected") {
      el[key] = value;
      if (key !== "value") el.toggleAttribute(key, Boolean(value));
      else el.setAttribute("value", value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export const nextId = (prefix = "id") => `${prefix}-${++uid}`;

// ---- formatting ---------------------------------------------------------------

export function money(value) {
  if (value === null || value === undefined || value === "") return "";
  const n = Number(value);
  if (Number.isNaN(n)) return String(value);
  return n.toLocaleString("en-US", { style: "currency", currency: "USD" });
}

export function date(value) {
  if (!value) return "";
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (m) return `${Number(m[2])}/${Number(m[3])}/${m[1]}`;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short" });
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// ---- status and messages ----------------------------------------------------

/** A polite live region message near the page's heading ("Saved", "2 items added"). */
export function notice(text, kind = "info") {
  const box = document.getElementById("page-status");
  if (!box) return;
  clear(box);
  if (!text) return;
  box.append(h("div", { class: ["notice", `notice-${kind}`] }, text));
}

export function alertBox(text, kind = "error", extra = null) {
  return h(
    "div",
    { class: ["notice", `notice-${kind}`], role: kind === "error" ? "alert" : "status" },
    h("p", {}, text),
    extra,
  );
}

/** Shows a failed load in place of the page content, saying what is unavailable. */
export function loadError(err, what) {
  if (err instanceof ApiError && err.status === 404) {
    return alertBox(`${what} was not found, or it is not linked to your user ID.`);
  }
  if (err instanceof ApiError && (err.status === 503 || err.status === 502 || err.status === 504)) {
    return alertBox(`${what} is unavailable right now. ${err.detail || "Please try again in a few minutes."}`);
  }
  return alertBox(err && err.message ? err.message : `${what} could not be loaded.`);
}

// ---- tables -----------------------------------------------------------------

/** A table in a focusable, labelled scroll region (narrow screens scroll it sideways). */
export function table({ caption, columns, rows, footer = null, captionHidden = false }) {
  const id = nextId("tbl");
  const t = h(
    "table",
    {},
    h("caption", { id, class: captionHidden ? "visually-hidden" : null }, caption),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          {},
          columns.map((c, i) => {
            const value = c.cell ? c.cell(row) : row[c.key];
            return i === 0 && c.rowHeader !== false
              ? h("th", { scope: "row", class: c.num ? "num" : null }, value)
              : h("td", { class: c.num ? "num" : null, "data-label": c.label }, value);
          }),
        ),
      ),
    ),
    footer ? h("tfoot", {}, footer) : null,
  );
  return h("div", { class: "table-wrap", role: "region", "aria-labelledby": id, tabindex: "0" }, t);
}

// ---- forms ------------------------------------------------------------------

/**
 * One labelled field. `type` may be text, email, password, checkbox, radio-group, select.
 * The hint and the error are tied to the input with aria-describedby.
 */
export function field(spec) {
  const {
    name,
    label,
    type = "text",
    hint,
    required = false,
    value = "",
    autocomplete,
    inputmode,
    options = [],
    checked = false,
    maxlength,
    width,
  } = spec;
  const id = spec.id || `f-${name.replace(/[^a-z0-9]/gi, "-")}`;
  const hintId = hint ? `${id}-hint` : null;
  const errorId = `${id}-error`;
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  const hintEl = hint ? h("p", { class: "hint", id: hintId }, hint) : null;
  const describedBy = hintId || undefined;

  if (type === "checkbox") {
    const input = h("input", {
      type: "checkbox",
      id,
      name,
      checked,
      "aria-describedby": describedBy,
    });
    return h("div", { class: "field field-check", "data-field": name }, input, h("label", { for: id }, label), hintEl, error);
  }
  if (type === "radio-group") {
    const legendId = `${id}-legend`;
    return h(
      "fieldset",
      { class: "field field-radios", "data-field": name, "aria-describedby": describedBy },
      h("legend", { id: legendId }, label, required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null),
      hintEl,
      options.map((o, i) =>
        h(
          "div",
          { class: "field-check" },
          h("input", {
            type: "radio",
            id: `${id}-${i}`,
            name,
            value: o.value,
            checked: String(o.value) === String(value),
            required: required || undefined,
          }),
          h("label", { for: `${id}-${i}` }, o.label),
        ),
      ),
      error,
    );
  }
  let input;
  if (type === "select") {
    input = h(
      "select",
      { id, name, required: required || undefined, autocomplete, "aria-describedby": describedBy },
      options.map((o) => h("option", { value: o.value, selected: String(o.value) === String(value) }, o.label)),
    );
  } else if (type === "textarea") {
    input = h("textarea", { id, name, required: required || undefined, rows: 4, "aria-describedby": describedBy });
    input.value = value;
  } else {
    input = h("input", {
      id,
      name,
      type,
      value: value === null || value === undefined ? "" : String(value),
      required: required || undefined,
      autocomplete,
      inputmode,
      maxlength,
      spellcheck: type === "text" ? "false" : undefined,
      "aria-describedby": describedBy,
      class: width ? `w-${width}` : null,
    });
  }
  return h(
    "div",
    { class: "field", "data-field": name },
    h("label", { for: id }, label, required ? h("span", { class: "req" }, " (required)") : null),
    hintEl,
    error,
    input,
  );
}

function fieldInputs(formEl, name) {
  return Array.from(formEl.elements).filter((el) => el.name === name);
}

/** Reads a form: checkboxes give booleans, radios their value, others trimmed strings. */
export function formValues(formEl) {
  const values = {};
  for (const el of formEl.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") values[el.name] = el.checked;
    else if (el.type === "radio") {
      if (el.checked) values[el.name] = el.value;
      else if (!(el.name in values)) values[el.name] = "";
    } else if (el.type === "password") values[el.name] = el.value;
    else values[el.name] = el.value.trim();
  }
  return values;
}

export function clearErrors(formEl) {
  const summary = formEl.querySelector(".error-summary");
  if (summary) summary.remove();
  for (const box of formEl.querySelectorAll("[data-field]")) {
    const err = box.querySelector(".field-error");
    if (err) {
      err.hidden = true;
      err.textContent = "";
    }
    for (const input of box.querySelectorAll("input, select, textarea")) {
      input.removeAttribute("aria-invalid");
      const ids = (input.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && !x.endsWith("-error"));
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
      else input.removeAttribute("aria-describedby");
    }
  }
}

// API field names that the form shows under a different field.
function boxFor(formEl, name) {
  const direct = formEl.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (direct) return direct;
  const last = name.split(".").pop();
  return formEl.querySelector(`[data-field="${CSS.escape(last)}"]`);
}

/**
 * Shows errors next to their fields (aria-invalid + aria-describedby) and a summary with links
 * at the top of the form. Values the resident typed stay where they are.
 */
export function showErrors(formEl, errors, message) {
  clearErrors(formEl);
  const items = [];
  const unplaced = [];
  for (const [name, text] of Object.entries(errors || {})) {
    const box = boxFor(formEl, name);
    if (!box) {
      unplaced.push(text);
      continue;
    }
    const err = box.querySelector(".field-error");
    err.textContent = text;
    err.hidden = false;
    const inputs = box.querySelectorAll("input, select, textarea");
    for (const input of inputs) {
      input.setAttribute("aria-invalid", "true");
      const ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
      ids.push(err.id);
      input.setAttribute("aria-describedby", ids.join(" "));
    }
    const first = inputs[0];
    items.push({ id: first ? first.id : null, text });
  }
  const summary = h(
    "div",
    { class: "error-summary", role: "alert", tabindex: "-1" },
    h("h2", {}, items.length > 1 ? `Please correct ${items.length} fields` : "There is a problem"),
    message && (!items.length || message !== items[0].text) ? h("p", {}, message) : null,
    unplaced.map((t) => h("p", {}, t)),
    items.length
      ? h(
          "ul",
          {},
          items.map((it) =>
            h("li", {}, it.id ? h("a", { href: `#${it.id}`, on: { click: focusField(it.id) } }, it.text) : it.text),
          ),
        )
      : null,
  );
  formEl.prepend(summary);
  summary.focus();
}

function focusField(id) {
  return (event) => {
    event.preventDefault();
    const el = document.getElementById(id);
    if (el) el.focus();
  };
}

/**
 * Wires a form: on submit, validates with `check(values)` (returns field errors), then awaits
 * `submit(values)`. ApiErrors become field errors; the button is busy while waiting.
 * `options.pair` names the fields a field-less 422 is about (account + customer number);
 * `options.service` names what is unavailable when the API answers 5xx ("Signing in").
 */
export function onSubmit(formEl, submit, check = null, options = {}) {
  formEl.setAttribute("novalidate", "");
  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (formEl.dataset.busy === "1") return;
    const values = formValues(formEl);
    clearErrors(formEl);
    const local = check ? check(values) : null;
    if (local && Object.keys(local).length) {
      showErrors(formEl, local);
      return;
    }
    const buttons = formEl.querySelectorAll("button[type=submit]");
    formEl.dataset.busy = "1";
    formEl.setAttribute("aria-busy", "true");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await submit(values, event.submitter || null);
    } catch (err) {
      if (err instanceof ApiError) {
        let message = err.detail || err.title;
        if (err.status === 429) {
          const wait = err.retryAfter ? ` Please wait ${Math.ceil(Number(err.retryAfter) / 60) || 1} minute(s).` : "";
          message = `${err.detail || "Too many attempts."}${wait}`;
        }
        if (err.status === 0 || err.status >= 500) {
          message = `${options.service || "This service"} is unavailable right now. Nothing was changed: please try again in a few minutes.`;
        }
        let errors = err.errors;
        // "No account matches these values" names no field: it concerns the pair of numbers.
        if (err.status === 422 && !Object.keys(errors).length && options.pair) {
          const shown = options.pair.filter((name) => {
            const box = formEl.querySelector(`[data-field="${name}"]`);
            return box && !box.closest("[hidden]");
          });
          errors = Object.fromEntries(shown.map((name) => [name, err.detail || err.title]));
        }
        showErrors(formEl, errors, message);
      } else {
        showErrors(formEl, {}, "Something went wrong. Please try again.");
        console.error(err);
      }
    } finally {
      delete formEl.dataset.busy;
      formEl.removeAttribute("aria-busy");
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return formEl;
}

export function requireFields(values, labels) {
  const errors = {};
  for (const [name, label] of Object.entries(labels)) {
    if (!values[name]) errors[name] = `Enter your ${label}.`;
  }
  return errors;
}

export function button(text, attrs = {}) {
  return h("button", { type: "button", class: "btn", ...attrs }, text);
}

export function submitButton(text, attrs = {}) {
  return h("button", { type: "submit", class: "btn btn-primary", ...attrs }, text);
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export function card(title, ...children) {
  const id = nextId("card");
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id }, title), children);
}

export function dl(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs
      .filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))),
  );
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}
