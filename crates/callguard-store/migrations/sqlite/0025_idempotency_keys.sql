-- Idempotency keys of customer operations (`Idempotency-Key` header): a client's retry of an
-- operation whose answer it never got finds the first one here instead of acting twice. Written
-- in the same transaction as the operation and its audit entry. Key and request are keyed
-- hashes; nothing personal is stored.
CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    interaction_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    level INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key_hash)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
