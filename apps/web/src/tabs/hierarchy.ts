// Model Hierarchy: presets, each category's tiers (any model in any slot),
// the escalation policy and budgets, and stats with a chart.

import { ApiError, type Json } from "../api";
import type { Ctx, Tab } from "../app";
import { errorBox } from "../errors";
import { button, field, fill, h, svg, toast } from "../dom";

const SLOTS = 3;

function money(v: number | null | undefined): string {
  return v === null || v === undefined ? "" : String(v);
}

/** A bar chart of spend by day (oldest left). */
function chart(days: Json[]): SVGElement {
  const rows = [...days].reverse();
  const max = Math.max(0.000001, ...rows.map((d) => d.cost));
  const w = 28;
  const height = 120;
  return svg(
    "svg",
    { viewBox: `0 0 ${Math.max(1, rows.length) * w} ${height + 20}`, class: "chart", role: "img", "aria-label": `Spend by day: ${rows.map((d) => `${d.key} $${d.cost.toFixed(4)}`).join(", ") || "none yet"}` },
    ...rows.map((d, i) => {
      const bh = Math.max(1, (d.cost / max) * height);
      return svg(
        "g",
        {},
        svg("rect", { x: i * w + 4, y: height - bh, width: w - 8, height: bh, class: "bar" }, svg("title", {}, `${d.key}: $${d.cost.toFixed(4)}`)),
        svg("text", { x: i * w + w / 2, y: height + 14, "text-anchor": "middle", class: "axis" }, d.key.slice(5)),
      );
    }),
  );
}

export const hierarchyTab: Tab = {
  id: "hierarchy",
  title: "Model Hierarchy",
  mount(panel: HTMLElement, ctx: Ctx) {
    const presets = h("section", { "aria-labelledby": "h-presets" });
    const tiers = h("section", { "aria-labelledby": "h-tiers" });
    const policy = h("section", { "aria-labelledby": "h-policy" });
    const stats = h("section", { "aria-labelledby": "h-stats" });
    const models = h("datalist", { id: "model-list" });
    panel.append(models, presets, tiers, policy, stats);

    const render = (r: Json): void => {
      fill(models, ...r.models.map((m: Json) => h("option", { value: m.id }, m.ready ? "" : "(no key)")));
      const pick = h("select", { id: "preset" }, ...r.presets.map((p: Json) => h("option", { value: p.name, selected: p.name === r.preset ? true : undefined }, `${p.name}: ${p.description}`)));
      fill(
        presets,
        h("h3", { id: "h-presets" }, "Preset"),
        h("p", { class: "muted", id: "preset-now" }, r.preset ? `In use: ${r.preset}${r.saved ? "" : " (computed for the providers with keys; not saved yet)"}` : "No hierarchy yet: add a provider key first."),
        field("Preset", pick, { keywords: "preset hierarchy balanced budget quality" }),
        button("Apply preset", async () => {
          try {
            render(await ctx.api.post("/hierarchy/preset", { name: pick.value }));
            toast(`Applied the ${pick.value} preset`);
          } catch (e) {
            toast(e instanceof Error ? e.message : String(e), "error");
          }
        }, { id: "apply-preset", class: "primary" }),
      );
      fill(
        tiers,
        h("h3", { id: "h-tiers" }, "Tiers by category"),
        r.problem ? errorBox(new ApiError(400, "auth", r.problem), ctx) : null,
        h("p", { class: "muted" }, "Cheapest first; a request escalates to the next tier when an answer is refused or fails. Any model fits any slot."),
        ...Object.entries(r.categories as Record<string, Json[]>).map(([cat, list]) => {
          const inputs: HTMLInputElement[] = [];
          for (let i = 0; i < SLOTS; i++) {
            inputs.push(h("input", { id: `tier-${cat}-${i + 1}`, list: "model-list", value: list[i]?.model ?? "", autocomplete: "off", placeholder: i < list.length ? "" : "(empty)" }));
          }
          return h(
            "fieldset",
            { class: "category" },
            h("legend", {}, cat),
            ...inputs.map((inp, i) => field(`${cat} tier ${i + 1}`, inp, { keywords: `${cat} tier model hierarchy` })),
            button(`Save ${cat}`, async () => {
              const edits = inputs
                .map((inp, i) => ({ v: inp.value.trim(), i, was: list[i]?.model ?? "" }))
                .filter((x) => x.v !== x.was && (x.v || x.was))
                .map((x) => `tier${x.i + 1}=${x.v || "disabled"}`);
              if (!edits.length) return toast(`No change in ${cat}`);
              try {
                render(await ctx.api.put(`/hierarchy/categories/${cat}`, { edits }));
                toast(`Saved ${cat}`);
              } catch (e) {
                toast(e instanceof Error ? e.message : String(e), "error");
              }
            }, { id: `save-${cat}` }),
          );
        }),
      );
      const p = r.policy;
      const check = (id: string, v: boolean): HTMLInputElement => h("input", { id, type: "checkbox", checked: v });
      const auto = check("policy-auto", p.enabled);
      const maxEsc = h("input", { id: "policy-max-escalations", type: "number", min: "0", max: "10", value: p.max_escalations });
      const onError = check("policy-on-error", p.escalate_on_error);
      const onRefusal = check("policy-on-refusal", p.escalate_on_refusal);
      const onInvalid = check("policy-on-invalid", p.escalate_on_invalid_output);
      const daily = h("input", { id: "policy-daily-budget", inputmode: "decimal", value: money(p.daily_budget), placeholder: "none" });
      const perReq = h("input", { id: "policy-max-cost", inputmode: "decimal", value: money(p.max_cost_per_request), placeholder: "none" });
      fill(
        policy,
        h("h3", { id: "h-policy" }, "Escalation policy and budgets"),
        field("Escalate automatically", auto, { keywords: "auto escalation policy" }),
        field("Most escalations per request", maxEsc, { keywords: "max escalations policy" }),
        field("Escalate on an error", onError, { keywords: "policy error" }),
        field("Escalate on a refusal", onRefusal, { keywords: "policy refusal" }),
        field("Escalate on invalid output", onInvalid, { keywords: "policy invalid output" }),
        field("Daily budget (USD)", daily, { keywords: "budget money cost daily spend", hint: "Empty: no limit." }),
        field("Most cost per request (USD)", perReq, { keywords: "budget money cost request", hint: "Empty: no limit." }),
        button("Save policy", async () => {
          try {
            render(
              await ctx.api.put("/hierarchy/policy", {
                assignments: [
                  `auto-escalation=${auto.checked}`,
                  `max-escalations=${maxEsc.value || 0}`,
                  `escalate-on-error=${onError.checked}`,
                  `escalate-on-refusal=${onRefusal.checked}`,
                  `escalate-on-invalid-output=${onInvalid.checked}`,
                  `daily-budget=${daily.value.trim() || "none"}`,
                  `max-cost-per-request=${perReq.value.trim() || "none"}`,
                ],
              }),
            );
            toast("Saved the policy");
          } catch (e) {
            toast(e instanceof Error ? e.message : String(e), "error");
          }
        }, { id: "save-policy", class: "primary" }),
      );
    };

    const days = h("select", { id: "stats-days" }, ...[1, 7, 30].map((d) => h("option", { value: d, selected: d === 7 ? true : undefined }, `${d} day${d > 1 ? "s" : ""}`)));
    const statsBody = h("div", { id: "stats-body" });
    fill(stats, h("h3", { id: "h-stats" }, "Stats"), field("Period", days, { keywords: "stats period days" }), statsBody);
    const loadStats = async (): Promise<void> => {
      try {
        const s = await ctx.api.get(`/hierarchy/stats?days=${days.value}`);
        const cats: Json[] = s.escalation.categories;
        const requests = cats.reduce((a, c) => a + c.requests, 0);
        const escalated = cats.reduce((a, c) => a + c.escalated, 0);
        fill(
          statsBody,
          h(
            "p",
            { id: "stats-summary" },
            `Spent $${s.spend.total.toFixed(4)} in ${s.days} day${s.days > 1 ? "s" : ""} (today $${s.spend.today.toFixed(4)}); ${requests} request${requests === 1 ? "" : "s"}, escalation rate ${requests ? ((escalated / requests) * 100).toFixed(1) : "0.0"}%.`,
          ),
          chart(s.spend.by_day),
          h(
            "table",
            {},
            h("caption", {}, "By category"),
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Category"), h("th", { scope: "col" }, "Requests"), h("th", { scope: "col" }, "Escalated"), h("th", { scope: "col" }, "Escalation rate"), h("th", { scope: "col" }, "Failed"))),
            h("tbody", {}, ...cats.map((c) => h("tr", {}, h("td", {}, c.category), h("td", {}, c.requests), h("td", {}, c.escalated), h("td", {}, `${(c.escalation_rate * 100).toFixed(1)}%`), h("td", {}, c.failed)))),
          ),
        );
      } catch (e) {
        fill(statsBody, errorBox(e, ctx));
      }
    };
    days.addEventListener("change", () => void loadStats());

    const load = async (): Promise<void> => {
      try {
        render(await ctx.api.get("/hierarchy"));
      } catch (e) {
        fill(tiers, errorBox(e, ctx));
      }
      await loadStats();
    };
    void load();
  },
};
