//! Synthetic registry numbers. Every valid NANP number has an index in the plan's own order
//! (712 area codes × 792 exchanges × 10,000 lines = 5,639,040,000); a seeded pseudo-random
//! permutation of those indexes (a Feistel network with cycle walking) puts them in a random
//! order. The registry of N numbers is the first N of that order, so its members are spread
//! uniformly over the plan, and every later one is a valid number known not to be on it.

/// Valid area codes: 2-9, then 0-8, then a digit, minus the eight N11 service codes.
const AREA_CODES: u64 = 712;
/// Valid exchanges: 2-9, then two digits, minus the eight N11 codes.
const EXCHANGES: u64 = 792;
const LINES: u64 = 10_000;
/// How many valid ten-digit NANP numbers there are.
pub const VALID: u64 = AREA_CODES * EXCHANGES * LINES;

/// The Feistel network permutes 34-bit values (two 17-bit halves); 2^34 > VALID.
const HALF_BITS: u32 = 17;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const ROUNDS: usize = 4;

pub struct Plan {
    areas: Vec<u64>,
    exchanges: Vec<u64>,
    keys: [u64; ROUNDS],
}

fn mix(mut z: u64) -> u64 {
    // splitmix64's finaliser.
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Plan {
    pub fn new(seed: u64) -> Self {
        let areas = (200..1000u64)
            .filter(|c| {
                let (d1, d2) = ((c / 10) % 10, c % 10);
                d1 != 9 && !(d1 == 1 && d2 == 1)
            })
            .collect();
        let exchanges = (200..1000u64)
            .filter(|c| !((c / 10) % 10 == 1 && c % 10 == 1))
            .collect();
        let mut keys = [0u64; ROUNDS];
        for (i, k) in keys.iter_mut().enumerate() {
            *k = mix(seed ^ mix(i as u64 + 1));
        }
        Self {
            areas,
            exchanges,
            keys,
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        let (mut left, mut right) = (x >> HALF_BITS, x & HALF_MASK);
        for k in &self.keys {
            let f = mix(right ^ k) & HALF_MASK;
            (left, right) = (right, left ^ f);
        }
        (left << HALF_BITS) | right
    }

    /// The `j`-th number of the random order (`j < VALID`).
    pub fn nth(&self, j: u64) -> u64 {
        // Cycle walking: the network permutes [0, 2^34); stepping until the value falls below
        // VALID permutes [0, VALID).
        let mut i = self.feistel(j);
        while i >= VALID {
            i = self.feistel(i);
        }
        let line = i % LINES;
        let exchange = (i / LINES) % EXCHANGES;
        let area = i / (LINES * EXCHANGES);
        let (a, e) = (
            self.areas.get(area as usize).copied().unwrap_or(0),
            self.exchanges.get(exchange as usize).copied().unwrap_or(0),
        );
        a * 10_000_000 + e * 10_000 + line
    }

    /// Numbers `from..from + out.len()` of the random order, on every core.
    pub fn fill(&self, from: u64, out: &mut [u64]) {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = out.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for (c, part) in out.chunks_mut(chunk).enumerate() {
                let first = from + (c * chunk) as u64;
                s.spawn(move || {
                    for (k, slot) in part.iter_mut().enumerate() {
                        *slot = self.nth(first + k as u64);
                    }
                });
            }
        });
    }
    /// `out[k]` = the `js[k]`-th number of the random order, on every core.
    pub fn map(&self, js: &[u64], out: &mut [u64]) {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = out.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            for (part, from) in out.chunks_mut(chunk).zip(js.chunks(chunk)) {
                s.spawn(move || {
                    for (slot, j) in part.iter_mut().zip(from) {
                        *slot = self.nth(*j);
                    }
                });
            }
        });
    }
}

/// A 10-digit number and its newline, as the registry file holds it.
pub fn line(n: u64, out: &mut [u8; 11]) {
    let mut v = n;
    for i in (0..10).rev() {
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out[10] = b'\n';
}

#[cfg(test)]
mod tests {
    use super::*;
    use callguard_core::dnc::nanp;
    use std::collections::HashSet;

    #[test]
    fn the_order_is_a_permutation_of_valid_numbers() {
        let plan = Plan::new(5);
        assert_eq!(plan.areas.len() as u64, AREA_CODES);
        assert_eq!(plan.exchanges.len() as u64, EXCHANGES);
        let mut seen = HashSet::new();
        for j in (0..200_000).chain(VALID - 1000..VALID) {
            let n = plan.nth(j);
            let mut text = [0u8; 11];
            line(n, &mut text);
            let digits = std::str::from_utf8(&text[..10]).unwrap();
            assert_eq!(nanp::normalise(digits), Ok(n), "{digits} is a valid number");
            assert!(seen.insert(n), "{n} came twice");
        }
        let mut par = vec![0u64; 10_000];
        plan.fill(123, &mut par);
        assert!(par
            .iter()
            .enumerate()
            .all(|(k, n)| *n == plan.nth(123 + k as u64)));
        assert_ne!(Plan::new(6).nth(0), plan.nth(0), "the seed matters");
    }
}
