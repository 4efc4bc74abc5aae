-- Alerts raised from the audit log. (rule, entry_index) identifies an alert, so every node may
-- raise it and only the first insert counts.
CREATE TABLE alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    rule TEXT NOT NULL,
    entry_index INTEGER NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    raised_at INTEGER NOT NULL,
    subject TEXT NOT NULL,
    summary TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at INTEGER,
    acknowledge_comment TEXT,
    resolved_by TEXT,
    resolved_at INTEGER,
    resolve_comment TEXT,
    UNIQUE (rule, entry_index)
);
CREATE INDEX alerts_status ON alerts(status, seq);
