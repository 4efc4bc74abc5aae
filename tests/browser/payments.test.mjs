// Pay-by-link in real browsers: an agent asks for a payment from the call screen, the link goes
// by SMS (to the local SMS sink), the customer opens it in a second browser context and pays with
// a test card (charged by the local Stripe test peer); the agent's call screen shows the payment
// authorised without a reload; the payment page reports no Content-Security-Policy violation.
// The peers run as one process: target/debug/callguard-test-peers (callguard-testkit).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { Server, launchBrowser, setUpThroughPages, withScreenshot } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const PEERS = process.env.CALLGUARD_TEST_PEERS || join(here, "..", "..", "target", "debug", "callguard-test-peers");

let server;
let browser;
let peers;
let hello;
const texts = [];

before(async () => {
  peers = spawn(PEERS, [], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: peers.stdout });
  hello = await new Promise((resolve, reject) => {
    peers.once("error", reject);
    lines.once("line", (l) => resolve(JSON.parse(l)));
  });
  lines.on("line", (l) => texts.push(JSON.parse(l).sms));
  server = await Server.start({
    CALLGUARD_PAYMENTS_GATEWAY: "stripe",
    CALLGUARD_PAYMENTS_STRIPE_URL: hello.stripe_url,
    CALLGUARD_PAYMENTS_STRIPE_SECRET_KEY: hello.stripe_key,
    CALLGUARD_PAYMENTS_MERCHANT_NAME: "Acme Hosting",
    CALLGUARD_OTP_SMS_URL: hello.sms_url,
    CALLGUARD_OTP_SMS_ACCOUNT_SID: hello.sms_sid,
    CALLGUARD_OTP_SMS_AUTH_TOKEN: hello.sms_token,
    CALLGUARD_OTP_SMS_FROM: "+48500000000",
    // Level 1 (national id) is enough here, so the story stays on the payment.
    CALLGUARD_VERIFICATION_LEVEL_PAYMENT: "1",
  });
  browser = await launchBrowser(server);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  peers?.stdin.end();
});

const PESEL = "44051401359";
const PHONE = "+48601234567";
const text = async (page, testid) => ((await page.textContent(`[data-testid="${testid}"]`)) || "").trim();

async function waitFor(what, check) {
  for (let i = 0; i < 200; i++) {
    const v = check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} never came`);
}

test("an agent asks for a payment by link and sees it authorised live while the customer pays", async () => {
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  const customerContext = await browser.newContext();
  const customer = await customerContext.newPage();
  const violations = [];
  await customer.exposeFunction("cspViolation", (v) => violations.push(v));
  await customer.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      window.cspViolation(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const consoleErrors = [];
  customer.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));

  await withScreenshot("payments-agent", agent, server, async () => {
    await setUpThroughPages(server, agent, "paula", "agent", "the harbour lights at closing time");
    // The customer, registered over the agent's own session.
    const created = await agent.evaluate(async (body) => {
      const csrf = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch("/api/v1/customers", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: await r.json() };
    }, {
      full_name: "Zdzisława Wiśniewska-Kowalczyk", phones: [PHONE], emails: ["z.w@example.com"],
      national_id: { kind: "pesel", value: PESEL }, date_of_birth: "1944-05-14",
      address: { line1: "ul. Marszałkowska 140", postal_code: "00-950", city: "Warszawa", country: "PL" },
      services: ["hosting-kw"], security_questions: [],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));

    await agent.goto(`${server.url}/desk`);
    await agent.fill('[data-testid="start-form"] input[name="from"]', PHONE);
    await agent.click('[data-testid="start-form"] button[type="submit"]');
    await agent.waitForURL(/\/desk\/interactions\/[0-9a-f-]{36}$/);
    await agent.fill('[data-testid="verify-national-id"] input[name="value"]', PESEL);
    await agent.click('[data-testid="verify-national-id"] button[type="submit"]');
    assert.equal(await text(agent, "level"), "1");

    const form = '[data-testid="payment-form"]';
    await agent.fill(`${form} input[name="amount"]`, "49.90");
    await agent.fill(`${form} input[name="description"]`, "Invoice 2026/12");
    await agent.selectOption(`${form} select[name="how"]`, "sms");
    await agent.click(`${form} button[type="submit"]`);
    await agent.waitForSelector('[data-testid="payment-row"][data-status="link_sent"]');
    assert.match(await agent.textContent('[data-testid="payment-row"]'), /49\.90 EUR/);
  });

  const sms = await waitFor("the link's SMS", () => texts.find((t) => t && t.body.includes("/pay/")));
  assert.equal(sms.to, PHONE);
  const link = sms.body.split(/\s+/).find((w) => w.includes("/pay/"));

  await withScreenshot("payments-customer", customer, server, async () => {
    await customer.goto(link);
    assert.equal(await text(customer, "pay-amount"), "49.90 EUR");
    await customer.fill("#number", "4242424242424242");
    assert.equal(await customer.inputValue("#number"), "4242 4242 4242 4242", "grouped by the page's script");
    await customer.fill("#exp_month", "12");
    await customer.fill("#exp_year", "30");
    await customer.fill("#cvc", "123");
    await customer.click("#pay-button");
    await customer.waitForSelector('[data-testid="pay-outcome"]');
    assert.match(await text(customer, "pay-outcome"), /49\.90 EUR paid with the card ending 4242/);
  });

  await withScreenshot("payments-agent-live", agent, server, async () => {
    // No reload: the row changes by itself.
    await agent.waitForSelector('[data-testid="payment-row"][data-status="authorised"]', { timeout: 15000 });
    const row = await agent.textContent('[data-testid="payment-row"]');
    assert.match(row, /visa •••• 4242/);
    assert.ok(!(await agent.content()).includes("4242424242424242"), "the agent never sees the number");
  });

  assert.deepEqual(violations, [], "no CSP violation on the payment page");
  assert.deepEqual(consoleErrors, [], "no console error on the payment page");
});
