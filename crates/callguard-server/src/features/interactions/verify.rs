//! Caller verification in an interaction (SPEC C4): the attempt's preconditions, the check of
//! each method, one-time codes (portal codes and OTPs by SMS or e-mail), and the guarded write of
//! the outcome with its attempt limits.

use super::model::*;
use super::service::*;
use crate::error::Error;
use crate::features::vault::service::{Opened, Vault};
use crate::notify::Channel;
use crate::principal::{customer_actor, customer_of, customer_ref, Actor, Principal};
use callguard_core::vault::crypto::IndexKind;
use callguard_core::vault::validate;
use callguard_core::{now, rfc3339, Secret, UnixTime};
use callguard_store::CustomerRow;
use callguard_store::{CodeRow, InteractionRow, VaultWrite};

/// What one check found.
#[derive(Default)]
struct Attempt {
    passed: bool,
    /// The customer an identification singled out on an unlinked call.
    linked_now: Option<Opened>,
    /// The one-time code the attempt used, spent with the write.
    code_used: Option<String>,
}

impl Attempt {
    /// An identification passes only when the value singles out exactly one customer.
    fn single_out(&mut self, found: Vec<Opened>) -> bool {
        if found.len() == 1 {
            self.linked_now = found.into_iter().next();
            true
        } else {
            false
        }
    }
}

/// The result of an attempt, ready to be written.
struct Outcome {
    passed: bool,
    level: i64,
    code_used: Option<String>,
}

/// Refuses attempts that do not fit the interaction's state; returns whether the method is a
/// second (level 2) step.
fn precheck(i: &InteractionRow, st: &CallState, req: &VerifyRequest) -> Result<bool, Error> {
    if i.status != "active" {
        return Err(Error::State("the interaction has ended"));
    }
    if st.locked {
        return Err(Error::VerificationLocked(
            "too many failed attempts in this interaction; end it and escalate",
        ));
    }
    let second_step = matches!(
        req,
        VerifyRequest::PortalCode { .. }
            | VerifyRequest::OtpSend { .. }
            | VerifyRequest::Otp { .. }
    );
    if second_step && st.level < 1 {
        return Err(Error::State(
            "level 2 methods work only from level 1: identify the caller first",
        ));
    }
    if !second_step && st.level >= 1 {
        return Err(Error::State(
            "the caller is already identified (level 1 or more)",
        ));
    }
    Ok(second_step)
}

/// The customer's row with one more failed verification in the current 24-hour window.
fn one_more_failure(row: &CustomerRow, t: UnixTime) -> CustomerRow {
    let mut row = row.clone();
    match row.verify_window_start {
        Some(start) if t - start < CUSTOMER_WINDOW => row.verify_failures += 1,
        _ => {
            row.verify_window_start = Some(t);
            row.verify_failures = 1;
        }
    }
    row.version += 1;
    row
}

impl Interactions {
    /// One verification attempt.
    /// One verification attempt in the agent's own active interaction. Level 1 identifies the
    /// caller (national id, service name or knowledge answers); level 2 needs a one-time code
    /// and only follows level 1. Each failure counts towards the interaction's and the
    /// customer's limits, and the attempt commits with its audit entry or not at all.
    pub async fn verify(
        &self,
        p: &Principal,
        id: &str,
        req: VerifyRequest,
    ) -> Result<VerifyResponse, Error> {
        let i = self.own(p, id).await?;
        let st = state_of(&i.state);
        let method = req.method();
        let second_step = precheck(&i, &st, &req)?;
        let mut customer: Option<Opened> = match &i.customer_id {
            Some(c) => Some(self.vault.open(c).await?),
            None => None,
        };
        if let Some(o) = &customer {
            self.refuse_if_customer_locked(p, &i, o, method).await?;
        }
        if let VerifyRequest::OtpSend { channel } = req {
            let Some(o) = customer.as_ref() else {
                return Err(Error::State("the interaction is not linked to a customer"));
            };
            return self.send_otp(p, &i, st, o, channel).await;
        }
        let attempt = self.check(&i, &st, customer.as_ref(), req).await?;
        if let Some(o) = attempt.linked_now {
            // Identification singled out a customer whose verification is locked: refused like
            // a linked one, and the attempt does not count as a success.
            self.refuse_if_customer_locked(p, &i, &o, method).await?;
            customer = Some(o);
        }
        let outcome = Outcome {
            passed: attempt.passed,
            level: if second_step { 2 } else { 1 },
            code_used: attempt.code_used,
        };
        self.record_attempt(p, &i, st, customer.as_ref(), method, outcome)
            .await
    }

    /// A customer with too many failures in the last 24 hours is refused before any check.
    async fn refuse_if_customer_locked(
        &self,
        p: &Principal,
        i: &InteractionRow,
        o: &Opened,
        method: &str,
    ) -> Result<(), Error> {
        if !customer_locked(&o.row, now()) {
            return Ok(());
        }
        let mut audit = p
            .actor()
            .record("interaction.verify")
            .target(customer_ref(&o.row.id))
            .failure()
            .detail("method", method)
            .detail("refused", "customer_locked");
        audit.interaction = Some(i.id.clone());
        self.vault.store().append(vec![audit]).await?;
        Err(Error::VerificationLocked(
            "too many failed attempts on this customer in the last 24 hours",
        ))
    }

    /// Checks the caller's answer or code; for identification of an unlinked call, the one
    /// customer the value singles out.
    async fn check(
        &self,
        i: &InteractionRow,
        st: &CallState,
        customer: Option<&Opened>,
        req: VerifyRequest,
    ) -> Result<Attempt, Error> {
        let mut attempt = Attempt::default();
        attempt.passed = match req {
            VerifyRequest::NationalId { value } => match customer {
                Some(o) => Vault::national_id_matches(o, value.expose()),
                None => {
                    let found = self.vault.find_by_national_id(value.expose()).await?;
                    attempt.single_out(found)
                }
            },
            VerifyRequest::Service { value } => match customer {
                Some(o) => Vault::service_matches(o, value.expose()),
                None => match validate::service(value.expose()) {
                    Ok(v) => {
                        let found = self.vault.find_by(IndexKind::Service, &v).await?;
                        attempt.single_out(found)
                    }
                    Err(_) => false,
                },
            },
            VerifyRequest::SecurityAnswers { answers } => {
                let Some(o) = customer else {
                    return Err(Error::State(
                        "knowledge questions need the interaction linked to a customer: identify by national id or service first, or link the customer",
                    ));
                };
                let given: Vec<(String, Secret<String>)> = answers
                    .into_iter()
                    .map(|a| (a.question, a.answer))
                    .collect();
                self.vault.answers_match(o, &given).await?
            }
            VerifyRequest::PortalCode { code } => match customer {
                Some(o) => {
                    attempt.code_used = self
                        .match_code(&o.row.id, "portal", None, code.expose())
                        .await?;
                    attempt.code_used.is_some()
                }
                None => false,
            },
            VerifyRequest::Otp { code } => match (customer, &st.otp) {
                (Some(o), Some(_)) => {
                    attempt.code_used = self
                        .match_code(&o.row.id, "otp", Some(&i.id), code.expose())
                        .await?;
                    attempt.code_used.is_some()
                }
                _ => {
                    return Err(Error::State(
                        "no code was sent in this interaction: use `otp_send` first",
                    ))
                }
            },
            VerifyRequest::OtpSend { .. } => false,
        };
        Ok(attempt)
    }

    /// Writes the attempt: the new level or one more failure (and the customer's failure
    /// count), the spent code, and the audit entries, in one guarded write.
    async fn record_attempt(
        &self,
        p: &Principal,
        i: &InteractionRow,
        mut st: CallState,
        customer: Option<&Opened>,
        method: &str,
        outcome: Outcome,
    ) -> Result<VerifyResponse, Error> {
        let t = now();
        let mut next = i.clone();
        next.version += 1;
        let mut customer_write = None;
        let mut audit = p
            .actor()
            .record("interaction.verify")
            .detail("method", method);
        audit.interaction = Some(i.id.clone());
        if let Some(o) = customer {
            audit = audit.target(customer_ref(&o.row.id));
        }
        if outcome.passed {
            st.level = outcome.level;
            st.steps.push(Step {
                method: method.into(),
                level: outcome.level,
                at: rfc3339(t),
                code_id: outcome.code_used.clone(),
            });
            if method == "otp" {
                st.otp = None;
            }
            if let Some(o) = customer {
                next.customer_id = Some(o.row.id.clone());
            }
            audit = audit.detail("level", outcome.level);
            if let Some(c) = &outcome.code_used {
                audit = audit.detail("code_id", c.clone());
            }
        } else {
            st.failures += 1;
            if st.failures >= MAX_FAILURES_PER_INTERACTION {
                st.locked = true;
            }
            audit = audit
                .failure()
                .detail("failures", st.failures)
                .detail("locked", st.locked);
            customer_write = customer.map(|o| (one_more_failure(&o.row, t), Some(o.row.version)));
        }
        next.state = serde_json::to_string(&st).map_err(|_| Error::Internal)?;
        let mut records = vec![audit];
        if !outcome.passed && st.locked {
            let mut lock = p.actor().record("interaction.verification_locked");
            lock.interaction = Some(i.id.clone());
            if let Some(o) = customer {
                lock = lock.target(customer_ref(&o.row.id));
            }
            records.push(lock);
        }
        let ok = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                customers: customer_write.into_iter().collect(),
                interaction: Some((next, Some(i.version))),
                spend_code: outcome.code_used.map(|c| (c, t)),
                audit: records,
                ..VaultWrite::default()
            })
            .await?;
        if !ok {
            return Err(Error::State(
                "the code was used meanwhile or the interaction changed; try again",
            ));
        }
        let attempts_left = (MAX_FAILURES_PER_INTERACTION - st.failures).max(0);
        if !outcome.passed {
            return Err(Error::VerificationFailed(attempts_left));
        }
        Ok(VerifyResponse {
            level: st.level,
            attempts_left,
            sent_to: None,
            customer_id: next_customer(customer, i),
        })
    }

    /// The id of an unused, unexpired code of `purpose` that matches `code`.
    async fn match_code(
        &self,
        customer_id: &str,
        purpose: &str,
        interaction: Option<&str>,
        code: &str,
    ) -> Result<Option<String>, Error> {
        let form = if purpose == "portal" {
            keypad_form(code)
        } else {
            normalise_code(code)
        };
        let hash = self.vault.index_key().code_hash(purpose, &form);
        let live = self
            .vault
            .store()
            .live_codes(customer_id, purpose, now())
            .await?;
        Ok(live
            .into_iter()
            .filter(|c| interaction.is_none() || c.interaction_id.as_deref() == interaction)
            .find(|c| subtle::ConstantTimeEq::ct_eq(c.code_hash.as_bytes(), hash.as_bytes()).into())
            .map(|c| c.id))
    }

    /// Sends a one-time code to the customer's first registered contact for `channel`; returns
    /// the contact masked and the provider's receipt.
    async fn deliver(
        &self,
        o: &Opened,
        channel: Channel,
        code: &Secret<String>,
    ) -> Result<(String, crate::notify::Delivery), Error> {
        let (to, masked) = match channel {
            Channel::Sms => o
                .record
                .phones
                .first()
                .map(|x| (x.clone(), callguard_core::vault::mask::phone(x))),
            Channel::Email => o
                .record
                .emails
                .first()
                .map(|x| (x.clone(), callguard_core::vault::mask::email(x))),
        }
        .ok_or(Error::State(
            "the customer has no registered contact for that channel",
        ))?;
        let delivery = self
            .notifier
            .send_code(channel, &Secret::new(to), code, (CODE_SECONDS / 60) as u32)
            .await
            .map_err(|e| match e {
                crate::notify::NotifyError::NotConfigured(_) => Error::NotConfigured(
                    "no SMS provider or SMTP server is configured for one-time codes",
                ),
                other => {
                    tracing::warn!(error = %other, "a one-time code could not be delivered");
                    Error::Unavailable(
                        "the code could not be delivered; try the other channel or the portal code",
                    )
                }
            })?;
        Ok((masked, delivery))
    }

    async fn send_otp(
        &self,
        p: &Principal,
        i: &InteractionRow,
        mut st: CallState,
        o: &Opened,
        channel: Channel,
    ) -> Result<VerifyResponse, Error> {
        let code = otp_code();
        let t = now();
        let code_id = uuid::Uuid::new_v4().to_string();
        let (masked, delivery) = self.deliver(o, channel, &code).await?;
        let channel_name = match channel {
            Channel::Sms => "sms",
            Channel::Email => "email",
        };
        st.otp = Some(PendingOtp {
            code_id: code_id.clone(),
            channel: channel_name.into(),
        });
        let mut next = i.clone();
        next.version += 1;
        next.state = serde_json::to_string(&st).map_err(|_| Error::Internal)?;
        let mut audit = p
            .actor()
            .record("interaction.otp_send")
            .target(customer_ref(&o.row.id))
            .detail("channel", channel_name)
            .detail("code_id", code_id.clone())
            .detail("provider_id", delivery.provider_id);
        audit.interaction = Some(i.id.clone());
        let ok = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                interaction: Some((next, Some(i.version))),
                new_code: Some(CodeRow {
                    id: code_id,
                    customer_id: o.row.id.clone(),
                    purpose: "otp".into(),
                    code_hash: self
                        .vault
                        .index_key()
                        .code_hash("otp", &normalise_code(code.expose())),
                    interaction_id: Some(i.id.clone()),
                    created_at: t,
                    expires_at: t + CODE_SECONDS,
                    used_at: None,
                }),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        if !ok {
            return Err(Error::State("the interaction changed meanwhile; try again"));
        }
        Ok(VerifyResponse {
            level: st.level,
            attempts_left: (MAX_FAILURES_PER_INTERACTION - st.failures).max(0),
            sent_to: Some(masked),
            customer_id: None,
        })
    }

    /// Issues a portal verification code for a signed-in customer (single use, 10 minutes).
    /// A portal code asked for by the signed-in customer themself.
    pub async fn issue_portal_code_for(
        &self,
        p: &Principal,
    ) -> Result<(Secret<String>, UnixTime), Error> {
        let id = customer_of(p)?;
        self.issue_portal_code(&customer_actor(p, &id), &id).await
    }

    pub async fn issue_portal_code(
        &self,
        actor: &Actor,
        customer_id: &str,
    ) -> Result<(Secret<String>, UnixTime), Error> {
        self.vault.open(customer_id).await?;
        let code = portal_code();
        let t = now();
        let id = uuid::Uuid::new_v4().to_string();
        let audit = actor
            .record("portal.verification_code")
            .target(customer_ref(customer_id))
            .detail("code_id", id.clone());
        self.vault
            .store()
            .vault_commit(VaultWrite {
                new_code: Some(CodeRow {
                    id,
                    customer_id: customer_id.to_owned(),
                    purpose: "portal".into(),
                    code_hash: self
                        .vault
                        .index_key()
                        .code_hash("portal", &keypad_form(code.expose())),
                    interaction_id: None,
                    created_at: t,
                    expires_at: t + CODE_SECONDS,
                    used_at: None,
                }),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        Ok((code, t + CODE_SECONDS))
    }
}
