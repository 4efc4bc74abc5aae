//! SQL that both backends run word for word, written once with PostgreSQL's `$N` placeholders.
//!
//! SQLite would accept `$1` as well, but as a *named* parameter, and it numbers named parameters
//! by first appearance: in `SET a = $2 WHERE id = $1` the value bound first would land in `a`.
//! [`Sql::sqlite`] therefore rewrites every `$N` into SQLite's own `?N` (numbered exactly as on
//! PostgreSQL), once per statement, and keeps the result. Only text that really is the same on
//! both lives here; statements that differ (casts, `FOR UPDATE`, JSON access, arrays, SQLite's
//! `RETURNING`-less inserts) stay in their backend's modules.

use std::sync::OnceLock;

/// One statement in PostgreSQL's spelling, with its SQLite spelling made on first use.
pub(crate) struct Sql {
    text: &'static str,
    sqlite: OnceLock<String>,
}

impl Sql {
    const fn new(text: &'static str) -> Self {
        Self {
            text,
            sqlite: OnceLock::new(),
        }
    }

    pub(crate) fn postgres(&self) -> &'static str {
        self.text
    }

    pub(crate) fn sqlite(&self) -> &str {
        self.sqlite.get_or_init(|| to_sqlite(self.text))
    }
}

/// `$N` → `?N`. A `$` not followed by a digit (a JSON path such as `'$.actor'`) is left alone.
pub(crate) fn to_sqlite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! user_columns {
    () => {
        "id, username, role, status, failed_sign_ins, locked_until, created_at, activated_at, last_sign_in_at"
    };
}
macro_rules! session_columns {
    () => {
        "id, user_id, created_at, last_seen_at, reauth_at, source, user_agent"
    };
}
macro_rules! passkey_columns {
    () => {
        "id, user_id, credential_id, name, passkey, created_at, last_used_at"
    };
}
macro_rules! alert_columns {
    () => {
        "seq, id, rule, entry_index, severity, status, raised_at, subject, summary, acknowledged_by, acknowledged_at, acknowledge_comment, resolved_by, resolved_at, resolve_comment"
    };
}

/// Columns of `users` that make a [`crate::User`], in the order both backends read them.
pub(crate) const USER_COLUMNS: &str = user_columns!();
/// What a sign-in checks besides the account, in the order of [`crate::Credentials`].
pub(crate) const CREDENTIAL_COLUMNS: &str =
    "password_hash, totp_sealed, totp_last_step, totp_fail_step, totp_fail_count";
/// Columns of `alerts` that make an [`crate::AlertRow`].
pub(crate) const ALERT_COLUMNS: &str = alert_columns!();

// ---- migrations ---------------------------------------------------------------------------

pub(crate) static MIGRATION_APPLIED: Sql =
    Sql::new("SELECT version FROM schema_migrations WHERE version = $1");
pub(crate) static RECORD_MIGRATION: Sql =
    Sql::new("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)");

// ---- users --------------------------------------------------------------------------------

pub(crate) static INSERT_PENDING_USER: Sql = Sql::new(concat!(
    "INSERT INTO users (id, username, role, status, setup_token_hash, setup_expires_at, created_at,
                        created_by, confirmed_by, confirmed_at)
     VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9) RETURNING ",
    user_columns!()
));
pub(crate) static USER_BY_ID: Sql = Sql::new(concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE id = $1"
));
pub(crate) static USER_BY_USERNAME: Sql = Sql::new(concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE username = $1"
));
pub(crate) static LIST_USERS: Sql = Sql::new(concat!(
    "SELECT ",
    user_columns!(),
    " FROM users ORDER BY username"
));
pub(crate) static USER_BY_SETUP_TOKEN: Sql = Sql::new(concat!(
    "SELECT ",
    user_columns!(),
    " FROM users WHERE setup_token_hash = $1 AND setup_expires_at > $2 AND status = 'pending'"
));
pub(crate) static CREDENTIALS: Sql = Sql::new(
    "SELECT password_hash, totp_sealed, totp_last_step, totp_fail_step, totp_fail_count FROM users WHERE id = $1",
);
pub(crate) static ACTIVATE_USER: Sql = Sql::new(
    "UPDATE users SET status = 'active', password_hash = $1, totp_sealed = $2, totp_last_step = $3,
        setup_token_hash = NULL, setup_expires_at = NULL, activated_at = $4, last_sign_in_at = $4,
        failed_sign_ins = 0, locked_until = NULL, sign_in_epoch = sign_in_epoch + 1
     WHERE id = $5 AND status = 'pending' AND setup_token_hash = $6 AND setup_expires_at > $4",
);
pub(crate) static RESET_SETUP: Sql = Sql::new(
    "UPDATE users SET status = 'pending', password_hash = NULL, totp_sealed = NULL, totp_last_step = NULL,
        setup_token_hash = $1, setup_expires_at = $2, failed_sign_ins = 0, locked_until = NULL,
        sign_in_epoch = sign_in_epoch + 1 WHERE id = $3",
);
/// What a setup reset wipes besides the credentials: whoever sets the account up again is a
/// person nobody has confirmed yet.
pub(crate) static WIPED_ON_RESET: [&Sql; 5] = [
    &DELETE_RECOVERY_CODES_OF,
    &DELETE_SESSIONS_OF,
    &DELETE_SIP_CREDENTIALS_OF,
    &DELETE_PASSKEYS_OF,
    &CLEAR_CONFIRMATION,
];
pub(crate) static CLEAR_CONFIRMATION: Sql =
    Sql::new("UPDATE users SET confirmed_by = NULL, confirmed_at = NULL WHERE id = $1");
/// A new role needs a new confirmation.
pub(crate) static ROLE_GRANTED: Sql = Sql::new(
    "UPDATE users SET role_granted_at = $1, confirmed_by = NULL, confirmed_at = NULL WHERE id = $2",
);
pub(crate) static SET_PROVENANCE: Sql = Sql::new(
    "UPDATE users SET created_by = $1, confirmed_by = $2, confirmed_at = $3 WHERE id = $4",
);
pub(crate) static PROVENANCE: Sql = Sql::new(
    "SELECT id, created_by, role_granted_at, confirmed_by, confirmed_at FROM users WHERE id = $1",
);
pub(crate) static PROVENANCES: Sql = Sql::new(
    "SELECT id, created_by, role_granted_at, confirmed_by, confirmed_at FROM users ORDER BY username",
);
pub(crate) static CONFIRM_OFFICER: Sql = Sql::new(
    "UPDATE users SET confirmed_by = $1, confirmed_at = $2
     WHERE id = $3 AND role = 'compliance' AND status = 'active' AND confirmed_at IS NULL",
);
/// Takes one attempt against an account before it is checked (`$1` now, `$2` the failures that
/// lock, `$3` the end of a lock set now, `$4` the account): counted as a failure at once, the one
/// reaching the limit locks, a lock that ran out starts a new run at 1. Refused (no row) while
/// the account is locked, pending or gone.
pub(crate) static ADMIT_ATTEMPT: Sql = Sql::new(
    "UPDATE users SET
        sign_in_epoch = CASE WHEN locked_until <= $1 THEN sign_in_epoch + 1 ELSE sign_in_epoch END,
        failed_sign_ins = CASE WHEN locked_until <= $1 THEN 1 ELSE failed_sign_ins + 1 END,
        locked_until = CASE
            WHEN (CASE WHEN locked_until <= $1 THEN 1 ELSE failed_sign_ins + 1 END) >= $2 THEN $3
            ELSE CAST(NULL AS BIGINT) END
     WHERE id = $4 AND status IN ('active', 'disabled')
       AND ((locked_until IS NULL AND failed_sign_ins < $2) OR locked_until <= $1)
     RETURNING sign_in_epoch, failed_sign_ins, locked_until",
);
/// Charges one wrong TOTP code to step `$1` (at most `$2` per step) of account `$3`, before the
/// code is checked; no row when the step has had its wrong codes.
pub(crate) static ADMIT_TOTP_CODE: Sql = Sql::new(
    "UPDATE users SET
        totp_fail_count = CASE WHEN totp_fail_step = $1 THEN totp_fail_count + 1 ELSE 1 END,
        totp_fail_step = $1
     WHERE id = $3 AND (totp_fail_step IS NULL OR totp_fail_step <> $1 OR totp_fail_count < $2)",
);
/// What an attempt that counts against no account writes instead (see migration 0006).
pub(crate) static STAND_IN_ATTEMPT: Sql =
    Sql::new("UPDATE sign_in_stand_in SET attempts = attempts + 1 WHERE id = 1");
/// Why an attempt was not admitted: the account's status and lock.
pub(crate) static ADMISSION_STATE: Sql =
    Sql::new("SELECT status, locked_until FROM users WHERE id = $1");
/// A right password: its attempt (`$1` account, `$2` run) stops counting, and the lock goes with
/// it when this attempt set it (`$3`). A lock set by a later attempt of the run stays: it is the
/// tenth attempt admitted without a success in between, and each lock is logged once.
pub(crate) static REFUND_ATTEMPT: Sql = Sql::new(
    "UPDATE users SET failed_sign_ins = failed_sign_ins - 1,
        locked_until = CASE WHEN $3 THEN CAST(NULL AS BIGINT) ELSE locked_until END
     WHERE id = $1 AND sign_in_epoch = $2 AND failed_sign_ins > 0",
);
/// A completed sign-in or re-authentication (`$1` now, `$2` account, `$3` the attempt's run,
/// `$4` the TOTP step it was charged to): refused unless the account is active and not locked by
/// another run; clears the failures, starts a new run and gives back the TOTP charge.
pub(crate) static SIGNED_IN: Sql = Sql::new(
    "UPDATE users SET failed_sign_ins = 0, locked_until = CAST(NULL AS BIGINT),
        sign_in_epoch = sign_in_epoch + 1,
        totp_fail_count = CASE WHEN totp_fail_step = $4 AND totp_fail_count > 0
            THEN totp_fail_count - 1 ELSE totp_fail_count END
     WHERE id = $2 AND status = 'active'
       AND (sign_in_epoch = $3 OR locked_until IS NULL OR locked_until <= $1)",
);
/// The last use of an account, after a sign-in.
pub(crate) static TOUCH_LAST_SIGN_IN: Sql =
    Sql::new("UPDATE users SET last_sign_in_at = $1 WHERE id = $2");
/// Whether failure run `$2` of account `$1` holds a lock at `$3`.
pub(crate) static LOCKED_IN_RUN: Sql =
    Sql::new("SELECT 1 FROM users WHERE id = $1 AND sign_in_epoch = $2 AND locked_until > $3");
pub(crate) static UNLOCK: Sql = Sql::new(
    "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, totp_fail_count = 0,
        sign_in_epoch = sign_in_epoch + 1 WHERE id = $1",
);
pub(crate) static SET_ROLE: Sql = Sql::new("UPDATE users SET role = $1 WHERE id = $2");
pub(crate) static DISABLE_DORMANT: Sql = Sql::new(
    "UPDATE users SET status = 'disabled' WHERE status = 'active' AND role <> 'customer'
       AND COALESCE(last_sign_in_at, activated_at, created_at) < $1 RETURNING id",
);

// ---- second factors -----------------------------------------------------------------------

pub(crate) static SPEND_TOTP_STEP: Sql = Sql::new(
    "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
);
pub(crate) static SPEND_RECOVERY_CODE: Sql = Sql::new(
    "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
);
pub(crate) static SPEND_PASSKEY: Sql = Sql::new(
    "UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE user_id = $3 AND credential_id = $4",
);
pub(crate) static DELETE_RECOVERY_CODES_OF: Sql =
    Sql::new("DELETE FROM recovery_codes WHERE user_id = $1");
pub(crate) static INSERT_RECOVERY_CODE: Sql =
    Sql::new("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)");
pub(crate) static UNUSED_RECOVERY_CODES: Sql =
    Sql::new("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL");

// ---- sessions -----------------------------------------------------------------------------

pub(crate) static INSERT_SESSION: Sql = Sql::new(concat!(
    "INSERT INTO sessions (",
    session_columns!(),
    ", token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
));
pub(crate) static SESSION_BY_TOKEN: Sql = Sql::new(concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE token_hash = $1"
));
/// A session and its account in one read (the account's columns are NULL when it is gone).
pub(crate) static SESSION_WITH_USER: Sql = Sql::new(
    "SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.reauth_at, s.source, s.user_agent, \
     u.id, u.username, u.role, u.status, u.failed_sign_ins, u.locked_until, u.created_at, \
     u.activated_at, u.last_sign_in_at \
     FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
);
pub(crate) static SESSIONS_OF: Sql = Sql::new(concat!(
    "SELECT ",
    session_columns!(),
    " FROM sessions WHERE user_id = $1 ORDER BY created_at DESC"
));
pub(crate) static TOUCH_SESSION: Sql =
    Sql::new("UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $1");
pub(crate) static MARK_REAUTHENTICATED: Sql =
    Sql::new("UPDATE sessions SET reauth_at = $1, last_seen_at = $1 WHERE id = $2");
pub(crate) static DELETE_SESSION: Sql = Sql::new("DELETE FROM sessions WHERE id = $1");
pub(crate) static DELETE_SESSIONS_OF: Sql = Sql::new("DELETE FROM sessions WHERE user_id = $1");
/// A disabled or reset account's softphone credentials are revoked, not merely refused.
pub(crate) static DELETE_SIP_CREDENTIALS_OF: Sql =
    Sql::new("DELETE FROM sip_credentials WHERE user_id = $1");
pub(crate) static DELETE_EXPIRED_SESSIONS: Sql =
    Sql::new("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2");

// ---- challenges ---------------------------------------------------------------------------

pub(crate) static INSERT_CHALLENGE: Sql = Sql::new(
    "INSERT INTO challenges (token_hash, kind, user_id, payload, attempts, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
);
pub(crate) static CHALLENGE: Sql = Sql::new(
    "SELECT token_hash, kind, user_id, payload, attempts, expires_at FROM challenges
     WHERE token_hash = $1 AND kind = $2 AND expires_at > $3",
);
/// Takes one answer on a challenge (`$1` hash, `$2` kind, `$3` now, `$4` answers allowed).
pub(crate) static TAKE_CHALLENGE_ANSWER: Sql = Sql::new(
    "UPDATE challenges SET attempts = attempts + 1
     WHERE token_hash = $1 AND kind = $2 AND expires_at > $3 AND attempts < $4
     RETURNING token_hash, kind, user_id, payload, attempts, expires_at",
);
/// Deletes a challenge that has had `$2` answers.
pub(crate) static DELETE_SPENT_CHALLENGE: Sql =
    Sql::new("DELETE FROM challenges WHERE token_hash = $1 AND attempts >= $2");
pub(crate) static DELETE_CHALLENGE: Sql = Sql::new("DELETE FROM challenges WHERE token_hash = $1");
pub(crate) static DELETE_EXPIRED_CHALLENGES: Sql =
    Sql::new("DELETE FROM challenges WHERE expires_at <= $1");

// ---- passkeys -----------------------------------------------------------------------------

pub(crate) static INSERT_PASSKEY: Sql = Sql::new(concat!(
    "INSERT INTO passkeys (",
    passkey_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
));
pub(crate) static PASSKEYS_OF: Sql = Sql::new(concat!(
    "SELECT ",
    passkey_columns!(),
    " FROM passkeys WHERE user_id = $1 ORDER BY created_at"
));
pub(crate) static DELETE_PASSKEY: Sql =
    Sql::new("DELETE FROM passkeys WHERE user_id = $1 AND id = $2");
pub(crate) static DELETE_PASSKEYS_OF: Sql = Sql::new("DELETE FROM passkeys WHERE user_id = $1");

// ---- the audit log ------------------------------------------------------------------------

pub(crate) static AUDIT_HEAD: Sql = Sql::new("SELECT frontier FROM audit_head WHERE id = 1");
pub(crate) static UPDATE_AUDIT_HEAD: Sql =
    Sql::new("UPDATE audit_head SET frontier = $1 WHERE id = 1");
pub(crate) static INSERT_AUDIT_ENTRY: Sql =
    Sql::new("INSERT INTO audit_entries (idx, entry, leaf_hash) VALUES ($1, $2, $3)");
pub(crate) static INSERT_AUDIT_NODE: Sql =
    Sql::new("INSERT INTO audit_nodes (level, idx, hash) VALUES ($1, $2, $3)");
pub(crate) static AUDIT_ENTRIES: Sql = Sql::new(
    "SELECT idx, entry, leaf_hash FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
);
pub(crate) static INSERT_CHECKPOINT: Sql = Sql::new(
    "INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING",
);
pub(crate) static LATEST_CHECKPOINT: Sql = Sql::new(
    "SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1",
);
pub(crate) static CHECKPOINTS: Sql =
    Sql::new("SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size");

// ---- alerts -------------------------------------------------------------------------------

pub(crate) static INSERT_ALERT: Sql = Sql::new(
    "INSERT INTO alerts (id, rule, entry_index, severity, status, raised_at, subject, summary)
     VALUES ($1, $2, $3, $4, 'open', $5, $6, $7) ON CONFLICT (rule, entry_index) DO NOTHING",
);
pub(crate) static ALERTS_AFTER: Sql = Sql::new(concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE seq > $1 ORDER BY seq LIMIT $2"
));
pub(crate) static ALERTS_ABOUT: Sql = Sql::new(concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE subject = $1 ORDER BY seq LIMIT $2"
));
pub(crate) static ALERT: Sql = Sql::new(concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE id = $1"
));

/// The statement that moves an alert to `to` (`acknowledged` or `resolved`) from the states that
/// allow it, in PostgreSQL's spelling: `$1` status, `$2` by, `$3` at, `$4` comment, `$5` id.
/// `None` for any other `to`.
pub(crate) fn transition_alert(to: &str) -> Option<String> {
    let (from, who, when, what) = match to {
        "acknowledged" => (
            "'open'",
            "acknowledged_by",
            "acknowledged_at",
            "acknowledge_comment",
        ),
        "resolved" => (
            "'open', 'acknowledged'",
            "resolved_by",
            "resolved_at",
            "resolve_comment",
        ),
        _ => return None,
    };
    Some(format!(
        "UPDATE alerts SET status = $1, {who} = $2, {when} = $3, {what} = $4 WHERE id = $5 AND status IN ({from})"
    ))
}

// ---- shared allowances ---------------------------------------------------------------------

pub(crate) static FORGET_KEY_USES: Sql =
    Sql::new("DELETE FROM allowance_uses WHERE key = $1 AND at <= $2");
pub(crate) static COUNT_KEY_USES: Sql =
    Sql::new("SELECT COUNT(*) FROM allowance_uses WHERE key = $1");
pub(crate) static RECORD_KEY_USE: Sql =
    Sql::new("INSERT INTO allowance_uses (key, at) VALUES ($1, $2)");
pub(crate) static FORGET_USES_BEFORE: Sql = Sql::new("DELETE FROM allowance_uses WHERE at < $1");
/// The address's entry, made when new, its row locked until the transaction ends (an upsert
/// that changes nothing still locks: a plain insert-if-missing then select would let another
/// node delete the row in between).
pub(crate) static ADDRESS_ENTRY_LOCKED: Sql = Sql::new(
    "INSERT INTO address_throttle (address, failures, pending, last_failure, next_allowed, pending_until) \
     VALUES ($1, 0, 0, $2, $2, $2) ON CONFLICT (address) DO UPDATE SET address = excluded.address \
     RETURNING failures, pending, last_failure, next_allowed, pending_until",
);
pub(crate) static ADDRESS_UPDATE: Sql = Sql::new(
    "UPDATE address_throttle SET failures = $2, pending = $3, last_failure = $4, next_allowed = $5, pending_until = $6 \
     WHERE address = $1",
);
pub(crate) static ADDRESS_FORGET: Sql = Sql::new("DELETE FROM address_throttle WHERE address = $1");
pub(crate) static ADDRESSES_FORGET_QUIET: Sql = Sql::new(
    "DELETE FROM address_throttle WHERE last_failure < $1 AND (pending = 0 OR pending_until < $1)",
);
// ---- compliance evidence ------------------------------------------------------------------

pub(crate) static COUNT_ACCOUNTS: Sql = Sql::new(
    "SELECT role, status, COUNT(*) FROM users GROUP BY role, status ORDER BY role, status",
);
pub(crate) static COUNT_ACCESS: Sql = Sql::new(
    "SELECT
       COUNT(*) FILTER (WHERE status = 'active' AND role <> 'customer' AND totp_sealed IS NULL
                        AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id)),
       COUNT(*) FILTER (WHERE status = 'active' AND role = 'admin' AND totp_sealed IS NULL
                        AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id)),
       COUNT(*) FILTER (WHERE status = 'active' AND role <> 'customer'
                        AND COALESCE(last_sign_in_at, activated_at, created_at) < $1),
       COUNT(*) FILTER (WHERE status = 'active' AND password_hash IS NOT NULL
                        AND password_hash NOT LIKE '$argon2id$%'),
       COUNT(*) FILTER (WHERE locked_until > $2)
     FROM users u",
);
pub(crate) static COUNT_STALE_SESSIONS: Sql =
    Sql::new("SELECT COUNT(*) FROM sessions WHERE last_seen_at < $1");
pub(crate) static COUNT_CUSTOMERS: Sql = Sql::new(
    "SELECT
       COUNT(*) FILTER (WHERE status = 'active'),
       COUNT(*) FILTER (WHERE status = 'erased'),
       COUNT(*) FILTER (WHERE status = 'erased' AND (wrapped_key IS NOT NULL OR fields <> '{}')),
       COUNT(*) FILTER (WHERE status = 'active' AND wrapped_key IS NULL)
     FROM customers",
);
pub(crate) static OPEN_REQUESTS: Sql =
    Sql::new("SELECT requests FROM customers WHERE requests IS NOT NULL");
pub(crate) static OVERDUE_INTERACTIONS: Sql =
    Sql::new("SELECT COUNT(*) FROM interactions WHERE ended_at IS NOT NULL AND ended_at < $1");
pub(crate) static OVERDUE_CUSTOMERS: Sql = Sql::new(
    "SELECT COUNT(*) FROM customers c WHERE status = 'active' AND updated_at < $1
       AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id AND i.started_at >= $1)",
);
pub(crate) static OVERDUE_CUSTOMER_IDS: Sql = Sql::new(
    "SELECT id FROM customers c WHERE status = 'active' AND updated_at < $1
       AND NOT EXISTS (SELECT 1 FROM interactions i WHERE i.customer_id = c.id AND i.started_at >= $1)
     ORDER BY id LIMIT $2",
);
pub(crate) static OVERDUE_ALERTS: Sql =
    Sql::new("SELECT COUNT(*) FROM alerts WHERE status = 'resolved' AND raised_at < $1");
pub(crate) static OVERDUE_SESSIONS: Sql =
    Sql::new("SELECT COUNT(*) FROM sessions WHERE last_seen_at < $1");
pub(crate) static PURGE_INTERACTIONS: Sql =
    Sql::new("DELETE FROM interactions WHERE ended_at IS NOT NULL AND ended_at < $1");
pub(crate) static PURGE_ALERTS: Sql =
    Sql::new("DELETE FROM alerts WHERE status = 'resolved' AND raised_at < $1");
pub(crate) static PURGE_SESSIONS: Sql = Sql::new("DELETE FROM sessions WHERE last_seen_at < $1");
pub(crate) static OVERDUE_RECORDINGS: Sql =
    Sql::new("SELECT COUNT(*) FROM recordings WHERE started_at < $1");
pub(crate) static OVERDUE_RECORDING_FILES: Sql = Sql::new(
    "SELECT id, file_name FROM recordings WHERE started_at < $1 ORDER BY started_at, id LIMIT $2",
);
/// Deleting the row deletes the key share: the file is unreadable from then on.
pub(crate) static PURGE_RECORDING: Sql =
    Sql::new("DELETE FROM recordings WHERE id = $1 AND started_at < $2");
pub(crate) static PURGE_RECORDING_PLAYBACKS: Sql =
    Sql::new("DELETE FROM recording_playbacks WHERE recording_id = $1");
pub(crate) static SHRED_CUSTOMER: Sql = Sql::new(
    "UPDATE customers SET status = 'erased', wrapped_key = NULL, fields = '{}', requests = NULL,
       version = version + 1, updated_at = $2 WHERE id = $1 AND status = 'active'",
);
pub(crate) static SHRED_CUSTOMER_INDEX: Sql =
    Sql::new("DELETE FROM customer_index WHERE customer_id = $1");
pub(crate) static SHRED_CUSTOMER_CODES: Sql =
    Sql::new("DELETE FROM verification_codes WHERE customer_id = $1");
pub(crate) static INSERT_MANUAL: Sql = Sql::new(
    "INSERT INTO compliance_manual (id, control, performed_on, note, recorded_by, recorded_at)
     VALUES ($1, $2, $3, $4, $5, $6)",
);
pub(crate) static LATEST_MANUAL: Sql = Sql::new(
    "SELECT id, control, performed_on, note, recorded_by, recorded_at FROM compliance_manual m
     WHERE NOT EXISTS (SELECT 1 FROM compliance_manual n WHERE n.control = m.control
       AND (n.performed_on > m.performed_on
            OR (n.performed_on = m.performed_on AND (n.recorded_at > m.recorded_at
                OR (n.recorded_at = m.recorded_at AND n.id > m.id)))))
     ORDER BY control",
);
pub(crate) static INSERT_BREACH: Sql = Sql::new(
    "INSERT INTO compliance_breaches (id, summary, detected_at, notified_at, no_notice_reason, recorded_by, recorded_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)",
);
pub(crate) static CLOSE_BREACH: Sql = Sql::new(
    "UPDATE compliance_breaches SET notified_at = $2, no_notice_reason = $3
     WHERE id = $1 AND notified_at IS NULL AND no_notice_reason IS NULL",
);
pub(crate) static BREACHES: Sql = Sql::new(
    "SELECT id, summary, detected_at, notified_at, no_notice_reason, recorded_by, recorded_at
     FROM compliance_breaches ORDER BY detected_at DESC, id LIMIT $1",
);
pub(crate) static INSERT_RUN: Sql = Sql::new(
    "INSERT INTO compliance_runs (id, at, framework, passed, failed, manual, not_applicable, checkpoint_size, scanned_to)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
);
pub(crate) static RUNS: Sql = Sql::new(
    "SELECT id, at, framework, passed, failed, manual, not_applicable, checkpoint_size, scanned_to
     FROM compliance_runs ORDER BY at DESC, id DESC LIMIT $1",
);
pub(crate) static INSERT_RETENTION_RUN: Sql = Sql::new(
    "INSERT INTO compliance_retention_runs (at, interactions, customers, alerts, sessions, recordings) VALUES ($1, $2, $3, $4, $5, $6)",
);
pub(crate) static LAST_RETENTION_RUN: Sql = Sql::new(
    "SELECT at, interactions, customers, alerts, sessions, recordings FROM compliance_retention_runs ORDER BY at DESC LIMIT 1",
);
/// Where the card-number scan looks besides the audit log: (place, table, key, text).
pub(crate) const PAN_SOURCES: [(&str, &str, &str, &str); 7] = [
    ("payments.description", "payments", "id", "description"),
    ("users.username", "users", "id", "username"),
    ("customers.fields", "customers", "id", "fields"),
    ("interactions.state", "interactions", "id", "state"),
    (
        "alerts.summary",
        "alerts",
        "id",
        "subject || ' ' || summary",
    ),
    ("compliance_manual.note", "compliance_manual", "id", "note"),
    (
        "compliance_breaches.summary",
        "compliance_breaches",
        "id",
        "summary",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_sqlite_parameters_and_json_paths_stay() {
        assert_eq!(
            to_sqlite("UPDATE t SET a = $2 WHERE id = $1 AND j->>'$.x' = $10"),
            "UPDATE t SET a = ?2 WHERE id = ?1 AND j->>'$.x' = ?10"
        );
        assert_eq!(USER_BY_ID.sqlite(), USER_BY_ID.sqlite());
        assert!(!SET_ROLE.sqlite().contains('$'));
    }

    #[test]
    fn alerts_move_only_from_the_states_that_allow_it() {
        assert!(transition_alert("reopened").is_none());
        let ack = transition_alert("acknowledged").unwrap_or_default();
        assert!(ack.ends_with("status IN ('open')"), "{ack}");
        let resolve = transition_alert("resolved").unwrap_or_default();
        assert!(
            resolve.ends_with("status IN ('open', 'acknowledged')"),
            "{resolve}"
        );
    }
}
