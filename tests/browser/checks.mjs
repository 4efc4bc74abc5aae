// Checks every page test can run: axe-core (vendored as a pinned npm package and evaluated in
// the page by the test, never served by the product) and horizontal overflow.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const DESKTOP = { width: 1366, height: 768 };
export const PHONE = { width: 390, height: 844 };

/** Runs axe-core on the page: the serious and critical violations, described. */
export async function axeViolations(page) {
  // Evaluated over the DevTools protocol, so the page's strict CSP (script-src 'self') is kept.
  const loaded = await page.evaluate(() => typeof window.axe !== "undefined");
  if (!loaded) await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  return result.filter((v) => v.impact === "serious" || v.impact === "critical");
}

/** Asserts no serious or critical axe violation on the page. */
export async function assertAccessible(page, what) {
  const bad = await axeViolations(page);
  assert.deepEqual(bad, [], `${what}: ${JSON.stringify(bad, null, 1)}`);
}

/** Asserts the page does not scroll sideways. */
export async function assertNoHorizontalOverflow(page, what) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${what}: scrollWidth ${scrollWidth} > innerWidth ${innerWidth}`);
}

/** Asserts the element is inside the first viewport (no scrolling needed to reach it). */
export async function assertInFirstViewport(page, selector) {
  const box = await page.evaluate((sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    return { top: r.top + window.scrollY, bottom: r.bottom + window.scrollY, left: r.left, right: r.right, h: window.innerHeight, w: window.innerWidth };
  }, selector);
  assert.ok(box, `${selector} is on the page`);
  assert.ok(box.bottom <= box.h && box.right <= box.w && box.top >= 0, `${selector} is inside the first ${box.w}×${box.h} viewport: ${JSON.stringify(box)}`);
}

/** Saves the README's screenshot `name` under docs/screenshots/, when UPDATE_SCREENSHOTS=1. */
export async function saveScreenshot(page, name) {
  if (process.env.UPDATE_SCREENSHOTS !== "1") return;
  await page.screenshot({ path: new URL(`../../docs/screenshots/${name}.png`, import.meta.url).pathname });
}
