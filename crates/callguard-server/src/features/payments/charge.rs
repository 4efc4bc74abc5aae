//! One charge of a payment request. The attempt's idempotency key is committed with the move
//! to `capturing` BEFORE the gateway is called, so that only one submit of a link wins (the
//! others find the payment moved on) and a gateway that does not answer is asked again with the
//! same key, which charges at most once. The card details are borrowed for the call and dropped
//! (wiped) by the caller as soon as it returns.

use super::gateway::{ChargeOutcome, ChargeRequest, GatewayError};
use super::model::Status;
use super::service::{status_of, Payments};
use crate::error::Error;
use crate::principal::Actor;
use callguard_core::payments::{CardDetails, Currency, Money};
use callguard_store::PaymentRow;
use std::time::Duration;

/// Tries of one charge when the gateway does not answer (all with the same key).
pub const CHARGE_TRIES: u32 = 3;

/// Waits between tries: 250 ms, then 500 ms.
fn backoff(try_no: u32) -> Duration {
    Duration::from_millis(250 << try_no.min(4))
}

impl Payments {
    /// Claims an open payment for a charge: the move to `capturing` with a fresh idempotency
    /// key, committed before anything is sent. Refused (nothing changes) when the payment moved
    /// on meanwhile — a second submit of the same link.
    pub(crate) async fn claim(&self, actor: &Actor, row: &PaymentRow) -> Result<PaymentRow, Error> {
        self.gateway()?;
        let key = format!("cg-{}-{}", row.id, uuid::Uuid::new_v4().simple());
        self.transition(actor, row, Status::Capturing, |n| {
            n.attempt_key = Some(key);
            n.attempts += 1;
        })
        .await
    }

    /// Arms a keypad capture for its charge: the payment, in `capturing` since the capture
    /// started, gets its attempt's idempotency key, committed before anything is sent (the
    /// same rule as [`Payments::claim`]). From then on it cannot be cancelled or expire.
    pub(crate) async fn arm_keypad(
        &self,
        actor: &Actor,
        row: &PaymentRow,
    ) -> Result<PaymentRow, Error> {
        self.gateway()?;
        if status_of(row)? != Status::Capturing || row.attempt_key.is_some() {
            return Err(Error::State("the payment is not being captured by keypad"));
        }
        let mut n = row.clone();
        n.attempt_key = Some(format!("cg-{}-{}", row.id, uuid::Uuid::new_v4().simple()));
        n.attempts += 1;
        n.version += 1;
        n.updated_at = callguard_core::now();
        let audit = super::service::record(actor, "payment.keypad.submit", &n);
        if !self
            .commit(callguard_store::PaymentWrite {
                payment: Some((n.clone(), Some(row.version))),
                audit: vec![audit],
                ..Default::default()
            })
            .await?
        {
            return Err(Error::State(
                "the payment changed meanwhile (cancelled or expired)",
            ));
        }
        Ok(n)
    }

    /// Charges `card` for the claimed payment `row` (in `capturing`, with its key) and records
    /// the outcome: authorised, declined with its reason, or failed. A card that needs 3-D
    /// Secure (pay-by-link with `return_url` only) stays `capturing` with the gateway's
    /// reference, and the bank's page to send the card holder to is answered beside the row.
    pub(crate) async fn charge(
        &self,
        actor: &Actor,
        row: &PaymentRow,
        card: &CardDetails,
        moto: bool,
        return_url: Option<&url::Url>,
    ) -> Result<(PaymentRow, Option<url::Url>), Error> {
        if status_of(row)? != Status::Capturing {
            return Err(Error::State("the payment is not being charged"));
        }
        let gateway = self.gateway()?.clone();
        let key = row.attempt_key.clone().ok_or(Error::Internal)?;
        let money = Currency::from_code(&row.currency)
            .ok()
            .and_then(|c| Money::new(row.amount_minor, c).ok())
            .ok_or(Error::Internal)?;
        let description = if row.description.is_empty() {
            format!("Payment {}", row.id)
        } else {
            row.description.clone()
        };
        let request = ChargeRequest {
            idempotency_key: &key,
            amount: money,
            card,
            description: &description,
            reference: &row.id,
            moto,
            return_url: if moto { None } else { return_url },
        };
        let summary = card.summary();
        let mut outcome = Err(GatewayError::Unreachable);
        for try_no in 0..CHARGE_TRIES {
            outcome = gateway.charge(&request).await;
            if outcome != Err(GatewayError::Unreachable) {
                break;
            }
            tracing::warn!(payment = %row.id, try_no, "the gateway did not answer; retrying with the same key");
            tokio::time::sleep(backoff(try_no)).await;
        }
        let name = gateway.name().to_owned();
        let kept = |n: &mut PaymentRow| {
            n.gateway = Some(name.clone());
            n.brand = Some(summary.brand.as_str().into());
            n.last4 = Some(summary.last4.clone());
            n.exp_month = Some(i64::from(summary.exp_month));
            n.exp_year = Some(i64::from(summary.exp_year));
        };
        let (reference, redirect_url) = match outcome {
            Ok(ChargeOutcome::RequiresAction {
                reference,
                redirect_url,
            }) => (reference, redirect_url),
            other => {
                return self
                    .record_outcome(actor, row, other, kept)
                    .await
                    .map(|r| (r, None))
            }
        };
        {
            if moto || return_url.is_none() {
                // No page to come back to: refused as an authentication failure rather than
                // left hanging.
                let next = self
                    .transition(actor, row, Status::Declined, |n| {
                        kept(n);
                        n.gateway_reference = Some(reference);
                        n.decline_reason = Some("authentication_failed".into());
                    })
                    .await?;
                return Ok((next, None));
            }
            let mut n = row.clone();
            kept(&mut n);
            n.gateway_reference = Some(reference);
            n.version += 1;
            n.updated_at = callguard_core::now();
            let audit = super::service::record(actor, "payment.authentication_required", &n);
            if !self
                .commit(callguard_store::PaymentWrite {
                    payment: Some((n.clone(), Some(row.version))),
                    audit: vec![audit],
                    ..Default::default()
                })
                .await?
            {
                return Err(Error::State(
                    "the payment changed meanwhile; read it again and retry",
                ));
            }
            Ok((n, Some(redirect_url)))
        }
    }

    /// Records a charge's outcome (from the charge itself or, after 3-D Secure, from asking the
    /// gateway): authorised, declined with its reason, or failed.
    pub(crate) async fn record_outcome(
        &self,
        actor: &Actor,
        row: &PaymentRow,
        outcome: Result<ChargeOutcome, GatewayError>,
        kept: impl Fn(&mut PaymentRow),
    ) -> Result<PaymentRow, Error> {
        match outcome {
            Ok(ChargeOutcome::Authorised {
                reference, token, ..
            }) => {
                self.transition(actor, row, Status::Authorised, |n| {
                    kept(n);
                    n.gateway_reference = Some(reference);
                    n.gateway_token = Some(token);
                })
                .await
            }
            Ok(ChargeOutcome::Declined { reason, reference }) => {
                let reason = crate::features::interactions::service::serde_plain(&reason);
                self.transition(actor, row, Status::Declined, |n| {
                    kept(n);
                    n.gateway_reference = reference;
                    n.decline_reason = Some(reason);
                })
                .await
            }
            // Still waiting for the bank's check when it should be over: an authentication
            // failure rather than a payment left hanging.
            Ok(ChargeOutcome::RequiresAction { reference, .. }) => {
                self.transition(actor, row, Status::Declined, |n| {
                    kept(n);
                    n.gateway_reference = Some(reference);
                    n.decline_reason = Some("authentication_failed".into());
                })
                .await
            }
            Err(e) => {
                tracing::warn!(payment = %row.id, error = %e, "the charge failed");
                self.transition(actor, row, Status::Failed, |n| {
                    kept(n);
                    n.decline_reason = Some(failure_reason(&e).into());
                })
                .await
            }
        }
    }
}

/// The failure's name kept with the payment (never the gateway's message).
fn failure_reason(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::Unreachable => "gateway_unreachable",
        GatewayError::Unauthorised => "gateway_credentials",
        GatewayError::IdempotencyConflict => "idempotency_conflict",
        GatewayError::RateLimited => "gateway_rate_limited",
        GatewayError::Rejected(_) => "gateway_rejected",
        GatewayError::Protocol => "gateway_protocol",
    }
}
