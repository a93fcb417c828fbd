// Logs: every log in one place, live, filtered by level, source and text;
// exported as JSON; cleared.

import type { Json } from "../api";
import type { Ctx, Tab } from "../app";
import { errorBox } from "../errors";
import { button, field, fill, h, toast, when } from "../dom";
import { poll } from "../poll";

export const logsTab: Tab = {
  id: "logs",
  title: "Logs",
  mount(panel: HTMLElement, ctx: Ctx) {
    const level = h("select", { id: "log-level" }, ...["", "debug", "info", "warn", "error"].map((l) => h("option", { value: l }, l ? `${l} and above` : "all levels")));
    const source = h("select", { id: "log-source" }, h("option", { value: "" }, "all sources"));
    const grep = h("input", { id: "log-grep", type: "search", autocomplete: "off" });
    const live = h("input", { id: "log-live", type: "checkbox", checked: true });
    const count = h("p", { id: "log-count", class: "muted", "aria-live": "polite" });
    const rows = h("tbody", { id: "log-rows" });
    const errors = h("div");
    let lines: Json[] = [];

    const query = (): string => {
      const q = new URLSearchParams({ limit: "2000" });
      if (level.value) q.set("level", level.value);
      if (source.value) q.set("source", source.value);
      if (grep.value.trim()) q.set("grep", grep.value.trim());
      return q.toString();
    };
    const load = async (): Promise<void> => {
      try {
        const r = await ctx.api.get(`/logs?${query()}`);
        fill(errors);
        lines = r.lines;
        // The sources list changes rarely: rebuilt only then, so an open
        // dropdown is not replaced under the user.
        const sig = r.sources.join("\n");
        if (source.dataset.sig !== sig) {
          const chosen = source.value;
          fill(source, h("option", { value: "" }, "all sources"), ...r.sources.map((s: string) => h("option", { value: s, selected: s === chosen ? true : undefined }, s)));
          source.dataset.sig = sig;
        }
        count.textContent = `${lines.length} line${lines.length === 1 ? "" : "s"}${r.truncated ? " (the newest 2000)" : ""}`;
        fill(rows, ...lines.map((l) => h("tr", { class: `level-${l.level}` }, h("td", {}, when(l.ts_ms)), h("td", {}, l.level), h("td", {}, l.source), h("td", {}, l.msg))));
      } catch (e) {
        fill(errors, errorBox(e, ctx));
        throw e;
      }
    };
    for (const c of [level, source]) c.addEventListener("change", () => void load());
    let typing = 0;
    grep.addEventListener("input", () => {
      window.clearTimeout(typing);
      typing = window.setTimeout(() => void load(), 200);
    });

    const exportJson = (): void => {
      const blob = new Blob([JSON.stringify(lines, null, 2)], { type: "application/json" });
      const a = h("a", { href: URL.createObjectURL(blob), download: `nexus-logs-${new Date().toISOString().slice(0, 19).replace(/:/g, "")}.json` });
      document.body.append(a);
      a.click();
      a.remove();
      toast(`Exported ${lines.length} line${lines.length === 1 ? "" : "s"}`);
    };
    const clearDialog: HTMLDivElement = h(
      "div",
      { class: "dialog", role: "dialog", "aria-modal": "true", "aria-labelledby": "clear-title", hidden: true, id: "clear-dialog" },
      h("h2", { id: "clear-title" }, "Clear every log?"),
      h("p", {}, "This removes every log file under NEXUS_HOME/logs. It cannot be undone."),
      h(
        "div",
        { class: "actions" },
        button("Clear logs", async () => {
          clearDialog.hidden = true;
          try {
            const r = await ctx.api.del("/logs");
            toast(`Removed ${r.removed} log file${r.removed === 1 ? "" : "s"}`);
            await load();
          } catch (e) {
            toast(e instanceof Error ? e.message : String(e), "error");
          }
        }, { class: "danger", id: "confirm-clear" }),
        button("Cancel", () => {
          clearDialog.hidden = true;
        }),
      ),
    );
    panel.append(
      errors,
      h(
        "div",
        { class: "filters" },
        field("Level", level, { keywords: "log level filter" }),
        field("Source", source, { keywords: "log source service filter" }),
        field("Text", grep, { keywords: "log search grep filter" }),
        field("Live tail", live, { keywords: "log follow live" }),
        h("div", { class: "actions" }, button("Export JSON", exportJson, { id: "export-logs" }), button("Clear…", () => ((clearDialog.hidden = false), document.getElementById("confirm-clear")?.focus()), { id: "clear-logs", class: "danger" })),
      ),
      count,
      h("div", { class: "scroll" }, h("table", { class: "logs" }, h("caption", { class: "visually-hidden" }, "Log lines"), h("thead", {}, h("tr", {}, ...["Time", "Level", "Source", "Message"].map((c) => h("th", { scope: "col" }, c)))), rows)),
      clearDialog,
    );
    poll(load, 1000, () => ctx.shown("logs") && live.checked);
    live.addEventListener("change", () => live.checked && void load());
  },
};
