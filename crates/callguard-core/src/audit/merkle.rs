//! RFC 6962 / RFC 9162 Merkle tree arithmetic: leaf and node hashes, the append-only frontier
//! (compact range) that makes each append O(log n), and inclusion and consistency proofs planned
//! as lists of perfect subtrees, so storage only has to answer "the hash of the perfect subtree
//! at (level, index)". Pure: no I/O.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || data)`.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree.
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A perfect subtree: `2^level` leaves starting at leaf `index * 2^level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subtree {
    pub level: u32,
    pub index: u64,
}

/// The perfect subtrees, left to right, whose fold is `MTH(D[start:end])`, for ranges that start
/// on a boundary of their own size class (every range RFC 6962's recursion produces).
#[must_use]
pub fn decompose(start: u64, end: u64) -> Vec<Subtree> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let remaining = end - at;
        let mut level = 63 - remaining.leading_zeros();
        // Stay aligned: a perfect subtree must start at a multiple of its size.
        while level > 0 && !at.is_multiple_of(1u64 << level) {
            level -= 1;
        }
        out.push(Subtree {
            level,
            index: at >> level,
        });
        at += 1u64 << level;
    }
    out
}

/// Folds perfect subtree hashes (left to right) into the RFC 6962 hash of their range.
#[must_use]
pub fn fold(hashes: &[Hash]) -> Option<Hash> {
    let mut it = hashes.iter().rev();
    let mut acc = *it.next()?;
    for h in it {
        acc = node_hash(h, &acc);
    }
    Some(acc)
}

fn largest_power_of_two_below(n: u64) -> u64 {
    // n >= 2
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The ranges whose hashes form the inclusion proof of leaf `index` in a tree of `size` leaves,
/// in proof order (nearest the leaf first). Each range is given as its perfect subtrees.
#[must_use]
pub fn inclusion_plan(index: u64, size: u64) -> Option<Vec<Vec<Subtree>>> {
    if index >= size {
        return None;
    }
    let mut out = Vec::new();
    path(index, 0, size, &mut out);
    Some(out)
}

fn path(m: u64, start: u64, n: u64, out: &mut Vec<Vec<Subtree>>) {
    if n <= 1 {
        return;
    }
    let k = largest_power_of_two_below(n);
    if m < k {
        path(m, start, k, out);
        out.push(decompose(start + k, start + n));
    } else {
        path(m - k, start + k, n - k, out);
        out.push(decompose(start, start + k));
    }
}

/// The ranges whose hashes form the consistency proof from `first` to `second` leaves.
#[must_use]
pub fn consistency_plan(first: u64, second: u64) -> Option<Vec<Vec<Subtree>>> {
    if first > second || first == 0 {
        return if first == 0 && second >= first {
            Some(Vec::new())
        } else {
            None
        };
    }
    let mut out = Vec::new();
    subproof(first, 0, second, true, &mut out);
    Some(out)
}

fn subproof(m: u64, start: u64, n: u64, whole: bool, out: &mut Vec<Vec<Subtree>>) {
    if m == n {
        if !whole {
            out.push(decompose(start, start + n));
        }
        return;
    }
    let k = largest_power_of_two_below(n);
    if m <= k {
        subproof(m, start, k, whole, out);
        out.push(decompose(start + k, start + n));
    } else {
        subproof(m - k, start + k, n - k, false, out);
        out.push(decompose(start, start + k));
    }
}

/// The frontier of a tree: the roots of the perfect subtrees of its binary decomposition, left
/// to right. Enough to append and to compute the root without reading anything else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    pub size: u64,
    /// One hash per set bit of `size`, highest level first.
    pub hashes: Vec<Hash>,
}

impl Frontier {
    /// Appends a leaf hash; returns the perfect subtrees completed by it (the leaf itself first,
    /// then each parent it completed), so that storage can keep them.
    pub fn append(&mut self, leaf: Hash) -> Vec<(Subtree, Hash)> {
        let mut completed = vec![(
            Subtree {
                level: 0,
                index: self.size,
            },
            leaf,
        )];
        let mut acc = leaf;
        let mut level = 0;
        let mut idx = self.size;
        // Every trailing one bit of the old size is a left sibling to merge with.
        while idx & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            acc = node_hash(&left, &acc);
            level += 1;
            idx >>= 1;
            completed.push((Subtree { level, index: idx }, acc));
        }
        self.hashes.push(acc);
        self.size += 1;
        completed
    }

    /// Appends a whole perfect subtree of `2^level` leaves whose hash is `hash` (a bulk
    /// verifier hashes those on several cores). The size must be a multiple of `2^level`;
    /// `None` when it is not. Returns the subtrees above `level` that it completed.
    pub fn append_subtree(&mut self, level: u32, hash: Hash) -> Option<Vec<(Subtree, Hash)>> {
        if level >= 63 || !self.size.is_multiple_of(1u64 << level) {
            return None;
        }
        let mut completed = Vec::new();
        let mut acc = hash;
        let mut at = level;
        let mut idx = self.size >> level;
        while idx & 1 == 1 {
            let Some(left) = self.hashes.pop() else { break };
            acc = node_hash(&left, &acc);
            at += 1;
            idx >>= 1;
            completed.push((
                Subtree {
                    level: at,
                    index: idx,
                },
                acc,
            ));
        }
        self.hashes.push(acc);
        self.size += 1u64 << level;
        Some(completed)
    }

    /// The RFC 6962 root hash of the tree.
    #[must_use]
    pub fn root(&self) -> Hash {
        fold(&self.hashes).unwrap_or_else(empty_root)
    }

    /// Serialised form for storage: 8-byte big-endian size, then the hashes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.size.to_be_bytes().to_vec();
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Parses [`Frontier::to_bytes`]; `None` when the bytes do not fit the size.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let size = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let rest = &bytes[8..];
        if rest.len() != 32 * size.count_ones() as usize {
            return None;
        }
        let hashes = rest
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok())
            .collect();
        Some(Self { size, hashes })
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
#[must_use]
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2).
#[must_use]
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    let mut proof: Vec<Hash> = proof.to_vec();
    if first.is_power_of_two() {
        proof.insert(0, *first_root);
    }
    let Some((first_hash, rest)) = proof.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first_hash, *first_hash);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    fr == *first_root && sr == *second_root && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The reference definition of RFC 6962 §2.1, straight from the text.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = largest_power_of_two_below(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    fn perfect(leaves: &[Hash], s: Subtree) -> Hash {
        let start = (s.index << s.level) as usize;
        mth(&leaves[start..start + (1usize << s.level)])
    }

    fn materialise(leaves: &[Hash], plan: &[Vec<Subtree>]) -> Vec<Hash> {
        plan.iter()
            .map(|parts| {
                fold(
                    &parts
                        .iter()
                        .map(|s| perfect(leaves, *s))
                        .collect::<Vec<_>>(),
                )
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_frontier_root_matches_the_reference_at_every_size() {
        let all = leaves(70);
        let mut f = Frontier::default();
        assert_eq!(f.root(), empty_root());
        let mut stored: HashMap<Subtree, Hash> = HashMap::new();
        for (i, l) in all.iter().enumerate() {
            for (s, h) in f.append(*l) {
                assert_eq!(h, perfect(&all, s));
                stored.insert(s, h);
            }
            assert_eq!(f.root(), mth(&all[..=i]), "size {}", i + 1);
            assert_eq!(Frontier::from_bytes(&f.to_bytes()).unwrap(), f);
        }
        // Every node a proof could ask for is among those the appends reported.
        for size in 1..=70u64 {
            for index in 0..size {
                for parts in inclusion_plan(index, size).unwrap() {
                    for s in parts {
                        assert!(stored.contains_key(&s), "{s:?} never stored");
                    }
                }
            }
        }
    }

    #[test]
    fn appending_a_perfect_subtree_equals_appending_its_leaves() {
        let all = leaves(64);
        for level in 0..=3u32 {
            let width = 1usize << level;
            let mut by_leaf = Frontier::default();
            let mut by_subtree = Frontier::default();
            for (k, chunk) in all.chunks(width).enumerate() {
                let mut above = Vec::new();
                for l in chunk {
                    above.extend(
                        by_leaf
                            .append(*l)
                            .into_iter()
                            .filter(|(s, _)| s.level > level),
                    );
                }
                let hash = perfect(
                    &all,
                    Subtree {
                        level,
                        index: k as u64,
                    },
                );
                assert_eq!(by_subtree.append_subtree(level, hash), Some(above));
                assert_eq!(by_subtree, by_leaf, "level {level}, subtree {k}");
            }
        }
        let mut f = Frontier::default();
        f.append(all[0]);
        assert_eq!(f.append_subtree(1, all[1]), None, "misaligned");
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_many_sizes() {
        let all = leaves(40);
        for size in 1..=40u64 {
            let root = mth(&all[..size as usize]);
            for index in 0..size {
                let proof = materialise(&all, &inclusion_plan(index, size).unwrap());
                assert!(
                    verify_inclusion(index, size, &all[index as usize], &proof, &root),
                    "{index}/{size}"
                );
                assert!(!verify_inclusion(
                    index,
                    size,
                    &leaf_hash(b"forged"),
                    &proof,
                    &root
                ));
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_between_all_sizes() {
        let all = leaves(33);
        for second in 1..=33u64 {
            for first in 1..=second {
                let proof = materialise(&all, &consistency_plan(first, second).unwrap());
                let r1 = mth(&all[..first as usize]);
                let r2 = mth(&all[..second as usize]);
                assert!(
                    verify_consistency(first, second, &r1, &r2, &proof),
                    "{first}->{second}"
                );
                if first < second {
                    assert!(!verify_consistency(
                        first,
                        second,
                        &leaf_hash(b"forged"),
                        &r2,
                        &proof
                    ));
                }
            }
        }
    }

    #[test]
    fn rfc_vectors_for_the_empty_tree_and_one_leaf() {
        assert_eq!(
            data_encoding::HEXLOWER.encode(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // SHA-256(0x00): the hash of an empty leaf.
        assert_eq!(
            data_encoding::HEXLOWER.encode(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn decompose_splits_into_aligned_perfect_subtrees() {
        assert_eq!(
            decompose(8, 15),
            vec![
                Subtree { level: 2, index: 2 },
                Subtree { level: 1, index: 6 },
                Subtree {
                    level: 0,
                    index: 14
                }
            ]
        );
        assert_eq!(decompose(0, 16), vec![Subtree { level: 4, index: 0 }]);
    }
}
