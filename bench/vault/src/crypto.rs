//! Field encryption in this process, on one thread: the vault's own `DataKey::seal` next to the
//! raw AEAD it is built on (XChaCha20-Poly1305 from the `chacha20poly1305` crate, a fixed key,
//! a fresh random 192-bit nonce from the OS for every message, as `seal` draws it), on the same
//! ~30-byte plaintext. Rates are per second of this thread's own CPU time, so that other load on
//! the machine does not lower them.

use crate::Res;
use callguard_core::kek::KeyEncryptionKey;
use callguard_core::vault::crypto::DataKey;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use std::hint::black_box;
use std::time::Instant;

/// A phone list as the vault seals it (JSON), 31 bytes.
pub const PLAINTEXT: &[u8] = br#"["+48601000000","+48601000997"]"#;

/// CPU seconds this thread has used (from /proc/thread-self/stat; clock ticks of 10 ms, so
/// the runs below last seconds).
pub fn thread_cpu() -> f64 {
    let text = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let Some((_, rest)) = text.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (field(14) + field(15)) / 100.0
}

pub struct Rate {
    pub ops: u64,
    pub wall: f64,
    pub cpu: f64,
}

impl Rate {
    /// Operations per CPU-second of the measuring thread: the rate of one core.
    pub fn per_core(&self) -> f64 {
        self.ops as f64 / self.cpu.max(1e-9)
    }

    pub fn per_wall_second(&self) -> f64 {
        self.ops as f64 / self.wall.max(1e-9)
    }
}

/// Runs `op` in batches for about `seconds` of wall time.
fn measure(seconds: f64, mut op: impl FnMut() -> usize) -> Rate {
    // Warm-up.
    for _ in 0..10_000 {
        black_box(op());
    }
    let (t0, c0) = (Instant::now(), thread_cpu());
    let mut ops = 0u64;
    while t0.elapsed().as_secs_f64() < seconds {
        for _ in 0..1000 {
            black_box(op());
        }
        ops += 1000;
    }
    Rate {
        ops,
        wall: t0.elapsed().as_secs_f64(),
        cpu: thread_cpu() - c0,
    }
}

pub struct CryptoRates {
    pub seal: Rate,
    pub raw: Rate,
    pub raw_fast_nonce: Rate,
    pub open: Rate,
    pub sealed_len: usize,
}

/// The three encryption rates, each for `seconds`, on the calling thread.
pub fn rates(seconds: f64) -> Res<CryptoRates> {
    let kek = KeyEncryptionKey::generate();
    let (key, _, _) = DataKey::generate("100000000001", &kek);
    let sealed = key.seal("phones", PLAINTEXT);
    if key.open("phones", &sealed).is_err() {
        return Err("DataKey::seal made something DataKey::open refuses".into());
    }
    let seal = measure(seconds, || key.seal("phones", black_box(PLAINTEXT)).len());

    let mut raw_key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw_key);
    let cipher = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&raw_key));
    let encrypt = |nonce: &[u8; 24]| {
        cipher
            .encrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: black_box(PLAINTEXT),
                    aad: b"",
                },
            )
            .map_or(0, |ct| ct.len())
    };
    let raw = measure(seconds, || {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        encrypt(&nonce)
    });
    // The same with nonces from a user-space CSPRNG (ChaCha12, reseeded from the OS), to show
    // how much of either rate is the getrandom system call per nonce.
    let mut rng = rand::thread_rng();
    let raw_fast_nonce = measure(seconds, || {
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        encrypt(&nonce)
    });
    let open = measure(seconds, || {
        key.open("phones", black_box(&sealed))
            .map_or(0, |p| p.expose().len())
    });
    Ok(CryptoRates {
        seal,
        raw,
        raw_fast_nonce,
        open,
        sealed_len: sealed.len(),
    })
}

/// Opening and masking one customer the way a screen-pop does, in this process and without
/// any I/O: the stored field map parsed, the data key unwrapped with the KEK and its share,
/// every sealed field (the eight of the record and the security answers) decoded, opened and
/// parsed as JSON, then the masked values made. It follows `callguard_server::features::vault::service::open_row`
/// and `masked_view` step by step; it is the part of a screen-pop that the baseline leaves out
/// besides the key-store read and the audit entry.
pub fn open_and_mask(seconds: f64) -> Res<Rate> {
    use callguard_core::vault::mask;
    use callguard_core::vault::model::{Address, NationalIdKind};
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    let kek = KeyEncryptionKey::generate();
    let id = "100000000001";
    let (key, wrapped, share) = DataKey::generate(id, &kek);
    let c = crate::data::customer(1)?;
    let plain: [(&str, Value); 9] = [
        ("full_name", json!(c.full_name)),
        ("phones", json!([c.phone])),
        ("emails", json!([c.email])),
        ("national_id", json!({"kind": "pesel", "value": c.pesel})),
        ("date_of_birth", json!(c.date_of_birth)),
        (
            "address",
            json!({"line1": c.line1, "postal_code": c.postal_code, "city": c.city, "country": "PL"}),
        ),
        ("services", json!([c.service])),
        ("notes", json!([])),
        ("security_questions", json!([])),
    ];
    let mut stored = BTreeMap::new();
    for (name, v) in &plain {
        let sealed = key.seal(name, &serde_json::to_vec(v)?);
        stored.insert(name.to_string(), data_encoding::BASE64.encode(&sealed));
    }
    let fields = serde_json::to_string(&stored)?;
    let share = share.bytes().to_vec();

    let once = || -> Res<usize> {
        let share =
            callguard_core::vault::crypto::KeyShare::from_bytes(share.clone()).ok_or("share")?;
        let key = DataKey::unwrap(id, &wrapped, &share, &kek).map_err(|_| "unwrap")?;
        let sealed: BTreeMap<String, String> = serde_json::from_str(&fields)?;
        let mut opened: BTreeMap<String, Value> = BTreeMap::new();
        for (name, b64) in &sealed {
            let bytes = data_encoding::BASE64.decode(b64.as_bytes())?;
            let plain = key.open(name, &bytes).map_err(|_| "open")?;
            opened.insert(name.clone(), serde_json::from_slice(plain.expose())?);
        }
        let text = |k: &str| opened.get(k).and_then(Value::as_str).unwrap_or_default();
        let texts = |k: &str| -> Vec<String> {
            opened
                .get(k)
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default()
        };
        let mut n = mask::name(text("full_name")).len();
        n += texts("phones")
            .iter()
            .map(|p| mask::phone(p).len())
            .sum::<usize>();
        n += texts("emails")
            .iter()
            .map(|e| mask::email(e).len())
            .sum::<usize>();
        n += texts("services")
            .iter()
            .map(|s| mask::service(s).len())
            .sum::<usize>();
        if let Some(v) = opened
            .get("national_id")
            .and_then(|v| v.get("value"))
            .and_then(Value::as_str)
        {
            n += mask::national_id(NationalIdKind::Pesel, v).len();
        }
        if let Ok(d) = callguard_core::vault::validate::date_of_birth(text("date_of_birth")) {
            n += mask::date_of_birth(d).len();
        }
        if let Some(a) = opened
            .get("address")
            .and_then(|v| serde_json::from_value::<Address>(v.clone()).ok())
        {
            n += mask::address(&a).len();
        }
        Ok(n)
    };
    once()?;
    Ok(measure(seconds, || once().unwrap_or(0)))
}
