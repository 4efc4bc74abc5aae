//! Adyen's Checkout API v71: JSON bodies, `X-API-Key`, an `Idempotency-Key` per request. A card
//! is sent as raw `scheme` fields (for a merchant account allowed to send them) and a refusal
//! comes back as HTTP 200 with `resultCode: Refused` and a `refusalReasonCode`, not as an HTTP
//! error. Of an error body only `errorCode` and `errorType` are read.
//!
//! Partial: the card's postal code is not sent (Adyen's `billingAddress` needs the whole
//! address), and [`Gateway::charge_status`] is not available: Adyen reports a redirected
//! charge's outcome through `/payments/details` with the shopper's `redirectResult` and by
//! webhook, neither of which this client handles yet.

use super::form::{push_json_string, WipedBuffer};
use super::settings::{checked_base, endpoint, http_client};
use super::stripe::{no_answer, safe_code};
use super::{
    AdyenSettings, ChargeOutcome, ChargeRequest, DeclineReason, Gateway, GatewayError,
    GatewaySettingsError, RefundOutcome, RefundRequest,
};
use async_trait::async_trait;
use callguard_core::Secret;
use serde::Deserialize;

pub const API_VERSION: &str = "v71";

pub struct AdyenGateway {
    http: reqwest::Client,
    base: url::Url,
    api_key: Secret<String>,
    merchant_account: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentResponse {
    result_code: Option<String>,
    psp_reference: Option<String>,
    refusal_reason_code: Option<String>,
    action: Option<Action>,
}

#[derive(Deserialize)]
struct Action {
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundResponse {
    psp_reference: Option<String>,
    status: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdyenError {
    error_code: Option<String>,
    error_type: Option<String>,
}

impl AdyenGateway {
    pub fn new(s: &AdyenSettings) -> Result<Self, GatewaySettingsError> {
        let key = s.api_key.expose().trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(GatewaySettingsError::Missing(
                "payments.adyen_api_key",
                "adyen",
            ));
        }
        let merchant_account = s.merchant_account.trim();
        if merchant_account.is_empty() {
            return Err(GatewaySettingsError::Missing(
                "payments.adyen_merchant_account",
                "adyen",
            ));
        }
        Ok(Self {
            http: http_client(s.timeout)?,
            base: checked_base(&s.base_url, "payments.adyen_url")?,
            api_key: Secret::new(key.to_owned()),
            merchant_account: merchant_account.to_owned(),
        })
    }

    async fn post(
        &self,
        path: &[&str],
        idempotency_key: &str,
        body: WipedBuffer,
    ) -> Result<bytes::Bytes, GatewayError> {
        if idempotency_key.is_empty() || idempotency_key.len() > 64 {
            return Err(GatewayError::Rejected(
                "idempotency key must be 1 to 64 characters for Adyen".into(),
            ));
        }
        let response = self
            .http
            .post(endpoint(&self.base, path))
            .header("X-API-Key", self.api_key.expose())
            .header("Idempotency-Key", idempotency_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.into_body())
            .send()
            .await
            .map_err(|e| no_answer("adyen", &e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| no_answer("adyen", &e))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let error: AdyenError = serde_json::from_slice(&body).unwrap_or_default();
        let code = error.error_code.as_deref().map(safe_code);
        tracing::warn!(
            status,
            error_code = code,
            error_type = error.error_type.as_deref().map(safe_code),
            "the payment gateway refused a request"
        );
        Err(match (status, code.as_deref()) {
            (401 | 403, _) => GatewayError::Unauthorised,
            (429, _) => GatewayError::RateLimited,
            // A request with this idempotency key is still being processed.
            (_, Some("704")) => GatewayError::Unreachable,
            (s, _) if s >= 500 => GatewayError::Rejected(format!("HTTP {s}")),
            (s, Some(c)) => GatewayError::Rejected(format!("HTTP {s}, errorCode {c}")),
            (s, None) => GatewayError::Rejected(format!("HTTP {s}")),
        })
    }

    /// The `/payments` body, written straight into a wiped buffer.
    fn payment_body(&self, request: &ChargeRequest<'_>) -> WipedBuffer {
        let card = request.card;
        let mut b = WipedBuffer::with_capacity(1024);
        b.push(b"{\"amount\":{\"currency\":");
        push_json_string(&mut b, request.amount.currency().code());
        b.push(format!(",\"value\":{}}}", request.amount.minor()).as_bytes());
        b.push(b",\"merchantAccount\":");
        push_json_string(&mut b, &self.merchant_account);
        b.push(b",\"reference\":");
        push_json_string(&mut b, request.reference);
        b.push(b",\"shopperInteraction\":");
        push_json_string(&mut b, if request.moto { "Moto" } else { "Ecommerce" });
        if let (false, Some(url)) = (request.moto, request.return_url) {
            b.push(b",\"returnUrl\":");
            push_json_string(&mut b, url.as_str());
        }
        b.push(b",\"metadata\":{\"description\":");
        let description: String = request.description.chars().take(80).collect();
        push_json_string(&mut b, &description);
        b.push(b"},\"paymentMethod\":{\"type\":\"scheme\",\"number\":");
        push_json_string(&mut b, card.number.expose_digits());
        b.push(b",\"expiryMonth\":");
        push_json_string(&mut b, &format!("{:02}", card.expiry.month));
        b.push(b",\"expiryYear\":");
        push_json_string(&mut b, &card.expiry.year.to_string());
        b.push(b",\"cvc\":");
        push_json_string(&mut b, card.cvc.expose());
        b.push(b"}}");
        b
    }
}

#[async_trait]
impl Gateway for AdyenGateway {
    fn name(&self) -> &'static str {
        "adyen"
    }

    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, GatewayError> {
        let body = self
            .post(
                &[API_VERSION, "payments"],
                request.idempotency_key,
                self.payment_body(request),
            )
            .await?;
        let answer: PaymentResponse =
            serde_json::from_slice(&body).map_err(|_| GatewayError::Protocol)?;
        let reference = answer
            .psp_reference
            .as_deref()
            .map(safe_code)
            .filter(|r| !r.is_empty());
        match answer.result_code.as_deref().unwrap_or("") {
            "Authorised" => {
                let reference = reference.ok_or(GatewayError::Protocol)?;
                Ok(ChargeOutcome::Authorised {
                    token: reference.clone(),
                    reference,
                    card: request.card.summary(),
                })
            }
            "Refused" => Ok(ChargeOutcome::Declined {
                reason: refusal_reason(answer.refusal_reason_code.as_deref()),
                reference,
            }),
            "Cancelled" => Ok(ChargeOutcome::Declined {
                reason: DeclineReason::Generic,
                reference,
            }),
            "RedirectShopper" | "IdentifyShopper" | "ChallengeShopper" => {
                let redirect_url = answer
                    .action
                    .and_then(|a| a.url)
                    .and_then(|u| url::Url::parse(&u).ok())
                    .filter(|u| matches!(u.scheme(), "https" | "http"))
                    .ok_or(GatewayError::Protocol)?;
                Ok(ChargeOutcome::RequiresAction {
                    reference: reference.unwrap_or_default(),
                    redirect_url,
                })
            }
            "Error" => Err(GatewayError::Rejected("resultCode Error".into())),
            _ => Err(GatewayError::Protocol),
        }
    }

    async fn charge_status(&self, _reference: &str) -> Result<ChargeOutcome, GatewayError> {
        Err(GatewayError::Rejected(
            "Adyen reports a redirected charge's outcome by webhook and /payments/details, which Callguard does not read yet".into(),
        ))
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<RefundOutcome, GatewayError> {
        let mut b = WipedBuffer::with_capacity(256);
        b.push(b"{\"amount\":{\"currency\":");
        push_json_string(&mut b, request.amount.currency().code());
        b.push(format!(",\"value\":{}}}", request.amount.minor()).as_bytes());
        b.push(b",\"merchantAccount\":");
        push_json_string(&mut b, &self.merchant_account);
        b.push(b"}");
        let path = [API_VERSION, "payments", request.charge_reference, "refunds"];
        let body = self.post(&path, request.idempotency_key, b).await?;
        let answer: RefundResponse =
            serde_json::from_slice(&body).map_err(|_| GatewayError::Protocol)?;
        if answer.status.as_deref() != Some("received") {
            return Err(GatewayError::Protocol);
        }
        let reference = answer
            .psp_reference
            .as_deref()
            .map(safe_code)
            .filter(|r| !r.is_empty())
            .ok_or(GatewayError::Protocol)?;
        Ok(RefundOutcome {
            reference,
            amount: request.amount,
        })
    }
}

/// Adyen's refusal reason codes, as published in its list of refusal reasons.
fn refusal_reason(code: Option<&str>) -> DeclineReason {
    match code.unwrap_or("") {
        "12" | "28" => DeclineReason::InsufficientFunds,
        "6" => DeclineReason::ExpiredCard,
        "24" => DeclineReason::IncorrectCvc,
        "8" => DeclineReason::IncorrectNumber,
        "4" | "9" => DeclineReason::ProcessingError,
        "5" | "14" | "20" | "22" | "31" => DeclineReason::Fraud,
        "11" | "38" | "42" => DeclineReason::AuthenticationFailed,
        _ => DeclineReason::Generic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_reason_codes_map_to_reasons() {
        for (code, reason) in [
            ("2", DeclineReason::Generic),
            ("12", DeclineReason::InsufficientFunds),
            ("6", DeclineReason::ExpiredCard),
            ("24", DeclineReason::IncorrectCvc),
            ("20", DeclineReason::Fraud),
            ("9", DeclineReason::ProcessingError),
        ] {
            assert_eq!(refusal_reason(Some(code)), reason, "{code}");
        }
        assert_eq!(refusal_reason(None), DeclineReason::Generic);
    }
}
