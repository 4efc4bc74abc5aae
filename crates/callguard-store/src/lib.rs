//! Callguard's persistence. The domain talks to one trait per aggregate — [`UserStore`],
//! [`SessionStore`], [`ChallengeStore`], [`PasskeyStore`] — and never to a database directly.
//! Two backends implement them: SQLite (the default, one file in the data directory, WAL mode)
//! and PostgreSQL (for several nodes). Each backend has its own migrations, applied at start.
#![forbid(unsafe_code)]

pub mod compliance;
pub mod dnc_lists;
mod guarded;
mod log;
pub mod payments;
mod postgres;
pub mod recordings;
pub mod registry;
pub mod service_tokens;
mod sql;
mod sqlite;
pub mod vault;

pub use compliance::{
    AccessCutoffs, AccessFacts, BreachRecord, ComplianceStore, CustomerFacts, ManualRecord,
    PanScan, ReportRun, RetentionCounts, RetentionCutoffs,
};
pub use dnc_lists::{ConsentRecord, DncListStore, InternalDncEntry};
pub use payments::{PaymentRow, PaymentStore, PaymentWrite, RefundRow};
pub use postgres::PostgresStore;
pub use recordings::{
    PlaybackRow, RecordingFilter, RecordingRow, RecordingStore, SipCredentialRow,
    SipCredentialStore,
};
pub use registry::{RegistryStore, RegistryVersion, REGISTRY_CHUNK_BYTES};
pub use service_tokens::{ServiceTokenRow, ServiceTokenStore};
pub use sqlite::SqliteStore;
pub use vault::{
    CodeRow, CustomerRow, IdempotencyRow, IndexEntry, InteractionRow, KeyShareStore, SealedColumn,
    VaultStore, VaultWrite, IDEMPOTENCY_WINDOW,
};

use async_trait::async_trait;
pub use callguard_core::audit::merkle::{Frontier, Hash, Subtree};
pub use callguard_core::audit::AuditRecord;
use callguard_core::identity::{Provenance, Session, User, UserStatus};
use callguard_core::{Role, UnixTime};
use std::sync::Arc;

/// What went wrong in the store. Messages name no stored value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (a username, a token) is already taken.
    #[error("already exists")]
    Conflict,
    /// The database answered with an error.
    #[error("database error: {0}")]
    Backend(String),
    /// The database cannot be reached (refused, closed connection, shutting down, restarting):
    /// the same request may succeed shortly.
    #[error("database unreachable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A new account waiting for its owner to set it up.
#[derive(Debug, Clone)]
pub struct NewPendingUser {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub setup_token_hash: String,
    pub setup_expires_at: UnixTime,
    pub created_at: UnixTime,
    /// `user:<id>` of the admin who creates it, or `cli`.
    pub created_by: String,
    /// Set when the creator vouches for the person (the operator at the CLI).
    pub confirmed_by: Option<String>,
}

/// An account created ready to use (the demo and tests that bypass first-time setup).
#[derive(Debug, Clone)]
pub struct NewActiveUser {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    pub totp_sealed: Vec<u8>,
    pub recovery_code_hashes: Vec<String>,
    pub created_at: UnixTime,
    pub created_by: String,
    pub confirmed_by: Option<String>,
}

/// What a sign-in needs to check besides the account itself.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub password_hash: Option<String>,
    pub totp_sealed: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    pub totp_fail_step: Option<i64>,
    pub totp_fail_count: i64,
}

/// Completing first-time setup: all of it happens at once, or none of it.
#[derive(Debug, Clone)]
pub struct CompletedSetup {
    pub user_id: String,
    pub setup_token_hash: String,
    pub password_hash: String,
    pub totp_sealed: Vec<u8>,
    pub totp_step: i64,
    pub recovery_code_hashes: Vec<String>,
    pub now: UnixTime,
}

/// Everything the password step of a sign-in reads, fetched at once.
#[derive(Debug, Clone)]
pub struct SignInFacts {
    pub user: User,
    pub credentials: Credentials,
    pub unused_recovery_codes: i64,
    pub passkeys: Vec<PasskeyRecord>,
}

/// A short-lived step of a sign-in (between password and second factor, or within setup or
/// passkey registration). `payload` is JSON owned by the step's kind.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub token_hash: String,
    pub kind: String,
    pub user_id: String,
    pub payload: String,
    pub attempts: i64,
    pub expires_at: UnixTime,
}

/// A registered passkey (WebAuthn credential); `passkey` is the library's serialised state.
#[derive(Debug, Clone)]
pub struct PasskeyRecord {
    pub id: String,
    pub user_id: String,
    pub credential_id: String,
    pub name: String,
    pub passkey: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// The second factor that completed a sign-in or re-authentication, spent atomically with it.
#[derive(Debug, Clone)]
pub enum SpentFactor {
    /// A TOTP code of this time step: refused if that step or a later one was used already.
    TotpStep(i64),
    /// A recovery code with this hash: refused if already used.
    RecoveryCode(String),
    /// A passkey assertion; its updated state (signature counter) is stored.
    Passkey {
        credential_id: String,
        passkey: String,
    },
}

/// The limits an attempt against an account is admitted under (see [`UserStore::admit_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptRule {
    pub now: UnixTime,
    /// Failures in a row (each counted from its admission) that lock the account.
    pub lockout_max: i64,
    /// When a lock set by this attempt ends.
    pub lock_until: UnixTime,
    /// For a TOTP code: the time step it is charged to and the wrong codes one step allows.
    pub totp: Option<(i64, i64)>,
}

/// An attempt taken against an account before it was checked. It counts as a failure from its
/// admission until it is settled as a success ([`UserStore::accept_password`],
/// [`UserStore::complete_sign_in`], [`UserStore::complete_reauthentication`]); a failure needs
/// no further counting ([`UserStore::fail_attempt`] only records it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptTicket {
    pub user_id: String,
    /// The account's current run of failures (see migration 0006).
    pub epoch: i64,
    /// The account's failure count with this attempt included.
    pub failures: i64,
    /// This attempt reached the limit: the account is locked unless it proves right.
    pub locked_it: bool,
    /// The TOTP step this attempt was charged to.
    pub totp_step: Option<i64>,
}

/// The answer to [`UserStore::admit_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Counted; check it, then settle it.
    Admitted(AttemptTicket),
    /// The account is locked: nothing was counted, nothing may be checked.
    Locked,
    /// This TOTP step has had its wrong codes: nothing was counted.
    TotpLocked,
    /// No such account, or one that has no credentials yet (pending).
    Unavailable,
}

/// A challenge answer taken by [`UserStore::take_challenge`]: the challenge (its attempts
/// including this one), its account and credentials, and the account's admission when asked.
#[derive(Debug, Clone)]
pub struct TakenChallenge {
    pub challenge: Challenge,
    pub user: User,
    pub credentials: Credentials,
    pub admission: Option<Admission>,
}

/// A failed sign-in, setup or re-authentication attempt, to record.
#[derive(Debug, Clone, Default)]
pub struct FailedAttempt {
    /// The attempt as admitted against an account (already counted). When it took the place that
    /// locks the account and the lock holds, an `auth.account_locked` entry follows.
    pub ticket: Option<AttemptTicket>,
    /// The challenge this attempt answered (its answer was counted when taken); deleted once it
    /// has had `challenge_max` answers.
    pub challenge_hash: Option<String>,
    pub challenge_max: i64,
    pub now: UnixTime,
}

/// What recording a failure found.
#[derive(Debug, Clone, Default)]
pub struct RecordedFailure {
    /// The account as it now is, when this failure locked it.
    pub user: Option<User>,
    /// This failure locked the account (`auth.account_locked` was logged).
    pub locked: bool,
}

/// A successful second step of sign-in: the challenge is consumed, the factor spent, the
/// failure count cleared and the session opened, all at once — provided the account is still
/// active and not locked by failures after this attempt's admission.
#[derive(Debug, Clone)]
pub struct CompletedSignIn {
    pub ticket: AttemptTicket,
    pub challenge_hash: String,
    pub factor: SpentFactor,
    pub session: Session,
    pub token_hash: String,
}

/// Staff accounts and their credentials. Every method that changes state takes the audit
/// record of that change and commits both together, or neither.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_pending_user(
        &self,
        user: NewPendingUser,
        audit: AuditRecord,
    ) -> StoreResult<User>;
    async fn create_active_user(
        &self,
        user: NewActiveUser,
        audit: AuditRecord,
    ) -> StoreResult<User>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn credentials(&self, user_id: &str) -> StoreResult<Option<Credentials>>;
    /// The account named `username` with its credentials, unused recovery codes and passkeys,
    /// in one read (the password step of a sign-in).
    async fn sign_in_facts(&self, username: &str) -> StoreResult<Option<SignInFacts>>;
    /// Takes one attempt against account `user_id` before it is checked, atomically: unless the
    /// account is locked (or, for a TOTP code, the step has had its wrong codes) the attempt is
    /// counted as a failure at once, and the one that reaches `rule.lockout_max` locks the
    /// account until `rule.lock_until`. Active and disabled accounts are counted (every attempt
    /// on a disabled account fails). Refused attempts change no account; those against no
    /// account (`None`, an unknown or pending one) or a locked one write a stand-in row instead,
    /// so that every attempt costs the same write.
    async fn admit_attempt(
        &self,
        user_id: Option<&str>,
        rule: &AttemptRule,
    ) -> StoreResult<Admission>;
    /// Takes one answer on the unexpired challenge of `kind` with fewer than `max_answers`
    /// answers so far, with its account and credentials, and with `rule` one attempt against the
    /// account (as [`UserStore::admit_attempt`]); when the account refuses the attempt the
    /// challenge is left as it was. `None`: no such challenge, or its answers are used up.
    async fn take_challenge(
        &self,
        token_hash: &str,
        kind: &str,
        max_answers: i64,
        rule: Option<&AttemptRule>,
        now: UnixTime,
    ) -> StoreResult<Option<TakenChallenge>>;
    /// The password of an admitted attempt was right: the attempt stops counting (and the lock
    /// goes, when this attempt set it) and the challenge of the second step is stored, at once.
    async fn accept_password(
        &self,
        ticket: &AttemptTicket,
        challenge: &Challenge,
    ) -> StoreResult<()>;
    /// The pending account whose unexpired setup token hashes to `token_hash`.
    async fn user_by_setup_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<User>>;
    /// Activates a pending account, consumes the setup challenge and opens the first session;
    /// false when the token or challenge was used meanwhile.
    async fn complete_setup(
        &self,
        setup: CompletedSetup,
        challenge_hash: &str,
        session: &Session,
        session_token_hash: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Issues a new setup token for an account (lost authenticator): credentials, sessions and
    /// passkeys are wiped and the account is pending again.
    async fn reset_setup(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_at: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Records a failed attempt (see [`FailedAttempt`]). When it locked the account, a second
    /// entry `auth.account_locked` follows.
    async fn fail_attempt(
        &self,
        attempt: FailedAttempt,
        audit: AuditRecord,
    ) -> StoreResult<RecordedFailure>;
    /// Completes a sign-in (see [`CompletedSignIn`]); false when the factor or challenge was
    /// spent meanwhile, the account is no longer active, or failures admitted after this attempt
    /// locked it (then nothing changed and nothing was logged).
    async fn complete_sign_in(
        &self,
        sign_in: CompletedSignIn,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Marks a session freshly re-authenticated, spending the factor and clearing the failure
    /// count; false when the factor was spent, or the account is inactive or locked as for
    /// [`UserStore::complete_sign_in`].
    async fn complete_reauthentication(
        &self,
        session_id: &str,
        ticket: &AttemptTicket,
        factor: SpentFactor,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
        audit: AuditRecord,
    ) -> StoreResult<()>;
    async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64>;
    async fn unlock(&self, user_id: &str, audit: AuditRecord) -> StoreResult<bool>;
    /// Changes a role and ends that person's sessions; the new role needs a new confirmation.
    async fn set_role(&self, user_id: &str, role: Role, audit: AuditRecord) -> StoreResult<bool>;
    /// Where an account's rights come from (who created it, who confirmed it).
    async fn provenance(&self, user_id: &str) -> StoreResult<Option<Provenance>>;
    /// The provenance of every account, ordered as [`UserStore::list_users`].
    async fn provenances(&self) -> StoreResult<Vec<Provenance>>;
    /// Records that `by` confirmed the person behind an active compliance account nobody had
    /// confirmed; false (nothing changed or logged) otherwise.
    async fn confirm_officer(
        &self,
        user_id: &str,
        by: &str,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Enables or disables an account; disabling ends its sessions.
    async fn set_status(
        &self,
        user_id: &str,
        status: UserStatus,
        now: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
    /// Disables active accounts whose last use is before `cutoff`; one entry per account, made
    /// from `audit` with the account as target. Returns their ids.
    async fn disable_dormant(
        &self,
        cutoff: UnixTime,
        audit: AuditRecord,
    ) -> StoreResult<Vec<String>>;
}

/// Signed-in sessions, looked up by the hash of their token.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<Session>>;
    /// The session of a token and the account it belongs to (`None` when the account is gone),
    /// in one read: every authenticated request asks this.
    async fn session_with_user(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(Session, Option<User>)>>;
    /// Bookkeeping of the idle timer: not an action, not audited.
    async fn touch_session(&self, id: &str, now: UnixTime) -> StoreResult<()>;
    /// Ends a session (sign-out, revocation); false when it did not exist.
    async fn delete_session(&self, id: &str, audit: AuditRecord) -> StoreResult<bool>;
    /// Ends a session whose time ran out (not an action, not audited).
    async fn expire_session(&self, id: &str) -> StoreResult<()>;
    async fn sessions_of(&self, user_id: &str) -> StoreResult<Vec<Session>>;
    async fn delete_expired_sessions(
        &self,
        idle_before: UnixTime,
        created_before: UnixTime,
    ) -> StoreResult<u64>;
}

/// Short-lived sign-in steps. Their outcome is what gets audited, not the steps themselves.
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    async fn create_challenge(&self, challenge: &Challenge) -> StoreResult<()>;
    /// The unexpired challenge of `kind` with this hash.
    async fn challenge(
        &self,
        token_hash: &str,
        kind: &str,
        now: UnixTime,
    ) -> StoreResult<Option<Challenge>>;
    /// Removes a challenge; true when it existed (so two racing answers cannot both win).
    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<bool>;
    async fn delete_expired_challenges(&self, now: UnixTime) -> StoreResult<u64>;
}

/// Registered passkeys.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    async fn add_passkey(&self, passkey: &PasskeyRecord, audit: AuditRecord) -> StoreResult<()>;
    async fn passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>>;
    async fn delete_passkey(
        &self,
        user_id: &str,
        id: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub created_at: UnixTime,
}

/// A stored audit entry: its canonical text and the leaf hash written with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub index: u64,
    pub text: String,
    pub leaf_hash: Vec<u8>,
}

/// Entries read in bulk for verification: one text buffer and flat arrays instead of a
/// `String` and a `Vec` per entry (reading, not hashing, bounds `audit verify`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryBlock {
    pub indexes: Vec<u64>,
    /// The entries' texts one after another; entry `i` ends at `ends[i]`.
    pub texts: String,
    pub ends: Vec<usize>,
    /// The stored leaf hashes; `None` where the stored value is not 32 bytes long.
    pub leaves: Vec<Option<Hash>>,
}

impl EntryBlock {
    #[must_use]
    pub fn len(&self) -> usize {
        self.indexes.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty()
    }

    /// The text of entry `i` of the block.
    #[must_use]
    pub fn text(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.texts[start..self.ends[i]]
    }

    /// Empties the block, keeping its memory for the next one (a step of `audit verify` is
    /// tens of MiB: fresh memory for each would be faulted in and zeroed page by page).
    pub fn clear(&mut self) {
        self.indexes.clear();
        self.texts.clear();
        self.ends.clear();
        self.leaves.clear();
    }

    pub fn push(&mut self, index: u64, text: &str, leaf: &[u8]) {
        self.indexes.push(index);
        self.texts.push_str(text);
        self.ends.push(self.texts.len());
        self.leaves.push(Hash::try_from(leaf).ok());
    }
}

/// The audit log (SPEC C5): an RFC 6962 Merkle tree kept in the database. Entries are appended
/// by the mutations above inside their own transactions, or on their own by [`AuditStore::append`]
/// for events that change nothing else (a refused sign-in by an unknown name).
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends entries that accompany no other change. They are durable when this returns; on
    /// PostgreSQL they get their indexes a moment later, from the integrator.
    async fn append(&self, records: Vec<AuditRecord>) -> StoreResult<()>;
    /// Appends like [`AuditStore::append`] and waits until the entries have their indexes;
    /// returns the index of the last. For the few callers that need it (a self-test that reads
    /// its entries back). Gives [`StoreError::Unavailable`] when sequencing takes too long.
    async fn append_sequenced(&self, records: Vec<AuditRecord>) -> StoreResult<u64>;
    /// Gives an index to every entry committed before this call that has none yet (PostgreSQL;
    /// on SQLite entries are indexed as they are appended). Readers that must see what was just
    /// acknowledged (the log's API) call this first.
    async fn integrate(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Starts this node's integrator (PostgreSQL): one node at a time, chosen by an advisory
    /// lock, moves committed entries into the log in batches; the others retry every second
    /// and take over within seconds when the holder's connection dies. `holder` names this
    /// node in the integrator's heartbeat. Nothing to do on SQLite.
    fn start_integrator(&self, _holder: &str) {}
    /// The integrator's state for readiness: `None` where there is none (SQLite).
    async fn integrator_state(&self) -> StoreResult<Option<IntegratorState>> {
        Ok(None)
    }
    /// The current tree: its size and frontier.
    async fn audit_head(&self) -> StoreResult<Frontier>;
    /// Entries `start..start+limit` in index order.
    async fn audit_entries(&self, start: u64, limit: u64) -> StoreResult<Vec<StoredEntry>>;
    /// Hashes of perfect subtrees (all must lie within the current tree).
    async fn audit_subtrees(&self, subtrees: &[Subtree]) -> StoreResult<Vec<Hash>>;
    /// Stores a checkpoint; false when one for that size exists already.
    async fn add_checkpoint(&self, checkpoint: &StoredCheckpoint) -> StoreResult<bool>;
    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;
    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>>;
    /// Stored hashes of the perfect subtrees at `level` with indexes `start..start+limit`, in
    /// order (level 0: the leaf hashes). For verifying the nodes proofs are served from.
    async fn audit_level(
        &self,
        level: u32,
        start: u64,
        limit: u64,
    ) -> StoreResult<Vec<(u64, Vec<u8>)>>;
    /// Entries `start..start+limit` in index order, packed (see [`EntryBlock`]), in `block`:
    /// emptied first, its memory reused.
    async fn audit_entry_block(
        &self,
        start: u64,
        limit: u64,
        mut block: EntryBlock,
    ) -> StoreResult<EntryBlock> {
        block.clear();
        for e in self.audit_entries(start, limit).await? {
            block.push(e.index, &e.text, &e.leaf_hash);
        }
        Ok(block)
    }
    /// The stored nodes over the leaves `first..first+count`, for each level `1..=levels`
    /// (item `level - 1`): at most `count >> level` of them from index `first >> level` on, in
    /// index order, without an allocation per node; a stored hash that is not 32 bytes long is
    /// `None`. `first` is a multiple of `2^levels`. For verifying them in bulk.
    async fn audit_nodes_over(
        &self,
        first: u64,
        count: u64,
        levels: u32,
    ) -> StoreResult<Vec<Vec<(u64, Option<Hash>)>>> {
        let mut out = Vec::with_capacity(levels as usize);
        for level in 1..=levels {
            out.push(
                self.audit_level(level, first >> level, count >> level)
                    .await?
                    .into_iter()
                    .map(|(i, h)| (i, Hash::try_from(h.as_slice()).ok()))
                    .collect(),
            );
        }
        Ok(out)
    }
    /// Entries matching `filter`, newest first.
    async fn search_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<StoredEntry>>;
}

/// What the audit integrator is doing, as the database and this node see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegratorState {
    /// Whether this node holds the integrator's lock.
    pub holding: bool,
    /// The node that last reported holding it, and how long ago (milliseconds).
    pub holder: String,
    pub heartbeat_age_ms: i64,
    /// Age of the oldest entry still waiting for its index (milliseconds; 0 when none waits).
    pub backlog_age_ms: i64,
    /// Entries waiting for their index.
    pub backlog: i64,
}

/// What the audit browser filters on; empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    /// What the entry acted on, e.g. `customer:<id>`.
    pub target: Option<String>,
    /// RFC 3339 bounds on the entry time (inclusive, exclusive).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Only entries with a smaller index (paging backwards).
    pub before: Option<u64>,
    pub limit: u64,
}

/// An alert to store (see `callguard_core::alerts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    pub id: String,
    pub rule: String,
    pub entry_index: u64,
    pub severity: String,
    pub raised_at: UnixTime,
    pub subject: String,
    pub summary: String,
}

/// A stored alert and what people did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub seq: i64,
    pub id: String,
    pub rule: String,
    pub entry_index: u64,
    pub severity: String,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    pub raised_at: UnixTime,
    pub subject: String,
    pub summary: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<UnixTime>,
    pub acknowledge_comment: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<UnixTime>,
    pub resolve_comment: Option<String>,
}

/// Alerts (SPEC C6).
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Stores an alert; false when the same (rule, entry) was stored already (another node).
    async fn insert_alert(&self, alert: &NewAlert) -> StoreResult<bool>;
    /// Newest first, optionally only those with `status`.
    async fn alerts(&self, status: Option<&str>, limit: u64) -> StoreResult<Vec<AlertRow>>;
    /// Alerts stored after `seq`, oldest first (for live feeds).
    async fn alerts_after(&self, seq: i64, limit: u64) -> StoreResult<Vec<AlertRow>>;
    async fn alert(&self, id: &str) -> StoreResult<Option<AlertRow>>;
    /// Alerts about `subject` (`user:<id>`, …), oldest first, at most `limit`.
    async fn alerts_about(&self, subject: &str, limit: u64) -> StoreResult<Vec<AlertRow>>;
    /// Acknowledges (`to` = "acknowledged", from "open") or resolves (`to` = "resolved", from
    /// "open" or "acknowledged") an alert with a comment; false when it is not in a state
    /// that allows it.
    async fn transition_alert(
        &self,
        id: &str,
        to: &str,
        by: &str,
        at: UnixTime,
        comment: &str,
        audit: AuditRecord,
    ) -> StoreResult<bool>;
}

/// Allowances shared by every node on the database: at most `max` uses of a key within any
/// `window` seconds (reveals per agent, ...). On one SQLite node and on many PostgreSQL nodes
/// alike, of simultaneous takers at most the allowance succeed.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Takes one use of `key`'s allowance at `now` if fewer than `max` uses fall within the
    /// last `window` seconds; `false` (and nothing recorded) when the allowance is used up.
    async fn take_allowance(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
        max: i64,
    ) -> StoreResult<bool>;
    /// Forgets uses older than `before` (housekeeping); how many were forgotten.
    async fn forget_allowances_before(&self, before: UnixTime) -> StoreResult<u64>;

    /// The per-address sign-in throttle shared by every node: admits one attempt from
    /// `address` at `now` under [`callguard_core::throttle::Entry::admit`], atomically.
    async fn admit_address(
        &self,
        address: &str,
        now: UnixTime,
    ) -> StoreResult<Result<(), callguard_core::throttle::Refusal>>;
    /// Settles an attempt admitted by [`LimitStore::admit_address`].
    async fn settle_address(&self, address: &str, now: UnixTime, failed: bool) -> StoreResult<()>;
    /// Forgets addresses quiet since before `before` with nothing in flight (housekeeping).
    async fn forget_quiet_addresses(&self, before: UnixTime) -> StoreResult<u64>;
}

/// A change another node (or a command) made that this node must react to at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Sessions may have ended: a logout, revocation, expiry, a disabled account, a new role.
    Sessions,
    /// Another national DNC registry version was put in force.
    Registry,
}

/// Liveness of the database itself.
#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
    /// Changes made elsewhere, as they happen (PostgreSQL's LISTEN/NOTIFY); `None` where this
    /// node is the only one (SQLite).
    fn subscribe_changes(&self) -> Option<tokio::sync::broadcast::Receiver<Change>> {
        None
    }
    /// Which backend this is, for logs and metrics.
    fn backend_name(&self) -> &'static str;
}

/// Everything the server needs from storage.
pub trait Store:
    UserStore
    + SessionStore
    + ChallengeStore
    + PasskeyStore
    + AuditStore
    + AlertStore
    + VaultStore
    + KeyShareStore
    + DncListStore
    + LimitStore
    + RecordingStore
    + SipCredentialStore
    + ServiceTokenStore
    + ComplianceStore
    + PaymentStore
    + RegistryStore
    + Health
{
}
impl<T> Store for T where
    T: UserStore
        + SessionStore
        + ChallengeStore
        + PasskeyStore
        + AuditStore
        + AlertStore
        + VaultStore
        + KeyShareStore
        + DncListStore
        + LimitStore
        + RecordingStore
        + SipCredentialStore
        + ServiceTokenStore
        + ComplianceStore
        + PaymentStore
        + RegistryStore
        + Health
{
}

/// Opens the store named by `database_url`: `postgres://…` or `postgresql://…` for PostgreSQL,
/// otherwise a SQLite file at `sqlite_path`. Migrations are applied before it returns.
pub async fn open(
    database_url: Option<&str>,
    sqlite_path: &std::path::Path,
) -> StoreResult<Arc<dyn Store>> {
    match database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PostgresStore::connect(url).await?))
        }
        Some(other) => Err(StoreError::Backend(format!(
            "unsupported database URL scheme {:?}: use postgres://… or leave it empty for SQLite",
            other.split(':').next().unwrap_or_default()
        ))),
        None => Ok(Arc::new(SqliteStore::open(sqlite_path).await?)),
    }
}

pub(crate) fn parse_role(s: &str) -> StoreResult<Role> {
    s.parse()
        .map_err(|_| StoreError::Backend(format!("unknown role in database: {s:?}")))
}

pub(crate) fn parse_status(s: &str) -> StoreResult<UserStatus> {
    UserStatus::parse(s)
        .ok_or_else(|| StoreError::Backend(format!("unknown status in database: {s:?}")))
}
