//! The one place where errors become HTTP answers: RFC 9457 `application/problem+json` with a
//! stable `type` (a path on this server that documents it), a title, and a detail that says what
//! to do. Internals (database messages, stack traces) are logged, never sent.

use crate::error::Error;
pub use crate::error::FieldProblem;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The HTTP status of each error.
#[must_use]
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadRequest(_) => StatusCode::BAD_REQUEST,
        Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Unauthenticated
        | Error::InvalidCredentials
        | Error::ChallengeInvalid
        | Error::SecondFactorRejected
        | Error::SetupTokenInvalid => StatusCode::UNAUTHORIZED,
        Error::Forbidden
        | Error::ReauthenticationRequired
        | Error::AccountLocked
        | Error::AccountDisabled
        | Error::Csrf => StatusCode::FORBIDDEN,
        Error::Throttled(_) | Error::TotpLocked(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::PasswordRejected(_) | Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::UsernameTaken | Error::DuplicateNationalId(_) => StatusCode::CONFLICT,
        Error::NotFound => StatusCode::NOT_FOUND,
        Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Error::Busy | Error::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Error::NotConfigured(_) => StatusCode::NOT_IMPLEMENTED,
        Error::InvalidFields(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::State(_) => StatusCode::CONFLICT,
        Error::VerificationRequired(_) | Error::FourEyes(_) => StatusCode::FORBIDDEN,
        Error::VerificationLocked(_) => StatusCode::LOCKED,
        Error::VerificationFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Unavailable(_) => StatusCode::BAD_GATEWAY,
        Error::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The problem document.
#[must_use]
pub fn problem_of(e: &Error) -> Problem {
    Problem {
        r#type: format!("/problems/{}", e.slug()),
        title: title_of(e.slug()).to_owned(),
        status: status_of(e).as_u16(),
        detail: e.to_string(),
        errors: match e {
            Error::InvalidFields(list) => list.clone(),
            _ => Vec::new(),
        },
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Problem {
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For `invalid-fields`: every invalid field at once. Absent from every other problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    ("invalid-credentials", "Invalid credentials", "The username or password is wrong, or the account is locked or disabled. The password step gives this one answer to all of these, after the same work, so that it tells no one which usernames exist, which accounts are locked or whether a guessed password was right."),
    ("account-locked", "Account locked", "Ten failed sign-ins or second factors lock an account for 30 minutes, or until an admin unlocks it. Said only to someone who proved the password before the lock (the second step, re-authentication); the password step answers `invalid-credentials`."),
    ("account-disabled", "Account disabled", "The account was disabled by an admin or after 90 days without use. Said only to someone who proved the password before (the second step); the password step answers `invalid-credentials`."),
    ("throttled", "Too many attempts", "Repeated failures from one address must wait; the Retry-After header says how long."),
    ("challenge-invalid", "Sign-in step invalid", "The challenge from the first step is unknown, already used, expired, or spent by too many wrong codes."),
    ("second-factor-rejected", "Second factor rejected", "The code, recovery code or passkey assertion was not accepted. A code works once."),
    ("totp-locked", "Authenticator codes locked", "Three wrong codes lock authenticator codes for the rest of the current 30-second step."),
    ("setup-token-invalid", "Setup token invalid", "The setup token is unknown, used, or older than 72 hours."),
    ("password-rejected", "Password rejected", "The new password breaks the policy: at least 12 characters, not a common password, not containing the username."),
    ("validation-failed", "Validation failed", "A field has a value this endpoint does not accept."),
    ("username-taken", "Username taken", "Every person has their own account: the username is already in use."),
    ("duplicate-national-id", "National id already registered", "Another customer already holds this national id (PESEL, NIP, REGON), so it cannot be registered twice; the answer never says who holds it. Find the customer by national id in a call instead. Nothing was changed."),
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
    ("database-unavailable", "Database unavailable", "The database could not be reached (a restart, a failover, a lost connection); retry after the Retry-After seconds. The request's change was not acknowledged."),
    ("four-eyes", "Second approver needed", "The action needs a second, different person to approve it."),
    ("internal", "Internal error", "An unexpected error; details are in the server log only."),
];

fn title_of(slug: &str) -> &'static str {
    PROBLEM_TYPES
        .iter()
        .find(|(s, _, _)| *s == slug)
        .map_or("Error", |(_, t, _)| t)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&problem_of(&self)).unwrap_or_default();
        let mut resp = (status_of(&self), body).into_response();
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

#[cfg(test)]
mod tests {
    use super::*;
    use callguard_core::password::PasswordRejected;

    #[test]
    fn every_error_has_a_documented_problem_type() {
        let all = [
            Error::BadRequest(String::new()),
            Error::PayloadTooLarge,
            Error::Unauthenticated,
            Error::Forbidden,
            Error::ReauthenticationRequired,
            Error::InvalidCredentials,
            Error::AccountLocked,
            Error::AccountDisabled,
            Error::Throttled(1),
            Error::ChallengeInvalid,
            Error::SecondFactorRejected,
            Error::TotpLocked(1),
            Error::SetupTokenInvalid,
            Error::PasswordRejected(PasswordRejected::TooShort),
            Error::Validation(String::new()),
            Error::UsernameTaken,
            Error::DuplicateNationalId("x"),
            Error::NotFound,
            Error::MethodNotAllowed,
            Error::Csrf,
            Error::Busy,
            Error::DatabaseUnavailable,
            Error::NotConfigured("x"),
            Error::InvalidFields(Vec::new()),
            Error::State("x"),
            Error::VerificationRequired(1),
            Error::VerificationLocked("x"),
            Error::FourEyes("x"),
            Error::VerificationFailed(1),
            Error::Unavailable("x"),
            Error::Internal,
        ];
        for e in all {
            assert!(
                PROBLEM_TYPES.iter().any(|(s, _, _)| *s == e.slug()),
                "{}",
                e.slug()
            );
        }
    }
}
