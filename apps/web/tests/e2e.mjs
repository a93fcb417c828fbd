// The desktop UI end to end, as a user clicks it, in headless Chromium
// (Debian's, through playwright-core). Run by crates/nexus-cli/tests/desktop.rs,
// which starts the daemons, the broker, the stand-in provider and the OIDC
// server, and passes where they are in NEXUS_E2E (JSON):
//   {a, b: session URLs of two daemons in one mesh ("owner" and "bob"),
//    issuer, shots (a directory), nexus (the binary), env_a (alice's env),
//    bench_runs}
// Every step asserts what the user would see; a failure exits non-zero.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.env.NEXUS_E2E ?? "{}");
const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const TABS = ["providers", "hierarchy", "mesh", "extensions", "services", "logs", "heartbeat"];
const T = 20_000;
mkdirSync(cfg.shots, { recursive: true });

const step = (what) => console.log(`--- ${what}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
});

/** A page in a fresh context, with every console error and CSP report kept. */
async function open(url, opts = {}) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 }, ...opts });
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (m) => m.type() === "error" && page.errors.push(m.text()));
  page.on("pageerror", (e) => page.errors.push(String(e)));
  await page.goto(url);
  return page;
}

async function tab(page, id) {
  await page.click(`#tab-${id}`);
  await page.waitForSelector(`#panel-${id}:not([hidden])`);
}

async function shot(page, name) {
  await page.screenshot({ path: join(cfg.shots, `${name}.png`), fullPage: true });
}

async function toast(page, text) {
  await page.locator(".toast", { hasText: text }).first().waitFor({ timeout: T });
}

/** Runs `nexus ARGS` as alice; resolves {code, stdout, stderr}. */
function nexus(args) {
  return new Promise((resolve) => {
    const c = spawn(cfg.nexus, args, { env: cfg.env_a });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d) => (stdout += d));
    c.stderr.on("data", (d) => (stderr += d));
    c.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Serious or critical accessibility violations on the page, per axe-core. */
async function axe(page) {
  await page.evaluate(AXE);
  const r = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const res = await axe.run(document, { resultTypes: ["violations"] });
    return res.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  });
  return r;
}

try {
  // ---------------------------------------------------------------- sign-in
  step("a session key in the fragment signs in, and leaves the address bar");
  const a = await open(cfg.a);
  await a.waitForSelector("#connection.up", { timeout: T });
  assert.match(await a.textContent("#connection"), /^Connected \(local, \d+ ms\)$/);
  assert.equal(new URL(a.url()).hash.includes("key="), false, "the key left the address bar");
  const noKey = await open(new URL(cfg.a).origin + "/");
  await noKey.waitForSelector("#session-key");
  const denied = await noKey.evaluate(async () => (await fetch("/api/v1/providers")).status);
  assert.equal(denied, 401, "the API needs the key");
  await noKey.context().close();

  // -------------------------------------------------------------- providers
  step("Providers: a key is set by name, never shown back");
  await tab(a, "providers");
  await a.waitForSelector('[data-provider="openai"]');
  assert.match(await a.textContent('[data-provider="openai"] .badge'), /Needs a key/);
  await a.fill("#key-openai, #providers-first-missing[data-provider=openai]", "sk-typed-in-the-ui");
  await a.click("#save-key-openai");
  await toast(a, "Saved the openai key");
  await a.locator('[data-provider="openai"] .badge', { hasText: "Ready" }).waitFor({ timeout: T });
  assert.equal((await a.content()).includes("sk-typed-in-the-ui"), false, "the key is not in the page");
  const reply = await a.evaluate(async (key) => {
    const r = await fetch("/api/v1/chat", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify({ prompt: "ping", model: "openai/gpt-4o-mini" }) });
    return r.json();
  }, sessionKey(cfg.a));
  assert.equal(reply.text, "echo: ping", JSON.stringify(reply));

  step("Providers: OAuth with set credentials, Authorize, expiry, refresh");
  await a.locator('[data-provider="openai"] summary').click();
  await a.fill("#oauth-openai", "nexus-test");
  await a.fill("#oauth-openai-auth-url", `${cfg.issuer}/auth`);
  await a.fill("#oauth-openai-token-url", `${cfg.issuer}/token`);
  await a.fill("#oauth-openai-scopes", "openid offline_access api");
  await a.locator('[data-provider="openai"] button', { hasText: "Save OAuth client" }).click();
  await toast(a, "Saved the openai OAuth client");
  await a.waitForSelector("#oauth-openai-authorize");
  const popup = a.context().waitForEvent("page");
  await a.click("#oauth-openai-authorize");
  const idp = await popup;
  await idp.waitForURL(/\/callback\//, { timeout: T });
  assert.match(await idp.textContent("body"), /signed in|close this/i);
  await a.locator("#oauth-openai-state", { hasText: "Signed in" }).waitFor({ timeout: T });
  assert.match(await a.textContent("#oauth-openai-state"), /expires .*\(in \d+/);
  await a.click("#oauth-openai-refresh");
  await toast(a, "Refreshed the openai token");
  await shot(a, "providers");

  // -------------------------------------------------------------- hierarchy
  step("Model Hierarchy: apply a preset, edit a tier, the policy, stats");
  await tab(a, "hierarchy");
  await a.waitForSelector("#preset");
  await a.selectOption("#preset", "budget");
  await a.click("#apply-preset");
  await toast(a, "Applied the budget preset");
  await a.locator("#preset-now", { hasText: "In use: budget" }).waitFor();
  await a.fill("#tier-coding-1", "openai/gpt-4.1");
  await a.click("#save-coding");
  await toast(a, "Saved coding");
  await a.locator("#preset-now", { hasText: "In use: custom" }).waitFor();
  assert.equal(await a.inputValue("#tier-coding-1"), "openai/gpt-4.1");
  await a.fill("#policy-daily-budget", "5");
  await a.click("#save-policy");
  await toast(a, "Saved the policy");
  const asked = await a.evaluate(async (key) => {
    const r = await fetch("/api/v1/ask", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify({ prompt: "write a function that adds two numbers" }) });
    return r.json();
  }, sessionKey(cfg.a));
  assert.ok(asked.text, JSON.stringify(asked));
  await a.selectOption("#stats-days", "1");
  await a.locator("#stats-summary", { hasText: "1 request" }).waitFor({ timeout: T });
  assert.equal(await a.locator("svg.chart rect.bar").count(), 1, "one day in the chart");
  await a.reload();
  await tab(a, "hierarchy");
  await a.waitForSelector("#policy-daily-budget");
  assert.equal(await a.inputValue("#policy-daily-budget"), "5", "the budget was saved");
  assert.equal(await a.inputValue("#tier-coding-1"), "openai/gpt-4.1", "the tier was saved");
  await shot(a, "hierarchy");

  // ------------------------------------------------------------------- mesh
  step("Mesh: a message in a second session, the unread count live, mentions, DMs, presence");
  const b = await open(cfg.b);
  await b.waitForSelector("#connection.up", { timeout: T });
  await tab(a, "mesh");
  await tab(b, "mesh");
  await a.click('[data-room="topic:general"]');
  await a.waitForSelector("#room-title:text('#general')");
  await a.locator("#members li.online", { hasText: "bob" }).waitFor({ timeout: T });
  await a.fill("#compose", "hello @bob, from the desktop");
  await a.click("#send");
  await a.locator("#messages li", { hasText: "hello @bob, from the desktop" }).waitFor({ timeout: T });
  // Bob is not in #general: the count goes up live, with the mention.
  await b.locator('[data-unread="topic:general"]', { hasText: "1" }).waitFor({ timeout: T });
  await b.locator('[data-room="topic:general"] .badge.mention').waitFor();
  await a.fill("#compose", "and a second one");
  await a.click("#send");
  await b.locator('[data-unread="topic:general"]', { hasText: "2" }).waitFor({ timeout: T });
  await shot(b, "mesh-unread");
  await b.click('[data-room="topic:general"]');
  await b.locator("#messages li.mention", { hasText: "hello @bob" }).waitFor({ timeout: T });
  assert.equal(await b.locator('[data-unread="topic:general"]').count(), 0, "read once opened");
  await b.fill("#compose", "hi owner, bob here");
  await b.press("#compose", "Enter");
  await a.locator("#messages li", { hasText: "hi owner, bob here" }).waitFor({ timeout: T });
  await b.locator("#members li", { hasText: "owner" }).getByRole("button", { name: "Message owner" }).click();
  await b.fill("#compose", "a direct word");
  await b.click("#send");
  await a.locator('[data-unread="dm:bob"]', { hasText: "1" }).waitFor({ timeout: T });
  await a.click('[data-room="dm:bob"]');
  await a.locator("#messages li", { hasText: "a direct word" }).waitFor();
  await shot(a, "mesh");
  // Read stays read: after a reload, nothing is unread any more.
  await a.waitForTimeout(500);
  await a.reload();
  await tab(a, "mesh");
  await a.waitForSelector('[data-room="topic:general"]', { timeout: T });
  await a.waitForTimeout(1500);
  assert.equal(await a.locator("[data-unread]").count(), 0, "what was read is not unread again");

  // ------------------------------------------------------------- extensions
  step("Extensions: approve, deny, and one left to time out");
  await tab(a, "extensions");
  await a.locator('[data-extension="notes"]').waitFor({ timeout: T });
  assert.match(await a.textContent('[data-extension="notes"]'), /clipboard:read/);
  let call = nexus(["ext", "call", "notes", "clipboard"]);
  await a.waitForSelector("#approval:not([hidden])", { timeout: T });
  assert.match(await a.textContent("#approval-title"), /notes asks for clipboard:read/);
  assert.match(await a.textContent("#approval-countdown"), /Denied automatically in \d+ s/);
  await shot(a, "extensions-approval");
  await a.click("#approval-allow");
  let r = await call;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { granted: true });
  await a.waitForSelector("#approval", { state: "hidden" });

  call = nexus(["ext", "call", "notes", "clipboard"]);
  await a.waitForSelector("#approval:not([hidden])", { timeout: T });
  await a.click("#approval-deny");
  await a.waitForSelector("#approval", { state: "hidden" });
  r = await call;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /denied/);

  call = nexus(["ext", "call", "notes", "clipboard"]);
  await a.waitForSelector("#approval:not([hidden])", { timeout: T });
  const first = Number((await a.textContent("#approval-countdown")).match(/(\d+) s/)[1]);
  await a.waitForTimeout(2100);
  const later = Number((await a.textContent("#approval-countdown")).match(/(\d+) s/)?.[1] ?? 0);
  assert.ok(later < first, `the countdown runs (${first} then ${later})`);
  r = await call;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /not approved within/);
  await a.waitForSelector("#approval", { state: "hidden", timeout: T });
  await shot(a, "extensions");

  // --------------------------------------------------------------- services
  step("Services: restart one, and read its log tail");
  await tab(a, "services");
  await a.waitForSelector('[data-service="ticker"]', { timeout: T });
  const restarts = Number(await a.textContent('[data-restarts="ticker"]'));
  const pidBefore = (await a.locator('[data-service="ticker"] td').nth(2).textContent()).trim();
  await a.getByRole("button", { name: "Restart ticker" }).click();
  await toast(a, "Restarted ticker");
  await a.waitForFunction(
    (pid) => {
      const cells = document.querySelectorAll('[data-service="ticker"] td');
      return cells[2] && cells[2].textContent.trim() !== pid && cells[1].textContent === "running";
    },
    pidBefore,
    { timeout: T },
  );
  await a.getByRole("button", { name: "Show the log of ticker" }).click();
  await a.locator("#service-tail", { hasText: "tick" }).waitFor({ timeout: T });
  await shot(a, "services");
  assert.ok(restarts >= 0);

  // ------------------------------------------------------------------- logs
  step("Logs: filter by source, level and text, export as JSON, clear");
  await tab(a, "logs");
  await a.locator("#log-source option", { hasText: "ticker" }).waitFor({ state: "attached", timeout: T });
  await a.selectOption("#log-source", "ticker");
  await a.selectOption("#log-level", "info");
  await a.fill("#log-grep", "tick");
  await a.waitForFunction(() => {
    const rows = [...document.querySelectorAll("#log-rows tr")];
    return rows.length > 0 && rows.every((r) => r.children[2].textContent === "ticker" && r.children[3].textContent.includes("tick"));
  }, null, { timeout: T });
  const download = a.waitForEvent("download");
  await a.click("#export-logs");
  const file = join(cfg.shots, "logs-export.json");
  await (await download).saveAs(file);
  const exported = JSON.parse(readFileSync(file, "utf8"));
  assert.ok(exported.length > 0, "lines were exported");
  assert.ok(exported.every((l) => l.source === "ticker" && l.msg.includes("tick")), "only what the filter shows");
  await shot(a, "logs");
  await a.click("#clear-logs");
  await a.click("#confirm-clear");
  await toast(a, "Removed");

  // -------------------------------------------------------------- heartbeat
  step("Heartbeat: turn on with an interval, run now, see the results");
  await tab(a, "heartbeat");
  await a.waitForSelector("#hb-enabled");
  await a.check("#hb-enabled");
  await a.fill("#hb-interval", "15m");
  await a.click("#hb-save");
  await toast(a, "Heartbeat on");
  await a.locator("#hb-state", { hasText: "Next beat" }).waitFor();
  await a.click("#hb-run");
  await toast(a, "Heartbeat ran");
  await a.locator("#hb-results li", { hasText: "system_health" }).waitFor({ timeout: T });
  await shot(a, "heartbeat");

  // ----------------------------------------------------------------- search
  step("Search: every field of every tab, filtered as you type");
  await a.fill("#search", "budget");
  await a.waitForSelector("#policy-daily-budget", { state: "visible" });
  assert.equal(await a.isVisible("#key-openai"), false, "a key field does not match 'budget'");
  assert.match(await a.textContent("#search-note"), /\d+ settings? match/);
  await shot(a, "search");
  await a.fill("#search", "interval");
  await a.waitForSelector("#hb-interval", { state: "visible" });
  assert.equal(await a.isVisible("#policy-daily-budget"), false);
  await a.fill("#search", "api key openai");
  await a.waitForSelector("#key-openai", { state: "visible" });
  await a.press("#search", "Escape");
  const fields = await a.locator("[data-field]").count();
  const searchMs = await a.evaluate(() => performance.getEntriesByName("settings-search").map((e) => e.duration));

  // --------------------------------------------------------- accessibility
  step("Accessibility: axe-core finds nothing serious on any tab");
  const axed = await open(cfg.a_again ?? cfg.a, { bypassCSP: true });
  await axed.waitForSelector("#connection.up", { timeout: T });
  const problems = [];
  for (const t of TABS) {
    await tab(axed, t);
    await axed.waitForTimeout(300);
    for (const v of await axe(axed)) problems.push(`${t}: ${v}`);
  }
  assert.deepEqual(problems, [], problems.join("\n"));

  // -------------------------------------------------------------- timings
  step("Timings (measured, not asserted)");
  const paints = [];
  for (let i = 0; i < (cfg.bench_runs ?? 3); i++) {
    const p = await open(cfg.a_bench ?? cfg.a);
    await p.waitForFunction(() => performance.getEntriesByName("nexus-interactive").length > 0, null, { timeout: T });
    paints.push(
      await p.evaluate(() => ({
        fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime,
        tti: performance.getEntriesByName("nexus-interactive")[0]?.startTime,
      })),
    );
    await p.context().close();
  }
  const bench = { paints, search_ms: searchMs, fields };
  writeFileSync(join(cfg.shots, "bench.json"), JSON.stringify(bench, null, 2));
  console.log(`BENCH ${JSON.stringify(bench)}`);

  // ------------------------------------------------------------ each tab
  for (const t of TABS) {
    await tab(a, t);
    await a.waitForTimeout(200);
    await shot(a, `tab-${t}`);
  }
  const errors = [...a.errors, ...b.errors].filter((e) => !/Failed to load resource/.test(e));
  assert.deepEqual(errors, [], `no console errors (CSP included): ${errors.join("\n")}`);
  console.log("PASS desktop UI end to end");
} catch (e) {
  console.error(e);
  process.exitCode = 1;
  for (const [i, p] of browser.contexts().flatMap((c) => c.pages()).entries()) {
    await p.screenshot({ path: join(cfg.shots, `failure-${i}.png`), fullPage: true }).catch(() => undefined);
  }
} finally {
  await browser.close();
}

/** The session key of a `nexus desktop` URL. */
function sessionKey(url) {
  return new URLSearchParams(new URL(url).hash.slice(1)).get("key");
}
