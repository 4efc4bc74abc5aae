//! Stripe's API, by hand, for the five calls a charge needs: tokenise the card as a
//! PaymentMethod, create and confirm a PaymentIntent (MOTO for keypad capture, a return URL for
//! 3-D Secure on pay-by-link), read a PaymentIntent back, refund. Form bodies with bracket
//! nesting, the secret key as a bearer token, `Stripe-Version` pinned, an `Idempotency-Key` per
//! step derived from the charge's own key. Of an error only `type`, `code` and `decline_code` are
//! read: Stripe's `message` can quote what was sent.

use super::form::FormBody;
use super::settings::{checked_base, endpoint, http_client};
use super::{
    ChargeOutcome, ChargeRequest, DeclineReason, Gateway, GatewayError, GatewaySettingsError,
    RefundOutcome, RefundRequest, StripeSettings,
};
use async_trait::async_trait;
use callguard_core::payments::{CardBrand, CardDetails, CardSummary, Money};
use callguard_core::Secret;
use serde::Deserialize;

/// The API version every request is pinned to, so an account upgrade cannot change the shapes
/// this client reads.
pub const STRIPE_VERSION: &str = "2024-06-20";

pub struct StripeGateway {
    http: reqwest::Client,
    base: url::Url,
    secret_key: Secret<String>,
}

/// Stripe's error object; `message` is deliberately not read.
#[derive(Debug, Default, Deserialize)]
struct StripeError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    payment_intent: Option<Resource>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct Resource {
    id: String,
}

#[derive(Deserialize)]
struct PaymentMethod {
    id: String,
    card: Option<PaymentMethodCard>,
}

#[derive(Deserialize)]
struct PaymentMethodCard {
    brand: String,
    last4: String,
    exp_month: u8,
    exp_year: u16,
}

#[derive(Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
    /// An id, or the object when expanded.
    payment_method: Option<serde_json::Value>,
    next_action: Option<NextAction>,
    last_payment_error: Option<StripeError>,
}

#[derive(Deserialize)]
struct NextAction {
    redirect_to_url: Option<RedirectToUrl>,
}

#[derive(Deserialize)]
struct RedirectToUrl {
    url: Option<String>,
}

#[derive(Deserialize)]
struct Refund {
    id: String,
    status: Option<String>,
}

/// Why a call did not give the resource: a card error is an outcome, the rest are failures.
enum Failure {
    Card(StripeError),
    Gateway(GatewayError),
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Self {
        Self::Gateway(e)
    }
}

impl StripeGateway {
    pub fn new(s: &StripeSettings) -> Result<Self, GatewaySettingsError> {
        let key = s.secret_key.expose().trim();
        let shaped = ["sk_live_", "sk_test_", "rk_live_", "rk_test_"]
            .iter()
            .any(|p| key.starts_with(p))
            && key.bytes().all(|b| b.is_ascii_graphic());
        if !shaped {
            return Err(GatewaySettingsError::StripeKeyShape);
        }
        Ok(Self {
            http: http_client(s.timeout)?,
            base: checked_base(&s.base_url, "payments.stripe_url")?,
            secret_key: Secret::new(key.to_owned()),
        })
    }

    async fn post(
        &self,
        path: &[&str],
        idempotency_key: &str,
        form: FormBody,
    ) -> Result<bytes::Bytes, Failure> {
        let request = self
            .http
            .post(endpoint(&self.base, path))
            .header("Idempotency-Key", idempotency_key)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.into_buffer().into_body());
        self.send(request).await
    }

    async fn get(&self, path: &[&str]) -> Result<bytes::Bytes, Failure> {
        self.send(self.http.get(endpoint(&self.base, path))).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<bytes::Bytes, Failure> {
        let response = request
            .bearer_auth(self.secret_key.expose())
            .header("Stripe-Version", STRIPE_VERSION)
            .send()
            .await
            .map_err(|e| no_answer("stripe", &e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| no_answer("stripe", &e))?;
        if status.is_success() {
            return Ok(body);
        }
        let error = serde_json::from_slice::<ErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_default();
        tracing::warn!(
            status = status.as_u16(),
            kind = error.kind.as_deref().map(safe_code),
            code = error.code.as_deref().map(safe_code),
            decline_code = error.decline_code.as_deref().map(safe_code),
            "the payment gateway refused a request"
        );
        Err(classify(status.as_u16(), error))
    }

    async fn payment_method(&self, request: &ChargeRequest<'_>) -> Result<PaymentMethod, Failure> {
        let mut form = FormBody::new();
        card_fields(&mut form, request.card);
        let key = step_key(request.idempotency_key, "pm")?;
        let body = self.post(&["v1", "payment_methods"], &key, form).await?;
        Ok(read::<PaymentMethod>(&body)?)
    }

    async fn payment_intent(
        &self,
        request: &ChargeRequest<'_>,
        payment_method: &str,
    ) -> Result<PaymentIntent, Failure> {
        let mut form = FormBody::new();
        form.field(&["amount"], &stripe_amount(request.amount).to_string())
            .field(
                &["currency"],
                &request.amount.currency().code().to_ascii_lowercase(),
            )
            .field(&["payment_method"], payment_method)
            .field(&["payment_method_types", "0"], "card")
            .field(&["confirm"], "true")
            .field(&["metadata", "payment_id"], request.reference);
        if !request.description.is_empty() {
            form.field(&["description"], request.description);
        }
        if request.moto {
            form.field(&["payment_method_options", "card", "moto"], "true");
        } else if let Some(url) = request.return_url {
            form.field(&["return_url"], url.as_str());
        }
        let key = step_key(request.idempotency_key, "pi")?;
        let body = self.post(&["v1", "payment_intents"], &key, form).await?;
        Ok(read::<PaymentIntent>(&body)?)
    }
}

#[async_trait]
impl Gateway for StripeGateway {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, GatewayError> {
        let pm = match self.payment_method(request).await {
            Ok(pm) => pm,
            Err(Failure::Card(e)) => return Ok(declined(&e, None)),
            Err(Failure::Gateway(e)) => return Err(e),
        };
        let intent = match self.payment_intent(request, &pm.id).await {
            Ok(intent) => intent,
            Err(Failure::Card(e)) => {
                let reference = e.payment_intent.as_ref().map(|p| p.id.clone());
                return Ok(declined(&e, reference));
            }
            Err(Failure::Gateway(e)) => return Err(e),
        };
        // What is kept of the card comes from the details we checked, not from the answer.
        outcome(intent, pm.id, request.card.summary(), request.moto)
    }

    async fn charge_status(&self, reference: &str) -> Result<ChargeOutcome, GatewayError> {
        let intent = match self.get(&["v1", "payment_intents", reference]).await {
            Ok(body) => read::<PaymentIntent>(&body)?,
            Err(Failure::Card(_)) => return Err(GatewayError::Protocol),
            Err(Failure::Gateway(e)) => return Err(e),
        };
        let pm_id = match &intent.payment_method {
            Some(serde_json::Value::String(id)) => id.clone(),
            Some(v) => v
                .get("id")
                .and_then(|id| id.as_str())
                .ok_or(GatewayError::Protocol)?
                .to_owned(),
            None => return outcome_without_card(intent),
        };
        let pm = match self.get(&["v1", "payment_methods", &pm_id]).await {
            Ok(body) => read::<PaymentMethod>(&body)?,
            Err(Failure::Card(_)) => return Err(GatewayError::Protocol),
            Err(Failure::Gateway(e)) => return Err(e),
        };
        let summary = summary_of(&pm).ok_or(GatewayError::Protocol)?;
        outcome(intent, pm.id, summary, false)
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<RefundOutcome, GatewayError> {
        let mut form = FormBody::new();
        form.field(&["payment_intent"], request.charge_reference)
            .field(&["amount"], &stripe_amount(request.amount).to_string());
        let key = step_key(request.idempotency_key, "re").map_err(|_| invalid_key())?;
        let refund = match self.post(&["v1", "refunds"], &key, form).await {
            Ok(body) => read::<Refund>(&body)?,
            Err(Failure::Card(e)) => {
                return Err(GatewayError::Rejected(describe(&e)));
            }
            Err(Failure::Gateway(e)) => return Err(e),
        };
        if matches!(refund.status.as_deref(), Some("failed" | "canceled")) {
            return Err(GatewayError::Rejected("refund_failed".into()));
        }
        Ok(RefundOutcome {
            reference: refund.id,
            amount: request.amount,
        })
    }
}

/// The card's fields, borrowed from the checked details and written only into the wiped body.
fn card_fields(form: &mut FormBody, card: &CardDetails) {
    form.field(&["type"], "card")
        .field(&["card", "number"], card.number.expose_digits())
        .field(&["card", "exp_month"], &card.expiry.month.to_string())
        .field(&["card", "exp_year"], &card.expiry.year.to_string())
        .field(&["card", "cvc"], card.cvc.expose());
    if let Some(postal) = &card.postal_code {
        form.field(&["billing_details", "address", "postal_code"], postal);
    }
}

/// `{key}-{step}`: one key per request of a charge, so a retry of the whole charge with the same
/// key repeats neither the tokenisation nor the charge.
fn step_key(key: &str, step: &str) -> Result<String, GatewayError> {
    let usable = !key.is_empty()
        && key.len() <= 240
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if usable {
        Ok(format!("{key}-{step}"))
    } else {
        Err(invalid_key())
    }
}

fn invalid_key() -> GatewayError {
    GatewayError::Rejected("idempotency key must be 1 to 240 letters, digits, - or _".into())
}

/// Stripe's amount for `money`: minor units, except that Stripe counts ISK and UGX, which have
/// none, in hundredths.
fn stripe_amount(money: Money) -> i64 {
    match money.currency().code() {
        "ISK" | "UGX" => money.minor() * 100,
        _ => money.minor(),
    }
}

fn read<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(body).map_err(|_| GatewayError::Protocol)
}

pub(super) fn no_answer(gateway: &'static str, e: &reqwest::Error) -> GatewayError {
    // The error's text carries the URL: log its kind only.
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection"
    } else {
        "request"
    };
    tracing::warn!(gateway, kind, "the payment gateway did not answer");
    GatewayError::Unreachable
}

fn classify(status: u16, error: StripeError) -> Failure {
    match (status, error.kind.as_deref()) {
        (_, Some("card_error")) => Failure::Card(error),
        (_, Some("idempotency_error")) => Failure::Gateway(GatewayError::IdempotencyConflict),
        (401 | 403, _) => Failure::Gateway(GatewayError::Unauthorised),
        (429, _) => Failure::Gateway(GatewayError::RateLimited),
        // Another request with this key is still being processed: the outcome is not known yet.
        (409, _) => Failure::Gateway(GatewayError::Unreachable),
        (s, _) if s >= 500 => Failure::Gateway(GatewayError::Rejected(format!("HTTP {s}"))),
        (402, _) => Failure::Card(error),
        _ => Failure::Gateway(GatewayError::Rejected(describe(&error))),
    }
}

/// `type/code` of an error, from Stripe's fixed vocabularies only.
fn describe(e: &StripeError) -> String {
    let kind = e
        .kind
        .as_deref()
        .map_or_else(|| "unknown".into(), safe_code);
    match e.code.as_deref() {
        Some(code) => format!("{kind}/{}", safe_code(code)),
        None => kind,
    }
}

/// An identifier from the gateway, kept to letters, digits and `_` so it cannot carry data.
pub(super) fn safe_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

fn declined(e: &StripeError, reference: Option<String>) -> ChargeOutcome {
    ChargeOutcome::Declined {
        reason: decline_reason(e),
        reference,
    }
}

fn decline_reason(e: &StripeError) -> DeclineReason {
    let code = e.decline_code.as_deref().or(e.code.as_deref());
    match code.unwrap_or("") {
        "insufficient_funds" => DeclineReason::InsufficientFunds,
        "expired_card" => DeclineReason::ExpiredCard,
        "incorrect_cvc" | "invalid_cvc" => DeclineReason::IncorrectCvc,
        "incorrect_number" | "invalid_number" => DeclineReason::IncorrectNumber,
        "processing_error" => DeclineReason::ProcessingError,
        "stolen_card" | "lost_card" | "fraudulent" | "pickup_card" | "merchant_blacklist" => {
            DeclineReason::Fraud
        }
        "authentication_required" | "payment_intent_authentication_failure" => {
            DeclineReason::AuthenticationFailed
        }
        _ => DeclineReason::Generic,
    }
}

fn summary_of(pm: &PaymentMethod) -> Option<CardSummary> {
    let card = pm.card.as_ref()?;
    let last4_ok = card.last4.len() == 4 && card.last4.bytes().all(|b| b.is_ascii_digit());
    Some(CardSummary {
        brand: CardBrand::parse(&card.brand)?,
        last4: last4_ok.then(|| card.last4.clone())?,
        exp_month: card.exp_month,
        exp_year: card.exp_year,
    })
}

fn outcome(
    intent: PaymentIntent,
    token: String,
    card: CardSummary,
    moto: bool,
) -> Result<ChargeOutcome, GatewayError> {
    match intent.status.as_str() {
        "succeeded" | "requires_capture" => Ok(ChargeOutcome::Authorised {
            reference: intent.id,
            token,
            card,
        }),
        _ if moto && intent.status == "requires_action" => Ok(ChargeOutcome::Declined {
            reason: DeclineReason::AuthenticationFailed,
            reference: Some(intent.id),
        }),
        _ => outcome_without_card(intent),
    }
}

fn outcome_without_card(intent: PaymentIntent) -> Result<ChargeOutcome, GatewayError> {
    match intent.status.as_str() {
        "requires_action" => {
            let url = intent
                .next_action
                .and_then(|a| a.redirect_to_url)
                .and_then(|r| r.url)
                .and_then(|u| url::Url::parse(&u).ok())
                .filter(|u| matches!(u.scheme(), "https" | "http"))
                .ok_or(GatewayError::Protocol)?;
            Ok(ChargeOutcome::RequiresAction {
                reference: intent.id,
                redirect_url: url,
            })
        }
        "requires_payment_method" | "canceled" => Ok(ChargeOutcome::Declined {
            reason: intent
                .last_payment_error
                .as_ref()
                .map_or(DeclineReason::Generic, decline_reason),
            reference: Some(intent.id),
        }),
        _ => Err(GatewayError::Protocol),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callguard_core::payments::Currency;

    fn error(kind: &str, code: Option<&str>, decline: Option<&str>) -> StripeError {
        StripeError {
            kind: Some(kind.into()),
            code: code.map(Into::into),
            decline_code: decline.map(Into::into),
            payment_intent: None,
        }
    }

    #[test]
    fn decline_codes_map_to_reasons_preferring_the_decline_code() {
        let cases = [
            (
                Some("card_declined"),
                Some("generic_decline"),
                DeclineReason::Generic,
            ),
            (
                Some("card_declined"),
                Some("insufficient_funds"),
                DeclineReason::InsufficientFunds,
            ),
            (Some("expired_card"), None, DeclineReason::ExpiredCard),
            (Some("incorrect_cvc"), None, DeclineReason::IncorrectCvc),
            (
                Some("processing_error"),
                None,
                DeclineReason::ProcessingError,
            ),
            (
                Some("card_declined"),
                Some("stolen_card"),
                DeclineReason::Fraud,
            ),
            (
                Some("incorrect_number"),
                None,
                DeclineReason::IncorrectNumber,
            ),
            (Some("card_declined"), None, DeclineReason::Generic),
        ];
        for (code, decline, reason) in cases {
            assert_eq!(decline_reason(&error("card_error", code, decline)), reason);
        }
    }

    #[test]
    fn http_failures_become_gateway_errors() {
        let gw = |status, e| match classify(status, e) {
            Failure::Gateway(g) => Some(g),
            Failure::Card(_) => None,
        };
        assert_eq!(
            gw(401, StripeError::default()),
            Some(GatewayError::Unauthorised)
        );
        assert_eq!(
            gw(400, error("idempotency_error", None, None)),
            Some(GatewayError::IdempotencyConflict)
        );
        assert_eq!(
            gw(
                429,
                error("invalid_request_error", Some("rate_limit"), None)
            ),
            Some(GatewayError::RateLimited)
        );
        assert_eq!(
            gw(503, StripeError::default()),
            Some(GatewayError::Rejected("HTTP 503".into()))
        );
        assert_eq!(
            gw(
                400,
                error("invalid_request_error", Some("parameter_missing"), None)
            ),
            Some(GatewayError::Rejected(
                "invalid_request_error/parameter_missing".into()
            ))
        );
        assert!(gw(402, error("card_error", Some("card_declined"), None)).is_none());
    }

    #[test]
    fn gateway_codes_are_kept_to_identifier_characters() {
        assert_eq!(safe_code("card_declined"), "card_declined");
        assert_eq!(
            safe_code("4242 4242 4242 4242 is bad"),
            "4242424242424242isbad"
        );
    }

    #[test]
    fn idempotency_keys_are_derived_per_step_and_checked() {
        assert_eq!(step_key("pay-1_a", "pm").unwrap(), "pay-1_a-pm");
        assert!(step_key("", "pm").is_err());
        assert!(step_key("a b", "pm").is_err());
        assert!(step_key(&"k".repeat(241), "pm").is_err());
    }

    #[test]
    fn stripe_counts_isk_and_ugx_in_hundredths() {
        let money = |code, minor| Money::new(minor, Currency::from_code(code).unwrap()).unwrap();
        assert_eq!(stripe_amount(money("EUR", 1234)), 1234);
        assert_eq!(stripe_amount(money("JPY", 500)), 500);
        assert_eq!(stripe_amount(money("ISK", 500)), 50_000);
    }
}
