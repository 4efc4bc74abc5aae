//! The company's own Do-Not-Call list and the TCPA consent ledger (SPEC C8). A number is stored
//! as a keyed blind index (so checks find it) and sealed by the key-encryption key (so pages can
//! show it masked); consent evidence is sealed too. Every change is audited with ids only, and
//! counts from the very next check: checks read the database, there is no cache to go stale.
//!
//! How a check knows that consent is needed: the dialer says so by naming a `purpose` (e.g.
//! `telemarketing`); then every number without an active `call` consent for that purpose gets
//! `no_consent`. Without a purpose consent is not checked (informational and transactional calls
//! need none under the TCPA's written-consent rule).

use crate::error::Error;
use crate::features::dnc::registry::ListFacts;
use crate::principal::Actor;
use callguard_core::dnc::number::Callee;
use callguard_core::kek::{Keyring, Sealing};
use callguard_core::rfc3339;
use callguard_core::vault::crypto::{IndexKey, IndexKind};
use callguard_store::{ConsentRecord, InternalDncEntry, Store};
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Where an opt-out may come from.
pub const OPT_OUT_SOURCES: &[&str] = &[
    "agent",
    "portal",
    "complaint",
    "email",
    "letter",
    "web_form",
];
/// How consent may have been given.
pub const CONSENT_SOURCES: &[&str] = &["web_form", "portal", "agent", "paper", "email"];
/// What a consent covers.
pub const CHANNELS: &[&str] = &["call", "sms"];
/// Longest consent evidence (text or URL).
pub const MAX_EVIDENCE_CHARS: usize = 2_000;
/// Most list rows one answer carries.
pub const MAX_LIST: u64 = 1_000;

/// An internal-list entry as the API and pages show it: the number masked.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InternalDncView {
    pub id: String,
    /// The number, masked (`+1 * *** *** 123`).
    pub number: String,
    pub source: String,
    /// Who recorded it: `user:<id>`, `customer:<id>` or `cli`.
    pub added_by: String,
    pub added_at: String,
}

/// A consent as the API and pages show it: the number masked, the evidence never.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ConsentView {
    pub id: String,
    /// The number, masked.
    pub number: String,
    pub purpose: String,
    pub channel: String,
    pub source: String,
    /// Whether evidence is on file (it is kept sealed, for disputes).
    pub evidence_on_file: bool,
    pub recorded_by: String,
    pub granted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    pub active: bool,
}

/// A consent to record.
pub struct NewConsent<'a> {
    pub number: &'a str,
    pub purpose: &'a str,
    pub channel: &'a str,
    pub source: &'a str,
    pub evidence: &'a str,
}

/// The internal list and the consent ledger over the store.
pub struct DncLists {
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
    index_key: Arc<IndexKey>,
}

pub(crate) fn number_aad(kind: &str, id: &str) -> String {
    format!("callguard:{kind}:{id}:number")
}

pub(crate) fn evidence_aad(id: &str) -> String {
    format!("callguard:consent:{id}:evidence")
}

/// A purpose is a short lower-case word, so it can be matched exactly and logged safely.
pub fn valid_purpose(purpose: &str) -> Result<(), Error> {
    let ok = (1..=40).contains(&purpose.len())
        && purpose.starts_with(|c: char| c.is_ascii_lowercase())
        && purpose
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Validation(
            "`purpose` must be 1 to 40 lower-case letters, digits or '_', starting with a letter, like telemarketing".into(),
        ))
    }
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), Error> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(Error::Validation(format!(
            "`{field}` must be one of {}",
            allowed.join(", ")
        )))
    }
}

fn callee(number: &str) -> Result<Callee, Error> {
    Callee::parse(number).ok_or_else(|| {
        Error::Validation(
            "`number` is not a valid phone number: ten NANP digits, or + and the country code"
                .into(),
        )
    })
}

impl DncLists {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, kek: Arc<Keyring>, index_key: Arc<IndexKey>) -> Self {
        Self {
            store,
            kek,
            index_key,
        }
    }

    fn index(&self, e164: &str) -> String {
        self.index_key.blind(IndexKind::Phone, e164)
    }

    /// The masked number of a sealed copy; a copy that does not open shows as hidden.
    fn masked(&self, kind: &str, id: &str, sealed: &[u8]) -> String {
        match self.kek.open(sealed, &number_aad(kind, id)) {
            Ok(raw) => callguard_core::vault::mask::phone(&String::from_utf8_lossy(raw.expose())),
            Err(_) => {
                tracing::error!(%id, "a sealed DNC number does not open");
                "***".into()
            }
        }
    }

    fn internal_view(&self, e: &InternalDncEntry) -> InternalDncView {
        InternalDncView {
            id: e.id.clone(),
            number: self.masked("dnc-internal", &e.id, &e.number_sealed),
            source: e.source.clone(),
            added_by: e.added_by.clone(),
            added_at: rfc3339(e.added_at),
        }
    }

    fn consent_view(&self, c: &ConsentRecord) -> ConsentView {
        ConsentView {
            id: c.id.clone(),
            number: self.masked("consent", &c.id, &c.number_sealed),
            purpose: c.purpose.clone(),
            channel: c.channel.clone(),
            source: c.source.clone(),
            evidence_on_file: !c.evidence_sealed.is_empty(),
            recorded_by: c.recorded_by.clone(),
            granted_at: rfc3339(c.granted_at),
            revoked_at: c.revoked_at.map(rfc3339),
            revoked_by: c.revoked_by.clone(),
            active: c.is_active(),
        }
    }

    /// Puts a number on the internal list at once. Returns the entry and whether it is new (an
    /// opt-out already on the list stays as it was).
    pub async fn opt_out(
        &self,
        actor: &Actor,
        number: &str,
        source: &str,
    ) -> Result<(InternalDncView, bool), Error> {
        one_of("source", source, OPT_OUT_SOURCES)?;
        let e164 = callee(number)?.e164();
        let id = uuid::Uuid::new_v4().to_string();
        let entry = InternalDncEntry {
            number_index: self.index(&e164),
            number_sealed: self
                .kek
                .seal(e164.as_bytes(), &number_aad("dnc-internal", &id)),
            source: source.to_owned(),
            added_by: actor.id.clone(),
            added_at: callguard_core::now(),
            id,
        };
        let audit = actor
            .record("dnc.internal.add")
            .target(format!("dnc-internal:{}", entry.id))
            .detail("source", source);
        let (stored, added) = self.store.add_internal_dnc(&entry, audit).await?;
        Ok((self.internal_view(&stored), added))
    }

    /// The newest entries of the internal list.
    pub async fn internal_list(&self, limit: u64) -> Result<Vec<InternalDncView>, Error> {
        let rows = self.store.internal_dnc_entries(limit.min(MAX_LIST)).await?;
        Ok(rows.iter().map(|e| self.internal_view(e)).collect())
    }

    /// Records a consent, in force at once.
    pub async fn grant_consent(
        &self,
        actor: &Actor,
        c: &NewConsent<'_>,
    ) -> Result<ConsentView, Error> {
        valid_purpose(c.purpose)?;
        one_of("channel", c.channel, CHANNELS)?;
        one_of("source", c.source, CONSENT_SOURCES)?;
        let evidence = c.evidence.trim();
        if evidence.is_empty() || evidence.chars().count() > MAX_EVIDENCE_CHARS {
            return Err(Error::Validation(format!(
                "`evidence` must be 1 to {MAX_EVIDENCE_CHARS} characters: the signed form's text, or a URL to it"
            )));
        }
        let e164 = callee(c.number)?.e164();
        let id = uuid::Uuid::new_v4().to_string();
        let record = ConsentRecord {
            number_index: self.index(&e164),
            number_sealed: self.kek.seal(e164.as_bytes(), &number_aad("consent", &id)),
            purpose: c.purpose.to_owned(),
            channel: c.channel.to_owned(),
            source: c.source.to_owned(),
            evidence_sealed: self.kek.seal(evidence.as_bytes(), &evidence_aad(&id)),
            recorded_by: actor.id.clone(),
            granted_at: callguard_core::now(),
            revoked_at: None,
            revoked_by: None,
            id,
        };
        let audit = actor
            .record("consent.grant")
            .target(format!("consent:{}", record.id))
            .detail("purpose", c.purpose)
            .detail("channel", c.channel)
            .detail("source", c.source);
        self.store.record_consent(&record, audit).await?;
        Ok(self.consent_view(&record))
    }

    /// Consents, newest first; those of one number when it is given.
    pub async fn consents(
        &self,
        number: Option<&str>,
        limit: u64,
    ) -> Result<Vec<ConsentView>, Error> {
        let index = match number {
            Some(n) => Some(self.index(&callee(n)?.e164())),
            None => None,
        };
        let rows = self
            .store
            .consents(index.as_deref(), limit.min(MAX_LIST))
            .await?;
        Ok(rows.iter().map(|c| self.consent_view(c)).collect())
    }

    /// Revokes a consent at once. An unknown id is not found; a revoked one cannot be revoked
    /// again.
    pub async fn revoke_consent(&self, actor: &Actor, id: &str) -> Result<ConsentView, Error> {
        let current = self.store.consent(id).await?.ok_or(Error::NotFound)?;
        let audit = actor
            .record("consent.revoke")
            .target(format!("consent:{id}"))
            .detail("purpose", current.purpose.clone())
            .detail("channel", current.channel.clone());
        if !self
            .store
            .revoke_consent(id, &actor.id, callguard_core::now(), audit)
            .await?
        {
            return Err(Error::Validation("the consent is revoked already".into()));
        }
        let row = self.store.consent(id).await?.ok_or(Error::NotFound)?;
        Ok(self.consent_view(&row))
    }

    /// What the lists say about the valid numbers among `callees`: which are opted out and, when
    /// `purpose` is given, which have an active `call` consent for it.
    pub async fn facts(
        &self,
        callees: &[Option<Callee>],
        purpose: Option<&str>,
    ) -> Result<ListFacts, Error> {
        let mut by_index: HashMap<String, String> = HashMap::new();
        for c in callees.iter().flatten() {
            let e164 = c.e164();
            by_index.entry(self.index(&e164)).or_insert(e164);
        }
        let indexes: Vec<String> = by_index.keys().cloned().collect();
        let numbers = |found: Vec<String>| -> HashSet<String> {
            found
                .iter()
                .filter_map(|i| by_index.get(i).cloned())
                .collect()
        };
        let internal = numbers(self.store.internal_dnc_matches(&indexes).await?);
        let consented = match purpose {
            Some(p) => Some(numbers(self.store.consented(&indexes, p, "call").await?)),
            None => None,
        };
        Ok(ListFacts {
            internal,
            consented,
        })
    }
}
