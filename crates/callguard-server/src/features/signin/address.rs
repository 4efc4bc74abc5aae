//! The per-address sign-in throttle ([`callguard_core::throttle`]) where it lives: in this
//! node's memory on SQLite (one node), in the database on PostgreSQL, where every node behind a
//! balancer draws on one table — so the limit does not multiply by the number of nodes.

use callguard_core::throttle::{AddressThrottle, Refusal};
use callguard_core::UnixTime;
use callguard_store::Store;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::Notify;

pub(crate) enum AddressLimits {
    Local(AddressThrottle),
    Shared(Arc<dyn Store>),
}

impl AddressLimits {
    /// Shared on PostgreSQL (several nodes may serve one database), local on SQLite.
    pub(crate) fn for_store(store: &Arc<dyn Store>) -> Self {
        if store.backend_name() == "postgres" {
            Self::Shared(store.clone())
        } else {
            Self::Local(AddressThrottle::new())
        }
    }

    /// Whether other nodes settle attempts too (their settlements wake nobody here, so waiters
    /// look again now and then).
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Self::Shared(_))
    }

    /// Admits one attempt from `addr`. When the shared table cannot be reached the attempt is
    /// refused (never let through uncounted).
    pub(crate) async fn admit(&self, addr: IpAddr, now: UnixTime) -> Result<(), Refusal> {
        match self {
            Self::Local(t) => t.admit(addr, now),
            Self::Shared(store) => match store.admit_address(&addr.to_string(), now).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::error!(error = %e, "the shared sign-in throttle is unreachable");
                    Err(Refusal::Wait(1))
                }
            },
        }
    }

    /// Settles an admitted attempt, then wakes the attempts waiting on `settled`. Called from a
    /// destructor, so the shared table is written by a task of its own.
    pub(crate) fn settle(&self, addr: IpAddr, now: UnixTime, failed: bool, settled: &Arc<Notify>) {
        match self {
            Self::Local(t) => {
                t.settle(addr, now, failed);
                settled.notify_waiters();
            }
            Self::Shared(store) => {
                let (store, settled) = (store.clone(), settled.clone());
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                runtime.spawn(async move {
                    if let Err(e) = store.settle_address(&addr.to_string(), now, failed).await {
                        // Unsettled, the attempt stops counting when its lease ends.
                        tracing::error!(error = %e, "could not settle a sign-in attempt");
                    }
                    settled.notify_waiters();
                });
            }
        }
    }

    /// Forgets addresses quiet since `before` (housekeeping of the shared table).
    pub(crate) async fn forget_quiet(
        &self,
        before: UnixTime,
    ) -> Result<(), callguard_store::StoreError> {
        if let Self::Shared(store) = self {
            store.forget_quiet_addresses(before).await?;
        }
        Ok(())
    }
}
