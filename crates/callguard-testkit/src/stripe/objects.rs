//! The peer's objects (PaymentMethods, PaymentIntents, refunds), their JSON in Stripe's shape,
//! and the endpoints that create and read them.

use super::cards::{self, Behaviour};
use super::{now, this_year, Answer, Params, Peer};
use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

#[derive(Default)]
pub(crate) struct Ledger {
    next_id: u64,
    pub(crate) requests: usize,
    pub(crate) charges: usize,
    pub(crate) charges_by_key: HashMap<String, usize>,
    pub(crate) saved: HashMap<String, Saved>,
    methods: HashMap<String, PaymentMethod>,
    pub(crate) intents: HashMap<String, Intent>,
}

pub(crate) struct Saved {
    pub(crate) signature: [u8; 32],
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

/// A tokenised card: what Stripe shows of it, and how it behaves; never its number.
pub(crate) struct PaymentMethod {
    id: String,
    brand: &'static str,
    last4: String,
    exp_month: u32,
    exp_year: u32,
    fingerprint: String,
    postal_code: Option<String>,
    behaviour: Behaviour,
    created: i64,
}

pub(crate) struct Intent {
    id: String,
    amount: i64,
    currency: String,
    status: &'static str,
    payment_method: String,
    description: Option<String>,
    metadata: Map<String, Value>,
    moto: bool,
    return_url: Option<url::Url>,
    latest_charge: Option<String>,
    last_payment_error: Option<Value>,
    pub(crate) refunded: i64,
    created: i64,
}

/// The parameters an endpoint takes: exact names, or prefixes ending in `[`.
const PM_PARAMS: &[&str] = &[
    "type",
    "card[number]",
    "card[exp_month]",
    "card[exp_year]",
    "card[cvc]",
    "billing_details[",
    "metadata[",
    "expand[",
];
const PI_PARAMS: &[&str] = &[
    "amount",
    "currency",
    "payment_method",
    "confirm",
    "payment_method_types[",
    "payment_method_options[card][moto]",
    "return_url",
    "description",
    "metadata[",
    "capture_method",
    "expand[",
];
const REFUND_PARAMS: &[&str] = &["payment_intent", "amount", "reason", "metadata[", "expand["];
const GET_PARAMS: &[&str] = &["expand["];

fn get<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn unknown_param(params: &Params, allowed: &[&str]) -> Option<Answer> {
    let unknown = params.iter().map(|(k, _)| k).find(|k| {
        !allowed
            .iter()
            .any(|a| k.as_str() == *a || (a.ends_with('[') && k.starts_with(a)))
    })?;
    Some(Answer::invalid(
        StatusCode::BAD_REQUEST,
        Some("parameter_unknown"),
        Some(unknown),
        &format!("Received unknown parameter: {unknown}"),
    ))
}

fn missing(param: &str) -> Answer {
    Answer::invalid(
        StatusCode::BAD_REQUEST,
        Some("parameter_missing"),
        Some(param),
        &format!("Missing required param: {param}."),
    )
}

fn no_such(kind: &str, id: &str, param: Option<&str>) -> Answer {
    Answer::invalid(
        StatusCode::NOT_FOUND,
        Some("resource_missing"),
        param,
        &format!("No such {kind}: '{id}'"),
    )
}

impl Ledger {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_3Peer{:020}", self.next_id)
    }

    pub(crate) fn route(
        &mut self,
        peer: &Peer,
        method: &Method,
        path: &str,
        params: &Params,
        key: Option<&str>,
    ) -> Answer {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let allowed = |list| unknown_param(params, list);
        match (method.as_str(), segments.as_slice()) {
            ("POST", ["v1", "payment_methods"]) => allowed(PM_PARAMS)
                .unwrap_or_else(|| self.create_payment_method(peer, params)),
            ("GET", ["v1", "payment_methods", id]) => allowed(GET_PARAMS).unwrap_or_else(|| {
                self.methods
                    .get(*id)
                    .map_or_else(|| no_such("PaymentMethod", id, None), |m| Answer::ok(m.json()))
            }),
            ("POST", ["v1", "payment_intents"]) => allowed(PI_PARAMS)
                .unwrap_or_else(|| self.create_intent(peer, params, key)),
            ("GET", ["v1", "payment_intents", id]) => allowed(GET_PARAMS).unwrap_or_else(|| {
                self.intents
                    .get(*id)
                    .map_or_else(|| no_such("payment_intent", id, None), |i| Answer::ok(i.json(peer)))
            }),
            ("POST", ["v1", "refunds"]) => {
                allowed(REFUND_PARAMS).unwrap_or_else(|| self.refund(params))
            }
            _ => Answer::invalid(
                StatusCode::NOT_FOUND,
                None,
                None,
                &format!(
                    "Unrecognized request URL ({}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
                    method.as_str()
                ),
            ),
        }
    }

    fn create_payment_method(&mut self, peer: &Peer, params: &Params) -> Answer {
        match get(params, "type") {
            Some("card") => {}
            Some(_) => {
                return Answer::invalid(
                    StatusCode::BAD_REQUEST,
                    Some("parameter_invalid_empty"),
                    Some("type"),
                    "This test peer tokenises cards only: type must be card.",
                )
            }
            None => return missing("type"),
        }
        let Some(number) = get(params, "card[number]") else {
            return missing("card[number]");
        };
        let exp_month = get(params, "card[exp_month]").unwrap_or("");
        let exp_year = get(params, "card[exp_year]").unwrap_or("");
        if exp_month.is_empty() {
            return missing("card[exp_month]");
        }
        if exp_year.is_empty() {
            return missing("card[exp_year]");
        }
        let cvc = get(params, "card[cvc]");
        if let Err((code, param)) = cards::check(number, exp_month, exp_year, cvc, this_year()) {
            return card_error(code, None, param, None);
        }
        let id = self.id("pm");
        let year: u32 = exp_year.parse().unwrap_or(0);
        let method = PaymentMethod {
            id: id.clone(),
            brand: cards::brand(number),
            last4: number[number.len() - 4..].to_owned(),
            exp_month: exp_month.parse().unwrap_or(0),
            exp_year: if year < 100 { year + 2000 } else { year },
            fingerprint: cards::fingerprint(&peer.salt, number),
            postal_code: get(params, "billing_details[address][postal_code]").map(str::to_owned),
            behaviour: cards::behaviour(number),
            created: now(),
        };
        let body = method.json();
        self.methods.insert(id, method);
        Answer::ok(body)
    }

    fn create_intent(&mut self, peer: &Peer, params: &Params, key: Option<&str>) -> Answer {
        let p = match IntentParams::read(params) {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let Some(behaviour) = self.methods.get(&p.payment_method).map(|m| m.behaviour) else {
            return no_such("PaymentMethod", &p.payment_method, Some("payment_method"));
        };
        let (confirm, moto, pm_id) = (p.confirm, p.moto, p.payment_method.clone());
        let metadata: Map<String, Value> = params
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("metadata[")?.strip_suffix(']')?;
                Some((name.to_owned(), Value::String(v.clone())))
            })
            .collect();
        let id = self.id("pi");
        let mut intent = Intent {
            id: id.clone(),
            amount: p.amount,
            currency: p.currency,
            status: "requires_confirmation",
            payment_method: pm_id.clone(),
            description: get(params, "description").map(str::to_owned),
            metadata,
            moto,
            return_url: p.return_url,
            latest_charge: None,
            last_payment_error: None,
            refunded: 0,
            created: now(),
        };
        if !confirm {
            let body = intent.json(peer);
            self.intents.insert(id, intent);
            return Answer::ok(body);
        }
        self.charges += 1;
        if let Some(key) = key {
            *self.charges_by_key.entry(key.to_owned()).or_default() += 1;
        }
        let answer = match behaviour {
            Behaviour::Succeeds => self.succeed(&mut intent, peer),
            Behaviour::RequiresAuthentication if moto => self.succeed(&mut intent, peer),
            Behaviour::RequiresAuthentication => {
                intent.status = "requires_action";
                Answer::ok(intent.json(peer))
            }
            Behaviour::Declines { code, decline_code } => {
                let charge = self.id("ch");
                let mut error = card_error_object(code, decline_code, None, Some(&charge));
                error["payment_method"] = self
                    .methods
                    .get(&pm_id)
                    .map_or(Value::Null, PaymentMethod::json);
                intent.status = "requires_payment_method";
                intent.latest_charge = Some(charge);
                intent.last_payment_error = Some(error.clone());
                error["payment_intent"] = intent.json(peer);
                Answer::error(StatusCode::PAYMENT_REQUIRED, error, true)
            }
        };
        self.intents.insert(id, intent);
        answer
    }

    fn succeed(&mut self, intent: &mut Intent, peer: &Peer) -> Answer {
        intent.status = "succeeded";
        intent.latest_charge = Some(self.id("ch"));
        Answer::ok(intent.json(peer))
    }

    fn refund(&mut self, params: &Params) -> Answer {
        let Some(pi_id) = get(params, "payment_intent") else {
            return missing("payment_intent");
        };
        let id = self.id("re");
        let Some(intent) = self.intents.get_mut(pi_id) else {
            return no_such("payment_intent", pi_id, Some("payment_intent"));
        };
        if intent.status != "succeeded" {
            return Answer::invalid(
                StatusCode::BAD_REQUEST,
                Some("charge_not_refundable"),
                Some("payment_intent"),
                &format!(
                    "This PaymentIntent ({pi_id}) does not have a successful charge to refund."
                ),
            );
        }
        let left = intent.amount - intent.refunded;
        if left == 0 {
            return Answer::invalid(
                StatusCode::BAD_REQUEST,
                Some("charge_already_refunded"),
                None,
                "Charge has already been refunded.",
            );
        }
        let amount = match get(params, "amount").map(str::parse::<i64>) {
            None => left,
            Some(Ok(a)) if a >= 1 && a <= left => a,
            Some(Ok(a)) if a > left => {
                return Answer::invalid(
                    StatusCode::BAD_REQUEST,
                    Some("amount_too_large"),
                    Some("amount"),
                    &format!(
                        "Refund amount ({a}) is greater than unrefunded amount on charge ({left})"
                    ),
                )
            }
            Some(_) => {
                return Answer::invalid(
                    StatusCode::BAD_REQUEST,
                    Some("parameter_invalid_integer"),
                    Some("amount"),
                    "Invalid positive integer",
                )
            }
        };
        intent.refunded += amount;
        Answer::ok(json!({
            "id": id,
            "object": "refund",
            "amount": amount,
            "charge": intent.latest_charge,
            "created": now(),
            "currency": intent.currency,
            "metadata": {},
            "payment_intent": intent.id,
            "reason": get(params, "reason"),
            "status": "succeeded",
        }))
    }

    /// The card holder passed or failed the bank's check: `Some(return_url)` when the payment
    /// was waiting for it.
    pub(crate) fn finish_3ds(&mut self, id: &str, passed: bool) -> Option<Option<url::Url>> {
        let charge = self.id("ch");
        let intent = self
            .intents
            .get_mut(id)
            .filter(|i| i.status == "requires_action")?;
        if passed {
            intent.status = "succeeded";
            intent.latest_charge = Some(charge);
        } else {
            intent.status = "requires_payment_method";
            let mut error =
                card_error_object("payment_intent_authentication_failure", None, None, None);
            error["message"] = json!("The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.");
            intent.last_payment_error = Some(error);
        }
        Some(intent.return_url.clone())
    }
}

/// The parameters of a PaymentIntent, checked as Stripe checks them.
struct IntentParams {
    amount: i64,
    currency: String,
    payment_method: String,
    confirm: bool,
    moto: bool,
    return_url: Option<url::Url>,
}

impl IntentParams {
    fn read(params: &Params) -> Result<Self, Answer> {
        let bad = |code, param, message| {
            Answer::invalid(StatusCode::BAD_REQUEST, code, Some(param), message)
        };
        let amount =
            match get(params, "amount").map(str::parse::<i64>) {
                None => return Err(missing("amount")),
                Some(Ok(a)) if (1..=99_999_999).contains(&a) => a,
                Some(_) => return Err(bad(
                    Some("parameter_invalid_integer"),
                    "amount",
                    "Invalid integer: amount must be a positive whole number of at most 99999999.",
                )),
            };
        let currency = match get(params, "currency") {
            Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()) => c.to_owned(),
            Some(_) => {
                return Err(bad(
                    None,
                    "currency",
                    "Invalid currency: must be a three-letter ISO code in lowercase.",
                ))
            }
            None => return Err(missing("currency")),
        };
        let payment_method = get(params, "payment_method")
            .ok_or_else(|| missing("payment_method"))?
            .to_owned();
        let confirm = get(params, "confirm") == Some("true");
        let return_url = match get(params, "return_url").map(url::Url::parse) {
            None => None,
            Some(Ok(u)) => Some(u),
            Some(Err(_)) => return Err(bad(Some("url_invalid"), "return_url", "Not a valid URL")),
        };
        let card_only = params
            .iter()
            .any(|(k, v)| k.starts_with("payment_method_types[") && v == "card");
        if confirm && return_url.is_none() && !card_only {
            return Err(Answer::invalid(
                StatusCode::BAD_REQUEST,
                None,
                None,
                "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't want to accept redirect-based payment methods, set `payment_method_types` to card.",
            ));
        }
        Ok(Self {
            amount,
            currency,
            payment_method,
            confirm,
            moto: get(params, "payment_method_options[card][moto]") == Some("true"),
            return_url,
        })
    }
}

fn card_error_object(
    code: &str,
    decline_code: Option<&str>,
    param: Option<&str>,
    charge: Option<&str>,
) -> Value {
    let message = match decline_code.unwrap_or(code) {
        "insufficient_funds" => "Your card has insufficient funds.",
        "expired_card" => "Your card has expired.",
        "incorrect_cvc" => "Your card's security code is incorrect.",
        "processing_error" => {
            "An error occurred while processing your card. Try again in a little bit."
        }
        "incorrect_number" => "Your card number is incorrect.",
        "invalid_number" => "Your card number is invalid.",
        "invalid_cvc" => "Your card's security code is invalid.",
        "invalid_expiry_month" => "Your card's expiration month is invalid.",
        "invalid_expiry_year" => "Your card's expiration year is invalid.",
        _ => "Your card was declined.",
    };
    json!({
        "type": "card_error",
        "code": code,
        "decline_code": decline_code,
        "param": param,
        "charge": charge,
        "message": message,
        "doc_url": format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")),
    })
}

fn card_error(code: &str, decline_code: Option<&str>, param: &str, charge: Option<&str>) -> Answer {
    Answer::error(
        StatusCode::PAYMENT_REQUIRED,
        card_error_object(code, decline_code, Some(param), charge),
        true,
    )
}

impl PaymentMethod {
    pub(crate) fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "payment_method",
            "billing_details": {
                "address": {
                    "city": null, "country": null, "line1": null, "line2": null,
                    "postal_code": self.postal_code, "state": null,
                },
                "email": null, "name": null, "phone": null,
            },
            "card": {
                "brand": self.brand,
                "checks": {
                    "address_line1_check": null,
                    "address_postal_code_check": self.postal_code.as_ref().map(|_| "unchecked"),
                    "cvc_check": "unchecked",
                },
                "country": "US",
                "display_brand": self.brand,
                "exp_month": self.exp_month,
                "exp_year": self.exp_year,
                "fingerprint": self.fingerprint,
                "funding": "credit",
                "last4": self.last4,
                "networks": { "available": [self.brand], "preferred": null },
                "three_d_secure_usage": { "supported": true },
                "wallet": null,
            },
            "created": self.created,
            "customer": null,
            "livemode": false,
            "metadata": {},
            "type": "card",
        })
    }
}

impl Intent {
    pub(crate) fn json(&self, peer: &Peer) -> Value {
        let next_action = (self.status == "requires_action").then(|| match &self.return_url {
            Some(back) => json!({
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": format!("{}/3ds/{}", peer.origin, self.id),
                    "return_url": back.as_str(),
                },
            }),
            None => json!({ "type": "use_stripe_sdk", "use_stripe_sdk": { "type": "three_d_secure_redirect" } }),
        });
        json!({
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_received": if self.status == "succeeded" { self.amount } else { 0 },
            "capture_method": "automatic",
            "client_secret": format!("{}_secret_peer", self.id),
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "description": self.description,
            "last_payment_error": self.last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": false,
            "metadata": self.metadata,
            "next_action": next_action,
            "payment_method": self.payment_method,
            "payment_method_options": { "card": { "moto": self.moto.then_some(true), "request_three_d_secure": "automatic" } },
            "payment_method_types": ["card"],
            "status": self.status,
        })
    }
}
