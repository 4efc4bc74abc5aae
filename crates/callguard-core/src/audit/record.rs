//! What an audit entry says (PCI DSS 10.2.2): when, who, what, to what, in which interaction,
//! with what outcome, from where, and details. Entries hold identifiers and field names only —
//! never personal data, codes or tokens. The entry object, with its index, is exactly what
//! `GET /api/v1/audit` returns and what the Merkle leaf hashes (RFC 8785 canonical JSON).

use super::jcs;
use super::merkle::{leaf_hash, Hash};
use crate::UnixTime;
use serde_json::{json, Map, Value};

/// Whether the action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One thing that happened, before it gets its index in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub time: UnixTime,
    /// `user:<id>`, `customer:<id>`, `cli`, `system` or `anonymous`.
    pub actor: String,
    /// Dotted name, e.g. `auth.sign_in`, `user.create`, `user.role_change`.
    pub action: String,
    /// What was acted on, e.g. `user:<id>`, `session:<id>`.
    pub target: Option<String>,
    pub interaction: Option<String>,
    pub outcome: Outcome,
    /// The source address, when the action came over the network.
    pub source: Option<String>,
    pub details: Map<String, Value>,
}

impl AuditRecord {
    /// A successful action by `actor` now.
    #[must_use]
    pub fn new(action: &str, actor: impl Into<String>) -> Self {
        Self {
            time: crate::now(),
            actor: actor.into(),
            action: action.to_owned(),
            target: None,
            interaction: None,
            outcome: Outcome::Success,
            source: None,
            details: Map::new(),
        }
    }

    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    #[must_use]
    pub fn source(mut self, source: impl ToString) -> Self {
        self.source = Some(source.to_string());
        self
    }

    #[must_use]
    pub fn failure(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    /// Adds a detail. Callers pass identifiers, names of fields and enumerated reasons only.
    #[must_use]
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The entry object at `index`, as the API returns it.
    #[must_use]
    pub fn entry(&self, index: u64) -> Value {
        json!({
            "index": index,
            "time": crate::rfc3339(self.time),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "interaction": self.interaction,
            "outcome": self.outcome.as_str(),
            "source": self.source,
            "details": Value::Object(self.details.clone()),
        })
    }

    /// The canonical text of the entry at `index` and its Merkle leaf hash.
    pub fn leaf(&self, index: u64) -> Result<(String, Hash), jcs::NotCanonicalisable> {
        let text = jcs::canonical(&self.entry(index))?;
        let hash = leaf_hash(text.as_bytes());
        Ok((text, hash))
    }
}

/// `user:<id>` for an actor or target.
#[must_use]
pub fn user(id: &str) -> String {
    format!("user:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_has_the_pci_fields_and_a_canonical_leaf() {
        let r = AuditRecord::new("auth.sign_in", user("u1"))
            .target(user("u1"))
            .source("192.0.2.1")
            .detail("method", "totp");
        let e = r.entry(7);
        for k in [
            "index",
            "time",
            "actor",
            "action",
            "target",
            "interaction",
            "outcome",
            "source",
            "details",
        ] {
            assert!(e.get(k).is_some(), "{k}");
        }
        let (text, hash) = r.leaf(7).unwrap();
        assert!(text.starts_with("{\"action\":\"auth.sign_in\",\"actor\":\"user:u1\",\"details\":{\"method\":\"totp\"},\"index\":7,"));
        assert_eq!(hash, leaf_hash(text.as_bytes()));
        assert_ne!(r.leaf(8).unwrap().1, hash, "the index is part of the leaf");
    }
}
