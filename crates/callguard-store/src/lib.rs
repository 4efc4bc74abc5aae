//! Callguard's persistence. The domain talks to one trait per aggregate — [`UserStore`],
//! [`SessionStore`], [`ChallengeStore`], [`PasskeyStore`] — and never to a database directly.
//! Two backends implement them: SQLite (the default, one file in the data directory, WAL mode)
//! and PostgreSQL (for several nodes). Each backend has its own migrations, applied at start.
#![forbid(unsafe_code)]

mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use callguard_core::identity::{Session, User, UserStatus};
use callguard_core::{Role, UnixTime};
use std::sync::Arc;

/// What went wrong in the store. Messages name no stored value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value (a username, a token) is already taken.
    #[error("already exists")]
    Conflict,
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Backend(String),
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

/// Staff accounts and their credentials.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_pending_user(&self, user: NewPendingUser) -> StoreResult<User>;
    async fn create_active_user(&self, user: NewActiveUser) -> StoreResult<User>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn credentials(&self, user_id: &str) -> StoreResult<Option<Credentials>>;
    /// The pending account whose unexpired setup token hashes to `token_hash`.
    async fn user_by_setup_token(
        &self,
        token_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<User>>;
    /// Activates a pending account; false when the token was used or the account is not pending.
    async fn complete_setup(&self, setup: CompletedSetup) -> StoreResult<bool>;
    /// Issues a new setup token for an account (re-invitation); it becomes pending again.
    async fn reset_setup(
        &self,
        user_id: &str,
        token_hash: &str,
        expires_at: UnixTime,
    ) -> StoreResult<bool>;
    /// Counts a failed sign-in and locks the account when the limit is reached; a lock that
    /// has run out starts the count afresh. Returns the account as it now is.
    async fn record_failed_sign_in(
        &self,
        user_id: &str,
        now: UnixTime,
        max: i64,
        lock_until: UnixTime,
    ) -> StoreResult<Option<User>>;
    /// Clears the failure count and notes the sign-in time.
    async fn record_successful_sign_in(&self, user_id: &str, now: UnixTime) -> StoreResult<()>;
    /// Counts a wrong TOTP code in `step`; returns the count for that step.
    async fn record_totp_failure(&self, user_id: &str, step: i64) -> StoreResult<i64>;
    /// Marks `step` used, atomically refusing it when that step or a later one was used.
    async fn accept_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool>;
    /// Spends an unused recovery code; false when there is none with that hash.
    async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: UnixTime,
    ) -> StoreResult<bool>;
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        code_hashes: &[String],
    ) -> StoreResult<()>;
    async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64>;
    async fn unlock(&self, user_id: &str) -> StoreResult<bool>;
    async fn set_role(&self, user_id: &str, role: Role) -> StoreResult<bool>;
    async fn set_status(
        &self,
        user_id: &str,
        status: UserStatus,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Disables active accounts whose last use is before `cutoff`; returns their ids.
    async fn disable_dormant(&self, cutoff: UnixTime) -> StoreResult<Vec<String>>;
}

/// Signed-in sessions, looked up by the hash of their token.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &Session, token_hash: &str) -> StoreResult<()>;
    async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<Session>>;
    async fn touch_session(&self, id: &str, now: UnixTime) -> StoreResult<()>;
    async fn mark_reauthenticated(&self, id: &str, now: UnixTime) -> StoreResult<()>;
    async fn delete_session(&self, id: &str) -> StoreResult<bool>;
    async fn delete_sessions_of(&self, user_id: &str) -> StoreResult<u64>;
    async fn sessions_of(&self, user_id: &str) -> StoreResult<Vec<Session>>;
    async fn delete_expired_sessions(
        &self,
        idle_before: UnixTime,
        created_before: UnixTime,
    ) -> StoreResult<u64>;
}

/// Short-lived sign-in steps.
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
    /// Counts a wrong answer; returns the attempts so far.
    async fn count_challenge_failure(&self, token_hash: &str) -> StoreResult<i64>;
    /// Removes a challenge; true when it existed (so two racing answers cannot both win).
    async fn delete_challenge(&self, token_hash: &str) -> StoreResult<bool>;
    async fn delete_expired_challenges(&self, now: UnixTime) -> StoreResult<u64>;
}

/// Registered passkeys.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    async fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()>;
    async fn passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>>;
    async fn update_passkey(
        &self,
        user_id: &str,
        credential_id: &str,
        passkey: &str,
        now: UnixTime,
    ) -> StoreResult<()>;
    async fn delete_passkey(&self, user_id: &str, id: &str) -> StoreResult<bool>;
}

/// Liveness of the database itself.
#[async_trait]
pub trait Health: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
    /// Which backend this is, for logs and metrics.
    fn backend_name(&self) -> &'static str;
}

/// Everything the server needs from storage.
pub trait Store: UserStore + SessionStore + ChallengeStore + PasskeyStore + Health {}
impl<T: UserStore + SessionStore + ChallengeStore + PasskeyStore + Health> Store for T {}

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

/// Columns of `users` that make a [`User`], in the order both backends read them.
pub(crate) const USER_COLUMNS: &str =
    "id, username, role, status, failed_sign_ins, locked_until, created_at, activated_at, last_sign_in_at";
