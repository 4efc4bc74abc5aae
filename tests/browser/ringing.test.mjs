// A real call rings an agent's desk, in a real browser. The whole test runs inside a private
// network namespace (`unshare -n`, only `lo`; the test re-runs this file there, as root like
// CI), so the SIP and RTP of sipp, baresip and the server never leave the machine:
// - sipp, as the carrier, calls the real binary's SIP edge from the customer's number; after the
//   recording notice the caller chooses the billing queue and keys (RFC 4733) their PESEL + `#`
//   (level 1), then the code their portal showed them in their own browser, in keypad form,
//   + `#` (level 2);
// - the supervisor's wallboard shows the call waiting (the count, the longest wait going up)
//   while no agent is ready;
// - the agent presses Ready on the desk; their softphone (baresip, registered with their own SIP
//   credentials by digest) rings, and the desk shows the ringing call live: caller ID, queue,
//   IVR path, the level reached in the IVR, and the customer's masked name;
// - the softphone answers: the desk opens the call at level 2 and the wallboard shows it
//   answered, nobody waiting.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DESKTOP, assertAccessible } from "./checks.mjs";
import { Server, launchBrowser, setUpThroughPages, totp, withScreenshot } from "./harness.mjs";

const INSIDE = "CALLGUARD_BROWSER_NETNS";

const NAME = "Zdzisława Wiśniewska-Kowalczyk";
const MASKED_NAME = "Z*** W***";
const PHONE = "+48601234567";
const PESEL = "44051401359";
const AGENT_PASSWORD = "the phone rings twice at noon";
const SUPERVISOR_PASSWORD = "a board of lights above the floor";
const CUSTOMER_PASSWORD = "my own quiet corner of the portal";
const SIP_PORT = 5060;
const PHONE_PORT = 5100;

/** This environment for the run inside the namespace (not marked as a child of this runner). */
function childEnv() {
  const env = { ...process.env, [INSIDE]: "1" };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

if (!process.env[INSIDE]) {
  test("a ringing call on the desk and the wallboard (run inside unshare -n)", () => {
    const ran = spawnSync(
      "unshare",
      ["-n", "--", process.execPath, "--test", "--test-reporter=spec", fileURLToPath(import.meta.url)],
      { env: childEnv(), encoding: "utf8", timeout: 600_000 },
    );
    const out = `${ran.stdout}${ran.stderr}${ran.error ?? ""}`;
    assert.equal(ran.status, 0, `inside unshare -n (root, util-linux):\n${out}`);
    assert.match(out, /pass 1\b/, out);
  });
} else {
  inside();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the caller's audio: a pcap of RTP for sipp's play_pcap_audio ---------------------------

/** G.711 A-law of one 16-bit sample. */
function alaw(sample) {
  const ends = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
  let v = sample >> 3;
  let mask = 0xd5;
  if (v < 0) {
    mask = 0x55;
    v = -v - 1;
  }
  let seg = ends.findIndex((e) => v <= e);
  if (seg < 0) return 0x7f ^ mask;
  const quant = seg < 2 ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
  return ((seg << 4) | quant) ^ mask;
}

/**
 * The caller's RTP: `parts` are `{ audio: ms }` (a quiet 440 Hz tone, PCMA, 20 ms frames) or
 * `{ keys: "123#" }` (each an RFC 4733 event on PT 101, 160 ms, then 300 ms of tone).
 */
function callerPcap(parts) {
  const packets = [];
  let t = 0;
  let seq = 1000;
  let ts = 5000;
  let phase = 0;
  const ssrc = 0x12345678;
  const rtp = (pt, marker, timestamp, payload) => {
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = (marker ? 0x80 : 0) | pt;
    h.writeUInt16BE(seq & 0xffff, 2);
    h.writeUInt32BE(timestamp >>> 0, 4);
    h.writeUInt32BE(ssrc, 8);
    packets.push([t, Buffer.concat([h, payload])]);
    seq += 1;
    t += 20_000;
  };
  const audio = (ms) => {
    for (let f = 0; f < ms / 20; f++) {
      const frame = Buffer.alloc(160);
      for (let i = 0; i < 160; i++) {
        phase += (2 * Math.PI * 440) / 8000;
        frame[i] = alaw(Math.round(Math.sin(phase) * 3000));
      }
      rtp(8, false, ts, frame);
      ts = (ts + 160) >>> 0;
    }
  };
  for (const part of parts) {
    if (part.audio) audio(part.audio);
    for (const c of part.keys ?? "") {
      const ev = "0123456789*#ABCD".indexOf(c);
      const event = (end, duration) => Buffer.from([ev, (end ? 0x80 : 0) | 10, duration >> 8, duration & 0xff]);
      for (let k = 1; k <= 8; k++) rtp(101, k === 1, ts, event(false, k * 160));
      for (let k = 0; k < 3; k++) rtp(101, false, ts, event(true, 1280));
      ts = (ts + 1280) >>> 0;
      audio(300);
    }
  }
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const out = [head];
  for (const [at, payload] of packets) {
    const udpLen = 8 + payload.length;
    const ipLen = 20 + udpLen;
    const eth = Buffer.alloc(14 + 20 + 8);
    eth.writeUInt16BE(0x0800, 12);
    Buffer.from([0x45, 0, ipLen >> 8, ipLen & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]).copy(eth, 14);
    eth.writeUInt16BE(20000, 34);
    eth.writeUInt16BE(30000, 36);
    eth.writeUInt16BE(udpLen, 38);
    const frame = Buffer.concat([eth, payload]);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_000_000 + Math.floor(at / 1_000_000), 0);
    rec.writeUInt32LE(at % 1_000_000, 4);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    out.push(rec, frame);
  }
  return Buffer.concat(out);
}

/** A carrier's call from `from` that plays `pcap` and hangs up after `holdMs`. */
function callerScenario(from, pcap, holdMs) {
  const headers = (method, cseq, toTag) => `${method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:${from}@[local_ip]:[local_port]>;tag=[pid]CG[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>${toTag ? "[peer_tag_param]" : ""}
      Call-ID: [call_id]
      CSeq: ${cseq} ${method}
      Contact: <sip:caller@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70`;
  return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="carrier call">
  <send retrans="500"><![CDATA[
      ${headers("INVITE", 1, false)}
      Content-Type: application/sdp
      Content-Length: [len]

v=0
o=caller 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv

  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
      ${headers("ACK", 1, true)}
      Content-Length: 0

  ]]></send>
  <nop><action><exec play_pcap_audio="${pcap}"/></action></nop>
  <pause milliseconds="${holdMs}"/>
  <send retrans="500"><![CDATA[
      ${headers("BYE", 2, true)}
      Content-Length: 0

  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
`;
}

// ---- the agent's softphone: baresip, headless, answering when told over ctrl_tcp ------------

function startSoftphone(dir, user, password) {
  mkdirSync(join(dir, "rec"), { recursive: true });
  // What the agent says: a 120 s 660 Hz tone, 16-bit 8 kHz mono.
  const voice = join(dir, "voice.wav");
  const samples = Buffer.alloc(120 * 8000 * 2);
  for (let n = 0; n < samples.length / 2; n++) samples.writeInt16LE(Math.round(9000 * Math.sin((2 * Math.PI * 660 * n) / 8000)), n * 2);
  const wav = Buffer.alloc(44);
  wav.write("RIFF", 0);
  wav.writeUInt32LE(36 + samples.length, 4);
  wav.write("WAVEfmt ", 8);
  wav.writeUInt32LE(16, 16);
  wav.writeUInt16LE(1, 20);
  wav.writeUInt16LE(1, 22);
  wav.writeUInt32LE(8000, 24);
  wav.writeUInt32LE(16000, 28);
  wav.writeUInt16LE(2, 32);
  wav.writeUInt16LE(16, 34);
  wav.write("data", 36);
  wav.writeUInt32LE(samples.length, 40);
  writeFileSync(voice, Buffer.concat([wav, samples]));
  const config = [
    "poll_method\tepoll",
    `sip_listen\t127.0.0.1:${PHONE_PORT}`,
    "net_interface\t127.0.0.1",
    "audio_path\t/usr/share/baresip",
    "audio_player\talsa,null",
    `audio_source\taufile,${voice}`,
    "audio_alert\talsa,null",
    "audio_srate\t8000",
    "audio_channels\t1",
    `rtp_ports\t${PHONE_PORT + 10}-${PHONE_PORT + 30}`,
    "module_path\t/usr/lib/baresip/modules",
    "module\tg711.so",
    "module\taufile.so",
    "module\talsa.so",
    "module\tsndfile.so",
    "module_app\taccount.so",
    "module_app\tmenu.so",
    "module_app\tctrl_tcp.so",
    `ctrl_tcp_listen\t127.0.0.1:${PHONE_PORT + 1000}`,
    `snd_path\t${join(dir, "rec")}`,
    "",
  ].join("\n");
  writeFileSync(join(dir, "config"), config);
  writeFileSync(
    join(dir, "accounts"),
    `<sip:${user}@127.0.0.1>;auth_user=${user};auth_pass=${password};outbound="sip:127.0.0.1:${SIP_PORT}";regint=60;answermode=manual;audio_codecs=PCMA,PCMU\n`,
  );
  const child = spawn("baresip", ["-f", dir], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  return { child, log: () => log };
}

/** Sends one command to baresip's ctrl_tcp (a netstring of JSON) and returns its answer. */
function softphoneCommand(command) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ command, params: "", token: "t1" });
    const sock = connect(PHONE_PORT + 1000, "127.0.0.1", () => sock.write(`${Buffer.byteLength(body)}:${body},`));
    let got = "";
    sock.on("data", (d) => {
      got += d;
      if (got.includes('"response"')) {
        sock.end();
        resolve(got);
      }
    });
    sock.on("error", reject);
    setTimeout(() => {
      sock.destroy();
      resolve(got);
    }, 5000);
  });
}

/** A portal code as keyed on a telephone keypad (ABC→2 … WXYZ→9, digits kept). */
function keypadForm(code) {
  const keys = { 2: "ABC", 3: "DEF", 4: "GHI", 5: "JKL", 6: "MNO", 7: "PQRS", 8: "TUV", 9: "WXYZ" };
  return [...code.toUpperCase().replace(/[^0-9A-Z]/g, "")]
    .map((c) => Object.keys(keys).find((k) => keys[k].includes(c)) ?? c)
    .join("");
}

/** Seconds of an `m:ss` clock. */
function seconds(clock) {
  const [m, s] = clock.trim().split(":").map(Number);
  return m * 60 + s;
}

function inside() {
  let server;
  let browser;
  let work;
  const children = [];

  before(async () => {
    const up = spawnSync("ip", ["link", "set", "lo", "up"]);
    assert.equal(up.status, 0, "ip link set lo up");
    work = mkdtempSync(join(tmpdir(), "callguard-ringing-"));
    server = await Server.start({
      CALLGUARD_SIP_LISTEN: `127.0.0.1:${SIP_PORT}`,
      CALLGUARD_SIP_TRUNKS: "127.0.0.1",
      CALLGUARD_SIP_REALM: "callguard.test",
      CALLGUARD_SIP_RTP_PORTS: "20000-20999",
      // baresip 1.0 gives up on a challenge list that names SHA-256.
      CALLGUARD_SIP_DIGEST_ALGORITHMS: "MD5",
      // Long enough for the page to be read while the softphone rings.
      CALLGUARD_QUEUES_RING_SECONDS: "90",
      CALLGUARD_QUEUES_WRAP_UP_SECONDS: "1",
    });
    browser = await launchBrowser(server);
  });

  after(async () => {
    for (const c of children) {
      if (c.exitCode === null) c.kill("SIGKILL");
    }
    await browser?.close();
    await server?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("the desk shows the ringing call with the level reached in the IVR, and the wallboard follows it from waiting to answered", async () => {
    const deskCtx = await browser.newContext({ viewport: DESKTOP });
    const desk = await deskCtx.newPage();
    const boardCtx = await browser.newContext({ viewport: DESKTOP });
    const board = await boardCtx.newPage();
    const customerCtx = await browser.newContext({ viewport: DESKTOP });
    const portal = await customerCtx.newPage();
    let phone;
    let sipp;
    let sippOut = "";
    await withScreenshot("ringing-desk", desk, server, async () => {
      try {
        await setUpThroughPages(server, desk, "rita", "agent", AGENT_PASSWORD);
        await setUpThroughPages(server, board, "vera", "supervisor", SUPERVISOR_PASSWORD);

        // The customer, registered over the agent's session; their portal gives them a code.
        await desk.goto(`${server.url}/desk`);
        const created = await desk.evaluate(async (body) => {
          const csrf = document.querySelector('meta[name="csrf-token"]').content;
          const r = await fetch("/api/v1/customers", {
            method: "POST",
            headers: { "content-type": "application/json", "x-csrf-token": csrf },
            body: JSON.stringify(body),
          });
          return { status: r.status, body: await r.json() };
        }, {
          full_name: NAME, phones: [PHONE], emails: ["z.w@example.com"],
          national_id: { kind: "pesel", value: PESEL }, date_of_birth: "1944-05-14",
          address: { line1: "ul. Marszałkowska 140", postal_code: "00-950", city: "Warszawa", country: "PL" },
          services: ["hosting-kw"], security_questions: [],
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const customerId = created.body.id;
        const invite = server.cli("customer", "invite", customerId);
        await portal.goto(`${server.url}/portal/setup?token=${encodeURIComponent(invite)}`);
        await portal.fill('[data-testid="portal-setup-form"] input[name="password"]', CUSTOMER_PASSWORD);
        await portal.fill('[data-testid="portal-setup-form"] input[name="password_again"]', CUSTOMER_PASSWORD);
        await portal.click('[data-testid="portal-setup-form"] button[type="submit"]');
        const secret = (await portal.textContent('[data-testid="totp-secret"]')).trim();
        await portal.fill('[data-testid="portal-enrol-form"] input[name="code"]', totp(secret));
        await portal.click('[data-testid="portal-enrol-form"] button[type="submit"]');
        await portal.click('[data-testid="continue"]');
        await portal.waitForSelector('[data-testid="portal-welcome"]');
        await portal.click('[data-testid="code-form"] button[type="submit"]');
        const code = (await portal.textContent('[data-testid="verification-code"]')).trim();
        assert.match(code, /^[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}$/);

        // The agent's softphone registers with the SIP credentials issued to them.
        const issued = server.cli("user", "sip-credentials", "rita");
        const sipPassword = issued.match(/SIP password:\s+(\S+)/)?.[1];
        assert.ok(sipPassword, "the CLI shows the SIP password once");
        phone = startSoftphone(join(work, "phone"), "rita", sipPassword);
        children.push(phone.child);
        let registered = false;
        for (let i = 0; i < 100 && !registered; i++) {
          const metrics = await board.evaluate(async () => (await fetch("/metrics")).text());
          registered = metrics.includes("callguard_sip_registrations 1\n");
          if (!registered) await sleep(100);
        }
        assert.ok(registered, `the softphone registered\n${phone.log()}`);

        // The desk: rita is not in the queues yet. The wallboard: nobody waits.
        await desk.goto(`${server.url}/desk`);
        assert.equal((await desk.textContent('[data-testid="agent-state"]')).trim(), "Signed out");
        await board.goto(`${server.url}/wallboard`);
        await board.waitForSelector('[data-testid="live-status"]:has-text("live")');
        const billing = '[data-testid="queue-row"][data-queue="billing"]';
        assert.equal((await board.textContent(`${billing} [data-testid="queue-waiting"]`)).trim(), "0");
        assert.equal((await board.textContent(`${billing} [data-testid="queue-answered"]`)).trim(), "0");

        // The call: billing (1), the PESEL and #, the portal code in keypad form and #, then the
        // caller holds (their tone keeps the line alive) until the test is over.
        const pcapDir = join(work, "caller");
        mkdirSync(pcapDir);
        writeFileSync(
          join(pcapDir, "caller.pcap"),
          callerPcap([
            { audio: 5000 },
            { keys: "1" },
            { audio: 1000 },
            { keys: `${PESEL}#` },
            { audio: 1500 },
            { keys: `${keypadForm(code)}#` },
            { audio: 150_000 },
          ]),
        );
        writeFileSync(join(pcapDir, "scenario.xml"), callerScenario(PHONE, "caller.pcap", 160_000));
        sipp = spawn(
          "sipp",
          [`127.0.0.1:${SIP_PORT}`, "-sf", "scenario.xml", "-s", "callguard", "-i", "127.0.0.1", "-p", "5070",
            "-mi", "127.0.0.1", "-mp", "7000", "-m", "1", "-nostdin", "-timeout", "200"],
          { cwd: pcapDir, stdio: ["ignore", "pipe", "pipe"] },
        );
        children.push(sipp);
        sipp.stdout.on("data", (d) => (sippOut += d));
        sipp.stderr.on("data", (d) => (sippOut += d));

        // The wallboard, live: the call waits in billing once the IVR is done, and its wait
        // grows while no agent is ready.
        const waitingCell = `${billing} [data-testid="queue-waiting"]`;
        const longest = `${billing} [data-testid="queue-longest-wait"]`;
        await board.waitForFunction((sel) => document.querySelector(sel)?.textContent.trim() === "1", waitingCell, { timeout: 60_000 });
        const firstWait = seconds(await board.textContent(longest));
        await board.waitForFunction(
          ([sel, before]) => {
            const [m, s] = (document.querySelector(sel)?.textContent ?? "0:00").trim().split(":").map(Number);
            return m * 60 + s > before;
          },
          [longest, firstWait],
          { timeout: 30_000 },
        );
        assert.match(await board.textContent("#wallboard-summary"), /^1 calls waiting, 0 agents ready\.$/);
        await assertAccessible(board, "the wallboard with a call waiting");

        // Rita gets ready: her softphone rings and the desk shows the call, live.
        await desk.click('[data-testid="go-ready"]');
        await desk.waitForSelector('[data-testid="call-offer"]', { timeout: 30_000 });
        await desk.waitForSelector('[data-testid="presence"][data-state="ringing"]');
        const offer = async (id) => (await desk.textContent(`[data-testid="${id}"]`)).trim();
        assert.equal(await offer("offer-queue"), "billing");
        assert.equal(await offer("offer-caller"), PHONE);
        assert.equal(await offer("offer-ivr"), "billing");
        assert.equal(await offer("offer-level"), "2", "level 2 reached by keypad in the IVR");
        assert.equal(await offer("offer-customer"), MASKED_NAME);
        assert.equal((await desk.textContent('[data-testid="agent-state"]')).trim(), "Ringing");
        const shown = await desk.content();
        for (const secret of [NAME, PESEL, code]) assert.ok(!shown.includes(secret), `the desk does not show ${secret}`);
        await assertAccessible(desk, "the desk with a ringing call");
        assert.ok(/incoming call/i.test(phone.log()), `the softphone rings\n${phone.log()}`);
        await board.waitForSelector('[data-testid="agent-row"][data-agent="rita"][data-state="ringing"]', { timeout: 20_000 });

        // She answers on the softphone: the desk opens the call, verified to level 2.
        const answered = await softphoneCommand("accept");
        assert.match(answered, /"ok"\s*:\s*true/, `baresip accepted: ${answered}\n${phone.log()}`);
        await desk.waitForURL(/\/desk\/interactions\/[0-9a-f-]{36}$/, { timeout: 30_000 });
        assert.equal((await desk.textContent('[data-testid="level"]')).trim(), "2");
        assert.equal((await desk.textContent('[data-testid="customer-id"]')).trim(), customerId);

        // The wallboard: answered, nobody waiting, rita on the call.
        await board.waitForFunction((sel) => document.querySelector(sel)?.textContent.trim() === "0", waitingCell, { timeout: 20_000 });
        await board.waitForFunction(
          (sel) => document.querySelector(sel)?.textContent.trim() === "1",
          `${billing} [data-testid="queue-answered"]`,
          { timeout: 20_000 },
        );
        await board.waitForSelector('[data-testid="agent-row"][data-agent="rita"][data-state="on_call"]', { timeout: 20_000 });
        assert.equal((await board.textContent(`${billing} [data-testid="queue-abandoned"]`)).trim(), "0");
      } catch (e) {
        console.error(`sipp:\n${sippOut}\nbaresip:\n${phone?.log() ?? ""}`);
        throw e;
      }
    });
    sipp?.kill("SIGKILL");
    phone?.child.kill("SIGKILL");
    await deskCtx.close();
    await boardCtx.close();
    await customerCtx.close();
  });
}
