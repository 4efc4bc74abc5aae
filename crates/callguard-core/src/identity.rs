//! Staff accounts (SPEC C1): who they are, the state their sign-in is in, and the policy numbers
//! that govern lockout, sessions and dormancy, kept in one readable place.

use crate::role::Role;
use crate::UnixTime;
use serde::{Deserialize, Serialize};

/// Failed sign-ins (passwords and second factors) before the account locks (PCI DSS 8.3.4).
pub const MAX_FAILED_SIGN_INS: i64 = 10;
/// How long a lock lasts unless an admin lifts it (PCI DSS 8.3.4: at least 30 minutes).
pub const LOCKOUT_SECONDS: i64 = 30 * 60;
/// A session unused this long ends (PCI DSS 8.2.8).
pub const SESSION_IDLE_SECONDS: i64 = 15 * 60;
/// A session ends this long after sign-in whatever happens.
pub const SESSION_ABSOLUTE_SECONDS: i64 = 12 * 60 * 60;
/// An account unused this long is disabled (PCI DSS 8.2.6).
pub const DORMANT_SECONDS: i64 = 90 * 24 * 60 * 60;
/// A setup token is valid this long (SPEC: 72 hours).
pub const SETUP_TOKEN_SECONDS: i64 = 72 * 60 * 60;
/// A sign-in challenge (between password and second factor) is valid this long.
pub const CHALLENGE_SECONDS: i64 = 5 * 60;
/// Wrong codes one challenge accepts before it is spent.
pub const CHALLENGE_ATTEMPTS: i64 = 5;
/// Sensitive admin actions need a re-authentication this recent.
pub const REAUTH_SECONDS: i64 = 5 * 60;
/// How long a compliance account nobody confirmed waits, by default, before it may approve an
/// erasure (and then only once the alerts about it were acknowledged by someone else).
pub const CONFIRMATION_WAIT_SECONDS: i64 = 7 * 24 * 60 * 60;

/// An account's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Created; waiting for its owner to set a password and enrol a second factor.
    Pending,
    /// Can sign in.
    Active,
    /// Cannot sign in until an admin enables it (dormancy or an admin's decision).
    Disabled,
}

impl UserStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Pending => "pending",
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(UserStatus::Pending),
            "active" => Some(UserStatus::Active),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// A staff account as the store keeps it, without its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub role: Role,
    pub status: UserStatus,
    pub failed_sign_ins: i64,
    pub locked_until: Option<UnixTime>,
    pub created_at: UnixTime,
    pub activated_at: Option<UnixTime>,
    pub last_sign_in_at: Option<UnixTime>,
}

impl User {
    /// Whether a lock is in force at `now`.
    #[must_use]
    pub fn is_locked(&self, now: UnixTime) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }

    /// Whether the account has gone unused past the dormancy limit at `now`.
    #[must_use]
    pub fn is_dormant(&self, now: UnixTime) -> bool {
        let last = self
            .last_sign_in_at
            .or(self.activated_at)
            .unwrap_or(self.created_at);
        self.status == UserStatus::Active && now - last > DORMANT_SECONDS
    }
}

/// Where a staff account's rights come from (separation of duties): who created it, when its
/// current role was granted, and who confirmed the person behind it. Kept beside [`User`], read
/// only where duties are checked and accounts are listed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Provenance {
    pub user_id: String,
    /// `user:<id>` of the admin who created the account, `cli` for the operator, `None` for
    /// accounts older than this record.
    pub created_by: Option<String>,
    /// When a role change gave the account its current role (`None`: its role since creation).
    pub role_granted_at: Option<UnixTime>,
    /// Who confirmed the person behind a compliance account: `user:<id>` of an existing officer,
    /// `cli` (the operator created it), `system` (an officer before this record existed).
    /// Cleared whenever the role or the credentials change.
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<UnixTime>,
}

impl Provenance {
    /// When the person now holding `user` got its current rights: the later of its setup (which
    /// a credential reset repeats) and the role change that gave it its role.
    #[must_use]
    pub fn rights_since(&self, user: &User) -> UnixTime {
        user.activated_at
            .unwrap_or(user.created_at)
            .max(self.role_granted_at.unwrap_or(user.created_at))
    }
}

/// A refused username; says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a username has 2 to 64 characters: lower-case letters, digits, '.', '_' or '-', starting with a letter")]
pub struct InvalidUsername;

/// Checks a new username: one person, one readable name.
pub fn check_username(name: &str) -> Result<(), InvalidUsername> {
    let ok = (2..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(InvalidUsername)
    }
}

/// A signed-in session as stored (the token itself is only held by its owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub reauth_at: UnixTime,
    pub source: String,
    /// As stored: sealed by the key-encryption key (`kek::seal_text`), bound to the session id;
    /// opened only to show the owner their sessions.
    pub user_agent: String,
}

impl Session {
    /// When this session ends if nothing else happens.
    #[must_use]
    pub fn expires_at(&self) -> UnixTime {
        (self.last_seen_at + SESSION_IDLE_SECONDS).min(self.created_at + SESSION_ABSOLUTE_SECONDS)
    }

    #[must_use]
    pub fn is_live(&self, now: UnixTime) -> bool {
        now < self.expires_at()
    }

    #[must_use]
    pub fn recently_authenticated(&self, now: UnixTime) -> bool {
        now - self.reauth_at <= REAUTH_SECONDS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(created: i64, seen: i64) -> Session {
        Session {
            id: "s".into(),
            user_id: "u".into(),
            created_at: created,
            last_seen_at: seen,
            reauth_at: created,
            source: String::new(),
            user_agent: String::new(),
        }
    }

    #[test]
    fn sessions_end_after_15_idle_minutes() {
        let s = session(0, 100);
        assert!(s.is_live(100 + SESSION_IDLE_SECONDS - 1));
        assert!(!s.is_live(100 + SESSION_IDLE_SECONDS));
    }

    #[test]
    fn sessions_end_after_12_hours_even_when_busy() {
        let now = SESSION_ABSOLUTE_SECONDS;
        assert!(!session(0, now - 1).is_live(now));
    }

    #[test]
    fn usernames_are_lower_case_words() {
        for ok in ["alice", "bob.smith", "agent-007", "a_b"] {
            assert!(check_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "Alice", "1abc", "al ice", "ałice", &"a".repeat(65)] {
            assert!(check_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accounts_unused_for_90_days_are_dormant() {
        let u = User {
            id: "u".into(),
            username: "alice".into(),
            role: Role::Agent,
            status: UserStatus::Active,
            failed_sign_ins: 0,
            locked_until: None,
            created_at: 0,
            activated_at: Some(10),
            last_sign_in_at: None,
        };
        assert!(!u.is_dormant(10 + DORMANT_SECONDS));
        assert!(u.is_dormant(11 + DORMANT_SECONDS));
    }
}
