-- Payment requests (SPEC C7). No card number, expiry-with-number or CVC is ever stored: only
-- what may be kept of a card (brand, last four, expiry month/year), the gateway's token and
-- reference, and the idempotency key of the current gateway attempt, written before the
-- gateway is called. A pay-by-link token is kept only as its SHA-256 hash.
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    interaction_id TEXT NOT NULL,
    customer_id TEXT,
    agent_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    method TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    send_to TEXT,
    link_hash TEXT UNIQUE,
    expires_at BIGINT NOT NULL,
    attempt_key TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    brand TEXT,
    last4 TEXT,
    exp_month BIGINT,
    exp_year BIGINT,
    gateway TEXT,
    gateway_token TEXT,
    gateway_reference TEXT,
    decline_reason TEXT,
    refunded_minor BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payments_interaction ON payments(interaction_id, created_at);
CREATE INDEX payments_customer ON payments(customer_id, created_at);
CREATE INDEX payments_open ON payments(status, expires_at);
CREATE INDEX payments_created ON payments(created_at);

-- Refunds of authorised payments, full or partial; the key is stored before the gateway call.
CREATE TABLE payment_refunds (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL REFERENCES payments(id),
    amount_minor BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status TEXT NOT NULL,
    gateway_reference TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payment_refunds_payment ON payment_refunds(payment_id, created_at);
