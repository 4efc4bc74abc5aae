//! The opened data directory and every service built over it. `serve` and the CLI commands open
//! the same runtime, so a rule holds the same whichever of them acts.

use crate::features::{audit, dnc, interactions, signin, vault};
use crate::settings::{CustomerSettings, KekSource, Settings, StartError};
use crate::{bootstrap, hasher, metrics, notify};
use callguard_core::kek::Keyring;
use callguard_store::Store;
use std::sync::Arc;

/// The opened data directory: store and key-encryption key. Shared by `serve` and the CLI.
pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub kek: Arc<Keyring>,
    pub audit: Arc<audit::service::AuditLog>,
    pub dnc: Arc<dnc::registry::Dnc>,
    /// The key of the vault's blind indexes (and of one-time code hashes).
    pub index_key: Arc<callguard_core::vault::crypto::IndexKey>,
}

impl Runtime {
    /// Prepares the data directory (0700), the key-encryption key and the database.
    pub async fn open(settings: &Settings) -> Result<Self, StartError> {
        bootstrap::create_private_dir(&settings.data_dir).map_err(|e| {
            StartError::DataDir(settings.data_dir.display().to_string(), e.to_string())
        })?;
        let kek = match &settings.kek {
            KekSource::File(p) => bootstrap::load_or_create_kek(p)?,
            KekSource::Inline(text) => bootstrap::kek_from_text(text.expose(), "CALLGUARD_KEK")?,
        };
        let sqlite_path = settings.data_dir.join("callguard.db");
        let store = callguard_store::open(
            settings.database_url.as_ref().map(|s| s.expose().as_str()),
            &sqlite_path,
        )
        .await?;
        let signer = audit::service::load_or_create_signer(
            &settings.audit.signing_key_file,
            &settings.audit.origin,
        )
        .map_err(StartError::Audit)?;
        let audit =
            audit::service::AuditLog::new(store.clone(), signer, settings.audit.witness.clone())
                .map_err(StartError::Audit)?;
        let dnc = dnc::registry::Dnc::open(&settings.data_dir.join("dnc"), settings.dnc.clone())
            .map_err(StartError::Dnc)?;
        let previous = match &settings.kek {
            KekSource::File(p) => bootstrap::load_previous_keys(p)?,
            KekSource::Inline(_) => Vec::new(),
        };
        let kek = Keyring::new(kek, previous);
        let index_key = vault::service::load_index_key(&store, &kek)
            .await
            .map_err(StartError::Vault)?;
        Ok(Self {
            index_key: Arc::new(index_key),
            store,
            kek: Arc::new(kek),
            audit: Arc::new(audit),
            dnc: Arc::new(dnc),
        })
    }

    /// The vault and the interaction services over this runtime.
    pub fn customer_services(
        &self,
        settings: &CustomerSettings,
    ) -> Result<
        (
            Arc<vault::service::Vault>,
            Arc<interactions::service::Interactions>,
        ),
        StartError,
    > {
        let vault = Arc::new(vault::service::Vault::new(
            self.store.clone(),
            self.kek.clone(),
            self.index_key.clone(),
            hasher::Hasher::for_this_machine(),
            &settings.vault,
        ));
        let notifier = notify::Notifier::new(&settings.notify)
            .map_err(|e| StartError::Notify(e.to_string()))?;
        let calls = Arc::new(interactions::service::Interactions::new(
            vault.clone(),
            Arc::new(notifier),
            settings.policy.clone(),
        ));
        Ok((vault, calls))
    }

    /// The internal Do-Not-Call list and the consent ledger over this runtime.
    #[must_use]
    pub fn dnc_lists(&self) -> crate::features::dnc::lists::DncLists {
        crate::features::dnc::lists::DncLists::new(
            self.store.clone(),
            self.kek.clone(),
            self.index_key.clone(),
        )
    }

    /// The identity service over this runtime.
    pub fn identity(
        &self,
        metrics: Arc<metrics::Metrics>,
        webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    ) -> signin::service::Identity {
        signin::service::Identity::new(
            self.store.clone(),
            self.kek.clone(),
            hasher::Hasher::for_this_machine(),
            metrics,
            webauthn,
        )
    }

    /// Account administration over this runtime (the CLI's `user` and `customer invite`).
    #[must_use]
    pub fn accounts(&self) -> crate::features::staff::service::Accounts {
        crate::features::staff::service::Accounts::new(
            self.store.clone(),
            Arc::new(self.identity(Arc::default(), None)),
        )
    }

    /// The compliance service over this runtime: the configured periods with the key files,
    /// witness and delivery settings of `settings`.
    #[must_use]
    pub fn compliance(
        &self,
        settings: &Settings,
    ) -> crate::features::compliance::service::Compliance {
        let mut c = settings.compliance.clone();
        c.key_files = vec![(
            "audit-signing".into(),
            settings.audit.signing_key_file.clone(),
        )];
        if let KekSource::File(p) = &settings.kek {
            c.key_files.insert(0, ("kek".into(), p.clone()));
        }
        c.witness_file = settings.audit.witness.file();
        c.remote_witness =
            settings.audit.witness.syslog.is_some() || settings.audit.witness.url.is_some();
        c.tls_configured = settings.tls_cert_file.is_some();
        c.alert_webhook = settings.alerts.webhook_url.is_some() || settings.alerts.syslog.is_some();
        crate::features::compliance::service::Compliance::new(
            self.store.clone(),
            self.audit.clone(),
            c,
        )
    }
}
