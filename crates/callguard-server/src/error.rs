//! The errors every service answers with. They know nothing of HTTP: [`crate::http::problem`]
//! turns them into problem+json answers and the pages into error pages; another front end (the
//! telephony edge) maps them its own way. The message says what to do; internals (database
//! messages, stack traces) are logged, never put in an error.

use callguard_core::password::PasswordRejected;
use serde::Serialize;

/// Every error the API can answer with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request body is not valid: {0}")]
    BadRequest(String),
    #[error("the request body is larger than this endpoint accepts")]
    PayloadTooLarge,
    #[error("sign in first: send `Authorization: Bearer TOKEN` or use the web sign-in")]
    Unauthenticated,
    #[error("your role does not allow this action")]
    Forbidden,
    #[error("this action needs a fresh confirmation of your password and second factor: POST /api/v1/auth/reauth, then retry")]
    ReauthenticationRequired,
    #[error("sign-in failed: the username or password is wrong, or the account is locked or disabled; if it keeps failing, ask an admin")]
    InvalidCredentials,
    #[error("the account is locked after too many failed sign-ins; it unlocks by itself after 30 minutes, or an admin can unlock it")]
    AccountLocked,
    #[error("the account is disabled; ask an admin to enable it")]
    AccountDisabled,
    #[error("too many failed attempts from your address; wait {0} seconds and try again")]
    Throttled(i64),
    #[error("the sign-in step is unknown, used or expired; start again")]
    ChallengeInvalid,
    #[error("the second factor was not accepted; check the code and try again")]
    SecondFactorRejected,
    #[error("too many wrong authenticator codes; wait {0} seconds for the next code")]
    TotpLocked(i64),
    #[error("the setup token is unknown, used or expired; ask an admin for a new one")]
    SetupTokenInvalid,
    #[error("{0}")]
    PasswordRejected(#[from] PasswordRejected),
    #[error("{0}")]
    Validation(String),
    #[error("that username is already taken")]
    UsernameTaken,
    /// Another customer holds this national id; which one is never said.
    #[error("{0}")]
    DuplicateNationalId(&'static str),
    #[error("not found")]
    NotFound,
    #[error("this path does not accept that method; see /api/v1/openapi.json")]
    MethodNotAllowed,
    #[error("the CSRF token is missing or wrong; reload the page and try again")]
    Csrf,
    #[error("the server is busy; try again in a moment")]
    Busy,
    #[error("this feature is not configured on this server: {0}")]
    NotConfigured(&'static str),
    #[error("some fields are not valid; see `errors` for each one")]
    InvalidFields(Vec<FieldProblem>),
    #[error("{0}")]
    State(&'static str),
    #[error("this needs the caller verified to level {0} in this interaction first")]
    VerificationRequired(i64),
    #[error("verification is locked: {0}")]
    VerificationLocked(&'static str),
    #[error("{0}")]
    FourEyes(&'static str),
    #[error("the caller's answer or code was not accepted; {0} attempts left in this interaction")]
    VerificationFailed(i64),
    #[error("{0}")]
    Unavailable(&'static str),
    #[error("the database cannot be reached just now; nothing was changed unless a later read shows it, try again shortly")]
    DatabaseUnavailable,
    #[error("something went wrong on our side; it has been logged")]
    Internal,
}

/// One invalid field of a request: where, and what is wrong (never the value sent).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FieldProblem {
    /// The field's path, e.g. `phones[1]` or `national_id.value`.
    pub field: String,
    pub detail: String,
}

impl Error {
    /// The stable slug of the problem type.
    #[must_use]
    pub fn slug(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad-request",
            Error::PayloadTooLarge => "payload-too-large",
            Error::Unauthenticated => "unauthenticated",
            Error::Forbidden => "forbidden",
            Error::ReauthenticationRequired => "reauthentication-required",
            Error::InvalidCredentials => "invalid-credentials",
            Error::AccountLocked => "account-locked",
            Error::AccountDisabled => "account-disabled",
            Error::Throttled(_) => "throttled",
            Error::ChallengeInvalid => "challenge-invalid",
            Error::SecondFactorRejected => "second-factor-rejected",
            Error::TotpLocked(_) => "totp-locked",
            Error::SetupTokenInvalid => "setup-token-invalid",
            Error::PasswordRejected(_) => "password-rejected",
            Error::Validation(_) => "validation-failed",
            Error::UsernameTaken => "username-taken",
            Error::DuplicateNationalId(_) => "duplicate-national-id",
            Error::NotFound => "not-found",
            Error::MethodNotAllowed => "method-not-allowed",
            Error::Csrf => "csrf",
            Error::Busy => "busy",
            Error::NotConfigured(_) => "not-configured",
            Error::InvalidFields(_) => "invalid-fields",
            Error::State(_) => "wrong-state",
            Error::VerificationRequired(_) => "verification-required",
            Error::VerificationLocked(_) => "verification-locked",
            Error::FourEyes(_) => "four-eyes",
            Error::VerificationFailed(_) => "verification-failed",
            Error::Unavailable(_) => "unavailable",
            Error::DatabaseUnavailable => "database-unavailable",
            Error::Internal => "internal",
        }
    }

    #[must_use]
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            Error::Throttled(s) | Error::TotpLocked(s) => Some(*s),
            Error::Busy => Some(1),
            Error::DatabaseUnavailable => Some(2),
            _ => None,
        }
    }
}

impl From<callguard_store::StoreError> for Error {
    fn from(e: callguard_store::StoreError) -> Self {
        match e {
            callguard_store::StoreError::Conflict => {
                Error::Validation("the value is already in use".into())
            }
            callguard_store::StoreError::Backend(msg) => {
                tracing::error!(error = %msg, "store error");
                Error::Internal
            }
            callguard_store::StoreError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "the database is unreachable");
                Error::DatabaseUnavailable
            }
        }
    }
}

impl From<crate::hasher::HashingError> for Error {
    fn from(e: crate::hasher::HashingError) -> Self {
        match e {
            crate::hasher::HashingError::Busy => Error::Busy,
            crate::hasher::HashingError::Failed => {
                tracing::error!("password hashing failed");
                Error::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_never_reach_the_client() {
        let e: Error =
            callguard_store::StoreError::Backend("relation users at 10.0.0.3".into()).into();
        assert!(!e.to_string().contains("10.0.0.3"));
        assert!(matches!(e, Error::Internal));
    }
}
