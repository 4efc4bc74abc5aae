-- Alerts raised from the audit log. (rule, entry_index) identifies an alert, so every node may
-- raise it and only the first insert counts.
CREATE TABLE alerts (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    rule TEXT NOT NULL,
    entry_index BIGINT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    subject TEXT NOT NULL,
    summary TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at BIGINT,
    acknowledge_comment TEXT,
    resolved_by TEXT,
    resolved_at BIGINT,
    resolve_comment TEXT,
    UNIQUE (rule, entry_index)
);
CREATE INDEX alerts_status ON alerts(status, seq);
