// A few DOM helpers: elements, labelled fields, notices. No framework.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, unknown>;

/** An element with attributes (`on*` are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (k === "value" && "value" in el) {
      (el as HTMLInputElement).value = String(v);
    } else if (k === "checked" && el instanceof HTMLInputElement) {
      el.checked = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

/** An SVG element. */
export function svg(tag: string, attrs: Attrs = {}, ...children: Child[]): SVGElement {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces `el`'s children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let ids = 0;
/** A fresh element id. */
export function uid(prefix = "f"): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/**
 * A labelled setting. Every field carries `data-field` (its label and
 * keywords), which the settings search filters on.
 */
export function field(
  label: string,
  control: HTMLElement,
  opts: { hint?: string | Node; keywords?: string } = {},
): HTMLDivElement {
  if (!control.id) control.id = uid();
  const hintId = opts.hint ? uid("hint") : undefined;
  if (hintId) control.setAttribute("aria-describedby", hintId);
  const wrap = h(
    "div",
    { class: "field", "data-field": `${label} ${opts.keywords ?? ""}`.toLowerCase() },
    h("label", { for: control.id }, label),
    control,
    opts.hint ? h("p", { class: "hint", id: hintId }, opts.hint) : null,
  );
  return wrap;
}

/** A button. */
export function button(
  text: string,
  onclick: (e: MouseEvent) => unknown,
  attrs: Attrs = {},
): HTMLButtonElement {
  return h("button", { type: "button", ...attrs, onclick }, text);
}

/** "in 5 min", "3 s ago": a time relative to now. */
export function ago(ms: number | null | undefined): string {
  if (!ms) return "never";
  const d = Math.round((ms - Date.now()) / 1000);
  const abs = Math.abs(d);
  const text =
    abs < 60 ? `${abs} s` : abs < 3600 ? `${Math.round(abs / 60)} min` : abs < 86400 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} d`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

/** A local date and time. */
export function when(ms: number): string {
  return new Date(ms).toLocaleString();
}

/** Shows a passing notice in the live region. */
export function toast(text: string, kind: "ok" | "error" = "ok"): void {
  const region = document.getElementById("toasts");
  if (!region) return;
  const t = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  region.append(t);
  window.setTimeout(() => t.remove(), kind === "error" ? 8000 : 3500);
}

/**
 * Keeps `parent`'s children in step with `items` by key: new items get an
 * element from `create`, kept ones are updated in place by `update` (so a
 * button being clicked or focused is not replaced under the pointer), gone
 * ones are removed, and the order follows `items`.
 */
export function keyed<T>(
  parent: Element,
  items: T[],
  key: (t: T) => string,
  create: (t: T) => HTMLElement,
  update: (el: HTMLElement, t: T) => void,
): void {
  const existing = new Map<string, HTMLElement>();
  for (const c of Array.from(parent.children)) {
    const k = (c as HTMLElement).dataset.key;
    if (k !== undefined) existing.set(k, c as HTMLElement);
    else c.remove();
  }
  let prev: Element | null = null;
  for (const t of items) {
    const k = key(t);
    let el = existing.get(k);
    if (el) {
      existing.delete(k);
      update(el, t);
    } else {
      el = create(t);
      el.dataset.key = k;
      update(el, t);
    }
    const want: Element | null = prev ? prev.nextElementSibling : parent.firstElementChild;
    if (want !== el) parent.insertBefore(el, want);
    prev = el;
  }
  for (const el of existing.values()) el.remove();
}
