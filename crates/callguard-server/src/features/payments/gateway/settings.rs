//! Which gateway the server charges through and its credentials, checked once at start-up.

use super::{AdyenGateway, Gateway, StripeGateway};
use crate::notify::email::is_loopback_name;
use callguard_core::Secret;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Stripe's API, where `payments.stripe_url` points by default.
pub const STRIPE_BASE_URL: &str = "https://api.stripe.com";

/// How long one request to the gateway may take before the outcome counts as unknown and the
/// charge is retried with the same idempotency key.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The gateway that card payments go through; none configured means payments are off.
#[derive(Debug, Clone)]
pub enum GatewaySettings {
    Stripe(StripeSettings),
    Adyen(AdyenSettings),
}

impl GatewaySettings {
    /// Where the gateway sends a card holder for 3-D Secure after the payment page's form was
    /// posted: the page's Content-Security-Policy lets its form lead there (`form-action`).
    /// Stripe's own API sends them to `hooks.stripe.com`; any other Stripe-wire server (the
    /// local test peer) serves the check itself. Adyen's redirects are not followed yet.
    #[must_use]
    pub fn authentication_origin(&self) -> Option<String> {
        match self {
            GatewaySettings::Stripe(s) => Some(
                if s.base_url.as_str().trim_end_matches('/') == STRIPE_BASE_URL {
                    "https://hooks.stripe.com".into()
                } else {
                    s.base_url.origin().ascii_serialization()
                },
            ),
            GatewaySettings::Adyen(_) => None,
        }
    }
}

#[derive(Clone)]
pub struct StripeSettings {
    /// [`STRIPE_BASE_URL`] in production; `http://` only for a server on this machine.
    pub base_url: url::Url,
    /// `sk_live_…` or `sk_test_…`.
    pub secret_key: Secret<String>,
    pub timeout: Duration,
}

impl fmt::Debug for StripeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeSettings")
            .field("base_url", &self.base_url.as_str())
            .field("secret_key", &self.secret_key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Clone)]
pub struct AdyenSettings {
    /// The Checkout API's base, e.g. `https://checkout-test.adyen.com` or the live
    /// `https://{prefix}-checkout-live.adyenpayments.com/checkout`.
    pub base_url: url::Url,
    pub api_key: Secret<String>,
    pub merchant_account: String,
    pub timeout: Duration,
}

impl fmt::Debug for AdyenSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdyenSettings")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key)
            .field("merchant_account", &self.merchant_account)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the gateway settings cannot be used; each names the key to fix, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewaySettingsError {
    #[error("`{0}` must be an https:// URL (http:// only for a server on this machine)")]
    Url(&'static str),
    #[error("`{0}` must be set when payments.gateway is {1}")]
    Missing(&'static str, &'static str),
    #[error("`payments.stripe_secret_key` must be a secret key starting sk_live_ or sk_test_ (a publishable pk_ key cannot charge)")]
    StripeKeyShape,
    #[error("`payments.timeout_seconds` must be between 1 and 120")]
    Timeout,
    #[error("the HTTP client for the payment gateway could not be built")]
    HttpClient,
}

/// The gateway client for `settings`, or `None` when payments are off.
pub fn build(
    settings: Option<&GatewaySettings>,
) -> Result<Option<Arc<dyn Gateway>>, GatewaySettingsError> {
    Ok(match settings {
        None => None,
        Some(GatewaySettings::Stripe(s)) => Some(Arc::new(StripeGateway::new(s)?)),
        Some(GatewaySettings::Adyen(s)) => Some(Arc::new(AdyenGateway::new(s)?)),
    })
}

/// The base URL without query or fragment, checked for https (or http on this machine).
pub(super) fn checked_base(
    url: &url::Url,
    key: &'static str,
) -> Result<url::Url, GatewaySettingsError> {
    let on_this_machine = url.host_str().is_some_and(is_loopback_name);
    match url.scheme() {
        "https" if url.host_str().is_some() => {}
        "http" if on_this_machine => {}
        _ => return Err(GatewaySettingsError::Url(key)),
    }
    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    if base.cannot_be_a_base() {
        return Err(GatewaySettingsError::Url(key));
    }
    Ok(base)
}

/// `base` with `segments` appended to its path.
pub(super) fn endpoint(base: &url::Url, segments: &[&str]) -> url::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

pub(super) fn http_client(timeout: Duration) -> Result<reqwest::Client, GatewaySettingsError> {
    if timeout.is_zero() || timeout > Duration::from_secs(120) {
        return Err(GatewaySettingsError::Timeout);
    }
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("callguard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| GatewaySettingsError::HttpClient)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripe(url: &str, key: &str) -> GatewaySettings {
        GatewaySettings::Stripe(StripeSettings {
            base_url: url::Url::parse(url).unwrap(),
            secret_key: Secret::new(key.to_owned()),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    #[test]
    fn no_gateway_means_payments_are_off() {
        assert!(build(None).unwrap().is_none());
    }

    #[test]
    fn card_data_crosses_the_network_only_over_https() {
        let err = |url: &str| build(Some(&stripe(url, "sk_test_x"))).err();
        assert_eq!(
            err("http://api.stripe.com"),
            Some(GatewaySettingsError::Url("payments.stripe_url"))
        );
        assert_eq!(
            err("ftp://127.0.0.1"),
            Some(GatewaySettingsError::Url("payments.stripe_url"))
        );
        assert!(err("http://127.0.0.1:9999").is_none());
        assert!(err("https://api.stripe.com").is_none());
    }

    #[test]
    fn a_publishable_key_is_refused_and_debug_shows_no_secret() {
        let refused = build(Some(&stripe("https://api.stripe.com", "pk_test_abc"))).err();
        assert_eq!(refused, Some(GatewaySettingsError::StripeKeyShape));
        let shown = format!("{:?}", stripe("https://api.stripe.com", "sk_test_hidden"));
        assert!(!shown.contains("hidden"), "{shown}");
        let adyen = AdyenSettings {
            base_url: url::Url::parse("https://checkout-test.adyen.com").unwrap(),
            api_key: Secret::new("AQE-hidden".into()),
            merchant_account: "Bank".into(),
            timeout: DEFAULT_TIMEOUT,
        };
        assert!(!format!("{adyen:?}").contains("hidden"));
    }

    #[test]
    fn endpoints_keep_a_base_path() {
        let base = url::Url::parse("https://pal.example/checkout/").unwrap();
        assert_eq!(
            endpoint(&base, &["v71", "payments"]).as_str(),
            "https://pal.example/checkout/v71/payments"
        );
        let root = url::Url::parse("https://api.stripe.com").unwrap();
        assert_eq!(
            endpoint(&root, &["v1", "refunds"]).as_str(),
            "https://api.stripe.com/v1/refunds"
        );
    }
}
