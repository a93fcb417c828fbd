// Extensions: what is installed, its permissions and state, and the
// questions waiting on an answer (with their countdown).

import type { Json } from "../api";
import type { Ctx, Tab } from "../app";
import { answer, open, secondsLeft } from "../approvals";
import { errorBox } from "../errors";
import { button, fill, h } from "../dom";
import { poll } from "../poll";

export const extensionsTab: Tab = {
  id: "extensions",
  title: "Extensions",
  mount(panel: HTMLElement, ctx: Ctx) {
    const pending = h("ul", { id: "pending", class: "cards" });
    const installed = h("div", { id: "installed" });
    panel.append(h("h3", {}, "Waiting for your answer"), pending, h("h3", {}, "Installed"), installed);

    const renderPending = (list: Json[]): void => {
      if (!list.length) return fill(pending, h("li", { class: "muted" }, "Nothing is waiting."));
      fill(
        pending,
        ...list.map((q) => {
          const left = h("span", { class: "countdown", "data-countdown": q.n });
          const tick = (): void => {
            left.textContent = `${Math.ceil(secondsLeft(q))} s left`;
          };
          tick();
          const t = window.setInterval(() => (left.isConnected ? tick() : window.clearInterval(t)), 500);
          return h(
            "li",
            { class: "card", "data-question": q.n },
            h("strong", {}, `${q.extension}: ${q.capability}`),
            " ",
            left,
            h("p", {}, q.detail || "No reason given."),
            h(
              "div",
              { class: "actions" },
              button("Allow", () => answer(ctx, q, "allow"), { "aria-label": `Allow ${q.extension} ${q.capability}` }),
              button("Deny", () => answer(ctx, q, "deny"), { class: "danger", "aria-label": `Deny ${q.extension} ${q.capability}` }),
            ),
          );
        }),
      );
    };
    open.listeners.push(renderPending);
    renderPending(open.list);

    poll(async () => {
      try {
        const r = await ctx.api.get("/extensions");
        if (!r.extensions.length) {
          fill(installed, h("p", { class: "muted" }, "No extensions. `nexus ext install DIR` adds one."));
          return;
        }
        fill(
          installed,
          h(
            "table",
            {},
            h("caption", { class: "visually-hidden" }, "Installed extensions"),
            h("thead", {}, h("tr", {}, ...["Extension", "Version", "State", "Signed by", "Permissions"].map((c) => h("th", { scope: "col" }, c)))),
            h(
              "tbody",
              {},
              ...r.extensions.map((x: Json) =>
                h(
                  "tr",
                  { "data-extension": x.id },
                  h("td", {}, x.name ? `${x.name} (${x.id})` : x.id),
                  h("td", {}, x.version),
                  h("td", {}, x.enabled ? (x.pid ? `running (pid ${x.pid}, ${x.restarts ?? 0} restarts)` : "enabled") : `disabled${x.disabled_because ? `: ${x.disabled_because}` : ""}`),
                  h("td", {}, x.signed_by ?? "unsigned"),
                  h("td", {}, h("ul", { class: "chips" }, ...(x.permissions ?? []).map((p: string) => h("li", {}, p)))),
                ),
              ),
            ),
          ),
        );
      } catch (e) {
        fill(installed, errorBox(e, ctx));
        throw e;
      }
    }, 5000, () => ctx.shown("extensions"));
  },
};
