-- The audit log: entries (canonical JSON and leaf hash), the perfect subtrees above them, the
-- frontier of the tree (its size and the roots of its perfect subtrees), signed checkpoints.
-- Appends lock the single head row, so several nodes append to one log without gap or fork.
CREATE TABLE audit_entries (
    idx BIGINT PRIMARY KEY,
    entry TEXT NOT NULL,
    leaf_hash BYTEA NOT NULL
);

CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    frontier BYTEA NOT NULL
);
INSERT INTO audit_head (id, frontier) VALUES (1, '\x0000000000000000');

CREATE TABLE audit_checkpoints (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
