//! The `/dnc` page's two newer forms: "check a number" (the same pre-call check the dialer and
//! the API ask) and consent entry (TCPA express written consent, evidence sealed).

use super::dnc_view;
use crate::features::dnc::lists::NewConsent;
use crate::features::dnc::registry::Reason;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{Checked, Flash};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

/// A reason as a person reads it.
fn reason_text(r: Reason) -> &'static str {
    match r {
        Reason::NationalDnc => "on the national Do-Not-Call registry",
        Reason::InternalDnc => "on our own Do-Not-Call list (an opt-out)",
        Reason::NoConsent => "no active consent for this purpose",
        Reason::OutsideCallingHours => {
            "outside the calling window in the called party's local time"
        }
        Reason::InvalidNumber => "not a valid phone number",
    }
}

#[derive(Deserialize)]
pub(crate) struct CheckForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) number: String,
    #[serde(default)]
    pub(crate) purpose: String,
}

pub(crate) async fn check_number(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<CheckForm>,
) -> Response {
    let purpose = Some(f.purpose.trim()).filter(|x| !x.is_empty());
    let asked = f.number.trim().to_owned();
    let flash = match s.dnc_checks.check(vec![asked.clone()], None, purpose).await {
        Ok(list) => match list.first() {
            Some(c) if c.allowed => Flash::notice(format!("{asked}: may be called now.")),
            Some(c) => Flash::error(format!(
                "{asked}: do not call — {}.",
                c.reasons
                    .iter()
                    .map(|r| reason_text(*r))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            None => Flash::error("no answer for that number"),
        },
        Err(e) => Flash::error(&e),
    };
    dnc_view(&s, &headers, &p, flash).await
}

#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) number: String,
    #[serde(default)]
    pub(crate) purpose: String,
    #[serde(default)]
    pub(crate) channel: String,
    #[serde(default)]
    pub(crate) source: String,
    #[serde(default)]
    pub(crate) evidence: String,
}

pub(crate) async fn grant_consent(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<ConsentForm>,
) -> Response {
    let c = NewConsent {
        number: f.number.trim(),
        purpose: f.purpose.trim(),
        channel: f.channel.trim(),
        source: f.source.trim(),
        evidence: &f.evidence,
    };
    let flash = match s.dnc_lists.grant_consent(&p.actor(), &c).await {
        Ok(k) => Flash::notice(format!(
            "Consent recorded for {} ({} by {}), in force from the next check.",
            k.number, k.purpose, k.channel
        )),
        Err(e) => Flash::error(&e),
    };
    dnc_view(&s, &headers, &p, flash).await
}

crate::web::csrf_forms!(CheckForm, ConsentForm);
