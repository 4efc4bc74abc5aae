//! The end of a call and what the desk lists: wrap-up with a disposition code from the
//! configured list (once per interaction, audited, ending the call if it is still active), an
//! agent's own interactions (so a reload or a second tab finds an open call again), and the
//! timeline of the customer an interaction is linked to. Staff are named by username.

use super::model::{state_of, InteractionView};
use super::service::Interactions;
use crate::error::Error;
use crate::principal::{customer_ref, Principal};
use callguard_core::{now, rfc3339};
use callguard_store::{InteractionRow, VaultWrite};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many of my interactions the desk and `GET /api/v1/me/interactions` list.
pub const MY_LIST: u64 = 20;

/// `POST /api/v1/interactions/{id}/wrap-up`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WrapUpRequest {
    /// One of the configured codes (`desk.dispositions`), like `resolved`.
    pub disposition: String,
}

/// One interaction in a list: no personal data, the agent by username.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InteractionSummary {
    pub id: String,
    pub status: String,
    pub channel: String,
    pub direction: String,
    /// The agent who handled it, by username.
    pub agent: String,
    pub customer_id: Option<String>,
    /// The verification level reached.
    pub level: i64,
    /// Operations carried out, in order.
    pub operations: Vec<String>,
    pub disposition: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// A code a configuration may list: 1 to 40 lower-case letters, digits or `_`.
#[must_use]
pub fn valid_disposition_code(code: &str) -> bool {
    (1..=40).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Interactions {
    /// The configured wrap-up codes, in their configured order.
    #[must_use]
    pub fn dispositions(&self) -> &[String] {
        &self.policy.dispositions
    }

    /// Wraps up one of my interactions with a disposition code, once; an active interaction
    /// ends with it.
    pub async fn wrap_up(
        &self,
        p: &Principal,
        id: &str,
        disposition: &str,
    ) -> Result<InteractionView, Error> {
        let code = disposition.trim();
        if !self.policy.dispositions.iter().any(|d| d == code) {
            return Err(Error::Validation(format!(
                "choose a wrap-up code from the list: {}",
                self.policy.dispositions.join(", ")
            )));
        }
        let i = self.own(p, id).await?;
        if i.disposition.is_some() {
            return Err(Error::State("the interaction is already wrapped up"));
        }
        let mut next = i.clone();
        if next.status == "active" {
            next.status = "ended".into();
            next.ended_at = Some(now());
        }
        next.disposition = Some(code.to_owned());
        next.state = super::service::without_caller(&i.state)?;
        next.version += 1;
        let mut audit = p
            .actor()
            .record("interaction.wrap_up")
            .detail("disposition", code)
            .detail("ended_now", i.status == "active");
        audit.interaction = Some(i.id.clone());
        if let Some(c) = &i.customer_id {
            audit = audit.target(customer_ref(c));
        }
        let written = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                interaction: Some((next.clone(), Some(i.version))),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        if !written {
            return Err(Error::State(
                "the interaction changed meanwhile (wrapped up in another tab?); reload and check",
            ));
        }
        self.view(&next, 0).await
    }

    /// The number of the caller on my open, unlinked phone call `id` (for registering them).
    pub async fn caller_number(&self, p: &Principal, id: &str) -> Result<Option<String>, Error> {
        let i = self.own(p, id).await?;
        let st = state_of(&i.state);
        Ok(
            match (&i.customer_id, i.status.as_str(), st.caller_sealed) {
                (None, "active", Some(sealed)) => self.vault.open_caller(&i.id, &sealed),
                _ => None,
            },
        )
    }

    /// My interactions, newest first: the open ones and the recent ones.
    pub async fn mine(&self, p: &Principal, limit: u64) -> Result<Vec<InteractionSummary>, Error> {
        let rows = self
            .vault
            .store()
            .agent_interactions(&p.user.id, limit)
            .await?;
        self.summaries(rows).await
    }

    /// The earlier interactions of the customer that my interaction `id` is linked to, newest
    /// first (empty when it is linked to nobody).
    pub async fn timeline(
        &self,
        p: &Principal,
        id: &str,
        limit: u64,
    ) -> Result<Vec<InteractionSummary>, Error> {
        let i = self.own(p, id).await?;
        let Some(customer) = &i.customer_id else {
            return Ok(Vec::new());
        };
        let rows = self
            .vault
            .store()
            .customer_interactions(customer, limit.saturating_add(1))
            .await?
            .into_iter()
            .filter(|r| r.id != i.id)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .collect();
        self.summaries(rows).await
    }

    async fn summaries(&self, rows: Vec<InteractionRow>) -> Result<Vec<InteractionSummary>, Error> {
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            if !names.contains_key(&r.agent_id) {
                let name = self
                    .vault
                    .store()
                    .user_by_id(&r.agent_id)
                    .await?
                    .map_or_else(|| "(removed account)".to_owned(), |u| u.username);
                names.insert(r.agent_id.clone(), name);
            }
            let st = state_of(&r.state);
            out.push(InteractionSummary {
                agent: names.get(&r.agent_id).cloned().unwrap_or_default(),
                id: r.id,
                status: r.status,
                channel: r.channel,
                direction: r.direction,
                customer_id: r.customer_id,
                level: st.level,
                operations: st.ops,
                disposition: r.disposition,
                started_at: rfc3339(r.started_at),
                ended_at: r.ended_at.map(rfc3339),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disposition_code_is_a_short_lower_case_word() {
        assert!(valid_disposition_code("callback_needed"));
        assert!(valid_disposition_code("level2"));
        assert!(!valid_disposition_code(""));
        assert!(!valid_disposition_code("Resolved"));
        assert!(!valid_disposition_code("no action"));
        assert!(!valid_disposition_code(&"a".repeat(41)));
    }
}
