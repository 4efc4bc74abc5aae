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

/** Calls the JSON API from the page with its session cookie and anti-forgery token. */
function apiFromPage(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const token = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch(path, {
        method,
        headers: { "content-type": "application/json", "x-csrf-token": token },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, json: await r.json().catch(() => null) };
    },
    { method, path, body },
  );
}

test("compliance adds an opt-out and revokes a consent on the page, numbers masked; supervisors cannot revoke", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  let consentId;
  await withScreenshot("dnc-lists", page, server, async () => {
    await setUp(page, "cleo", "compliance");
    await page.goto(`${server.url}/dnc`);
    await page.waitForSelector('[data-testid="no-opt-outs"]');
    await page.waitForSelector('[data-testid="no-consents"]');

    // An opt-out through the form: listed at once, masked, with its source and who added it.
    await page.fill('[data-testid="opt-out-number"]', "(415) 555-0142");
    await page.selectOption('[data-testid="opt-out-source"]', "complaint");
    await page.click('[data-testid="opt-out-submit"]');
    await page.waitForSelector('[data-testid="notice"]');
    const rows = page.locator('[data-testid="opt-out-row"]');
    assert.equal(await rows.count(), 1);
    const row = (await rows.first().textContent()).replace(/\s+/g, " ");
    assert.match(row, /\+1 \* \*\*\* \*\*\* 142/);
    assert.match(row, /complaint/);
    assert.match(row, /cleo/);

    // A number that is not one is refused with a message that does not repeat it.
    await page.fill('[data-testid="opt-out-number"]', "555-PIZZA-77");
    await page.click('[data-testid="opt-out-submit"]');
    const error = await page.textContent('[data-testid="error"]');
    assert.match(error, /not a valid phone number/);
    assert.ok(!error.includes("PIZZA"));
    assert.equal(await page.locator('[data-testid="opt-out-row"]').count(), 1);

    // A consent recorded through the API shows up active, masked, its evidence nowhere.
    const made = await apiFromPage(page, "POST", "/api/v1/consents", {
      number: "+1 415 555 0143",
      purpose: "telemarketing",
      channel: "call",
      source: "web_form",
      evidence: "https://forms.example/consent/77",
    });
    assert.equal(made.status, 201, JSON.stringify(made.json));
    consentId = made.json.id;
    await page.goto(`${server.url}/dnc`);
    const consent = page.locator(`[data-testid="consent-row"][data-id="${consentId}"]`);
    assert.equal(await consent.getAttribute("data-active"), "true");
    assert.match(await consent.textContent(), /\+1 \* \*\*\* \*\*\* 143/);
    const html = await page.content();
    for (const clear of ["5550142", "555-0142", "5550143", "555 0143", "forms.example"]) {
      assert.ok(!html.includes(clear), `${clear} on the page`);
    }

    // Revoked from the page: inactive at once, with its time, and no second revoke button.
    await consent.locator('[data-testid="revoke"]').click();
    await page.waitForSelector('[data-testid="notice"]');
    const after = page.locator(`[data-testid="consent-row"][data-id="${consentId}"]`);
    assert.equal(await after.getAttribute("data-active"), "false");
    assert.notEqual((await after.locator(".revoked").textContent()).trim(), "");
    assert.equal(await after.locator('[data-testid="revoke"]').count(), 0);
  });
  await context.close();

  // A supervisor sees both lists and may add an opt-out, but revoking consent is not theirs.
  const supContext = await browser.newContext();
  const sup = await supContext.newPage();
  await withScreenshot("dnc-lists-supervisor", sup, server, async () => {
    await setUp(sup, "sam", "supervisor");
    await sup.goto(`${server.url}/dnc`);
    assert.equal(await sup.locator('[data-testid="opt-out-row"]').count(), 1);
    assert.equal(await sup.locator('[data-testid="consent-row"]').count(), 1);
    assert.equal(await sup.locator('[data-testid="revoke"]').count(), 0);
    const status = await sup.evaluate(async (id) => {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch(`/dnc/consents/${id}/revoke`, {
        method: "POST",
        body: new URLSearchParams({ csrf }),
      });
      return r.status;
    }, consentId);
    assert.equal(status, 403);
    // A form without the anti-forgery token changes nothing.
    const forged = await sup.evaluate(async () => {
      const r = await fetch("/dnc/internal", {
        method: "POST",
        body: new URLSearchParams({ number: "+14155550144", source: "agent", csrf: "x".repeat(43) }),
      });
      return r.status;
    });
    assert.equal(forged, 403);
    await sup.goto(`${server.url}/dnc`);
    assert.equal(await sup.locator('[data-testid="opt-out-row"]').count(), 1);
  });
  await supContext.close();
});
