//! Real-time alert rules (SPEC C6) over the audit log. The engine reads entries in index order
//! and decides from their contents and times alone — never the wall clock — so every node that
//! follows the same log raises the same alerts for the same entries, and storing an alert keyed
//! by (rule, entry index) is idempotent across nodes.

use crate::UnixTime;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// An alert the engine raised, not yet stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub rule: &'static str,
    pub severity: Severity,
    /// The entry that crossed the threshold.
    pub entry_index: u64,
    pub time: UnixTime,
    /// What the alert is about: `user:<id>`, an address, `customer:<id>`.
    pub subject: String,
    /// One sentence for people; identifiers only.
    pub summary: String,
}

/// The parts of an entry the rules look at.
#[derive(Debug, Clone)]
pub struct Seen {
    pub index: u64,
    pub time: UnixTime,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub interaction: Option<String>,
    pub failed: bool,
    pub source: Option<String>,
    pub details: Value,
}

impl Seen {
    /// Reads an entry object as the audit API returns it.
    #[must_use]
    pub fn from_entry(entry: &Value) -> Option<Self> {
        let s = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_owned);
        let time = s("time").and_then(|t| {
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
        })?;
        Some(Self {
            index: entry.get("index")?.as_u64()?,
            time: time.unix_timestamp(),
            actor: s("actor")?,
            action: s("action")?,
            target: s("target"),
            interaction: s("interaction"),
            failed: s("outcome").as_deref() == Some("failure"),
            source: s("source"),
            details: entry.get("details").cloned().unwrap_or(Value::Null),
        })
    }
}

/// Working hours for the off-hours rule, in a fixed offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    /// Minutes after local midnight when work starts and ends (end exclusive).
    pub start_minute: u32,
    pub end_minute: u32,
    /// Offset of local time from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Whether Saturday and Sunday count as working days.
    pub weekends: bool,
}

impl WorkingHours {
    /// Parses `HH:MM-HH:MM`.
    #[must_use]
    pub fn parse_range(text: &str) -> Option<(u32, u32)> {
        let (a, b) = text.trim().split_once('-')?;
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
        };
        let (s, e) = (minutes(a)?, minutes(b)?);
        (s < e).then_some((s, e))
    }

    /// Whether `t` falls inside working hours.
    #[must_use]
    pub fn contains(&self, t: UnixTime) -> bool {
        let local = t + i64::from(self.utc_offset_minutes) * 60;
        let minute = (local.rem_euclid(86_400) / 60) as u32;
        // 1970-01-01 was a Thursday: day 0 → Thursday.
        let weekday = (local.div_euclid(86_400) + 3).rem_euclid(7); // 0 = Monday
        let weekday_ok = self.weekends || weekday < 5;
        weekday_ok && minute >= self.start_minute && minute < self.end_minute
    }
}

/// Rule parameters; the defaults are the SPEC's.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Failed sign-ins or second factors on one account: count and window.
    pub account_failures: (usize, i64),
    /// Failures of any kind from one source address: count and window.
    pub address_failures: (usize, i64),
    /// Customer records read by one person: count and window (bulk look-ups).
    pub bulk_lookups: (usize, i64),
    /// Failed caller verifications on one customer: count and window.
    pub verification_failures: (usize, i64),
    /// Sign-ins outside these hours raise an alert; `None` turns the rule off.
    pub working_hours: Option<WorkingHours>,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            account_failures: (5, 5 * 60),
            address_failures: (20, 5 * 60),
            bulk_lookups: (30, 10 * 60),
            verification_failures: (5, 15 * 60),
            working_hours: None,
        }
    }
}

/// A sliding window of event times per key, raising once per key until the window clears.
#[derive(Default)]
struct Window {
    events: HashMap<String, VecDeque<UnixTime>>,
    raised_at: HashMap<String, UnixTime>,
}

impl Window {
    /// Notes an event; true when it makes `count` within `span` and no alert for this key was
    /// raised within the last `span`.
    fn hit(&mut self, key: &str, t: UnixTime, (count, span): (usize, i64)) -> bool {
        let q = self.events.entry(key.to_owned()).or_default();
        q.push_back(t);
        while q.front().is_some_and(|f| t - *f >= span) {
            q.pop_front();
        }
        if q.len() >= count && self.raised_at.get(key).is_none_or(|r| t - *r >= span) {
            self.raised_at.insert(key.to_owned(), t);
            return true;
        }
        false
    }

    /// Forgets keys with no event within `span` of `t` (bounded memory).
    fn prune(&mut self, t: UnixTime, span: i64) {
        self.events
            .retain(|_, q| q.back().is_some_and(|b| t - *b < span));
        self.raised_at.retain(|_, r| t - *r < span);
    }
}

/// The engine: feed it entries in index order.
pub struct Engine {
    rules: Rules,
    account: Window,
    address: Window,
    lookups: Window,
    verifications: Window,
    fed: u64,
}

fn is_authentication(action: &str) -> bool {
    matches!(
        action,
        "auth.sign_in" | "auth.reauthenticate" | "auth.setup"
    )
}

impl Engine {
    #[must_use]
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            account: Window::default(),
            address: Window::default(),
            lookups: Window::default(),
            verifications: Window::default(),
            fed: 0,
        }
    }

    /// Looks at one entry; returns the alerts it raises.
    pub fn feed(&mut self, e: &Seen) -> Vec<Raised> {
        let mut out = Vec::new();
        let mut raise =
            |rule: &'static str, severity: Severity, subject: String, summary: String| {
                out.push(Raised {
                    rule,
                    severity,
                    entry_index: e.index,
                    time: e.time,
                    subject,
                    summary,
                });
            };
        let r = &self.rules;
        if e.failed && is_authentication(&e.action) {
            if let Some(target) = e.target.as_deref().filter(|t| t.starts_with("user:")) {
                if self.account.hit(target, e.time, r.account_failures) {
                    raise(
                        "failed_sign_ins",
                        Severity::High,
                        target.to_owned(),
                        format!(
                            "{} failed sign-ins or second factors on {target} within {} minutes",
                            r.account_failures.0,
                            r.account_failures.1 / 60
                        ),
                    );
                }
            }
        }
        if e.failed {
            if let Some(source) = &e.source {
                if self.address.hit(source, e.time, r.address_failures) {
                    raise(
                        "address_failures",
                        Severity::High,
                        format!("address:{source}"),
                        format!(
                            "{} failed requests from {source} within {} minutes",
                            r.address_failures.0,
                            r.address_failures.1 / 60
                        ),
                    );
                }
            }
        }
        // One entry per address and window, written when the sign-in throttle has turned that
        // address away repeatedly (the 429s themselves are not logged).
        if e.action == "auth.throttled" {
            let source = e.source.as_deref().unwrap_or("?");
            raise(
                "sign_in_throttled",
                Severity::High,
                format!("address:{source}"),
                format!("sign-in requests from {source} were throttled again and again"),
            );
        }
        // The SIP registrar stopped taking REGISTERs for an account or from an address after
        // repeated wrong digest passwords: someone is guessing a softphone's password.
        if e.action == "sip.register.locked" {
            let source = e.source.as_deref().unwrap_or("?");
            let subject = e
                .target
                .clone()
                .unwrap_or_else(|| format!("address:{source}"));
            raise(
                "sip_registration_guessing",
                Severity::High,
                subject.clone(),
                format!("SIP registrations for {subject} were refused after repeated wrong passwords from {source}"),
            );
        }
        // The payment page's tamper check saw its headers, content or scripts change (PCI DSS
        // 11.6.1): someone must look before the next payer types a card into it.
        if e.action == "payments.page_changed" {
            let changed: Vec<&str> = e
                .details
                .get("changed")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            raise(
                "payment_page_changed",
                Severity::High,
                "page:/pay".to_owned(),
                format!("the payment page changed: {}", changed.join("; ")),
            );
        }
        if !e.failed && e.action == "user.role_change" {
            let from = e.details.get("from").and_then(Value::as_str).unwrap_or("?");
            let to = e.details.get("to").and_then(Value::as_str).unwrap_or("?");
            raise(
                "role_change",
                Severity::Medium,
                e.target.clone().unwrap_or_default(),
                format!(
                    "{} changed the role of {} from {from} to {to}",
                    e.actor,
                    e.target.as_deref().unwrap_or("?")
                ),
            );
        }
        let privileged =
            |role: Option<&str>| matches!(role, Some("supervisor" | "compliance" | "admin"));
        let created_by = e
            .details
            .get("created_by")
            .and_then(Value::as_str)
            .unwrap_or("?");
        if !e.failed
            && e.action == "user.create"
            && privileged(e.details.get("role").and_then(Value::as_str))
        {
            let role = e.details.get("role").and_then(Value::as_str).unwrap_or("?");
            raise(
                "privileged_account_created",
                Severity::High,
                e.target.clone().unwrap_or_default(),
                format!(
                    "{} created the {role} account {}",
                    e.actor,
                    e.target.as_deref().unwrap_or("?")
                ),
            );
        }
        // Setting up an account is its first sign-in: whoever holds the setup token now holds
        // the account (after a creation or a credential reset).
        if !e.failed
            && e.action == "auth.setup"
            && privileged(e.details.get("role").and_then(Value::as_str))
        {
            let role = e.details.get("role").and_then(Value::as_str).unwrap_or("?");
            raise(
                "privileged_first_sign_in",
                Severity::High,
                e.target.clone().unwrap_or_default(),
                format!(
                    "the {role} account {} (created by {created_by}) signed in for the first time",
                    e.target.as_deref().unwrap_or("?")
                ),
            );
        }
        if !e.failed && e.action == "auth.sign_in" {
            if let Some(hours) = r.working_hours {
                if !hours.contains(e.time) {
                    raise(
                        "off_hours_sign_in",
                        Severity::Low,
                        e.actor.clone(),
                        format!("{} signed in outside working hours", e.actor),
                    );
                }
            }
        }
        // The compliance report's self-test of monitoring (ISO/IEC 27001 A.8.16): a synthetic
        // entry that must come back as an alert.
        if e.action == "compliance.alert_test" {
            raise(
                "synthetic_test",
                Severity::Low,
                "system".into(),
                "synthetic alert of the compliance self-test: monitoring raises and delivers alerts"
                    .into(),
            );
        }
        // Hooks for the customer vault and caller verification.
        if !e.failed
            && matches!(e.action.as_str(), "customer.read" | "customer.search")
            && e.actor.starts_with("user:")
            && self.lookups.hit(&e.actor, e.time, r.bulk_lookups)
        {
            raise(
                "bulk_customer_lookups",
                Severity::High,
                e.actor.clone(),
                format!(
                    "{} looked at {} customer records within {} minutes",
                    e.actor,
                    r.bulk_lookups.0,
                    r.bulk_lookups.1 / 60
                ),
            );
        }
        // Every look-up an agent makes outside an active interaction: a read, a reveal, a search.
        if matches!(
            e.action.as_str(),
            "customer.reveal" | "customer.read" | "customer.search"
        ) && e
            .details
            .get("outside_interaction")
            .and_then(Value::as_bool)
            == Some(true)
        {
            let what = if e.action == "customer.search" {
                format!(
                    "searched customers by {}",
                    e.details.get("by").and_then(Value::as_str).unwrap_or("?")
                )
            } else {
                format!("accessed {}", e.target.as_deref().unwrap_or("a customer"))
            };
            raise(
                "access_outside_interaction",
                Severity::High,
                e.actor.clone(),
                format!("{} {what} outside an active interaction", e.actor),
            );
        }
        if e.failed && e.action == "interaction.verify" {
            if let Some(customer) = e.target.as_deref() {
                if self
                    .verifications
                    .hit(customer, e.time, r.verification_failures)
                {
                    raise(
                        "verification_failures",
                        Severity::High,
                        customer.to_owned(),
                        format!(
                            "{} failed caller verifications on {customer} within {} minutes",
                            r.verification_failures.0,
                            r.verification_failures.1 / 60
                        ),
                    );
                }
            }
        }
        self.fed += 1;
        if self.fed.is_multiple_of(1024) {
            let longest = [
                r.account_failures.1,
                r.address_failures.1,
                r.bulk_lookups.1,
                r.verification_failures.1,
            ];
            self.account.prune(e.time, longest[0]);
            self.address.prune(e.time, longest[1]);
            self.lookups.prune(e.time, longest[2]);
            self.verifications.prune(e.time, longest[3]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seen(index: u64, time: i64, action: &str, failed: bool, target: &str, source: &str) -> Seen {
        Seen {
            index,
            time,
            actor: "anonymous".into(),
            action: action.into(),
            target: Some(target.into()),
            interaction: None,
            failed,
            source: Some(source.into()),
            details: json!({}),
        }
    }

    #[test]
    fn a_locked_sip_registration_raises_an_alert_about_the_account_or_the_address() {
        let mut e = Engine::new(Rules::default());
        let raised = e.feed(&seen(
            1,
            100,
            "sip.register.locked",
            true,
            "user:u7",
            "192.0.2.5",
        ));
        let sip: Vec<_> = raised
            .iter()
            .filter(|r| r.rule == "sip_registration_guessing")
            .collect();
        assert_eq!(sip.len(), 1);
        assert_eq!(sip[0].subject, "user:u7");
        assert_eq!(sip[0].severity, Severity::High);
        let mut by_address = seen(2, 101, "sip.register.locked", true, "", "192.0.2.6");
        by_address.target = None;
        let raised = e.feed(&by_address);
        assert!(raised
            .iter()
            .any(|r| r.rule == "sip_registration_guessing" && r.subject == "address:192.0.2.6"));
        assert!(e
            .feed(&seen(3, 102, "sip.register", false, "user:u7", "192.0.2.5"))
            .iter()
            .all(|r| r.rule != "sip_registration_guessing"));
    }

    #[test]
    fn a_throttled_address_raises_an_alert_about_that_address() {
        let mut e = Engine::new(Rules::default());
        let raised = e.feed(&seen(1, 100, "auth.throttled", true, "", "192.0.2.9"));
        let throttled: Vec<_> = raised
            .iter()
            .filter(|r| r.rule == "sign_in_throttled")
            .collect();
        assert_eq!(throttled.len(), 1);
        assert_eq!(throttled[0].subject, "address:192.0.2.9");
        assert!(e
            .feed(&seen(2, 101, "auth.sign_in", true, "user:u", "192.0.2.9"))
            .iter()
            .all(|r| r.rule != "sign_in_throttled"));
    }

    #[test]
    fn five_failed_sign_ins_on_one_account_within_five_minutes_raise_one_alert() {
        let mut e = Engine::new(Rules::default());
        let mut raised = Vec::new();
        for i in 0..7 {
            raised.extend(e.feed(&seen(
                i,
                1_000 + i as i64 * 30,
                "auth.sign_in",
                true,
                "user:u1",
                &format!("192.0.2.{i}"),
            )));
        }
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].rule, "failed_sign_ins");
        assert_eq!(
            raised[0].entry_index, 4,
            "the fifth failure crosses the threshold"
        );
        assert_eq!(raised[0].subject, "user:u1");
    }

    #[test]
    fn failures_spread_over_more_than_the_window_raise_nothing() {
        let mut e = Engine::new(Rules::default());
        let raised: Vec<_> = (0..10)
            .flat_map(|i| {
                e.feed(&seen(
                    i,
                    1_000 + i as i64 * 100,
                    "auth.sign_in",
                    true,
                    "user:u1",
                    "192.0.2.1",
                ))
            })
            .collect();
        assert!(raised.iter().all(|r| r.rule != "failed_sign_ins"));
    }

    #[test]
    fn many_failures_from_one_address_raise_an_alert() {
        let mut e = Engine::new(Rules::default());
        let raised: Vec<_> = (0..20)
            .flat_map(|i| {
                e.feed(&seen(
                    i,
                    1_000 + i as i64,
                    "auth.sign_in",
                    true,
                    &format!("user:u{i}"),
                    "198.51.100.9",
                ))
            })
            .collect();
        assert_eq!(
            raised
                .iter()
                .filter(|r| r.rule == "address_failures")
                .count(),
            1
        );
    }

    #[test]
    fn role_changes_and_new_admins_raise_alerts() {
        let mut e = Engine::new(Rules::default());
        let mut change = seen(0, 1_000, "user.role_change", false, "user:u2", "192.0.2.1");
        change.details = json!({"from": "agent", "to": "admin"});
        assert_eq!(e.feed(&change)[0].rule, "role_change");
        for (i, role) in ["admin", "compliance", "supervisor"]
            .into_iter()
            .enumerate()
        {
            let mut create = seen(
                1 + i as u64,
                1_001,
                "user.create",
                false,
                "user:u3",
                "192.0.2.1",
            );
            create.details = json!({"role": role});
            assert_eq!(
                e.feed(&create)[0].rule,
                "privileged_account_created",
                "{role}"
            );
        }
        let mut agent = seen(9, 1_002, "user.create", false, "user:u4", "192.0.2.1");
        agent.details = json!({"role": "agent"});
        assert!(e.feed(&agent).is_empty(), "creating an agent is routine");
    }

    #[test]
    fn the_first_sign_in_of_a_privileged_account_raises_an_alert_naming_its_creator() {
        let mut e = Engine::new(Rules::default());
        let mut setup = seen(0, 1_000, "auth.setup", false, "user:u5", "192.0.2.1");
        setup.details = json!({"role": "compliance", "created_by": "user:admin1"});
        let raised = e.feed(&setup);
        assert_eq!(raised[0].rule, "privileged_first_sign_in");
        assert_eq!(raised[0].subject, "user:u5");
        assert!(
            raised[0].summary.contains("user:admin1"),
            "{}",
            raised[0].summary
        );
        let mut agent = seen(1, 1_001, "auth.setup", false, "user:u6", "192.0.2.1");
        agent.details = json!({"role": "agent", "created_by": "user:admin1"});
        assert!(e.feed(&agent).is_empty());
    }

    #[test]
    fn sign_ins_outside_working_hours_raise_an_alert_only_when_configured() {
        let hours = WorkingHours {
            start_minute: 8 * 60,
            end_minute: 18 * 60,
            utc_offset_minutes: 60,
            weekends: false,
        };
        // 2026-11-24 (a Tuesday) 22:30 UTC = 23:30 at UTC+1: outside.
        let night = 1_795_559_400;
        assert!(!hours.contains(night));
        assert!(hours.contains(night - 12 * 3600), "10:30 UTC+1 is inside");
        assert!(
            !hours.contains(night - 12 * 3600 + 4 * 86_400),
            "Saturday is outside"
        );
        let ok = seen(0, night, "auth.sign_in", false, "user:u1", "192.0.2.1");
        assert!(Engine::new(Rules::default()).feed(&ok).is_empty());
        let rules = Rules {
            working_hours: Some(hours),
            ..Rules::default()
        };
        assert_eq!(Engine::new(rules).feed(&ok)[0].rule, "off_hours_sign_in");
        assert_eq!(WorkingHours::parse_range("08:00-18:30"), Some((480, 1110)));
        assert_eq!(WorkingHours::parse_range("18:00-08:00"), None);
    }

    #[test]
    fn vault_hooks_fire_for_bulk_lookups_access_outside_interactions_and_verification_failures() {
        let mut e = Engine::new(Rules::default());
        let mut raised = Vec::new();
        for i in 0..30 {
            let mut s = seen(
                i,
                1_000 + i as i64,
                "customer.read",
                false,
                &format!("customer:c{i}"),
                "192.0.2.1",
            );
            s.actor = "user:agent1".into();
            raised.extend(e.feed(&s));
        }
        assert_eq!(
            raised
                .iter()
                .filter(|r| r.rule == "bulk_customer_lookups")
                .count(),
            1
        );
        let mut reveal = seen(
            40,
            2_000,
            "customer.reveal",
            false,
            "customer:c1",
            "192.0.2.1",
        );
        reveal.details = json!({"outside_interaction": true});
        assert_eq!(e.feed(&reveal)[0].rule, "access_outside_interaction");
        let fails: Vec<_> = (0..5)
            .flat_map(|i| {
                e.feed(&seen(
                    50 + i,
                    3_000 + i as i64,
                    "interaction.verify",
                    true,
                    "customer:c9",
                    "192.0.2.1",
                ))
            })
            .collect();
        assert!(fails
            .iter()
            .any(|r| r.rule == "verification_failures" && r.subject == "customer:c9"));
    }

    #[test]
    fn a_phone_search_outside_an_interaction_raises_access_outside_interaction() {
        let mut e = Engine::new(Rules::default());
        let search = |index: u64, outside: bool| {
            let mut s = seen(index, 1_000, "customer.search", false, "", "192.0.2.1");
            s.actor = "user:agent1".into();
            s.target = None;
            s.details = json!({"by": "phone", "results": 1, "outside_interaction": outside});
            s
        };
        assert!(e.feed(&search(1, false)).is_empty());
        let raised = e.feed(&search(2, true));
        assert_eq!(
            raised.len(),
            1,
            "{:?}",
            raised.iter().map(|r| r.rule).collect::<Vec<_>>()
        );
        assert_eq!(raised[0].rule, "access_outside_interaction");
        assert_eq!(raised[0].subject, "user:agent1");
        assert_eq!(
            raised[0].summary,
            "user:agent1 searched customers by phone outside an active interaction"
        );
    }

    #[test]
    fn entries_read_back_from_the_api_shape() {
        let v = json!({"index": 3, "time": "2026-11-24T22:30:00Z", "actor": "user:a", "action": "auth.sign_in", "target": "user:a", "interaction": null, "outcome": "failure", "source": "192.0.2.1", "details": {}});
        let s = Seen::from_entry(&v).unwrap();
        assert_eq!((s.index, s.failed, s.time), (3, true, 1_795_559_400));
    }
}
