//! One-time codes by SMS through a provider speaking Twilio's Messages API.

use super::email::is_loopback_name;
use super::*;
use callguard_core::Secret;
use serde::Deserialize;

pub(crate) struct SmsSender {
    pub(crate) http: reqwest::Client,
    pub(crate) messages_url: url::Url,
    pub(crate) account_sid: String,
    pub(crate) auth_token: Secret<String>,
    pub(crate) from: String,
}

/// The part of Twilio's Message resource we read.
#[derive(Deserialize)]
pub(crate) struct TwilioMessage {
    pub(crate) sid: Option<String>,
}

/// The part of Twilio's error body we read: its numeric code, never its message, which may
/// quote the number.
#[derive(Deserialize)]
pub(crate) struct TwilioError {
    pub(crate) code: Option<u64>,
}

impl SmsSender {
    pub(crate) fn new(s: &SmsSettings) -> Result<Self, SettingsError> {
        let account_sid = s.account_sid.trim().to_owned();
        let from = s.from.trim().to_owned();
        if account_sid.is_empty() || from.is_empty() || s.auth_token.expose().is_empty() {
            return Err(SettingsError::SmsIncomplete);
        }
        let on_this_machine = s.base_url.host_str().is_some_and(is_loopback_name);
        match s.base_url.scheme() {
            "https" => {}
            "http" if on_this_machine => {}
            _ => return Err(SettingsError::SmsBaseUrl),
        }
        let mut messages_url = s.base_url.clone();
        messages_url.set_query(None);
        messages_url.set_fragment(None);
        messages_url
            .path_segments_mut()
            .map_err(|()| SettingsError::SmsBaseUrl)?
            .pop_if_empty()
            .extend(["2010-04-01", "Accounts", &account_sid, "Messages.json"]);
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("callguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| SettingsError::HttpClient)?;
        Ok(Self {
            http,
            messages_url,
            account_sid,
            auth_token: s.auth_token.clone(),
            from,
        })
    }

    pub(crate) async fn send(
        &self,
        to: &Secret<String>,
        text: &Secret<String>,
    ) -> Result<Delivery, NotifyError> {
        let form = [
            ("To", to.expose().trim()),
            ("From", self.from.as_str()),
            ("Body", text.expose().as_str()),
        ];
        let response = self
            .http
            .post(self.messages_url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                // The error's text carries the URL, and so the account id: log its kind only.
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connection"
                } else {
                    "request"
                };
                tracing::warn!(kind, "the SMS provider is unavailable");
                NotifyError::Unavailable
            })?;
        let status = response.status();
        if status.is_success() {
            let sid = response
                .json::<TwilioMessage>()
                .await
                .ok()
                .and_then(|m| m.sid)
                .filter(|sid| is_safe_id(sid));
            return match sid {
                Some(provider_id) => Ok(Delivery { provider_id }),
                None => {
                    tracing::warn!(
                        status = status.as_u16(),
                        "the SMS provider's answer has no usable message id"
                    );
                    Err(NotifyError::Unavailable)
                }
            };
        }
        let provider_code = response
            .json::<TwilioError>()
            .await
            .ok()
            .and_then(|e| e.code);
        tracing::warn!(
            status = status.as_u16(),
            provider_code,
            "the SMS provider did not accept the message"
        );
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Err(NotifyError::Unavailable)
        } else {
            Err(NotifyError::Rejected)
        }
    }
}

/// A provider id we are willing to log and store: short, letters and digits only.
pub(crate) fn is_safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use callguard_testkit::SmsApiSink;

    #[tokio::test]
    async fn a_texted_code_reaches_the_registered_phone_and_returns_the_message_sid() {
        let sink = SmsApiSink::start(SID, TOKEN).await;
        let n = notifier(None, Some(sms_settings(sink.base_url(), TOKEN)));
        let delivery = send_sms(&n).await.unwrap();

        let messages = sink.wait_for(1, WAIT).await;
        let m = &messages[0];
        assert_eq!(m.to, PHONE);
        assert_eq!(m.from, SENDING_NUMBER);
        assert_eq!(
            m.body,
            format!(
                "Your Example Bank verification code is {CODE}. It expires in 10 minutes. \
                 Read it only to an agent on a call you expect; we never ask for it otherwise."
            )
        );
        assert!(m.body.len() <= 160, "one SMS segment");
        assert_eq!(delivery.provider_id, m.sid);
        assert!(delivery.provider_id.starts_with("SM"));
    }

    #[tokio::test]
    async fn a_base_url_with_a_path_keeps_it() {
        // A provider reached through a proxy path still gets Twilio's resource path after it.
        let sink = SmsApiSink::start(SID, TOKEN).await;
        let n = notifier(None, Some(sms_settings(sink.base_url(), TOKEN)));
        assert!(n
            .sms
            .as_ref()
            .unwrap()
            .messages_url
            .path()
            .ends_with(&format!("/2010-04-01/Accounts/{SID}/Messages.json")));
        let proxied = SmsSender::new(&sms_settings(
            url::Url::parse("https://gateway.example/twilio/").unwrap(),
            TOKEN,
        ))
        .unwrap();
        assert_eq!(
            proxied.messages_url.as_str(),
            format!("https://gateway.example/twilio/2010-04-01/Accounts/{SID}/Messages.json")
        );
    }

    #[tokio::test]
    async fn a_wrong_auth_token_is_rejected() {
        let sink = SmsApiSink::start(SID, TOKEN).await;
        let n = notifier(None, Some(sms_settings(sink.base_url(), "wrong-token")));
        assert_eq!(send_sms(&n).await.unwrap_err(), NotifyError::Rejected);
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn a_failing_sms_provider_is_unavailable() {
        let sink = SmsApiSink::start(SID, TOKEN).await;
        let n = notifier(None, Some(sms_settings(sink.base_url(), TOKEN)));
        sink.fail_with(Some(500));
        assert_eq!(send_sms(&n).await.unwrap_err(), NotifyError::Unavailable);
        sink.fail_with(Some(429));
        assert_eq!(send_sms(&n).await.unwrap_err(), NotifyError::Unavailable);
        sink.fail_with(None);
        send_sms(&n).await.unwrap();
    }
}
