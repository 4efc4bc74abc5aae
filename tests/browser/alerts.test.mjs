// Monitoring in a real browser: a supervisor's alert page receives an alert live (server-sent
// events) while failed sign-ins hit an account from elsewhere, and acknowledges it; a compliance
// officer browses the audit log and sees each entry's inclusion proof verified.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { DESKTOP, PHONE, assertAccessible, assertNoHorizontalOverflow, saveScreenshot } from "./checks.mjs";
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

const PASSWORD = "lighthouse keepers count the waves";

/** A JSON POST to the server from a chosen loopback address, checking its certificate. */
function post(path, body, localAddress) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = https.request(
      {
        host: "localhost",
        port: server.port,
        path,
        method: "POST",
        ca: server.certPem(),
        localAddress,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
      },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

function setUp(page, username, role) {
  return setUpThroughPages(server, page, username, role, PASSWORD);
}

test("a supervisor sees a burst of failed sign-ins appear live and acknowledges it", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("live-alert", page, server, async () => {
    await setUp(page, "sam", "supervisor");
    await page.goto(`${server.url}/alerts`);
    await page.waitForSelector('[data-testid="live-status"]:has-text("live")');
    // Creating and setting up a supervisor raises alerts of its own; none is about failed sign-ins.
    assert.equal(await page.locator('[data-testid="alert-row"]', { hasText: "failed_sign_ins" }).count(), 0);

    // Five wrong passwords for sam, each from another address (so no address throttle applies).
    for (let i = 0; i < 5; i++) {
      const r = await post("/api/v1/auth/login", { username: "sam", password: "not the password at all" }, `127.0.0.${20 + i}`);
      assert.equal(r.status, 401, r.text);
    }

    // The alert arrives without a reload.
    const row = page.locator('[data-testid="alert-row"]', { hasText: "failed_sign_ins" });
    await row.waitFor({ timeout: 20000 });
    assert.match(await row.textContent(), /5 failed sign-ins or second factors/);
    assert.doesNotMatch(await row.textContent(), /user:[0-9a-f]{8}-/, "a live alert names staff too");
    assert.match(await row.textContent(), /open/);

    await row.locator('input[name="comment"]').fill("checked with sam: typo storm from the training room");
    await row.locator('button[value="acknowledged"]').click();
    await page.waitForSelector('[data-testid="notice"]');
    const updated = page.locator('[data-testid="alert-row"]', { hasText: "failed_sign_ins" });
    assert.match(await updated.locator(".status").textContent(), /acknowledged/);

    // People, not ids: every alert names staff by username; the page passes axe-core and fits
    // both screen sizes.
    await page.goto(`${server.url}/alerts`);
    const table = (await page.textContent('[data-testid="alerts"]')) || "";
    assert.doesNotMatch(table, /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-/, "no account id on the alerts page");
    assert.match(table, /sam/);
    await assertAccessible(page, "alerts");
    await page.setViewportSize(DESKTOP);
    await saveScreenshot(page, "alerts-1366x768");
    await page.setViewportSize(PHONE);
    await assertNoHorizontalOverflow(page, "alerts on a phone");
    await saveScreenshot(page, "alerts-390x844");
  });
  await context.close();
});

test("a compliance officer browses the audit log with verified inclusion proofs, and an agent cannot", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("audit-browser", page, server, async () => {
    await setUp(page, "cora", "compliance");
    // Checkpoints are signed every second; wait until the latest entries are covered.
    let proof = "";
    for (let i = 0; i < 20 && !proof.includes("✓"); i++) {
      await page.goto(`${server.url}/audit?action=auth.setup`);
      proof = (await page.locator('[data-testid="proof"]').first().textContent()) || "";
      if (!proof.includes("✓")) await page.waitForTimeout(500);
    }
    assert.match(proof, /✓ included in checkpoint \d+/);
    const rows = await page.locator('[data-testid="audit-row"]').allTextContents();
    assert.ok(rows.length >= 1);
    assert.ok(rows.every((r) => r.includes("auth.setup")), "the filter applies");
    assert.match(await page.textContent('[data-testid="verifier-key"]'), /^localhost\/callguard-audit\+[0-9a-f]{8}\+/);

    // The actor filter takes a username, and actors read as usernames.
    await page.goto(`${server.url}/audit?actor=cora`);
    const actors = await page.locator('[data-testid="audit-row"] td:nth-child(3)').allTextContents();
    assert.ok(actors.length >= 1, "cora's own entries");
    assert.ok(actors.every((a) => a.trim() === "cora"), actors.join(" | "));
    await assertAccessible(page, "audit log");
  });
  await context.close();

  const agentContext = await browser.newContext();
  const agentPage = await agentContext.newPage();
  await withScreenshot("audit-denied", agentPage, server, async () => {
    await setUp(agentPage, "alex", "agent");
    const resp = await agentPage.goto(`${server.url}/audit`);
    assert.equal(resp.status(), 403);
    const alerts = await agentPage.goto(`${server.url}/alerts`);
    assert.equal(alerts.status(), 403);
  });
  await agentContext.close();
});
