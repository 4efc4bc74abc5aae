//! What the server is started with, already validated by the CLI's configuration layer, and why
//! it may fail to start.

use crate::features::{alerts, audit, dnc, interactions, vault};
use crate::http::tls;
use crate::{bootstrap, notify};
use callguard_core::Secret;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the key-encryption key comes from.
#[derive(Debug, Clone)]
pub enum KekSource {
    File(PathBuf),
    Inline(Secret<String>),
}

/// Everything the server needs to start, already validated by the CLI's configuration layer.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret<String>>,
    /// The address people use to reach the server; passkeys are bound to its host.
    pub public_url: Option<url::Url>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub kek: KekSource,
    pub audit: AuditSettings,
    pub alerts: alerts::service::AlertSettings,
    pub dnc: dnc::registry::DncSettings,
    pub customers: CustomerSettings,
    /// Separation of duties in account administration.
    pub staff: crate::features::staff::service::StaffSettings,
    /// Timeouts and the connection cap of the HTTPS listener.
    pub http: crate::http::connection::ConnectionLimits,
    /// Who may read `/metrics`.
    pub metrics: crate::features::ops::service::MetricsAccess,
    /// Peers whose `X-Forwarded-For` or PROXY protocol header names the client.
    pub trusted_proxies: Vec<callguard_core::net::Network>,
    /// On SIGTERM, how long `/readyz` answers 503 while requests are still served, before the
    /// listener closes (so a balancer's health check notices first).
    pub drain: std::time::Duration,
    /// Payment requests and pay-by-link (`payments.*`).
    pub payments: crate::features::payments::service::PaymentSettings,
    /// The card payment gateway; `None` turns payments off.
    pub payment_gateway: Option<crate::features::payments::gateway::GatewaySettings>,
    /// Retention periods, files scanned for card numbers, key age limit.
    pub compliance: crate::features::compliance::model::ComplianceSettings,
    /// Call recordings: the reasons offered before a playback.
    pub recordings: crate::features::recordings::service::RecordingSettings,
    /// The SIP edge softphones register at (set from `sip.*` when it is on), for "My account".
    pub sip_server: Option<crate::features::softphones::service::SipServer>,
    /// Agent states: wrap-up time, not-ready reasons, skills by queue.
    pub presence: crate::features::presence::service::PresenceSettings,
    /// Queue figures: the service level threshold, the queues shown from the start.
    pub queues: crate::features::queues::service::QueueSettings,
    /// Supervisor monitoring: who may monitor which queue, whether agents are told.
    pub monitor: crate::features::monitor::service::MonitorSettings,
}

/// Settings of the vault, caller verification and one-time code delivery.
#[derive(Debug, Clone, Default)]
pub struct CustomerSettings {
    pub vault: vault::service::VaultSettings,
    pub policy: interactions::model::Policy,
    pub notify: notify::NotifySettings,
}

/// Audit log settings.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// The log's name in checkpoints (C2SP origin) and in its verifier key.
    pub origin: String,
    /// PKCS#8 Ed25519 key that signs checkpoints (created on first start).
    pub signing_key_file: PathBuf,
    pub witness: audit::service::WitnessSettings,
    /// How often to issue a checkpoint when the log has grown.
    pub checkpoint_interval: std::time::Duration,
}

impl AuditSettings {
    /// Defaults under `data_dir`.
    #[must_use]
    pub fn defaults(data_dir: &std::path::Path) -> Self {
        Self {
            origin: "localhost/callguard-audit".into(),
            signing_key_file: data_dir.join("keys").join("audit-signing.key"),
            witness: audit::service::WitnessSettings {
                dir: data_dir.join("witness"),
                syslog: None,
                url: None,
            },
            // One checkpoint per interval plus its own few milliseconds: 800 ms keeps every entry
            // inside a signed checkpoint within one second.
            checkpoint_interval: std::time::Duration::from_millis(800),
        }
    }
}

/// Why the server could not start. Each message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {0}: {1}")]
    DataDir(String, String),
    #[error(transparent)]
    Kek(#[from] bootstrap::KekError),
    #[error("database: {0}")]
    Store(#[from] callguard_store::StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, String),
    #[error("public_url: {0}")]
    PublicUrl(String),
    #[error("audit: {0}")]
    Audit(String),
    #[error("DNC registry: {0}")]
    Dnc(String),
    #[error("vault: {0}")]
    Vault(String),
    #[error("one-time codes: {0}")]
    Notify(String),
    #[error("payments: {0}")]
    Payments(String),
}
