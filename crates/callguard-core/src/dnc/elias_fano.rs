//! Elias–Fano coding of a sorted set of integers below a universe U: each value is split into
//! `l = floor(log2(U/n))` low bits, stored packed, and a high part stored in unary in a bit
//! vector of `n + U/2^l + 1` bits. That is within a few percent of the information-theoretic
//! floor: for 253 million ten-digit numbers, about 0.9 bytes per number, where a 10-digit
//! bitmap takes 1.25 GB and a sorted u64 array 2 GB. Membership is a `select0` on the high bits
//! (with a sampled index) and a look at one bucket's low bits, all compared at once.
//!
//! A single look-up waits for three reads from memory one after the other (index, high bits,
//! low bits), so it is bound by memory latency. Batches avoid that: an unsorted batch
//! ([`EliasFano::contains_many`]) issues the reads of many look-ups together, and a sorted one
//! ([`EliasFano::contains_sorted`]) walks the high bits once from left to right.

/// Every `SAMPLE`-th zero of the high bits is indexed.
const SAMPLE: u64 = 128;
/// Look-ups of an unsorted batch are made this many at a time, each step's memory reads for all
/// of them issued before any is needed.
const GROUP: usize = 32;

/// An immutable Elias–Fano set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EliasFano {
    n: u64,
    universe: u64,
    low_bits: u32,
    lows: Vec<u64>,
    highs: Vec<u64>,
    /// For zero number `k * SAMPLE` of the high bits: how many members come before it, so its
    /// position is that plus `k * SAMPLE`. 32 bits keep the index at 0.04 bytes per member at
    /// national density.
    samples: Vec<u32>,
    /// A one at the bottom of every whole `low_bits`-wide field of a word, to compare a bucket's
    /// low parts with one subtraction.
    field_ones: u64,
    /// How many whole fields fit in a word (0 when there are no low bits).
    fields_per_word: u64,
}

/// Values were not strictly increasing, or not below the universe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("value {value} is not below the universe {universe}")]
    OutOfRange { value: u64, universe: u64 },
    #[error("values must be strictly increasing (saw {previous} then {value})")]
    NotIncreasing { previous: u64, value: u64 },
    #[error("the builder expected {expected} values but got {got}")]
    WrongCount { expected: u64, got: u64 },
    #[error("a set holds at most {} values, not {n}", u32::MAX)]
    TooMany { n: u64 },
}

fn low_bits_for(n: u64, universe: u64) -> u32 {
    if n == 0 || universe <= n {
        0
    } else {
        63 - (universe / n).leading_zeros()
    }
}

/// Builds an [`EliasFano`] from `n` strictly increasing values pushed one by one (so a huge
/// set never has to exist in any other form).
pub struct Builder {
    n: u64,
    universe: u64,
    low_bits: u32,
    lows: Vec<u64>,
    highs: Vec<u64>,
    pushed: u64,
    last: Option<u64>,
}

impl Builder {
    #[must_use]
    pub fn new(n: u64, universe: u64) -> Self {
        let low_bits = low_bits_for(n, universe);
        let low_words = (n * u64::from(low_bits)).div_ceil(64) as usize;
        let high_bits = n + (universe >> low_bits) + 1;
        Self {
            n,
            universe,
            low_bits,
            lows: vec![0; low_words],
            highs: vec![0; high_bits.div_ceil(64) as usize],
            pushed: 0,
            last: None,
        }
    }

    pub fn push(&mut self, value: u64) -> Result<(), BuildError> {
        if value >= self.universe {
            return Err(BuildError::OutOfRange {
                value,
                universe: self.universe,
            });
        }
        if let Some(previous) = self.last {
            if value <= previous {
                return Err(BuildError::NotIncreasing { previous, value });
            }
        }
        if self.pushed >= self.n {
            return Err(BuildError::WrongCount {
                expected: self.n,
                got: self.pushed + 1,
            });
        }
        let i = self.pushed;
        let l = u64::from(self.low_bits);
        if l > 0 {
            let low = value & ((1u64 << l) - 1);
            let bit = i * l;
            let (w, o) = ((bit / 64) as usize, bit % 64);
            self.lows[w] |= low << o;
            if o + l > 64 {
                self.lows[w + 1] |= low >> (64 - o);
            }
        }
        let pos = (value >> l) + i;
        self.highs[(pos / 64) as usize] |= 1u64 << (pos % 64);
        self.pushed += 1;
        self.last = Some(value);
        Ok(())
    }

    pub fn finish(self) -> Result<EliasFano, BuildError> {
        if self.pushed != self.n {
            return Err(BuildError::WrongCount {
                expected: self.n,
                got: self.pushed,
            });
        }
        EliasFano::assemble(self.n, self.universe, self.low_bits, self.lows, self.highs)
    }
}

/// Members before every `SAMPLE`-th zero of the high bits (`bits` of them are in use).
fn sample_zeros(highs: &[u64], bits: u64) -> Vec<u32> {
    let mut samples = Vec::with_capacity((bits / SAMPLE + 1) as usize);
    let mut zeros = 0u64;
    for (w, word) in highs.iter().enumerate() {
        let mut z = !word;
        let base = w as u64 * 64;
        if base + 64 > bits {
            let valid = bits.saturating_sub(base);
            z &= if valid >= 64 {
                u64::MAX
            } else {
                (1u64 << valid) - 1
            };
        }
        let count = u64::from(z.count_ones());
        // Record each sampled zero that falls inside this word.
        let mut next = zeros.div_ceil(SAMPLE) * SAMPLE;
        while next < zeros + count {
            let pos = base + u64::from(select_in_word(z, (next - zeros) as u32));
            // The caller checked that the members fit in 32 bits.
            samples.push(u32::try_from(pos - next).unwrap_or(u32::MAX));
            next += SAMPLE;
        }
        zeros += count;
    }
    samples
}

const ONES_STEP_8: u64 = 0x0101_0101_0101_0101;
const MSBS_STEP_8: u64 = 0x8080_8080_8080_8080;

/// `SELECT_IN_BYTE[b * 8 + k]`: position of the `k`-th set bit of byte `b`.
const SELECT_IN_BYTE: [u8; 2048] = {
    let mut table = [0u8; 2048];
    let mut b = 0;
    while b < 256 {
        let (mut k, mut bit) = (0, 0);
        while bit < 8 {
            if b & (1 << bit) != 0 {
                table[b * 8 + k] = bit as u8;
                k += 1;
            }
            bit += 1;
        }
        b += 1;
    }
    table
};

/// Byte `i` of the result counts the set bits of bytes `0..=i` of `word`; the top byte is the
/// word's popcount (at most 64, so no byte carries into the next).
fn byte_prefix(word: u64) -> u64 {
    let mut s = word - ((word >> 1) & 0x5555_5555_5555_5555);
    s = (s & 0x3333_3333_3333_3333) + ((s >> 2) & 0x3333_3333_3333_3333);
    s = (s + (s >> 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    s.wrapping_mul(ONES_STEP_8)
}

/// Position of the `k`-th set bit (0-indexed) of `word`; `k` must be below its popcount.
/// Broadword (Vigna, "Broadword implementation of rank/select queries", 2008): byte-wise prefix
/// counts locate the byte and a table the bit, with no loop over the bits, so a look-up costs
/// the same wherever its bucket starts.
fn select_in_word(word: u64, k: u32) -> u32 {
    select_with_prefix(word, byte_prefix(word), u64::from(k))
}

/// [`select_in_word`] with the word's [`byte_prefix`] already at hand.
fn select_with_prefix(word: u64, prefix: u64, k: u64) -> u32 {
    let k = k & 63;
    // High bit of byte i set where prefix_i <= k; their number is the byte holding the bit.
    let at_most_k = ((k * ONES_STEP_8) | MSBS_STEP_8).wrapping_sub(prefix) & MSBS_STEP_8;
    let byte = ((at_most_k >> 7).wrapping_mul(ONES_STEP_8) >> 56) & 7;
    let shift = byte * 8;
    let before = ((prefix << 8) >> shift) & 0xFF;
    let in_byte = ((word >> shift) & 0xFF) * 8 + (k.wrapping_sub(before) & 7);
    shift as u32 + u32::from(SELECT_IN_BYTE[in_byte as usize])
}

/// Reads `count` little-endian words; `None` at the end of the input.
fn read_words(r: &mut impl std::io::Read, count: usize) -> std::io::Result<Option<Vec<u64>>> {
    let mut words = Vec::with_capacity(count);
    let mut buf = vec![0u8; 1 << 16];
    while words.len() < count {
        let k = (buf.len() / 8).min(count - words.len());
        let Some(chunk) = buf.get_mut(..k * 8) else {
            return Ok(None);
        };
        match r.read_exact(chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        words.extend(
            chunk
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])),
        );
    }
    Ok(Some(words))
}

impl EliasFano {
    fn assemble(
        n: u64,
        universe: u64,
        low_bits: u32,
        lows: Vec<u64>,
        highs: Vec<u64>,
    ) -> Result<Self, BuildError> {
        if n > u64::from(u32::MAX) {
            return Err(BuildError::TooMany { n });
        }
        let samples = sample_zeros(&highs, n + (universe >> low_bits) + 1);
        let (field_ones, fields_per_word) = if low_bits == 0 {
            (0, 0)
        } else {
            let per = 64 / u64::from(low_bits);
            let ones = (0..per).fold(0u64, |acc, j| acc | 1 << (j * u64::from(low_bits)));
            (ones, per)
        };
        Ok(Self {
            n,
            universe,
            low_bits,
            lows,
            highs,
            samples,
            field_ones,
            fields_per_word,
        })
    }

    /// Builds from a sorted slice of distinct values.
    pub fn from_sorted(values: &[u64], universe: u64) -> Result<Self, BuildError> {
        let mut b = Builder::new(values.len() as u64, universe);
        for v in values {
            b.push(*v)?;
        }
        b.finish()
    }

    #[must_use]
    pub fn len(&self) -> u64 {
        self.n
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    #[must_use]
    pub fn universe(&self) -> u64 {
        self.universe
    }

    /// Bytes of memory the set occupies (its arrays).
    #[must_use]
    pub fn size_in_bytes(&self) -> u64 {
        8 * (self.lows.len() + self.highs.len()) as u64 + 4 * self.samples.len() as u64
    }

    fn low(&self, i: u64) -> u64 {
        let l = u64::from(self.low_bits);
        if l == 0 {
            return 0;
        }
        let bit = i * l;
        let (w, o) = ((bit / 64) as usize, bit % 64);
        let mut v = self.lows[w] >> o;
        if o + l > 64 {
            v |= self.lows[w + 1] << (64 - o);
        }
        v & ((1u64 << l) - 1)
    }

    /// 64 bits of the packed low parts from member `i` on.
    fn lows_window(&self, i: u64) -> u64 {
        let bit = i * u64::from(self.low_bits);
        let (w, o) = ((bit / 64) as usize, (bit % 64) as u32);
        let first = self.lows.get(w).copied().unwrap_or(0);
        let next = self.lows.get(w + 1).copied().unwrap_or(0);
        // Two shifts, so that an offset of 0 shifts `next` out entirely.
        (first >> o) | ((next << 1) << (63 - o))
    }

    fn low_mask(&self) -> u64 {
        if self.low_bits == 0 {
            0
        } else {
            (1u64 << self.low_bits) - 1
        }
    }

    /// Position of zero number `k` in the high bits.
    fn select0(&self, k: u64) -> Option<u64> {
        let sample = k / SAMPLE;
        let start = sample * SAMPLE + u64::from(*self.samples.get(sample as usize)?);
        self.select0_near(start, k - sample * SAMPLE)
    }

    /// [`EliasFano::select0_from`] for the common case of a zero within four words: those are
    /// counted side by side and the word picked by comparisons, with no loop whose length the
    /// processor must guess (a wrong guess costs as much as the rest of the look-up).
    fn select0_near(&self, start: u64, remaining: u64) -> Option<u64> {
        let w = (start / 64) as usize;
        let word = |i: usize| !self.highs.get(w + i).copied().unwrap_or(u64::MAX);
        let z = [
            word(0) & (u64::MAX << (start % 64)),
            word(1),
            word(2),
            word(3),
        ];
        let p = z.map(byte_prefix);
        let before = [
            0,
            p[0] >> 56,
            (p[0] >> 56) + (p[1] >> 56),
            (p[0] >> 56) + (p[1] >> 56) + (p[2] >> 56),
        ];
        let all = before[3] + (p[3] >> 56);
        if remaining >= all {
            return self.select0_from((w as u64 + 4) * 64, remaining - all);
        }
        let i = usize::from(remaining >= before[1])
            + usize::from(remaining >= before[2])
            + usize::from(remaining >= before[3]);
        Some((w + i) as u64 * 64 + u64::from(select_with_prefix(z[i], p[i], remaining - before[i])))
    }

    /// Position of the `remaining`-th zero (0-indexed) at or after bit `start`, which is a zero.
    fn select0_from(&self, start: u64, mut remaining: u64) -> Option<u64> {
        let mut w = (start / 64) as usize;
        let mut z = !self.highs.get(w)? & (u64::MAX << (start % 64));
        loop {
            let c = u64::from(z.count_ones());
            if remaining < c {
                return Some(w as u64 * 64 + u64::from(select_in_word(z, remaining as u32)));
            }
            remaining -= c;
            w += 1;
            z = !*self.highs.get(w)?;
        }
    }

    /// Whether the bucket whose members start at bit `pos` of the high bits (member number `i`
    /// first) holds the low part `low`. A bucket ends at the next zero.
    fn bucket_holds(&self, pos: u64, i: u64, low: u64) -> bool {
        self.holds(i, self.ones_from(pos), low)
    }

    /// Whether members `i..i + len` (one bucket) include the low part `low`. A bucket that fits
    /// in a word is compared all at once: a field of `fields ^ low` is zero where a member
    /// matches, and subtracting a one from every field sets the top bit of the lowest zero field
    /// (borrows only travel upwards, past a zero field). Members of a longer bucket (a whole
    /// exchange on the registry) are in order of their low parts and searched by halves.
    fn holds(&self, i: u64, len: u64, low: u64) -> bool {
        let l = u64::from(self.low_bits);
        if l == 0 {
            return len > 0;
        }
        if len <= self.fields_per_word {
            let x = self.lows_window(i) ^ low.wrapping_mul(self.field_ones);
            let zero_fields = x.wrapping_sub(self.field_ones) & !x & (self.field_ones << (l - 1));
            let bits = len * l;
            // The first `len` fields (all 64 bits when they fill the word).
            let mask = ((1u64 << (bits & 63)) - 1) | 0u64.wrapping_sub(bits >> 6);
            return zero_fields & mask != 0;
        }
        let (mut from, mut to) = (i, i + len);
        while to - from > 8 {
            let mid = from + (to - from) / 2;
            if self.low(mid) < low {
                from = mid + 1;
            } else {
                to = mid + 1;
            }
        }
        (from..to).any(|j| self.low(j) == low)
    }

    /// The number of consecutive ones of the high bits from bit `pos` on.
    fn ones_from(&self, pos: u64) -> u64 {
        let (mut w, mut offset, mut len) = ((pos / 64) as usize, pos % 64, 0);
        while let Some(word) = self.highs.get(w) {
            let run = u64::from((word >> offset).trailing_ones());
            len += run;
            if run < 64 - offset {
                break;
            }
            w += 1;
            offset = 0;
        }
        len
    }

    /// Whether `value` is in the set.
    #[must_use]
    pub fn contains(&self, value: u64) -> bool {
        if value >= self.universe || self.n == 0 {
            return false;
        }
        let h = value >> self.low_bits;
        // Bucket h starts just after zero h-1 of the high bits; the h zeros before it leave
        // `start - h` members before it.
        let start = if h == 0 {
            0
        } else {
            match self.select0(h - 1) {
                Some(p) => p + 1,
                None => return false,
            }
        };
        self.bucket_holds(start, start - h, value & self.low_mask())
    }

    /// Membership of many values in any order: `out[k]` tells whether `values[k]` is in the set
    /// (`out` as long as `values`; extra entries are left alone). Look-ups go in groups, and each
    /// step's memory reads (index, high bits, low bits) are issued for the whole group before
    /// any is used, so the waits for memory overlap instead of adding up.
    pub fn contains_many(&self, values: &[u64], out: &mut [bool]) {
        for (group, answers) in values.chunks(GROUP).zip(out.chunks_mut(GROUP)) {
            self.contains_group(group, answers);
        }
    }

    fn contains_group(&self, values: &[u64], out: &mut [bool]) {
        let l = self.low_bits;
        let last_bucket = self.universe >> l;
        // 1. The index entry before each bucket.
        let mut from = [0u64; GROUP];
        for (f, v) in from.iter_mut().zip(values) {
            let t = (v >> l).min(last_bucket).saturating_sub(1);
            let s = t / SAMPLE;
            *f = s * SAMPLE + u64::from(self.samples.get(s as usize).copied().unwrap_or(0));
        }
        // 2. The high bits there, and the next cache line, where a scan often ends.
        let mut touched = 0u64;
        for f in &from[..values.len()] {
            let w = (f / 64) as usize;
            touched ^= self.highs.get(w).copied().unwrap_or(0);
            touched ^= self.highs.get(w + 8).copied().unwrap_or(0);
        }
        // 3. Where each bucket starts (u64::MAX: out of range).
        let mut start = [u64::MAX; GROUP];
        for ((s, f), v) in start.iter_mut().zip(&from).zip(values) {
            let h = v >> l;
            if *v >= self.universe {
                continue;
            }
            *s = if h == 0 {
                0
            } else {
                match self.select0_near(*f, (h - 1) % SAMPLE) {
                    Some(p) => p + 1,
                    None => continue,
                }
            };
        }
        // 4. The low bits of each bucket. A loop of its own, short enough for the processor
        //    to have all of these reads in flight at once.
        for (s, v) in start.iter().zip(values) {
            let w = (s.wrapping_sub(v >> l).wrapping_mul(u64::from(l)) / 64) as usize;
            touched ^= self.lows.get(w).copied().unwrap_or(0);
            touched ^= self.lows.get(w + 1).copied().unwrap_or(0);
        }
        std::hint::black_box(touched);
        // 5. The answers, from what is now in the cache.
        let low_mask = self.low_mask();
        for ((answer, s), v) in out.iter_mut().zip(&start).zip(values) {
            *answer = *s != u64::MAX && self.bucket_holds(*s, *s - (v >> l), v & low_mask);
        }
    }

    /// Membership of values in increasing order, for scrubbing a sorted call list: `out[k]`
    /// tells whether `values[k]` is in the set (`out` as long as `values`). The answers walk along
    /// the high bits once from left to right, a word at a time, instead of each starting from a
    /// sample, so a large batch costs about one pass over the set. Values out of order are still
    /// answered correctly, through the index.
    pub fn contains_sorted(&self, values: &[u64], out: &mut [bool]) {
        const CHUNK: usize = 256;
        let l = self.low_bits;
        let low_mask = self.low_mask();
        let mut walk = Walk::new(self);
        let mut buckets = [(u64::MAX, 0u64); CHUNK];
        for (chunk, answers) in values.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
            // Where each bucket starts and how many members it has: this part follows the walk,
            // one value after the other...
            for (b, v) in buckets.iter_mut().zip(chunk) {
                *b = if *v >= self.universe {
                    (u64::MAX, 0)
                } else {
                    walk.bucket(v >> l).unwrap_or((u64::MAX, 0))
                };
            }
            // ...then their low bits, where the values do not wait for each other.
            for ((answer, (start, len)), v) in answers.iter_mut().zip(&buckets).zip(chunk) {
                *answer = *start != u64::MAX && self.holds(*start - (v >> l), *len, v & low_mask);
            }
        }
    }

    /// The values in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        let l = self.low_bits;
        let mut i = 0u64;
        let mut w = 0usize;
        let mut word = self.highs.first().copied().unwrap_or(0);
        std::iter::from_fn(move || {
            if i >= self.n {
                return None;
            }
            while word == 0 {
                w += 1;
                word = *self.highs.get(w)?;
            }
            let pos = w as u64 * 64 + u64::from(word.trailing_zeros());
            word &= word - 1;
            let value = ((pos - i) << l) | self.low(i);
            i += 1;
            Some(value)
        })
    }

    /// Serialises to bytes: magic, counts, then the arrays little-endian.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_in_bytes() as usize + 64);
        out.extend_from_slice(MAGIC);
        for v in [
            self.n,
            self.universe,
            u64::from(self.low_bits),
            self.lows.len() as u64,
            self.highs.len() as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for w in self.lows.iter().chain(self.highs.iter()) {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Parses [`EliasFano::to_bytes`]; `None` when the bytes are not such a set.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Self::read_from(bytes, bytes.len() as u64).ok().flatten()
    }

    /// Reads what [`EliasFano::to_bytes`] wrote, `len` bytes in all, straight into the set's
    /// arrays, so loading a registry never holds a second copy of it. `Ok(None)` when the bytes
    /// are not such a set; the header is checked against `len` before anything is allocated.
    pub fn read_from(mut r: impl std::io::Read, len: u64) -> std::io::Result<Option<Self>> {
        let mut head = [0u8; 48];
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        if head.get(..8) != Some(MAGIC) {
            return Ok(None);
        }
        let word = |i: usize| -> u64 {
            head.get(8 + i * 8..16 + i * 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_le_bytes)
        };
        let (n, universe, low_bits, nl, nh) = (word(0), word(1), word(2), word(3), word(4));
        let Some(low_bits) = u32::try_from(low_bits)
            .ok()
            .filter(|l| *l == low_bits_for(n, universe))
        else {
            return Ok(None);
        };
        let high_bits = n
            .checked_add(universe >> low_bits)
            .and_then(|b| b.checked_add(1));
        let expected_len = nl
            .checked_add(nh)
            .and_then(|w| w.checked_add(6))
            .and_then(|w| w.checked_mul(8));
        if n > u64::from(u32::MAX)
            || expected_len != Some(len)
            || n.checked_mul(u64::from(low_bits)).map(|b| b.div_ceil(64)) != Some(nl)
            || high_bits.map(|b| b.div_ceil(64)) != Some(nh)
        {
            return Ok(None);
        }
        let (Some(lows), Some(highs)) = (
            read_words(&mut r, nl as usize)?,
            read_words(&mut r, nh as usize)?,
        ) else {
            return Ok(None);
        };
        if highs.iter().map(|w| u64::from(w.count_ones())).sum::<u64>() != n {
            return Ok(None);
        }
        Ok(Self::assemble(n, universe, low_bits, lows, highs).ok())
    }
}

const MAGIC: &[u8] = b"CGEF0001";

/// A walk along the high bits from left to right, for [`EliasFano::contains_sorted`].
struct Walk<'a> {
    set: &'a EliasFano,
    /// The walk is at word `word` of the high bits, whose zeros are the ones of `zeros` (with
    /// their [`byte_prefix`] in `prefix`), with `zeros_before` zeros in the words before it.
    word: usize,
    zeros: u64,
    prefix: u64,
    zeros_before: u64,
}

impl<'a> Walk<'a> {
    fn new(set: &'a EliasFano) -> Self {
        let zeros = !set.highs.first().copied().unwrap_or(u64::MAX);
        Self {
            set,
            word: 0,
            zeros,
            prefix: byte_prefix(zeros),
            zeros_before: 0,
        }
    }

    fn enter(&mut self, word: usize) -> Option<()> {
        self.word = word;
        self.zeros = !*self.set.highs.get(word)?;
        self.prefix = byte_prefix(self.zeros);
        Some(())
    }

    /// Position of zero number `t` of the high bits; the walk moves to its word.
    fn zero(&mut self, t: u64) -> Option<u64> {
        if t < self.zeros_before || t - self.zeros_before >= 2 * SAMPLE {
            // Behind the walk, or far ahead of it: start again from the sample before `t`.
            let s = t / SAMPLE;
            let pos = s * SAMPLE + u64::from(*self.set.samples.get(s as usize)?);
            self.enter((pos / 64) as usize)?;
            let below = self.zeros & ((1u64 << (pos % 64)) - 1);
            self.zeros_before = s * SAMPLE - u64::from(below.count_ones());
        }
        while t >= self.zeros_before + (self.prefix >> 56) {
            self.zeros_before += self.prefix >> 56;
            self.enter(self.word + 1)?;
        }
        let bit = select_with_prefix(self.zeros, self.prefix, t - self.zeros_before);
        Some(self.word as u64 * 64 + u64::from(bit))
    }

    /// Where bucket `h` starts in the high bits, and how many members it has.
    fn bucket(&mut self, h: u64) -> Option<(u64, u64)> {
        if h == 0 {
            return Some((0, self.set.ones_from(0)));
        }
        let start = self.zero(h - 1)? + 1;
        // The members are the ones up to the next zero, nearly always in the same word.
        let offset = start % 64;
        if start / 64 == self.word as u64 {
            let run = u64::from((!self.zeros >> offset).trailing_ones());
            if run < 64 - offset {
                return Some((start, run));
            }
        }
        Some((start, self.set.ones_from(start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;

    fn random_set(seed: u64, n: usize, universe: u64) -> Vec<u64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut s = BTreeSet::new();
        while s.len() < n {
            s.insert(rng.gen_range(0..universe));
        }
        s.into_iter().collect()
    }

    #[test]
    fn membership_matches_a_reference_set_across_densities() {
        for (seed, n, universe) in [
            (1, 0, 100),
            (2, 1, 10),
            (3, 1000, 1_000_000),
            (4, 5000, 10_000_000_000),
            (5, 2000, 2100),
            (6, 300, 300),
        ] {
            let values = random_set(seed, n, universe);
            let ef = EliasFano::from_sorted(&values, universe).unwrap();
            let set: BTreeSet<u64> = values.iter().copied().collect();
            assert_eq!(ef.len(), n as u64);
            assert_eq!(ef.iter().collect::<Vec<_>>(), values, "decode in order");
            for v in &values {
                assert!(ef.contains(*v), "{v} in set (n={n})");
            }
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 100);
            for _ in 0..20_000 {
                let probe = rng.gen_range(0..universe);
                assert_eq!(ef.contains(probe), set.contains(&probe), "probe {probe}");
            }
            assert!(!ef.contains(universe));
            assert!(!ef.contains(u64::MAX));
        }
    }

    #[test]
    fn select_in_a_word_finds_every_set_bit() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut words = vec![
            0,
            1,
            u64::MAX,
            1 << 63,
            0x8000_0000_0000_0001,
            0x00FF_0000_0000_FF00,
        ];
        words.extend((0..2000).map(|_| rng.gen::<u64>()));
        words.extend((0..2000).map(|_| rng.gen::<u64>() & rng.gen::<u64>() & rng.gen::<u64>()));
        for w in words {
            let positions: Vec<u32> = (0..64).filter(|b| (w >> b) & 1 == 1).collect();
            for (k, p) in positions.iter().enumerate() {
                assert_eq!(select_in_word(w, k as u32), *p, "word {w:#x}, k {k}");
            }
        }
    }

    #[test]
    fn a_sorted_batch_gets_the_answers_of_a_reference_set() {
        for (seed, n, universe) in [
            (21, 0, 100),
            (22, 1, 10),
            (23, 3000, 1_000_000),
            (24, 20_000, 10_000_000_000),
            (25, 2000, 2100),
            (26, 300, 300),
            (27, 50_000, 2_000_000),
        ] {
            let values = random_set(seed, n, universe);
            let ef = EliasFano::from_sorted(&values, universe).unwrap();
            let set: BTreeSet<u64> = values.iter().copied().collect();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 100);
            // Members, their neighbours, random values and repeats, both ends, out of range.
            let mut batch: Vec<u64> = (0..30_000).map(|_| rng.gen_range(0..universe)).collect();
            for v in values.iter().step_by(3) {
                batch.extend([*v, v.saturating_sub(1), v + 1, *v]);
            }
            batch.extend([0, universe - 1, universe, u64::MAX]);
            batch.sort_unstable();
            let sparse: Vec<u64> = batch.iter().step_by(997).copied().collect();
            let reversed: Vec<u64> = batch.iter().rev().step_by(7).copied().collect();
            // Dense batches, sparse ones making long jumps through the index, and out of order.
            for (what, queries) in [("dense", batch), ("sparse", sparse), ("reversed", reversed)] {
                let mut out = vec![false; queries.len()];
                ef.contains_sorted(&queries, &mut out);
                for (q, got) in queries.iter().zip(&out) {
                    assert_eq!(*got, set.contains(q), "{what}: {q} (n={n})");
                }
            }
        }
    }

    #[test]
    fn an_unsorted_batch_gets_the_answers_of_single_look_ups() {
        for (seed, n, universe) in [
            (31, 0, 100),
            (32, 1, 10),
            (33, 3000, 1_000_000),
            (34, 20_000, 10_000_000_000),
            (35, 2000, 2100),
            (36, 300, 300),
        ] {
            let values = random_set(seed, n, universe);
            let ef = EliasFano::from_sorted(&values, universe).unwrap();
            let set: BTreeSet<u64> = values.iter().copied().collect();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 100);
            let mut batch: Vec<u64> = (0..5000).map(|_| rng.gen_range(0..universe)).collect();
            batch.extend(
                values
                    .iter()
                    .step_by(5)
                    .flat_map(|v| [*v, v + 1, v.saturating_sub(1)]),
            );
            batch.extend([0, universe - 1, universe, u64::MAX]);
            // Shuffled, and not a multiple of the group size.
            for i in (1..batch.len()).rev() {
                batch.swap(i, rng.gen_range(0..=i));
            }
            batch.push(values.first().copied().unwrap_or(7));
            let mut out = vec![false; batch.len()];
            ef.contains_many(&batch, &mut out);
            for (q, got) in batch.iter().zip(&out) {
                assert_eq!(*got, set.contains(q), "{q} (n={n})");
            }
        }
    }

    #[test]
    fn buckets_that_fill_a_word_of_low_bits_exactly_or_overflow_it() {
        for l in [1u64, 2, 3, 4, 5, 7, 8, 13, 16, 21, 32] {
            let universe = 64u64 << l;
            let per = 64 / l;
            let mut values = BTreeSet::new();
            // Bucket 3 holds a word's worth of members, bucket 5 one more, bucket 7 one fewer.
            for (bucket, want) in [(3u64, per), (5, per + 1), (7, per.saturating_sub(1))] {
                let room = 1u64 << l;
                let step = (room / want.max(1)).max(1);
                for j in 0..want.min(room) {
                    values.insert((bucket << l) + j * step);
                }
            }
            // One member in each other bucket until there are 64, so that l stays as chosen.
            let mut b = 0u64;
            while values.len() < 64 {
                if ![3, 5, 7].contains(&b) {
                    values.insert((b << l) + (b % (1 << l)));
                }
                b += 1;
            }
            let values: Vec<u64> = values.into_iter().take(64).collect();
            let ef = EliasFano::from_sorted(&values, universe).unwrap();
            assert_eq!(u64::from(ef.low_bits), l);
            let set: BTreeSet<u64> = values.iter().copied().collect();
            let mut probes: Vec<u64> = values
                .iter()
                .flat_map(|v| [v.saturating_sub(1), *v, v + 1])
                .collect();
            probes.extend((2u64 << l..8u64 << l).step_by(((1u64 << l) / 64).max(1) as usize));
            probes.sort_unstable();
            let mut many = vec![false; probes.len()];
            ef.contains_many(&probes, &mut many);
            let mut sorted = vec![false; probes.len()];
            ef.contains_sorted(&probes, &mut sorted);
            for ((q, m), s) in probes.iter().zip(&many).zip(&sorted) {
                let want = set.contains(q);
                assert_eq!(ef.contains(*q), want, "l={l} single {q}");
                assert_eq!(*m, want, "l={l} many {q}");
                assert_eq!(*s, want, "l={l} sorted {q}");
            }
        }
    }

    #[test]
    fn a_sorted_batch_over_dense_clusters_is_answered_right() {
        // Runs of consecutive numbers (a whole exchange on the registry) fill buckets to the brim.
        let universe = 10_000_000_000;
        let mut values: Vec<u64> = Vec::new();
        for block in [2_025_550_000u64, 3_035_550_000, 9_899_990_000] {
            values.extend(block..block + 10_000);
        }
        values.extend((0..1000u64).map(|i| 4_000_000_000 + i * 1_000_003));
        values.sort_unstable();
        let ef = EliasFano::from_sorted(&values, universe).unwrap();
        let set: BTreeSet<u64> = values.iter().copied().collect();
        let mut batch: Vec<u64> = values.iter().flat_map(|v| [v - 1, *v, v + 1]).collect();
        batch.sort_unstable();
        let mut sorted = vec![false; batch.len()];
        ef.contains_sorted(&batch, &mut sorted);
        let mut many = vec![false; batch.len()];
        ef.contains_many(&batch, &mut many);
        for ((q, s), m) in batch.iter().zip(&sorted).zip(&many) {
            assert_eq!(*s, set.contains(q), "sorted {q}");
            assert_eq!(*m, set.contains(q), "many {q}");
            assert_eq!(ef.contains(*q), set.contains(q), "single {q}");
        }
    }

    #[test]
    fn neighbours_of_members_are_told_apart() {
        let values: Vec<u64> = (0..10_000u64).map(|i| 2_015_550_100 + i * 7).collect();
        let ef = EliasFano::from_sorted(&values, 10_000_000_000).unwrap();
        for v in &values {
            assert!(ef.contains(*v));
            assert!(!ef.contains(v + 1));
            assert!(!ef.contains(v - 1));
        }
    }

    #[test]
    fn ten_digit_numbers_take_under_a_byte_each_at_national_density() {
        // 1% of the US registry's density in miniature: n/U ≈ 253M/10^10.
        let n = 253_000;
        let universe = 10_000_000_000 / 1000;
        let ef = EliasFano::from_sorted(&random_set(7, n, universe), universe).unwrap();
        let per = ef.size_in_bytes() as f64 / n as f64;
        assert!(per < 0.95, "{per} bytes per number");
    }

    #[test]
    fn serialisation_round_trips_and_rejects_damage() {
        let values = random_set(8, 3000, 10_000_000_000);
        let ef = EliasFano::from_sorted(&values, 10_000_000_000).unwrap();
        let bytes = ef.to_bytes();
        assert_eq!(EliasFano::from_bytes(&bytes).unwrap(), ef);
        assert!(EliasFano::from_bytes(&bytes[..bytes.len() - 8]).is_none());
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x80;
        assert!(
            EliasFano::from_bytes(&flipped).is_none(),
            "a changed count of members is caught"
        );
        assert!(EliasFano::from_bytes(b"not a set").is_none());
    }

    #[test]
    fn a_set_read_from_a_stream_is_the_set_written() {
        let values = random_set(9, 100_000, 10_000_000_000);
        let ef = EliasFano::from_sorted(&values, 10_000_000_000).unwrap();
        let bytes = ef.to_bytes();
        let read = EliasFano::read_from(&bytes[..], bytes.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!(read, ef);
        assert!(EliasFano::read_from(&bytes[..], bytes.len() as u64 + 8)
            .unwrap()
            .is_none());
        assert!(
            EliasFano::read_from(&bytes[..bytes.len() - 8], bytes.len() as u64)
                .unwrap()
                .is_none()
        );
        // A header that asks for an absurd size is refused before anything is allocated.
        let mut huge = bytes[..48].to_vec();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(EliasFano::read_from(&huge[..], u64::MAX).unwrap().is_none());
    }

    #[test]
    fn unsorted_duplicate_or_out_of_range_input_is_refused() {
        assert!(matches!(
            EliasFano::from_sorted(&[5, 3], 10),
            Err(BuildError::NotIncreasing { .. })
        ));
        assert!(matches!(
            EliasFano::from_sorted(&[3, 3], 10),
            Err(BuildError::NotIncreasing { .. })
        ));
        assert!(matches!(
            EliasFano::from_sorted(&[10], 10),
            Err(BuildError::OutOfRange { .. })
        ));
        let mut b = Builder::new(2, 10);
        b.push(1).unwrap();
        assert!(matches!(b.finish(), Err(BuildError::WrongCount { .. })));
    }
}
