-- Audit appends without a global lock. An audited write inserts its entry here, in its own
-- transaction, without an index: no lock on the log's head, and no index on this table, so
-- writes from every node do not wait for one another. The integrator (one node at a time, by
-- an advisory lock) moves committed entries into audit_entries in batches, giving each its
-- index and its place in the Merkle tree, and deletes them here in the same transaction.
-- One row per transaction: `heads` and `tails` are its entries' canonical texts before and
-- after their indexes, in order; they get consecutive indexes.
CREATE TABLE audit_pending (
    id BIGSERIAL NOT NULL,
    heads TEXT[] NOT NULL,
    tails TEXT[] NOT NULL,
    added_at BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
);

-- Which pending row an indexed entry came from (to tell a caller that waits its index).
ALTER TABLE audit_entries ADD COLUMN pending_id BIGINT;

-- The integrator's heartbeat: which node holds it, and when it last said so (ms).
CREATE TABLE audit_integrator (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL,
    beat_at BIGINT NOT NULL
);
INSERT INTO audit_integrator (id, holder, beat_at) VALUES (1, '', 0);
