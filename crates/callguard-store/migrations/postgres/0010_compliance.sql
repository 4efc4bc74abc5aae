-- Compliance evidence (issue #14): manual control records, the breach register and the history
-- of report runs (the trend). Personal data has no column here: notes and breach summaries are
-- written by compliance officers about controls and incidents, never about a person.
CREATE TABLE compliance_manual (
    id TEXT PRIMARY KEY,
    control TEXT NOT NULL,
    performed_on TEXT NOT NULL,
    note TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX compliance_manual_control ON compliance_manual(control, performed_on);

CREATE TABLE compliance_breaches (
    id TEXT PRIMARY KEY,
    summary TEXT NOT NULL,
    detected_at BIGINT NOT NULL,
    notified_at BIGINT,
    no_notice_reason TEXT,
    recorded_by TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);

CREATE TABLE compliance_runs (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    framework TEXT NOT NULL,
    passed BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    manual BIGINT NOT NULL,
    not_applicable BIGINT NOT NULL,
    checkpoint_size BIGINT NOT NULL,
    scanned_to BIGINT NOT NULL
);
CREATE INDEX compliance_runs_at ON compliance_runs(at);

-- One row per retention purge, for the report's "last run" without searching the log.
CREATE TABLE compliance_retention_runs (
    at BIGINT NOT NULL,
    interactions BIGINT NOT NULL,
    customers BIGINT NOT NULL,
    alerts BIGINT NOT NULL,
    sessions BIGINT NOT NULL
);
CREATE INDEX compliance_retention_runs_at ON compliance_retention_runs(at);
