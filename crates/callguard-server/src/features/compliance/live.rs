//! The live system as the controls see it: the store, the settings and the checkpoint the report
//! is taken at, with each fact read once, when the first control needs it (that control's time
//! in the benchmark includes the read).

use super::model::{ComplianceSettings, Outcome, Status};
use crate::features::audit::verify::{self, VerifyReport};
use callguard_core::{Permission, Role, UnixTime};
use callguard_store::*;
use std::io::BufRead;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// Every permission, for the role matrix (kept in the order of `callguard_core::Permission`).
pub const PERMISSIONS: [(Permission, &str); 29] = {
    use Permission::*;
    [
        (OwnAccount, "own_account"),
        (UsersRead, "users_read"),
        (UsersManage, "users_manage"),
        (AuditRead, "audit_read"),
        (AlertsRead, "alerts_read"),
        (AlertsManage, "alerts_manage"),
        (DncCheck, "dnc_check"),
        (DncStatus, "dnc_status"),
        (DncListManage, "dnc_list_manage"),
        (DncListRead, "dnc_list_read"),
        (ConsentManage, "consent_manage"),
        (ConsentRead, "consent_read"),
        (CustomersCreate, "customers_create"),
        (CustomersRead, "customers_read"),
        (CustomersReveal, "customers_reveal"),
        (InteractionsHandle, "interactions_handle"),
        (CustomersOperate, "customers_operate"),
        (CustomersGdpr, "customers_gdpr"),
        (OfficersConfirm, "officers_confirm"),
        (Portal, "portal"),
        (ComplianceEvidence, "compliance_evidence"),
        (PaymentsStart, "payments_start"),
        (PaymentsRead, "payments_read"),
        (PaymentsRefund, "payments_refund"),
        (PaymentsCapture, "payments_capture"),
        (RecordingsPlay, "recordings_play"),
        (AgentState, "agent_state"),
        (QueuesRead, "queues_read"),
        (CallsMonitor, "calls_monitor"),
    ]
};

/// Every role.
pub const ROLES: [Role; 6] = [
    Role::Agent,
    Role::Supervisor,
    Role::Compliance,
    Role::Admin,
    Role::Customer,
    Role::Telephony,
];

/// The role table as enforced: `role: permission, permission; …`.
#[must_use]
pub fn enforced_policy() -> String {
    ROLES
        .iter()
        .map(|r| {
            let granted: Vec<&str> = PERMISSIONS
                .iter()
                .filter(|(p, _)| r.allows(*p))
                .map(|(_, n)| *n)
                .collect();
            format!("{}: {}", r.as_str(), granted.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Card numbers found in the configured files (logs).
#[derive(Debug, Clone, Default)]
pub struct FileScan {
    pub files: u64,
    pub bytes: u64,
    /// (file, lines holding a card number)
    pub hits: Vec<(String, u64)>,
    pub unreadable: Vec<String>,
}

/// The live system, read lazily.
pub struct Live {
    pub store: Arc<dyn Store>,
    pub settings: ComplianceSettings,
    pub now: UnixTime,
    /// The checkpoint the report is taken at.
    pub checkpoint: Option<StoredCheckpoint>,
    pub verifier_key: String,
    /// The audit log is scanned for card numbers from here (earlier entries were scanned clean
    /// by an earlier run; the log verifies, so they are unchanged).
    pub scan_from: u64,
    access: OnceCell<Option<AccessFacts>>,
    customers: OnceCell<Option<CustomerFacts>>,
    pan: OnceCell<Option<PanScan>>,
    files: OnceCell<FileScan>,
    verified: OnceCell<Result<VerifyReport, String>>,
    manual: OnceCell<Option<Vec<ManualRecord>>>,
    first_entry: OnceCell<Option<Option<UnixTime>>>,
}

impl Live {
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        settings: ComplianceSettings,
        checkpoint: Option<StoredCheckpoint>,
        verifier_key: String,
        scan_from: u64,
    ) -> Self {
        Self {
            store,
            settings,
            now: callguard_core::now(),
            checkpoint,
            verifier_key,
            scan_from,
            access: OnceCell::new(),
            customers: OnceCell::new(),
            pan: OnceCell::new(),
            files: OnceCell::new(),
            verified: OnceCell::new(),
            manual: OnceCell::new(),
            first_entry: OnceCell::new(),
        }
    }

    pub async fn access(&self) -> Option<&AccessFacts> {
        let cut = AccessCutoffs {
            now: self.now,
            idle_before: self.now - callguard_core::identity::DORMANT_SECONDS,
            // The housekeeping that ends idle sessions runs every minute: allow two.
            session_seen_before: self.now - callguard_core::identity::SESSION_IDLE_SECONDS - 120,
        };
        self.access
            .get_or_init(|| async { self.store.access_facts(&cut).await.ok() })
            .await
            .as_ref()
    }

    pub async fn customers(&self) -> Option<&CustomerFacts> {
        self.customers
            .get_or_init(|| async { self.store.customer_facts().await.ok() })
            .await
            .as_ref()
    }

    pub async fn pan(&self) -> Option<&PanScan> {
        self.pan
            .get_or_init(|| async { self.store.pan_scan(self.scan_from).await.ok() })
            .await
            .as_ref()
    }

    /// Whether the pan scan ran (so the next run may resume after it).
    #[must_use]
    pub fn pan_scanned(&self) -> Option<&PanScan> {
        self.pan.get().and_then(Option::as_ref)
    }

    pub async fn files(&self) -> &FileScan {
        self.files
            .get_or_init(|| async {
                let paths = self.settings.scan_paths.clone();
                tokio::task::spawn_blocking(move || scan_files(&paths))
                    .await
                    .unwrap_or_default()
            })
            .await
    }

    /// The whole log verified: entries, tree, checkpoint signatures, witness file.
    pub async fn verified(&self) -> &Result<VerifyReport, String> {
        self.verified
            .get_or_init(|| async {
                verify::verify_store(
                    self.store.as_ref(),
                    &self.verifier_key,
                    &self.settings.witness_file,
                    |_| {},
                )
                .await
                .map_err(|e| e.to_string())
            })
            .await
    }

    pub async fn manual(&self) -> Option<&Vec<ManualRecord>> {
        self.manual
            .get_or_init(|| async { self.store.latest_manual().await.ok() })
            .await
            .as_ref()
    }

    /// When the log (and so the installation) began.
    pub async fn first_entry(&self) -> Option<Option<UnixTime>> {
        *self
            .first_entry
            .get_or_init(|| async {
                let first = self.store.audit_entries(0, 1).await.ok()?;
                Some(first.first().and_then(|e| entry_time(&e.text)))
            })
            .await
    }

    /// A manual control: `manual` when recorded within `days` (or the installation is younger),
    /// `fail` when overdue.
    pub async fn manual_control(&self, control: &str, days: i64) -> Outcome {
        let Some(records) = self.manual().await else {
            return Outcome::unreadable("the manual control records");
        };
        let latest = records.iter().find(|r| r.control == control);
        let since = self.first_entry().await.flatten().unwrap_or(self.now);
        let out = Outcome::new(Status::Manual)
            .with("manual_control", control)
            .with("interval_days", days);
        match latest {
            Some(r) => {
                let on = parse_day(&r.performed_on).unwrap_or(0);
                let age = (self.now - on) / 86_400;
                let out = out
                    .with("last_performed_on", r.performed_on.clone())
                    .with("recorded_by", r.recorded_by.clone())
                    .with("age_days", age);
                if age > days {
                    Outcome {
                        status: Status::Fail,
                        ..out
                    }
                    .with("overdue", true)
                } else {
                    out
                }
            }
            None if (self.now - since) / 86_400 > days => Outcome {
                status: Status::Fail,
                ..out
            }
            .with("last_performed_on", "never")
            .with("overdue", true),
            None => out
                .with("last_performed_on", "never")
                .with("due_by", callguard_core::rfc3339(since + days * 86_400)),
        }
    }
}

/// The time of an audit entry (its `time`, RFC 3339).
#[must_use]
pub fn entry_time(text: &str) -> Option<UnixTime> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let t = v.get("time")?.as_str()?;
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// `YYYY-MM-DD` at midnight UTC.
#[must_use]
pub fn parse_day(day: &str) -> Option<UnixTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, &format)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

fn scan_files(paths: &[std::path::PathBuf]) -> FileScan {
    let mut out = FileScan::default();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
            }
        } else {
            files.push(p.clone());
        }
    }
    for f in files {
        let shown = f.display().to_string();
        let Ok(file) = std::fs::File::open(&f) else {
            out.unreadable.push(shown);
            continue;
        };
        out.files += 1;
        let mut hits = 0;
        let mut reader = std::io::BufReader::new(file);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            out.bytes += line.len() as u64;
            if callguard_core::pan_scan::count_pans(&String::from_utf8_lossy(&line)) > 0 {
                hits += 1;
            }
            line.clear();
        }
        if hits > 0 {
            out.hits.push((shown, hits));
        }
    }
    out
}
