//! Growing delays per source address (SPEC C1): after a few failed sign-ins from one address,
//! each further attempt must wait longer — 1 s, 2 s, 4 s … up to a minute — before the server
//! even looks at it. Attempts that come too early are turned away without hashing anything, so a
//! flood costs the server almost nothing. The table is bounded and forgets quiet addresses.

use crate::UnixTime;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures tolerated from one address before delays start.
pub const FREE_FAILURES: u32 = 3;
/// Longest delay between attempts from one address, in seconds.
pub const MAX_DELAY_SECONDS: i64 = 60;
/// An address with no failure for this long starts afresh.
pub const FORGET_AFTER_SECONDS: i64 = 15 * 60;
/// Most addresses remembered at once; beyond it the quiet ones are dropped first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: UnixTime,
    next_allowed: UnixTime,
}

/// The delay owed after `failures` failures.
#[must_use]
pub fn delay_after(failures: u32) -> i64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let exp = (failures - FREE_FAILURES).min(16);
    (1i64 << exp).min(MAX_DELAY_SECONDS)
}

/// Per-address failure memory, shared by every sign-in endpoint of one node.
#[derive(Debug, Default)]
pub struct AddressThrottle {
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl AddressThrottle {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `Err(seconds)` when the address must wait that long before trying again.
    pub fn check(&self, addr: IpAddr, now: UnixTime) -> Result<(), i64> {
        let Ok(map) = self.entries.lock() else {
            return Ok(());
        };
        match map.get(&addr) {
            Some(e) if now - e.last_failure < FORGET_AFTER_SECONDS && now < e.next_allowed => {
                Err(e.next_allowed - now)
            }
            _ => Ok(()),
        }
    }

    /// Notes a failed attempt from `addr`.
    pub fn record_failure(&self, addr: IpAddr, now: UnixTime) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        if map.len() >= MAX_ENTRIES && !map.contains_key(&addr) {
            map.retain(|_, e| now - e.last_failure < FORGET_AFTER_SECONDS);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        let e = map.entry(addr).or_insert(Entry {
            failures: 0,
            last_failure: now,
            next_allowed: now,
        });
        if now - e.last_failure >= FORGET_AFTER_SECONDS {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last_failure = now;
        e.next_allowed = now + delay_after(e.failures);
    }

    /// Number of addresses currently remembered (for metrics).
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_three_failures_and_are_capped() {
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 6].map(delay_after),
            [0, 0, 0, 1, 2, 4, 8]
        );
        assert_eq!(delay_after(40), MAX_DELAY_SECONDS);
    }

    #[test]
    fn an_address_must_wait_after_repeated_failures_and_is_forgotten_later() {
        let t = AddressThrottle::new();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            assert!(t.check(ip, 1000).is_ok());
            t.record_failure(ip, 1000);
        }
        // The third failure starts the delays: one second, then two, then four.
        assert_eq!(t.check(ip, 1000), Err(1));
        assert!(t.check(other, 1000).is_ok());
        assert!(t.check(ip, 1001).is_ok());
        t.record_failure(ip, 1001);
        assert_eq!(t.check(ip, 1001), Err(2));
        t.record_failure(ip, 1003);
        assert_eq!(t.check(ip, 1003), Err(4));
        t.record_failure(ip, 1003 + FORGET_AFTER_SECONDS);
        assert!(t.check(ip, 1003 + FORGET_AFTER_SECONDS).is_ok());
    }
}
