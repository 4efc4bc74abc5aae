-- Call recordings: the encrypted files live in DATA_DIR/recordings/; each row holds the file's
-- name and the wrapped share of its data key, so deleting the row crypto-shreds the recording.
CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    interaction_id TEXT NOT NULL,
    customer_id TEXT,
    file_name TEXT NOT NULL UNIQUE,
    key_share BYTEA NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX recordings_interaction ON recordings(interaction_id);
CREATE INDEX recordings_customer ON recordings(customer_id);
