//! Serving: TLS listener, the router, and every background task (checkpoints, alert engine and
//! feed, registry and key reloads, housekeeping) in one `JoinSet` that ends with the server.

use crate::features::account::service::Account;
use crate::features::dnc::service::DncChecks;
use crate::features::gdpr::service::Gdpr;
use crate::features::ops::service::Readiness;
use crate::features::payments::service::Payments;
use crate::features::staff::service::Accounts;
use crate::features::{alerts, dnc, keys};
use crate::http::tls;
use crate::runtime::Runtime;
use crate::settings::{KekSource, Settings, StartError};
use crate::state::AppState;
use crate::{bootstrap, metrics};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Builds the passkey relying party for `public_url`.
pub fn webauthn_for(public_url: &url::Url) -> Result<webauthn_rs::Webauthn, StartError> {
    let host = public_url
        .host_str()
        .ok_or_else(|| StartError::PublicUrl("it has no host".into()))?;
    webauthn_rs::WebauthnBuilder::new(host, public_url)
        .and_then(|b| b.rp_name("Callguard").build())
        .map_err(|e| StartError::PublicUrl(format!("not usable for passkeys: {e}")))
}

/// Another front end over the same services (the telephony edge): given the state the
/// handlers share, it adds its tasks to the set that ends with the server.
pub type FrontEnd = Box<dyn FnOnce(&AppState, &mut JoinSet<()>) + Send>;

/// Starts serving and runs until `shutdown` resolves.
pub async fn serve(
    settings: Settings,
    runtime: Runtime,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), StartError> {
    serve_with(settings, runtime, shutdown, Vec::new()).await
}

/// [`serve`], with other front ends started beside the HTTPS server.
pub async fn serve_with(
    settings: Settings,
    runtime: Runtime,
    shutdown: impl std::future::Future<Output = ()> + Send,
    front_ends: Vec<FrontEnd>,
) -> Result<(), StartError> {
    let tls_config = tls::server_config(&certificate_paths(&settings)?)?;
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
    // A node is not ready before it holds the national registry in force in the shared
    // database; with none there (one quick query), there is nothing to wait for.
    if runtime.store.shares_registry()
        && !matches!(runtime.store.registry_current().await, Ok(None))
    {
        runtime.dnc.expect_shared();
    }
    let metrics = Arc::new(metrics::Metrics::default());
    let state = build_state(&settings, &runtime, metrics, webauthn, &public_url)?;
    let mut tasks = background_tasks(&settings, &runtime, &state);
    // On PostgreSQL one node at a time gives audit entries their indexes; this one takes its
    // turn when no other holds it.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "-".into());
    runtime
        .store
        .start_integrator(&format!("{host} {bound} pid {}", std::process::id()));
    for start in front_ends {
        start(&state, &mut tasks);
    }
    let app = crate::http::router(
        state.clone(),
        crate::features::api_routes(),
        crate::features::page_routes(),
        crate::web::page_error,
    );

    write_address_file(&settings.data_dir, bound);
    tracing::info!(address = %bound, public_url = %public_url, backend = runtime.store.backend_name(), "callguard is serving");
    println!("callguard listening on https://{bound} (open {public_url})");
    let closing = state.alerts.clone();
    let readiness = state.readiness.clone();
    let drain = settings.drain;
    let shutdown = async move {
        shutdown.await;
        // Readiness goes false first, so balancers stop sending new work; requests that still
        // arrive meanwhile are served as usual.
        readiness.start_draining();
        if !drain.is_zero() {
            tracing::info!(
                seconds = drain.as_secs(),
                "draining: /readyz answers 503 before the listener closes"
            );
            tokio::time::sleep(drain).await;
        }
        closing.close_streams();
    };
    let proxies = crate::http::proxied::TrustedProxies::new(settings.trusted_proxies.clone());
    tls::serve(listener, tls_config, app, settings.http, proxies, shutdown).await;
    tasks.abort_all();
    // Cover everything acknowledged before stopping.
    if let Err(e) = runtime.audit.checkpoint_now().await {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// The configured certificate, or a self-signed one for the public host names (HTTPS, and SIP
/// over TLS).
pub fn certificate_paths(settings: &Settings) -> Result<tls::CertificatePaths, StartError> {
    Ok(match (&settings.tls_cert_file, &settings.tls_key_file) {
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
    })
}

/// Every service the handlers reach.
fn build_state(
    settings: &Settings,
    runtime: &Runtime,
    metrics: Arc<metrics::Metrics>,
    webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    public_url: &url::Url,
) -> Result<AppState, StartError> {
    let identity = Arc::new(runtime.identity(metrics.clone(), webauthn));
    let alerts = Arc::new(alerts::service::Alerts::new(
        runtime.store.clone(),
        runtime.kek.clone(),
        settings.alerts.clone(),
        metrics.clone(),
    ));
    let (vault, interactions) = runtime.customer_services(&settings.customers)?;
    let dnc_lists = Arc::new(runtime.dnc_lists());
    let accounts = Arc::new(
        Accounts::new(runtime.store.clone(), identity.clone())
            .with_settings(settings.staff.clone()),
    );
    let mut payment_settings = settings.payments.clone();
    payment_settings.public_base = public_url.as_str().trim_end_matches('/').to_owned();
    payment_settings.authentication_origin = settings
        .payment_gateway
        .as_ref()
        .and_then(crate::features::payments::gateway::GatewaySettings::authentication_origin);
    let gateway = crate::features::payments::gateway::build(settings.payment_gateway.as_ref())
        .map_err(|e| StartError::Payments(e.to_string()))?;
    let payments = Arc::new(Payments::new(
        runtime.store.clone(),
        interactions.clone(),
        gateway,
        payment_settings,
    ));
    let keypad = Arc::new(crate::features::keypad::service::Keypad::new(
        payments.clone(),
    ));
    let presence = Arc::new(
        crate::features::presence::service::Presence::new(settings.presence.clone())
            .with_sessions(identity.clone(), alerts.stream_check()),
    );
    let live_calls = Arc::new(crate::features::incall::service::LiveCalls::new(
        payments.clone(),
        keypad.clone(),
    ));
    let queues = Arc::new(crate::features::queues::service::QueueFigures::new(
        settings.queues.clone(),
    ));
    Ok(AppState::new(crate::state::Services {
        transfers: Arc::new(crate::features::transfer::service::Transfers::new(
            presence.clone(),
            queues.clone(),
            interactions.clone(),
            runtime.store.clone(),
            runtime.audit.clone(),
        )),
        monitoring: Arc::new(crate::features::monitor::service::Monitoring::new(
            settings.monitor.clone(),
            presence.clone(),
            runtime.audit.clone(),
        )),
        presence,
        keypad,
        live_calls,
        edge_tokens: Arc::new(crate::features::keypad::token::EdgeTokens::new(
            runtime.store.clone(),
        )),
        payments,
        gdpr: Arc::new(Gdpr::new(vault.clone(), accounts.clone())),
        compliance: Arc::new(runtime.compliance(settings)),
        account: Arc::new(Account::new(identity.clone())),
        accounts,
        dnc_checks: Arc::new(DncChecks::new(runtime.dnc.clone(), dnc_lists.clone())),
        vault,
        interactions,
        recordings: Arc::new(
            crate::features::recordings::service::Recordings::with_settings(
                runtime.store.clone(),
                runtime.kek.clone(),
                &settings.data_dir,
                settings.recordings.clone(),
            ),
        ),
        softphones: Arc::new(
            crate::features::softphones::service::Softphones::with_server(
                runtime.store.clone(),
                runtime.kek.clone(),
                settings.sip_server.clone(),
            ),
        ),
        queues,
        identity,
        audit: runtime.audit.clone(),
        dnc: runtime.dnc.clone(),
        dnc_lists,
        alerts,
        metrics,
        metrics_access: Arc::new(settings.metrics.clone()),
        readiness: Arc::new(
            Readiness::new(runtime.store.clone()).with_registry(runtime.dnc.clone()),
        ),
        openapi: Arc::new(crate::http::openapi::document(
            &crate::features::api_routes(),
        )),
    }))
}

/// Runs `every` on a fixed interval until aborted.
fn every<F, Fut>(tasks: &mut JoinSet<()>, period: Duration, mut job: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            job().await;
        }
    });
}

/// The work that goes on beside the requests, all in one set that ends with the server.
fn background_tasks(settings: &Settings, runtime: &Runtime, state: &AppState) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    tasks.spawn(state.alerts.clone().run_engine());
    tasks.spawn(state.alerts.clone().run_feed());
    tasks.spawn(
        runtime
            .audit
            .clone()
            .run(settings.audit.checkpoint_interval),
    );
    // `callguard keys rotate` writes new key files; this node switches to them by itself.
    if let KekSource::File(p) = &settings.kek {
        tasks.spawn(keys::service::reload_keys(runtime.kek.clone(), p.clone()));
    }
    // Free text written in the clear before its column was sealed is sealed once, at start.
    let (store, kek) = (runtime.store.clone(), runtime.kek.clone());
    tasks.spawn(async move {
        match keys::service::seal_clear_text(&store, &kek).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sealed = n, "sealed user agents and alert comments kept in the clear"),
            Err(e) => tracing::warn!(error = %e, "could not seal text kept in the clear; retried at the next start"),
        }
    });
    if runtime.store.shares_registry() {
        // PostgreSQL: the registry in force is the database's; this node loads it now (not
        // ready before, see `serve_with`) and again whenever any node puts a new one in force.
        tasks.spawn(dnc::registry::follow_shared(
            runtime.dnc.clone(),
            runtime.store.clone(),
        ));
    } else {
        // A registry imported by `callguard dnc import` replaces the one in force once loaded.
        let registry = runtime.dnc.clone();
        every(&mut tasks, Duration::from_secs(2), move || {
            let r = registry.clone();
            async move {
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || r.reload_if_changed()).await
                {
                    tracing::error!(error = %e, "the new DNC registry could not be loaded; the old one stays");
                }
            }
        });
    }
    // Agent state changes reach the audit log in order, without holding up a pick.
    tasks.spawn(state.presence.clone().run_audit(runtime.audit.clone()));
    // Retention and the daily compliance run (the report's trend), once a day from start.
    tasks.spawn(state.compliance.clone().run_daily());
    // Payments past their time expire even when nobody looks at them.
    let payments = state.payments.clone();
    every(&mut tasks, Duration::from_secs(5), move || {
        let payments = payments.clone();
        async move {
            if let Err(e) = payments.sweep_expired().await {
                tracing::warn!(error = %e, "expiring overdue payments failed");
            }
        }
    });
    // The payment page's tamper check (PCI DSS 11.6.1), against this server itself: first one
    // period after start (the listener is up by then), then every period.
    let period = settings.payments.page_check_seconds;
    if period > 0 {
        let (settings, store) = (settings.clone(), runtime.store.clone());
        tasks.spawn(async move {
            let period = Duration::from_secs(period);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                check_payment_page(&settings, &store).await;
            }
        });
    }
    // Housekeeping: expired sessions and challenges, dormant accounts.
    let identity = state.identity.clone();
    every(&mut tasks, Duration::from_secs(60), move || {
        let identity = identity.clone();
        async move {
            if let Err(e) = identity.sweep().await {
                tracing::warn!(error = %e, "housekeeping failed");
            }
        }
    });
    let vault = state.vault.clone();
    every(&mut tasks, Duration::from_secs(60), move || {
        let vault = vault.clone();
        async move {
            if let Err(e) = vault.forget_spent_allowances().await {
                tracing::warn!(error = %e, "forgetting spent allowances failed");
            }
        }
    });
    tasks
}

/// One scheduled run of the payment page's tamper check; a change is audited (and alerted).
async fn check_payment_page(settings: &Settings, store: &Arc<dyn callguard_store::Store>) {
    use crate::features::payments::{service::system, tamper};
    let outcome = match tamper::for_settings(settings, None) {
        Ok(check) => check.check(store, &system(), false).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(v) => tracing::info!(verdict = ?v, "payment page checked"),
        Err(e) => tracing::warn!(error = %e, "the payment page could not be checked"),
    }
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
