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

-- Every node learns at once that sessions may have ended (a logout, a revocation, expiry, a
-- disabled account or a changed role), whichever node or command made the change: each node
-- LISTENs on this channel and re-checks its open event streams.
CREATE FUNCTION callguard_sessions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('callguard_sessions', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER sessions_ended AFTER DELETE ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION callguard_sessions_changed();
CREATE TRIGGER accounts_changed AFTER UPDATE OF status, role ON users
    FOR EACH STATEMENT EXECUTE FUNCTION callguard_sessions_changed();
