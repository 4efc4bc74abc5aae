-- Compliance evidence (issue #14): manual control records, the breach register and the history
-- of report runs (the trend). Personal data has no column here: notes and breach summaries are
-- written by compliance officers about controls and incidents, never about a person.
CREATE TABLE compliance_manual (
    id TEXT PRIMARY KEY,
    control TEXT NOT NULL,
    performed_on TEXT NOT NULL,
    note TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;
CREATE INDEX compliance_manual_control ON compliance_manual(control, performed_on);

CREATE TABLE compliance_breaches (
    id TEXT PRIMARY KEY,
    summary TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    notified_at INTEGER,
    no_notice_reason TEXT,
    recorded_by TEXT NOT NULL,
    recorded_at INTEGER NOT NULL
) STRICT;

CREATE TABLE compliance_runs (
    id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    framework TEXT NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    manual INTEGER NOT NULL,
    not_applicable INTEGER NOT NULL,
    checkpoint_size INTEGER NOT NULL,
    scanned_to INTEGER NOT NULL
) STRICT;
CREATE INDEX compliance_runs_at ON compliance_runs(at);

-- One row per retention purge, for the report's "last run" without searching the log.
CREATE TABLE compliance_retention_runs (
    at INTEGER NOT NULL,
    interactions INTEGER NOT NULL,
    customers INTEGER NOT NULL,
    alerts INTEGER NOT NULL,
    sessions INTEGER NOT NULL
) STRICT;
CREATE INDEX compliance_retention_runs_at ON compliance_retention_runs(at);
