// The UI through `nexus desktop --ssh`: the status bar says SSH and the
// round trip, and a tab loads from the remote daemon. NEXUS_E2E: {url, shots}.
import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(process.env.NEXUS_E2E ?? "{}");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await page.goto(cfg.url);
  await page.waitForSelector("#connection.up", { timeout: 20_000 });
  const status = await page.textContent("#connection");
  assert.match(status, /^Connected \(SSH, \d+ ms\)$/);
  await page.click("#tab-services");
  await page.waitForSelector('[data-service="remote-ticker"]', { timeout: 20_000 });
  await page.screenshot({ path: join(cfg.shots, "ssh.png") });
  console.log(`PASS ${status}`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
