//! Payment requests and refunds on PostgreSQL.

use super::{map_err, PostgresStore};
use crate::guarded::Guarded;
use crate::payments::*;
use crate::StoreResult;
use async_trait::async_trait;
use callguard_core::UnixTime;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

fn payment_row(r: &Row) -> PaymentRow {
    PaymentRow {
        id: r.get(0),
        version: r.get(1),
        interaction_id: r.get(2),
        customer_id: r.get(3),
        agent_id: r.get(4),
        amount_minor: r.get(5),
        currency: r.get(6),
        method: r.get(7),
        description: r.get(8),
        status: r.get(9),
        send_to: r.get(10),
        link_hash: r.get(11),
        expires_at: r.get(12),
        attempt_key: r.get(13),
        attempts: r.get(14),
        brand: r.get(15),
        last4: r.get(16),
        exp_month: r.get(17),
        exp_year: r.get(18),
        gateway: r.get(19),
        gateway_token: r.get(20),
        gateway_reference: r.get(21),
        decline_reason: r.get(22),
        refunded_minor: r.get(23),
        created_at: r.get(24),
        updated_at: r.get(25),
    }
}

fn refund_row(r: &Row) -> RefundRow {
    RefundRow {
        id: r.get(0),
        payment_id: r.get(1),
        amount_minor: r.get(2),
        idempotency_key: r.get(3),
        status: r.get(4),
        gateway_reference: r.get(5),
        created_by: r.get(6),
        created_at: r.get(7),
        updated_at: r.get(8),
    }
}

async fn apply_payment(
    tx: &Transaction<'_>,
    p: &PaymentRow,
    expected: Option<i64>,
) -> StoreResult<bool> {
    let n = match expected {
        None => tx.execute(
            &format!("INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)"),
            &[&p.id, &p.version, &p.interaction_id, &p.customer_id, &p.agent_id, &p.amount_minor, &p.currency, &p.method, &p.description, &p.status, &p.send_to, &p.link_hash, &p.expires_at, &p.attempt_key, &p.attempts, &p.brand, &p.last4, &p.exp_month, &p.exp_year, &p.gateway, &p.gateway_token, &p.gateway_reference, &p.decline_reason, &p.refunded_minor, &p.created_at, &p.updated_at],
        ).await,
        Some(v) => tx.execute(
            "UPDATE payments SET version = $2, status = $3, link_hash = $4, expires_at = $5, attempt_key = $6, attempts = $7, brand = $8, last4 = $9, exp_month = $10, exp_year = $11, gateway = $12, gateway_token = $13, gateway_reference = $14, decline_reason = $15, refunded_minor = $16, updated_at = $17, send_to = $18 WHERE id = $1 AND version = $19",
            &[&p.id, &p.version, &p.status, &p.link_hash, &p.expires_at, &p.attempt_key, &p.attempts, &p.brand, &p.last4, &p.exp_month, &p.exp_year, &p.gateway, &p.gateway_token, &p.gateway_reference, &p.decline_reason, &p.refunded_minor, &p.updated_at, &p.send_to, &v],
        ).await,
    }
    .map_err(map_err)?;
    Ok(n == 1)
}

async fn apply_refund(tx: &Transaction<'_>, r: &RefundRow, new: bool) -> StoreResult<bool> {
    let n = if new {
        tx.execute(
            &format!("INSERT INTO payment_refunds ({REFUND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            &[&r.id, &r.payment_id, &r.amount_minor, &r.idempotency_key, &r.status, &r.gateway_reference, &r.created_by, &r.created_at, &r.updated_at],
        )
        .await
    } else {
        tx.execute(
            "UPDATE payment_refunds SET status = $2, gateway_reference = $3, updated_at = $4 WHERE id = $1 AND status = 'pending'",
            &[&r.id, &r.status, &r.gateway_reference, &r.updated_at],
        )
        .await
    }
    .map_err(map_err)?;
    Ok(n == 1)
}

impl PostgresStore {
    async fn payments_where(
        &self,
        filter: &str,
        value: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<PaymentRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE {filter} ORDER BY created_at DESC, id LIMIT $2"),
                &[&value, &(limit as i64)],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(payment_row).collect())
    }
}

#[async_trait]
impl PaymentStore for PostgresStore {
    async fn payment_commit(&self, w: PaymentWrite) -> StoreResult<bool> {
        self.guarded(move |tx| {
            Box::pin(async move {
                if let Some((p, expected)) = &w.payment {
                    if !apply_payment(&tx, p, *expected).await? {
                        return Ok(Guarded::Undo(false));
                    }
                }
                if let Some((r, new)) = &w.refund {
                    if !apply_refund(&tx, r, *new).await? {
                        return Ok(Guarded::Undo(false));
                    }
                }
                Ok(Guarded::Keep(true, w.audit))
            })
        })
        .await
    }

    async fn payment(&self, id: &str) -> StoreResult<Option<PaymentRow>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(map_err)?;
        Ok(row.as_ref().map(payment_row))
    }

    async fn payment_by_link(&self, link_hash: &str) -> StoreResult<Option<PaymentRow>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE link_hash = $1"),
                &[&link_hash],
            )
            .await
            .map_err(map_err)?;
        Ok(row.as_ref().map(payment_row))
    }

    async fn payments_of_interaction(
        &self,
        interaction_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<PaymentRow>> {
        self.payments_where("interaction_id = $1", Some(interaction_id), limit)
            .await
    }

    async fn payments_of_customer(
        &self,
        customer_id: &str,
        limit: u64,
    ) -> StoreResult<Vec<PaymentRow>> {
        self.payments_where("customer_id = $1", Some(customer_id), limit)
            .await
    }

    async fn recent_payments(&self, limit: u64) -> StoreResult<Vec<PaymentRow>> {
        self.payments_where("$1::text IS NULL", None, limit).await
    }

    async fn overdue_payments(&self, now: UnixTime, limit: u64) -> StoreResult<Vec<PaymentRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE status IN {OPEN_STATUSES} AND expires_at <= $1 ORDER BY expires_at LIMIT $2"),
                &[&now, &(limit as i64)],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(payment_row).collect())
    }

    async fn refunds_of(&self, payment_id: &str) -> StoreResult<Vec<RefundRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {REFUND_COLUMNS} FROM payment_refunds WHERE payment_id = $1 ORDER BY created_at, id"),
                &[&payment_id],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(refund_row).collect())
    }
}
