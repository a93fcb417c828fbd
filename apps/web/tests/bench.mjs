// First paint, time to interactive and settings search of the desktop UI in
// headless Chromium, side by side with a peer serving the same build.
//   node tests/bench.mjs NAME=URL [NAME=URL ...]   (runs: BENCH_RUNS, 30)
// A URL is a `nexus desktop --print-url` one (with its #key=...), or any
// server of crates/nexus-gateway/ui. Runs alternate between the servers.
// Prints a Markdown table for docs/PERFORMANCE.md.
import { chromium } from "playwright-core";

const targets = process.argv.slice(2).map((a) => {
  const i = a.indexOf("=");
  return { name: a.slice(0, i), url: a.slice(i + 1), fcp: [], tti: [], search: [] };
});
const runs = Number(process.env.BENCH_RUNS ?? 30);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
});
const QUERIES = ["b", "bu", "budget", "key", "api key", "tier", "interval", "oauth client", "log", "zzz"];
for (let i = 0; i < runs; i++) {
  for (const t of targets) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(t.url);
    await page.waitForFunction(() => performance.getEntriesByName("nexus-interactive").length > 0, null, { timeout: 30_000 });
    const m = await page.evaluate(() => ({
      fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
      mark: performance.getEntriesByName("nexus-interactive")[0]?.startTime ?? NaN,
    }));
    t.fcp.push(m.fcp);
    t.tti.push(Math.max(m.fcp, m.mark));
    if (i === 0 || i % 5 === 0) {
      // The search over every field of every tab, as typed.
      const fields = await page.locator("[data-field]").count();
      for (const q of QUERIES) await page.fill("#search", q);
      const d = await page.evaluate(() => performance.getEntriesByName("settings-search").map((e) => e.duration));
      t.search.push(...d);
      t.fields = fields;
    }
    await context.close();
  }
}
await browser.close();
const q = (xs, p) => {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};
const f = (x) => (Number.isNaN(x) ? "—" : x.toFixed(1));
console.log(`| server | runs | first paint p50 / p95 (ms) | interactive p50 / p95 (ms) | search over ${targets[0]?.fields ?? "?"} fields p50 / max (ms) |`);
console.log("|---|---|---|---|---|");
for (const t of targets) {
  console.log(`| ${t.name} | ${t.fcp.length} | ${f(q(t.fcp, 0.5))} / ${f(q(t.fcp, 0.95))} | ${f(q(t.tti, 0.5))} / ${f(q(t.tti, 0.95))} | ${f(q(t.search, 0.5))} / ${f(q(t.search, 1))} |`);
}
