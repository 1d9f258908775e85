// Building DOM safely: text is always a text node, never parsed as HTML.

/** An element with attributes, listeners (`onclick`...) and children (nodes or text). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A URL fit for a link (http or https only: no `javascript:`), or null. */
export function safeUrl(value) {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

/** `14:18:33` in local time (with the date if not today), or an empty string. */
export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const time = d.toLocaleTimeString([], { hour12: false });
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

/** `2026-02-06 14:18:33.120` in local time, or a dash. */
export function stamp(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
    pad(d.getMilliseconds(), 3)
  );
}

/** JSON text pretty-printed when it parses, else as it is. */
export function pretty(text) {
  if (text === null || text === undefined) return "—";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A definition list from `[term, value]` pairs (values: text or nodes). */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "—")]));
}

/** An honest empty state: what is missing and how to get some. */
export function empty(text, ...extra) {
  return h("div", { class: "empty" }, h("p", {}, text), ...extra);
}

/** The values of a form's named fields; numbers and checkboxes typed, blanks left out. */
export function formValues(form) {
  const values = {};
  for (const field of form.elements) {
    if (!field.name) continue;
    if (field.type === "checkbox") values[field.name] = field.checked;
    else if (field.value.trim() === "") continue;
    else values[field.name] = field.type === "number" ? Number(field.value) : field.value.trim();
  }
  return values;
}

/** Redraw `container` with `draw()`, keeping expanded `<details>` of each `[data-id]` open. */
export function redraw(container, draw) {
  const open = new Set();
  for (const el of container.querySelectorAll("details[open]")) {
    open.add(el.closest("[data-id]")?.dataset.id);
  }
  draw();
  for (const el of container.querySelectorAll("details")) {
    if (open.has(el.closest("[data-id]")?.dataset.id)) el.open = true;
  }
}
