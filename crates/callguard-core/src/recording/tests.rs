use super::*;
use crate::kek::{KeyEncryptionKey, Keyring};
use std::io::Cursor;

fn id() -> uuid::Uuid {
    uuid::Uuid::from_bytes([7; 16])
}

/// A tone-like pattern per leg, so the legs can be told apart.
fn frame(leg: u8, n: usize) -> Vec<u8> {
    (0..160)
        .map(|i| ((i + n) as u8).wrapping_mul(leg) | 1)
        .collect()
}

/// A 3.5 s recording: 1 s of IVR (caller only), a 1 s payment pause, 1.5 s bridged.
fn record(kek: &KeyEncryptionKey) -> (Vec<u8>, KeyShare) {
    let (mut w, share) = RecordingWriter::create(Vec::new(), kek, id()).unwrap();
    for n in 0..50 {
        w.push(&frame(3, n), &[]).unwrap();
    }
    w.pause(PauseReason::Payment).unwrap();
    for n in 0..50 {
        w.push(&frame(3, n), &frame(5, n)).unwrap();
    }
    w.resume_audio().unwrap();
    for n in 0..75 {
        w.push(&frame(3, n), &frame(5, n)).unwrap();
    }
    (w.finish().unwrap(), share)
}

fn read_all(
    file: &[u8],
    kek: &(impl Sealing + ?Sized),
    share: &KeyShare,
) -> Result<Vec<Chunk>, RecordingError> {
    let mut r = RecordingReader::open(Cursor::new(file), kek, share)?;
    let mut out = Vec::new();
    while let Some(c) = r.next_chunk()? {
        out.push(c);
    }
    Ok(out)
}

/// Byte ranges of each chunk (length prefix included).
fn chunk_spans(file: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut at = HEADER_LEN;
    while at + 4 <= file.len() {
        let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        spans.push(at..at + 4 + len);
        at += 4 + len;
    }
    spans
}

#[test]
fn a_complete_recording_reads_back_with_its_pause_and_both_legs() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let chunks = read_all(&file, &kek, &share).unwrap();
    let kinds: Vec<String> = chunks
        .iter()
        .map(|c| format!("{c:?}").split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["Audio", "Pause", "Resume", "Audio", "Audio", "End"]);
    assert_eq!(
        chunks[1],
        Chunk::Pause {
            media_ms: 1000,
            reason: PauseReason::Payment
        }
    );
    assert_eq!(chunks[2], Chunk::Resume { media_ms: 2000 });
    assert_eq!(chunks[5], Chunk::End { media_ms: 3500 });
    let Chunk::Audio { media_ms, stereo } = &chunks[3] else {
        panic!()
    };
    assert_eq!(*media_ms, 2000);
    assert_eq!(stereo.len(), 16_000, "about one second per chunk");
    let f3 = frame(3, 0);
    let f5 = frame(5, 0);
    assert_eq!(
        (stereo[0], stereo[1], stereo[2], stereo[3]),
        (f3[0], f5[0], f3[1], f5[1])
    );
    let Chunk::Audio { stereo: ivr, .. } = &chunks[0] else {
        panic!()
    };
    assert!(
        ivr.iter().skip(1).step_by(2).all(|&b| b == 0xD5),
        "agent leg silent before the bridge"
    );
    assert_eq!(
        file.len(),
        HEADER_LEN + (8000 + 12_000) * 2 + 1 + 6 * CHUNK_OVERHEAD,
        "the header, the audio, one reason byte and 29 bytes per chunk"
    );
}

#[test]
fn audio_pushed_during_a_pause_is_not_stored() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let audio: usize = read_all(&file, &kek, &share)
        .unwrap()
        .iter()
        .map(|c| match c {
            Chunk::Audio { stereo, .. } => stereo.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(audio, (50 + 75) * 160 * 2);
}

#[test]
fn a_flipped_bit_names_the_chunk_that_fails() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let spans = chunk_spans(&file);
    for (k, span) in spans.iter().enumerate() {
        let mut bad = file.clone();
        bad[span.start + 4 + (span.len() - 4) / 2] ^= 0x10;
        let err = read_all(&bad, &kek, &share).unwrap_err();
        assert_eq!(
            err,
            RecordingError::ChunkFailed {
                number: k as u32 + 1
            },
            "bit flipped in chunk {}",
            k + 1
        );
    }
}

#[test]
fn a_removed_or_swapped_chunk_is_detected_where_it_happened() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let spans = chunk_spans(&file);
    let mut removed = file[..spans[2].start].to_vec();
    removed.extend_from_slice(&file[spans[2].end..]);
    assert_eq!(
        read_all(&removed, &kek, &share).unwrap_err(),
        RecordingError::ChunkFailed { number: 3 }
    );
    let mut swapped = file[..spans[3].start].to_vec();
    swapped.extend_from_slice(&file[spans[4].clone()]);
    swapped.extend_from_slice(&file[spans[3].clone()]);
    swapped.extend_from_slice(&file[spans[5].clone()]);
    assert_eq!(
        read_all(&swapped, &kek, &share).unwrap_err(),
        RecordingError::ChunkFailed { number: 4 }
    );
}

#[test]
fn a_truncated_recording_says_how_many_chunks_are_intact() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let spans = chunk_spans(&file);
    let without_end = &file[..spans[5].start];
    assert_eq!(
        read_all(without_end, &kek, &share).unwrap_err(),
        RecordingError::Truncated { chunks: 5 }
    );
    let mid_chunk = &file[..spans[3].start + 100];
    assert_eq!(
        read_all(mid_chunk, &kek, &share).unwrap_err(),
        RecordingError::Truncated { chunks: 3 }
    );
    assert_eq!(
        read_all(&file[..HEADER_LEN], &kek, &share).unwrap_err(),
        RecordingError::Truncated { chunks: 0 }
    );
    let msg = RecordingError::Truncated { chunks: 5 }.to_string();
    assert!(msg.contains("truncated after 5 chunks"), "{msg}");
    // The chunks before the cut still read, for whoever needs them.
    let mut r = RecordingReader::open(Cursor::new(without_end), &kek, &share).unwrap();
    let mut n = 0;
    while let Ok(Some(_)) = r.next_chunk() {
        n += 1;
    }
    assert_eq!(
        n, 4,
        "the fifth intact chunk is the one the cut made look final"
    );
}

#[test]
fn bytes_after_the_end_chunk_are_reported() {
    let kek = KeyEncryptionKey::generate();
    let (mut file, share) = record(&kek);
    file.extend_from_slice(&[0, 0, 0, 30]);
    file.extend_from_slice(&[0; 30]);
    assert_eq!(
        read_all(&file, &kek, &share).unwrap_err(),
        RecordingError::TrailingData { number: 6 }
    );
}

#[test]
fn a_wrong_key_or_a_foreign_share_cannot_open_the_recording() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let other = KeyEncryptionKey::generate();
    let err = read_all(&file, &other, &share).unwrap_err();
    assert_eq!(err, RecordingError::WrongKey { kek_id: kek.id() });
    let (_, foreign) =
        RecordingWriter::create(Vec::new(), &kek, uuid::Uuid::from_bytes([9; 16])).unwrap();
    assert!(matches!(
        read_all(&file, &kek, &foreign),
        Err(RecordingError::WrongKey { .. })
    ));
    assert_eq!(
        read_all(b"RIFF not a recording at all, clearly not", &kek, &share).unwrap_err(),
        RecordingError::NotARecording
    );
}

#[test]
fn erasing_the_stored_share_makes_the_file_unreadable_even_with_the_key() {
    let kek = KeyEncryptionKey::generate();
    let (file, _share) = record(&kek);
    let erased = KeyShare(Vec::new());
    assert!(matches!(
        read_all(&file, &kek, &erased),
        Err(RecordingError::WrongKey { .. })
    ));
}

#[test]
fn the_share_and_file_hold_no_plain_audio_or_key() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let pattern = &frame(3, 0)[..16];
    assert!(!file.windows(16).any(|w| w == pattern));
    assert_eq!(format!("{share:?}"), "KeyShare(<wrapped>)");
}

#[test]
fn rotation_rewraps_the_header_and_share_and_leaves_the_audio() {
    let old = KeyEncryptionKey::generate();
    let (file, share) = record(&old);
    let new = KeyEncryptionKey::generate();
    let mut f = Cursor::new(file.clone());
    let new_share = rewrap(&mut f, &share, &old, &new).unwrap();
    let rotated = f.into_inner();
    assert_eq!(rotated.len(), file.len());
    assert_eq!(
        &rotated[HEADER_LEN..],
        &file[HEADER_LEN..],
        "chunks untouched"
    );
    assert_eq!(
        read_all(&rotated, &new, &new_share).unwrap(),
        read_all(&file, &old, &share).unwrap()
    );
    assert!(
        read_all(&rotated, &old, &share).is_err(),
        "the retired key opens nothing"
    );
    assert_eq!(
        read_header(&mut Cursor::new(&rotated)).unwrap().kek_id(),
        new.id()
    );
    // With the wrong old key nothing is written.
    let mut g = Cursor::new(file.clone());
    assert!(rewrap(&mut g, &share, &new, &old).is_err());
    assert_eq!(g.into_inner(), file);
}

#[test]
fn a_keyring_reads_recordings_of_the_previous_key() {
    let old = KeyEncryptionKey::generate();
    let (file, share) = record(&old);
    let old_copy = KeyEncryptionKey::from_text(old.to_text().expose()).unwrap();
    let ring = Keyring::new(KeyEncryptionKey::generate(), vec![old_copy]);
    assert_eq!(read_all(&file, &ring, &share).unwrap().len(), 6);
}

#[test]
fn a_segment_after_a_restart_has_a_fresh_nonce_prefix_and_reads_alone() {
    let kek = KeyEncryptionKey::generate();
    let (w, share) = RecordingWriter::create(Vec::new(), &kek, id()).unwrap();
    let first = w.finish().unwrap();
    let mut w2 = RecordingWriter::resume(Vec::new(), &kek, id(), &share, 1, 60_000).unwrap();
    w2.push(&frame(3, 0), &frame(5, 0)).unwrap();
    let second = w2.finish().unwrap();
    let h1 = read_header(&mut Cursor::new(&first)).unwrap();
    let h2 = read_header(&mut Cursor::new(&second)).unwrap();
    assert_eq!((h1.segment, h2.segment), (0, 1));
    assert_ne!(h1.prefix, h2.prefix);
    assert_ne!(h1.wrapped_half, h2.wrapped_half);
    let chunks = read_all(&second, &kek, &share).unwrap();
    assert_eq!(
        chunks[0],
        Chunk::Audio {
            media_ms: 60_000,
            stereo: frame(3, 0)
                .iter()
                .zip(frame(5, 0))
                .flat_map(|(a, b)| [*a, b])
                .collect()
        }
    );
    // A segment's header moved onto another segment's chunks fails.
    let mut spliced = second[..HEADER_LEN].to_vec();
    spliced.extend_from_slice(&first[HEADER_LEN..]);
    assert_eq!(
        read_all(&spliced, &kek, &share).unwrap_err(),
        RecordingError::ChunkFailed { number: 1 }
    );
}

#[test]
fn the_wav_has_both_legs_and_silence_where_recording_paused() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let mut wav = Cursor::new(Vec::new());
    let summary = decrypt_to_wav(Cursor::new(&file), &kek, &share, &mut wav).unwrap();
    assert_eq!(summary.chunks, 6);
    assert_eq!(summary.duration_ms, 3500);
    assert_eq!(
        summary.pauses,
        vec![PauseSpan {
            reason: PauseReason::Payment,
            from_ms: 1000,
            until_ms: 2000
        }]
    );
    let wav = wav.into_inner();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([wav[20], wav[21]]), 6, "A-law");
    assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "stereo");
    assert_eq!(
        u32::from_le_bytes(wav[4..8].try_into().unwrap()) as usize,
        wav.len() - 8
    );
    let data = &wav[58..];
    assert_eq!(data.len(), 3500 * 16);
    assert!(
        data[16_000..32_000].iter().all(|&b| b == 0xD5),
        "the paused second is silence"
    );
    assert_eq!(data[32_000], frame(3, 0)[0]);
    assert_eq!(data[32_001], frame(5, 0)[0]);
}

#[test]
fn a_damaged_recording_gives_no_wav_but_the_reason() {
    let kek = KeyEncryptionKey::generate();
    let (mut file, share) = record(&kek);
    let spans = chunk_spans(&file);
    file[spans[3].start + 50] ^= 1;
    let err =
        decrypt_to_wav(Cursor::new(&file), &kek, &share, Cursor::new(Vec::new())).unwrap_err();
    assert_eq!(err, RecordingError::ChunkFailed { number: 4 });
}

#[test]
fn wav_output_is_a_file_sox_reads_as_stereo_alaw() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let mut wav = Cursor::new(Vec::new());
    decrypt_to_wav(Cursor::new(&file), &kek, &share, &mut wav).unwrap();
    let path = std::env::temp_dir().join(format!("cg-rec-{}.wav", std::process::id()));
    std::fs::write(&path, wav.into_inner()).unwrap();
    let out = std::process::Command::new("soxi").arg(&path).output();
    std::fs::remove_file(&path).unwrap();
    let Ok(out) = out else {
        panic!("soxi (Debian package sox) must be installed for this test")
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Channels       : 2"), "{text}");
    assert!(text.contains("Sample Rate    : 8000"), "{text}");
    assert!(text.contains("A-law"), "{text}");
    assert!(text.contains("00:00:03.50"), "{text}");
}

#[test]
fn playback_streams_the_same_timeline_as_the_alaw_wav_decoded_to_pcm() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let mut alaw = Cursor::new(Vec::new());
    decrypt_to_wav(Cursor::new(&file), &kek, &share, &mut alaw).unwrap();
    let alaw = alaw.into_inner();
    let alaw_samples = &alaw[58..];

    let measured =
        measure(RecordingReader::open(Cursor::new(&file), &kek, &share).unwrap()).unwrap();
    assert_eq!(measured.frames as usize, alaw_samples.len() / 2);
    assert_eq!(measured.duration_ms(), 3500);
    let mut wav = PcmWav::new(
        RecordingReader::open(Cursor::new(&file), &kek, &share).unwrap(),
        measured,
    );
    let mut out = Vec::new();
    while let Some(block) = wav.next_block().unwrap() {
        out.extend_from_slice(&block);
    }
    assert_eq!(out.len() as u64, measured.wav_len());
    assert_eq!(&out[..4], b"RIFF");
    assert_eq!(u16::from_le_bytes([out[20], out[21]]), 1, "PCM");
    assert_eq!(u16::from_le_bytes([out[22], out[23]]), 2, "stereo");
    let pcm: Vec<i16> = out[44..]
        .chunks(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let want: Vec<i16> = alaw_samples.iter().map(|&c| alaw_to_linear(c)).collect();
    assert_eq!(pcm, want, "sample for sample, pauses as silence");
}

#[test]
fn a_truncated_or_altered_recording_fails_measurement_before_any_audio() {
    let kek = KeyEncryptionKey::generate();
    let (file, share) = record(&kek);
    let cut = &file[..file.len() - 10];
    assert!(matches!(
        measure(RecordingReader::open(Cursor::new(cut), &kek, &share).unwrap()),
        Err(RecordingError::Truncated { .. })
    ));
    let mut flipped = file.clone();
    let span = chunk_spans(&file)[1].clone();
    flipped[span.start + 20] ^= 1;
    assert!(matches!(
        measure(RecordingReader::open(Cursor::new(&flipped), &kek, &share).unwrap()),
        Err(RecordingError::ChunkFailed { number: 2 })
    ));
}

#[test]
fn alaw_decodes_as_g711_says() {
    assert_eq!(alaw_to_linear(0xD5), 8);
    assert_eq!(alaw_to_linear(0x55), -8);
    assert_eq!(alaw_to_linear(0xAA), 32256);
    assert_eq!(alaw_to_linear(0x2A), -32256);
}

#[test]
fn legs_of_unequal_length_are_interleaved_into_their_channels_and_padded_with_silence() {
    let kek = KeyEncryptionKey::generate();
    let (mut w, share) = RecordingWriter::create(Vec::new(), &kek, id()).unwrap();
    let (caller, agent) = (frame(3, 0), frame(5, 0));
    // A full second: a short caller frame, a frame with the agent only, then full frames.
    w.push(&caller[..100], &agent).unwrap();
    w.push(&[], &agent).unwrap();
    for _ in 0..48 {
        w.push(&caller, &agent).unwrap();
    }
    let file = w.finish().unwrap();
    let chunks = read_all(&file, &kek, &share).unwrap();
    let Chunk::Audio { stereo, .. } = &chunks[0] else {
        panic!("{chunks:?}")
    };
    assert_eq!(stereo.len(), 2 * 50 * 160);
    let (left, right): (Vec<u8>, Vec<u8>) = stereo.chunks_exact(2).map(|p| (p[0], p[1])).unzip();
    let mut want_left = caller[..100].to_vec();
    want_left.extend([0xD5; 60]);
    want_left.extend([0xD5; 160]);
    for _ in 0..48 {
        want_left.extend(&caller);
    }
    assert_eq!(
        left, want_left,
        "the caller's channel, silence where it had nothing"
    );
    assert_eq!(right, agent.repeat(50), "the agent's channel");
}
