-- Uses of sliding-window allowances (reveals per agent, ...), shared by every node that uses
-- this database. One row per use; rows older than the longest window are forgotten.
CREATE TABLE allowance_uses (
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX allowance_uses_by_key ON allowance_uses (key, at);
CREATE INDEX allowance_uses_by_time ON allowance_uses (at);

-- The per-address sign-in throttle when several nodes share the database (PostgreSQL): what
-- callguard_core::throttle::Entry remembers of an address.
CREATE TABLE address_throttle (
    address TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    last_failure BIGINT NOT NULL,
    next_allowed BIGINT NOT NULL,
    pending_until BIGINT NOT NULL
);
