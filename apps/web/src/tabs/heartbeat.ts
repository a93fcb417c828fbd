// Heartbeat: on or off, its interval, run it now, and what it found.

import type { Json } from "../api";
import type { Ctx, Tab } from "../app";
import { errorBox } from "../errors";
import { ago, button, field, fill, h, toast, when } from "../dom";

function results(list: Json[]): HTMLElement {
  return h(
    "ul",
    { class: "results" },
    ...list.map((o) => h("li", { class: `outcome ${o.status}` }, h("strong", {}, o.task), ` ${o.status}: `, o.summary)),
  );
}

export const heartbeatTab: Tab = {
  id: "heartbeat",
  title: "Heartbeat",
  mount(panel: HTMLElement, ctx: Ctx) {
    const enabled = h("input", { id: "hb-enabled", type: "checkbox" });
    const interval = h("input", { id: "hb-interval", autocomplete: "off", placeholder: "30m" });
    const state = h("p", { id: "hb-state", class: "muted" });
    const last = h("div", { id: "hb-results" });
    const recent = h("div", { id: "hb-recent" });
    const errors = h("div");
    const render = (r: Json): void => {
      fill(errors);
      enabled.checked = Boolean(r.enabled);
      if (r.interval_secs && document.activeElement !== interval) interval.value = `${Math.round(r.interval_secs / 60) >= 1 && r.interval_secs % 60 === 0 ? `${r.interval_secs / 60}m` : `${r.interval_secs}s`}`;
      state.textContent = r.enabled ? `Next beat ${r.next_ms ? `${when(r.next_ms)} (${ago(r.next_ms)})` : "—"}; last ${ago(r.last_ms)}. Tasks: ${(r.tasks ?? []).join(", ")}.` : `Off. Tasks when on: ${(r.tasks ?? []).join(", ")}.`;
      fill(last, r.last ? results(r.last) : h("p", { class: "muted" }, "No beat yet."));
      fill(recent, ...(r.recent ?? []).slice(0, 10).map((b: Json) => h("details", {}, h("summary", {}, `${when(b.at_ms)}: ${b.results.length} task(s)`), results(b.results))));
    };
    const load = async (): Promise<void> => {
      try {
        render(await ctx.api.get("/heartbeat"));
      } catch (e) {
        fill(errors, errorBox(e, ctx));
      }
    };
    const run = button("Run now", async () => {
      run.disabled = true;
      run.textContent = "Running…";
      try {
        const r = await ctx.api.post("/heartbeat/run");
        fill(last, results(r.results));
        toast(`Heartbeat ran ${r.results.length} task(s)`);
        await load();
      } catch (e) {
        toast(e instanceof Error ? e.message : String(e), "error");
      } finally {
        run.disabled = false;
        run.textContent = "Run now";
      }
    }, { id: "hb-run", class: "primary" });
    panel.append(
      errors,
      state,
      field("Heartbeat on", enabled, { keywords: "heartbeat enable disable" }),
      field("Interval", interval, { keywords: "heartbeat interval every minutes", hint: "Like 30m, 2h or 90s (at least 10s)." }),
      h(
        "div",
        { class: "actions" },
        button("Save", async () => {
          try {
            render(await ctx.api.put("/heartbeat", { enabled: enabled.checked, interval: interval.value.trim() || undefined }));
            toast(enabled.checked ? "Heartbeat on" : "Heartbeat off");
          } catch (e) {
            toast(e instanceof Error ? e.message : String(e), "error");
          }
        }, { id: "hb-save" }),
        run,
      ),
      h("h3", {}, "Last results"),
      last,
      h("h3", {}, "Recent beats"),
      recent,
    );
    void load();
  },
};
