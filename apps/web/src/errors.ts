// Errors with a way out: what failed, and the button that fixes it.

import { ApiError } from "./api";
import type { Ctx } from "./app";
import { button, h } from "./dom";

/** The actions that fix an error, by what it says. */
function actions(e: unknown, ctx: Ctx): HTMLButtonElement[] {
  const msg = e instanceof Error ? e.message.toLowerCase() : "";
  const out: HTMLButtonElement[] = [];
  if (e instanceof ApiError && (e.code === "auth" || msg.includes("no provider has") || msg.includes("key"))) {
    out.push(button("Add API key", () => ctx.go("providers", "providers-first-missing")));
  }
  if (msg.includes("google") || msg.includes("gemini") || msg.includes("oauth")) {
    out.push(button("Configure Google", () => ctx.go("providers", "oauth-gemini")));
  }
  if (msg.includes("nexusd is not running") || msg.includes("does not answer")) {
    out.push(button("Retry", () => location.reload()));
  }
  if (msg.includes("mesh")) {
    out.push(button("Open Mesh", () => ctx.go("mesh")));
  }
  return out;
}

/** An error box with its fixes. */
export function errorBox(e: unknown, ctx: Ctx): HTMLElement {
  const text = e instanceof Error ? e.message : String(e);
  return h("div", { class: "error-box", role: "alert" }, h("p", {}, text), h("div", { class: "actions" }, ...actions(e, ctx)));
}
