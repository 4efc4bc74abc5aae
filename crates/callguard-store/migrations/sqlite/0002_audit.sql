-- The audit log: entries (canonical JSON and leaf hash), the perfect subtrees above them, the
-- frontier of the tree (its size and the roots of its perfect subtrees), signed checkpoints.
CREATE TABLE audit_entries (
    idx INTEGER PRIMARY KEY,
    entry TEXT NOT NULL,
    leaf_hash BLOB NOT NULL
) STRICT;

CREATE TABLE audit_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    frontier BLOB NOT NULL
) STRICT;
INSERT INTO audit_head (id, frontier) VALUES (1, x'0000000000000000');

CREATE TABLE audit_checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
