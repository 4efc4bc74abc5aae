//! G.711 (ITU-T G.711) A-law and µ-law companding between 16-bit linear PCM and 8-bit codes,
//! the two codecs every carrier and softphone offers. Bit arithmetic after the reference
//! implementation; decoding goes through 256-entry tables built at compile time.

const ALAW_TABLE: [i16; 256] = build_alaw_table();
const ULAW_TABLE: [i16; 256] = build_ulaw_table();

/// Decodes one A-law byte to linear PCM.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

/// Decodes one µ-law byte to linear PCM.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// Encodes one linear PCM sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // Round to the nearest 13-bit value (as sox does), then the reference algorithm.
    let mut pcm = (i32::from(sample) + 4) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = segment(pcm, 0x1F);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mantissa = if seg < 2 {
        (pcm >> 1) & 0x0F
    } else {
        (pcm >> seg) & 0x0F
    };
    ((seg << 4) as u8 | mantissa as u8) ^ mask
}

/// Encodes one linear PCM sample to µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 8159;
    // Round to the nearest 14-bit value (as sox does), then the reference algorithm.
    let mut pcm = (i32::from(sample) + 2) >> 2;
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    pcm = pcm.min(CLIP) + (BIAS >> 2);
    let seg = segment(pcm, 0x3F);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    ((seg << 4) as u8 | ((pcm >> (seg + 1)) & 0x0F) as u8) ^ mask
}

/// The segment of `value`: the first `i` with `value <= first_end * 2^i + (2^i - 1)`.
#[inline]
fn segment(value: i32, first_end: i32) -> i32 {
    let mut end = first_end;
    for seg in 0..8 {
        if value <= end {
            return seg;
        }
        end = (end << 1) | 1;
    }
    8
}

/// Decodes A-law bytes into `out` (cleared first).
pub fn decode_alaw(codes: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(codes.iter().map(|&c| alaw_to_linear(c)));
}

/// Decodes µ-law bytes into `out` (cleared first).
pub fn decode_ulaw(codes: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(codes.iter().map(|&c| ulaw_to_linear(c)));
}

/// Encodes linear PCM into A-law bytes in `out` (cleared first).
pub fn encode_alaw(samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.extend(samples.iter().map(|&s| linear_to_alaw(s)));
}

/// Encodes linear PCM into µ-law bytes in `out` (cleared first).
pub fn encode_ulaw(samples: &[i16], out: &mut Vec<u8>) {
    out.clear();
    out.extend(samples.iter().map(|&s| linear_to_ulaw(s)));
}

/// The A-law code for silence (+0).
pub const ALAW_SILENCE: u8 = 0xD5;
/// The µ-law code for silence (+0).
pub const ULAW_SILENCE: u8 = 0xFF;

/// Which G.711 law a stream uses; RTP payload type 8 is A-law (PCMA), 0 is µ-law (PCMU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    /// PCMA, RTP payload type 8.
    Alaw,
    /// PCMU, RTP payload type 0.
    Ulaw,
}

impl Law {
    /// The static RTP payload type of this law.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Alaw => 8,
            Law::Ulaw => 0,
        }
    }

    /// The law of a static RTP payload type, if it is a G.711 one.
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            8 => Some(Law::Alaw),
            0 => Some(Law::Ulaw),
            _ => None,
        }
    }

    /// Decodes one byte.
    #[inline]
    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Alaw => alaw_to_linear(code),
            Law::Ulaw => ulaw_to_linear(code),
        }
    }

    /// Encodes one sample.
    #[inline]
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Alaw => linear_to_alaw(sample),
            Law::Ulaw => linear_to_ulaw(sample),
        }
    }

    /// The code for silence.
    pub fn silence(self) -> u8 {
        match self {
            Law::Alaw => ALAW_SILENCE,
            Law::Ulaw => ULAW_SILENCE,
        }
    }

    /// Converts a code of this law to the other law's code for the same level.
    pub fn transcode_to(self, other: Law, code: u8) -> u8 {
        if self == other {
            code
        } else {
            other.encode(self.decode(code))
        }
    }
}

const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let a = (i as u8) ^ 0x55;
        let mut t = ((a & 0x0F) as i32) << 4;
        let seg = ((a & 0x70) >> 4) as i32;
        t = match seg {
            0 => t + 8,
            1 => t + 0x108,
            _ => (t + 0x108) << (seg - 1),
        };
        table[i] = if a & 0x80 != 0 { t as i16 } else { -t as i16 };
        i += 1;
    }
    table
}

const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let u = !(i as u8);
        let mut t = (((u & 0x0F) as i32) << 3) + 0x84;
        t <<= ((u & 0x70) >> 4) as i32;
        table[i] = if u & 0x80 != 0 {
            (0x84 - t) as i16
        } else {
            (t - 0x84) as i16
        };
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn known_vectors_match_the_standard() {
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-4), 0xD5);
        assert_eq!(linear_to_alaw(-5), 0x55);
        assert_eq!(linear_to_alaw(12), 0xD4);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-3), 0x7E);
        assert_eq!(linear_to_ulaw(2), 0xFE);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
    }

    #[test]
    fn every_code_decodes_and_encodes_back_to_itself() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#04x}"
            );
            // µ-law has two codes for zero (0x7F and 0xFF); 0x7F encodes back as 0xFF.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected,
                "µ-law {code:#04x}"
            );
        }
    }

    #[test]
    fn encoding_error_stays_within_the_segment_step() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let s = i32::from(s);
            assert!((a - s).abs() <= s.abs() / 16 + 16, "A-law {s} -> {a}");
            assert!((u - s).abs() <= s.abs() / 16 + 16, "µ-law {s} -> {u}");
        }
    }

    fn sox_encode(samples: &[i16], encoding: &str) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("cg-g711-{}-{encoding}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.raw");
        let output = dir.join("out.raw");
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(&input, bytes).unwrap();
        let status = Command::new("sox")
            .args([
                "-V1", "-D", "-t", "raw", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed",
            ])
            .args(["-L"])
            .arg(&input)
            .args(["-t", "raw", "-e", encoding, "-b", "8"])
            .arg(&output)
            .status()
            .expect("sox must be installed (Debian package sox) for this test");
        assert!(status.success());
        let out = std::fs::read(&output).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    fn assert_same(samples: &[i16], ours: &[u8], sox: &[u8], law: &str) {
        assert_eq!(ours.len(), sox.len(), "{law}: lengths");
        let diffs: Vec<_> = (0..ours.len()).filter(|&i| ours[i] != sox[i]).collect();
        let shown: Vec<_> = diffs
            .iter()
            .take(5)
            .map(|&i| (samples[i], ours[i], sox[i]))
            .collect();
        assert!(
            diffs.is_empty(),
            "{law}: {} differences, first (sample, ours, sox): {shown:?}",
            diffs.len()
        );
    }

    #[test]
    fn encoding_matches_sox_for_every_seventh_sample_value() {
        let samples: Vec<i16> = (i16::MIN..=i16::MAX).step_by(7).collect();
        let mut ours = Vec::new();
        encode_alaw(&samples, &mut ours);
        assert_same(&samples, &ours, &sox_encode(&samples, "a-law"), "A-law");
        encode_ulaw(&samples, &mut ours);
        assert_same(&samples, &ours, &sox_encode(&samples, "u-law"), "µ-law");
    }

    #[test]
    fn transcoding_keeps_the_level() {
        for code in 0..=255u8 {
            let u = Law::Alaw.transcode_to(Law::Ulaw, code);
            let diff = (i32::from(alaw_to_linear(code)) - i32::from(ulaw_to_linear(u))).abs();
            assert!(
                diff <= i32::from(alaw_to_linear(code)).abs() / 10 + 16,
                "{code:#04x}"
            );
        }
    }
}
