-- The customer data vault. No column holds personal data in the clear: fields are sealed with a
-- per-customer data key, which is itself stored only wrapped by the key-encryption key; search
-- goes through keyed blind indexes; codes are stored as keyed hashes.
CREATE TABLE vault_keys (
    name TEXT PRIMARY KEY,
    sealed BLOB NOT NULL,
    kek_id TEXT NOT NULL
);
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    wrapped_key BLOB,
    kek_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    verify_failures INTEGER NOT NULL DEFAULT 0,
    verify_window_start INTEGER,
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
    version INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    customer_id TEXT REFERENCES customers(id),
    channel TEXT NOT NULL,
    direction TEXT NOT NULL,
    from_hash TEXT,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    state TEXT NOT NULL
);
CREATE INDEX interactions_customer ON interactions(customer_id);
CREATE TABLE verification_codes (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    purpose TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    interaction_id TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX verification_codes_customer ON verification_codes(customer_id, purpose, expires_at);
