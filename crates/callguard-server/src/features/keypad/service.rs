//! The keypad capture state machine, shared by the HTTP API and (next) the SIP edge in-process.
//!
//! A keypad payment in `created` is claimed for one capture: the move to `capturing` is a
//! versioned write, so of two edges starting at once exactly one wins, on any node. The caller
//! then types the fields in order — card number, expiry (MMYY), security code, and the postal
//! code when `payments.keypad_postal_code` is set — as key events: digits, `*` to clear the
//! field and type it again, `#` to end it. Each ended field is checked at once (Luhn and brand
//! by IIN, expiry not past, code length by brand) and answered accepted or rejected with a
//! reason that never repeats a digit. After the last field the card is tokenised and charged
//! through the gateway with the payment's idempotency key (the same rules as every charge) and
//! dropped. The digits live only in wiped-on-drop memory of this process; they are never in
//! a log, an audit entry, an error or the desk's view, which gets counts ("digit 7 of 16"),
//! the brand and each field's result.
//!
//! Limits, all enforced here: rejections per field (`payments.keypad_max_attempts`), a capture
//! timeout (`payments.keypad_timeout_seconds`, by a timer of the server), one capture per
//! payment at a time.

use super::model::*;
use crate::error::Error;
use crate::features::payments::model::{KeypadProgress, Status};
use crate::features::payments::service::{payment_ref, status_of, system, view, Payments};
use crate::principal::Actor;
use callguard_core::payments::{CardBrand, CardDetails, CardNumber, Cvc, Expiry};
use callguard_core::{now, Secret, UnixTime};
use callguard_store::{PaymentRow, PaymentWrite};
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// Most keys one request may carry.
pub const MAX_KEYS: usize = 64;

/// Most digits kept for one field: more cannot be a valid entry, and is rejected at `#`.
const MAX_TYPED: usize = 20;

/// Keypad captures running on this node.
pub struct Keypad {
    payments: Arc<Payments>,
    captures: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Capture>>>>,
}

/// One capture in progress. Holds card data: no `Debug`, wiped on drop.
struct Capture {
    payment_id: String,
    fields: Vec<Field>,
    at: usize,
    typed: Zeroizing<String>,
    rejections: u32,
    number: Option<CardNumber>,
    expiry: Option<Expiry>,
    cvc: Option<Cvc>,
    postal: Option<Zeroizing<String>>,
    deadline: UnixTime,
    ended: bool,
    /// Each field's result, for the desk ("card number accepted").
    history: Vec<String>,
}

impl Capture {
    fn field(&self) -> Option<Field> {
        self.fields.get(self.at).copied()
    }

    /// The brand: from the accepted number, else from the digits typed so far.
    fn brand(&self) -> Option<CardBrand> {
        self.number.as_ref().map(CardNumber::brand).or_else(|| {
            (self.field() == Some(Field::Number))
                .then(|| CardBrand::from_prefix(&self.typed))
                .flatten()
        })
    }

    fn digits(&self) -> u32 {
        u32::try_from(self.typed.len()).unwrap_or(u32::MAX)
    }

    /// How many digits the current field takes, when known.
    fn of(&self) -> Option<u32> {
        let n = match self.field()? {
            Field::Number => {
                let b = self.brand()?;
                if b.lengths().contains(&16) {
                    16
                } else {
                    b.max_length()
                }
            }
            Field::Expiry => 4,
            Field::Cvc => self.brand()?.cvc_length(),
            Field::PostalCode => return None,
        };
        u32::try_from(n).ok()
    }

    fn progress(&self) -> KeypadProgress {
        KeypadProgress {
            field: self.field().map_or("", Field::label).to_owned(),
            digit: self.digits(),
            of: self.of(),
            brand: self.brand().map(|b| b.display_name().to_owned()),
            results: self.history.clone(),
        }
    }

    /// Checks the typed field and keeps it; the reason (in words, never the digits) and a
    /// short code for the audit entry when it is wrong.
    fn check(&mut self, at: UnixTime) -> Result<(), (String, String)> {
        let wrong = |e: callguard_core::payments::CardError| (e.to_string(), format!("{e:?}"));
        let typed: &str = &self.typed;
        match self.field() {
            Some(Field::Number) => self.number = Some(CardNumber::parse(typed).map_err(wrong)?),
            Some(Field::Expiry) => {
                if typed.len() != 4 {
                    return Err((
                        "the expiry must be 4 digits: the month, then the year (MMYY)".into(),
                        "ExpiryFormat".into(),
                    ));
                }
                self.expiry = Some(Expiry::parse(&typed[..2], &typed[2..], at).map_err(wrong)?);
            }
            Some(Field::Cvc) => {
                let brand = self
                    .number
                    .as_ref()
                    .map(CardNumber::brand)
                    .ok_or_else(|| ("no card number".to_owned(), "NoNumber".to_owned()))?;
                self.cvc = Some(Cvc::parse(typed, brand).map_err(wrong)?);
            }
            Some(Field::PostalCode) => {
                if typed.is_empty() || typed.len() > 10 {
                    return Err((
                        "the postal code must be 1 to 10 digits".into(),
                        "PostalCode".into(),
                    ));
                }
                self.postal = Some(Zeroizing::new(typed.to_owned()));
            }
            None => return Err(("the capture has ended".into(), "Ended".into())),
        }
        Ok(())
    }

    /// Drops every digit held.
    fn wipe(&mut self) {
        self.typed = Zeroizing::new(String::new());
        self.number = None;
        self.expiry = None;
        self.cvc = None;
        self.postal = None;
    }
}

impl Keypad {
    #[must_use]
    pub fn new(payments: Arc<Payments>) -> Self {
        Self {
            payments,
            captures: std::sync::Mutex::default(),
        }
    }

    fn running(&self, id: &str) -> Option<Arc<tokio::sync::Mutex<Capture>>> {
        self.captures.lock().ok().and_then(|m| m.get(id).cloned())
    }

    /// Whether a capture of `payment_id` runs on this node (not ended by the caller's last
    /// field, a cancel, too many rejections or the server's timer).
    #[must_use]
    pub fn is_capturing(&self, payment_id: &str) -> bool {
        self.running(payment_id).is_some()
    }

    fn forget(&self, id: &str) {
        if let Ok(mut m) = self.captures.lock() {
            m.remove(id);
        }
    }

    /// One audit entry about a capture: ids and what happened, never a digit.
    async fn note(
        &self,
        actor: &Actor,
        action: &str,
        row: &PaymentRow,
        details: &[(&str, String)],
        failure: bool,
    ) -> Result<(), Error> {
        let mut a = actor
            .record(action)
            .target(payment_ref(&row.id))
            .detail("amount_minor", row.amount_minor)
            .detail("currency", row.currency.clone());
        a.interaction = Some(row.interaction_id.clone());
        for (k, v) in details {
            a = a.detail(k, v.clone());
        }
        if failure {
            a = a.failure();
        }
        self.payments
            .commit(PaymentWrite {
                audit: vec![a],
                ..PaymentWrite::default()
            })
            .await?;
        Ok(())
    }

    /// Starts the capture of keypad payment `payment_id` (in `created`): it moves to
    /// `capturing` and the caller types the card number first. Of two edges starting at once,
    /// one wins; the other is refused (409) and nothing changes for it.
    pub async fn start(
        self: &Arc<Self>,
        actor: &Actor,
        payment_id: &str,
    ) -> Result<CaptureView, Error> {
        let row = self
            .payments
            .store
            .payment(payment_id)
            .await?
            .ok_or(Error::NotFound)?;
        if row.method != "keypad" {
            return Err(Error::State("this payment is paid by link, not by keypad"));
        }
        let row = self.payments.expire_if_due(row).await?;
        match status_of(&row)? {
            Status::Created => {}
            Status::Capturing => {
                return Err(Error::State(
                    "a keypad capture of this payment is running already",
                ))
            }
            _ => {
                return Err(Error::State(
                    "the payment is closed; the agent starts a new one",
                ))
            }
        }
        self.payments.gateway()?;
        let row = self
            .payments
            .transition(actor, &row, Status::Capturing, |_| {})
            .await
            .map_err(|e| match e {
                Error::State(_) => {
                    Error::State("a keypad capture of this payment is running already")
                }
                e => e,
            })?;
        let settings = self.payments.settings();
        let mut fields = vec![Field::Number, Field::Expiry, Field::Cvc];
        if settings.keypad_postal_code {
            fields.push(Field::PostalCode);
        }
        let timeout = settings.keypad_timeout_seconds;
        let capture = Capture {
            payment_id: row.id.clone(),
            fields,
            at: 0,
            typed: Zeroizing::new(String::with_capacity(MAX_TYPED)),
            rejections: 0,
            number: None,
            expiry: None,
            cvc: None,
            postal: None,
            deadline: now() + i64::try_from(timeout).unwrap_or(i64::MAX / 2),
            ended: false,
            history: Vec::new(),
        };
        let answer = self.collecting(&capture, Vec::new());
        self.payments
            .set_keypad_progress(&row.id, Some(capture.progress()));
        let capture = Arc::new(tokio::sync::Mutex::new(capture));
        if let Ok(mut m) = self.captures.lock() {
            m.insert(row.id.clone(), capture.clone());
        }
        self.note(actor, "payment.keypad.start", &row, &[], false)
            .await?;
        // The server's own timer ends a capture the caller or the edge abandons.
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(timeout)).await;
            let mut c = capture.lock().await;
            if !c.ended {
                if let Err(e) = me.end(&mut c, &system(), "timeout").await {
                    tracing::warn!(error = %e, "ending a timed-out keypad capture failed");
                }
            }
        });
        Ok(answer)
    }

    /// Key events from the edge for the running capture of `payment_id`: each `#` ends the
    /// field (checked and answered), each `*` clears it. After the last field the card is
    /// charged and the answer carries the payment's outcome.
    pub async fn keys(
        &self,
        actor: &Actor,
        payment_id: &str,
        keys: &Secret<String>,
    ) -> Result<CaptureView, Error> {
        let k = keys.expose();
        if k.is_empty()
            || k.len() > MAX_KEYS
            || !k
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            return Err(Error::Validation(format!(
                "`keys` must be 1 to {MAX_KEYS} of the keys 0-9, * and #"
            )));
        }
        let Some(capture) = self.running(payment_id) else {
            return Err(self.no_capture(payment_id).await);
        };
        let mut c = capture.lock().await;
        if c.ended {
            return Err(self.no_capture(payment_id).await);
        }
        let row = self
            .payments
            .store
            .payment(payment_id)
            .await?
            .ok_or(Error::NotFound)?;
        // Cancelled by the agent or expired meanwhile: the capture ends with it.
        if status_of(&row)? != Status::Capturing || row.attempt_key.is_some() {
            return self.end(&mut c, actor, "payment_closed").await;
        }
        if now() >= c.deadline {
            return self.end(&mut c, &system(), "timeout").await;
        }
        let max_attempts = self.payments.settings().keypad_max_attempts;
        let mut results = Vec::new();
        for key in k.bytes() {
            let Some(field) = c.field() else { break };
            match key {
                b'*' => {
                    c.typed = Zeroizing::new(String::with_capacity(MAX_TYPED));
                    results.push(FieldResult {
                        field,
                        result: Verdict::Restarted,
                        reason: None,
                        attempts_left: max_attempts.saturating_sub(c.rejections),
                    });
                }
                b'#' => {
                    let checked = c.check(now());
                    c.typed = Zeroizing::new(String::with_capacity(MAX_TYPED));
                    match checked {
                        Ok(()) => {
                            c.rejections = 0;
                            c.at += 1;
                            let brand = c.number.as_ref().map(|n| n.brand().as_str().to_owned());
                            c.history.push(format!("{} accepted", field.label()));
                            results.push(FieldResult {
                                field,
                                result: Verdict::Accepted,
                                reason: None,
                                attempts_left: max_attempts,
                            });
                            let mut details = vec![("field", field.label().to_owned())];
                            if let Some(b) = brand {
                                details.push(("brand", b));
                            }
                            self.note(
                                actor,
                                "payment.keypad.field_accepted",
                                &row,
                                &details,
                                false,
                            )
                            .await?;
                            if c.field().is_none() {
                                return self.submit(&mut c, actor, &row, results).await;
                            }
                        }
                        Err((reason, code)) => {
                            c.rejections += 1;
                            c.history
                                .push(format!("{} rejected: {reason}", field.label()));
                            results.push(FieldResult {
                                field,
                                result: Verdict::Rejected,
                                reason: Some(reason),
                                attempts_left: max_attempts.saturating_sub(c.rejections),
                            });
                            self.note(
                                actor,
                                "payment.keypad.field_rejected",
                                &row,
                                &[
                                    ("field", field.label().to_owned()),
                                    ("reason", code),
                                    ("rejections", c.rejections.to_string()),
                                ],
                                true,
                            )
                            .await?;
                            if c.rejections >= max_attempts {
                                let mut answer =
                                    self.end(&mut c, actor, "too_many_attempts").await?;
                                answer.results = results;
                                return Ok(answer);
                            }
                        }
                    }
                }
                digit => {
                    if c.typed.len() < MAX_TYPED {
                        c.typed.push(char::from(digit));
                    }
                }
            }
        }
        self.payments
            .set_keypad_progress(payment_id, Some(c.progress()));
        Ok(self.collecting(&c, results))
    }

    /// The edge ends the capture (the caller hung up or gave up): the payment is cancelled.
    pub async fn cancel(&self, actor: &Actor, payment_id: &str) -> Result<CaptureView, Error> {
        let Some(capture) = self.running(payment_id) else {
            return Err(self.no_capture(payment_id).await);
        };
        let mut c = capture.lock().await;
        if c.ended {
            return Err(self.no_capture(payment_id).await);
        }
        self.end(&mut c, actor, "cancelled").await
    }

    /// Why there is no capture to act on.
    async fn no_capture(&self, payment_id: &str) -> Error {
        match self.payments.store.payment(payment_id).await {
            Ok(Some(row)) if row.method == "keypad" => {
                if row.status == Status::Capturing.as_str() && row.attempt_key.is_none() {
                    Error::State("the capture of this payment runs on another server node")
                } else {
                    Error::State("no keypad capture of this payment is running; start one")
                }
            }
            Ok(_) => Error::NotFound,
            Err(e) => e.into(),
        }
    }

    fn collecting(&self, c: &Capture, results: Vec<FieldResult>) -> CaptureView {
        CaptureView {
            payment_id: c.payment_id.clone(),
            state: CaptureState::Collecting,
            field: c.field(),
            digits: c.digits(),
            brand: c.brand().map(|b| b.as_str().to_owned()),
            results,
            seconds_left: (c.deadline - now()).max(0),
            ended_because: None,
            payment: None,
        }
    }

    /// Ends the capture without a charge: digits dropped, the payment cancelled (when it is
    /// still open), one audit entry.
    async fn end(
        &self,
        c: &mut Capture,
        actor: &Actor,
        because: &str,
    ) -> Result<CaptureView, Error> {
        c.ended = true;
        c.wipe();
        self.forget(&c.payment_id);
        self.payments.set_keypad_progress(&c.payment_id, None);
        let row = self
            .payments
            .store
            .payment(&c.payment_id)
            .await?
            .ok_or(Error::NotFound)?;
        let row = if status_of(&row)? == Status::Capturing && row.attempt_key.is_none() {
            let reason = format!("keypad_{because}");
            match self
                .payments
                .transition(actor, &row, Status::Cancelled, |n| {
                    n.decline_reason = Some(reason);
                })
                .await
            {
                Ok(next) => next,
                Err(Error::State(_)) => self
                    .payments
                    .store
                    .payment(&c.payment_id)
                    .await?
                    .ok_or(Error::NotFound)?,
                Err(e) => return Err(e),
            }
        } else {
            row
        };
        self.note(
            actor,
            "payment.keypad.end",
            &row,
            &[("outcome", because.to_owned())],
            false,
        )
        .await?;
        Ok(CaptureView {
            payment_id: c.payment_id.clone(),
            state: CaptureState::Cancelled,
            field: None,
            digits: 0,
            brand: None,
            results: Vec::new(),
            seconds_left: 0,
            ended_because: Some(because.to_owned()),
            payment: Some(view(&row)),
        })
    }

    /// Every field accepted: the card goes to the gateway once, under the payment's new
    /// idempotency key, and is dropped.
    async fn submit(
        &self,
        c: &mut Capture,
        actor: &Actor,
        row: &PaymentRow,
        results: Vec<FieldResult>,
    ) -> Result<CaptureView, Error> {
        c.ended = true;
        let parts = (
            c.number.take(),
            c.expiry.take(),
            c.cvc.take(),
            c.postal.take(),
        );
        c.wipe();
        let (Some(number), Some(expiry), Some(cvc), postal_code) = parts else {
            return self.end(c, actor, "incomplete").await;
        };
        let card = CardDetails {
            number,
            expiry,
            cvc,
            postal_code,
        };
        let brand = card.number.brand();
        c.history.push("card sent to the bank".into());
        self.payments.set_keypad_progress(
            &c.payment_id,
            Some(KeypadProgress {
                field: String::new(),
                digit: 0,
                of: None,
                brand: Some(brand.display_name().to_owned()),
                results: c.history.clone(),
            }),
        );
        let armed = match self.payments.arm_keypad(actor, row).await {
            Ok(r) => r,
            Err(Error::State(_)) => {
                drop(card);
                c.ended = false;
                return self.end(c, actor, "payment_closed").await;
            }
            Err(e) => {
                drop(card);
                self.forget(&c.payment_id);
                self.payments.set_keypad_progress(&c.payment_id, None);
                return Err(e);
            }
        };
        let charged = self.payments.charge(actor, &armed, &card, true, None).await;
        drop(card);
        self.forget(&c.payment_id);
        self.payments.set_keypad_progress(&c.payment_id, None);
        let (done, _) = charged?;
        self.note(
            actor,
            "payment.keypad.end",
            &done,
            &[
                ("outcome", done.status.clone()),
                ("brand", brand.as_str().to_owned()),
            ],
            false,
        )
        .await?;
        Ok(CaptureView {
            payment_id: c.payment_id.clone(),
            state: CaptureState::Submitted,
            field: None,
            digits: 0,
            brand: Some(brand.as_str().to_owned()),
            results,
            seconds_left: 0,
            ended_because: None,
            payment: Some(view(&done)),
        })
    }
}
