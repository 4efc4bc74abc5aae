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

    /// The canonical text of the entry at `index` and its Merkle leaf hash. The text is written
    /// directly, members in RFC 8785 order, rather than built as a JSON value and sorted: it is
    /// on the path of every audited change. A test holds it byte-equal to canonicalising
    /// [`AuditRecord::entry`].
    pub fn leaf(&self, index: u64) -> Result<(String, Hash), jcs::NotCanonicalisable> {
        let text = self.canonical_text(index)?;
        let hash = leaf_hash(text.as_bytes());
        Ok((text, hash))
    }

    fn canonical_text(&self, index: u64) -> Result<String, jcs::NotCanonicalisable> {
        let opt = |v: &Option<String>, out: &mut String| match v {
            Some(s) => jcs::string(s, out),
            None => out.push_str("null"),
        };
        let mut out = String::with_capacity(256);
        // Members sorted by UTF-16 code units: action, actor, details, index, interaction,
        // outcome, source, target, time.
        out.push_str("{\"action\":");
        jcs::string(&self.action, &mut out);
        out.push_str(",\"actor\":");
        jcs::string(&self.actor, &mut out);
        out.push_str(",\"details\":");
        jcs::object(&self.details, &mut out)?;
        out.push_str(",\"index\":");
        out.push_str(&index.to_string());
        out.push_str(",\"interaction\":");
        opt(&self.interaction, &mut out);
        out.push_str(",\"outcome\":");
        jcs::string(self.outcome.as_str(), &mut out);
        out.push_str(",\"source\":");
        opt(&self.source, &mut out);
        out.push_str(",\"target\":");
        opt(&self.target, &mut out);
        out.push_str(",\"time\":");
        jcs::string(&crate::rfc3339(self.time), &mut out);
        out.push('}');
        Ok(out)
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
    fn the_directly_written_leaf_equals_canonicalising_the_api_object() {
        let mut nested = Map::new();
        nested.insert("z".into(), json!([1, "two", null, {"b": true, "a": false}]));
        let records = [
            AuditRecord::new("auth.sign_in", "anonymous"),
            AuditRecord::new("user.role_change", user("u1"))
                .target(user("u2"))
                .source("2001:db8::1")
                .failure()
                .detail("from", "agent")
                .detail("to", "admin")
                .detail("count", -3)
                .detail("quote\"and\\slash\n\u{7}é€😀", "value\twith\u{1f}controls")
                .detail("nested", Value::Object(nested)),
            AuditRecord {
                interaction: Some("interaction:i1".into()),
                ..AuditRecord::new("x", "cli")
            },
        ];
        for (i, r) in records.iter().enumerate() {
            for index in [0u64, 7, u64::from(u32::MAX) + 5] {
                let expected = jcs::canonical(&r.entry(index)).unwrap();
                assert_eq!(r.leaf(index).unwrap().0, expected, "record {i} at {index}");
            }
        }
        let floats = AuditRecord::new("x", "cli").detail("f", 1.5);
        assert!(floats.leaf(0).is_err(), "floats stay refused");
    }

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
