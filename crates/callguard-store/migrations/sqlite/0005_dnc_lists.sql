-- The company's own Do-Not-Call list and the consent ledger. Numbers are kept only as a keyed
-- blind index and sealed by the key-encryption key; consent evidence is sealed too.
CREATE TABLE dnc_internal (
    id TEXT PRIMARY KEY,
    number_index TEXT NOT NULL UNIQUE,
    number_sealed BLOB NOT NULL,
    source TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at INTEGER NOT NULL
);
CREATE INDEX dnc_internal_added ON dnc_internal(added_at);

CREATE TABLE consent_ledger (
    id TEXT PRIMARY KEY,
    number_index TEXT NOT NULL,
    number_sealed BLOB NOT NULL,
    purpose TEXT NOT NULL,
    channel TEXT NOT NULL,
    source TEXT NOT NULL,
    evidence_sealed BLOB NOT NULL,
    recorded_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_by TEXT
);
CREATE INDEX consent_ledger_number ON consent_ledger(number_index, purpose, channel);
CREATE INDEX consent_ledger_granted ON consent_ledger(granted_at);
