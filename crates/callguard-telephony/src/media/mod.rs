//! The media plane's pure parts: G.711, RTP packets, RFC 4733 telephone events, the in-band
//! DTMF detector, the merge of both DTMF paths, prompts. No sockets and no async here: the SIP
//! edge feeds packets and frames in and sends what comes out.

pub mod dtmf;
pub mod g711;
pub mod goertzel;
pub mod mask;
pub mod mix;
pub mod prompts;
pub mod rfc4733;
pub mod rtp;
pub mod srtp;

#[cfg(test)]
pub(crate) mod testutil;

use std::fmt;

/// Samples per second of every stream the edge handles (G.711 and telephone events).
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in one 20 ms frame, the packet size the edge sends and expects.
pub const FRAME_SAMPLES: usize = 160;

/// One key of a telephone keypad: 0–9, `*`, `#`, A–D, numbered as RFC 4733 events 0–15.
///
/// During a keypad payment a key is card data, so `Debug` prints no digit; use
/// [`Key::as_char`] where the digit itself is meant to be used.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(u8);

const KEY_CHARS: &[u8; 16] = b"0123456789*#ABCD";

impl Key {
    /// The key of an RFC 4733 event code (0–15); `None` for flash (16) and other events.
    pub fn from_event(code: u8) -> Option<Key> {
        (code < 16).then_some(Key(code))
    }

    /// The key written as a character (`0`–`9`, `*`, `#`, `A`–`D`, upper or lower case).
    pub fn from_char(c: char) -> Option<Key> {
        let c = c.to_ascii_uppercase();
        KEY_CHARS
            .iter()
            .position(|&k| char::from(k) == c)
            .map(|i| Key(i as u8))
    }

    /// The RFC 4733 event code.
    pub fn event(self) -> u8 {
        self.0
    }

    /// The key as a character.
    pub fn as_char(self) -> char {
        char::from(KEY_CHARS[usize::from(self.0 & 0x0F)])
    }

    /// All 16 keys in event order.
    pub fn all() -> impl Iterator<Item = Key> {
        (0..16).map(Key)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_between_events_and_characters() {
        let text: String = Key::all().map(Key::as_char).collect();
        assert_eq!(text, "0123456789*#ABCD");
        assert_eq!(Key::from_char('#').map(Key::event), Some(11));
        assert_eq!(Key::from_char('d').map(Key::event), Some(15));
        assert!(Key::from_char('E').is_none());
        assert!(Key::from_event(16).is_none(), "flash is not a key");
    }

    #[test]
    fn a_key_debug_prints_no_digit() {
        let seven = Key::from_char('7').unwrap();
        assert!(!format!("{seven:?}").contains('7'));
    }
}
