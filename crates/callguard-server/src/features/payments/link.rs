//! Pay-by-link: the single-use link is sent to the customer's registered phone or e-mail, and
//! the hosted page behind it takes the card. The token (256 random bits) is stored only as its
//! SHA-256 hash; a link is payable once, until it expires, and only while its payment is open.
//! Card fields are checked here (Luhn, brand, length, expiry, CVC length) with errors that name
//! the field and never echo what was typed; then the card goes to the gateway and is dropped.

use super::model::Status;
use super::service::{seconds_left, status_of, view, Payments};
use crate::error::{Error, FieldProblem};
use crate::notify::{Channel, NotifyError};
use crate::principal::{Actor, Principal};
use callguard_core::payments::CardDetails;
use callguard_core::{now, Secret};
use callguard_store::PaymentRow;

/// What the hosted page shows for a link.
#[derive(Debug, Clone)]
pub enum LinkState {
    /// The form: what is paid, to whom, and for how long the link still works.
    Payable {
        amount: String,
        description: String,
        merchant: String,
        seconds_left: i64,
        postal_code: bool,
    },
    /// Paid already (this link or another submit of it).
    Paid,
    /// Used: a card was submitted and declined, or is being charged.
    Used,
    Expired,
    Cancelled,
}

/// The card fields the hosted page posts. Wiped on drop; printed as nothing.
pub struct CardForm {
    pub number: Secret<String>,
    pub exp_month: Secret<String>,
    pub exp_year: Secret<String>,
    pub cvc: Secret<String>,
    pub postal_code: Option<Secret<String>>,
}

/// What came of a submit on the hosted page.
#[derive(Debug, Clone)]
pub enum PayResult {
    Authorised {
        amount: String,
        last4: String,
    },
    Declined {
        message: String,
    },
    Failed,
    /// 3-D Secure: the card holder is sent to the bank's check at this address, which sends
    /// them back to `/pay/{token}/return`.
    Authenticate(url::Url),
    /// The card holder came back from the bank's check but the gateway could not be asked
    /// how it went: the page says to reload.
    Pending,
    /// The link cannot be paid (any more).
    Refused(LinkState),
}

impl Payments {
    /// Sends the link of the new payment `row` to the customer's first registered contact for
    /// `channel` and records it (`link_sent`).
    pub(crate) async fn send_link(
        &self,
        p: &Principal,
        row: PaymentRow,
        channel: Channel,
        token: &Secret<String>,
    ) -> Result<PaymentRow, Error> {
        let customer = row.customer_id.clone().ok_or(Error::State(
            "the interaction is not linked to a customer: no phone or e-mail to send the link to",
        ))?;
        let o = self.interactions.vault.open(&customer).await?;
        let to = match channel {
            Channel::Sms => o.record.phones.first(),
            Channel::Email => o.record.emails.first(),
        }
        .cloned()
        .ok_or(Error::State(
            "the customer has no registered contact for that channel",
        ))?;
        let link = Secret::new(self.link_url(token));
        let amount = view(&row).amount;
        let minutes = (self.settings.link_ttl_seconds + 59) / 60;
        let delivery = self
            .interactions
            .notifier
            .send_payment_link(
                channel,
                &Secret::new(to),
                &self.settings.merchant_name,
                &amount,
                &link,
                minutes,
            )
            .await
            .map_err(|e| match e {
                NotifyError::NotConfigured(_) => {
                    Error::NotConfigured("no SMS provider or SMTP server is configured")
                }
                _ => Error::Unavailable(
                    "the link could not be delivered; try the other channel, or cancel",
                ),
            })?;
        let name = match channel {
            Channel::Sms => "sms",
            Channel::Email => "email",
        };
        tracing::info!(payment = %row.id, provider_id = %delivery.provider_id, "payment link sent");
        self.transition(&p.actor(), &row, Status::LinkSent, |n| {
            n.send_to = Some(name.into());
        })
        .await
    }

    /// The payment behind a link token, expired first when its time is up.
    async fn by_token(&self, token: &str) -> Result<PaymentRow, Error> {
        // A token is 43 URL-safe characters; anything else is not looked up at all.
        if token.len() != 43
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::NotFound);
        }
        let row = self
            .store
            .payment_by_link(&callguard_core::token::hash(token))
            .await?
            .ok_or(Error::NotFound)?;
        self.expire_if_due(row).await
    }

    /// What the hosted page shows for `token`.
    pub async fn link_state(&self, token: &str) -> Result<LinkState, Error> {
        let row = self.by_token(token).await?;
        self.state_of_link(&row)
    }

    fn state_of_link(&self, row: &PaymentRow) -> Result<LinkState, Error> {
        Ok(match status_of(row)? {
            Status::Created | Status::LinkSent => LinkState::Payable {
                amount: view(row).amount,
                description: row.description.clone(),
                merchant: self.settings.merchant_name.clone(),
                seconds_left: seconds_left(row, now()),
                postal_code: self.settings.postal_code,
            },
            Status::Authorised => LinkState::Paid,
            Status::Capturing | Status::Declined | Status::Failed => LinkState::Used,
            Status::Expired => LinkState::Expired,
            Status::Cancelled => LinkState::Cancelled,
        })
    }

    /// A card submitted on the hosted page: checked, then charged once. Invalid fields change
    /// nothing (the form is shown again); a valid card uses the link up, whatever the bank says.
    pub async fn pay_link(
        &self,
        token: &str,
        form: CardForm,
        source: &str,
    ) -> Result<PayResult, Error> {
        let row = self.by_token(token).await?;
        let state = self.state_of_link(&row)?;
        if !matches!(state, LinkState::Payable { .. }) {
            return Ok(PayResult::Refused(state));
        }
        let card = parse_card(&form, self.settings.postal_code)?;
        drop(form);
        let actor = Actor {
            id: "payer".into(),
            source: Some(source.to_owned()),
        };
        let claimed = match self.claim(&actor, &row).await {
            Ok(c) => c,
            // Another submit of this link won the race.
            Err(Error::State(_)) => return Ok(PayResult::Refused(LinkState::Used)),
            Err(e) => return Err(e),
        };
        let return_url = url::Url::parse(&format!(
            "{}/return",
            self.link_url(&Secret::new(token.to_owned()))
        ))
        .ok();
        let (done, redirect) = self
            .charge(&actor, &claimed, &card, false, return_url.as_ref())
            .await?;
        drop(card);
        if let Some(url) = redirect {
            return Ok(PayResult::Authenticate(url));
        }
        Ok(result_of(&done)?.unwrap_or(PayResult::Failed))
    }

    /// The card holder is back from the bank's 3-D Secure check (`/pay/{token}/return`): the
    /// gateway is asked how the charge stands (whatever the query string of the return
    /// claims) and the payment is authorised or declined. A payment decided already is shown
    /// as it is.
    pub async fn finish_authentication(
        &self,
        token: &str,
        source: &str,
    ) -> Result<PayResult, Error> {
        let row = self.by_token(token).await?;
        let waiting = status_of(&row)? == Status::Capturing
            && row.attempt_key.is_some()
            && row.gateway_reference.is_some();
        if !waiting {
            return Ok(match result_of(&row)? {
                Some(r) => r,
                None => PayResult::Refused(self.state_of_link(&row)?),
            });
        }
        let reference = row.gateway_reference.clone().ok_or(Error::Internal)?;
        let outcome = self.gateway()?.charge_status(&reference).await;
        if outcome == Err(crate::features::payments::gateway::GatewayError::Unreachable) {
            return Ok(PayResult::Pending);
        }
        let actor = Actor {
            id: "payer".into(),
            source: Some(source.to_owned()),
        };
        let done = match self.record_outcome(&actor, &row, outcome, |_| {}).await {
            Ok(done) => done,
            // Another return of the same card holder recorded it first.
            Err(Error::State(_)) => self.by_token(token).await?,
            Err(e) => return Err(e),
        };
        Ok(result_of(&done)?.unwrap_or(PayResult::Failed))
    }
}

/// What a decided payment shows on its page; `None` while it is undecided.
fn result_of(done: &PaymentRow) -> Result<Option<PayResult>, Error> {
    Ok(Some(match status_of(done)? {
        Status::Authorised => PayResult::Authorised {
            amount: view(done).amount,
            last4: done.last4.clone().unwrap_or_default(),
        },
        Status::Declined => PayResult::Declined {
            message: view(done).message.unwrap_or_default(),
        },
        Status::Failed => PayResult::Failed,
        _ => return Ok(None),
    }))
}

/// Checks every card field; every problem names its field and never echoes the value.
pub(crate) fn parse_card(form: &CardForm, postal_code: bool) -> Result<CardDetails, Error> {
    let postal = form.postal_code.as_ref().map(|p| p.expose().as_str());
    if postal_code && postal.is_none_or(|p| p.trim().is_empty()) {
        return Err(Error::InvalidFields(vec![FieldProblem {
            field: "postal_code".into(),
            detail: "enter the postal code of the card's billing address".into(),
        }]));
    }
    CardDetails::parse(
        form.number.expose(),
        form.exp_month.expose(),
        form.exp_year.expose(),
        form.cvc.expose(),
        if postal_code { postal } else { None },
        now(),
    )
    .map_err(|e| {
        Error::InvalidFields(vec![FieldProblem {
            field: e.field().into(),
            detail: e.to_string(),
        }])
    })
}
