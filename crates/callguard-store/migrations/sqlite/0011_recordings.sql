-- Call recordings: the encrypted files live in DATA_DIR/recordings/; each row holds the file's
-- name and the wrapped share of its data key, so deleting the row crypto-shreds the recording.
CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    interaction_id TEXT NOT NULL,
    customer_id TEXT,
    file_name TEXT NOT NULL UNIQUE,
    key_share BLOB NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE INDEX recordings_interaction ON recordings(interaction_id);
CREATE INDEX recordings_customer ON recordings(customer_id);

-- Agents' SIP credentials for the softphone registrar. Digest authentication needs a
-- password-equivalent secret at the server, so the password is sealed by the key-encryption key
-- (bound to the user id), never hashed one way.
CREATE TABLE sip_credentials (
    user_id TEXT PRIMARY KEY,
    sip_username TEXT NOT NULL UNIQUE,
    password_sealed BLOB NOT NULL,
    issued_at INTEGER NOT NULL
);
