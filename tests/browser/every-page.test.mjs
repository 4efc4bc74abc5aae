// Every page, for every role, at 390×844 and 1366×768: no sideways scrolling, no serious or
// critical axe-core violation, and a refused page (403) still renders the layout with the
// navigation and a way back.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Server, launchBrowser, setUpThroughPages, withScreenshot } from "./harness.mjs";
import { DESKTOP, PHONE, assertAccessible, assertNoHorizontalOverflow } from "./checks.mjs";

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

const PASSWORD = "every page on every screen, all day";

const PAGES = {
  agent: ["/app", "/account", "/desk", "CALL"],
  supervisor: ["/app", "/account", "/alerts", "/dnc", "/wallboard"],
  compliance: ["/app", "/account", "/alerts", "/audit", "/dnc", "/compliance/requests"],
  admin: ["/app", "/account", "/admin/users"],
};
const FORBIDDEN = { agent: "/audit", supervisor: "/desk", compliance: "/admin/users", admin: "/desk" };
const SIGNED_OUT = ["/login", "/setup", "/portal/login", "/problems/forbidden"];

async function checkEverySize(page, what) {
  for (const size of [PHONE, DESKTOP]) {
    await page.setViewportSize(size);
    await assertNoHorizontalOverflow(page, `${what} at ${size.width}×${size.height}`);
  }
  await page.setViewportSize(PHONE);
  await assertAccessible(page, `${what} on a phone`);
}

test("signed-out pages fit a phone and pass axe-core", async () => {
  const context = await browser.newContext({ viewport: PHONE });
  const page = await context.newPage();
  await withScreenshot("every-page-signed-out", page, server, async () => {
    for (const path of SIGNED_OUT) {
      await page.goto(`${server.url}${path}`);
      await checkEverySize(page, path);
    }
  });
  await context.close();
});

for (const role of Object.keys(PAGES)) {
  test(`every ${role} page fits a phone and passes axe-core; a refused page keeps the layout`, async () => {
    const context = await browser.newContext({ viewport: PHONE });
    const page = await context.newPage();
    await withScreenshot(`every-page-${role}`, page, server, async () => {
      await setUpThroughPages(server, page, `${role}-pages`, role, PASSWORD);
      for (const path of PAGES[role]) {
        if (path === "CALL") {
          await page.goto(`${server.url}/desk`);
          await page.fill('[data-testid="start-form"] input[name="from"]', "+48500100299");
          await page.click('[data-testid="start-form"] button[type="submit"]');
          await page.waitForURL(/\/desk\/interactions\//);
        } else {
          const resp = await page.goto(`${server.url}${path}`);
          assert.equal(resp.status(), 200, path);
        }
        await checkEverySize(page, `${role} ${path}`);
        const body = (await page.textContent("main")) || "";
        assert.doesNotMatch(body, /user:[0-9a-f]{8}-/, `${role} ${path}: staff are named, not numbered`);
      }
      const refused = await page.goto(`${server.url}${FORBIDDEN[role]}`);
      assert.equal(refused.status(), 403);
      assert.equal(await page.locator('header [data-testid="who"]').count(), 1, "the layout, with who is signed in");
      assert.ok(await page.locator('header a[href="/app"]').count(), "a way back");
      await checkEverySize(page, `${role} refused ${FORBIDDEN[role]}`);
    });
    await context.close();
  });
}
