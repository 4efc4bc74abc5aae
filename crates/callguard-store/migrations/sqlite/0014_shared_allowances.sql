-- Uses of sliding-window allowances (reveals per agent, ...), shared by every node that uses
-- this database. One row per use; rows older than the longest window are forgotten.
CREATE TABLE allowance_uses (
    key TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX allowance_uses_by_key ON allowance_uses (key, at);
CREATE INDEX allowance_uses_by_time ON allowance_uses (at);
