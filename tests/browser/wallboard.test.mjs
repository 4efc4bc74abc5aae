// Queued calls in a real browser: an agent presses Ready and Not ready on the desk and sees the
// state with its time; a supervisor's wallboard (tables and server-drawn SVG charts) follows the
// agent live without a reload. Both pages pass axe-core. (Ringing needs the SIP edge and is
// tested with it.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
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

const PASSWORD = "queues move slowly on rainy mondays";

test("the desk's ready toggle shows on the supervisor's wallboard live", async () => {
  const supCtx = await browser.newContext({ viewport: DESKTOP });
  const board = await supCtx.newPage();
  const agentCtx = await browser.newContext({ viewport: DESKTOP });
  const desk = await agentCtx.newPage();
  await withScreenshot("wallboard-live", board, server, async () => {
    await setUpThroughPages(server, board, "wendy", "supervisor", PASSWORD);
    await setUpThroughPages(server, desk, "quinn", "agent", PASSWORD);

    // The wallboard: the menu's queues, nobody signed in yet, two charts with text alternatives.
    await board.goto(`${server.url}/wallboard`);
    await board.waitForSelector('[data-testid="live-status"]:has-text("live")');
    assert.deepEqual(
      await board.locator('[data-testid="queue-row"]').evaluateAll((rows) => rows.map((r) => r.dataset.queue)),
      ["billing", "support"],
    );
    assert.equal(await board.locator('[data-testid="no-agents"]').count(), 1);
    assert.equal(await board.locator('svg[role="img"]').count(), 2);
    assert.match(await board.locator("#per-hour-title").textContent(), /Calls per hour today/);
    await assertAccessible(board, "the wallboard");

    // The agent presses Ready on the desk.
    await desk.goto(`${server.url}/desk`);
    assert.equal((await desk.textContent('[data-testid="agent-state"]')).trim(), "Signed out");
    await desk.click('[data-testid="go-ready"]');
    await desk.waitForSelector('[data-testid="presence"][data-state="ready"]');
    assert.equal((await desk.textContent('[data-testid="agent-state"]')).trim(), "Ready");
    assert.match(await desk.textContent('[data-testid="time-in-state"]'), /^\d+:\d\d$/);
    assert.equal(await desk.isVisible('[data-testid="go-ready"]'), false, "no Ready button while ready");
    await assertAccessible(desk, "the desk with the state panel");

    // The wallboard shows quinn ready, without a reload.
    const row = board.locator('[data-testid="agent-row"][data-agent="quinn"]');
    await board.waitForSelector('[data-testid="agent-row"][data-agent="quinn"][data-state="ready"]', { timeout: 20000 });
    assert.match(await row.textContent(), /Ready/);

    // Not ready for lunch: the desk says why, the wallboard follows.
    await desk.selectOption('[data-testid="not-ready-reason"]', "lunch");
    await desk.click('[data-testid="go-not-ready"]');
    await desk.waitForSelector('[data-testid="presence"][data-state="not_ready"]');
    assert.match(await desk.textContent('[data-testid="agent-reason"]'), /lunch/);
    await board.waitForSelector('[data-testid="agent-row"][data-agent="quinn"][data-state="not_ready"]', { timeout: 20000 });
    assert.match(await board.locator('[data-testid="agent-row"][data-agent="quinn"]').textContent(), /lunch/);
    await assertAccessible(board, "the wallboard with an agent");
    await saveScreenshot(board, "wallboard-1366x768");

    // On a phone the wallboard still fits.
    await board.setViewportSize(PHONE);
    await assertNoHorizontalOverflow(board, "the wallboard on a phone");
    await saveScreenshot(board, "wallboard-390x844");
  });
  await supCtx.close();
  await agentCtx.close();
});
