#!/usr/bin/env node
// Command-line front of the independent verifier (rfc9162.mjs), for tests written in other
// languages. Reads one JSON object on stdin:
//   { "verifier_key": "name+hash+key",
//     "checkpoints": ["signed note", ...],
//     "entries": [entry objects as GET /api/v1/audit returns them],
//     "inclusion": [{"index", "tree_size", "hashes": [base64]}],
//     "consistency": [{"first", "second", "hashes": [base64]}] }
// and writes one JSON object on stdout with a verdict for every item:
//   { "ok": bool,
//     "checkpoints": [{"ok", "size", "root", "error"?}],
//     "roots": [{"size", "ok"}]            (each verified checkpoint against the entries given),
//     "inclusion": [{"index", "tree_size", "ok", "error"?}],
//     "consistency": [{"first", "second", "ok", "error"?}] }
// A root for a tree size comes from a verified checkpoint of that size, or else from the Merkle
// tree hash of the entries given (when they are contiguous from index 0 and cover that size).
// Exits 0 when every item checks out, 1 when any does not, 2 when the input is unusable.
import {
  entryLeaf,
  merkleRoot,
  parseVerifierKey,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from "./rfc9162.mjs";

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

function attempt(f) {
  try {
    return f();
  } catch (e) {
    return { ok: false, error: String(e.message || e) };
  }
}

async function main() {
  let input;
  try {
    input = JSON.parse(await readStdin());
  } catch (e) {
    process.stderr.write(`verify-cli: the input is not JSON: ${e.message}\n`);
    return 2;
  }
  let key;
  try {
    key = parseVerifierKey(input.verifier_key ?? "");
  } catch (e) {
    process.stderr.write(`verify-cli: ${e.message}\n`);
    return 2;
  }
  const entries = input.entries ?? [];
  const byIndex = new Map(entries.map((e) => [String(e.index), e]));
  const leaves = entries.map(entryLeaf);
  const contiguous = entries.every((e, i) => e.index === i);

  const signed = new Map(); // size (string) -> root
  const checkpoints = (input.checkpoints ?? []).map((note) =>
    attempt(() => {
      const cp = verifyCheckpoint(note, key);
      signed.set(cp.size.toString(), cp.root);
      return { ok: true, size: Number(cp.size), root: cp.root.toString("base64"), origin: cp.origin };
    }),
  );
  const rootFor = (size) => {
    const s = String(size);
    if (signed.has(s)) return signed.get(s);
    if (contiguous && Number(size) <= leaves.length) return merkleRoot(leaves.slice(0, Number(size)));
    throw new Error(`no verified checkpoint and not enough entries for tree size ${s}`);
  };
  const roots = [...signed.entries()]
    .filter(([s]) => contiguous && Number(s) <= leaves.length)
    .map(([s, root]) => ({ size: Number(s), ok: merkleRoot(leaves.slice(0, Number(s))).equals(root) }));
  const inclusion = (input.inclusion ?? []).map((p) => ({
    index: p.index,
    tree_size: p.tree_size,
    ...attempt(() => {
      const entry = byIndex.get(String(p.index));
      if (!entry) throw new Error(`no entry with index ${p.index} in the input`);
      return { ok: verifyInclusion(p.index, p.tree_size, entryLeaf(entry), p.hashes, rootFor(p.tree_size)) };
    }),
  }));
  const consistency = (input.consistency ?? []).map((p) => ({
    first: p.first,
    second: p.second,
    ...attempt(() => ({
      ok: verifyConsistency(p.first, p.second, rootFor(p.first), rootFor(p.second), p.hashes),
    })),
  }));
  const ok = [...checkpoints, ...roots, ...inclusion, ...consistency].every((x) => x.ok);
  process.stdout.write(JSON.stringify({ ok, checkpoints, roots, inclusion, consistency }) + "\n");
  return ok ? 0 : 1;
}

process.exitCode = await main();
