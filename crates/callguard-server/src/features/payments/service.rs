//! Payment requests (SPEC C7): an agent asks a caller, in an active interaction verified to the
//! policy's level, to pay an amount by link or keypad. The request moves through one state
//! machine ([`Status::may_become`]); every move is one audit entry written in the same
//! transaction (ids, amount, currency, brand, last four, gateway reference — never card data).
//! Expiry is the server's: checked on every read and move, and swept by a background task.

use super::model::*;
use crate::error::Error;
use crate::features::interactions::model::level_of;
use crate::features::interactions::service::Interactions;
use crate::features::payments::gateway::Gateway;
use crate::principal::{customer_ref, Actor, Principal};
use callguard_core::audit::AuditRecord;
use callguard_core::payments::{Currency, Money};
use callguard_core::{now, rfc3339, Role, Secret, UnixTime};
use callguard_store::{PaymentRow, PaymentWrite, Store};
use std::sync::Arc;

/// How long a payment link (and a keypad request) stays payable by default.
pub const DEFAULT_LINK_TTL_SECONDS: i64 = 15 * 60;

/// Longest description accepted.
pub const MAX_DESCRIPTION: usize = 120;

/// Most payments a list shows.
pub const LIST_LIMIT: u64 = 200;

/// What payments are started with (`payments.*` configuration).
#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// `payments.link_ttl_seconds`: how long a link stays payable.
    pub link_ttl_seconds: i64,
    /// `payments.merchant_name`: who the link's message and page say is asking for the money.
    pub merchant_name: String,
    /// Where the hosted page is reached (`public_url`, without a trailing slash), for the links
    /// sent out.
    pub public_base: String,
    /// Whether the hosted page and the keypad ask for a postal code.
    pub postal_code: bool,
    /// `payments.page_check_seconds`: how often the server runs the payment page's tamper
    /// check against its signed baseline (0: never; the CLI still can).
    pub page_check_seconds: u64,
    /// Where the gateway sends card holders for 3-D Secure (the pay page's `form-action`),
    /// from the gateway's settings.
    pub authentication_origin: Option<String>,
    /// `payments.keypad_postal_code`: whether a keypad capture asks for the postal code.
    pub keypad_postal_code: bool,
    /// `payments.keypad_timeout_seconds`: a keypad capture not finished within this is
    /// cancelled by the server.
    pub keypad_timeout_seconds: u64,
    /// `payments.keypad_max_attempts`: rejected entries of one field before the capture is
    /// cancelled.
    pub keypad_max_attempts: u32,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            link_ttl_seconds: DEFAULT_LINK_TTL_SECONDS,
            merchant_name: "Callguard".into(),
            public_base: "https://localhost:8443".into(),
            postal_code: false,
            page_check_seconds: 3600,
            authentication_origin: None,
            keypad_postal_code: false,
            keypad_timeout_seconds: 180,
            keypad_max_attempts: 3,
        }
    }
}

/// Payment requests, their links, charges and refunds.
pub struct Payments {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) interactions: Arc<Interactions>,
    pub(crate) gateway: Option<Arc<dyn Gateway>>,
    pub(crate) settings: PaymentSettings,
    /// Wakes the agents' live status streams when a payment changes.
    pub(crate) changes: tokio::sync::broadcast::Sender<String>,
    /// Keypad captures in progress on this node, as the desk shows them (counts, never digits).
    pub(crate) keypad_progress: std::sync::Mutex<std::collections::HashMap<String, KeypadProgress>>,
}

/// `payment:<id>` for audit targets.
#[must_use]
pub fn payment_ref(id: &str) -> String {
    format!("payment:{id}")
}

impl Payments {
    pub fn new(
        store: Arc<dyn Store>,
        interactions: Arc<Interactions>,
        gateway: Option<Arc<dyn Gateway>>,
        settings: PaymentSettings,
    ) -> Self {
        let (changes, _) = tokio::sync::broadcast::channel(256);
        Self {
            store,
            interactions,
            gateway,
            settings,
            changes,
            keypad_progress: std::sync::Mutex::default(),
        }
    }

    /// Shows (or, with `None`, clears) a keypad capture's progress on the desk, at once.
    pub(crate) fn set_keypad_progress(&self, id: &str, progress: Option<KeypadProgress>) {
        if let Ok(mut m) = self.keypad_progress.lock() {
            match progress {
                Some(p) => {
                    m.insert(id.to_owned(), p);
                }
                None => {
                    m.remove(id);
                }
            }
        }
        let _ = self.changes.send(id.to_owned());
    }

    /// A stored payment as staff see it, with its keypad progress when a capture is running.
    fn live_view(&self, row: &PaymentRow) -> PaymentView {
        let mut v = view(row);
        if status_of(row).ok() == Some(Status::Capturing) {
            v.keypad = self
                .keypad_progress
                .lock()
                .ok()
                .and_then(|m| m.get(&row.id).cloned());
        }
        v
    }

    #[must_use]
    pub fn settings(&self) -> &PaymentSettings {
        &self.settings
    }

    /// Ids of payments as they change, for live status streams.
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// An agent starts a payment request in their own active interaction.
    pub async fn start(&self, p: &Principal, r: NewPayment) -> Result<PaymentView, Error> {
        if p.user.role != Role::Agent {
            return Err(Error::Forbidden);
        }
        let (money, description) = checked_request(&r)?;
        let i = self.interactions.own(p, &r.interaction_id).await?;
        if i.status != "active" {
            return Err(Error::State(
                "the interaction has ended; payments need an active call",
            ));
        }
        let needed = self.interactions.policy().payment_level();
        if level_of(&i.state) < needed {
            return Err(Error::VerificationRequired(needed));
        }
        if r.method == Method::Keypad && r.send_to.is_some() {
            return Err(Error::Validation(
                "`send_to` is only for the link method; leave it out for keypad".into(),
            ));
        }
        let t = now();
        let id = uuid::Uuid::new_v4().to_string();
        let token = (r.method == Method::Link).then(link_token);
        let row = PaymentRow {
            id: id.clone(),
            version: 1,
            interaction_id: i.id.clone(),
            customer_id: i.customer_id.clone(),
            agent_id: p.user.id.clone(),
            amount_minor: money.minor(),
            currency: money.currency().code().into(),
            method: r.method.as_str().into(),
            description,
            status: Status::Created.as_str().into(),
            send_to: None,
            link_hash: token
                .as_ref()
                .map(|t| callguard_core::token::hash(t.expose())),
            expires_at: t + self.settings.link_ttl_seconds,
            attempt_key: None,
            attempts: 0,
            brand: None,
            last4: None,
            exp_month: None,
            exp_year: None,
            gateway: None,
            gateway_token: None,
            gateway_reference: None,
            decline_reason: None,
            refunded_minor: 0,
            created_at: t,
            updated_at: t,
        };
        let audit = record(&p.actor(), "payment.create", &row);
        self.commit(PaymentWrite {
            payment: Some((row.clone(), None)),
            audit: vec![audit],
            ..PaymentWrite::default()
        })
        .await?;
        let mut row = row;
        if let (Some(channel), Some(token)) = (r.send_to, &token) {
            row = self.send_link(p, row, channel, token).await?;
        }
        let mut view = view(&row);
        view.link_url = token.map(|t| self.link_url(&t));
        Ok(view)
    }

    /// The hosted page's address for a link token.
    pub(crate) fn link_url(&self, token: &Secret<String>) -> String {
        format!(
            "{}/pay/{}",
            self.settings.public_base.trim_end_matches('/'),
            token.expose()
        )
    }

    /// One payment: the agent's own, any for a supervisor. An open payment past its expiry is
    /// expired first.
    pub async fn get(&self, p: &Principal, id: &str) -> Result<PaymentView, Error> {
        let row = self.visible(p, id).await?;
        Ok(self.live_view(&row))
    }

    /// The payment `id` as `p` may see it, expired first when its time is up.
    pub(crate) async fn visible(&self, p: &Principal, id: &str) -> Result<PaymentRow, Error> {
        let row = self.store.payment(id).await?.ok_or(Error::NotFound)?;
        let allowed = match p.user.role {
            Role::Agent => row.agent_id == p.user.id,
            Role::Supervisor => true,
            Role::Customer => row.customer_id.as_deref() == Some(p.user.username.as_str()),
            _ => false,
        };
        if !allowed {
            return Err(Error::NotFound);
        }
        self.expire_if_due(row).await
    }

    /// Payments of one of the agent's interactions (any interaction for a supervisor).
    pub async fn of_interaction(
        &self,
        p: &Principal,
        interaction_id: &str,
    ) -> Result<PaymentList, Error> {
        if p.user.role == Role::Agent {
            self.interactions.own(p, interaction_id).await?;
        } else if p.user.role != Role::Supervisor {
            return Err(Error::Forbidden);
        }
        let rows = self
            .store
            .payments_of_interaction(interaction_id, LIST_LIMIT)
            .await?;
        self.list(rows).await
    }

    /// The newest payments: a supervisor sees everyone's, an agent their own.
    pub async fn recent(&self, p: &Principal) -> Result<PaymentList, Error> {
        let rows = self.store.recent_payments(LIST_LIMIT).await?;
        let rows = match p.user.role {
            Role::Supervisor => rows,
            Role::Agent => rows
                .into_iter()
                .filter(|r| r.agent_id == p.user.id)
                .collect(),
            _ => return Err(Error::Forbidden),
        };
        self.list(rows).await
    }

    /// The signed-in customer's own payments (the portal).
    pub async fn of_customer(&self, customer_id: &str) -> Result<PaymentList, Error> {
        let rows = self
            .store
            .payments_of_customer(customer_id, LIST_LIMIT)
            .await?;
        self.list(rows).await
    }

    async fn list(&self, rows: Vec<PaymentRow>) -> Result<PaymentList, Error> {
        let mut payments = Vec::with_capacity(rows.len());
        for r in rows {
            payments.push(self.live_view(&self.expire_if_due(r).await?));
        }
        Ok(PaymentList { payments })
    }

    /// The agent cancels an open payment that is not being charged.
    pub async fn cancel(&self, p: &Principal, id: &str) -> Result<PaymentView, Error> {
        let row = self.visible(p, id).await?;
        if row.agent_id != p.user.id {
            return Err(Error::NotFound);
        }
        // A card at the gateway (its attempt's key is set) is left to finish.
        if row.attempt_key.is_some() {
            return Err(Error::State(refusal(Status::Capturing)));
        }
        let next = self
            .transition(&p.actor(), &row, Status::Cancelled, |_| {})
            .await?;
        Ok(view(&next))
    }

    /// Expires `row` when it is open and past its time; answers the row as it now is.
    pub(crate) async fn expire_if_due(&self, row: PaymentRow) -> Result<PaymentRow, Error> {
        let status = status_of(&row)?;
        // A charge at the gateway (its key is set) is left to finish: its outcome decides, not
        // the clock. A keypad capture the caller abandoned expires like any other.
        let at_gateway = status == Status::Capturing && row.attempt_key.is_some();
        if !status.is_open() || at_gateway || row.expires_at > now() {
            return Ok(row);
        }
        match self
            .transition(&system(), &row, Status::Expired, |_| {})
            .await
        {
            Ok(next) => Ok(next),
            // Someone else moved it first: read it again.
            Err(Error::State(_)) => self.store.payment(&row.id).await?.ok_or(Error::NotFound),
            Err(e) => Err(e),
        }
    }

    /// Expires every open payment past its time (the background sweep); how many.
    pub async fn sweep_expired(&self) -> Result<usize, Error> {
        let due = self.store.overdue_payments(now(), 500).await?;
        let mut n = 0;
        for row in due {
            let before = row.status.clone();
            if self.expire_if_due(row).await?.status != before {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Moves `row` to `next` (after `change` fills in what the move carries) with one audit
    /// entry; refused when the state machine does not allow it or the row changed meanwhile.
    pub(crate) async fn transition(
        &self,
        actor: &Actor,
        row: &PaymentRow,
        next: Status,
        change: impl FnOnce(&mut PaymentRow),
    ) -> Result<PaymentRow, Error> {
        let from = status_of(row)?;
        if !from.may_become(next) {
            return Err(Error::State(refusal(from)));
        }
        let mut n = row.clone();
        n.status = next.as_str().into();
        n.version += 1;
        n.updated_at = now();
        change(&mut n);
        let audit = record(actor, action_of(next), &n).detail("from", from.as_str());
        let audit = if matches!(next, Status::Declined | Status::Failed) {
            audit.failure()
        } else {
            audit
        };
        if !self
            .commit(PaymentWrite {
                payment: Some((n.clone(), Some(row.version))),
                audit: vec![audit],
                ..PaymentWrite::default()
            })
            .await?
        {
            return Err(Error::State(
                "the payment changed meanwhile; read it again and retry",
            ));
        }
        Ok(n)
    }

    /// Writes and tells the live streams.
    pub(crate) async fn commit(&self, w: PaymentWrite) -> Result<bool, Error> {
        let id = w.payment.as_ref().map(|(p, _)| p.id.clone());
        let ok = self.store.payment_commit(w).await?;
        if let (true, Some(id)) = (ok, id) {
            let _ = self.changes.send(id);
        }
        Ok(ok)
    }

    /// Looks up the gateway, or says it is not configured.
    pub(crate) fn gateway(&self) -> Result<&Arc<dyn Gateway>, Error> {
        self.gateway.as_ref().ok_or(Error::NotConfigured(
            "no payment gateway (payments.gateway)",
        ))
    }
}

/// Checks amount, currency and description; says what to send instead.
fn checked_request(r: &NewPayment) -> Result<(Money, String), Error> {
    let mut problems = crate::features::vault::service::Problems::default();
    let currency = Currency::from_code(r.currency.trim());
    if let Err(e) = &currency {
        problems.add("currency", e.to_string());
    }
    let money = currency
        .as_ref()
        .ok()
        .map(|c| Money::new(r.amount_minor, *c));
    if let Some(Err(e)) = &money {
        problems.add("amount_minor", e.to_string());
    }
    let description = r.description.as_deref().unwrap_or("").trim().to_owned();
    if description.chars().count() > MAX_DESCRIPTION || description.chars().any(char::is_control) {
        problems.add(
            "description",
            format!("at most {MAX_DESCRIPTION} characters, no control characters"),
        );
    }
    problems.into_result()?;
    match money {
        Some(Ok(m)) => Ok((m, description)),
        _ => Err(Error::Internal),
    }
}

/// A new link token: 256 random bits, URL-safe. Only its hash is stored.
fn link_token() -> Secret<String> {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

pub(crate) fn status_of(row: &PaymentRow) -> Result<Status, Error> {
    Status::parse(&row.status).ok_or_else(|| {
        tracing::error!(payment = %row.id, "unknown payment status in the database");
        Error::Internal
    })
}

/// Why a move from `from` is refused, in words for the agent.
fn refusal(from: Status) -> &'static str {
    match from {
        Status::Capturing => "the card is being charged; wait for the result",
        Status::Authorised => "the payment is already authorised",
        Status::Declined => "the payment was declined; start a new one",
        Status::Expired => "the payment has expired; start a new one",
        Status::Cancelled => "the payment was cancelled; start a new one",
        Status::Failed => "the payment failed; start a new one",
        Status::Created | Status::LinkSent => "the payment is not being charged",
    }
}

fn action_of(s: Status) -> &'static str {
    match s {
        Status::Created => "payment.create",
        Status::LinkSent => "payment.link_sent",
        Status::Capturing => "payment.capture",
        Status::Authorised => "payment.authorise",
        Status::Declined => "payment.decline",
        Status::Expired => "payment.expire",
        Status::Cancelled => "payment.cancel",
        Status::Failed => "payment.fail",
    }
}

/// The system itself as an actor (expiry).
pub fn system() -> Actor {
    Actor {
        id: "system".into(),
        source: None,
    }
}

/// One audit entry about `row`: ids, amount, currency, method, status, and what is kept of the
/// card and the charge. Never a card number, expiry with it, security code or link token.
pub(crate) fn record(actor: &Actor, action: &str, row: &PaymentRow) -> AuditRecord {
    let mut a = actor
        .record(action)
        .target(payment_ref(&row.id))
        .detail("amount_minor", row.amount_minor)
        .detail("currency", row.currency.clone())
        .detail("method", row.method.clone())
        .detail("status", row.status.clone());
    a.interaction = Some(row.interaction_id.clone());
    if let Some(c) = &row.customer_id {
        a = a.detail("customer", customer_ref(c));
    }
    for (k, v) in [
        ("brand", &row.brand),
        ("last4", &row.last4),
        ("gateway", &row.gateway),
        ("gateway_reference", &row.gateway_reference),
        ("decline_reason", &row.decline_reason),
        ("send_to", &row.send_to),
    ] {
        if let Some(v) = v {
            a = a.detail(k, v.clone());
        }
    }
    if row.attempts > 0 {
        a = a.detail("attempts", row.attempts);
    }
    a
}

/// The view of a stored payment.
#[must_use]
pub fn view(row: &PaymentRow) -> PaymentView {
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    let amount = Currency::from_code(&row.currency)
        .ok()
        .and_then(|c| Money::new(row.amount_minor, c).ok())
        .map_or_else(
            || format!("{} {}", row.amount_minor, row.currency),
            |m| m.to_string(),
        );
    let message = match status {
        Status::Declined => row
            .decline_reason
            .as_deref()
            .and_then(|r| serde_json::from_value(serde_json::Value::String(r.into())).ok())
            .map(|r: crate::features::payments::gateway::DeclineReason| r.explain().to_owned()),
        Status::Failed => Some("The payment could not be completed. Start a new one.".into()),
        Status::Expired => Some("The payment was not made in time.".into()),
        _ => None,
    };
    PaymentView {
        id: row.id.clone(),
        status,
        amount_minor: row.amount_minor,
        currency: row.currency.clone(),
        amount,
        method: if row.method == "keypad" {
            Method::Keypad
        } else {
            Method::Link
        },
        description: row.description.clone(),
        interaction_id: row.interaction_id.clone(),
        brand: row.brand.clone(),
        last4: row.last4.clone(),
        decline_reason: row.decline_reason.clone(),
        message,
        gateway_reference: row.gateway_reference.clone(),
        refunded_minor: row.refunded_minor,
        expires_at: rfc3339(row.expires_at),
        created_at: rfc3339(row.created_at),
        link_url: None,
        keypad: None,
    }
}

/// Seconds left before `row` expires.
#[must_use]
pub fn seconds_left(row: &PaymentRow, t: UnixTime) -> i64 {
    (row.expires_at - t).max(0)
}
