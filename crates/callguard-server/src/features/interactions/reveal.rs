//! Revealing one field of a customer during a call (SPEC C3): an interaction rule, so it lives
//! here. Agents only, in their own active interaction with this customer at level 1 or more,
//! for a listed reason, within the per-agent rate limit; every reveal and every refusal is
//! audited with the field, the reason and the interaction, never the value.

use super::model::state_of;
use super::service::Interactions;
use crate::error::Error;
use crate::features::vault::service::RevealReason;
use crate::principal::{customer_ref, Principal};
use callguard_core::vault::model::Field;
use callguard_store::{InteractionRow, VaultWrite};

impl Interactions {
    /// Reveals one field (SPEC C3): agents only, during their own active interaction with this
    /// customer at verification level 1 or more, for a listed reason, within the per-agent rate
    /// limit. Every reveal and every refused reveal is audited with the field, the reason and
    /// the interaction, never the value.
    pub async fn reveal(
        &self,
        p: &Principal,
        id: &str,
        field: Field,
        reason: RevealReason,
        interaction_id: &str,
    ) -> Result<serde_json::Value, Error> {
        let base = p
            .actor()
            .record("customer.reveal")
            .target(customer_ref(id))
            .detail("field", field.as_str())
            .detail("reason", reason.as_str());
        let refuse = |why: &'static str, outside: bool, err: Error| {
            let mut r = base.clone().failure().detail("refused", why);
            if outside {
                r = r.detail("outside_interaction", true);
            } else {
                r.interaction = Some(interaction_id.to_owned());
            }
            (r, err)
        };
        let interaction = self.vault.store().interaction(interaction_id).await?;
        let checked = match interaction {
            Some(i) => revealable(p, i, id),
            None => Err(Refusal {
                why: "no_such_interaction",
                outside: true,
                error: Error::State(
                    "the interaction does not exist: start one with POST /api/v1/interactions",
                ),
            }),
        }
        .map_err(|r| refuse(r.why, r.outside, r.error));
        let i = match checked {
            Ok(i) => i,
            Err((record, err)) => {
                self.vault.store().append(vec![record]).await?;
                return Err(err);
            }
        };
        if let Err(window) = self.vault.take_reveal(&p.user.id).await? {
            let (record, err) = refuse("rate_limited", false, Error::Throttled(window));
            self.vault.store().append(vec![record]).await?;
            return Err(err);
        }
        let o = self.vault.open(id).await?;
        let value = o.record.field(field);
        let mut audit = base;
        audit.interaction = Some(i.id.clone());
        audit = audit.detail("level", state_of(&i.state).level);
        // The reveal counts only if the interaction is unchanged when its entry commits.
        let ok = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                interaction_guard: Some((i.id.clone(), i.version)),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        if !ok {
            return Err(Error::State(
                "the interaction changed meanwhile (ended?); check it and try again",
            ));
        }
        Ok(value)
    }
}

/// Why a reveal is refused: the audit reason, whether it happened outside an interaction of the
/// agent's, and the error.
struct Refusal {
    why: &'static str,
    outside: bool,
    error: Error,
}

/// The interaction, if a reveal of customer `id` may happen in it.
fn revealable(p: &Principal, i: InteractionRow, id: &str) -> Result<InteractionRow, Refusal> {
    let refusal = |why, outside, error| {
        Err(Refusal {
            why,
            outside,
            error,
        })
    };
    if i.agent_id != p.user.id {
        return refusal(
            "not_your_interaction",
            true,
            Error::State("the interaction belongs to another agent"),
        );
    }
    if i.status != "active" {
        return refusal(
            "interaction_ended",
            true,
            Error::State(
                "the interaction has ended: reveals happen only during an active interaction",
            ),
        );
    }
    if i.customer_id.as_deref() != Some(id) {
        return refusal(
            "other_customer",
            true,
            Error::State("the interaction is not with this customer"),
        );
    }
    if state_of(&i.state).level < 1 {
        return refusal("not_verified", false, Error::VerificationRequired(1));
    }
    Ok(i)
}
