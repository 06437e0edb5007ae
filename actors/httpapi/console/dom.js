// DOM helpers of the console: elements from data, redrawn only when their data changed.

const SVG = "http://www.w3.org/2000/svg";

export const $ = (selector, root = document) => root.querySelector(selector);
export const enc = encodeURIComponent;

// -- DOM helpers -----------------------------------------------------------------------

function build(element, props, kids) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.setAttribute("class", value);
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid !== null && kid !== undefined && kid !== false) element.append(kid instanceof Node ? kid : String(kid));
  }
  return element;
}
export const h = (tag, props, ...kids) => build(document.createElement(tag), props, kids);
export const svg = (tag, props, ...kids) => build(document.createElementNS(SVG, tag), props, kids);

// Replace a container's content only when its data changed: polling every 2 s must not
// take the keyboard focus away from a button the operator is on, nor cost a re-layout.
export function show(container, data, make) {
  const signature = JSON.stringify(data);
  if (container.dataset.signature === signature) return;
  container.dataset.signature = signature;
  container.replaceChildren(...[make(data)].flat().filter(Boolean));
}

export function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  const text = date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  return h("time", { datetime: date.toISOString() }, text);
}

export function badge(text, kind) {
  return h("span", { class: `badge s-${kind || text}` }, text);
}

export function announce(text) {
  $("#announce").textContent = text;
}
