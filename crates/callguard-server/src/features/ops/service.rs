//! What a load balancer and an operator ask of a node: is it ready to serve.

use callguard_store::Store;
use std::sync::Arc;

/// Readiness of this node.
pub struct Readiness {
    store: Arc<dyn Store>,
}

impl Readiness {
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Whether the database answers; the reason is logged, never returned.
    pub async fn ready(&self) -> bool {
        match self.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "readiness check failed");
                false
            }
        }
    }
}
