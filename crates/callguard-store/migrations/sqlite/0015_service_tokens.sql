-- API tokens of service accounts (the telephony edge's keypad capture). Only the token's
-- SHA-256 is kept; the token itself is shown once by the CLI. One token per account: rotating
-- replaces it, revoking deletes it.
CREATE TABLE service_tokens (
    account TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    issued_at INTEGER NOT NULL
);
