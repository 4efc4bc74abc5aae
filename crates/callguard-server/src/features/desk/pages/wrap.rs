//! The end of a call on the call screen: wrap-up with a disposition code, and an opt-out the
//! agent hears on the call put on the internal Do-Not-Call list at once.

use super::call::{show, Extra};
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::Checked;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct WrapUpForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) disposition: String,
}

pub(crate) async fn wrap_up(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<WrapUpForm>,
) -> Response {
    let extra = match s.interactions.wrap_up(&p, &id, &f.disposition).await {
        Ok(v) => Extra::notice(format!(
            "Wrapped up as {}. The call is closed; the next one starts from the desk.",
            v.disposition.unwrap_or_default().replace('_', " ")
        )),
        Err(e) => Extra::error(&e),
    };
    show(&s, &headers, &p, &id, extra).await
}

#[derive(Deserialize)]
pub(crate) struct CallOptOutForm {
    #[serde(default)]
    pub(crate) csrf: String,
    #[serde(default)]
    pub(crate) number: String,
}

pub(crate) async fn opt_out(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    Checked(f): Checked<CallOptOutForm>,
) -> Response {
    // The call must be mine: an opt-out recorded "on a call" names a call of the agent's.
    if let Err(e) = s.interactions.get(&p, &id).await {
        return crate::web::error_page(&headers, &e, crate::web::who(&p));
    }
    let extra = match s.dnc_lists.opt_out(&p.actor(), &f.number, "agent").await {
        Ok((entry, true)) => Extra::notice(format!(
            "{} is on the Do-Not-Call list from now on.",
            entry.number
        )),
        Ok((entry, false)) => Extra::notice(format!(
            "{} was already on the Do-Not-Call list.",
            entry.number
        )),
        Err(e) => Extra::error(&e),
    };
    show(&s, &headers, &p, &id, extra).await
}

crate::web::csrf_forms!(WrapUpForm, CallOptOutForm);
