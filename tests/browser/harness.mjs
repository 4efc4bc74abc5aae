// Starts the real `callguard` binary on a free port with a fresh data directory, and launches
// Debian's Chromium (headless) trusting that server's self-signed certificate by its public key.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash, createHmac, X509Certificate } from "node:crypto";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.CALLGUARD_BIN || join(here, "..", "..", "target", "debug", "callguard");
export const ARTIFACTS = join(here, "artifacts");

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export class Server {
  static async start(extraEnv = {}) {
    const dir = mkdtempSync(join(tmpdir(), "callguard-browser-"));
    const env = { ...process.env, CALLGUARD_DATA_DIR: dir, CALLGUARD_LISTEN: "127.0.0.1:0", CALLGUARD_LOG_LEVEL: "info", ...extraEnv };
    delete env.CALLGUARD_DATABASE_URL;
    const child = spawn(BIN, ["serve"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout.on("data", (d) => (log += d));
    child.stderr.on("data", (d) => (log += d));
    const addrFile = join(dir, "run", "address");
    for (let i = 0; i < 300 && !existsSync(addrFile); i++) await sleep(100);
    if (!existsSync(addrFile)) throw new Error("callguard did not start:\n" + log);
    const addr = readFileSync(addrFile, "utf8").trim();
    const port = addr.split(":").pop();
    const s = new Server();
    Object.assign(s, { dir, env, child, port, url: `https://localhost:${port}`, log: () => log });
    return s;
  }

  cli(...args) {
    return execFileSync(BIN, args, { env: this.env, encoding: "utf8" }).trim();
  }

  certPem() {
    return readFileSync(join(this.dir, "tls", "cert.pem"), "utf8");
  }

  /** base64(SHA-256(SubjectPublicKeyInfo)) of the server's certificate, for Chromium's allow-list. */
  spkiHash() {
    const spki = new X509Certificate(this.certPem()).publicKey.export({ type: "spki", format: "der" });
    return createHash("sha256").update(spki).digest("base64");
  }

  async stop() {
    this.child.kill("SIGTERM");
    await new Promise((r) => (this.child.exitCode !== null ? r() : this.child.once("exit", r)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function launchBrowser(server) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Trust exactly this server's key, as if its certificate were issued by a trusted CA, so
      // that features reserved for valid HTTPS (WebAuthn) work.
      `--ignore-certificate-errors-spki-list=${server.spkiHash()}`,
    ],
  });
}

/** RFC 6238 TOTP (HMAC-SHA1, 30 s, 6 digits), written here independently of the server's code. */
export function totp(base32Secret, unixSeconds = Date.now() / 1000) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const ch of base32Secret.replace(/=+$/, "").toUpperCase()) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error("bad base32");
    bits += v.toString(2).padStart(5, "0");
  }
  const key = Buffer.alloc(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac("sha1", key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return String(bin % 1_000_000).padStart(6, "0");
}

/** Runs `body(page)` and keeps a screenshot and the server log when it fails. */
export async function withScreenshot(name, page, server, body) {
  try {
    await body();
  } catch (e) {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true }).catch(() => {});
    console.error(`screenshot kept: ${join(ARTIFACTS, name + ".png")}\nserver log:\n${server.log()}`);
    throw e;
  }
}

/**
 * First-time setup through the pages: a setup token from the CLI, a password, the TOTP secret
 * shown with its QR code, a code from it, the recovery codes, then the welcome page. Returns
 * what the person saw, for the caller to check.
 */
export async function setUpThroughPages(server, page, username, role, password) {
  const token = server.cli("user", "add", username, "--role", role);
  await page.goto(`${server.url}/setup`);
  await page.fill('input[name="token"]', token);
  await page.fill('input[name="password"]', password);
  await page.fill('input[name="password_again"]', password);
  await page.click('[data-testid="setup-form"] button[type="submit"]');
  const secret = (await page.textContent('[data-testid="totp-secret"]')).trim();
  const qrShown = await page.isVisible("img.qr");
  await page.fill('[data-testid="enrol-form"] input[name="code"]', totp(secret));
  await page.click('[data-testid="enrol-form"] button[type="submit"]');
  const codes = await page.locator('[data-testid="recovery-codes"] li').allTextContents();
  await page.click('[data-testid="continue"]');
  await page.waitForSelector('[data-testid="welcome"]');
  return { secret, qrShown, codes };
}
