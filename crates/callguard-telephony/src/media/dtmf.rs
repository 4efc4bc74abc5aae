//! One call leg's key presses from every path: RFC 4733 events, in-band tones and SIP INFO
//! (RFC 2976). A phone may send a press more than one way (a tone in the audio and an event
//! beside it, or an INFO beside them); the merge counts it once: a press from one path is a copy
//! of a press of the same key seen within a short window on other paths, not yet on this one.
//! An INFO carries no RTP timestamp: it is placed at the time it arrives, and the press it
//! announces lasts its `Duration` (the window is widened to cover it).

use super::Key;

/// Where a key press was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// An RFC 4733 telephone event.
    Rfc4733,
    /// An in-band tone found by the Goertzel detector.
    InBand,
    /// A SIP INFO request in the caller's dialog (`application/dtmf-relay` or
    /// `application/dtmf`).
    SipInfo,
}

impl DtmfSource {
    fn bit(self) -> u8 {
        match self {
            DtmfSource::Rfc4733 => 1,
            DtmfSource::InBand => 2,
            DtmfSource::SipInfo => 4,
        }
    }
}

/// Two detections of the same key from the two paths this close (in milliseconds) are one
/// press. In-band detection confirms 30–50 ms after the tone starts; events arrive at once.
pub const DEFAULT_WINDOW_MS: u64 = 250;

/// The longest press an INFO's `Duration` may widen the window to (a bound, so a bogus
/// duration cannot swallow later presses of the same key for long).
pub const MAX_INFO_PRESS_MS: u64 = 2000;

/// One press counted: its key, when it was first seen, how long it is taken to last, and the
/// paths that carried it so far.
#[derive(Debug, Clone, Copy)]
struct Seen {
    key: Key,
    at_ms: u64,
    span_ms: u64,
    sources: u8,
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

    /// Offers a press seen at `at_ms` (any monotonic clock shared by all paths). Returns
    /// `true` if it is a new press, `false` if it repeats one already counted from another path.
    pub fn offer(&mut self, key: Key, source: DtmfSource, at_ms: u64) -> bool {
        self.offer_lasting(key, source, at_ms, 0)
    }

    /// [`DtmfMerger::offer`] for a press that says how long it lasts (an INFO's `Duration`, in
    /// milliseconds): a copy from another path may come any time within it, plus the window.
    pub fn offer_lasting(
        &mut self,
        key: Key,
        source: DtmfSource,
        at_ms: u64,
        lasts_ms: u64,
    ) -> bool {
        let window = self.window_ms;
        let span = lasts_ms.min(MAX_INFO_PRESS_MS) + window;
        self.recent
            .retain(|s| at_ms.saturating_sub(s.at_ms) <= s.span_ms.max(span));
        let bit = source.bit();
        let copy = self.recent.iter_mut().find(|s| {
            s.key == key && s.sources & bit == 0 && s.at_ms.abs_diff(at_ms) <= s.span_ms.max(span)
        });
        if let Some(original) = copy {
            original.sources |= bit;
            return false;
        }
        self.recent.push(Seen {
            key,
            at_ms,
            span_ms: span,
            sources: bit,
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::DtmfSource::{InBand, Rfc4733, SipInfo};
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
    fn a_press_sent_three_ways_counts_once_whichever_path_comes_first() {
        let mut m = DtmfMerger::default();
        assert!(m.offer_lasting(k('5'), SipInfo, 1000, 160));
        assert!(!m.offer(k('5'), Rfc4733, 1010));
        assert!(!m.offer(k('5'), InBand, 1050));
        let mut m = DtmfMerger::default();
        assert!(m.offer(k('5'), Rfc4733, 1000));
        assert!(!m.offer(k('5'), InBand, 1040));
        assert!(!m.offer_lasting(k('5'), SipInfo, 1120, 160));
    }

    #[test]
    fn an_info_late_within_its_press_is_a_copy_but_after_it_a_new_press() {
        let mut m = DtmfMerger::default();
        assert!(m.offer(k('8'), Rfc4733, 0));
        // The INFO announces a 400 ms press: a copy 300 ms after the event is still the press.
        assert!(!m.offer_lasting(k('8'), SipInfo, 300, 400));
        let mut m = DtmfMerger::default();
        assert!(m.offer(k('8'), Rfc4733, 0));
        assert!(m.offer_lasting(k('8'), SipInfo, 1000, 160));
    }

    #[test]
    fn a_key_pressed_twice_by_info_and_by_event_counts_twice() {
        let mut m = DtmfMerger::default();
        let seq = [(SipInfo, 0), (Rfc4733, 5), (SipInfo, 200), (Rfc4733, 205)];
        let new = seq
            .iter()
            .filter(|(s, t)| m.offer_lasting(k('1'), *s, *t, if *s == SipInfo { 160 } else { 0 }))
            .count();
        assert_eq!(new, 2);
    }

    #[test]
    fn a_card_number_sent_by_info_alone_comes_out_whole() {
        let mut m = DtmfMerger::default();
        let got: String = "4242424242424242"
            .chars()
            .enumerate()
            .filter(|(i, c)| m.offer_lasting(k(*c), SipInfo, *i as u64 * 250, 160))
            .map(|(_, c)| c)
            .collect();
        assert_eq!(got, "4242424242424242");
        let mut m = DtmfMerger::default();
        let twice: usize = (0..4)
            .filter(|i| m.offer_lasting(k('4'), SipInfo, i * 100, 160))
            .count();
        assert_eq!(twice, 4, "repeats on the one path are all presses");
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
