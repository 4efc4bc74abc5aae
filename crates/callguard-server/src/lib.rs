//! Callguard's HTTPS server: the JSON API, the web pages, sign-in and access control, TLS.
//! Handlers are thin; security decisions live in [`identity`] and [`access`].
#![forbid(unsafe_code)]

pub mod access;
pub mod alerts;
pub mod api;
pub mod audit;
pub mod bootstrap;
pub mod calls;
pub mod csrf;
pub mod customer_api;
pub mod desk;
pub mod dnc;
pub mod dnc_lists;
pub mod error;
pub mod hasher;
pub mod identity;
pub mod keys;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod pages;
pub mod portal;
pub mod portal_pages;
pub mod tls;
pub mod vault;

use access::{Access, Surface};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use callguard_core::kek::Keyring;
use callguard_core::Secret;
use callguard_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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
    pub alerts: alerts::AlertSettings,
    pub dnc: dnc::DncSettings,
    pub customers: CustomerSettings,
}

/// Settings of the vault, caller verification and one-time code delivery.
#[derive(Debug, Clone, Default)]
pub struct CustomerSettings {
    pub vault: vault::VaultSettings,
    pub policy: calls::Policy,
    pub notify: notify::NotifySettings,
}

/// Audit log settings.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// The log's name in checkpoints (C2SP origin) and in its verifier key.
    pub origin: String,
    /// PKCS#8 Ed25519 key that signs checkpoints (created on first start).
    pub signing_key_file: PathBuf,
    pub witness: audit::WitnessSettings,
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
            witness: audit::WitnessSettings {
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
}

/// The opened data directory: store and key-encryption key. Shared by `serve` and the CLI.
pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub kek: Arc<Keyring>,
    pub audit: Arc<audit::AuditLog>,
    pub dnc: Arc<dnc::Dnc>,
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
        let signer =
            audit::load_or_create_signer(&settings.audit.signing_key_file, &settings.audit.origin)
                .map_err(StartError::Audit)?;
        let audit = audit::AuditLog::new(store.clone(), signer, settings.audit.witness.clone())
            .map_err(StartError::Audit)?;
        let dnc = dnc::Dnc::open(&settings.data_dir.join("dnc"), settings.dnc.clone())
            .map_err(StartError::Dnc)?;
        let previous = match &settings.kek {
            KekSource::File(p) => bootstrap::load_previous_keys(p)?,
            KekSource::Inline(_) => Vec::new(),
        };
        let kek = Keyring::new(kek, previous);
        let index_key = vault::load_index_key(&store, &kek)
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
    ) -> Result<(Arc<vault::Vault>, Arc<calls::Calls>), StartError> {
        let vault = Arc::new(vault::Vault::new(
            self.store.clone(),
            self.kek.clone(),
            self.index_key.clone(),
            hasher::Hasher::for_this_machine(),
            &settings.vault,
        ));
        let notifier = notify::Notifier::new(&settings.notify)
            .map_err(|e| StartError::Notify(e.to_string()))?;
        let calls = Arc::new(calls::Calls::new(
            vault.clone(),
            Arc::new(notifier),
            settings.policy.clone(),
        ));
        Ok((vault, calls))
    }

    /// The internal Do-Not-Call list and the consent ledger over this runtime.
    #[must_use]
    pub fn dnc_lists(&self) -> dnc_lists::DncLists {
        dnc_lists::DncLists::new(self.store.clone(), self.kek.clone(), self.index_key.clone())
    }

    /// The identity service over this runtime.
    pub fn identity(
        &self,
        metrics: Arc<metrics::Metrics>,
        webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    ) -> identity::Identity {
        identity::Identity::new(
            self.store.clone(),
            self.kek.clone(),
            hasher::Hasher::for_this_machine(),
            metrics,
            webauthn,
        )
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub identity: Arc<identity::Identity>,
    pub audit: Arc<audit::AuditLog>,
    pub alerts: Arc<alerts::Alerts>,
    pub dnc: Arc<dnc::Dnc>,
    pub dnc_lists: Arc<dnc_lists::DncLists>,
    pub metrics: Arc<metrics::Metrics>,
    pub vault: Arc<vault::Vault>,
    pub calls: Arc<calls::Calls>,
}

/// The whole application: API and pages, each route behind its access check, with security
/// headers, body limits and metrics on everything.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new();
    for r in api::routes() {
        // A route may accept more than the default body size (a batch of numbers to check).
        let handler = match r.body_limit {
            Some(bytes) => r.handler.layer(DefaultBodyLimit::max(bytes)),
            None => r.handler,
        };
        app = app.route(
            r.path,
            with_access(handler, state.clone(), r.access, Surface::Api),
        );
    }
    for (path, access, handler) in pages::routes() {
        app = app.route(
            path,
            with_access(handler, state.clone(), access, Surface::Page),
        );
    }
    app.fallback(|| async { error::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn with_access(
    handler: axum::routing::MethodRouter<AppState>,
    state: AppState,
    access: Access,
    surface: Surface,
) -> axum::routing::MethodRouter<AppState> {
    handler.route_layer(middleware::from_fn_with_state(
        state,
        move |s, req, next| access::authorize(s, access, surface, req, next),
    ))
}

async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    // The route template, never the raw path or query: those may carry identifiers.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let resp = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    state.metrics.observe_request(&method, &route, status, secs);
    tracing::debug!(%method, %route, status, ms = secs * 1000.0, "request");
    resp
}

/// Content-Security-Policy for every answer: no inline script, nothing from other hosts.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut resp = next.run(req).await.into_response();
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if is_static {
        set(h, header::CACHE_CONTROL, "public, max-age=3600");
    } else {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}

/// Builds the passkey relying party for `public_url`.
pub fn webauthn_for(public_url: &url::Url) -> Result<webauthn_rs::Webauthn, StartError> {
    let host = public_url
        .host_str()
        .ok_or_else(|| StartError::PublicUrl("it has no host".into()))?;
    webauthn_rs::WebauthnBuilder::new(host, public_url)
        .and_then(|b| b.rp_name("Callguard").build())
        .map_err(|e| StartError::PublicUrl(format!("not usable for passkeys: {e}")))
}

/// Starts serving and runs until `shutdown` resolves.
pub async fn serve(
    settings: Settings,
    runtime: Runtime,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let cert_paths = match (&settings.tls_cert_file, &settings.tls_key_file) {
        (Some(cert), Some(key)) => tls::CertificatePaths {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => {
            let names: Vec<String> = settings
                .public_url
                .iter()
                .filter_map(|u| u.host_str().map(str::to_owned))
                .collect();
            tls::ensure_self_signed(&settings.data_dir, &names)?
        }
    };
    let tls_config = tls::server_config(&cert_paths)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| StartError::Listen(settings.listen, e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| StartError::Listen(settings.listen, e.to_string()))?;
    let public_url = match settings.public_url.clone() {
        Some(u) => u,
        None => url::Url::parse(&format!("https://localhost:{}", bound.port()))
            .map_err(|e| StartError::PublicUrl(e.to_string()))?,
    };
    let webauthn = match webauthn_for(&public_url) {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            tracing::warn!(error = %e, "passkeys disabled");
            None
        }
    };
    let metrics = Arc::new(metrics::Metrics::default());
    let identity = Arc::new(runtime.identity(metrics.clone(), webauthn));
    let alerts = Arc::new(alerts::Alerts::new(
        runtime.store.clone(),
        settings.alerts.clone(),
        metrics.clone(),
    ));
    let alert_engine = tokio::spawn(alerts.clone().run_engine());
    let alert_feed = tokio::spawn(alerts.clone().run_feed());
    let state_alerts = alerts.clone();
    // A registry imported by `callguard dnc import` replaces the one in force once loaded.
    let reloader = runtime.dnc.clone();
    // `callguard keys rotate` writes new key files; this node switches to them by itself.
    let key_reload = match &settings.kek {
        KekSource::File(p) => Some(keys::spawn_reloader(runtime.kek.clone(), p.clone())),
        KekSource::Inline(_) => None,
    };
    let dnc_reload = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            let r = reloader.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || r.reload_if_changed()).await {
                tracing::error!(error = %e, "the new DNC registry could not be loaded; the old one stays");
            }
        }
    });
    let (vault, calls) = runtime.customer_services(&settings.customers)?;
    let state = AppState {
        vault,
        calls,
        identity: identity.clone(),
        audit: runtime.audit.clone(),
        dnc: runtime.dnc.clone(),
        dnc_lists: Arc::new(runtime.dnc_lists()),
        alerts,
        metrics,
    };
    let checkpoints = tokio::spawn(
        runtime
            .audit
            .clone()
            .run(settings.audit.checkpoint_interval),
    );
    let app = router(state);

    // Housekeeping: expired sessions and challenges, dormant accounts.
    let sweeper = identity.clone();
    let sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = sweeper.sweep().await {
                tracing::warn!(error = %e, "housekeeping failed");
            }
        }
    });

    write_address_file(&settings.data_dir, bound);
    tracing::info!(address = %bound, public_url = %public_url, backend = runtime.store.backend_name(), "callguard is serving");
    println!("callguard listening on https://{bound} (open {public_url})");
    let closing = state_alerts.clone();
    let shutdown = async move {
        shutdown.await;
        closing.close_streams();
    };
    tls::serve(listener, tls_config, app, shutdown).await;
    sweep.abort();
    checkpoints.abort();
    alert_engine.abort();
    dnc_reload.abort();
    if let Some(k) = key_reload {
        k.abort();
    }
    alert_feed.abort();
    // Cover everything acknowledged before stopping.
    if let Err(e) = runtime.audit.checkpoint().await {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// `data_dir/run/address` holds the bound address, so scripts and tests can find a server
/// started on port 0.
fn write_address_file(data_dir: &std::path::Path, bound: SocketAddr) {
    let dir = data_dir.join("run");
    if bootstrap::create_private_dir(&dir).is_ok() {
        let tmp = dir.join("address.tmp");
        if std::fs::write(&tmp, bound.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join("address"));
        }
    }
}
