// The agent desktop and the customer portal in a real browser: an agent registers a customer
// (every invalid field shown next to its input), the customer sets up their portal account from
// the invite token, and a call goes from identification to a level-2 change: screen-pop masked,
// national id → level 1, one field revealed for a reason (and gone on reload), the level-2 form
// closed until the code the customer gets in their own browser is read out; a wrong code is
// refused with the attempts left. The customer then sees the reveal in "who looked at my data".
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { DESKTOP, PHONE as PHONE_SIZE, assertAccessible, assertNoHorizontalOverflow, saveScreenshot } from "./checks.mjs";
import { Server, launchBrowser, setUpThroughPages, totp, withScreenshot } from "./harness.mjs";

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

const AGENT_PASSWORD = "the harbour lights at closing time";
const CUSTOMER_PASSWORD = "my own quiet corner of the portal";

const PESEL = "44051401359";
const NAME = "Zdzisława Wiśniewska-Kowalczyk";
const PHONE = "+48601234567";
const NEW_PHONE = "+48602999888";
const EMAIL = "zdzislawa.wisniewska@example.com";
const STREET = "ul. Marszałkowska 140 m. 17";
const SERVICE = "hosting-kowalczyk-pl";

const text = async (page, testid) => ((await page.textContent(`[data-testid="${testid}"]`)) || "").trim();

/** Registers the customer on the desk's form: first with mistakes, then right. Returns the id. */
async function registerCustomer(page) {
  await page.goto(`${server.url}/desk`);
  const form = '[data-testid="register-form"]';
  await page.fill(`${form} input[name="full_name"]`, NAME);
  await page.fill(`${form} input[name="phone"]`, "+48 12");
  await page.fill(`${form} input[name="email"]`, EMAIL);
  await page.selectOption(`${form} select[name="national_id_kind"]`, "pesel");
  await page.fill(`${form} input[name="national_id"]`, "44051401358"); // wrong checksum
  await page.fill(`${form} input[name="date_of_birth"]`, "1944-05-14");
  await page.fill(`${form} input[name="line1"]`, STREET);
  await page.fill(`${form} input[name="postal_code"]`, "00-950");
  await page.fill(`${form} input[name="city"]`, "Warszawa");
  await page.fill(`${form} input[name="country"]`, "PL");
  await page.fill(`${form} input[name="service"]`, SERVICE);
  await page.fill(`${form} input[name="question_0"]`, "Town of birth?");
  await page.fill(`${form} input[name="answer_0"]`, "Bolesławiec nad Bobrem");
  await page.fill(`${form} input[name="question_1"]`, "First pet?");
  await page.fill(`${form} input[name="answer_1"]`, "Burek Pierwszy");
  await page.click(`${form} button[type="submit"]`);

  // Both mistakes at once, each next to its input; what was typed is kept, answers are not.
  await page.waitForSelector('[data-testid="problem-phone"]');
  assert.ok(await page.isVisible('[data-testid="problem-national_id"]'), "the PESEL's problem is shown");
  assert.match(await text(page, "error"), /2 field\(s\)/);
  assert.equal(await page.locator('[data-testid="problem-full_name"]').count(), 0);
  assert.equal(await page.inputValue(`${form} input[name="full_name"]`), NAME);
  assert.equal(await page.inputValue(`${form} input[name="answer_0"]`), "");

  await page.fill(`${form} input[name="phone"]`, PHONE);
  await page.fill(`${form} input[name="national_id"]`, PESEL);
  await page.fill(`${form} input[name="answer_0"]`, "Bolesławiec nad Bobrem");
  await page.fill(`${form} input[name="answer_1"]`, "Burek Pierwszy");
  await page.click(`${form} button[type="submit"]`);
  await page.waitForSelector('[data-testid="created-id"]');
  const id = await text(page, "created-id");
  assert.match(id, /^\d{12}$/);
  return id;
}

/** The customer sets up the portal from the invite token, then signs out and in again. */
async function customerSetsUpThePortal(page, customerId, agentUsername) {
  const token = server.cli("customer", "invite", customerId);
  assert.equal(token.split("\n").length, 1, "the CLI prints the token and nothing else");
  await page.goto(`${server.url}/portal/setup?token=${encodeURIComponent(token)}`);
  assert.equal(await page.inputValue('[data-testid="portal-setup-form"] input[name="token"]'), token);
  await page.fill('[data-testid="portal-setup-form"] input[name="password"]', CUSTOMER_PASSWORD);
  await page.fill('[data-testid="portal-setup-form"] input[name="password_again"]', CUSTOMER_PASSWORD);
  await page.click('[data-testid="portal-setup-form"] button[type="submit"]');
  const secret = await text(page, "totp-secret");
  assert.ok(await page.isVisible("img.qr"), "the QR code is shown");
  await page.fill('[data-testid="portal-enrol-form"] input[name="code"]', totp(secret));
  await page.click('[data-testid="portal-enrol-form"] button[type="submit"]');
  assert.equal((await page.locator('[data-testid="recovery-codes"] li').allTextContents()).length, 10);
  await page.click('[data-testid="continue"]');
  await page.waitForSelector('[data-testid="portal-welcome"]');

  // My data in the clear, and no staff navigation.
  assert.equal(await text(page, "my-customer-id"), customerId);
  assert.equal(await text(page, "my-national_id"), `PESEL ${PESEL}`);
  assert.equal(await text(page, "my-phones"), PHONE);
  assert.match(await text(page, "my-address"), /Marszałkowska 140/);
  assert.equal(await text(page, "who"), `customer ${customerId}`);
  for (const staffOnly of ["/app", "/desk", "/account", "/alerts"]) {
    assert.equal(await page.locator(`header a[href="${staffOnly}"]`).count(), 0, `no ${staffOnly} link`);
  }
  // The staff pages are not for customers.
  assert.equal((await page.goto(`${server.url}/desk`)).status(), 403);

  // Sign out, and back in with the customer number, the password and the next TOTP code.
  await page.goto(`${server.url}/portal`);
  await page.click('[data-testid="sign-out"]');
  await page.waitForURL(/\/portal\/login$/);
  // Staff are not admitted at the portal, even with the right password.
  await page.fill('[data-testid="portal-login-form"] input[name="customer_id"]', agentUsername);
  await page.fill('[data-testid="portal-login-form"] input[name="password"]', AGENT_PASSWORD);
  await page.click('[data-testid="portal-login-form"] button[type="submit"]');
  assert.match(await text(page, "error"), /username or password is wrong/);
  await page.fill('[data-testid="portal-login-form"] input[name="customer_id"]', customerId);
  await page.fill('[data-testid="portal-login-form"] input[name="password"]', CUSTOMER_PASSWORD);
  await page.click('[data-testid="portal-login-form"] button[type="submit"]');
  await page.fill('[data-testid="portal-totp-form"] input[name="code"]', totp(secret, Date.now() / 1000 + 30));
  await page.click('[data-testid="portal-totp-form"] button[type="submit"]');
  await page.waitForSelector('[data-testid="portal-welcome"]');
}

test("an agent takes a call from identification to a level-2 change with the code from the customer's portal", async () => {
  const agentContext = await browser.newContext();
  const agent = await agentContext.newPage();
  const customerContext = await browser.newContext();
  const customer = await customerContext.newPage();
  await withScreenshot("desk-agent", agent, server, async () => {
    await setUpThroughPages(server, agent, "olga", "agent", AGENT_PASSWORD);
    await agent.click('header a[href="/desk"]');
    await agent.waitForSelector('[data-testid="start-form"]');
    const customerId = await registerCustomer(agent);

    await withScreenshot("desk-customer-setup", customer, server, () =>
      customerSetsUpThePortal(customer, customerId, "olga"),
    );

    // The call comes in from the customer's number: the record pops up, masked.
    await agent.goto(`${server.url}/desk`);
    await agent.fill('[data-testid="start-form"] input[name="from"]', PHONE);
    await agent.click('[data-testid="start-form"] button[type="submit"]');
    await agent.waitForURL(/\/desk\/interactions\/[0-9a-f-]{36}$/);
    const callUrl = agent.url();
    assert.equal(await text(agent, "customer-id"), customerId);
    assert.equal(await text(agent, "masked-full_name"), "Z*** W***");
    assert.equal(await text(agent, "masked-phones"), "+48 *** *** 567");
    assert.match(await text(agent, "masked-national_id"), /^PESEL \*+59$/);
    const popped = await agent.content();
    for (const secret of [PESEL, PHONE, NAME, STREET, EMAIL, SERVICE]) {
      assert.ok(!popped.includes(secret), `the screen-pop does not show ${secret}`);
    }
    assert.equal(await text(agent, "level"), "0");
    assert.equal(await text(agent, "attempts-left"), "5");
    assert.ok(await agent.isDisabled('[data-testid="reveal-address"] button'), "no reveal at level 0");
    assert.equal(await agent.locator('[data-testid="verify-portal-code"]').count(), 0, "only the next step: no level 2 from level 0");

    // Level 1: the caller gives their PESEL.
    await agent.fill('[data-testid="verify-national-id"] input[name="value"]', PESEL);
    await agent.click('[data-testid="verify-national-id"] button[type="submit"]');
    assert.equal(await text(agent, "level"), "1");
    assert.match(await text(agent, "notice"), /Level 1 reached/);
    assert.match(await text(agent, "steps"), /national id → level 1/);

    // One field revealed for a reason, shown in this answer only.
    await agent.selectOption('[data-testid="reveal-address"] select[name="reason"]', "service_issue");
    await agent.click('[data-testid="reveal-address"] button[type="submit"]');
    assert.match(await text(agent, "revealed-address"), /ul\. Marszałkowska 140 m\. 17, 00-950 Warszawa, PL/);
    assert.ok(!agent.url().includes("Marsza"), "the value is not in the URL");
    const cookies = JSON.stringify(await agentContext.cookies());
    assert.ok(!cookies.includes("Marsza"), "nor in a cookie");
    await agent.goto(callUrl);
    assert.equal(await agent.locator('[data-testid="revealed-address"]').count(), 0, "gone on reload");
    assert.equal(await text(agent, "masked-address"), "***, W***, PL");

    // The level-2 change is closed at level 1; a note (level 1) is open.
    assert.ok(await agent.isDisabled('[data-testid="op-change_contact"] button'));
    assert.equal(await text(agent, "needs-change_contact"), "needs level 2");
    assert.ok(await agent.isEnabled('[data-testid="op-add_note"] button'));

    // The customer gets a code in their own browser and reads it out.
    let code;
    await withScreenshot("desk-customer-code", customer, server, async () => {
      await customer.click('[data-testid="code-form"] button[type="submit"]');
      code = await text(customer, "verification-code");
      assert.match(code, /^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$/);
      assert.match(await text(customer, "code-expires"), /^\d{4}-\d\d-\d\dT/);
    });

    // A misheard code is refused, with the attempts left.
    const wrong = code.startsWith("ZZZZ") ? "YYYY-YYYY" : "ZZZZ-ZZZZ";
    await agent.fill('[data-testid="verify-portal-code"] input[name="code"]', wrong);
    await agent.click('[data-testid="verify-portal-code"] button[type="submit"]');
    assert.match(await text(agent, "error"), /not accepted; 4 attempts left/);
    assert.equal(await text(agent, "attempts-left"), "4");
    assert.equal(await text(agent, "level"), "1");

    // The right code: level 2, and the change goes through.
    await agent.fill('[data-testid="verify-portal-code"] input[name="code"]', code);
    await agent.click('[data-testid="verify-portal-code"] button[type="submit"]');
    assert.equal(await text(agent, "level"), "2");
    assert.match(await text(agent, "notice"), /Level 2 reached/);
    assert.ok(await agent.isEnabled('[data-testid="op-change_contact"] button'));
    await agent.click('[data-testid="op-change_contact-open"] summary');
    await agent.fill('[data-testid="op-change_contact"] input[name="phones"]', NEW_PHONE);
    await agent.click('[data-testid="op-change_contact"] button[type="submit"]');
    assert.match(await text(agent, "notice"), /Contact details changed/);
    assert.equal(await text(agent, "masked-phones"), "+48 *** *** 888");
    assert.ok(!(await agent.content()).includes(NEW_PHONE), "the new number is masked too");

    // The call ends: everything closes.
    await agent.click('[data-testid="end-form"] button[type="submit"]');
    assert.match(await text(agent, "interaction-status"), /Ended/);
    assert.ok(await agent.isDisabled('[data-testid="op-add_note"] button'));
    assert.ok(await agent.isDisabled('[data-testid="reveal-phones"] button'));
    // The portal is for customers only.
    assert.equal((await agent.goto(`${server.url}/portal`)).status(), 403);

    // The customer sees the new number and who revealed what, when and why.
    await withScreenshot("desk-customer-log", customer, server, async () => {
      await customer.goto(`${server.url}/portal`);
      assert.equal(await text(customer, "my-phones"), NEW_PHONE);
      const rows = await customer.locator('[data-testid="access-row"]').allTextContents();
      const reveal = rows.find((r) => r.includes("revealed"));
      assert.ok(reveal, `a reveal in ${rows.join(" | ")}`);
      assert.match(reveal, /agent #[0-9A-F]{6}/);
      assert.doesNotMatch(reveal, /olga|[0-9a-f]{8}-[0-9a-f]{4}-/, "neither the username nor the account id");
      assert.match(reveal, /address/);
      assert.match(reveal, /a delivery, billing or service problem/);
      assert.ok(rows.some((r) => r.includes("changed on your behalf")), "the change is listed");

      // The portal passes axe-core and is made for the phone the caller holds while talking.
      await assertAccessible(customer, "portal");
      await customer.setViewportSize(DESKTOP);
      await saveScreenshot(customer, "portal-1366x768");
      await customer.setViewportSize(PHONE_SIZE);
      await assertNoHorizontalOverflow(customer, "portal on a phone");
      await assertAccessible(customer, "portal on a phone");
      await saveScreenshot(customer, "portal-390x844");

      // Everything stored about them, as a JSON file to keep.
      const [download] = await Promise.all([
        customer.waitForEvent("download"),
        customer.click('[data-testid="download-export"]'),
      ]);
      assert.match(download.suggestedFilename(), /^callguard-export-\d{12}\.json$/);
      const exported = JSON.parse(readFileSync(await download.path(), "utf8"));
      assert.equal(exported.data.national_id.value, PESEL);
      assert.deepEqual(exported.data.phones, [NEW_PHONE]);
      assert.ok(exported.access.some((e) => e.what === "reveal" && e.reason === "service_issue"));
    });
  });
  await customerContext.close();
  await agentContext.close();
});

test("a signed-out visitor of the portal is sent to the portal's own sign-in", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("portal-signed-out", page, server, async () => {
    await page.goto(`${server.url}/portal`);
    await page.waitForURL(/\/portal\/login\?next=%2Fportal$/);
    await page.waitForSelector('[data-testid="portal-login-form"]');
    await page.goto(`${server.url}/desk`);
    await page.waitForURL(/\/login\?next=%2Fdesk$/);
    assert.ok(!page.url().includes("/portal"));
  });
  await context.close();
});
