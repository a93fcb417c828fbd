// Services: what nexusd supervises, restart/stop/start, and each one's
// log tail.

import type { Json } from "../api";
import type { Ctx, Tab } from "../app";
import { errorBox } from "../errors";
import { button, fill, h, keyed, toast, when } from "../dom";
import { poll } from "../poll";

function uptime(ms: number | null): string {
  if (!ms) return "";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

export const servicesTab: Tab = {
  id: "services",
  title: "Services",
  mount(panel: HTMLElement, ctx: Ctx) {
    const table = h("div", { id: "services" });
    const tailTitle = h("h3", { id: "tail-title" }, "Log tail");
    const tail = h("pre", { id: "service-tail", class: "tail", tabindex: "0", "aria-labelledby": "tail-title" });
    panel.append(table, tailTitle, tail);
    let tailed: string | null = null;

    const loadTail = async (): Promise<void> => {
      if (!tailed) return;
      const r = await ctx.api.get(`/logs?source=${encodeURIComponent(tailed)}&limit=200`);
      tailTitle.textContent = `Log tail: ${tailed}`;
      tail.textContent = r.lines.map((l: Json) => `${when(l.ts_ms)} ${l.level.padEnd(5)} ${l.msg}`).join("\n") || "(empty)";
      tail.scrollTop = tail.scrollHeight;
    };

    const act = async (name: string, verb: string): Promise<void> => {
      try {
        await ctx.api.post(`/services/${encodeURIComponent(name)}/${verb}`);
        toast(`${verb === "restart" ? "Restarted" : verb === "stop" ? "Stopped" : "Started"} ${name}`);
        await load();
      } catch (e) {
        toast(e instanceof Error ? e.message : String(e), "error");
      }
    };

    const load = async (): Promise<void> => {
      try {
        const r = await ctx.api.get("/services");
        const list: Json[] = r.services ?? [];
        if (r.error) toast(`Services: ${r.error}`, "error");
        if (!list.length) {
          fill(table, h("p", { class: "muted" }, "No services. Add [services.NAME] to config.toml, or run `nexus up` for the broker."));
          return;
        }
        let body = table.querySelector("tbody");
        if (!body) {
          body = h("tbody", {});
          fill(
            table,
            h(
              "table",
              {},
              h("caption", { class: "visually-hidden" }, "Services"),
              h("thead", {}, h("tr", {}, ...["Service", "State", "PID", "Up", "Restarts", "Health", ""].map((c) => h("th", { scope: "col" }, c)))),
              body,
            ),
          );
        }
        // Rows are updated in place: a button is never replaced under the pointer.
        keyed(
          body,
          list,
          (s) => s.name,
          (s) => {
            const toggle = button("Stop", () => act(s.name, toggle.dataset.verb ?? "stop"), { "aria-label": `Stop ${s.name}` });
            return h(
              "tr",
              { "data-service": s.name },
              h("td", {}, s.name),
              h("td", {}),
              h("td", {}),
              h("td", {}),
              h("td", { "data-restarts": s.name }),
              h("td", {}),
              h(
                "td",
                { class: "actions" },
                button("Restart", () => act(s.name, "restart"), { "aria-label": `Restart ${s.name}` }),
                toggle,
                button("Logs", () => {
                  tailed = s.name;
                  void loadTail();
                }, { "aria-label": `Show the log of ${s.name}` }),
              ),
            );
          },
          (row, s) => {
            const cells = row.children;
            const set = (i: number, v: string): void => {
              if (cells[i].textContent !== v) cells[i].textContent = v;
            };
            set(1, s.state);
            cells[1].className = `state ${s.state}`;
            set(2, String(s.pid ?? ""));
            set(3, uptime(s.uptime_ms));
            set(4, String(s.restarts));
            set(5, s.healthy ? "healthy" : "—");
            const toggle = cells[6].children[1] as HTMLButtonElement;
            const verb = s.state === "running" ? "stop" : "start";
            toggle.dataset.verb = verb;
            toggle.textContent = verb === "stop" ? "Stop" : "Start";
            toggle.setAttribute("aria-label", `${verb === "stop" ? "Stop" : "Start"} ${s.name}`);
          },
        );
        await loadTail();
      } catch (e) {
        fill(table, errorBox(e, ctx));
        throw e;
      }
    };
    poll(load, 2000, () => ctx.shown("services"));
  },
};
