//! Idempotency keys on customer operations: a client that got no answer (a dropped connection,
//! a node killed mid-request, a 503 from the balancer) retries with the same `Idempotency-Key`
//! and gets the first operation's answer instead of a second change and a second audit entry.
//! The key is recorded in the operation's own guarded write, so "acted" and "remembered" are one
//! fact on every node. Keys are per account and remembered for a day; a key sent again with a
//! different request is refused.

use super::model::{OperationKind, OperationRequest, OperationResponse};
use super::service::Interactions;
use crate::error::{Error, FieldProblem};
use crate::features::vault::service::masked_view;
use crate::principal::Principal;
use callguard_core::now;
use callguard_store::{IdempotencyRow, IDEMPOTENCY_WINDOW};

/// The `Idempotency-Key` header's value: 1 to 255 visible ASCII characters. Debug shows nothing.
pub struct IdempotencyKey(String);

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(<redacted>)")
    }
}

/// The header that carries the key.
pub const HEADER: &str = "idempotency-key";

impl IdempotencyKey {
    /// Checks a header value.
    pub fn parse(value: &[u8]) -> Result<Self, Error> {
        let ok = !value.is_empty()
            && value.len() <= 255
            && value.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
        match std::str::from_utf8(value) {
            Ok(text) if ok => Ok(Self(text.to_owned())),
            _ => Err(key_problem(
                "1 to 255 visible ASCII characters (a UUID is a good key)",
            )),
        }
    }
}

fn key_problem(message: &str) -> Error {
    Error::InvalidFields(vec![FieldProblem {
        field: "Idempotency-Key".into(),
        detail: message.into(),
    }])
}

/// What a keyed operation claims before it runs: the row its write will insert.
pub(super) struct Claim(pub(super) IdempotencyRow);

impl Interactions {
    /// The claim `key` makes for request `r` on `customer_id` by `p` (hashes keyed with the
    /// index key: a copy of the database tells nothing about keys or requests).
    pub(super) fn claim(
        &self,
        p: &Principal,
        customer_id: &str,
        r: &OperationRequest,
        key: &IdempotencyKey,
    ) -> Claim {
        let index = self.vault.index_key();
        let request = format!(
            "{customer_id}\0{}\0{}\0{}",
            r.interaction_id,
            r.kind.as_str(),
            r.data
        );
        Claim(IdempotencyRow {
            user_id: p.user.id.clone(),
            key_hash: index.code_hash("idempotency-key", &key.0),
            request_hash: index.code_hash("idempotency-request", &request),
            customer_id: customer_id.to_owned(),
            interaction_id: r.interaction_id.clone(),
            kind: r.kind.as_str().to_owned(),
            level: 0,
            created_at: now(),
        })
    }

    /// The answer of the operation already done under this claim's key, if any; the same key
    /// with another request is refused.
    pub(super) async fn replay(&self, claim: &Claim) -> Result<Option<OperationResponse>, Error> {
        let c = &claim.0;
        let Some(done) = self
            .vault
            .store()
            .idempotent_operation(&c.user_id, &c.key_hash, c.created_at - IDEMPOTENCY_WINDOW)
            .await?
        else {
            return Ok(None);
        };
        if done.request_hash != c.request_hash {
            return Err(key_problem(
                "this key was sent before with a different request; use a new key for a new operation",
            ));
        }
        let kind = OperationKind::parse(&done.kind).ok_or(Error::Internal)?;
        let after = self.vault.open(&done.customer_id).await?;
        Ok(Some(OperationResponse {
            kind,
            level: done.level,
            customer: masked_view(&after),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_characters_and_its_debug_shows_nothing() {
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(&[b'a'; 256]).is_err());
        assert!(IdempotencyKey::parse(b"tab\there").is_err());
        assert!(IdempotencyKey::parse("zażółć".as_bytes()).is_err());
        let key = IdempotencyKey::parse(b"6f1c9a3e-0b7d-4c55-9d8e-2f4a1b7c3d90").unwrap();
        assert_eq!(format!("{key:?}"), "IdempotencyKey(<redacted>)");
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
    }
}
