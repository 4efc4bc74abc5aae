-- Separation of duties: who created each staff account, when its current role was granted, and
-- who confirmed the person behind a compliance account (cleared when the role or the
-- credentials change). A compliance account nobody confirmed cannot approve an erasure.
ALTER TABLE users ADD COLUMN created_by TEXT;
ALTER TABLE users ADD COLUMN role_granted_at INTEGER;
ALTER TABLE users ADD COLUMN confirmed_by TEXT;
ALTER TABLE users ADD COLUMN confirmed_at INTEGER;
-- Officers who were already approving erasures keep doing so; the log says who created them.
UPDATE users SET confirmed_by = 'system', confirmed_at = created_at WHERE role = 'compliance' AND status <> 'pending';
CREATE INDEX alerts_subject ON alerts(subject, seq);
