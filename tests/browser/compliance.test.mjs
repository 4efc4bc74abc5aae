// The compliance page in a real browser: a compliance officer sees the live report, opens a
// control to its evidence (plain <details>, no script), sees the pass/fail trend drawn by the
// server, records an access review and a breach through the forms; an agent is refused.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
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

const PASSWORD = "evidence is what the system can show";

test("a compliance officer reads the live report, opens a control's evidence and records an access review", async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await withScreenshot("compliance", page, server, async () => {
    // Setup needs no script either.
    await setUpThroughPages(server, page, "olga", "compliance", PASSWORD);
    await page.goto(`${server.url}/compliance`);
    const summary = await page.textContent('[data-testid="summary"]');
    assert.match(summary, /^\d+ pass, 0 fail, \d+ manual, \d+ not applicable$/, summary);
    const controls = page.locator("details.control");
    assert.ok((await controls.count()) >= 40, `${await controls.count()} controls`);

    // A control opens to its evidence.
    const mfa = page.locator('details[data-control="pci 8.4.2"]');
    assert.equal(await mfa.locator("dd").first().isVisible(), false, "closed at first");
    await mfa.locator("summary").click();
    await mfa.locator("dt", { hasText: "without_second_factor" }).waitFor();
    assert.equal(await mfa.getAttribute("class"), "control pass");

    // The trend has a bar for this run.
    assert.ok((await page.locator('[data-testid="trend"] rect').count()) >= 1);

    // Record an access review through the form.
    const today = new Date().toISOString().slice(0, 10);
    await page.selectOption('select[name="control"]', "access_review");
    await page.fill('input[name="performed_on"]', today);
    await page.fill('input[name="note"]', "every account and role reviewed with the team leads");
    await page.click('form[action="/compliance/manual"] button[type="submit"]');
    await page.waitForSelector(`text=Recorded access_review of ${today}.`);
    const row = page.locator('[data-testid="manual"] tr', { hasText: "access_review" });
    assert.match(await row.textContent(), new RegExp(today));
    const review = page.locator('details[data-control="pci 7.2.4"]');
    await review.locator("summary").click();
    assert.match(await review.textContent(), new RegExp(`last_performed_on\\s*${today}`));

    // A wrong date is refused with a message, and nothing is recorded.
    await page.selectOption('select[name="control"]', "restore_test");
    await page.fill('input[name="performed_on"]', "2999-01-01");
    await page.fill('input[name="note"]', "restored yesterday's backup");
    await page.click('form[action="/compliance/manual"] button[type="submit"]');
    await page.waitForSelector("text=in the future");
    assert.equal(await page.locator('[data-testid="manual"] tr', { hasText: "restore_test" }).count(), 0);

    // A breach through the form: its notice is due 72 hours after detection.
    await page.fill('form[action="/compliance/breaches"] input[name="summary"]', "a printed call list was left on a train");
    await page.fill('form[action="/compliance/breaches"] input[name="detected_at"]', new Date().toISOString().slice(0, 19) + "Z");
    await page.click('form[action="/compliance/breaches"] button[type="submit"]');
    await page.waitForSelector("text=Breach recorded; notify the authority by");
    assert.equal(await page.locator('[data-testid="breaches"] tbody tr').count(), 1);
  });
  await context.close();
});

test("an agent cannot open the compliance page", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("compliance-refused", page, server, async () => {
    await setUpThroughPages(server, page, "andy", "agent", PASSWORD);
    const r = await page.goto(`${server.url}/compliance`);
    assert.equal(r.status(), 403);
    assert.equal(await page.locator('a[href="/compliance"]').count(), 0, "no link in the navigation");
  });
  await context.close();
});
