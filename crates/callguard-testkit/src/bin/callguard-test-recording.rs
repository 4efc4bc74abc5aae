//! Writes a call recording into an installation the way the telephony edge does, for tests
//! written outside Rust (the browser tests): the file sealed with a new data key under the
//! installation's key-encryption key, its key share in the database with the edge's audit
//! entries. The caller's leg is a 1 kHz tone, the agent's silence. Prints the recording's id.
//!
//! `callguard-test-recording --data-dir DIR [--database-url URL] [--seconds N] [--queue Q]
//! [--started-at UNIX]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callguard_core::audit::AuditRecord;
use callguard_core::kek::KeyEncryptionKey;
use callguard_core::recording::RecordingWriter;
use callguard_store::RecordingRow;
use std::path::PathBuf;

/// G.711 A-law of a linear sample (ITU-T reference algorithm).
fn alaw(sample: i16) -> u8 {
    let mut pcm = (i32::from(sample) + 4) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = (0..8)
        .find(|s| pcm <= (0x1F << s) | ((1 << s) - 1))
        .unwrap_or(8);
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut data_dir, mut url, mut seconds, mut queue, mut started_at) = (
        None::<PathBuf>,
        None::<String>,
        3usize,
        None::<String>,
        None::<i64>,
    );
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("a value after the option");
        match a.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value())),
            "--database-url" => url = Some(value()),
            "--seconds" => seconds = value().parse().expect("--seconds N"),
            "--queue" => queue = Some(value()),
            "--started-at" => started_at = Some(value().parse().expect("--started-at UNIX")),
            other => panic!("unknown option {other}"),
        }
    }
    let data_dir = data_dir.expect("--data-dir DIR");
    let text = std::fs::read_to_string(data_dir.join("keys").join("kek")).expect("the KEK file");
    let kek = KeyEncryptionKey::from_text(&text).expect("a key-encryption key");
    let store = callguard_store::open(url.as_deref(), &data_dir.join("callguard.db"))
        .await
        .expect("the database");
    let id = uuid::Uuid::new_v4();
    let dir = data_dir.join("recordings");
    std::fs::create_dir_all(&dir).unwrap();
    let file = std::fs::File::create(dir.join(format!("{id}.cgrec"))).unwrap();
    let (mut w, share) = RecordingWriter::create(file, &kek, id).unwrap();
    for n in 0..seconds * 50 {
        let frame: Vec<u8> = (0..160)
            .map(|i| {
                let t = (n * 160 + i) as f64 / 8000.0;
                alaw(((t * 1000.0 * std::f64::consts::TAU).sin() * 8000.0) as i16)
            })
            .collect();
        w.push(&frame, &[]).unwrap();
    }
    w.finish().unwrap();
    let at = started_at.unwrap_or_else(callguard_core::now);
    let row = RecordingRow {
        id: id.to_string(),
        interaction_id: format!("call-{}", uuid::Uuid::new_v4()),
        customer_id: None,
        file_name: format!("{id}.cgrec"),
        key_share: share.0,
        started_at: at,
        ended_at: None,
        queue,
    };
    let edge = "user:telephony-edge";
    store
        .start_recording(&row, AuditRecord::new("recording.start", edge))
        .await
        .unwrap();
    store
        .end_recording(
            &row.id,
            at + seconds as i64,
            AuditRecord::new("recording.end", edge),
        )
        .await
        .unwrap();
    println!("{id}");
}
