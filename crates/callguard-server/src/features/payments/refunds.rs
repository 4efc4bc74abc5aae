//! Refunds of authorised payments, full or partial, on a supervisor's decision. The refund and
//! its idempotency key are committed (and the refundable amount reserved) before the gateway is
//! called, so two refunds at once can never return more than was paid, and a gateway that does
//! not answer is asked again with the same key.

use super::gateway::{GatewayError, RefundRequest};
use super::model::{NewRefund, RefundView, Status};
use super::service::{record, status_of, Payments};
use crate::error::Error;
use crate::principal::Principal;
use callguard_core::payments::{Currency, Money};
use callguard_core::{now, rfc3339, Role};
use callguard_store::{PaymentWrite, RefundRow};

impl Payments {
    /// Refunds `r.amount_minor` (default: all not yet refunded) of the authorised payment `id`.
    pub async fn refund(&self, p: &Principal, id: &str, r: NewRefund) -> Result<RefundView, Error> {
        if p.user.role != Role::Supervisor {
            return Err(Error::Forbidden);
        }
        let row = self.visible(p, id).await?;
        if status_of(&row)? != Status::Authorised {
            return Err(Error::State("only an authorised payment can be refunded"));
        }
        let left = row.amount_minor - row.refunded_minor;
        let amount = r.amount_minor.unwrap_or(left);
        if left <= 0 {
            return Err(Error::State(
                "the payment has been refunded in full already",
            ));
        }
        if amount < 1 || amount > left {
            return Err(Error::Validation(format!(
                "amount_minor must be between 1 and {left}, the part not refunded yet"
            )));
        }
        let gateway = self.gateway()?.clone();
        let reference = row.gateway_reference.clone().ok_or(Error::State(
            "the payment has no gateway reference to refund",
        ))?;
        let t = now();
        let refund = RefundRow {
            id: uuid::Uuid::new_v4().to_string(),
            payment_id: row.id.clone(),
            amount_minor: amount,
            idempotency_key: format!("cg-refund-{}", uuid::Uuid::new_v4().simple()),
            status: "pending".into(),
            gateway_reference: None,
            created_by: p.user.id.clone(),
            created_at: t,
            updated_at: t,
        };
        let mut reserved = row.clone();
        reserved.version += 1;
        reserved.refunded_minor += amount;
        reserved.updated_at = t;
        let audit = record(&p.actor(), "payment.refund_request", &reserved)
            .detail("refund", refund.id.clone())
            .detail("refund_minor", amount);
        if !self
            .commit(PaymentWrite {
                payment: Some((reserved.clone(), Some(row.version))),
                refund: Some((refund.clone(), true)),
                audit: vec![audit],
            })
            .await?
        {
            return Err(Error::State(
                "the payment changed meanwhile; read it again and retry",
            ));
        }
        let money = Currency::from_code(&row.currency)
            .ok()
            .and_then(|c| Money::new(amount, c).ok())
            .ok_or(Error::Internal)?;
        let request = RefundRequest {
            idempotency_key: &refund.idempotency_key,
            charge_reference: &reference,
            amount: money,
        };
        let mut outcome = Err(GatewayError::Unreachable);
        for try_no in 0..super::charge::CHARGE_TRIES {
            outcome = gateway.refund(&request).await;
            if outcome != Err(GatewayError::Unreachable) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250 << try_no)).await;
        }
        self.settle_refund(p, reserved, refund, outcome).await
    }

    /// Records a refund's outcome; a failed one gives its amount back to the refundable part.
    async fn settle_refund(
        &self,
        p: &Principal,
        reserved: callguard_store::PaymentRow,
        mut refund: RefundRow,
        outcome: Result<super::gateway::RefundOutcome, GatewayError>,
    ) -> Result<RefundView, Error> {
        refund.updated_at = now();
        let mut payment = None;
        let action = match &outcome {
            Ok(o) => {
                refund.status = "refunded".into();
                refund.gateway_reference = Some(o.reference.clone());
                "payment.refund"
            }
            Err(e) => {
                tracing::warn!(payment = %reserved.id, error = %e, "a refund failed");
                refund.status = "failed".into();
                let mut back = reserved.clone();
                back.version += 1;
                back.refunded_minor -= refund.amount_minor;
                back.updated_at = refund.updated_at;
                payment = Some((back, Some(reserved.version)));
                "payment.refund_fail"
            }
        };
        let mut audit = record(&p.actor(), action, &reserved)
            .detail("refund", refund.id.clone())
            .detail("refund_minor", refund.amount_minor);
        if let Some(r) = &refund.gateway_reference {
            audit = audit.detail("refund_reference", r.clone());
        }
        if outcome.is_err() {
            audit = audit.failure();
        }
        if !self
            .commit(PaymentWrite {
                payment,
                refund: Some((refund.clone(), false)),
                audit: vec![audit],
            })
            .await?
        {
            return Err(Error::State("the payment changed meanwhile; read it again"));
        }
        match outcome {
            Ok(_) => Ok(RefundView {
                id: refund.id,
                payment_id: refund.payment_id,
                amount_minor: refund.amount_minor,
                status: refund.status,
                gateway_reference: refund.gateway_reference,
                created_at: rfc3339(refund.created_at),
            }),
            Err(_) => Err(Error::Unavailable(
                "the gateway did not refund the payment; nothing was refunded, try again",
            )),
        }
    }
}
