// The audit log checked from outside, by a verifier that shares no code with the server
// (rfc9162.mjs: RFC 8785, RFC 6962/9162 and C2SP signed notes written here in JavaScript):
// every entry is proven included in a signed checkpoint, checkpoints are proven consistent with
// one another, the witness file carries the same signed checkpoints, and forged entries, flipped
// proof hashes and edited notes are rejected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import https from "node:https";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { generateKeyPairSync } from "node:crypto";
import { Server, totp } from "./harness.mjs";
import {
  entryLeaf,
  jcs,
  merkleRoot,
  noteKeyHash,
  parseVerifierKey,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from "./rfc9162.mjs";

let server;
const PASSWORD = "a walk along the harbour at dawn";

before(async () => {
  server = await Server.start();
});

after(async () => {
  await server?.stop();
});

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** One HTTPS request to the server, trusting only its own certificate (real checks). */
function request(method, path, { token, body } = {}) {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "localhost",
        family: 4,
        port: server.port,
        method,
        path,
        ca: server.certPem(),
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(payload ? { "content-type": "application/json", "content-length": payload.length } : {}),
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

async function expectOk(method, path, opts, status = 200) {
  const r = await request(method, path, opts);
  assert.equal(r.status, status, `${method} ${path}: ${r.status} ${r.text}`);
  return r;
}

/** `callguard user add` and first-time setup over the API; answers a session token. */
async function account(username, role) {
  const setupToken = server.cli("user", "add", username, "--role", role);
  const started = (await expectOk("POST", "/api/v1/auth/setup", { body: { token: setupToken, password: PASSWORD } })).json();
  const confirmed = (
    await expectOk("POST", "/api/v1/auth/setup/confirm", {
      body: { challenge: started.challenge, code: totp(started.totp_secret) },
    })
  ).json();
  assert.match(confirmed.token, /^cgs_/);
  return confirmed.token;
}

let made = 0;
/** Things worth logging: accounts created by an admin, and failed sign-ins. */
async function activity(adminToken, adminName, n) {
  for (let i = 0; i < n; i++) {
    made += 1;
    await expectOk("POST", "/api/v1/users", { token: adminToken, body: { username: `staff${made}`, role: "agent" } }, 201);
  }
  const failed = await request("POST", "/api/v1/auth/login", { body: { username: adminName, password: "not the password, sorry" } });
  assert.equal(failed.status, 401, failed.text);
}

/** Polls `probe` until it answers something truthy; fails after `limitMs`. */
async function poll(what, probe, limitMs = 30_000) {
  const started = Date.now();
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}\n${server.log()}`);
    await sleep(100);
  }
}

/** The witness file's lines: {size, note}. */
function witnessLines() {
  const file = join(server.dir, "witness", "checkpoints.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));
}

async function entries(token, start, end) {
  const out = [];
  while (start + out.length < end) {
    const from = start + out.length;
    const limit = Math.min(1000, end - from);
    const page = (await expectOk("GET", `/api/v1/audit?start=${from}&limit=${limit}`, { token })).json();
    assert.ok(page.tree_size >= end, `tree_size ${page.tree_size} below ${end}`);
    out.push(...page.entries.filter((e) => e.index < end));
    assert.ok(page.entries.length > 0, "no progress reading entries");
  }
  return out;
}

const flipBit = (b64, bit = 0) => {
  const b = Buffer.from(b64, "base64");
  b[bit >> 3] ^= 1 << (bit & 7);
  return b.toString("base64");
};

test("the independent verifier agrees with itself on textbook cases", () => {
  // RFC 8785 member order and escaping, as JavaScript does them.
  assert.equal(jcs({ b: 1, a: [true, null, "x\n\u0007\"é"], "\u{1F600}": 2, "\uFB33": 3 }), '{"a":[true,null,"x\\n\\u0007\\"é"],"b":1,"\u{1F600}":2,"\uFB33":3}');
  // The empty tree and one-leaf vectors of RFC 6962.
  assert.equal(merkleRoot([]).toString("hex"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Proofs built here by brute force from the recursive definition verify, for every leaf and
  // every pair of sizes up to 20 leaves.
  const leaves = Array.from({ length: 20 }, (_, i) => entryLeaf({ index: i }));
  const path = (m, d) => {
    if (d.length <= 1) return [];
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return m < k ? [...path(m, d.slice(0, k)), merkleRoot(d.slice(k))] : [...path(m - k, d.slice(k)), merkleRoot(d.slice(0, k))];
  };
  const subproof = (m, d, whole) => {
    const n = d.length;
    if (m === n) return whole ? [] : [merkleRoot(d)];
    let k = 1;
    while (k * 2 < n) k *= 2;
    return m <= k ? [...subproof(m, d.slice(0, k), whole), merkleRoot(d.slice(k))] : [...subproof(m - k, d.slice(k), false), merkleRoot(d.slice(0, k))];
  };
  for (let n = 1; n <= 20; n++) {
    const root = merkleRoot(leaves.slice(0, n));
    for (let i = 0; i < n; i++) {
      assert.ok(verifyInclusion(i, n, leaves[i], path(i, leaves.slice(0, n)), root), `inclusion ${i}/${n}`);
      assert.ok(!verifyInclusion(i, n, leaves[(i + 1) % 20], path(i, leaves.slice(0, n)), root), `forged inclusion ${i}/${n}`);
    }
    for (let m = 1; m < n; m++) {
      const proof = subproof(m, leaves.slice(0, n), true);
      assert.ok(verifyConsistency(m, n, merkleRoot(leaves.slice(0, m)), root, proof), `consistency ${m}->${n}`);
      assert.ok(!verifyConsistency(m, n, merkleRoot(leaves.slice(1, m + 1)), root, proof), `forged consistency ${m}->${n}`);
    }
  }
});

test("every entry is proven included in a signed checkpoint and checkpoints are consistent, by an independent verifier", async () => {
  const adminToken = await account("ada", "admin");
  const token = await account("cora", "compliance");

  // Only the compliance role reads the log and its proofs.
  for (const path of ["/api/v1/audit", "/api/v1/audit/checkpoint", "/api/v1/audit/verifier-key", "/api/v1/audit/proof/inclusion?index=0&tree_size=1"]) {
    const r = await request("GET", path, { token: adminToken });
    assert.equal(r.status, 403, `${path} as admin: ${r.text}`);
  }

  await activity(adminToken, "ada", 6);

  const keyText = (await expectOk("GET", "/api/v1/audit/verifier-key", { token })).text;
  const key = parseVerifierKey(keyText);
  assert.equal(key.name, "localhost/callguard-audit");
  assert.equal(keyText.split("+")[1], noteKeyHash(key.name, key.publicKey).toString("hex"));

  // The timer signs a checkpoint covering the activity and writes it to the witness file,
  // without anyone asking for one.
  const grown = (await expectOk("GET", "/api/v1/audit?start=0&limit=1", { token })).json().tree_size;
  const fromWitness = await poll(`a witness checkpoint covering ${grown} entries`, () =>
    witnessLines().find((l) => l.size >= grown),
  );
  for (const line of witnessLines()) {
    const cp = verifyCheckpoint(line.note, key);
    assert.equal(cp.origin, "localhost/callguard-audit");
    assert.equal(cp.size, BigInt(line.size), "the witness line's size is the signed size");
  }

  // The latest checkpoint from the API.
  const cpResponse = await expectOk("GET", "/api/v1/audit/checkpoint", { token });
  assert.match(cpResponse.headers["content-type"], /^text\/plain/);
  const first = verifyCheckpoint(cpResponse.text, key);
  const size = Number(first.size);
  assert.ok(size >= fromWitness.size, `checkpoint ${size} behind the witness ${fromWitness.size}`);

  // Every entry, recomputed here from its JSON, is in the tree the checkpoint signs.
  const all = await entries(token, 0, size);
  assert.equal(all.length, size);
  all.forEach((e, i) => assert.equal(e.index, i, "entries are numbered 0, 1, 2, …"));
  const leaves = all.map(entryLeaf);
  assert.ok(merkleRoot(leaves).equals(first.root), "the Merkle tree hash of all entries is the signed root");
  const proofs = [];
  for (let i = 0; i < size; i++) {
    const p = (await expectOk("GET", `/api/v1/audit/proof/inclusion?index=${i}&tree_size=${size}`, { token })).json();
    assert.equal(p.index, i);
    assert.equal(p.tree_size, size);
    assert.ok(verifyInclusion(i, size, leaves[i], p.hashes, first.root), `entry ${i} is included in the checkpoint of ${size}`);
    proofs.push(p);
  }
  const actions = new Set(all.map((e) => e.action));
  for (const a of ["user.create", "auth.setup", "auth.sign_in", "audit.read"]) assert.ok(actions.has(a), `an ${a} entry among ${[...actions]}`);

  // Forgeries fail: an entry with one field changed, a flipped bit in a proof hash, a proof
  // presented for another index, a root that is not the signed one.
  const victim = Math.min(3, size - 1);
  const forged = { ...all[victim], outcome: all[victim].outcome === "success" ? "failure" : "success" };
  assert.ok(!verifyInclusion(victim, size, entryLeaf(forged), proofs[victim].hashes, first.root), "a forged entry fails");
  const renamed = { ...all[victim], actor: "user:someone-else" };
  assert.ok(!verifyInclusion(victim, size, entryLeaf(renamed), proofs[victim].hashes, first.root), "a forged actor fails");
  assert.ok(proofs[victim].hashes.length > 0);
  for (let h = 0; h < proofs[victim].hashes.length; h++) {
    const flipped = proofs[victim].hashes.map((x, j) => (j === h ? flipBit(x, 37) : x));
    assert.ok(!verifyInclusion(victim, size, leaves[victim], flipped, first.root), `a flipped bit in proof hash ${h} fails`);
  }
  assert.ok(!verifyInclusion(victim + 1, size, leaves[victim], proofs[victim].hashes, first.root), "a proof for another index fails");
  assert.ok(!verifyInclusion(victim, size, leaves[victim], proofs[victim].hashes, Buffer.from(flipBit(first.root.toString("base64")), "base64")));

  // A checkpoint note that was edited, or checked against another key, fails.
  assert.throws(() => verifyCheckpoint(cpResponse.text.replace(`\n${size}\n`, `\n${size + 1}\n`), key), /no valid signature/);
  const { publicKey } = generateKeyPairSync("ed25519");
  const otherRaw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
  const otherKey = `${key.name}+${noteKeyHash(key.name, otherRaw).toString("hex")}+${Buffer.concat([Buffer.from([1]), otherRaw]).toString("base64")}`;
  assert.throws(() => verifyCheckpoint(cpResponse.text, otherKey), /no valid signature/);

  // More activity, then later checkpoints: each is consistent with every earlier one.
  const checkpoints = [first];
  for (let round = 0; round < 2; round++) {
    await activity(adminToken, "ada", 3 + round * 4);
    const previous = checkpoints[checkpoints.length - 1].size;
    const next = await poll("a later checkpoint", async () => {
      const cp = verifyCheckpoint((await expectOk("GET", "/api/v1/audit/checkpoint", { token })).text, key);
      return cp.size > previous ? cp : null;
    });
    checkpoints.push(next);
  }
  // The witness has signed checkpoints too; they belong to the same history.
  for (const line of witnessLines()) checkpoints.push(verifyCheckpoint(line.note, key));
  const bySize = new Map(checkpoints.map((c) => [c.size, c]));
  const sizes = [...bySize.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.ok(sizes.length >= 3, `several checkpoint sizes: ${sizes}`);
  let checked = 0;
  for (let i = 0; i < sizes.length; i++) {
    for (let j = i + 1; j < sizes.length; j++) {
      const [m, n] = [sizes[i], sizes[j]];
      const p = (await expectOk("GET", `/api/v1/audit/proof/consistency?first=${m}&second=${n}`, { token })).json();
      assert.equal(BigInt(p.first), m);
      assert.equal(BigInt(p.second), n);
      assert.ok(verifyConsistency(m, n, bySize.get(m).root, bySize.get(n).root, p.hashes), `checkpoint ${m} is consistent with ${n}`);
      if (p.hashes.length > 0) {
        const flipped = p.hashes.map((x, k) => (k === p.hashes.length - 1 ? flipBit(x, 5) : x));
        assert.ok(!verifyConsistency(m, n, bySize.get(m).root, bySize.get(n).root, flipped), `a flipped consistency hash ${m}->${n} fails`);
      }
      checked++;
    }
  }
  assert.ok(checked >= 3);

  // Consistency from every earlier tree size (roots recomputed here from the proven entries),
  // including the powers of two that take the special path of §2.1.4.2, to the latest checkpoint.
  const latest = checkpoints.slice(0, 3).reduce((a, b) => (a.size > b.size ? a : b));
  for (let m = 1; m < size; m++) {
    const p = (await expectOk("GET", `/api/v1/audit/proof/consistency?first=${m}&second=${latest.size}`, { token })).json();
    const root = merkleRoot(leaves.slice(0, m));
    assert.ok(verifyConsistency(m, latest.size, root, latest.root, p.hashes), `tree of ${m} is a prefix of the checkpoint of ${latest.size}`);
    const other = merkleRoot([...leaves.slice(0, m - 1), entryLeaf(forged)]);
    assert.ok(!verifyConsistency(m, latest.size, other, latest.root, p.hashes), `a rewritten tree of ${m} is not`);
  }
});
