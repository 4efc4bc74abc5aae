//! Prometheus metrics in the text exposition format: request counts and latencies per route,
//! sign-in outcomes, lockouts. Kept in memory per node; a scraper reads every node.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The node's metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    sign_ins: Mutex<BTreeMap<&'static str, u64>>,
    lockouts: Mutex<u64>,
    alerts: Mutex<BTreeMap<&'static str, u64>>,
    webhooks: Mutex<BTreeMap<&'static str, u64>>,
    sip_refused: Mutex<BTreeMap<&'static str, u64>>,
    sip_calls: Mutex<BTreeMap<&'static str, u64>>,
    sip_registrations: Mutex<usize>,
}

impl Metrics {
    /// Counts one answered request of `route` (the route template, never the raw path).
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(route.to_owned()).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if seconds <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// Counts a sign-in outcome: `success`, `invalid_credentials`, `locked`, `throttled`,
    /// `second_factor_rejected`, `disabled`.
    pub fn sign_in(&self, outcome: &'static str) {
        if let Ok(mut m) = self.sign_ins.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    pub fn lockout(&self) {
        if let Ok(mut n) = self.lockouts.lock() {
            *n += 1;
        }
    }

    /// Counts an alert raised by this node.
    pub fn alert_raised(&self, rule: &'static str) {
        if let Ok(mut m) = self.alerts.lock() {
            *m.entry(rule).or_default() += 1;
        }
    }

    /// Counts a webhook delivery outcome: `delivered`, `retried`, `failed`.
    pub fn webhook(&self, outcome: &'static str) {
        if let Ok(mut m) = self.webhooks.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    /// Counts a SIP request the telephony edge refused: `not_trunk`, `auth`, `busy`...
    pub fn sip_refused(&self, reason: &'static str) {
        if let Ok(mut m) = self.sip_refused.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// Counts a call the telephony edge took, by how it ended: `answered`, `failed`.
    pub fn sip_call(&self, outcome: &'static str) {
        if let Ok(mut m) = self.sip_calls.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    /// Sets how many softphones are registered now.
    pub fn sip_registrations(&self, n: usize) {
        if let Ok(mut m) = self.sip_registrations.lock() {
            *m = n;
        }
    }

    /// The text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP callguard_http_requests_total HTTP requests answered, by method, route and status.");
        let _ = writeln!(out, "# TYPE callguard_http_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "callguard_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP callguard_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(
            out,
            "# TYPE callguard_http_request_duration_seconds histogram"
        );
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                let r = escape(route);
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "callguard_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(out, "callguard_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(
                    out,
                    "callguard_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "callguard_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP callguard_sign_ins_total Sign-in attempts by outcome."
        );
        let _ = writeln!(out, "# TYPE callguard_sign_ins_total counter");
        if let Ok(m) = self.sign_ins.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(out, "callguard_sign_ins_total{{outcome=\"{outcome}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP callguard_account_lockouts_total Accounts locked after too many failures."
        );
        let _ = writeln!(out, "# TYPE callguard_account_lockouts_total counter");
        let _ = writeln!(
            out,
            "callguard_account_lockouts_total {}",
            self.lockouts.lock().map(|n| *n).unwrap_or(0)
        );
        let _ = writeln!(out, "# HELP callguard_alerts_raised_total Alerts raised (and stored first) by this node, by rule.");
        let _ = writeln!(out, "# TYPE callguard_alerts_raised_total counter");
        if let Ok(m) = self.alerts.lock() {
            for (rule, n) in m.iter() {
                let _ = writeln!(out, "callguard_alerts_raised_total{{rule=\"{rule}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP callguard_alert_webhook_deliveries_total Alert webhook attempts by outcome."
        );
        let _ = writeln!(
            out,
            "# TYPE callguard_alert_webhook_deliveries_total counter"
        );
        if let Ok(m) = self.webhooks.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "callguard_alert_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# HELP callguard_sip_refused_total SIP requests the telephony edge refused, by reason.");
        let _ = writeln!(out, "# TYPE callguard_sip_refused_total counter");
        if let Ok(m) = self.sip_refused.lock() {
            for (reason, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "callguard_sip_refused_total{{reason=\"{reason}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP callguard_sip_registrations Softphones registered now."
        );
        let _ = writeln!(out, "# TYPE callguard_sip_registrations gauge");
        let _ = writeln!(
            out,
            "callguard_sip_registrations {}",
            self.sip_registrations.lock().map(|n| *n).unwrap_or(0)
        );
        let _ = writeln!(
            out,
            "# HELP callguard_sip_calls_total Calls the telephony edge took, by outcome."
        );
        let _ = writeln!(out, "# TYPE callguard_sip_calls_total counter");
        if let Ok(m) = self.sip_calls.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "callguard_sip_calls_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe_request("GET", "/healthz", 200, 0.002);
        m.sign_in("success");
        m.lockout();
        let text = m.render();
        assert!(text.contains(
            "callguard_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "callguard_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0025\"} 1"
        ));
        assert!(text.contains(
            "callguard_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 0"
        ));
        assert!(text.contains("callguard_sign_ins_total{outcome=\"success\"} 1"));
        assert!(text.contains("callguard_account_lockouts_total 1"));
    }

    #[test]
    fn sip_refusals_are_counted_by_reason() {
        let m = Metrics::default();
        m.sip_refused("not_trunk");
        m.sip_refused("not_trunk");
        m.sip_registrations(3);
        let text = m.render();
        assert!(text.contains("callguard_sip_refused_total{reason=\"not_trunk\"} 2"));
        assert!(text.contains("callguard_sip_registrations 3"));
    }
}
