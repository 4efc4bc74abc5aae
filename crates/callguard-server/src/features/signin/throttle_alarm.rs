//! Repeated throttling of one address, made visible: the per-address throttle turns early
//! attempts away with `429` and writes nothing (a flood must cost nothing), so on its own a
//! sustained burst shows only in the metrics. Here each address's throttled requests are counted
//! per window; the first time an address reaches [`THRESHOLD`] within [`WINDOW_SECONDS`], one
//! audit entry `auth.throttled` is written — one per address per window, however long the burst —
//! and the alert rules raise `sign_in_throttled` from it on every node.

use super::service::Identity;
use crate::principal::{Actor, RequestContext};
use callguard_core::UnixTime;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Throttled requests from one address within the window that make it worth an alert.
pub const THRESHOLD: u32 = 5;
/// The window, in seconds.
pub const WINDOW_SECONDS: i64 = 5 * 60;
/// Most addresses tracked at once; beyond it the oldest windows are dropped first.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: UnixTime,
    throttled: u32,
}

/// Throttled requests per address and window, for one node.
#[derive(Debug, Default)]
pub struct ThrottleAlarm {
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl ThrottleAlarm {
    /// Counts one throttled request; answers `true` exactly once per address and window: when
    /// the count reaches [`THRESHOLD`].
    pub fn note(&self, source: IpAddr, now: UnixTime) -> bool {
        let Ok(mut windows) = self.windows.lock() else {
            return false;
        };
        if windows.len() >= MAX_ADDRESSES && !windows.contains_key(&source) {
            windows.retain(|_, w| now - w.started < WINDOW_SECONDS);
            if windows.len() >= MAX_ADDRESSES {
                if let Some(oldest) = windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(a, _)| *a)
                {
                    windows.remove(&oldest);
                }
            }
        }
        let w = windows.entry(source).or_insert(Window {
            started: now,
            throttled: 0,
        });
        if now - w.started >= WINDOW_SECONDS {
            *w = Window {
                started: now,
                throttled: 0,
            };
        }
        w.throttled = w.throttled.saturating_add(1);
        w.throttled == THRESHOLD
    }
}

impl Identity {
    /// Called for every throttled sign-in request: writes the window's one `auth.throttled`
    /// audit entry for this address when it trips (in the background; the 429 does not wait).
    pub(crate) fn note_throttled(&self, ctx: &RequestContext, now: UnixTime) {
        if !self.throttle_alarm.note(ctx.source, now) {
            return;
        }
        let record = Actor::anonymous(ctx)
            .record("auth.throttled")
            .failure()
            .detail("throttled_requests", THRESHOLD)
            .detail("window_seconds", WINDOW_SECONDS);
        let store = self.store.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.append(vec![record]).await {
                    tracing::warn!(error = %e, "could not record repeated throttling");
                }
            });
        }
        tracing::warn!(source = %ctx.source, "sign-in requests from one address throttled repeatedly");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_trips_once_per_window_however_long_the_burst() {
        let alarm = ThrottleAlarm::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let trips = (0..100).filter(|i| alarm.note(a, 1000 + i)).count();
        assert_eq!(trips, 1);
        assert!(!alarm.note(b, 1000));
        // A new window trips again.
        let later = 1000 + WINDOW_SECONDS;
        let trips = (0..100).filter(|i| alarm.note(a, later + i / 10)).count();
        assert_eq!(trips, 1);
    }

    #[test]
    fn the_table_stays_bounded() {
        let alarm = ThrottleAlarm::default();
        for i in 0..(MAX_ADDRESSES as u32 + 50) {
            alarm.note(IpAddr::from(i.to_be_bytes()), 1000);
        }
        assert!(alarm.windows.lock().unwrap().len() <= MAX_ADDRESSES);
    }
}
