-- Sign-in attempts are counted when they are admitted, before they are checked. The epoch names
-- the current run of failures: a successful sign-in, an unlock, a setup or reset and an expired
-- lock start a new one, so an attempt admitted earlier can neither be refunded into the new run
-- nor lift a lock that the new run set.
ALTER TABLE users ADD COLUMN sign_in_epoch INTEGER NOT NULL DEFAULT 0;

-- An attempt that cannot be counted against an account (an unknown name, a pending or locked
-- account) writes this one row instead, so that it costs the database the same write as one
-- that is counted: the time of an answer does not tell which names exist or are locked.
CREATE TABLE sign_in_stand_in (
    id INTEGER PRIMARY KEY,
    attempts INTEGER NOT NULL
) STRICT;
INSERT INTO sign_in_stand_in (id, attempts) VALUES (1, 0);
