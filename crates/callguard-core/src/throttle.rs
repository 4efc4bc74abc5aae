//! Growing delays per source address (SPEC C1): after a few failed sign-ins from one address,
//! each further attempt must wait longer — 1 s, 2 s, 4 s … up to a minute — before the server
//! even looks at it. Attempts that come too early are turned away without hashing anything, so a
//! flood costs the server almost nothing. The table is bounded and forgets quiet addresses.
//!
//! The rule holds under concurrency: an attempt is *admitted* before it is checked and counts as
//! a failure until it is settled, so attempts still being checked use up the free failures as
//! if they had failed. Three wrong passwords sent at once are all checked; a fourth sent with them
//! is not admitted until the first three are settled ([`Refusal::Settling`]) — and if they failed,
//! it must wait like any attempt after three failures.

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

/// How long an admitted attempt may stay unsettled before it stops counting (its node died
/// while checking it): far longer than any check takes.
pub const PENDING_LEASE_SECONDS: i64 = 60;

/// What is remembered of one address. Its transitions are pure, so that the in-memory table of
/// one node and the shared table of many (PostgreSQL) apply the same rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub failures: u32,
    /// Attempts admitted and not settled yet.
    pub pending: u32,
    pub last_failure: UnixTime,
    pub next_allowed: UnixTime,
    /// Until when the pending attempts count; after it they are taken as lost.
    pub pending_until: UnixTime,
}

impl Entry {
    /// An address seen for the first time at `now`.
    #[must_use]
    pub fn new(now: UnixTime) -> Self {
        Self {
            failures: 0,
            pending: 0,
            last_failure: now,
            next_allowed: now,
            pending_until: now,
        }
    }

    /// Admits one attempt at `now` (it is now pending), or says why not.
    pub fn admit(&mut self, now: UnixTime) -> Result<(), Refusal> {
        if self.pending > 0 && now > self.pending_until {
            self.pending = 0;
        }
        if self.pending == 0 && now - self.last_failure >= FORGET_AFTER_SECONDS {
            self.failures = 0;
            self.next_allowed = now;
        }
        if now < self.next_allowed {
            return Err(Refusal::Wait(self.next_allowed - now));
        }
        if self.pending > 0 && delay_after(self.failures + self.pending) > 0 {
            return Err(Refusal::Settling);
        }
        self.pending += 1;
        self.pending_until = now + PENDING_LEASE_SECONDS;
        Ok(())
    }

    /// Settles an admitted attempt: `failed` when it was checked and wrong (or refused in a way
    /// that must look like it), otherwise it stops counting.
    pub fn settle(&mut self, now: UnixTime, failed: bool) {
        self.pending = self.pending.saturating_sub(1);
        if failed {
            if now - self.last_failure >= FORGET_AFTER_SECONDS {
                self.failures = 0;
            }
            self.failures = self.failures.saturating_add(1);
            self.last_failure = now;
            self.next_allowed = self.next_allowed.max(now + delay_after(self.failures));
        }
    }

    /// Whether there is nothing worth remembering: no failure and nothing in flight.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.failures == 0 && self.pending == 0
    }

    /// Whether the address may be forgotten at `now` (quiet for long enough, nothing in flight).
    #[must_use]
    pub fn is_quiet(&self, now: UnixTime) -> bool {
        self.pending == 0 && now - self.last_failure >= FORGET_AFTER_SECONDS
    }
}

/// Why an attempt was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address must wait this many seconds.
    Wait(i64),
    /// Attempts from this address are still being checked, and were they all to fail this one
    /// would have to wait: ask again once one of them is settled.
    Settling,
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

    /// Admits one attempt from `addr` at `now`, or says why not. An admitted attempt must be
    /// [settled](Self::settle) exactly once; until then it counts as a failure.
    pub fn admit(&self, addr: IpAddr, now: UnixTime) -> Result<(), Refusal> {
        let Ok(mut map) = self.entries.lock() else {
            // A poisoned table cannot count: refuse rather than let attempts through uncounted.
            return Err(Refusal::Wait(1));
        };
        if map.len() >= MAX_ENTRIES && !map.contains_key(&addr) {
            // Forget quiet addresses; never one with attempts in flight.
            map.retain(|_, e| !e.is_quiet(now));
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, e| e.pending > 0);
            }
        }
        map.entry(addr)
            .or_insert_with(|| Entry::new(now))
            .admit(now)
    }

    /// Settles an admitted attempt: `failed` when it was checked and wrong (or refused in a way
    /// that must look like it), otherwise it stops counting.
    pub fn settle(&self, addr: IpAddr, now: UnixTime, failed: bool) {
        let Ok(mut map) = self.entries.lock() else {
            return;
        };
        let e = map.entry(addr).or_insert_with(|| Entry::new(now));
        e.settle(now, failed);
        if !failed && e.is_clean() {
            map.remove(&addr);
        }
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

    fn fail(t: &AddressThrottle, ip: IpAddr, now: UnixTime) {
        assert_eq!(t.admit(ip, now), Ok(()));
        t.settle(ip, now, true);
    }

    #[test]
    fn an_address_must_wait_after_repeated_failures_and_is_forgotten_later() {
        let t = AddressThrottle::new();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..3 {
            fail(&t, ip, 1000);
        }
        // The third failure starts the delays: one second, then two, then four.
        assert_eq!(t.admit(ip, 1000), Err(Refusal::Wait(1)));
        assert!(t.admit(other, 1000).is_ok());
        fail(&t, ip, 1001);
        assert_eq!(t.admit(ip, 1001), Err(Refusal::Wait(2)));
        fail(&t, ip, 1003);
        assert_eq!(t.admit(ip, 1003), Err(Refusal::Wait(4)));
        fail(&t, ip, 1003 + FORGET_AFTER_SECONDS);
        assert!(t.admit(ip, 1003 + FORGET_AFTER_SECONDS).is_ok());
    }

    #[test]
    fn attempts_in_flight_use_up_the_free_failures_so_a_burst_gets_three_checks() {
        let t = AddressThrottle::new();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        // A burst: three admitted at once, the rest must wait for their outcome.
        for _ in 0..3 {
            assert_eq!(t.admit(ip, 1000), Ok(()));
        }
        for _ in 0..100 {
            assert_eq!(t.admit(ip, 1000), Err(Refusal::Settling));
        }
        // They all fail: the rest of the burst must now wait a second.
        for _ in 0..3 {
            t.settle(ip, 1000, true);
        }
        assert_eq!(t.admit(ip, 1000), Err(Refusal::Wait(1)));
        // After the wait, one at a time.
        assert_eq!(t.admit(ip, 1001), Ok(()));
        assert_eq!(t.admit(ip, 1001), Err(Refusal::Settling));
        t.settle(ip, 1001, true);
        assert_eq!(t.admit(ip, 1001), Err(Refusal::Wait(2)));
    }

    #[test]
    fn right_answers_stop_counting_once_settled_and_leave_nothing_behind() {
        let t = AddressThrottle::new();
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(t.admit(ip, 1000), Ok(()));
        }
        assert_eq!(t.admit(ip, 1000), Err(Refusal::Settling));
        // One of the three was right: a place is free again.
        t.settle(ip, 1000, false);
        assert_eq!(t.admit(ip, 1000), Ok(()));
        for _ in 0..3 {
            t.settle(ip, 1000, false);
        }
        assert!(
            t.is_empty(),
            "an address that never failed is not remembered"
        );
        // A failure in flight while two more are admitted: still three at most.
        fail(&t, ip, 2000);
        assert_eq!(t.admit(ip, 2000), Ok(()));
        assert_eq!(t.admit(ip, 2000), Ok(()));
        assert_eq!(t.admit(ip, 2000), Err(Refusal::Settling));
    }

    #[test]
    fn attempts_of_a_node_that_died_stop_counting_after_their_lease() {
        let mut e = Entry::new(1000);
        for _ in 0..3 {
            assert_eq!(e.admit(1000), Ok(()));
        }
        assert_eq!(e.admit(1000), Err(Refusal::Settling));
        // Never settled: the node checking them is gone.
        assert_eq!(
            e.admit(1000 + PENDING_LEASE_SECONDS),
            Err(Refusal::Settling)
        );
        assert_eq!(e.admit(1001 + PENDING_LEASE_SECONDS), Ok(()));
    }
}
