//! Key-encryption key rotation while servers run (`callguard keys rotate`).
//!
//! 1. A new key is made. The current key is written to `KEK_FILE.previous` first, then the new
//!    key replaces `KEK_FILE` (each write atomic and fsynced), so no key is ever only in memory.
//! 2. Running servers re-read the key files every [`RELOAD_SECONDS`] and from then on seal with
//!    the new key while still opening with the old one.
//! 3. Every value sealed by the old key is re-sealed under the new one, each guarded by its old
//!    value so a concurrent change is never overwritten: the customers' wrapped data keys (the
//!    data keys, and so the customer data, stay as they are), the blind index key, TOTP secrets,
//!    the numbers and evidence of the Do-Not-Call list and consent ledger, session user agents and
//!    alert comments (text still in the clear there is sealed too). Passes repeat until
//!    one finds nothing left, after the servers have had time to switch.
//! 4. `KEK_FILE.previous` is deleted: the old key is gone. One audit entry records the rotation
//!    with both key ids (public fingerprints) and the counts.
//!
//! Interrupted, it resumes where it stopped when run again (the `.previous` file says a rotation
//! is under way). Sign-in setups begun before the switch must be started again.

use crate::bootstrap::{
    load_or_create_kek, load_previous_keys, previous_keys_path, replace_private_file, KekError,
};
use callguard_core::audit::AuditRecord;
use callguard_core::kek::{KeyEncryptionKey, Keyring, Sealing};
use callguard_core::vault::crypto::{DataKey, INDEX_KEY_AAD};
use callguard_store::{SealedColumn, Store};
use std::path::Path;
use std::sync::Arc;

/// How often a server re-reads the key files.
pub const RELOAD_SECONDS: u64 = 2;
const PAGE: u64 = 500;
const MAX_PASSES: u32 = 20;

/// What a rotation did.
#[derive(Debug, Default)]
pub struct Report {
    pub from: Vec<String>,
    pub to: String,
    pub data_keys: u64,
    pub vault_keys: u64,
    pub sealed_values: u64,
    /// Values no key opened (damaged, or sealed by a key already lost); left as they were.
    pub unreadable: u64,
    pub passes: u32,
}

fn text_copy(k: &KeyEncryptionKey) -> Result<KeyEncryptionKey, String> {
    KeyEncryptionKey::from_text(k.to_text().expose()).ok_or_else(|| "key copy".to_owned())
}

fn aad(column: SealedColumn, id: &str) -> String {
    match column {
        SealedColumn::Totp => crate::features::signin::service::totp_aad(id),
        SealedColumn::DncInternalNumber => {
            crate::features::dnc::lists::number_aad("dnc-internal", id)
        }
        SealedColumn::ConsentNumber => crate::features::dnc::lists::number_aad("consent", id),
        SealedColumn::ConsentEvidence => crate::features::dnc::lists::evidence_aad(id),
        SealedColumn::SessionUserAgent => crate::features::signin::service::user_agent_aad(id),
        SealedColumn::AlertAcknowledgeComment => {
            crate::features::alerts::service::comment_aad(id, false)
        }
        SealedColumn::AlertResolveComment => {
            crate::features::alerts::service::comment_aad(id, true)
        }
    }
}

/// What a stored value of `column` holds: the sealed bytes, or (text columns only) free text
/// written in the clear before the column was sealed.
enum Stored {
    Sealed(Vec<u8>),
    Clear(String),
}

fn stored(column: SealedColumn, value: &[u8]) -> Stored {
    if !column.is_text() {
        return Stored::Sealed(value.to_vec());
    }
    let text = String::from_utf8_lossy(value);
    match callguard_core::kek::sealed_bytes(&text) {
        Some(bytes) => Stored::Sealed(bytes),
        None => Stored::Clear(text.into_owned()),
    }
}

/// The value to store for `plain` sealed by `key`: the bytes, or for a text column the UTF-8 of
/// `sealed:` + base64.
fn to_store<K: Sealing + ?Sized>(
    column: SealedColumn,
    key: &K,
    plain: &[u8],
    aad: &str,
) -> Vec<u8> {
    if column.is_text() {
        callguard_core::kek::seal_text(key, &String::from_utf8_lossy(plain), aad).into_bytes()
    } else {
        key.seal(plain, aad)
    }
}

/// Seals free text still kept in the clear in sealed text columns (written before they were
/// sealed: session user agents, alert comments). Run once when a server starts; answers how
/// many values it sealed. Each replacement is guarded by the old value.
pub async fn seal_clear_text(store: &Arc<dyn Store>, kek: &Keyring) -> Result<u64, String> {
    let db = |e: callguard_store::StoreError| e.to_string();
    let mut sealed = 0;
    for column in SealedColumn::ALL.into_iter().filter(|c| c.is_text()) {
        let mut after = String::new();
        loop {
            let page = store.sealed_page(column, &after, PAGE).await.map_err(db)?;
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            for (id, value) in page {
                if let Stored::Clear(text) = stored(column, &value) {
                    let new = to_store(column, kek, text.as_bytes(), &aad(column, &id));
                    if store
                        .replace_sealed(column, &id, &value, &new)
                        .await
                        .map_err(db)?
                    {
                        sealed += 1;
                    }
                }
            }
        }
    }
    Ok(sealed)
}

/// Rotates the key in `kek_file` (see the module documentation). `progress` receives one line
/// per step, for the terminal.
pub async fn rotate(
    store: &Arc<dyn Store>,
    kek_file: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report, String> {
    let err = |e: KekError| e.to_string();
    let current = load_or_create_kek(kek_file).map_err(err)?;
    let previous = load_previous_keys(kek_file).map_err(err)?;
    let previous_path = previous_keys_path(kek_file);
    let (new_key, old_keys) = if previous.is_empty() {
        let new_key = KeyEncryptionKey::generate();
        replace_private_file(
            &previous_path,
            format!("{}\n", current.to_text().expose()).as_bytes(),
        )
        .map_err(|e| format!("cannot write {}: {e}", previous_path.display()))?;
        replace_private_file(
            kek_file,
            format!("{}\n", new_key.to_text().expose()).as_bytes(),
        )
        .map_err(|e| format!("cannot write {}: {e}", kek_file.display()))?;
        progress(&format!(
            "new key {} written to {}; the old key {} stays in {} until every value is re-sealed",
            new_key.id(),
            kek_file.display(),
            current.id(),
            previous_path.display()
        ));
        (new_key, vec![current])
    } else {
        progress(&format!(
            "resuming the rotation to key {} (found {})",
            current.id(),
            previous_path.display()
        ));
        (current, previous)
    };
    let mut report = Report {
        from: old_keys.iter().map(KeyEncryptionKey::id).collect(),
        to: new_key.id(),
        ..Report::default()
    };
    let ring = Keyring::new(text_copy(&new_key)?, old_keys);
    let started = std::time::Instant::now();
    let settle = std::time::Duration::from_secs(RELOAD_SECONDS * 2 + 1);
    loop {
        report.passes += 1;
        let changed = pass(store, &ring, &new_key, &mut report, progress).await?;
        if changed == 0 && started.elapsed() >= settle {
            break;
        }
        if report.passes >= MAX_PASSES {
            return Err(format!(
                "values sealed by the old key kept appearing after {MAX_PASSES} passes: is a server running with an old copy of the key file? Run `callguard keys rotate` again to resume"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_secs(RELOAD_SECONDS)).await;
    }
    let left: u64 = {
        let mut n = 0;
        for id in &report.from {
            n += store.keys_sealed_by(id).await.map_err(|e| e.to_string())?;
        }
        n
    };
    if left > 0 {
        return Err(format!(
            "{left} wrapped keys are still sealed by the old key; run `callguard keys rotate` again to resume"
        ));
    }
    std::fs::remove_file(&previous_path)
        .map_err(|e| format!("cannot delete {}: {e}", previous_path.display()))?;
    store
        .append(vec![AuditRecord::new("keys.rotate", "cli")
            .detail("from", report.from.clone())
            .detail("to", report.to.clone())
            .detail("data_keys", report.data_keys)
            .detail("vault_keys", report.vault_keys)
            .detail("sealed_values", report.sealed_values)
            .detail("unreadable", report.unreadable)])
        .await
        .map_err(|e| e.to_string())?;
    Ok(report)
}

/// One pass over everything sealed; answers how many values it re-sealed.
async fn pass(
    store: &Arc<dyn Store>,
    ring: &Keyring,
    new_key: &KeyEncryptionKey,
    report: &mut Report,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<u64, String> {
    let db = |e: callguard_store::StoreError| e.to_string();
    let new_id = new_key.id();
    let mut changed = 0u64;
    // Customers' data keys.
    let mut after = String::new();
    let mut seen = 0u64;
    loop {
        let page = store.wrapped_keys(&after, PAGE).await.map_err(db)?;
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        for (id, wrapped, kek_id) in page {
            seen += 1;
            if kek_id == new_id {
                continue;
            }
            match DataKey::rewrap(&id, &wrapped, ring, new_key) {
                Ok(rewrapped) => {
                    if store
                        .rewrap_customer_key(&id, &kek_id, &rewrapped, &new_id)
                        .await
                        .map_err(db)?
                    {
                        report.data_keys += 1;
                        changed += 1;
                    }
                }
                Err(_) => report.unreadable += 1,
            }
        }
        progress(&format!(
            "pass {}: customers' data keys: {seen} checked, {} re-wrapped",
            report.passes, report.data_keys
        ));
    }
    // The blind index key.
    if let Some((sealed, kek_id)) = store.vault_key("blind-index").await.map_err(db)? {
        if kek_id != new_id {
            match ring.open(&sealed, INDEX_KEY_AAD) {
                Ok(raw) => {
                    let resealed = new_key.seal(raw.expose(), INDEX_KEY_AAD);
                    if store
                        .rewrap_vault_key("blind-index", &kek_id, &resealed, &new_id)
                        .await
                        .map_err(db)?
                    {
                        report.vault_keys += 1;
                        changed += 1;
                    }
                }
                Err(_) => report.unreadable += 1,
            }
        }
    }
    // Other sealed values: TOTP secrets, DNC list numbers, consent numbers and evidence, session
    // user agents, alert comments.
    for column in SealedColumn::ALL {
        let mut after = String::new();
        loop {
            let page = store.sealed_page(column, &after, PAGE).await.map_err(db)?;
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            for (id, value) in page {
                let a = aad(column, &id);
                let opened = match stored(column, &value) {
                    Stored::Sealed(sealed) => ring.open_noting(&sealed, &a),
                    // Text written in the clear before its column was sealed: seal it now.
                    Stored::Clear(text) => {
                        Ok((callguard_core::Secret::new(text.into_bytes()), false))
                    }
                };
                match opened {
                    Ok((_, true)) => {}
                    Ok((plain, false)) => {
                        let resealed = to_store(column, new_key, plain.expose(), &a);
                        if store
                            .replace_sealed(column, &id, &value, &resealed)
                            .await
                            .map_err(db)?
                        {
                            report.sealed_values += 1;
                            changed += 1;
                        }
                    }
                    Err(_) => report.unreadable += 1,
                }
            }
        }
    }
    progress(&format!(
        "pass {}: {} data keys, {} vault keys, {} other sealed values re-sealed so far",
        report.passes, report.data_keys, report.vault_keys, report.sealed_values
    ));
    Ok(changed)
}

/// Re-reads the key files when they change (a rotation), for a running server.
pub async fn reload_keys(ring: Arc<Keyring>, kek_file: std::path::PathBuf) {
    {
        let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let previous = previous_keys_path(&kek_file);
        let mut seen = (stamp(&kek_file), stamp(&previous));
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(RELOAD_SECONDS));
        loop {
            tick.tick().await;
            let now = (stamp(&kek_file), stamp(&previous));
            if now == seen {
                continue;
            }
            match (load_or_create_kek(&kek_file), load_previous_keys(&kek_file)) {
                (Ok(current), Ok(old)) => {
                    tracing::info!(key = %current.id(), previous = old.len(), "key-encryption keys reloaded");
                    ring.replace(current, old);
                    seen = now;
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "the key files changed but could not be read; keeping the keys in memory");
                }
            }
        }
    }
}
