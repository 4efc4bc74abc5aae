//! GDPR articles the running system can show, and the record of processing (art. 30) the report
//! prints: every personal field of the schema, with its purpose, legal basis and retention.

use super::checks;
use super::live::Live;
use super::model::{Outcome, Status};
use callguard_core::vault::model::Field;

/// The controls, in report order: (id, title).
pub const CONTROLS: &[(&str, &str)] = &[
    (
        "5(1)(e)",
        "Storage limitation: nothing is kept past its retention period",
    ),
    ("12(3)/15", "Access requests are answered within one month"),
    (
        "17",
        "Erasure without undue delay; erased customers are unreadable",
    ),
    (
        "20",
        "Data portability: the export is structured and machine-readable",
    ),
    (
        "25",
        "Data protection by default: personal data is masked unless needed",
    ),
    ("30", "Record of processing covers every personal field"),
    (
        "32",
        "Security of processing: personal fields encrypted, TLS, key age",
    ),
    (
        "32-restore",
        "Security of processing: restoring from backup is tested",
    ),
    (
        "33",
        "Breaches are notified to the authority within 72 hours",
    ),
];

/// One line of the record of processing.
pub struct Processing {
    /// `table.column` or a vault field.
    pub field: &'static str,
    pub purpose: &'static str,
    pub basis: &'static str,
    pub retention: &'static str,
}

/// The record of processing: vault fields by name, then the other personal columns.
pub const RECORD_OF_PROCESSING: &[Processing] = &[
    Processing {
        field: "full_name",
        purpose: "identify the caller",
        basis: "contract (6(1)(b))",
        retention: "customers without activity",
    },
    Processing {
        field: "phones",
        purpose: "recognise and call back the customer",
        basis: "contract (6(1)(b))",
        retention: "customers without activity",
    },
    Processing {
        field: "emails",
        purpose: "send codes and answers",
        basis: "contract (6(1)(b))",
        retention: "customers without activity",
    },
    Processing {
        field: "national_id",
        purpose: "verify identity for sensitive operations",
        basis: "legal obligation (6(1)(c))",
        retention: "customers without activity",
    },
    Processing {
        field: "date_of_birth",
        purpose: "verify identity",
        basis: "contract (6(1)(b))",
        retention: "customers without activity",
    },
    Processing {
        field: "address",
        purpose: "service delivery and invoices",
        basis: "contract (6(1)(b))",
        retention: "customers without activity",
    },
    Processing {
        field: "services",
        purpose: "service delivery",
        basis: "contract (6(1)(b))",
        retention: "customers without activity",
    },
    Processing {
        field: "notes",
        purpose: "record what was agreed on calls",
        basis: "legitimate interest (6(1)(f))",
        retention: "customers without activity",
    },
    Processing {
        field: "interactions.from_hash",
        purpose: "recognise a returning caller (keyed hash)",
        basis: "legitimate interest (6(1)(f))",
        retention: "interactions",
    },
    Processing {
        field: "users.username",
        purpose: "staff sign-in and accountability",
        basis: "contract of employment (6(1)(b))",
        retention: "account lifetime",
    },
    Processing {
        field: "sessions.source, sessions.user_agent (sealed)",
        purpose: "session security",
        basis: "legitimate interest (6(1)(f))",
        retention: "sessions",
    },
    Processing {
        field: "dnc_internal.number_sealed",
        purpose: "honour opt-outs",
        basis: "legal obligation (6(1)(c))",
        retention: "while the opt-out stands",
    },
    Processing {
        field: "consent_ledger.number_sealed, evidence_sealed",
        purpose: "prove consent to be called",
        basis: "consent (6(1)(a))",
        retention: "consent lifetime plus limitation period",
    },
    Processing {
        field: "audit log source addresses",
        purpose: "security monitoring (PCI DSS 10)",
        basis: "legal obligation (6(1)(c))",
        retention: "audit log (never deleted, 12 months minimum)",
    },
];

pub async fn check(id: &str, l: &Live) -> Outcome {
    match id {
        "5(1)(e)" => checks::retention(l).await,
        "12(3)/15" => requests(l, "export_requested_at").await,
        "17" => erasure(l).await,
        "20" => Outcome::new(Status::Pass)
            .with("format", "application/json (the portal's export and the compliance export)")
            .with("fields", Field::ALL.len() as i64)
            .with("partial", "the format is checked by the product's tests, not re-parsed here"),
        "25" => checks::least_privilege().with(
            "default",
            "every customer field is shown masked; revealing one needs an agent, a verified interaction and a reason",
        ),
        "30" => record_of_processing(),
        "32" => encryption(l).await,
        "32-restore" => l.manual_control("restore_test", 90).await,
        "33" => breaches(l).await,
        _ => Outcome::new(Status::NotApplicable).with("reason", "unknown control"),
    }
}

/// Every vault field has a line in the record of processing.
pub fn record_of_processing() -> Outcome {
    let missing: Vec<&str> = Field::ALL
        .iter()
        .map(|f| f.as_str())
        .filter(|f| !RECORD_OF_PROCESSING.iter().any(|p| p.field == *f))
        .collect();
    let mut out = Outcome::pass_if(missing.is_empty())
        .with("personal_fields_in_schema", Field::ALL.len() as i64)
        .with("lines_in_record", RECORD_OF_PROCESSING.len() as i64);
    if !missing.is_empty() {
        out = out.with("fields_missing_from_record", missing.join(", "));
    }
    for p in RECORD_OF_PROCESSING {
        out = out.with(
            &format!("record {}", p.field),
            format!(
                "{}; basis {}; retention: {}",
                p.purpose, p.basis, p.retention
            ),
        );
    }
    out
}

/// Pending requests of one kind older than 30 days.
async fn requests(l: &Live, key: &str) -> Outcome {
    let Some(c) = l.customers().await else {
        return Outcome::unreadable("the customer requests");
    };
    let ages: Vec<i64> = c
        .open_requests
        .iter()
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .filter_map(|v| v.get(key).and_then(|t| t.as_str()).map(str::to_owned))
        .filter_map(|t| {
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| (l.now - t.unix_timestamp()) / 86_400)
        .collect();
    let late = ages.iter().filter(|d| **d > 30).count();
    Outcome::pass_if(late == 0)
        .with("open_requests", ages.len() as i64)
        .with("open_longer_than_30_days", late as i64)
        .with("oldest_days", ages.iter().max().copied().unwrap_or(0))
}

async fn erasure(l: &Live) -> Outcome {
    let asked = requests(l, "erasure_asked_by_customer_at").await;
    let Some(c) = l.customers().await else {
        return Outcome::unreadable("the customers");
    };
    let tombstones = Outcome::pass_if(c.erased_readable == 0)
        .with("erased_customers", c.erased)
        .with("erased_still_readable", c.erased_readable)
        .with(
            "erasure",
            "crypto-shredding: the key share is destroyed, the data key and fields removed",
        );
    asked.and(tombstones)
}

async fn encryption(l: &Live) -> Outcome {
    let Some(c) = l.customers().await else {
        return Outcome::unreadable("the customers");
    };
    Outcome::pass_if(c.active_without_key == 0)
        .with("active_customers", c.active)
        .with("active_customers_without_a_data_key", c.active_without_key)
        .with(
            "fields",
            "each personal field sealed on its own (AES-256-GCM, per-customer data key)",
        )
        .with("transport", "HTTPS only")
        .and(checks::keys(l).await)
}

async fn breaches(l: &Live) -> Outcome {
    let Ok(list) = l.store.breaches(10_000).await else {
        return Outcome::unreadable("the breach register");
    };
    let late: Vec<&str> = list
        .iter()
        .filter(|b| {
            let closed = b.notified_at.map(|n| n - b.detected_at <= 72 * 3600);
            match closed {
                Some(in_time) => !in_time,
                None => b.no_notice_reason.is_none() && l.now - b.detected_at > 72 * 3600,
            }
        })
        .map(|b| b.id.as_str())
        .collect();
    let open = list
        .iter()
        .filter(|b| b.notified_at.is_none() && b.no_notice_reason.is_none())
        .count();
    let mut out = Outcome::pass_if(late.is_empty())
        .with("breaches_recorded", list.len() as i64)
        .with("awaiting_notice", open as i64)
        .with("not_notified_within_72_hours", late.len() as i64);
    if !late.is_empty() {
        out = out.with("late_breach_ids", late.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_personal_field_of_the_vault_is_in_the_record_of_processing() {
        let out = record_of_processing();
        assert_eq!(out.status, Status::Pass, "{:?}", out.evidence);
        assert!(out.evidence.contains_key("record national_id"));
    }
}
