// The Nexus desktop UI: tabs over the gateway's API, a settings search,
// a status bar with the connection's mode and latency, and the approval
// dialog extensions raise.

import "./style.css";
import { Api } from "./api";
import type { Ctx, Mode, Tab } from "./app";
import { approvals } from "./approvals";
import { button, fill, h } from "./dom";
import { poll } from "./poll";
import { extensionsTab } from "./tabs/extensions";
import { heartbeatTab } from "./tabs/heartbeat";
import { hierarchyTab } from "./tabs/hierarchy";
import { logsTab } from "./tabs/logs";
import { meshTab } from "./tabs/mesh";
import { providersTab } from "./tabs/providers";
import { servicesTab } from "./tabs/services";

const TABS: Tab[] = [providersTab, hierarchyTab, meshTab, extensionsTab, servicesTab, logsTab, heartbeatTab];

/** The session key and mode: from the URL fragment once (then dropped from the address bar), else this tab's storage. */
function session(): { key: string | null; mode: Mode } {
  const frag = new URLSearchParams(location.hash.slice(1));
  if (frag.get("key")) {
    sessionStorage.setItem("nexus.key", frag.get("key") ?? "");
    sessionStorage.setItem("nexus.mode", frag.get("mode") ?? "local");
    sessionStorage.setItem("nexus.host", frag.get("host") ?? "");
    history.replaceState(null, "", location.pathname + location.search);
  }
  const kind = sessionStorage.getItem("nexus.mode") === "ssh" ? "ssh" : "local";
  return {
    key: sessionStorage.getItem("nexus.key"),
    mode: { kind, host: sessionStorage.getItem("nexus.host") || undefined },
  };
}

function signIn(root: HTMLElement, why?: string): void {
  const input = h("input", { id: "session-key", type: "password", autocomplete: "off", spellcheck: "false" });
  const go = (): void => {
    sessionStorage.setItem("nexus.key", input.value.trim());
    location.reload();
  };
  fill(
    root,
    h(
      "main",
      { class: "signin" },
      h("h1", {}, "Nexus"),
      why ? h("p", { class: "error-box", role: "alert" }, why) : null,
      h("p", {}, "Run ", h("code", {}, "nexus desktop"), " to open this page signed in, or paste a key from ", h("code", {}, "nexus apikey local"), "."),
      h("label", { for: "session-key" }, "Session key"),
      input,
      button("Sign in", go),
    ),
  );
  input.addEventListener("keydown", (e) => e.key === "Enter" && go());
}

function start(): void {
  const root = document.getElementById("app");
  if (!root) return;
  const { key, mode } = session();
  if (!key) return signIn(root);
  const api = new Api(key);

  const tabs = h("div", { class: "tabs", role: "tablist", "aria-label": "Settings sections" });
  const main = h("main", { id: "main" });
  const search = h("input", { id: "search", type: "search", placeholder: "Search settings", autocomplete: "off" });
  const searchNote = h("span", { id: "search-note", class: "muted", "aria-live": "polite" });
  const statusText = h("span", { id: "connection" }, "Connecting…");
  const statusExtra = h("span", { id: "status-extra", class: "muted" });
  let active = location.hash.slice(1) || TABS[0].id;
  if (!TABS.some((t) => t.id === active)) active = TABS[0].id;

  const panels = new Map<string, HTMLElement>();
  const buttons = new Map<string, HTMLButtonElement>();
  const show = (id: string): void => {
    active = id;
    for (const [t, b] of buttons) {
      b.setAttribute("aria-selected", String(t === id));
      b.tabIndex = t === id ? 0 : -1;
    }
    if (search.value) {
      search.value = "";
      filter("");
    }
    for (const [t, p] of panels) p.hidden = t !== id;
    history.replaceState(null, "", `#${id}`);
  };
  const ctx: Ctx = {
    api,
    mode,
    go(tab, focus) {
      show(tab);
      if (focus) window.setTimeout(() => document.getElementById(focus)?.focus(), 0);
    },
    shown: (tab) => active === tab || Boolean(search.value),
  };

  for (const t of TABS) {
    const b = h(
      "button",
      { type: "button", role: "tab", id: `tab-${t.id}`, "aria-controls": `panel-${t.id}`, "aria-selected": "false", onclick: () => show(t.id) },
      t.title,
    );
    b.addEventListener("keydown", (e) => {
      const i = TABS.indexOf(t);
      const next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : null;
      if (next === null) return;
      const n = TABS[(next + TABS.length) % TABS.length];
      show(n.id);
      buttons.get(n.id)?.focus();
    });
    buttons.set(t.id, b);
    tabs.append(b);
    const p = h("section", { id: `panel-${t.id}`, role: "tabpanel", "aria-labelledby": `tab-${t.id}`, class: "panel", hidden: true });
    p.append(h("h2", {}, t.title));
    panels.set(t.id, p);
    main.append(p);
  }

  /** Filters every field of every tab by the words typed. */
  const filter = (q: string): void => {
    performance.mark("search-start");
    const words = q.toLowerCase().split(/\s+/).filter(Boolean);
    document.body.classList.toggle("searching", words.length > 0);
    let total = 0;
    for (const [id, p] of panels) {
      let n = 0;
      for (const f of p.querySelectorAll<HTMLElement>("[data-field]")) {
        const hit = words.every((w) => (f.dataset.field ?? "").includes(w));
        f.hidden = words.length > 0 && !hit;
        if (hit) n += 1;
      }
      p.hidden = words.length > 0 ? n === 0 : id !== active;
      if (words.length) total += n;
    }
    searchNote.textContent = words.length ? `${total} setting${total === 1 ? "" : "s"} match` : "";
    performance.measure("settings-search", "search-start");
  };
  search.addEventListener("input", () => filter(search.value));
  search.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      search.value = "";
      filter("");
    }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && document.activeElement?.tagName !== "INPUT" && document.activeElement?.tagName !== "TEXTAREA") {
      e.preventDefault();
      search.focus();
    }
  });

  fill(
    root,
    h("a", { class: "skip", href: "#main" }, "Skip to content"),
    h(
      "header",
      {},
      h("h1", {}, "Nexus"),
      h("div", { class: "search" }, h("label", { for: "search", class: "visually-hidden" }, "Search settings"), search, searchNote),
    ),
    h("nav", { "aria-label": "Sections" }, tabs),
    main,
    h("footer", { class: "statusbar", role: "status", "aria-live": "polite" }, statusText, statusExtra),
    h("div", { id: "toasts", class: "toasts", "aria-live": "polite" }),
  );
  for (const t of TABS) t.mount(panels.get(t.id) as HTMLElement, ctx);
  show(active);
  approvals(ctx);

  // The status bar: the mode, and the round trip of a health check.
  const label = mode.kind === "ssh" ? `SSH${mode.host ? ` to ${mode.host}` : ""}` : "local";
  poll(async () => {
    const t0 = performance.now();
    try {
      const h0 = await api.get("/health");
      const ms = Math.max(1, Math.round(performance.now() - t0));
      statusText.textContent = `Connected (${mode.kind === "ssh" ? "SSH" : "local"}, ${ms} ms)`;
      statusText.className = "up";
      statusText.title = `${label}, nexus ${h0.version}`;
      statusExtra.textContent = `nexus ${h0.version}`;
    } catch (e) {
      statusText.textContent = `Disconnected (${label}): retrying`;
      statusText.className = "down";
      throw e;
    }
  }, 5000);
  // Is the key still good? A revoked or expired one sends back to sign-in.
  api.get("/whoami").catch((e) => {
    if (e.status === 401) {
      sessionStorage.removeItem("nexus.key");
      signIn(root, `This session has ended (${e.message}). Run \`nexus desktop\` again.`);
    }
  });
  requestAnimationFrame(() => performance.mark("nexus-interactive"));
}

start();
