//! ISO/IEC 27001:2022 Annex A controls that the running system can show.

use super::checks;
use super::live::Live;
use super::model::{Outcome, Status};

/// The controls, in report order: (id, title).
pub const CONTROLS: &[(&str, &str)] = &[
    ("5.15", "Access control"),
    ("5.17", "Authentication information"),
    ("5.18", "Access rights"),
    ("8.2", "Privileged access rights"),
    ("8.3", "Information access restriction"),
    ("8.5", "Secure authentication"),
    ("8.10", "Information deletion"),
    ("8.11", "Data masking"),
    ("8.12", "Data leakage prevention"),
    ("8.13", "Information backup (restore test)"),
    ("8.15", "Logging"),
    (
        "8.16",
        "Monitoring activities (a synthetic alert is raised and delivered)",
    ),
    ("8.24", "Use of cryptography (key inventory and ages)"),
];

pub async fn check(id: &str, l: &Live) -> Outcome {
    match id {
        "5.15" => checks::role_policy().and(checks::least_privilege()),
        "5.17" => checks::passwords(l).await,
        "5.18" => checks::idle_accounts(l)
            .await
            .and(l.manual_control("access_review", 183).await),
        "8.2" => {
            let admins = l.access().await.map_or(-1, |a| {
                a.accounts
                    .iter()
                    .filter(|(r, s, _)| r == "admin" && s == "active")
                    .map(|(_, _, n)| n)
                    .sum()
            });
            checks::second_factor(l, true)
                .await
                .with("active_admins", admins)
                .with(
                    "sensitive_admin_actions",
                    "need a re-authentication within 5 minutes; a new compliance officer is confirmed by another",
                )
        }
        "8.3" => checks::reveals_with_reason(l).await,
        "8.5" => checks::second_factor(l, false)
            .await
            .and(checks::lockout(l).await)
            .and(checks::session_idle(l).await),
        "8.10" => checks::retention(l).await,
        "8.11" => checks::least_privilege().with(
            "masking",
            "supervisors and compliance see customer fields masked; agents reveal one field for a reason",
        ),
        "8.12" => checks::card_data(l).await,
        "8.13" => l.manual_control("restore_test", 90).await,
        "8.15" => checks::log_verifies(l)
            .await
            .and(checks::witnessed(l).await),
        "8.16" => checks::synthetic_alert(l).await,
        "8.24" => checks::keys(l).await,
        _ => Outcome::new(Status::NotApplicable).with("reason", "unknown control"),
    }
}
