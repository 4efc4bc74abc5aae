//! The Do-Not-Call page: registry status, the internal list and consents, and their forms.

pub mod check;

use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, render, who, Checked, CsrfOnly, Flash, PageRoute, Who};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use callguard_core::{rfc3339, Permission};
use serde::Deserialize;

/// One opt-out as the page shows it.
struct OptOutRow {
    id: String,
    number: String,
    source: String,
    added_by: String,
    added_at: String,
}

/// One consent as the page shows it.
struct ConsentRow {
    id: String,
    number: String,
    purpose: String,
    channel: String,
    source: String,
    granted_at: String,
    revoked_at: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "dnc/dnc.html")]
struct DncPage {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    has_registry: bool,
    stale: bool,
    numbers: u64,
    source: String,
    imported_at: String,
    age_days: i64,
    sha256: String,
    bytes: u64,
    bytes_per_number: String,
    sees_status: bool,
    sees_lists: bool,
    sees_consents: bool,
    can_revoke: bool,
    can_grant: bool,
    consent_sources: &'static [&'static str],
    consent_channels: &'static [&'static str],
    opt_out_sources: &'static [&'static str],
    opt_outs: Vec<OptOutRow>,
    consents: Vec<ConsentRow>,
}

async fn dnc_page(State(s): State<AppState>, headers: HeaderMap, p: Principal) -> Response {
    dnc_view(&s, &headers, &p, Flash::default()).await
}

/// `user:<id>` as the username, `cli` as the operator; anything else as it is.
fn actor_label(actor: &str, names: &std::collections::HashMap<String, String>) -> String {
    match actor.strip_prefix("user:") {
        Some(id) => names.get(id).cloned().unwrap_or_else(|| actor.to_owned()),
        None if actor == "cli" => "operator (CLI)".into(),
        None => actor.to_owned(),
    }
}

/// The internal list's newest entries, masked, with who added each.
async fn opt_out_rows(
    s: &AppState,
    names: &std::collections::HashMap<String, String>,
) -> Result<Vec<OptOutRow>, crate::error::Error> {
    Ok(s.dnc_lists
        .internal_list(100)
        .await?
        .into_iter()
        .map(|e| OptOutRow {
            added_by: actor_label(&e.added_by, names),
            id: e.id,
            number: e.number,
            source: e.source,
            added_at: e.added_at,
        })
        .collect())
}

/// The newest consent records, masked.
async fn consent_rows(s: &AppState) -> Result<Vec<ConsentRow>, crate::error::Error> {
    Ok(s.dnc_lists
        .consents(None, 100)
        .await?
        .into_iter()
        .map(|k| ConsentRow {
            id: k.id,
            number: k.number,
            purpose: k.purpose,
            channel: k.channel,
            source: k.source,
            granted_at: k.granted_at,
            revoked_at: k.revoked_at.unwrap_or_default(),
            active: k.active,
        })
        .collect())
}

impl DncPage {
    /// The registry in force: size, source, age and checksum.
    fn show_registry(&mut self, r: &crate::features::dnc::registry::Registry, age: i64) {
        self.has_registry = true;
        self.stale = age > crate::features::dnc::registry::MAX_AGE_SECONDS;
        self.numbers = r.info.numbers;
        self.source = r.info.source.clone();
        self.imported_at = rfc3339(r.info.imported_at);
        self.age_days = age / 86_400;
        self.sha256 = r.info.sha256.clone();
        self.bytes = r.set.size_in_bytes();
        self.bytes_per_number = format!(
            "{:.3}",
            r.set.size_in_bytes() as f64 / r.info.numbers.max(1) as f64
        );
    }
}

pub(crate) async fn dnc_view(
    s: &AppState,
    headers: &HeaderMap,
    p: &Principal,
    flash: Flash,
) -> Response {
    let Flash { mut error, notice } = flash;
    let c = csrf_of(headers);
    let registry = s.dnc.current();
    let age = registry
        .as_ref()
        .map_or(0, |r| callguard_core::now() - r.info.imported_at);
    let role = p.user.role;
    let sees_lists = role.allows(Permission::DncListRead);
    let sees_consents = role.allows(Permission::ConsentRead);
    let names: std::collections::HashMap<String, String> = match s.accounts.list_users().await {
        Ok(users) => users.into_iter().map(|u| (u.id, u.username)).collect(),
        Err(_) => std::collections::HashMap::new(),
    };
    let opt_outs = if sees_lists {
        opt_out_rows(s, &names).await.unwrap_or_else(|e| {
            error = e.to_string();
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let consents = if sees_consents {
        consent_rows(s).await.unwrap_or_else(|e| {
            error = e.to_string();
            Vec::new()
        })
    } else {
        Vec::new()
    };
    let mut page = DncPage {
        csrf: c.token,
        who: who(p),
        error,
        notice,
        has_registry: false,
        stale: true,
        numbers: 0,
        source: String::new(),
        imported_at: String::new(),
        age_days: 0,
        sha256: String::new(),
        bytes: 0,
        bytes_per_number: String::new(),
        sees_status: role.allows(Permission::DncStatus),
        sees_lists,
        sees_consents,
        can_revoke: role.allows(Permission::ConsentManage),
        can_grant: role.allows(Permission::ConsentManage),
        consent_sources: crate::features::dnc::lists::CONSENT_SOURCES,
        consent_channels: crate::features::dnc::lists::CHANNELS,
        opt_out_sources: crate::features::dnc::lists::OPT_OUT_SOURCES,
        opt_outs,
        consents,
    };
    if let Some(r) = &registry {
        page.show_registry(r, age);
    }
    render(
        StatusCode::OK,
        page,
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

#[derive(Deserialize)]
struct OptOutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    source: String,
}

async fn add_opt_out(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Checked(f): Checked<OptOutForm>,
) -> Response {
    let flash = match s.dnc_lists.opt_out(&p.actor(), &f.number, &f.source).await {
        Ok((e, true)) => {
            let notice = format!(
                "{} is on the internal Do-Not-Call list from now on.",
                e.number
            );
            Flash::notice(notice)
        }
        Ok((e, false)) => {
            let notice = format!("{} was on the internal list already.", e.number);
            Flash::notice(notice)
        }
        Err(e) => Flash::error(&e),
    };
    dnc_view(&s, &headers, &p, flash).await
}

async fn revoke_consent(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    Path(id): Path<String>,
    _: Checked<CsrfOnly>,
) -> Response {
    let flash = match s.dnc_lists.revoke_consent(&p.actor(), &id).await {
        Ok(k) => {
            let notice = format!(
                "Consent for {} ({} by {}) is revoked from now on.",
                k.number, k.purpose, k.channel
            );
            Flash::notice(notice)
        }
        Err(e) => Flash::error(&e),
    };
    dnc_view(&s, &headers, &p, flash).await
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        ("/dnc", Signed(DncStatus), get(dnc_page)),
        ("/dnc/internal", Signed(DncListManage), post(add_opt_out)),
        ("/dnc/check", Signed(DncCheck), post(check::check_number)),
        (
            "/dnc/consents",
            Signed(ConsentManage),
            post(check::grant_consent),
        ),
        (
            "/dnc/consents/{id}/revoke",
            Signed(ConsentManage),
            post(revoke_consent),
        ),
    ]
}

crate::web::csrf_forms!(OptOutForm);
