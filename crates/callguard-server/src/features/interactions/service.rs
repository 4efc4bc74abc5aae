//! Interactions and two-step caller verification (SPEC C4), and the operations agents carry out
//! on a caller's behalf. Level 1: the caller identifies (national id, a service name, or
//! knowledge answers). Level 2, only from level 1: a one-time code from the customer's own
//! portal, or one sent to their registered phone or e-mail. A policy table says which operation
//! needs which level. Failures are limited per interaction and per customer, and every attempt is
//! audited (the alert rules watch `interaction.verify` failures).

use super::model::*;
use crate::error::Error;
use crate::features::vault::service::{masked_view, Opened, Problems, Vault};
use crate::notify::Notifier;
use crate::principal::{customer_ref, Principal};
use callguard_core::vault::crypto::IndexKind;
use callguard_core::vault::validate;
use callguard_core::{now, rfc3339, Secret, UnixTime};
use callguard_store::{InteractionRow, VaultWrite};
use rand::Rng;
use serde::Serialize;
use std::sync::Arc;

/// Failed verification attempts one interaction allows before verification locks in it.
pub const MAX_FAILURES_PER_INTERACTION: i64 = 5;

/// Failed attempts on one customer, across interactions, within [`CUSTOMER_WINDOW`].
pub const MAX_FAILURES_PER_CUSTOMER: i64 = 10;

pub const CUSTOMER_WINDOW: i64 = 24 * 3600;

/// How long a portal code or an OTP is valid.
pub const CODE_SECONDS: i64 = 10 * 60;

/// Characters of portal codes: no 0/O, 1/I/L, so they read out unambiguously.
pub(crate) const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

pub(crate) const CODE_LEN: usize = 8;

/// A new portal code: 8 characters of a 31-letter alphabet (about 40 bits), shown as
/// `ABCD-EFGH`.
#[must_use]
pub fn portal_code() -> Secret<String> {
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect();
    Secret::new(format!("{}-{}", &raw[..4], &raw[4..]))
}

/// A new OTP: 8 digits (easy to read out from an SMS).
pub(crate) fn otp_code() -> Secret<String> {
    let mut rng = rand::rngs::OsRng;
    Secret::new(
        (0..CODE_LEN)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect(),
    )
}

/// A portal code as pressed on a telephone keypad: each letter becomes the key that carries
/// it (ABC→2 … WXYZ→9), digits stay. Portal codes are hashed in this form so a caller can key
/// one in from the IVR and an agent can type the letters at the desk; the code alphabet holds
/// 8 values per key, so a code keeps 24 bits against guessing, behind the attempt limits.
#[must_use]
pub fn keypad_form(code: &str) -> String {
    normalise_code(code)
        .chars()
        .map(|c| match c {
            'A'..='C' => '2',
            'D'..='F' => '3',
            'G'..='I' => '4',
            'J'..='L' => '5',
            'M'..='O' => '6',
            'P'..='S' => '7',
            'T'..='V' => '8',
            'W'..='Z' => '9',
            other => other,
        })
        .collect()
}

/// The form of a code that gets hashed: upper case, without separators.
#[must_use]
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Interactions, verification and operations.
pub struct Interactions {
    pub(crate) vault: Arc<Vault>,
    pub(crate) notifier: Arc<Notifier>,
    pub(crate) policy: Policy,
}

impl Interactions {
    pub fn new(vault: Arc<Vault>, notifier: Arc<Notifier>, policy: Policy) -> Self {
        Self {
            vault,
            notifier,
            policy,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The interaction `id` of agent `p`; another agent's interaction is not found.
    pub(crate) async fn own(&self, p: &Principal, id: &str) -> Result<InteractionRow, Error> {
        self.vault
            .store()
            .interaction(id)
            .await?
            .filter(|i| i.agent_id == p.user.id)
            .ok_or(Error::NotFound)
    }

    pub(crate) async fn view(
        &self,
        i: &InteractionRow,
        candidates: usize,
    ) -> Result<InteractionView, Error> {
        let st = state_of(&i.state);
        let customer = match &i.customer_id {
            Some(c) => match self.vault.open(c).await {
                Ok(o) => Some(masked_view(&o)),
                Err(Error::NotFound) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(InteractionView {
            id: i.id.clone(),
            verification_level: st.level,
            status: i.status.clone(),
            channel: i.channel.clone(),
            direction: i.direction.clone(),
            customer_id: i.customer_id.clone(),
            customer,
            candidates,
            steps: st.steps.clone(),
            attempts_left: (MAX_FAILURES_PER_INTERACTION - st.failures).max(0),
            locked: st.locked,
            otp_pending: st.otp.as_ref().map(|o| o.channel.clone()),
            started_at: rfc3339(i.started_at),
            ended_at: i.ended_at.map(rfc3339),
            disposition: i.disposition.clone(),
        })
    }

    /// Starts an interaction and pops up the caller's record when the number singles one out.
    pub async fn start(&self, p: &Principal, r: NewInteraction) -> Result<InteractionView, Error> {
        let mut problems = Problems::default();
        let from = r.from.trim();
        let mut from_hash = None;
        if r.channel == InteractionChannel::Phone {
            match validate::phone(from) {
                Ok(e164) => from_hash = Some(e164),
                // Withheld or odd caller ids are normal: the call goes on unlinked.
                Err(_) if from.is_empty() || from.eq_ignore_ascii_case("anonymous") => {}
                Err(e) => problems.add("from", e),
            }
        } else if from.chars().count() > 254 || from.chars().any(char::is_control) {
            problems.add("from", "at most 254 characters, no control characters");
        }
        problems.into_result()?;
        let mut candidates = 0;
        let customer_id = match r.customer_id {
            Some(c) => {
                self.vault.open(&c).await?;
                Some(c)
            }
            None => match &from_hash {
                Some(e164) => {
                    let found = self.vault.find_by(IndexKind::Phone, e164).await?;
                    candidates = found.len();
                    (found.len() == 1).then(|| found[0].row.id.clone())
                }
                None => None,
            },
        };
        let id = uuid::Uuid::new_v4().to_string();
        let t = now();
        let mut state = CallState::default();
        if customer_id.is_none() {
            state.caller_sealed = from_hash.as_ref().map(|e| self.vault.seal_caller(&id, e));
        }
        let row = InteractionRow {
            id: id.clone(),
            version: 1,
            agent_id: p.user.id.clone(),
            customer_id: customer_id.clone(),
            channel: serde_plain(&r.channel),
            direction: serde_plain(&r.direction),
            from_hash: from_hash.map(|e| self.vault.index_key().blind(IndexKind::Phone, &e)),
            status: "active".into(),
            started_at: t,
            ended_at: None,
            state: serde_json::to_string(&state).map_err(|_| Error::Internal)?,
            disposition: None,
        };
        let mut audit = p
            .actor()
            .record("interaction.start")
            .detail("channel", row.channel.clone())
            .detail("direction", row.direction.clone())
            .detail("linked", customer_id.is_some());
        audit.interaction = Some(id.clone());
        if let Some(c) = &customer_id {
            audit = audit.target(customer_ref(c));
        }
        self.vault
            .store()
            .vault_commit(VaultWrite {
                interaction: Some((row.clone(), None)),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        self.view(&row, candidates).await
    }

    pub async fn get(&self, p: &Principal, id: &str) -> Result<InteractionView, Error> {
        let i = self.own(p, id).await?;
        self.view(&i, 0).await
    }

    /// Ends an interaction: reveals and operations stop at once.
    pub async fn end(&self, p: &Principal, id: &str) -> Result<InteractionView, Error> {
        let i = self.own(p, id).await?;
        if i.status != "active" {
            return Err(Error::State("the interaction has already ended"));
        }
        let mut next = i.clone();
        next.status = "ended".into();
        next.ended_at = Some(now());
        next.state = without_caller(&i.state)?;
        next.version += 1;
        let mut audit = p.actor().record("interaction.end");
        audit.interaction = Some(i.id.clone());
        if let Some(c) = &i.customer_id {
            audit = audit.target(customer_ref(c));
        }
        if !self
            .vault
            .store()
            .vault_commit(VaultWrite {
                interaction: Some((next.clone(), Some(i.version))),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?
        {
            return Err(Error::State("the interaction changed meanwhile; try again"));
        }
        self.view(&next, 0).await
    }

    /// The telephony edge hands the call it opened to the agent who answered it on their
    /// softphone: from then on the call is the agent's (their desk opens it, they verify, reveal
    /// and wrap up in it). Only the edge hands over, only its own active calls, only to an agent.
    pub async fn hand_over(
        &self,
        edge: &Principal,
        id: &str,
        agent_id: &str,
    ) -> Result<InteractionView, Error> {
        if edge.user.id != crate::principal::TELEPHONY_EDGE {
            return Err(Error::Forbidden);
        }
        let i = self.own(edge, id).await?;
        self.give(edge, i, agent_id, None).await
    }

    /// Gives the active interaction `i` to the agent `to` (from `from`, for a transfer), in one
    /// audited write that fails if the interaction changed meanwhile.
    async fn give(
        &self,
        edge: &Principal,
        i: InteractionRow,
        to: &str,
        from: Option<&str>,
    ) -> Result<InteractionView, Error> {
        if i.status != "active" {
            return Err(Error::State("the interaction has already ended"));
        }
        let agent = self.vault.store().user_by_id(to).await?;
        if !agent.is_some_and(|u| u.role == callguard_core::Role::Agent) {
            return Err(Error::State("calls are handed over to agents only"));
        }
        let mut next = i.clone();
        next.agent_id = to.to_owned();
        next.version += 1;
        let mut audit = edge
            .actor()
            .record("interaction.hand_over")
            .target(callguard_core::audit::record::user(to));
        if let Some(from) = from {
            audit = audit.detail("from", callguard_core::audit::record::user(from));
        }
        audit.interaction = Some(i.id.clone());
        if !self
            .vault
            .store()
            .vault_commit(VaultWrite {
                interaction: Some((next.clone(), Some(i.version))),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?
        {
            return Err(Error::State("the interaction changed meanwhile; try again"));
        }
        self.view(&next, 0).await
    }
}

impl Interactions {
    /// The telephony edge passes the call it carries from the agent `from` to the agent `to` (a
    /// transfer): the interaction, its verification level and everything in it, becomes `to`'s.
    /// Only the edge, only an active interaction still `from`'s, only to an agent.
    pub async fn hand_on(
        &self,
        edge: &Principal,
        id: &str,
        from: &str,
        to: &str,
    ) -> Result<InteractionView, Error> {
        if edge.user.id != crate::principal::TELEPHONY_EDGE {
            return Err(Error::Forbidden);
        }
        let i = self
            .vault
            .store()
            .interaction(id)
            .await?
            .filter(|i| i.agent_id == from)
            .ok_or(Error::NotFound)?;
        self.give(edge, i, to, Some(from)).await
    }
}

/// An interaction's state without the caller's sealed number (once the call is over).
pub(crate) fn without_caller(state: &str) -> Result<String, Error> {
    let mut st = state_of(state);
    st.caller_sealed = None;
    serde_json::to_string(&st).map_err(|_| Error::Internal)
}

/// The customer an attempt linked the interaction to, when it was not linked before.
pub(crate) fn next_customer(customer: Option<&Opened>, i: &InteractionRow) -> Option<String> {
    match (customer, &i.customer_id) {
        (Some(o), None) => Some(o.row.id.clone()),
        _ => None,
    }
}

pub(crate) fn customer_locked(row: &callguard_store::CustomerRow, t: UnixTime) -> bool {
    row.verify_failures >= MAX_FAILURES_PER_CUSTOMER
        && row
            .verify_window_start
            .is_some_and(|s| t - s < CUSTOMER_WINDOW)
}

/// The serde name of a unit enum value.
pub(crate) fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_portal_code_and_its_keypad_digits_have_one_form() {
        assert_eq!(keypad_form("abcd-efgh"), "22233344");
        assert_eq!(keypad_form("JKMN PQRS"), "55667777");
        assert_eq!(keypad_form("TUVW-XYZ9"), "88899999");
        assert_eq!(keypad_form("22233344"), keypad_form("ABCD-EFGH"));
        let code = portal_code();
        let form = keypad_form(code.expose());
        assert_eq!(form.len(), CODE_LEN);
        assert!(form.chars().all(|c| ('2'..='9').contains(&c)), "{form}");
    }
}
