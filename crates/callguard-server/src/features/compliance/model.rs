//! What the compliance report is made of: frameworks, statuses, one control's result, the
//! signed report, and the settings (retention periods, files to scan, key age limit).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The frameworks the report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Framework {
    Pci,
    Gdpr,
    Iso27001,
}

impl Framework {
    pub const ALL: [Framework; 3] = [Framework::Pci, Framework::Gdpr, Framework::Iso27001];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Framework::Pci => "pci",
            Framework::Gdpr => "gdpr",
            Framework::Iso27001 => "iso27001",
        }
    }

    /// The framework's full name, as printed.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Framework::Pci => "PCI DSS v4.0.1",
            Framework::Gdpr => "GDPR",
            Framework::Iso27001 => "ISO/IEC 27001:2022 Annex A",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// A control's status. `manual`: a person performs it and recorded it in time (or it is not yet
/// due); an overdue manual control is `fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    NotApplicable,
    Manual,
}

impl Status {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not_applicable",
            Status::Manual => "manual",
        }
    }
}

/// Evidence: named facts (counts, dates, audit indexes, checkpoint sizes), never personal data.
pub type Evidence = serde_json::Map<String, serde_json::Value>;

/// What one check found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub evidence: Evidence,
}

impl Outcome {
    #[must_use]
    pub fn new(status: Status) -> Self {
        Self {
            status,
            evidence: Evidence::new(),
        }
    }

    /// Pass when `ok`, else fail.
    #[must_use]
    pub fn pass_if(ok: bool) -> Self {
        Self::new(if ok { Status::Pass } else { Status::Fail })
    }

    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.evidence.insert(key.to_owned(), value.into());
        self
    }

    /// A fact the check could not read: the control fails and says why (no stored value).
    #[must_use]
    pub fn unreadable(what: &str) -> Self {
        Self::new(Status::Fail).with("error", format!("could not read {what}"))
    }

    /// Combines with `other`: fails when either fails; evidence merged.
    #[must_use]
    pub fn and(mut self, other: Outcome) -> Self {
        if other.status == Status::Fail {
            self.status = Status::Fail;
        }
        self.evidence.extend(other.evidence);
        self
    }
}

/// One control in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Control {
    pub framework: Framework,
    pub id: String,
    pub title: String,
    pub status: Status,
    #[schemars(with = "std::collections::BTreeMap<String, serde_json::Value>")]
    pub evidence: Evidence,
}

/// The audit checkpoint the report was taken at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckpointRef {
    pub size: u64,
    /// Base64 root hash.
    pub root: String,
    /// The signed note (C2SP tlog-checkpoint).
    pub note: String,
}

/// The report's signature: a signed note (the audit log's Ed25519 key) over the report's
/// digest. See `callguard compliance verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Signature {
    /// `Ed25519 signed note over SHA-256(RFC 8785 JSON of the report without "signature")`.
    pub scheme: String,
    /// Base64 SHA-256 of the canonical JSON of the report without this field.
    pub digest: String,
    /// The verifier key (name+keyhash+base64key), the same as the audit log's.
    pub verifier_key: String,
    /// The signed note whose text names the digest and the checkpoint size.
    pub note: String,
}

/// The report (SPEC `callguard compliance report` JSON form), signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    /// RFC 3339.
    pub generated_at: String,
    pub checkpoint: Option<CheckpointRef>,
    pub controls: Vec<Control>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

impl Report {
    /// Whether any control fails (the CLI then exits non-zero).
    #[must_use]
    pub fn fails(&self) -> bool {
        self.controls.iter().any(|c| c.status == Status::Fail)
    }

    /// How many controls have `status`.
    #[must_use]
    pub fn count(&self, status: Status) -> i64 {
        self.controls.iter().filter(|c| c.status == status).count() as i64
    }
}

/// Retention periods in days per category; `None` keeps without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    pub interactions_days: Option<u32>,
    pub customers_days: Option<u32>,
    pub alerts_days: Option<u32>,
    pub sessions_days: Option<u32>,
    /// Call recordings (row, key share and file).
    pub recordings_days: Option<u32>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            interactions_days: Some(730),
            customers_days: Some(1095),
            alerts_days: Some(365),
            sessions_days: Some(1),
            recordings_days: Some(90),
        }
    }
}

/// Settings of the compliance feature. The configuration sets the retention periods, the files
/// to scan and the key age limit; the paths of keys and witness come from the rest of the
/// settings when the service is built (`Runtime::compliance`).
#[derive(Debug, Clone)]
pub struct ComplianceSettings {
    pub retention: RetentionSettings,
    /// Files or directories (their files, not recursively) scanned for card numbers: logs.
    pub scan_paths: Vec<PathBuf>,
    /// Keys older than this fail PCI DSS 3.6/ISO A.8.24 (days).
    pub key_max_age_days: u32,
    /// Key files whose age is checked: (name, path).
    pub key_files: Vec<(String, PathBuf)>,
    /// Whether a certificate was configured (else the self-signed one is used).
    pub tls_configured: bool,
    /// The witness file of audit checkpoints.
    pub witness_file: PathBuf,
    /// Where the audit witness also goes (syslog or URL), for the evidence.
    pub remote_witness: bool,
    /// Whether alerts also go to a webhook or syslog (delivery beyond the alerts page).
    pub alert_webhook: bool,
    /// Where the encrypted call recordings are (`DATA_DIR/recordings`), for retention.
    pub recordings_dir: PathBuf,
}

impl ComplianceSettings {
    /// Defaults for a data directory.
    #[must_use]
    pub fn defaults(data_dir: &std::path::Path) -> Self {
        Self {
            retention: RetentionSettings::default(),
            scan_paths: Vec::new(),
            key_max_age_days: 365,
            key_files: vec![
                ("kek".into(), data_dir.join("keys").join("kek")),
                (
                    "audit-signing".into(),
                    data_dir.join("keys").join("audit-signing.key"),
                ),
            ],
            tls_configured: false,
            witness_file: data_dir.join("witness").join("checkpoints.jsonl"),
            remote_witness: false,
            alert_webhook: false,
            recordings_dir: data_dir.join("recordings"),
        }
    }
}

/// A manual control record as shown.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ManualView {
    pub id: String,
    pub control: String,
    /// `YYYY-MM-DD`.
    pub performed_on: String,
    pub note: String,
    pub recorded_by: String,
    /// RFC 3339.
    pub recorded_at: String,
}

impl From<callguard_store::ManualRecord> for ManualView {
    fn from(m: callguard_store::ManualRecord) -> Self {
        Self {
            id: m.id,
            control: m.control,
            performed_on: m.performed_on,
            note: m.note,
            recorded_by: m.recorded_by,
            recorded_at: callguard_core::rfc3339(m.recorded_at),
        }
    }
}

/// A breach as shown.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BreachView {
    pub id: String,
    pub summary: String,
    /// RFC 3339: when the controller became aware.
    pub detected_at: String,
    pub notified_at: Option<String>,
    pub no_notice_reason: Option<String>,
    /// RFC 3339: 72 hours after `detected_at`.
    pub notice_due_by: String,
    pub recorded_by: String,
}

impl From<callguard_store::BreachRecord> for BreachView {
    fn from(b: callguard_store::BreachRecord) -> Self {
        Self {
            notice_due_by: callguard_core::rfc3339(b.detected_at + 72 * 3600),
            id: b.id,
            summary: b.summary,
            detected_at: callguard_core::rfc3339(b.detected_at),
            notified_at: b.notified_at.map(callguard_core::rfc3339),
            no_notice_reason: b.no_notice_reason,
            recorded_by: b.recorded_by,
        }
    }
}

/// One past report run (the trend).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunView {
    /// RFC 3339.
    pub at: String,
    pub framework: String,
    pub passed: i64,
    pub failed: i64,
    pub manual: i64,
    pub not_applicable: i64,
    pub checkpoint: u64,
}

impl From<callguard_store::ReportRun> for RunView {
    fn from(r: callguard_store::ReportRun) -> Self {
        Self {
            at: callguard_core::rfc3339(r.at),
            framework: r.framework,
            passed: r.passed,
            failed: r.failed,
            manual: r.manual,
            not_applicable: r.not_applicable,
            checkpoint: r.checkpoint_size,
        }
    }
}
