// Providers: API keys by name (never their values), and OAuth sign-in
// with the client's credentials, Authorize, the expiry, refresh.

import type { Json } from "../api";
import type { Ctx, Tab } from "../app";
import { errorBox } from "../errors";
import { ago, button, field, fill, h, toast, when } from "../dom";

const HINTS: Record<string, string> = {
  openrouter: "Models: openrouter/auto lets OpenRouter pick the model; openrouter/auto:free picks among free ones only.",
  gemini: "Gemini takes an API key, or Google sign-in (OAuth) with your own client id.",
  ollama: "Local models need no key.",
};

function oauthState(o: Json, flow: string | null): string {
  if (flow === "pending") return "Waiting for the browser…";
  if (flow && flow !== "done" && !o?.authorized) return `Sign-in failed: ${flow}`;
  if (!o) return "Not configured";
  if (!o.authorized) return "Configured, not signed in";
  const exp = o.expires_at ? o.expires_at * 1000 : null;
  return `Signed in${exp ? `, ${o.expired ? "expired" : "expires"} ${when(exp)} (${ago(exp)})` : ""}${o.refreshable ? "; refreshes itself" : ""}`;
}

export const providersTab: Tab = {
  id: "providers",
  title: "Providers",
  mount(panel: HTMLElement, ctx: Ctx) {
    const body = h("div", { "aria-busy": "true" });
    const vault = h("p", { class: "muted" });
    panel.append(h("p", {}, "Keys are stored in the vault by name; their values are never shown again."), vault, body);
    let waiting = 0;

    const render = (r: Json): void => {
      body.removeAttribute("aria-busy");
      vault.textContent = r.vault ? `Vault: ${r.vault}` : "No vault is set up: keys cannot be stored here (see `nexus vault status`).";
      let firstMissing = true;
      fill(
        body,
        ...r.providers.map((p: Json) => {
          const keyInput = h("input", { type: "password", autocomplete: "off", spellcheck: "false", id: `key-${p.name}`, placeholder: p.key_in_vault ? "•••••••• (stored)" : "" });
          if (!p.ready && firstMissing && p.credential.includes("missing")) {
            keyInput.id = "providers-first-missing";
            keyInput.dataset.provider = p.name;
            firstMissing = false;
          }
          const save = async (): Promise<void> => {
            const key = keyInput.value.trim();
            if (!key) return toast(`Type the ${p.name} key first`, "error");
            try {
              render(await ctx.api.put(`/providers/${p.name}/key`, { key }));
              toast(`Saved the ${p.name} key`);
            } catch (e) {
              toast(e instanceof Error ? e.message : String(e), "error");
            }
          };
          keyInput.addEventListener("keydown", (e) => e.key === "Enter" && void save());
          const o = p.oauth;
          const id = (k: string): string => `oauth-${p.name}${k ? `-${k}` : ""}`;
          const clientId = h("input", { id: id(""), value: "", autocomplete: "off" });
          const secret = h("input", { id: id("secret"), type: "password", autocomplete: "off" });
          const authUrl = h("input", { id: id("auth-url"), type: "url", autocomplete: "off" });
          const tokenUrl = h("input", { id: id("token-url"), type: "url", autocomplete: "off" });
          const scopes = h("input", { id: id("scopes"), autocomplete: "off" });
          const state = h("p", { class: "oauth-state", id: id("state") }, oauthState(o, p.oauth_flow));
          const oauthActions = h(
            "div",
            { class: "actions" },
            button("Save OAuth client", async () => {
              try {
                await ctx.api.put(`/providers/${p.name}/oauth`, {
                  client_id: clientId.value.trim(),
                  client_secret: secret.value || undefined,
                  auth_url: authUrl.value.trim() || undefined,
                  token_url: tokenUrl.value.trim() || undefined,
                  scopes: scopes.value.trim() || undefined,
                });
                toast(`Saved the ${p.name} OAuth client`);
                await load();
              } catch (e) {
                toast(e instanceof Error ? e.message : String(e), "error");
              }
            }),
            o
              ? button("Authorize", async () => {
                  try {
                    const r = await ctx.api.post(`/providers/${p.name}/oauth/authorize`);
                    window.open(r.url, "_blank", "noopener");
                    state.textContent = "Waiting for the browser…";
                    waiting = Date.now() + r.timeout_secs * 1000;
                    void follow();
                  } catch (e) {
                    toast(e instanceof Error ? e.message : String(e), "error");
                  }
                }, { id: id("authorize"), class: "primary" })
              : null,
            o?.authorized
              ? button("Refresh now", async () => {
                  try {
                    await ctx.api.post(`/providers/${p.name}/oauth/refresh`);
                    toast(`Refreshed the ${p.name} token`);
                    await load();
                  } catch (e) {
                    toast(e instanceof Error ? e.message : String(e), "error");
                  }
                }, { id: id("refresh") })
              : null,
            o?.authorized
              ? button("Sign out", async () => {
                  try {
                    await ctx.api.del(`/providers/${p.name}/oauth`);
                    toast(`Signed out of ${p.name}`);
                    await load();
                  } catch (e) {
                    toast(e instanceof Error ? e.message : String(e), "error");
                  }
                })
              : null,
          );
          return h(
            "article",
            { class: "card provider", "data-provider": p.name },
            h(
              "h3",
              {},
              p.name,
              " ",
              h("span", { class: `badge ${p.ready ? "ok" : "warn"}` }, p.ready ? "Ready" : "Needs a key"),
            ),
            h("p", { class: "muted" }, `Credential: ${p.credential} · ${p.base_url}`),
            HINTS[p.name] ? h("p", { class: "hint" }, HINTS[p.name]) : null,
            field(`API key for ${p.name}`, keyInput, { keywords: `${p.name} key secret token provider` }),
            h(
              "div",
              { class: "actions" },
              button("Save key", save, { id: `save-key-${p.name}`, class: "primary" }),
              p.key_in_vault
                ? button("Remove key", async () => {
                    try {
                      render(await ctx.api.del(`/providers/${p.name}/key`));
                      toast(`Removed the ${p.name} key`);
                    } catch (e) {
                      toast(e instanceof Error ? e.message : String(e), "error");
                    }
                  })
                : null,
            ),
            h(
              "details",
              { open: o ? true : undefined },
              h("summary", {}, `OAuth sign-in for ${p.name}`),
              state,
              field(`OAuth client id for ${p.name}`, clientId, { keywords: "oauth client id google sign-in" }),
              field(`OAuth client secret for ${p.name}`, secret, { keywords: "oauth secret", hint: "Optional: public clients use PKCE alone." }),
              field(`Authorization URL for ${p.name}`, authUrl, { keywords: "oauth endpoint", hint: "Only for providers without a built-in profile." }),
              field(`Token URL for ${p.name}`, tokenUrl, { keywords: "oauth endpoint" }),
              field(`Scopes for ${p.name}`, scopes, { keywords: "oauth scopes" }),
              oauthActions,
            ),
          );
        }),
      );
    };

    const load = async (): Promise<void> => {
      try {
        render(await ctx.api.get("/providers"));
      } catch (e) {
        fill(body, errorBox(e, ctx));
      }
    };
    /** While a sign-in waits for the browser, the state every second. */
    const follow = async (): Promise<void> => {
      while (Date.now() < waiting) {
        await new Promise((r) => window.setTimeout(r, 1000));
        const r = await ctx.api.get("/providers").catch(() => null);
        if (!r) continue;
        const pending = r.providers.some((p: Json) => p.oauth_flow === "pending");
        if (!pending) {
          waiting = 0;
          render(r);
          const done = r.providers.find((p: Json) => p.oauth_flow === "done" && p.oauth?.authorized);
          if (done) toast(`Signed in to ${done.name}`);
          return;
        }
      }
    };
    void load();
  },
};
