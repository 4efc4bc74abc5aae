//! Alerts as a service (SPEC C6). Every node follows the audit log's tail and feeds each entry
//! to the deterministic rules of `callguard_core::alerts`; an alert is stored under (rule,
//! entry index), so when several nodes raise the same alert only the first insert counts and
//! only that node delivers it — by webhook (HMAC-signed, retried) and syslog (RFC 5424). A feed
//! loop on every node turns newly stored alerts into server-sent events for the pages.

use crate::error::Error;
use crate::metrics::Metrics;
use crate::principal::Principal;
use callguard_core::alerts::{Engine, Rules, Seen};
use callguard_core::kek::Keyring;
use callguard_core::Secret;
use callguard_store::{AlertRow, NewAlert, Store};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Where alerts go besides the database.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    pub rules: Rules,
    /// Receives each alert as a signed JSON POST.
    pub webhook_url: Option<url::Url>,
    /// Key of the `X-Callguard-Signature` HMAC-SHA256.
    pub webhook_secret: Option<Secret<String>>,
    /// `host:port` of a syslog collector (UDP).
    pub syslog: Option<String>,
    /// How often a live stream re-checks that its session still stands, in seconds (0: the
    /// default, [`STREAM_CHECK_DEFAULT_SECONDS`]; at most [`STREAM_CHECK_MAX_SECONDS`]).
    pub stream_check_seconds: u64,
}

/// How often, by default, a live stream re-checks its session (besides before every event).
pub const STREAM_CHECK_DEFAULT_SECONDS: u64 = 15;
/// The longest a live stream may go without re-checking its session.
pub const STREAM_CHECK_MAX_SECONDS: u64 = 30;

/// An alert as the API and the live feed show it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AlertView {
    pub id: String,
    /// Sequence number, increasing in the order alerts were stored (the SSE event id).
    pub seq: i64,
    pub rule: String,
    pub severity: String,
    pub status: String,
    pub raised_at: String,
    /// What the alert is about, as an identifier (`user:<id>`, `address:<ip>`).
    pub subject: String,
    pub summary: String,
    /// The audit entry that raised it.
    pub entry_index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acknowledge_comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve_comment: Option<String>,
}

/// The row without its comments, which are sealed at rest: [`Alerts`] opens them.
impl From<&AlertRow> for AlertView {
    fn from(a: &AlertRow) -> Self {
        use callguard_core::rfc3339;
        Self {
            id: a.id.clone(),
            seq: a.seq,
            rule: a.rule.clone(),
            severity: a.severity.clone(),
            status: a.status.clone(),
            raised_at: rfc3339(a.raised_at),
            subject: a.subject.clone(),
            summary: a.summary.clone(),
            entry_index: a.entry_index,
            acknowledged_by: a.acknowledged_by.clone(),
            acknowledged_at: a.acknowledged_at.map(rfc3339),
            acknowledge_comment: None,
            resolved_by: a.resolved_by.clone(),
            resolved_at: a.resolved_at.map(rfc3339),
            resolve_comment: None,
        }
    }
}

/// The alerts service of one node.
pub struct Alerts {
    store: Arc<dyn Store>,
    /// Seals the comments people leave on alerts.
    kek: Arc<Keyring>,
    settings: AlertSettings,
    metrics: Arc<Metrics>,
    feed: broadcast::Sender<AlertView>,
    http: reqwest::Client,
    /// Set when the server stops, so live streams end and do not hold up the shutdown.
    closing: tokio::sync::watch::Sender<bool>,
}

/// Entries older than this many entries behind the head are not replayed at start.
const WARM_UP_ENTRIES: u64 = 50_000;

impl Alerts {
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        settings: AlertSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (feed, _) = broadcast::channel(1024);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let (closing, _) = tokio::sync::watch::channel(false);
        Self {
            store,
            kek,
            settings,
            metrics,
            feed,
            http,
            closing,
        }
    }

    /// Live alerts as they are stored (any node).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<AlertView> {
        self.feed.subscribe()
    }

    /// How often a live stream re-checks that its session still stands.
    #[must_use]
    pub fn stream_check(&self) -> Duration {
        Duration::from_secs(match self.settings.stream_check_seconds {
            0 => STREAM_CHECK_DEFAULT_SECONDS,
            n => n.min(STREAM_CHECK_MAX_SECONDS),
        })
    }

    /// Ends every live stream (graceful shutdown).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves when the server begins to stop.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }

    /// Follows the audit log and raises alerts, until the process ends.
    pub async fn run_engine(self: Arc<Self>) {
        let mut engine = Engine::new(self.settings.rules.clone());
        let mut next = match self.store.audit_head().await {
            Ok(h) => h.size.saturating_sub(WARM_UP_ENTRIES),
            Err(_) => 0,
        };
        loop {
            let batch = match self.store.audit_entries(next, 1000).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "alert engine cannot read the log");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            for e in &batch {
                next = e.index + 1;
                let Some(seen) = serde_json::from_str(&e.text)
                    .ok()
                    .as_ref()
                    .and_then(Seen::from_entry)
                else {
                    continue;
                };
                for raised in engine.feed(&seen) {
                    let alert = NewAlert {
                        id: uuid::Uuid::new_v4().to_string(),
                        rule: raised.rule.to_owned(),
                        entry_index: raised.entry_index,
                        severity: raised.severity.as_str().to_owned(),
                        raised_at: raised.time,
                        subject: raised.subject,
                        summary: raised.summary,
                    };
                    match self.store.insert_alert(&alert).await {
                        Ok(true) => {
                            self.metrics.alert_raised(raised.rule);
                            tracing::warn!(rule = raised.rule, subject = %alert.subject, "alert raised");
                            if let Ok(Some(row)) = self.store.alert(&alert.id).await {
                                let view = self.view(&row);
                                self.clone().deliver(view);
                            }
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot store an alert"),
                    }
                }
            }
        }
    }

    /// Turns newly stored alerts into live events for this node's subscribers.
    pub async fn run_feed(self: Arc<Self>) {
        let mut last = match self.store.alerts(None, 1).await {
            Ok(a) => a.first().map_or(0, |x| x.seq),
            Err(_) => 0,
        };
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            match self.store.alerts_after(last, 200).await {
                Ok(rows) => {
                    for row in rows {
                        last = row.seq;
                        let _ = self.feed.send(self.view(&row));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "alert feed cannot read alerts"),
            }
        }
    }

    fn deliver(self: Arc<Self>, alert: AlertView) {
        if let Some(target) = &self.settings.syslog {
            crate::features::audit::service::send_syslog(
                target,
                "alert",
                &format!(
                    "callguard alert rule={} severity={} subject={} {}",
                    alert.rule, alert.severity, alert.subject, alert.summary
                ),
            );
        }
        if self.settings.webhook_url.is_some() {
            tokio::spawn(async move { self.post_webhook(&alert).await });
        }
    }

    /// POSTs the alert with `X-Callguard-Timestamp` and `X-Callguard-Signature: sha256=HEX`
    /// (HMAC-SHA256 over `timestamp.body`), retrying with growing delays.
    async fn post_webhook(&self, alert: &AlertView) {
        let Some(url) = &self.settings.webhook_url else {
            return;
        };
        let body = match serde_json::to_vec(
            &serde_json::json!({"type": "callguard.alert", "alert": alert}),
        ) {
            Ok(b) => b,
            Err(_) => return,
        };
        let mut delay = Duration::from_secs(1);
        for attempt in 1..=6 {
            let timestamp = callguard_core::now().to_string();
            let signature = self
                .settings
                .webhook_secret
                .as_ref()
                .map(|k| sign(k.expose(), &timestamp, &body));
            let mut req = self
                .http
                .post(url.clone())
                .header("content-type", "application/json")
                .header("x-callguard-timestamp", &timestamp)
                .header("x-callguard-delivery", &alert.id);
            if let Some(sig) = signature {
                req = req.header("x-callguard-signature", format!("sha256={sig}"));
            }
            match req.body(body.clone()).send().await {
                Ok(r) if r.status().is_success() => {
                    self.metrics.webhook("delivered");
                    return;
                }
                Ok(r) => tracing::warn!(
                    status = r.status().as_u16(),
                    attempt,
                    "alert webhook refused the delivery"
                ),
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), attempt, "alert webhook unreachable")
                }
            }
            self.metrics.webhook("retried");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(60));
        }
        self.metrics.webhook("failed");
        tracing::error!(alert = %alert.id, "alert webhook delivery gave up after 6 attempts");
    }

    pub async fn list(&self, status: Option<&str>, limit: u64) -> Result<Vec<AlertView>, Error> {
        if let Some(s) = status {
            if !matches!(s, "open" | "acknowledged" | "resolved") {
                return Err(Error::Validation(
                    "`status` is one of open, acknowledged, resolved".into(),
                ));
            }
        }
        Ok(self
            .store
            .alerts(status, limit.clamp(1, 500))
            .await?
            .iter()
            .map(|a| self.view(a))
            .collect())
    }

    pub async fn after(&self, seq: i64) -> Result<Vec<AlertView>, Error> {
        Ok(self
            .store
            .alerts_after(seq, 500)
            .await?
            .iter()
            .map(|a| self.view(a))
            .collect())
    }

    /// Acknowledges (`resolve` false) or resolves an alert with a comment; audited.
    pub async fn transition(
        &self,
        p: &Principal,
        id: &str,
        resolve: bool,
        comment: &str,
    ) -> Result<AlertView, Error> {
        let comment = comment.trim();
        // Control characters (a NUL above all, which PostgreSQL text cannot hold) are refused
        // like any other malformed comment; line breaks and tabs are text.
        let control = comment
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r');
        if control {
            return Err(Error::Validation(
                "a comment may not contain control characters".into(),
            ));
        }
        if comment.is_empty() || comment.chars().count() > 1000 {
            return Err(Error::Validation(
                "a comment of 1 to 1000 characters is required".into(),
            ));
        }
        let current = self.store.alert(id).await?.ok_or(Error::NotFound)?;
        let (to, action) = if resolve {
            ("resolved", "alert.resolve")
        } else {
            ("acknowledged", "alert.acknowledge")
        };
        // The comment stays with the alert; the log records that it was made, not its words.
        let audit = p
            .actor()
            .record(action)
            .target(format!("alert:{id}"))
            .detail("rule", current.rule.clone())
            .detail("comment_chars", comment.chars().count());
        let by = callguard_core::audit::record::user(&p.user.id);
        // Free text: sealed by the key-encryption key, bound to the alert and the step.
        let sealed =
            callguard_core::kek::seal_text(self.kek.as_ref(), comment, &comment_aad(id, resolve));
        if !self
            .store
            .transition_alert(id, to, &by, callguard_core::now(), &sealed, audit)
            .await?
        {
            return Err(Error::Validation(format!(
                "the alert is {} and cannot become {to}",
                current.status
            )));
        }
        let row = self.store.alert(id).await?.ok_or(Error::NotFound)?;
        Ok(self.view(&row))
    }

    /// An alert as shown, its comments opened.
    fn view(&self, row: &AlertRow) -> AlertView {
        let open = |stored: &Option<String>, resolve: bool| {
            stored.as_deref().map(|c| {
                callguard_core::kek::open_text(self.kek.as_ref(), c, &comment_aad(&row.id, resolve))
                    .unwrap_or_default()
            })
        };
        AlertView {
            acknowledge_comment: open(&row.acknowledge_comment, false),
            resolve_comment: open(&row.resolve_comment, true),
            ..AlertView::from(row)
        }
    }
}

/// Associated data of an alert's sealed comment: the acknowledgement's or the resolution's.
#[must_use]
pub fn comment_aad(alert_id: &str, resolve: bool) -> String {
    let step = if resolve { "resolve" } else { "acknowledge" };
    format!("callguard:alert-comment:{alert_id}:{step}")
}

/// Hex HMAC-SHA256 of `timestamp.body`, as receivers recompute it.
#[must_use]
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_are_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently with Python's hmac module:
        // hmac.new(b"webhook-secret-0123456789", b'1700000000.{"type":"callguard.alert"}', sha256)
        let sig = sign(
            "webhook-secret-0123456789",
            "1700000000",
            br#"{"type":"callguard.alert"}"#,
        );
        assert_eq!(
            sig,
            "8dbdf7bedac278275925ad19f994bac0287f7f02d84b14d4b07e628a94b771f5"
        );
        assert_ne!(
            sig,
            sign(
                "webhook-secret-0123456780",
                "1700000000",
                br#"{"type":"callguard.alert"}"#
            )
        );
        assert_ne!(
            sig,
            sign(
                "webhook-secret-0123456789",
                "1700000001",
                br#"{"type":"callguard.alert"}"#
            )
        );
    }
}
