-- The customer data vault. No column holds personal data in the clear: fields are sealed with a
-- per-customer data key, which is itself stored only wrapped by the key-encryption key; search
-- goes through keyed blind indexes; codes are stored as keyed hashes.
CREATE TABLE vault_keys (
    name TEXT PRIMARY KEY,
    sealed BYTEA NOT NULL,
    kek_id TEXT NOT NULL
);
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    wrapped_key BYTEA,
    kek_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    verify_failures BIGINT NOT NULL DEFAULT 0,
    verify_window_start BIGINT,
    requests TEXT
);
CREATE INDEX customers_kek ON customers(kek_id);
CREATE TABLE customer_index (
    kind TEXT NOT NULL,
    hash TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    PRIMARY KEY (kind, hash, customer_id)
);
CREATE INDEX customer_index_customer ON customer_index(customer_id);
CREATE TABLE interactions (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    agent_id TEXT NOT NULL,
    customer_id TEXT REFERENCES customers(id),
    channel TEXT NOT NULL,
    direction TEXT NOT NULL,
    from_hash TEXT,
    status TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    state TEXT NOT NULL
);
CREATE INDEX interactions_customer ON interactions(customer_id);
CREATE TABLE verification_codes (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    interaction_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX verification_codes_customer ON verification_codes(customer_id, purpose, expires_at);
-- The key store's half of each data key. Keep this table's data out of database backups
-- (pg_dump --exclude-table-data=customer_key_shares) or use a KMS: erasure deletes the row, and
-- a backup without it cannot bring an erased customer back.
CREATE TABLE customer_key_shares (
    customer_id TEXT PRIMARY KEY,
    share BYTEA NOT NULL
);
