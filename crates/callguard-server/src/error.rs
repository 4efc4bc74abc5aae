//! The one place where errors become HTTP answers: RFC 9457 `application/problem+json` with a
//! stable `type` (a path on this server that documents it), a title, and a detail that says what
//! to do. Internals (database messages, stack traces) are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use callguard_core::password::PasswordRejected;
use serde::Serialize;

/// Every error the API can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
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
    #[error("sign-in failed: the username or password is wrong")]
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

impl ApiError {
    /// The stable slug of the problem type.
    #[must_use]
    pub fn slug(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad-request",
            ApiError::PayloadTooLarge => "payload-too-large",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden => "forbidden",
            ApiError::ReauthenticationRequired => "reauthentication-required",
            ApiError::InvalidCredentials => "invalid-credentials",
            ApiError::AccountLocked => "account-locked",
            ApiError::AccountDisabled => "account-disabled",
            ApiError::Throttled(_) => "throttled",
            ApiError::ChallengeInvalid => "challenge-invalid",
            ApiError::SecondFactorRejected => "second-factor-rejected",
            ApiError::TotpLocked(_) => "totp-locked",
            ApiError::SetupTokenInvalid => "setup-token-invalid",
            ApiError::PasswordRejected(_) => "password-rejected",
            ApiError::Validation(_) => "validation-failed",
            ApiError::UsernameTaken => "username-taken",
            ApiError::NotFound => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::Csrf => "csrf",
            ApiError::Busy => "busy",
            ApiError::NotConfigured(_) => "not-configured",
            ApiError::InvalidFields(_) => "invalid-fields",
            ApiError::State(_) => "wrong-state",
            ApiError::VerificationRequired(_) => "verification-required",
            ApiError::VerificationLocked(_) => "verification-locked",
            ApiError::FourEyes(_) => "four-eyes",
            ApiError::VerificationFailed(_) => "verification-failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthenticated
            | ApiError::InvalidCredentials
            | ApiError::ChallengeInvalid
            | ApiError::SecondFactorRejected
            | ApiError::SetupTokenInvalid => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden
            | ApiError::ReauthenticationRequired
            | ApiError::AccountLocked
            | ApiError::AccountDisabled
            | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::Throttled(_) | ApiError::TotpLocked(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PasswordRejected(_) | ApiError::Validation(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::UsernameTaken => StatusCode::CONFLICT,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotConfigured(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::InvalidFields(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::State(_) => StatusCode::CONFLICT,
            ApiError::VerificationRequired(_) | ApiError::FourEyes(_) => StatusCode::FORBIDDEN,
            ApiError::VerificationLocked(_) => StatusCode::LOCKED,
            ApiError::VerificationFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document.
    #[must_use]
    pub fn problem(&self) -> Problem {
        Problem {
            r#type: format!("/problems/{}", self.slug()),
            title: title_of(self.slug()).to_owned(),
            status: self.status().as_u16(),
            detail: self.to_string(),
            errors: match self {
                ApiError::InvalidFields(list) => list.clone(),
                _ => Vec::new(),
            },
        }
    }

    fn retry_after(&self) -> Option<i64> {
        match self {
            ApiError::Throttled(s) | ApiError::TotpLocked(s) => Some(*s),
            ApiError::Busy => Some(1),
            _ => None,
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Problem {
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For `invalid-fields`: every invalid field at once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

/// Every problem type with its title and what it means, for `/problems/{slug}` and the OpenAPI
/// document.
pub const PROBLEM_TYPES: &[(&str, &str, &str)] = &[
    ("bad-request", "Bad request", "The body is not valid JSON of the expected shape, or has fields this endpoint does not accept."),
    ("payload-too-large", "Payload too large", "The body is larger than the endpoint accepts."),
    ("unauthenticated", "Authentication required", "No valid session: the token is missing, unknown, expired or signed out."),
    ("forbidden", "Forbidden", "The signed-in role does not hold the permission this endpoint needs."),
    ("reauthentication-required", "Re-authentication required", "Sensitive admin actions need the password and second factor confirmed within the last five minutes."),
    ("invalid-credentials", "Invalid credentials", "The username or password is wrong. The answer is the same for unknown usernames."),
    ("account-locked", "Account locked", "Ten failed sign-ins lock an account for 30 minutes, or until an admin unlocks it."),
    ("account-disabled", "Account disabled", "The account was disabled by an admin or after 90 days without use."),
    ("throttled", "Too many attempts", "Repeated failures from one address must wait; the Retry-After header says how long."),
    ("challenge-invalid", "Sign-in step invalid", "The challenge from the first step is unknown, already used, expired, or spent by too many wrong codes."),
    ("second-factor-rejected", "Second factor rejected", "The code, recovery code or passkey assertion was not accepted. A code works once."),
    ("totp-locked", "Authenticator codes locked", "Three wrong codes lock authenticator codes for the rest of the current 30-second step."),
    ("setup-token-invalid", "Setup token invalid", "The setup token is unknown, used, or older than 72 hours."),
    ("password-rejected", "Password rejected", "The new password breaks the policy: at least 12 characters, not a common password, not containing the username."),
    ("validation-failed", "Validation failed", "A field has a value this endpoint does not accept."),
    ("username-taken", "Username taken", "Every person has their own account: the username is already in use."),
    ("not-found", "Not found", "No such resource, or not one you may see."),
    ("method-not-allowed", "Method not allowed", "The path exists but does not accept this HTTP method."),
    ("csrf", "CSRF check failed", "A form was submitted without the matching anti-forgery token."),
    ("busy", "Busy", "Too many password checks are queued; retry shortly."),
    ("not-configured", "Not configured", "The feature needs configuration this server does not have."),
    ("invalid-fields", "Invalid fields", "One or more fields are not valid (a checksum, a date, an E.164 number...); `errors` lists each field and what is wrong, never the value sent. Nothing was changed."),
    ("wrong-state", "Wrong state", "The action does not fit the current state: the interaction has ended, belongs to another agent or customer, or a step must come first."),
    ("verification-required", "Verification required", "The caller is not verified to the level this action needs in this interaction (level 1: identify; level 2: a one-time code)."),
    ("verification-locked", "Verification locked", "Too many failed verification attempts in this interaction, or on this customer recently; the attempt was not checked."),
    ("verification-failed", "Verification failed", "The caller's identifier, answers or code did not match. Each failure counts towards the limits per interaction (5) and per customer (10 in 24 hours)."),
    ("unavailable", "Upstream unavailable", "A service Callguard relies on (SMS provider, mail server) did not take the request."),
    ("four-eyes", "Second approver needed", "The action needs a second, different person to approve it."),
    ("internal", "Internal error", "An unexpected error; details are in the server log only."),
];

fn title_of(slug: &str) -> &'static str {
    PROBLEM_TYPES
        .iter()
        .find(|(s, _, _)| *s == slug)
        .map_or("Error", |(_, t, _)| t)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut resp = (self.status(), body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after() {
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<callguard_store::StoreError> for ApiError {
    fn from(e: callguard_store::StoreError) -> Self {
        match e {
            callguard_store::StoreError::Conflict => {
                ApiError::Validation("the value is already in use".into())
            }
            callguard_store::StoreError::Backend(msg) => {
                tracing::error!(error = %msg, "store error");
                ApiError::Internal
            }
        }
    }
}

impl From<crate::hasher::HashingError> for ApiError {
    fn from(e: crate::hasher::HashingError) -> Self {
        match e {
            crate::hasher::HashingError::Busy => ApiError::Busy,
            crate::hasher::HashingError::Failed => {
                tracing::error!("password hashing failed");
                ApiError::Internal
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_a_documented_problem_type() {
        let all = [
            ApiError::BadRequest(String::new()),
            ApiError::PayloadTooLarge,
            ApiError::Unauthenticated,
            ApiError::Forbidden,
            ApiError::ReauthenticationRequired,
            ApiError::InvalidCredentials,
            ApiError::AccountLocked,
            ApiError::AccountDisabled,
            ApiError::Throttled(1),
            ApiError::ChallengeInvalid,
            ApiError::SecondFactorRejected,
            ApiError::TotpLocked(1),
            ApiError::SetupTokenInvalid,
            ApiError::PasswordRejected(PasswordRejected::TooShort),
            ApiError::Validation(String::new()),
            ApiError::UsernameTaken,
            ApiError::NotFound,
            ApiError::MethodNotAllowed,
            ApiError::Csrf,
            ApiError::Busy,
            ApiError::NotConfigured("x"),
            ApiError::InvalidFields(Vec::new()),
            ApiError::State("x"),
            ApiError::VerificationRequired(1),
            ApiError::VerificationLocked("x"),
            ApiError::FourEyes("x"),
            ApiError::VerificationFailed(1),
            ApiError::Unavailable("x"),
            ApiError::Internal,
        ];
        for e in all {
            assert!(
                PROBLEM_TYPES.iter().any(|(s, _, _)| *s == e.slug()),
                "{}",
                e.slug()
            );
        }
    }

    #[test]
    fn store_errors_never_reach_the_client() {
        let e: ApiError =
            callguard_store::StoreError::Backend("relation users at 10.0.0.3".into()).into();
        assert!(!e.problem().detail.contains("10.0.0.3"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
