// Call recordings in a real browser: a supervisor finds a recording in the list, must pick a
// reason before anything plays, and then hears it in the page's <audio> element (Chromium decodes
// the streamed WAV and reports its length); a tampered recording is reported on the page and
// gets no player. Both pages pass axe-core. The recordings are written by the testkit's
// `callguard-test-recording`, with the installation's key, as the telephony edge writes them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { DESKTOP, PHONE, assertAccessible, assertNoHorizontalOverflow } from "./checks.mjs";
import { BIN, Server, launchBrowser, setUpThroughPages, withScreenshot } from "./harness.mjs";

const RECORDER = process.env.CALLGUARD_TEST_RECORDING || join(dirname(BIN), "callguard-test-recording");
const PASSWORD = "the tape keeps every word we say";

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

/** Writes a recording of `seconds` seconds into the server's data directory: its id. */
function record(seconds) {
  return execFileSync(RECORDER, ["--data-dir", server.dir, "--seconds", String(seconds), "--queue", "billing"], {
    encoding: "utf8",
  }).trim();
}

test("a supervisor gives a reason, then hears the recording in the page; a tampered one is reported", async () => {
  const good = record(3);
  const bad = record(3);
  const file = join(server.dir, "recordings", `${bad}.cgrec`);
  const bytes = readFileSync(file);
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  writeFileSync(file, bytes);

  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  await withScreenshot("recordings", page, server, async () => {
    await setUpThroughPages(server, page, "rita", "supervisor", PASSWORD);
    await page.click('nav a[href="/recordings"]');
    await page.waitForSelector('[data-testid="recordings"]');
    assert.equal(await page.locator('[data-testid="recording-row"]').count(), 2);
    await assertAccessible(page, "recordings list");

    await page.click(`[data-recording-id="${good}"] [data-testid="listen"]`);
    await page.waitForSelector('[data-testid="play-form"]');
    assert.equal(await page.locator('[data-testid="player"]').count(), 0, "nothing plays before a reason");
    await assertAccessible(page, "playback page");
    // The reason is required: the browser will not send the form without one.
    await page.click('[data-testid="play"]');
    assert.equal(await page.locator('[data-testid="player"]').count(), 0);

    await page.selectOption('[data-testid="reason"]', "quality_review");
    await page.fill('[data-testid="note"]', "coaching session for the new starters");
    await page.click('[data-testid="play"]');
    const player = page.locator('[data-testid="player"]');
    await player.waitFor();
    await page.waitForFunction(
      () => {
        const a = document.querySelector('[data-testid="player"]');
        return a && a.readyState >= 1 && Number.isFinite(a.duration);
      },
      null,
      { timeout: 20000 },
    );
    const duration = await player.evaluate((a) => a.duration);
    assert.ok(Math.abs(duration - 3) < 0.1, `Chromium decoded 3 s of audio, not ${duration}`);
    const error = await player.evaluate((a) => a.error && a.error.message);
    assert.equal(error, null);
    assert.match(await page.textContent('[data-testid="notice"]'), /quality_review/);
    await assertAccessible(page, "playback page with its player");

    await page.goto(`${server.url}/recordings/${bad}`);
    await page.selectOption('[data-testid="reason"]', "dispute");
    await page.click('[data-testid="play"]');
    await page.waitForSelector('[data-testid="error"]');
    assert.match(await page.textContent('[data-testid="error"]'), /cannot be played.*failed authentication/);
    assert.equal(await page.locator('[data-testid="player"]').count(), 0, "a tampered recording is not played");
    await assertAccessible(page, "playback page reporting a damaged recording");

    await page.setViewportSize(PHONE);
    await page.goto(`${server.url}/recordings`);
    await assertNoHorizontalOverflow(page, "recordings list on a phone");
  });
  await context.close();
});

test("an agent has no recordings in the navigation and is refused the list", async () => {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  await withScreenshot("recordings-agent", page, server, async () => {
    await setUpThroughPages(server, page, "andy", "agent", PASSWORD);
    assert.equal(await page.locator('nav a[href="/recordings"]').count(), 0);
    const resp = await page.goto(`${server.url}/recordings`);
    assert.equal(resp.status(), 403);
  });
  await context.close();
});
