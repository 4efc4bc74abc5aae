//! The pre-call check as one use case: the national registry, the internal Do-Not-Call list,
//! consent for a purpose and the calling window in the called party's local time. The API's
//! `dnc/check`, and next the dialer and the telephony edge, all ask here, so the verdict is the
//! same whoever asks.

use super::lists::{valid_purpose, DncLists};
use super::registry::{Dnc, Reason, MAX_BATCH};
use crate::error::Error;
use callguard_core::dnc::hours::Timestamp;
use callguard_core::dnc::number::Callee;
use std::sync::Arc;

/// One number's verdict.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The number as asked.
    pub number: String,
    pub allowed: bool,
    /// Why not, in the contract's order; or `invalid_number` alone.
    pub reasons: Vec<Reason>,
}

/// The pre-call check.
pub struct DncChecks {
    registry: Arc<Dnc>,
    lists: Arc<DncLists>,
}

impl DncChecks {
    #[must_use]
    pub fn new(registry: Arc<Dnc>, lists: Arc<DncLists>) -> Self {
        Self { registry, lists }
    }

    /// Checks up to [`MAX_BATCH`] numbers for calls starting at `at` (RFC 3339; default now),
    /// requiring consent for `purpose` when one is named. Results are in the order asked.
    pub async fn check(
        &self,
        numbers: Vec<String>,
        at: Option<&str>,
        purpose: Option<&str>,
    ) -> Result<Vec<Checked>, Error> {
        if numbers.is_empty() || numbers.len() > MAX_BATCH {
            return Err(Error::Validation(format!(
                "send 1 to {MAX_BATCH} numbers per request"
            )));
        }
        let at = match at {
            Some(text) => text.trim().parse::<Timestamp>().map_err(|_| {
                Error::Validation(
                    "`at` must be an RFC 3339 time with an offset, like 2025-07-15T13:30:00Z"
                        .into(),
                )
            })?,
            None => Timestamp::now(),
        };
        if let Some(p) = purpose {
            valid_purpose(p)?;
        }
        let registry = self.registry.current().ok_or(Error::NotConfigured(
            "no national Do-Not-Call registry is loaded: import one with `callguard dnc import FILE`",
        ))?;
        let callees: Vec<Option<Callee>> = numbers.iter().map(|n| Callee::parse(n)).collect();
        let facts = self.lists.facts(&callees, purpose).await?;
        Ok(numbers
            .into_iter()
            .zip(&callees)
            .map(|(number, callee)| {
                let v = self
                    .registry
                    .verdict(&registry, callee.as_ref(), &facts, Some(at));
                Checked {
                    number,
                    allowed: v.allowed,
                    reasons: v.reasons,
                }
            })
            .collect())
    }
}
