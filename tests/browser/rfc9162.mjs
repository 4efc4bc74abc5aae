// An independent verifier for Callguard's audit log, written from the public specifications and
// sharing no code with the server (which is Rust):
//   - RFC 8785 (JCS) canonical JSON of the entry objects,
//   - RFC 6962 / RFC 9162 leaf and node hashes and the Merkle tree hash,
//   - RFC 9162 §2.1.3.2 inclusion and §2.1.4.2 consistency proof verification,
//   - C2SP tlog-checkpoint bodies inside C2SP signed notes, Ed25519 signatures, and verifier keys
//     in the golang.org/x/mod/sumdb/note format (name+keyhash+base64(0x01 || public key)).
// Only node:crypto is used (SHA-256 and Ed25519).
import { createHash, createPublicKey, verify as cryptoVerify } from "node:crypto";

// ---- RFC 8785 ----------------------------------------------------------------------------

/**
 * The RFC 8785 canonical form of a JSON value. Object members are sorted by their names as
 * arrays of UTF-16 code units (which is what JavaScript's default sort compares); strings and
 * numbers are serialised as ECMAScript's JSON.stringify does, which is what RFC 8785 prescribes.
 */
export function jcs(value) {
  if (value === null || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error("JCS: non-finite number");
    return JSON.stringify(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(jcs).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + jcs(value[k])).join(",") + "}";
  }
  throw new Error(`JCS: cannot canonicalise a ${typeof value}`);
}

// ---- RFC 6962 hashing ----------------------------------------------------------------------

function sha256(...parts) {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
}

/** SHA-256(0x00 || data). */
export function leafHash(data) {
  return sha256(Buffer.from([0x00]), Buffer.from(data));
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  return sha256(Buffer.from([0x01]), left, right);
}

/** The leaf hash of an audit entry object: the hash of its canonical JSON (UTF-8). */
export function entryLeaf(entry) {
  return leafHash(Buffer.from(jcs(entry), "utf8"));
}

/** MTH(D[n]) of RFC 6962 §2.1, straight from its recursive definition. */
export function merkleRoot(leaves) {
  const n = leaves.length;
  if (n === 0) return sha256(Buffer.alloc(0));
  if (n === 1) return leaves[0];
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)));
}

function toBig(n, what) {
  if (typeof n === "bigint") return n;
  if (Number.isSafeInteger(n) && n >= 0) return BigInt(n);
  throw new Error(`${what} must be a non-negative integer, got ${n}`);
}

function asHash(h) {
  const b = Buffer.isBuffer(h) ? h : Buffer.from(h, "base64");
  if (b.length !== 32) throw new Error(`a hash must be 32 bytes, got ${b.length}`);
  return b;
}

const lsb = (x) => (x & 1n) === 1n;

/** RFC 9162 §2.1.3.2: verifies an inclusion proof of `leaf` at `index` in a tree of `size`. */
export function verifyInclusion(index, size, leaf, proof, root) {
  const leafIndex = toBig(index, "index");
  const treeSize = toBig(size, "tree size");
  const path = proof.map(asHash);
  // 1. If leaf_index is greater than or equal to tree_size, then stop and fail.
  if (leafIndex >= treeSize) return false;
  // 2. Set fn to leaf_index and sn to tree_size - 1.
  let fn = leafIndex;
  let sn = treeSize - 1n;
  // 3. Set r to hash.
  let r = asHash(leaf);
  // 4. For each value p in the inclusion_path array:
  for (const p of path) {
    // a. If sn is 0, then stop the iteration and fail the proof verification.
    if (sn === 0n) return false;
    // b. If LSB(fn) is set, or if fn is equal to sn, then:
    if (lsb(fn) || fn === sn) {
      // i. Set r to HASH(0x01 || p || r).
      r = nodeHash(p, r);
      // ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
      //     LSB(fn) is set or fn is 0.
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      // Otherwise: i. Set r to HASH(0x01 || r || p).
      r = nodeHash(r, p);
    }
    // c. Finally, right-shift both fn and sn one time.
    fn >>= 1n;
    sn >>= 1n;
  }
  // 5. Compare sn to 0. Compare r against the root_hash.
  return sn === 0n && r.equals(asHash(root));
}

/**
 * RFC 9162 §2.1.4.2: verifies a consistency proof between the tree of `first` leaves with root
 * `firstRoot` and the tree of `second` leaves with root `secondRoot`.
 */
export function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  const m = toBig(first, "first");
  const n = toBig(second, "second");
  const path = proof.map(asHash);
  const r1 = asHash(firstRoot);
  const r2 = asHash(secondRoot);
  if (m > n) return false;
  // Equal trees need no proof; the empty tree is a prefix of every tree (RFC 9162 §2.1.4).
  if (m === n) return path.length === 0 && r1.equals(r2);
  if (m === 0n) return path.length === 0;
  // 1. If consistency_path is an empty array, stop and fail the proof verification.
  if (path.length === 0) return false;
  // 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
  if ((m & (m - 1n)) === 0n) path.unshift(r1);
  // 3. Set fn to first - 1 and sn to second - 1.
  let fn = m - 1n;
  let sn = n - 1n;
  // 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
  while (lsb(fn)) {
    fn >>= 1n;
    sn >>= 1n;
  }
  // 5. Set both fr and sr to the first value in the consistency_path array.
  let fr = path[0];
  let sr = path[0];
  // 6. For each subsequent value c in the consistency_path array:
  for (const c of path.slice(1)) {
    // a. If sn is 0, then stop the iteration and fail the proof verification.
    if (sn === 0n) return false;
    // b. If LSB(fn) is set, or if fn is equal to sn, then:
    if (lsb(fn) || fn === sn) {
      // i. Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr).
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      // ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
      //     LSB(fn) is set or fn is 0.
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      // Otherwise: i. Set sr to HASH(0x01 || sr || c).
      sr = nodeHash(sr, c);
    }
    // c. Finally, right-shift both fn and sn one time.
    fn >>= 1n;
    sn >>= 1n;
  }
  // 7. Verify that fr equals first_hash, sr equals second_hash, and sn is 0.
  return fr.equals(r1) && sr.equals(r2) && sn === 0n;
}

// ---- C2SP signed notes ---------------------------------------------------------------------

const ED25519_ALG = 0x01;
// DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410): SEQUENCE { SEQUENCE { OID
// 1.3.101.112 }, BIT STRING (32 bytes) }.
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** The note key hash: the first four bytes of SHA-256(name || "\n" || 0x01 || public key). */
export function noteKeyHash(name, publicKey) {
  return sha256(Buffer.from(name + "\n", "utf8"), Buffer.from([ED25519_ALG]), publicKey).subarray(0, 4);
}

/** Parses a verifier key `name+hex(keyhash)+base64(0x01 || public key)` and checks its hash. */
export function parseVerifierKey(text) {
  const s = text.trim();
  const first = s.indexOf("+");
  const second = s.indexOf("+", first + 1);
  if (first <= 0 || second < 0) throw new Error("verifier key: expected name+hash+key");
  const name = s.slice(0, first);
  const hashHex = s.slice(first + 1, second);
  const keyB64 = s.slice(second + 1);
  if (!/^[0-9a-f]{8}$/.test(hashHex)) throw new Error("verifier key: the key hash is not 8 hex digits");
  const key = Buffer.from(keyB64, "base64");
  if (key.toString("base64") !== keyB64) throw new Error("verifier key: the key is not canonical base64");
  if (key.length !== 33 || key[0] !== ED25519_ALG) throw new Error("verifier key: not an Ed25519 key");
  const publicKey = key.subarray(1);
  const keyHash = noteKeyHash(name, publicKey);
  if (keyHash.toString("hex") !== hashHex) throw new Error("verifier key: the key hash does not match the key");
  const keyObject = createPublicKey({
    key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]),
    format: "der",
    type: "spki",
  });
  return { name, keyHash, publicKey, keyObject };
}

/**
 * Verifies a C2SP signed note carrying a C2SP tlog checkpoint against a verifier key, and
 * answers { origin, size (BigInt), root (Buffer), extensions }. Throws when the note is malformed
 * or carries no valid signature by that key.
 */
export function verifyCheckpoint(note, verifierKey) {
  const key = typeof verifierKey === "string" ? parseVerifierKey(verifierKey) : verifierKey;
  // The text is everything up to and including the newline before the last blank line; the
  // signature lines follow that blank line.
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new Error("note: no blank line before the signatures");
  const text = note.slice(0, split + 1);
  const sigBlock = note.slice(split + 2);
  if (!sigBlock.endsWith("\n")) throw new Error("note: the signature block does not end with a newline");
  let verified = false;
  for (const line of sigBlock.slice(0, -1).split("\n")) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Error(`note: malformed signature line ${JSON.stringify(line)}`);
    const [, name, b64] = m;
    const blob = Buffer.from(b64, "base64");
    if (name !== key.name || blob.length !== 68 || !blob.subarray(0, 4).equals(key.keyHash)) continue;
    if (cryptoVerify(null, Buffer.from(text, "utf8"), key.keyObject, blob.subarray(4))) verified = true;
  }
  if (!verified) throw new Error("note: no valid signature by the verifier key");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new Error("checkpoint: fewer than three lines");
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) throw new Error("checkpoint: empty origin");
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new Error("checkpoint: the tree size is not a decimal number");
  const root = Buffer.from(rootText, "base64");
  if (root.length !== 32 || root.toString("base64") !== rootText) throw new Error("checkpoint: the root hash is not base64 of 32 bytes");
  return { origin, size: BigInt(sizeText), root, extensions };
}
