// The runtime-approval dialog: an extension asks for a capability, the
// user allows or denies it before its time runs out (60 s by default;
// no answer is a deny). Also listed in the Extensions tab.

import type { Json } from "./api";
import type { Ctx } from "./app";
import { button, fill, h, toast } from "./dom";
import { poll } from "./poll";

/** The questions open now, shared with the Extensions tab. */
export const open: { list: Json[]; listeners: Array<(l: Json[]) => void> } = { list: [], listeners: [] };

/** Seconds left on question `q`. */
export function secondsLeft(q: Json): number {
  const window = Math.max(0, (q.expires_ms ?? 0) - (q.asked_ms ?? 0));
  return Math.max(0, Math.min(window, (q.expires_ms ?? 0) - Date.now()) / 1000);
}

/** Questions answered here: a poll racing the answer does not bring them back. */
const answered = new Set<number>();

export async function answer(ctx: Ctx, q: Json, a: string): Promise<void> {
  // Gone from view at once; the answer follows.
  answered.add(q.n);
  open.list = open.list.filter((x) => x.n !== q.n);
  for (const l of open.listeners) l(open.list);
  try {
    await ctx.api.post(`/approvals/${q.n}`, { answer: a });
    toast(`${a.startsWith("allow") ? "Allowed" : "Denied"} ${q.extension}: ${q.capability}`);
  } catch (e) {
    toast(e instanceof Error ? e.message : String(e), "error");
  }
}

export function approvals(ctx: Ctx): void {
  const dialog = h("div", {
    id: "approval",
    class: "dialog",
    role: "alertdialog",
    "aria-modal": "true",
    "aria-labelledby": "approval-title",
    "aria-describedby": "approval-detail",
    hidden: true,
  });
  const backdrop = h("div", { class: "backdrop", hidden: true });
  document.body.append(backdrop, dialog);
  let shown: number | null = null;
  let countdown = 0;

  const render = (): void => {
    const q = open.list[0];
    if (!q) {
      dialog.hidden = backdrop.hidden = true;
      shown = null;
      window.clearInterval(countdown);
      return;
    }
    if (shown === q.n) return;
    shown = q.n;
    const left = h("p", { id: "approval-countdown", class: "countdown" });
    const tick = (): void => {
      const s = Math.ceil(secondsLeft(q));
      left.textContent = s > 0 ? `Denied automatically in ${s} s` : "Timed out: denied";
    };
    tick();
    window.clearInterval(countdown);
    countdown = window.setInterval(tick, 250);
    const allow = button("Allow once", () => answer(ctx, q, "allow"), { id: "approval-allow", class: "primary" });
    fill(
      dialog,
      h("h2", { id: "approval-title" }, `${q.extension} asks for ${q.capability}`),
      h("p", { id: "approval-detail" }, q.detail || "No reason given."),
      open.list.length > 1 ? h("p", { class: "muted" }, `1 of ${open.list.length} waiting`) : null,
      left,
      h(
        "div",
        { class: "actions" },
        allow,
        button("Always allow", () => answer(ctx, q, "allow_always"), { id: "approval-always" }),
        button("Deny", () => answer(ctx, q, "deny"), { id: "approval-deny", class: "danger" }),
      ),
    );
    dialog.hidden = backdrop.hidden = false;
    allow.focus();
  };
  open.listeners.push(render);
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && open.list[0]) void answer(ctx, open.list[0], "deny");
  });

  poll(async () => {
    const r = await ctx.api.get("/approvals");
    const list: Json[] = (r.approvals ?? []).filter((q: Json) => !answered.has(q.n));
    const before = open.list.map((q) => q.n).join();
    open.list = list;
    if (list.map((q: Json) => q.n).join() !== before) {
      if (document.hidden && list.length && "Notification" in window && Notification.permission === "granted") {
        new Notification(`Nexus: ${list[0].extension} asks for ${list[0].capability}`);
      }
      for (const l of open.listeners) l(open.list);
    }
  }, 1000);
}
