-- Playback of call recordings by supervisors and compliance (issue #12): the queue a call waited
-- in, for the list's filter; each playback with its listed reason and free text, kept here
-- rather than in the append-only log (free text may name people) and deleted with the
-- recording; and the recordings each retention run deleted.
ALTER TABLE recordings ADD COLUMN queue TEXT;
CREATE INDEX recordings_started ON recordings(started_at);
CREATE TABLE recording_playbacks (
    id TEXT PRIMARY KEY,
    recording_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    note TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX recording_playbacks_recording ON recording_playbacks(recording_id);
ALTER TABLE compliance_retention_runs ADD COLUMN recordings BIGINT NOT NULL DEFAULT 0;
