//! The checks behind the controls. Several frameworks ask the same question (is card data
//! anywhere it may not be, has every account a second factor, does the log verify); each is
//! answered once here, and `pci.rs`, `gdpr.rs` and `iso27001.rs` say which control relies on it.

use super::live::{enforced_policy, Live};
use super::model::{Outcome, Status};
use callguard_core::identity as policy;
use callguard_core::{Permission, Role};
use callguard_store::{AuditFilter, AuditRecord, RetentionCutoffs};

/// The role table as approved (SPEC's role table). A change to `Role::allows` that is not
/// also made here fails PCI DSS 7.2.1 and ISO A.5.15 until someone approves it by editing this.
pub const APPROVED_POLICY: &str = "agent: own_account, dnc_check, dnc_list_manage, consent_manage, customers_create, customers_read, customers_reveal, interactions_handle, customers_operate, payments_start, payments_read, agent_state; \
supervisor: own_account, alerts_read, alerts_manage, dnc_check, dnc_status, dnc_list_manage, dnc_list_read, consent_read, customers_read, payments_read, payments_refund, recordings_play, queues_read, calls_monitor; \
compliance: own_account, audit_read, alerts_read, alerts_manage, dnc_check, dnc_status, dnc_list_manage, dnc_list_read, consent_manage, consent_read, customers_read, customers_gdpr, officers_confirm, compliance_evidence, recordings_play; \
admin: own_account, users_read, users_manage; \
customer: own_account, portal; \
telephony: payments_capture";

/// The audit event classes of PCI DSS 10.2.1.1–10.2.1.7 the self-test writes and reads back.
const EVENT_CLASSES: [&str; 7] = [
    "10.2.1.1 access to cardholder or customer data",
    "10.2.1.2 actions by administrators",
    "10.2.1.3 access to audit logs",
    "10.2.1.4 invalid access attempts",
    "10.2.1.5 changes to identification and authentication credentials",
    "10.2.1.6 start, stop or pause of audit logs",
    "10.2.1.7 creation and deletion of system-level objects",
];

/// Card numbers in stored data, the audit log (from the scan cursor) and the scanned files.
pub async fn card_data(l: &Live) -> Outcome {
    let Some(scan) = l.pan().await else {
        return Outcome::unreadable("the stored data for the card scan");
    };
    let files = l.files().await;
    let stored: i64 = scan.stored_hits.iter().map(|(_, n)| n).sum();
    let in_files: u64 = files.hits.iter().map(|(_, n)| n).sum();
    let mut out = Outcome::pass_if(stored == 0 && scan.audit_hits == 0 && in_files == 0)
        .with(
            "method",
            "Luhn-valid 13-19 digit numbers with a card network's first digit",
        )
        .with("stored_rows_scanned", scan.rows_scanned)
        .with("stored_rows_with_card_numbers", stored)
        .with(
            "audit_entries_scanned",
            format!("{}..{}", scan.audit_from, scan.audit_scanned_to),
        )
        .with("audit_entries_with_card_numbers", scan.audit_hits)
        .with("files_scanned", files.files)
        .with("file_bytes_scanned", files.bytes)
        .with("file_lines_with_card_numbers", in_files);
    if scan.audit_from > 0 {
        out = out.with(
            "audit_entries_before",
            format!(
                "{}: scanned clean by an earlier run; unchanged since (the log verifies)",
                scan.audit_from
            ),
        );
    }
    for (place, n) in &scan.stored_hits {
        out = out.with(&format!("hits_in_{place}"), *n);
    }
    for (file, n) in &files.hits {
        out = out.with(&format!("hits_in_file {file}"), *n);
    }
    if !files.unreadable.is_empty() {
        out = Outcome {
            status: Status::Fail,
            ..out
        }
        .with("unreadable_files", files.unreadable.join(", "));
    }
    if l.settings.scan_paths.is_empty() {
        out = out.with(
            "log_files",
            "none configured (compliance.scan_paths); the server logs to stdout/stderr",
        );
    }
    out
}

/// Active staff accounts without a second factor (`admins_only`: admins).
pub async fn second_factor(l: &Live, admins_only: bool) -> Outcome {
    let Some(a) = l.access().await else {
        return Outcome::unreadable("the accounts");
    };
    let missing = if admins_only {
        a.admins_without_second_factor
    } else {
        a.active_without_second_factor
    };
    let active: i64 = a
        .accounts
        .iter()
        .filter(|(role, status, _)| {
            status == "active" && role != "customer" && (!admins_only || role == "admin")
        })
        .map(|(_, _, n)| n)
        .sum();
    Outcome::pass_if(missing == 0)
        .with("active_accounts_checked", active)
        .with("without_second_factor", missing)
        .with(
            "sign_in",
            "a session is issued only after the second factor (TOTP, passkey or recovery code)",
        )
}

/// No active account unused for more than 90 days.
pub async fn idle_accounts(l: &Live) -> Outcome {
    let Some(a) = l.access().await else {
        return Outcome::unreadable("the accounts");
    };
    Outcome::pass_if(a.active_idle == 0 && policy::DORMANT_SECONDS <= 90 * 86_400)
        .with("idle_limit_days", policy::DORMANT_SECONDS / 86_400)
        .with("active_accounts_idle_beyond_limit", a.active_idle)
        .with(
            "enforced_by",
            "housekeeping disables dormant accounts every minute",
        )
}

/// Sessions end after 15 idle minutes.
pub async fn session_idle(l: &Live) -> Outcome {
    let Some(a) = l.access().await else {
        return Outcome::unreadable("the sessions");
    };
    Outcome::pass_if(a.stale_sessions == 0 && policy::SESSION_IDLE_SECONDS <= 15 * 60)
        .with("session_idle_minutes", policy::SESSION_IDLE_SECONDS / 60)
        .with("sessions_idle_beyond_limit", a.stale_sessions)
}

/// Lockout after at most 10 failures for at least 30 minutes.
pub async fn lockout(l: &Live) -> Outcome {
    let locked = l.access().await.map_or(-1, |a| a.locked);
    Outcome::pass_if(policy::MAX_FAILED_SIGN_INS <= 10 && policy::LOCKOUT_SECONDS >= 30 * 60)
        .with("failures_before_lock", policy::MAX_FAILED_SIGN_INS)
        .with("lock_minutes", policy::LOCKOUT_SECONDS / 60)
        .with("accounts_locked_now", locked)
}

/// Passwords of at least 12 characters, hashed with Argon2id.
pub async fn passwords(l: &Live) -> Outcome {
    let Some(a) = l.access().await else {
        return Outcome::unreadable("the accounts");
    };
    Outcome::pass_if(callguard_core::password::MIN_CHARS >= 12 && a.weak_password_hashes == 0)
        .with("minimum_length", callguard_core::password::MIN_CHARS as i64)
        .with("hash", "argon2id")
        .with("active_accounts_with_other_hashes", a.weak_password_hashes)
}

/// The role table enforced equals the approved one.
pub fn role_policy() -> Outcome {
    let enforced = enforced_policy();
    let same = enforced == APPROVED_POLICY;
    let mut out = Outcome::pass_if(same)
        .with("roles", super::live::ROLES.len() as i64)
        .with(
            "deny_by_default",
            "a permission not granted in Role::allows is refused",
        )
        .with("enforced_policy", enforced.clone());
    if !same {
        out = out.with("approved_policy", APPROVED_POLICY);
    }
    out
}

/// Least privilege: admins never see customers, only compliance reads the log, only agents
/// reveal, customers reach only the portal.
pub fn least_privilege() -> Outcome {
    let staff_only = |p: Permission| !Role::Customer.allows(p);
    let checks = [
        (
            "admins_cannot_read_customers",
            !Role::Admin.allows(Permission::CustomersRead),
        ),
        (
            "only_compliance_reads_the_log",
            super::live::ROLES
                .iter()
                .all(|r| r.allows(Permission::AuditRead) == (*r == Role::Compliance)),
        ),
        (
            "only_agents_reveal",
            super::live::ROLES
                .iter()
                .all(|r| r.allows(Permission::CustomersReveal) == (*r == Role::Agent)),
        ),
        (
            "customers_reach_only_their_portal",
            super::live::PERMISSIONS.iter().all(|(p, _)| {
                matches!(p, Permission::Portal | Permission::OwnAccount) || staff_only(*p)
            }),
        ),
        (
            "the_telephony_account_only_captures_keypad_payments",
            super::live::PERMISSIONS
                .iter()
                .all(|(p, _)| Role::Telephony.allows(*p) == (*p == Permission::PaymentsCapture)),
        ),
    ];
    let mut out = Outcome::pass_if(checks.iter().all(|(_, ok)| *ok));
    for (name, ok) in checks {
        out = out.with(name, ok);
    }
    out
}

/// Reading the log is restricted to the compliance role.
pub fn log_read_restricted() -> Outcome {
    let readers: Vec<&str> = super::live::ROLES
        .iter()
        .filter(|r| r.allows(Permission::AuditRead))
        .map(|r| r.as_str())
        .collect();
    Outcome::pass_if(readers == ["compliance"])
        .with("roles_reading_the_log", readers.join(", "))
        .with(
            "reads_logged",
            "every read of the log is itself an audit entry (audit.read)",
        )
}

/// Writes one event of each class and finds each in the log.
pub async fn log_selftest(l: &Live) -> Outcome {
    let records: Vec<AuditRecord> = EVENT_CLASSES
        .iter()
        .map(|c| AuditRecord::new("compliance.selftest", "system").detail("class", *c))
        .collect();
    let Ok(last) = l.store.append_sequenced(records).await else {
        return Outcome::unreadable("the audit log (self-test write)");
    };
    let first = last + 1 - EVENT_CLASSES.len() as u64;
    let Ok(read) = l
        .store
        .audit_entries(first, EVENT_CLASSES.len() as u64)
        .await
    else {
        return Outcome::unreadable("the audit log (self-test read)");
    };
    let found = EVENT_CLASSES
        .iter()
        .filter(|c| {
            read.iter()
                .any(|e| e.text.contains("compliance.selftest") && e.text.contains(**c))
        })
        .count();
    Outcome::pass_if(found == EVENT_CLASSES.len())
        .with("classes_written", EVENT_CLASSES.len() as i64)
        .with("classes_found", found as i64)
        .with("audit_indexes", format!("{first}..={last}"))
}

/// The latest entries carry who, what, when, outcome (and where, for network actions).
pub async fn log_fields(l: &Live) -> Outcome {
    let Ok(head) = l.store.audit_head().await else {
        return Outcome::unreadable("the audit log");
    };
    let start = head.size.saturating_sub(1000);
    let Ok(entries) = l.store.audit_entries(start, 1000).await else {
        return Outcome::unreadable("the audit log");
    };
    let missing = entries
        .iter()
        .filter(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.text).unwrap_or_default();
            ["time", "actor", "action", "outcome"]
                .iter()
                .any(|k| v.get(k).is_none_or(serde_json::Value::is_null))
        })
        .count();
    Outcome::pass_if(missing == 0)
        .with("entries_sampled", format!("{start}..{}", head.size))
        .with(
            "fields",
            "time, actor, action, outcome, target, source (network actions), details",
        )
        .with("entries_missing_a_field", missing as i64)
}

/// The whole log verifies against its signed checkpoints and the witness file.
pub async fn log_verifies(l: &Live) -> Outcome {
    match l.verified().await {
        Ok(r) => Outcome::new(Status::Pass)
            .with("entries_verified", r.entries)
            .with("checkpoints_verified", r.checkpoints as i64)
            .with("witness_checkpoints_verified", r.witness_checkpoints as i64)
            .with("root", data_encoding::BASE64.encode(&r.root)),
        Err(e) => Outcome::new(Status::Fail).with("verification", e.clone()),
    }
}

/// The checkpoint the report is taken at is in the witness file outside the database.
pub async fn witnessed(l: &Live) -> Outcome {
    let Some(cp) = &l.checkpoint else {
        return Outcome::new(Status::Pass).with("checkpoint", "none yet: the log is empty");
    };
    let file = &l.settings.witness_file;
    let notes = crate::features::audit::verify::witness_notes(file).unwrap_or_default();
    let found = notes
        .iter()
        .any(|(size, note)| *size == cp.size && *note == cp.note);
    Outcome::pass_if(found)
        .with("checkpoint_size", cp.size)
        .with("witness_file", file.display().to_string())
        .with("witness_checkpoints", notes.len() as i64)
        .with("checkpoint_in_witness_file", found)
        .with("remote_witness", l.settings.remote_witness)
}

/// The log keeps every entry since the installation began, all online.
pub async fn audit_retention(l: &Live) -> Outcome {
    let first = l.first_entry().await.flatten();
    let size = l.checkpoint.as_ref().map_or(0, |c| c.size);
    let out = Outcome::new(Status::Pass)
        .with("entries", size)
        .with(
            "deletion",
            "never: the log is append-only and verified from entry 0",
        )
        .with("online", "all entries");
    match first {
        Some(t) => out
            .with("oldest_entry", callguard_core::rfc3339(t))
            .with("days_kept", (l.now - t) / 86_400),
        None => out.with("oldest_entry", "none yet"),
    }
}

/// The retention cutoffs in force.
#[must_use]
pub fn cutoffs(l: &Live) -> RetentionCutoffs {
    let r = l.settings.retention;
    let at = |days: Option<u32>| days.map(|d| l.now - i64::from(d) * 86_400);
    RetentionCutoffs {
        now: l.now,
        interactions: at(r.interactions_days),
        customers: at(r.customers_days),
        alerts: at(r.alerts_days),
        sessions: at(r.sessions_days),
        recordings: at(r.recordings_days),
    }
}

/// Nothing is past its retention period, and the purge job ran within a day.
pub async fn retention(l: &Live) -> Outcome {
    let Ok(due) = l.store.retention_overdue(&cutoffs(l)).await else {
        return Outcome::unreadable("the retention counts");
    };
    let last = l.store.last_retention_run().await.ok().flatten();
    let r = l.settings.retention;
    let days = |d: Option<u32>| d.map_or("unlimited".to_string(), |d| format!("{d} days"));
    let mut out = Outcome::pass_if(due.total() == 0)
        .with("period_interactions", days(r.interactions_days))
        .with("period_customers_without_activity", days(r.customers_days))
        .with("period_resolved_alerts", days(r.alerts_days))
        .with("period_sessions", days(r.sessions_days))
        .with("overdue_interactions", due.interactions)
        .with("overdue_customers", due.customers)
        .with("overdue_alerts", due.alerts)
        .with("overdue_sessions", due.sessions)
        .with("period_recordings", days(r.recordings_days))
        .with("overdue_recordings", due.recordings);
    match last {
        Some((at, n)) => {
            out = out.with("last_run", callguard_core::rfc3339(at)).with(
                "last_run_removed",
                serde_json::json!({
                    "interactions": n.interactions,
                    "customers": n.customers,
                    "alerts": n.alerts,
                    "sessions": n.sessions,
                    "recordings": n.recordings,
                }),
            );
        }
        None => out = out.with("last_run", "never"),
    }
    out
}

/// Every reveal of a customer field names a reason (among the latest 1000).
pub async fn reveals_with_reason(l: &Live) -> Outcome {
    let Ok(reveals) = l
        .store
        .search_audit(&AuditFilter {
            action: Some("customer.reveal".into()),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
    else {
        return Outcome::unreadable("the audit log");
    };
    let without = reveals
        .iter()
        .filter(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.text).unwrap_or_default();
            v.pointer("/details/reason").is_none()
        })
        .count();
    Outcome::pass_if(without == 0)
        .with("reveals_checked", reveals.len() as i64)
        .with("reveals_without_reason", without as i64)
        .with(
            "who_may_reveal",
            "agents, during a verified interaction, rate-limited",
        )
}

/// Key inventory with ages against the maximum.
pub async fn keys(l: &Live) -> Outcome {
    let max = i64::from(l.settings.key_max_age_days);
    let mut out = Outcome::new(Status::Pass)
        .with("max_age_days", max)
        .with("algorithms", "AES-256-GCM (KEK, data keys), Ed25519 (audit), HMAC-SHA-256 (indexes), Argon2id (passwords), TLS 1.2+ (rustls)");
    for (name, path) in &l.settings.key_files {
        let age = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| std::time::SystemTime::now().duration_since(m).ok())
            .map(|d| d.as_secs() as i64 / 86_400);
        match age {
            Some(days) => {
                out = out.with(&format!("key {name} age_days"), days);
                if days > max {
                    out.status = Status::Fail;
                    out = out.with(&format!("key {name}"), "older than the maximum: rotate it");
                }
            }
            None => {
                out = out.with(
                    &format!("key {name}"),
                    "not in a file (given inline) or unreadable: age unknown",
                );
            }
        }
    }
    out.with(
        "tls",
        if l.settings.tls_configured {
            "configured certificate"
        } else {
            "self-signed certificate made on first start"
        },
    )
}

/// A synthetic audit entry must come back as a stored (delivered) alert, which is then resolved.
pub async fn synthetic_alert(l: &Live) -> Outcome {
    let Ok(index) = l
        .store
        .append_sequenced(vec![AuditRecord::new("compliance.alert_test", "system")])
        .await
    else {
        return Outcome::unreadable("the audit log (alert self-test)");
    };
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        if let Ok(alerts) = l.store.alerts(Some("open"), 100).await {
            if let Some(a) = alerts
                .iter()
                .find(|a| a.rule == "synthetic_test" && a.entry_index == index)
            {
                let resolved = l
                    .store
                    .transition_alert(
                        &a.id,
                        "resolved",
                        "system",
                        callguard_core::now(),
                        "compliance self-test",
                        AuditRecord::new("alert.resolve", "system")
                            .target(format!("alert:{}", a.id)),
                    )
                    .await
                    .unwrap_or(false);
                return Outcome::new(Status::Pass)
                    .with("test_entry_index", index)
                    .with("alert_id", a.id.clone())
                    .with("alert_raised_at", callguard_core::rfc3339(a.raised_at))
                    .with("resolved_by_self_test", resolved)
                    .with("webhook_delivery", l.settings.alert_webhook);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Outcome::new(Status::Fail)
        .with("test_entry_index", index)
        .with(
            "alert",
            "not raised within 5 s: is a server (the alert engine) running?",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enforced_role_table_is_the_approved_one() {
        let out = role_policy();
        assert_eq!(out.status, Status::Pass, "{:?}", out.evidence);
        assert_eq!(least_privilege().status, Status::Pass);
        assert_eq!(log_read_restricted().status, Status::Pass);
    }
}

#[cfg(test)]
mod approved_policy_tests {
    use super::*;

    /// A change to any role's permissions must come with a change to the approved table (and so
    /// pass review), or PCI 7.2.1 and ISO 5.15 fail.
    #[test]
    fn the_enforced_role_table_is_the_approved_one() {
        assert_eq!(enforced_policy(), APPROVED_POLICY);
    }
}
