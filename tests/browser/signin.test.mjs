// Staff sign-in in a real browser: first-time setup with a TOTP QR code, sign in with password
// and code, sign out; passkey registration and passkey sign-in through Chromium's virtual
// authenticator; the security headers the pages carry.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
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

const PASSWORD = "a walk along the harbour at dawn";

/** First-time setup through the pages; returns the TOTP secret shown to the person. */
async function setUp(page, username) {
  const { secret, qrShown, codes } = await setUpThroughPages(server, page, username, "admin", PASSWORD);
  assert.match(secret, /^[A-Z2-7]{32}$/);
  assert.ok(qrShown, "the QR code is shown");
  assert.equal(codes.length, 10);
  assert.equal(new Set(codes).size, 10);
  return secret;
}

async function signInWithPassword(page, username) {
  await page.goto(`${server.url}/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('[data-testid="login-form"] button[type="submit"]');
}

async function signOut(page) {
  await page.click('[data-testid="sign-out"]');
  await page.waitForURL(/\/login$/);
}

test("a new admin sets up TOTP from the page, signs in with password and code, and signs out", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("totp-setup-sign-in", page, server, async () => {
    const secret = await setUp(page, "alice");
    assert.match(await page.textContent('[data-testid="welcome"]'), /alice/);
    await signOut(page);

    // The session cookie is gone: a signed-in page sends us back to sign-in.
    await page.goto(`${server.url}/account`);
    await page.waitForURL(/\/login\?next=%2Faccount$/);

    await signInWithPassword(page, "alice");
    // The password alone is not enough: the second-factor page follows.
    await page.waitForSelector('[data-testid="totp-form"]');
    // Setup used the current step's code; each code works once, so use the next step's.
    await page.fill('[data-testid="totp-form"] input[name="code"]', totp(secret, Date.now() / 1000 + 30));
    await page.click('[data-testid="totp-form"] button[type="submit"]');
    await page.waitForSelector('[data-testid="welcome"]');
    assert.match(await page.textContent('[data-testid="who"]'), /alice · admin/);

    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "__Host-callguard_session");
    assert.ok(session, "a session cookie is set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.secure, true);
    assert.equal(session.sameSite, "Strict");

    await signOut(page);
  });
  await context.close();
});

test("a wrong authenticator code is refused on the page", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("wrong-code", page, server, async () => {
    await setUp(page, "bob");
    await signOut(page);
    await signInWithPassword(page, "bob");
    await page.fill('[data-testid="totp-form"] input[name="code"]', "000000");
    await page.click('[data-testid="totp-form"] button[type="submit"]');
    assert.match(await page.textContent('[data-testid="error"]'), /not accepted/);
    await page.goto(`${server.url}/app`);
    await page.waitForURL(/\/login\?next=%2Fapp$/);
  });
  await context.close();
});

test("a passkey registered through the virtual authenticator signs the person in", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await withScreenshot("passkey", page, server, async () => {
    await setUp(page, "carol");
    await page.goto(`${server.url}/account`);
    await page.fill("#passkey-name", "virtual key");
    await page.click('[data-testid="passkey-register"]');
    await page.waitForSelector('[data-testid="passkeys"] li', { timeout: 15000 });
    assert.match(await page.textContent('[data-testid="passkeys"]'), /virtual key/);
    await signOut(page);

    await signInWithPassword(page, "carol");
    await page.click('[data-testid="passkey-signin"]');
    await page.waitForSelector('[data-testid="welcome"]', { timeout: 15000 });
    assert.match(await page.textContent('[data-testid="who"]'), /carol/);
  });
  await context.close();
});

test("pages carry a strict CSP and the other security headers, and forms without the CSRF token are refused", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("headers", page, server, async () => {
    const resp = await page.goto(`${server.url}/login`);
    const h = resp.headers();
    assert.match(h["content-security-policy"], /default-src 'none'/);
    assert.match(h["content-security-policy"], /frame-ancestors 'none'/);
    assert.doesNotMatch(h["content-security-policy"], /unsafe-inline/);
    assert.match(h["strict-transport-security"], /max-age=\d+/);
    assert.equal(h["x-content-type-options"], "nosniff");
    assert.equal(h["referrer-policy"], "no-referrer");

    // A forged form post carries a token that does not match this browser's cookie.
    const status = await page.evaluate(async (password) => {
      const body = new URLSearchParams({ username: "alice", password, csrf: "x".repeat(43) });
      const r = await fetch("/login", { method: "POST", body });
      return r.status;
    }, PASSWORD);
    assert.equal(status, 403);

    // Inline script is refused by the CSP: an injected handler never runs.
    const ran = await page.evaluate(async () => {
      window.__inlineRan = false;
      const s = document.createElement("script");
      s.textContent = "window.__inlineRan = true;";
      document.body.appendChild(s);
      await new Promise((r) => setTimeout(r, 50));
      return window.__inlineRan;
    });
    assert.equal(ran, false);
  });
  await context.close();
});

test("sign-in returns you to the page you were going to, never to another site, and refusals are pages with a way back", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await withScreenshot("return-to-and-error-pages", page, server, async () => {
    const secret = await setUp(page, "rita");

    // A refused page is a page: the layout (who is signed in) and a way back, not problem+json.
    const denied = await page.goto(`${server.url}/desk`);
    assert.equal(denied.status(), 403);
    assert.match(denied.headers()["content-type"], /text\/html/);
    assert.match(await page.textContent('[data-testid="who"]'), /rita · admin/);
    assert.match(await page.textContent('[data-testid="way-back"]'), /Back to the start page/);
    const missing = await page.goto(`${server.url}/no-such-page`);
    assert.equal(missing.status(), 404);
    assert.match(missing.headers()["content-type"], /text\/html/);
    await page.waitForSelector('[data-testid="way-back"] a');

    // Signed out, a page sends you to sign-in and, once signed in, back to that page.
    await page.goto(`${server.url}/app`);
    await signOut(page);
    await page.goto(`${server.url}/admin/users`);
    await page.waitForURL(/\/login\?next=%2Fadmin%2Fusers$/);
    await page.fill('input[name="username"]', "rita");
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('[data-testid="login-form"] button[type="submit"]');
    await page.fill('[data-testid="totp-form"] input[name="code"]', totp(secret, Date.now() / 1000 + 30));
    await page.click('[data-testid="totp-form"] button[type="submit"]');
    await page.waitForURL(/\/admin\/users$/);

    // Only a path on this server is carried: another site, protocol-relative or absolute, is dropped.
    for (const evil of ["//evil.example", "https://evil.example/x", "/\\evil.example"]) {
      await page.goto(`${server.url}/login?next=${encodeURIComponent(evil)}`);
      assert.equal(await page.inputValue('[data-testid="login-form"] input[name="next"]'), "", evil);
    }
    await page.goto(`${server.url}/login?next=${encodeURIComponent("/audit?action=auth.setup")}`);
    assert.equal(await page.inputValue('[data-testid="login-form"] input[name="next"]'), "/audit?action=auth.setup");
  });
  await context.close();
});
