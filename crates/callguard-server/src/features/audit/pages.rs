//! The audit browser: filtered entries, the latest checkpoint and proofs, the read itself logged.

use crate::http::access::Access;
use crate::principal::Principal;
use crate::state::AppState;
use crate::web::{csrf_of, error_page, render, who, PageRoute, Who};
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use callguard_core::{rfc3339, Permission};
use callguard_store::{AuditFilter, StoredEntry};
use std::collections::HashMap;

struct AuditRow {
    index: u64,
    time: String,
    actor: String,
    actor_label: String,
    target_label: String,
    action: String,
    target: String,
    outcome: String,
    source: String,
    details: String,
    proof: String,
}

#[derive(Template)]
#[template(path = "audit/audit.html")]
struct AuditBrowser {
    csrf: String,
    who: Option<Who>,
    error: String,
    notice: String,
    tree_size: u64,
    checkpoint: String,
    verifier_key: String,
    entries: Vec<AuditRow>,
    f_actor: String,
    f_action: String,
    f_from: String,
    f_to: String,
    older: String,
}

async fn audit_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    p: Principal,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let c = csrf_of(&headers);
    // People read names; the log keeps ids. The actor filter takes either.
    let names = crate::web::staff_names(&s).await;
    let mut filter = filter_of(&q);
    if let Some(actor) = &filter.actor {
        if let Some((id, _)) = names.iter().find(|(_, name)| *name == actor) {
            filter.actor = Some(id.clone());
        }
    }
    // Browsing the log is itself recorded (PCI DSS 10.2.1.3), by the service.
    let found = match s.audit.search(&p.actor(), &filter).await {
        Ok(f) => f,
        Err(e) => return error_page(&headers, &e, who(&p)),
    };
    let entries = found
        .entries
        .iter()
        .map(|(e, proof)| row(e, proof, &names))
        .collect();
    let older = match found.entries.last() {
        Some((last, _)) if found.entries.len() as u64 == filter.limit && last.index > 0 => {
            older_link(&filter, last.index)
        }
        _ => String::new(),
    };
    let checkpoint = found.latest.as_ref().map_or("none yet".to_owned(), |cp| {
        format!("{} entries, signed {}", cp.size, rfc3339(cp.created_at))
    });
    render(
        StatusCode::OK,
        AuditBrowser {
            csrf: c.token,
            who: who(&p),
            error: String::new(),
            notice: String::new(),
            tree_size: found.tree_size,
            checkpoint,
            verifier_key: s.audit.verifier_key(),
            entries,
            f_actor: q
                .get("actor")
                .map(|a| a.trim().to_owned())
                .unwrap_or_default(),
            f_action: filter.action.unwrap_or_default(),
            f_from: filter.from.unwrap_or_default(),
            f_to: filter.to.unwrap_or_default(),
            older,
        },
        &c.new_cookie.into_iter().collect::<Vec<_>>(),
    )
}

/// The filter the query asks for, 50 entries a page.
fn filter_of(q: &HashMap<String, String>) -> AuditFilter {
    let field = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    AuditFilter {
        actor: field("actor"),
        action: field("action"),
        target: field("target"),
        from: field("from"),
        to: field("to"),
        before: field("before").and_then(|b| b.parse().ok()),
        limit: 50,
    }
}

/// One entry as the browser shows it: names beside ids, details one `key: value` per line.
fn row(e: &StoredEntry, proof: &str, names: &HashMap<String, String>) -> AuditRow {
    let label = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let v: serde_json::Value = serde_json::from_str(&e.text).unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
    let details = v
        .get("details")
        .and_then(|d| d.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    AuditRow {
        index: e.index,
        time: text("time"),
        actor_label: label(&text("actor")),
        target_label: label(&text("target")),
        actor: text("actor"),
        action: text("action"),
        target: text("target"),
        outcome: text("outcome"),
        source: text("source"),
        details,
        proof: proof.to_owned(),
    }
}

/// The link to the next older page with the same filter.
fn older_link(filter: &AuditFilter, before: u64) -> String {
    let mut params: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("from", &filter.from),
        ("to", &filter.to),
    ] {
        if let Some(v) = v {
            params.push((k, v.clone()));
        }
    }
    params.push(("before", before.to_string()));
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    format!("/audit?{}", query.join("&"))
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Signed;
    use Permission::*;
    vec![("/audit", Signed(AuditRead), get(audit_page))]
}

#[cfg(test)]
mod tests {
    use crate::features::audit::service::looks_like_identifier;

    #[test]
    fn only_identifier_shaped_filters_are_recorded_in_the_log() {
        assert!(looks_like_identifier(
            "user:0f8fad5b-d9cb-469f-a165-70867728950e"
        ));
        assert!(looks_like_identifier("auth.sign_in"));
        assert!(looks_like_identifier("cli"));
        assert!(!looks_like_identifier("Jan Kowalski"));
        assert!(!looks_like_identifier("user:jan.kowalski"));
        assert!(!looks_like_identifier("+48 601 234 567"));
    }
}
