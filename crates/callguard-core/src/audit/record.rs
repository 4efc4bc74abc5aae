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
        let mut out = String::with_capacity(256);
        self.write_head(&mut out)?;
        push_index(index, &mut out);
        self.write_tail(&mut out);
        Ok(out)
    }

    /// The canonical text without its index, cut where the index goes: the head ends with the
    /// details object, the tail starts with `,"interaction":`. An entry can so be written down
    /// before it has an index (PostgreSQL's integrator gives it one later, see
    /// [`AuditRecord::join`]); joined, the text is exactly [`AuditRecord::leaf`]'s.
    pub fn unindexed(&self) -> Result<(String, String), jcs::NotCanonicalisable> {
        let mut head = String::with_capacity(192);
        self.write_head(&mut head)?;
        let mut tail = String::with_capacity(128);
        self.write_tail(&mut tail);
        Ok((head, tail))
    }

    /// The canonical text at `index` of an entry written down as [`AuditRecord::unindexed`],
    /// and its leaf hash.
    #[must_use]
    pub fn join(head: &str, index: u64, tail: &str) -> (String, Hash) {
        let mut out = String::with_capacity(head.len() + tail.len() + 32);
        out.push_str(head);
        push_index(index, &mut out);
        out.push_str(tail);
        let hash = leaf_hash(out.as_bytes());
        (out, hash)
    }

    // Members sorted by UTF-16 code units: action, actor, details | index | interaction,
    // outcome, source, target, time.
    fn write_head(&self, out: &mut String) -> Result<(), jcs::NotCanonicalisable> {
        out.push_str("{\"action\":");
        jcs::string(&self.action, out);
        out.push_str(",\"actor\":");
        jcs::string(&self.actor, out);
        out.push_str(",\"details\":");
        jcs::object(&self.details, out)
    }

    fn write_tail(&self, out: &mut String) {
        let opt = |v: &Option<String>, out: &mut String| match v {
            Some(s) => jcs::string(s, out),
            None => out.push_str("null"),
        };
        out.push_str(",\"interaction\":");
        opt(&self.interaction, out);
        out.push_str(",\"outcome\":");
        jcs::string(self.outcome.as_str(), out);
        out.push_str(",\"source\":");
        opt(&self.source, out);
        out.push_str(",\"target\":");
        opt(&self.target, out);
        out.push_str(",\"time\":");
        jcs::string(&crate::rfc3339(self.time), out);
        out.push('}');
    }
}

fn push_index(index: u64, out: &mut String) {
    use std::fmt::Write;
    out.push_str(",\"index\":");
    let _ = write!(out, "{index}");
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
                let (head, tail) = r.unindexed().unwrap();
                assert_eq!(
                    AuditRecord::join(&head, index, &tail),
                    r.leaf(index).unwrap(),
                    "written down before its index, record {i} at {index}"
                );
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
