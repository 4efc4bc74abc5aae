//! The fast check that an entry's stored text is exactly its RFC 8785 canonical form with the
//! right index, without building a JSON value: `audit verify` runs it on every entry.

/// Whether `text` is, byte for byte, what `jcs::canonical` makes of the JSON object it holds,
/// with a top-level `"index"` member equal to `index`. Sound but not complete: a yes means that
/// parsing and canonicalising `text` gives `text` back and that it claims `index`; a no only
/// means "take the slow path". Canonical here means: no whitespace; object members in strictly
/// increasing UTF-16 order of their keys; strings escaped exactly as `jcs` escapes them (only
/// `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t` and lower-case `\u00xx` for the other control
/// characters); integers only, without leading zeros or `-0`, within `i64` or `u64`.
pub(crate) fn is_canonical_entry(text: &str, index: u64) -> bool {
    let mut s = CanonicalScan {
        b: text.as_bytes(),
        at: 0,
        index,
        found_index: false,
    };
    s.object(1, true) && s.at == s.b.len() && s.found_index
}

/// Whether none of the eight bytes of `w` is `"`, `\\` or below 0x20: the classic "has a zero
/// byte" and "has a byte less than n" tests, which never miss one (they may report one that
/// is not there only after a true one, which only sends the word to the byte loop).
fn plain_word(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    (has_zero(quote) | has_zero(backslash) | control) & HIGH == 0
}

/// Nesting deeper than this takes the slow path (serde_json itself stops at 128).
const MAX_FAST_DEPTH: usize = 64;

struct CanonicalScan<'a> {
    b: &'a [u8],
    at: usize,
    index: u64,
    found_index: bool,
}

impl CanonicalScan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, lit: &[u8]) -> bool {
        if self.b.get(self.at..).is_some_and(|r| r.starts_with(lit)) {
            self.at += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => self.object(depth + 1, false),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().is_some(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize, top: bool) -> bool {
        if depth > MAX_FAST_DEPTH || !self.eat(b'{') {
            return false;
        }
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<(usize, usize)> = None;
        loop {
            let Some(key) = self.string() else {
                return false;
            };
            if previous.is_some_and(|p| !self.key_less(p, key)) {
                return false;
            }
            previous = Some(key);
            if !self.eat(b':') {
                return false;
            }
            if top && self.b.get(key.0..key.1) == Some(&b"index"[..]) {
                let Some((_, value)) = self.number() else {
                    return false;
                };
                if value != Some(self.index) {
                    return false;
                }
                self.found_index = true;
            } else if !self.value(depth) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        if depth > MAX_FAST_DEPTH || !self.eat(b'[') {
            return false;
        }
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// A canonical string; the byte range of its contents.
    fn string(&mut self) -> Option<(usize, usize)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            self.skip_plain_words();
            match self.peek()? {
                b'"' => {
                    let end = self.at;
                    self.at += 1;
                    return Some((start, end));
                }
                b'\\' => {
                    self.at += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                        b'u' => {
                            let v = unicode_escape(self.b.get(self.at + 1..self.at + 5)?)?;
                            // Only control characters that have no short escape.
                            if v >= 0x20 || matches!(v, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                            self.at += 5;
                        }
                        _ => return None,
                    }
                }
                0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
    }

    /// Skips string contents eight bytes at a time while none of them is a quote, a backslash
    /// or a control character (entries are mostly such bytes; one at a time was a fifth of
    /// `audit verify`). Stops before a word that may hold one, for the byte loop to look at.
    fn skip_plain_words(&mut self) {
        while let Some(word) = self
            .b
            .get(self.at..self.at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            if !plain_word(u64::from_le_bytes(word)) {
                return;
            }
            self.at += 8;
        }
    }

    /// A canonical integer in range; its byte range, and its value when it is a `u64`.
    fn number(&mut self) -> Option<((usize, usize), Option<u64>)> {
        let start = self.at;
        let negative = self.eat(b'-');
        let digits_start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let digits = self.b.get(digits_start..self.at)?;
        if digits.is_empty()
            || (digits.len() > 1 && digits.first() == Some(&b'0'))
            || (negative && digits == b"0")
            || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        let mut v: u64 = 0;
        for d in digits {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        if negative && v > 1u64 << 63 {
            return None;
        }
        Some(((start, self.at), (!negative).then_some(v)))
    }

    /// Whether the key at `a` sorts strictly before the key at `b` (UTF-16 code units).
    fn key_less(&self, a: (usize, usize), b: (usize, usize)) -> bool {
        let (Some(ka), Some(kb)) = (self.b.get(a.0..a.1), self.b.get(b.0..b.1)) else {
            return false;
        };
        // ASCII without escapes: bytes are the UTF-16 code units, so the first difference
        // between two such prefixes decides (one pass, no call to `memcmp` for a few bytes).
        // Anything else is decoded and compared as UTF-16 below.
        let plain = |c: u8| c < 0x80 && c != b'\\';
        let mut i = 0;
        loop {
            match (ka.get(i), kb.get(i)) {
                (Some(&x), Some(&y)) if plain(x) && plain(y) => {
                    if x != y {
                        return x < y;
                    }
                }
                (None, Some(_)) => return true,
                (None, None) | (Some(_), None) => return false,
                (Some(_), Some(_)) => break,
            }
            i += 1;
        }
        match (unescape(ka), unescape(kb)) {
            (Some(x), Some(y)) => x.encode_utf16().lt(y.encode_utf16()),
            _ => false,
        }
    }
}

/// The value of the four lower-case hex digits of a `\u00xx` escape.
fn unicode_escape(hex: &[u8]) -> Option<u32> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'a'..=b'f' => Some(u32::from(c - b'a') + 10),
        _ => None,
    };
    let mut v = 0;
    for &c in hex {
        v = v * 16 + digit(c)?;
    }
    (hex.len() == 4).then_some(v)
}

/// The text of a canonical string's contents.
fn unescape(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '"' => '"',
            '\\' => '\\',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                char::from_u32(unicode_escape(hex.as_bytes())?)?
            }
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use callguard_core::audit::jcs;
    use callguard_core::audit::AuditRecord;

    /// What the slow path accepts: the text parses, claims `index` and is its canonical form.
    fn slow(text: &str, index: u64) -> bool {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .filter(|v| v.get("index").and_then(serde_json::Value::as_u64) == Some(index))
            .and_then(|v| jcs::canonical(&v).ok())
            .is_some_and(|c| c == text)
    }

    #[test]
    fn the_fast_check_accepts_real_entries() {
        let r = AuditRecord::new("auth.sign_in", "user:u1")
            .target("user:u1")
            .source("192.0.2.1")
            .detail("method", "totp")
            .detail("n", -42)
            .detail("big", u64::MAX)
            .detail(
                "tricky",
                "quote\" back\\ nl\n tab\t bell\u{7} del\u{7f} é € 😀",
            )
            .detail(
                "list",
                serde_json::json!([1, [true, null], {"b": {}, "a": []}]),
            )
            .detail("\u{1F600}", 1)
            .detail("\u{FB33}", 2);
        for index in [0, 7, 1_000_000, u64::MAX] {
            let (text, _) = r.leaf(index).unwrap();
            assert!(is_canonical_entry(&text, index), "{text}");
            assert!(slow(&text, index));
            assert!(!is_canonical_entry(&text, index.wrapping_add(1)));
        }
    }

    #[test]
    fn the_word_at_a_time_skip_never_misses_a_quote_a_backslash_or_a_control_character() {
        let plain: Vec<u8> = (0x20..=0xff).filter(|&c| c != b'"' && c != b'\\').collect();
        let special: Vec<u8> = (0..0x20).chain([b'"', b'\\']).collect();
        for &filler in &plain {
            assert!(plain_word(u64::from_le_bytes([filler; 8])), "{filler:#x}");
            for pos in 0..8 {
                for &bad in &special {
                    let mut word = [filler; 8];
                    word[pos] = bad;
                    assert!(!plain_word(u64::from_le_bytes(word)), "{word:?}");
                }
            }
        }
        // Through the whole check: a raw tab or a bare quote at every offset of a long string.
        for bad in ['\t', '"'] {
            for at in 0..40 {
                let mut long = "é".repeat(3) + &"x".repeat(37);
                long.insert(
                    long.char_indices().nth(at).map_or(long.len(), |(i, _)| i),
                    bad,
                );
                let text = format!(r#"{{"index":1,"s":"{long}"}}"#);
                assert!(!is_canonical_entry(&text, 1), "{text}");
            }
        }
    }

    #[test]
    fn keys_are_ordered_as_the_slow_path_orders_them_prefixes_escapes_and_non_ascii_included() {
        let keys = [
            "a",
            "ab",
            "abc",
            "b",
            "A",
            "_",
            "a\"",
            "a\\",
            "a\"b",
            "a\n",
            "aé",
            "é",
            "e",
            "\u{1F600}",
            "\u{FB33}",
            "",
        ];
        for k1 in keys {
            for k2 in keys {
                let (Ok(e1), Ok(e2)) = (serde_json::to_string(k1), serde_json::to_string(k2))
                else {
                    unreachable!()
                };
                let text = format!(r#"{{"d":{{{e1}:1,{e2}:2}},"index":5}}"#);
                assert_eq!(
                    is_canonical_entry(&text, 5),
                    slow(&text, 5),
                    "fast and slow disagree on {text}"
                );
            }
        }
    }

    #[test]
    fn the_fast_check_never_accepts_what_the_slow_path_refuses() {
        let good = r#"{"a":"x","details":{"k":[1,-2,"s"]},"index":5,"z":null}"#;
        assert!(is_canonical_entry(good, 5) && slow(good, 5));
        let samples = [
            r#"{"a":"x", "index":5}"#,
            r#"{"index":5,"a":"x"}"#,
            r#"{"a":1,"a":2,"index":5}"#,
            r#"{"index":05}"#,
            r#"{"index":5.0}"#,
            r#"{"index":5e0}"#,
            r#"{"index":-0,"x":1}"#,
            r#"{"index":5,"x":-0}"#,
            r#"{"index":5,"x":1.5}"#,
            r#"{"index":5,"x":18446744073709551616}"#,
            r#"{"index":5,"x":-9223372036854775809}"#,
            r#"{"index":5,"x":-9223372036854775808}"#,
            r#"{"index":5,"x":"\u0041"}"#,
            r#"{"index":5,"x":"\u000A"}"#,
            r#"{"index":5,"x":"\u001F"}"#,
            r#"{"index":5,"x":"\u001f"}"#,
            r#"{"index":5,"x":"\/"}"#,
            "{\"index\":5,\"x\":\"\t\"}",
            r#"{"index":"5"}"#,
            r#"{"index":5}x"#,
            r#"{"index":5"#,
            r#"{"details":{"index":5}}"#,
            r#"{"ind\u0065x":5}"#,
            r#"[{"index":5}]"#,
            r#"{"index":5,"x":tru}"#,
            r#"{"index":5,"x":[1,]}"#,
            r#"{"index":5,"x":{"b":1,"a":2}}"#,
            "{\"index\":5,\"\u{FB33}\":2,\"\u{1F600}\":1}",
            "{\"\u{1F600}\":1,\"index\":5,\"\u{FB33}\":2}",
        ];
        for text in samples {
            if is_canonical_entry(text, 5) {
                assert!(
                    slow(text, 5),
                    "fast accepted what the slow path refuses: {text}"
                );
            }
        }
        let deep = format!(
            "{{\"index\":5,\"x\":{}1{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(!is_canonical_entry(&deep, 5));
    }
}
