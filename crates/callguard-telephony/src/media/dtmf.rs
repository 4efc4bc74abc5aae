//! One call leg's key presses from both paths: RFC 4733 events and in-band tones. A phone may
//! send a press both ways (a tone in the audio and an event beside it); the merge counts it
//! once: a press from one path is a copy of a press of the same key from the other path that
//! came within a short window and was not already matched.

use super::Key;

/// Where a key press was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// An RFC 4733 telephone event.
    Rfc4733,
    /// An in-band tone found by the Goertzel detector.
    InBand,
}

/// Two detections of the same key from the two paths this close (in milliseconds) are one
/// press. In-band detection confirms 30–50 ms after the tone starts; events arrive at once.
pub const DEFAULT_WINDOW_MS: u64 = 250;

#[derive(Debug, Clone, Copy)]
struct Seen {
    key: Key,
    source: DtmfSource,
    at_ms: u64,
    matched: bool,
}

/// Merges the key presses of one leg.
#[derive(Debug)]
pub struct DtmfMerger {
    window_ms: u64,
    recent: Vec<Seen>,
}

impl Default for DtmfMerger {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW_MS)
    }
}

impl DtmfMerger {
    /// A merger that treats same-key detections from both paths within `window_ms` as one.
    pub fn new(window_ms: u64) -> Self {
        DtmfMerger {
            window_ms,
            recent: Vec::with_capacity(8),
        }
    }

    /// Offers a press seen at `at_ms` (any monotonic clock shared by both paths). Returns
    /// `true` if it is a new press, `false` if it repeats one already counted from the other path.
    pub fn offer(&mut self, key: Key, source: DtmfSource, at_ms: u64) -> bool {
        let window = self.window_ms;
        self.recent
            .retain(|s| at_ms.saturating_sub(s.at_ms) <= window);
        let copy = self.recent.iter_mut().find(|s| {
            !s.matched && s.key == key && s.source != source && s.at_ms.abs_diff(at_ms) <= window
        });
        if let Some(original) = copy {
            original.matched = true;
            return false;
        }
        self.recent.push(Seen {
            key,
            source,
            at_ms,
            matched: false,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::DtmfSource::{InBand, Rfc4733};
    use super::*;

    fn k(c: char) -> Key {
        Key::from_char(c).unwrap()
    }

    /// The keys a merger lets through for a sequence of (key, source, ms).
    fn merged(seq: &[(char, DtmfSource, u64)]) -> String {
        let mut m = DtmfMerger::default();
        seq.iter()
            .filter(|(c, s, t)| m.offer(k(*c), *s, *t))
            .map(|(c, _, _)| *c)
            .collect()
    }

    #[test]
    fn a_press_sent_both_ways_counts_once() {
        assert_eq!(merged(&[('4', Rfc4733, 1000), ('4', InBand, 1045)]), "4");
        assert_eq!(merged(&[('4', InBand, 1000), ('4', Rfc4733, 1010)]), "4");
    }

    #[test]
    fn a_key_pressed_twice_both_ways_counts_twice() {
        let seq = [
            ('1', Rfc4733, 0),
            ('1', InBand, 40),
            ('1', Rfc4733, 200),
            ('1', InBand, 240),
        ];
        assert_eq!(merged(&seq), "11");
    }

    #[test]
    fn the_same_key_twice_on_one_path_counts_twice() {
        assert_eq!(merged(&[('7', InBand, 0), ('7', InBand, 150)]), "77");
        assert_eq!(merged(&[('7', Rfc4733, 0), ('7', Rfc4733, 100)]), "77");
    }

    #[test]
    fn different_keys_or_presses_far_apart_are_not_merged() {
        assert_eq!(merged(&[('2', Rfc4733, 0), ('3', InBand, 40)]), "23");
        assert_eq!(merged(&[('2', Rfc4733, 0), ('2', InBand, 400)]), "22");
    }

    #[test]
    fn a_card_number_sent_both_ways_comes_out_once() {
        let mut seq = Vec::new();
        for (i, c) in "4111111111111111".chars().enumerate() {
            let t = i as u64 * 300;
            seq.push((c, Rfc4733, t));
            seq.push((c, InBand, t + 45));
        }
        assert_eq!(merged(&seq), "4111111111111111");
    }
}
