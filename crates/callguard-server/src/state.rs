//! The services every front end handler reaches, built once at start.

use crate::features::account::service::Account;
use crate::features::alerts::service::Alerts;
use crate::features::audit::service::AuditLog;
use crate::features::dnc::lists::DncLists;
use crate::features::dnc::registry::Dnc;
use crate::features::dnc::service::DncChecks;
use crate::features::gdpr::service::Gdpr;
use crate::features::interactions::service::Interactions;
use crate::features::ops::service::Readiness;
use crate::features::signin::service::Identity;
use crate::features::staff::service::Accounts;
use crate::features::vault::service::Vault;
use crate::metrics::Metrics;
use std::sync::Arc;

/// Shared state of every handler: one pointer to the services, so that the router's per-request
/// copies (one per layer that reads the state) cost one reference count, not one per service.
/// Cloning the services themselves field by field was 14 % of the server's CPU on `/healthz`
/// (28 shared counters bounced between the worker threads, twice per layer).
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    #[must_use]
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services every handler reaches, built once at start.
pub struct Services {
    pub identity: Arc<Identity>,
    /// Account administration (staff and portal accounts).
    pub accounts: Arc<Accounts>,
    /// My account: sessions, recovery codes, passkeys.
    pub account: Arc<Account>,
    pub audit: Arc<AuditLog>,
    pub alerts: Arc<Alerts>,
    pub dnc: Arc<Dnc>,
    pub dnc_lists: Arc<DncLists>,
    /// The pre-call verdict (registry, internal list, consent, calling hours).
    pub dnc_checks: Arc<DncChecks>,
    pub metrics: Arc<Metrics>,
    /// Who may read `/metrics`.
    pub metrics_access: Arc<crate::features::ops::service::MetricsAccess>,
    pub readiness: Arc<Readiness>,
    pub vault: Arc<Vault>,
    pub interactions: Arc<Interactions>,
    /// Call recordings, written by the telephony edge.
    pub recordings: Arc<crate::features::recordings::service::Recordings>,
    /// Agents' SIP credentials, checked by the telephony edge's registrar.
    pub softphones: Arc<crate::features::softphones::service::Softphones>,
    pub gdpr: Arc<Gdpr>,
    /// Compliance evidence: the report, manual controls, breaches.
    pub compliance: Arc<crate::features::compliance::service::Compliance>,
    /// Payment requests, pay-by-link, refunds.
    pub payments: Arc<crate::features::payments::service::Payments>,
    /// Keypad card capture for the telephony edge (features/keypad).
    pub keypad: Arc<crate::features::keypad::service::Keypad>,
    /// The calls this node's SIP edge carries, for keypad payments inside a call.
    pub live_calls: Arc<crate::features::incall::service::LiveCalls>,
    /// The telephony edge's API token (its service account).
    pub edge_tokens: Arc<crate::features::keypad::token::EdgeTokens>,
    /// Agent states on this node (ready, ringing, on call…), used by the telephony edge.
    pub presence: Arc<crate::features::presence::service::Presence>,
    /// Live queue figures on this node, fed by the telephony edge.
    pub queues: Arc<crate::features::queues::service::QueueFigures>,
    /// Supervisors listening to, whispering into or barging into calls (the SIP edge attaches).
    pub monitoring: Arc<crate::features::monitor::service::Monitoring>,
    /// Call transfers (the SIP edge attaches itself when it runs).
    pub transfers: Arc<crate::features::transfer::service::Transfers>,
    /// The OpenAPI document, built once from the route table.
    pub openapi: Arc<serde_json::Value>,
}
