// The agent's working day at 1366×768: a call goes from the desk to wrap-up with every key
// control inside the first viewport (no scrolling), the customer's earlier contacts name the
// agent by username, and the desk and the call screen pass axe-core and fit a 390×844 phone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Server, launchBrowser, setUpThroughPages, withScreenshot } from "./harness.mjs";
import { DESKTOP, PHONE, assertAccessible, assertInFirstViewport, assertNoHorizontalOverflow, saveScreenshot } from "./checks.mjs";

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

const PASSWORD = "a long shift on the quiet phone line";
const PESEL = "44051401359";
const PHONE_NUMBER = "+48601234567";

const text = async (page, testid) => ((await page.textContent(`[data-testid="${testid}"]`)) || "").trim();

async function register(page) {
  await page.goto(`${server.url}/desk`);
  const form = '[data-testid="register-form"]';
  await page.fill(`${form} input[name="full_name"]`, "Zdzisława Wiśniewska-Kowalczyk");
  await page.fill(`${form} input[name="phone"]`, PHONE_NUMBER);
  await page.fill(`${form} input[name="national_id"]`, PESEL);
  await page.fill(`${form} input[name="service"]`, "hosting-kowalczyk-pl");
  await page.click(`${form} button[type="submit"]`);
  await page.waitForSelector('[data-testid="created-id"]');
}

async function startCall(page, from) {
  await page.goto(`${server.url}/desk`);
  await page.fill('[data-testid="start-form"] input[name="from"]', from);
  await page.click('[data-testid="start-form"] button[type="submit"]');
  await page.waitForURL(/\/desk\/interactions\/[0-9a-f-]{36}$/);
}

const KEY_CONTROLS = [
  '[data-testid="caller"]',
  '[data-testid="level-badge"]',
  '[data-testid="timer"]',
  '[data-testid="end-form"] button',
  '[data-testid="verification"] h2',
  '[data-testid="operations"] h2',
  '[data-testid="wrap-up-form"] select',
  '[data-testid="wrap-up-form"] button',
];

test("an agent handles a call from the desk to wrap-up without scrolling at 1366×768", async () => {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  await withScreenshot("callscreen-desktop", page, server, async () => {
    await setUpThroughPages(server, page, "magda", "agent", PASSWORD);
    await register(page);
    // An earlier call, wrapped up, for the timeline.
    await startCall(page, PHONE_NUMBER);
    await page.selectOption('[data-testid="wrap-up-form"] select', "callback_needed");
    await page.click('[data-testid="wrap-up-form"] button');
    assert.match(await text(page, "disposition"), /callback needed/);

    await startCall(page, PHONE_NUMBER);
    for (const sel of [...KEY_CONTROLS, '[data-testid="verify-national-id"] input', '[data-testid="timeline-row"]']) {
      await assertInFirstViewport(page, sel);
    }
    assert.equal(await text(page, "caller"), "Z*** W***");
    assert.match(await text(page, "level-badge"), /Level 0 · not verified/);
    assert.equal(await page.evaluate(() => document.activeElement?.name), "value", "the next step has the focus");
    const row = await text(page, "timeline-row");
    assert.match(row, /magda/);
    assert.match(row, /callback needed/);
    assert.doesNotMatch(row, /[0-9a-f]{8}-[0-9a-f]{4}-/, "no UUID in the timeline");
    await page.waitForFunction(() => /^0:0[1-9]$/.test(document.querySelector('[data-testid="timer"]').textContent));
    await assertAccessible(page, "call screen, level 0");

    await page.fill('[data-testid="verify-national-id"] input[name="value"]', PESEL);
    await page.click('[data-testid="verify-national-id"] button');
    assert.equal(await text(page, "level"), "1");
    for (const sel of [...KEY_CONTROLS, '[data-testid="verify-portal-code"] input', '[data-testid="op-add_note"] textarea', '[data-testid="reveal-address"] button']) {
      await assertInFirstViewport(page, sel);
    }
    await page.fill('[data-testid="op-add_note"] textarea', "asked about the invoice of November");
    await page.click('[data-testid="op-add_note"] button');
    assert.match(await text(page, "notice"), /Note added/);
    // The same form sent twice (a double click, a resend after a lost answer) is one note.
    const twice = await page.evaluate(async () => {
      const form = document.querySelector('[data-testid="op-add_note"]');
      const body = new URLSearchParams(new FormData(form));
      body.set("text", "wants a call back");
      const send = async () => (await fetch(form.action, { method: "POST", body })).text();
      return [await send(), await send()];
    });
    assert.match(twice[0], /Note added\. The record below/);
    assert.match(twice[1], /already sent: the change was made once/);
    assert.match(twice[1], /2 so far/);
    await assertAccessible(page, "call screen, level 1");
    await assertNoHorizontalOverflow(page, "call screen at 1366");
    await saveScreenshot(page, "call-screen-1366x768");

    await page.selectOption('[data-testid="wrap-up-form"] select', "resolved");
    await assertInFirstViewport(page, '[data-testid="wrap-up-form"] button');
    await page.click('[data-testid="wrap-up-form"] button');
    assert.match(await text(page, "notice"), /Wrapped up as resolved/);
    assert.match(await text(page, "interaction-status"), /Ended/);
    await assertAccessible(page, "call screen, wrapped up");

    // Keyboard: d goes back to the desk from a wrapped-up call.
    await page.keyboard.press("d");
    await page.waitForURL(/\/desk$/);
  });
  await context.close();
});

test("the desk keeps my open call across a reload and finds a customer however the number is typed", async () => {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  await withScreenshot("desk-calls", page, server, async () => {
    await setUpThroughPages(server, page, "olek", "agent", PASSWORD);
    await startCall(page, PHONE_NUMBER);
    const callUrl = page.url();
    // A second tab (or a reload) of the desk lists the open call, which resumes where it was.
    const other = await context.newPage();
    await other.goto(`${server.url}/desk`);
    assert.equal(await other.locator('[data-testid="open-call"]').count(), 1);
    await other.click('[data-testid="open-call"]');
    assert.equal(other.url(), callUrl);
    await other.close();

    await page.goto(`${server.url}/desk`);
    assert.equal(await page.evaluate(() => document.activeElement?.name), "from", "the caller's number has the focus");
    assert.match(await text(page, "shortcuts"), /\/ search/);
    for (const q of ["601 234 567", "+48 601-234-567", "44051401359", "Hosting-Kowalczyk-PL"]) {
      await page.keyboard.press("Escape");
      await page.locator("body").click({ position: { x: 5, y: 300 } });
      await page.keyboard.press("/");
      assert.equal(await page.evaluate(() => document.activeElement?.name), "q", "/ focuses the search");
      await page.fill('[data-testid="search-form"] input[name="q"]', q);
      await page.click('[data-testid="search-form"] button');
      await page.waitForSelector('[data-testid="search-results"]');
      assert.match(await text(page, "search-results"), /Z\*\*\* W\*\*\*/, q);
    }
    // Nobody has this number: the registration form offers it.
    await page.fill('[data-testid="search-form"] input[name="q"]', "500 100 299");
    await page.click('[data-testid="search-form"] button');
    await page.waitForSelector('[data-testid="no-results"]');
    assert.equal(await page.inputValue('[data-testid="register-form"] input[name="phone"]'), "+48500100299");
    await assertAccessible(page, "desk");
    await page.goto(`${server.url}/desk`);
    await saveScreenshot(page, "desk-1366x768");
  });
  await context.close();
});

test("the call screen and the desk fit a 390×844 phone", async () => {
  const context = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await withScreenshot("callscreen-phone", page, server, async () => {
    await setUpThroughPages(server, page, "natalia", "agent", PASSWORD);
    await assertNoHorizontalOverflow(page, "home");
    await page.goto(`${server.url}/desk`);
    await assertNoHorizontalOverflow(page, "desk");
    await assertAccessible(page, "desk on a phone");
    await saveScreenshot(page, "desk-390x844");
    await startCall(page, PHONE_NUMBER);
    await assertNoHorizontalOverflow(page, "call screen");
    await assertInFirstViewport(page, '[data-testid="level-badge"]');
    await saveScreenshot(page, "call-screen-390x844");
  });
  await context.close();
});

test("times show in the time zone chosen for the account, with the UTC value on hover", async () => {
  const context = await browser.newContext({ viewport: DESKTOP, timezoneId: "Europe/Warsaw" });
  const page = await context.newPage();
  await withScreenshot("time-zone", page, server, async () => {
    await setUpThroughPages(server, page, "zofia", "agent", PASSWORD);
    await page.goto(`${server.url}/account`);
    const first = page.locator('[data-testid="sessions"] time').first();
    const utc = await first.getAttribute("datetime");
    assert.equal(await first.getAttribute("title"), `${utc} (UTC)`);
    assert.match(await first.textContent(), /GMT\+1|CET/, "the browser's zone by default");
    await page.selectOption('[data-testid="tz-select"]', "Asia/Tokyo");
    assert.match(await first.textContent(), /GMT\+9|JST/);
    // Kept for this account: another page, later, shows the same zone.
    await startCall(page, "+48500100298");
    assert.match(await page.locator('[data-testid="interaction-status"] time').textContent(), /GMT\+9|JST/);
    await page.goto(`${server.url}/account`);
    assert.equal(await page.inputValue('[data-testid="tz-select"]'), "Asia/Tokyo");
    await assertAccessible(page, "account with the time-zone setting");
  });
  await context.close();
});
