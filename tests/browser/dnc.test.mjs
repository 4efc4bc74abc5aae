// The compliance view of the national Do-Not-Call registry in a real browser: nothing loaded,
// then a registry imported by the CLI appears with its size; agents may not see the page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Server, launchBrowser, setUpThroughPages, withScreenshot } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await Server.start();
  browser = await launchBrowser(server);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const PASSWORD = "the registry keeps the quiet numbers";

function setUp(page, username, role) {
  return setUpThroughPages(server, page, username, role, PASSWORD);
}

test("compliance sees the registry in force, or that none is loaded; agents cannot", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("dnc-page", page, server, async () => {
    await setUp(page, "cora", "compliance");
    await page.click('a[href="/dnc"]');
    await page.waitForSelector('[data-testid="missing"]');

    const file = join(server.dir, "registry.txt");
    writeFileSync(file, "2025550123\n+13035550100\n303,5550101\n");
    server.cli("dnc", "import", file);
    let numbers = "";
    for (let i = 0; i < 40 && numbers === ""; i++) {
      await page.goto(`${server.url}/dnc`);
      numbers = (await page.locator('[data-testid="numbers"]').textContent().catch(() => "")) || "";
      if (numbers === "") await page.waitForTimeout(250);
    }
    assert.equal(numbers.trim(), "3");
    assert.equal(await page.locator('[data-testid="stale"]').count(), 0, "a fresh registry is not stale");
  });
  await context.close();

  const agentContext = await browser.newContext();
  const agentPage = await agentContext.newPage();
  await withScreenshot("dnc-denied", agentPage, server, async () => {
    await setUp(agentPage, "alex", "agent");
    const resp = await agentPage.goto(`${server.url}/dnc`);
    assert.equal(resp.status(), 403);
  });
  await agentContext.close();
});
