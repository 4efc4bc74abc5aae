//! Delivery of one-time verification codes (C4, level 2) to a customer's registered phone, by SMS
//! through Twilio's Programmable Messaging REST API, or e-mail, through an SMTP server.
//! The code, the recipient and the provider's credentials never reach a log line, an error or a
//! `Debug` output; what comes back is the provider's id for the message, which is safe to audit.

pub mod email;
pub mod sms;

use callguard_core::Secret;
use email::EmailSender;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sms::SmsSender;
use std::fmt;
use std::time::Duration;

/// How long one delivery may take, connection included, before the provider counts as
/// unavailable.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Twilio's API, the usual value of [`SmsSettings::base_url`].
pub const TWILIO_BASE_URL: &str = "https://api.twilio.com/";

/// Where a code goes: the customer's registered phone or e-mail address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Email,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Sms => "SMS",
            Channel::Email => "e-mail",
        })
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain TCP: only for a relay on this machine.
    None,
    /// Plain TCP upgraded with STARTTLS, which must succeed (usually port 587).
    StartTls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// The SMTP server that sends e-mail.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
    /// The sender address, e.g. `codes@bank.example`.
    pub from: String,
}

impl fmt::Debug for SmtpSettings {
    // The user name and the sender address are left out: they may be e-mail addresses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// The SMS provider: Twilio's Programmable Messaging API or one that answers like it.
#[derive(Clone)]
pub struct SmsSettings {
    /// [`TWILIO_BASE_URL`] in production.
    pub base_url: url::Url,
    pub account_sid: String,
    pub auth_token: Secret<String>,
    /// The sending number (E.164) or alphanumeric sender id.
    pub from: String,
}

impl fmt::Debug for SmsSettings {
    // The account id and the sending number are left out: one is half a credential, the other a
    // phone number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsSettings")
            .field("base_url", &self.base_url.as_str())
            .field("auth_token", &self.auth_token)
            .finish_non_exhaustive()
    }
}

/// Which channels can deliver codes, and the name messages are signed with.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub smtp: Option<SmtpSettings>,
    pub sms: Option<SmsSettings>,
    /// Names the sender in the message text and the e-mail's From, e.g. the bank's name.
    pub sender_name: String,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            smtp: None,
            sms: None,
            sender_name: "Callguard".into(),
        }
    }
}

/// Why the settings cannot be used. Messages name the setting, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the SMTP sender address is not an e-mail address")]
    SmtpFrom,
    #[error("the SMTP user name and password must be set together")]
    SmtpCredentialsIncomplete,
    #[error("SMTP credentials need tls or starttls unless the server is on this machine: they would cross the network in clear")]
    SmtpCredentialsInClear,
    #[error("the SMTP host is not usable as a TLS server name")]
    SmtpTls,
    #[error("the SMS provider's account id, auth token and sender must all be set")]
    SmsIncomplete,
    #[error(
        "the SMS provider's base URL must be an https URL (http only for a server on this machine)"
    )]
    SmsBaseUrl,
    #[error("the HTTP client for the SMS provider could not be set up")]
    HttpClient,
}

/// Why a code was not delivered. Messages name no code, number, address or credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("{0} delivery is not configured")]
    NotConfigured(Channel),
    /// The provider or the recipient's address refused the message: sending it again will not
    /// help (bad credentials, invalid recipient, message refused).
    #[error("the provider refused the message")]
    Rejected,
    /// The provider could not be reached or failed for now: another channel or a later attempt
    /// may work.
    #[error("the provider is unavailable")]
    Unavailable,
}

/// A message the provider has accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's id for the message: the e-mail's Message-ID, or the Twilio Message SID.
    /// Safe to log and audit.
    pub provider_id: String,
}

/// Sends one-time codes over the configured channels.
pub struct Notifier {
    pub(crate) sender_name: String,
    pub(crate) email: Option<EmailSender>,
    pub(crate) sms: Option<SmsSender>,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("email", &self.email.is_some())
            .field("sms", &self.sms.is_some())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Checks the settings and prepares the clients; nothing is contacted yet.
    pub fn new(settings: &NotifySettings) -> Result<Self, SettingsError> {
        let sender_name = settings.sender_name.trim().to_owned();
        let email = settings
            .smtp
            .as_ref()
            .map(|s| EmailSender::new(s, &sender_name))
            .transpose()?;
        let sms = settings.sms.as_ref().map(SmsSender::new).transpose()?;
        Ok(Self {
            sender_name,
            email,
            sms,
        })
    }

    /// Whether codes can be sent over `channel`.
    pub fn can_send(&self, channel: Channel) -> bool {
        match channel {
            Channel::Sms => self.sms.is_some(),
            Channel::Email => self.email.is_some(),
        }
    }

    /// Sends `code` to `to` (an E.164 number for SMS, an address for e-mail). Success means the
    /// provider accepted the message, not that it reached the phone or mailbox.
    pub async fn send_code(
        &self,
        channel: Channel,
        to: &Secret<String>,
        code: &Secret<String>,
        expires_in_minutes: u32,
    ) -> Result<Delivery, NotifyError> {
        let result = match channel {
            Channel::Email => match &self.email {
                Some(email) => {
                    let text = self.message_text(code, expires_in_minutes, "\r\n");
                    email.send(to, &self.subject(), text).await
                }
                None => Err(NotifyError::NotConfigured(channel)),
            },
            Channel::Sms => match &self.sms {
                Some(sms) => {
                    let text = self.message_text(code, expires_in_minutes, " ");
                    sms.send(to, &text).await
                }
                None => Err(NotifyError::NotConfigured(channel)),
            },
        };
        match &result {
            Ok(d) => {
                tracing::info!(%channel, provider_id = %d.provider_id, "verification code handed to the provider")
            }
            Err(e) => tracing::warn!(%channel, error = %e, "verification code not sent"),
        }
        result
    }

    /// Sends a payment link: the message holds only the merchant's name, the amount and the
    /// link (a secret: whoever holds it can pay), nothing about the customer.
    pub async fn send_payment_link(
        &self,
        channel: Channel,
        to: &Secret<String>,
        merchant: &str,
        amount: &str,
        link: &Secret<String>,
        expires_in_minutes: i64,
    ) -> Result<Delivery, NotifyError> {
        let text = Secret::new(format!(
            "{merchant} asks you to pay {amount}. Pay securely here: {} (the link works once and expires in {expires_in_minutes} minutes).",
            link.expose()
        ));
        let result = match channel {
            Channel::Email => match &self.email {
                Some(email) => {
                    email
                        .send(to, &format!("Your payment to {merchant}"), text)
                        .await
                }
                None => Err(NotifyError::NotConfigured(channel)),
            },
            Channel::Sms => match &self.sms {
                Some(sms) => sms.send(to, &text).await,
                None => Err(NotifyError::NotConfigured(channel)),
            },
        };
        match &result {
            Ok(d) => {
                tracing::info!(%channel, provider_id = %d.provider_id, "payment link handed to the provider")
            }
            Err(e) => tracing::warn!(%channel, error = %e, "payment link not sent"),
        }
        result
    }

    pub(crate) fn subject(&self) -> String {
        // The code stays out of the subject: subjects show on locked screens and in mail logs.
        format!("Your {} verification code", self.sender_name)
    }

    /// The text of the message; `break_` separates its sentences into lines (e-mail) or not
    /// (SMS, where one line keeps it short).
    pub(crate) fn message_text(
        &self,
        code: &Secret<String>,
        expires_in_minutes: u32,
        break_: &str,
    ) -> Secret<String> {
        let minutes = if expires_in_minutes == 1 {
            "1 minute".to_owned()
        } else {
            format!("{expires_in_minutes} minutes")
        };
        let paragraph = if break_ == " " { " " } else { "\r\n\r\n" };
        Secret::new(format!(
            "Your {} verification code is {}.{break_}It expires in {minutes}.{paragraph}\
             Read it only to an agent on a call you expect;{break_}we never ask for it otherwise.",
            self.sender_name,
            code.expose(),
        ))
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Settings and senders pointed at the local SMTP and SMS test servers.
    use super::*;
    use callguard_testkit::SmtpSink;

    pub(super) const CODE: &str = "482913";
    pub(super) const PHONE: &str = "+48601234567";
    pub(super) const ADDRESS: &str = "ada.lovelace@example.com";
    pub(super) const SENDER: &str = "codes@bank.example";
    pub(super) const SENDING_NUMBER: &str = "+15005550006";
    pub(super) const SID: &str = "AC0123456789abcdef0123456789abcdef";
    pub(super) const TOKEN: &str = "twilio-auth-token-for-tests";
    pub(super) const WAIT: Duration = Duration::from_secs(5);

    pub(super) fn secret(s: &str) -> Secret<String> {
        Secret::new(s.to_owned())
    }

    pub(super) fn smtp_settings(sink: &SmtpSink) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: sink.addr().port(),
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: SENDER.into(),
        }
    }

    pub(super) fn sms_settings(base_url: url::Url, token: &str) -> SmsSettings {
        SmsSettings {
            base_url,
            account_sid: SID.into(),
            auth_token: secret(token),
            from: SENDING_NUMBER.into(),
        }
    }

    pub(super) fn notifier(smtp: Option<SmtpSettings>, sms: Option<SmsSettings>) -> Notifier {
        let settings = NotifySettings {
            smtp,
            sms,
            sender_name: "Example Bank".into(),
        };
        Notifier::new(&settings).unwrap()
    }

    /// A port on this machine that nothing listens on.
    pub(super) async fn closed_port() -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }

    pub(super) fn assert_tells_nothing(text: &str) {
        for value in [
            CODE,
            PHONE,
            ADDRESS,
            SENDER,
            SENDING_NUMBER,
            SID,
            TOKEN,
            "mailer-pw",
        ] {
            assert!(!text.contains(value), "{text:?} contains {value:?}");
        }
    }

    pub(super) async fn send_email(n: &Notifier) -> Result<Delivery, NotifyError> {
        n.send_code(Channel::Email, &secret(ADDRESS), &secret(CODE), 10)
            .await
    }

    pub(super) async fn send_sms(n: &Notifier) -> Result<Delivery, NotifyError> {
        n.send_code(Channel::Sms, &secret(PHONE), &secret(CODE), 10)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use callguard_testkit::{SmsApiSink, SmtpSink};

    #[tokio::test]
    async fn unreachable_providers_are_unavailable() {
        let port = closed_port().await;
        let smtp = SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: SENDER.into(),
        };
        let base = url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let n = notifier(Some(smtp), Some(sms_settings(base, TOKEN)));
        assert_eq!(send_email(&n).await.unwrap_err(), NotifyError::Unavailable);
        assert_eq!(send_sms(&n).await.unwrap_err(), NotifyError::Unavailable);
    }

    #[tokio::test]
    async fn a_channel_that_is_not_configured_says_so() {
        let n = Notifier::new(&NotifySettings::default()).unwrap();
        assert!(!n.can_send(Channel::Sms) && !n.can_send(Channel::Email));
        assert_eq!(
            send_sms(&n).await.unwrap_err(),
            NotifyError::NotConfigured(Channel::Sms)
        );
        assert_eq!(
            send_email(&n).await.unwrap_err(),
            NotifyError::NotConfigured(Channel::Email)
        );
    }

    #[tokio::test]
    async fn errors_and_debug_output_name_no_code_number_address_or_credential() {
        let smtp_sink = SmtpSink::start().await;
        let sms_sink = SmsApiSink::start(SID, TOKEN).await;
        let mut errors = Vec::new();

        let wrong_token = notifier(None, Some(sms_settings(sms_sink.base_url(), "wrong")));
        errors.push(send_sms(&wrong_token).await.unwrap_err());
        sms_sink.fail_with(Some(503));
        let n = notifier(
            Some(smtp_settings(&smtp_sink)),
            Some(sms_settings(sms_sink.base_url(), TOKEN)),
        );
        errors.push(send_sms(&n).await.unwrap_err());
        smtp_sink.refuse_mail_with(Some(550));
        errors.push(send_email(&n).await.unwrap_err());
        errors.push(
            Notifier::new(&NotifySettings::default())
                .unwrap()
                .send_code(Channel::Email, &secret(ADDRESS), &secret(CODE), 10)
                .await
                .unwrap_err(),
        );
        assert_eq!(errors.len(), 4);
        for e in &errors {
            assert_tells_nothing(&format!("{e:?}"));
            assert_tells_nothing(&e.to_string());
        }

        let mut smtp = smtp_settings(&smtp_sink);
        smtp.username = Some(ADDRESS.into());
        smtp.password = Some(secret("mailer-pw"));
        let settings = NotifySettings {
            smtp: Some(smtp.clone()),
            sms: Some(sms_settings(sms_sink.base_url(), TOKEN)),
            sender_name: "Example Bank".into(),
        };
        assert_tells_nothing(&format!("{settings:?}"));
        assert_tells_nothing(&format!("{:?}", Notifier::new(&settings).unwrap()));

        smtp.host = "smtp.bank.example".into();
        let in_clear = Notifier::new(&NotifySettings {
            smtp: Some(smtp),
            ..settings
        })
        .unwrap_err();
        assert_tells_nothing(&format!("{in_clear:?} {in_clear}"));
    }

    #[test]
    fn settings_that_would_expose_credentials_or_are_incomplete_are_refused() {
        let smtp = SmtpSettings {
            host: "smtp.bank.example".into(),
            port: 587,
            tls: SmtpTls::None,
            username: Some("mailer".into()),
            password: Some(secret("mailer-pw")),
            from: SENDER.into(),
        };
        let with_smtp = |smtp: SmtpSettings| {
            Notifier::new(&NotifySettings {
                smtp: Some(smtp),
                ..NotifySettings::default()
            })
        };
        assert_eq!(
            with_smtp(smtp.clone()).unwrap_err(),
            SettingsError::SmtpCredentialsInClear
        );
        assert!(with_smtp(SmtpSettings {
            tls: SmtpTls::StartTls,
            ..smtp.clone()
        })
        .is_ok());
        assert!(with_smtp(SmtpSettings {
            tls: SmtpTls::Tls,
            port: 465,
            ..smtp.clone()
        })
        .is_ok());
        assert_eq!(
            with_smtp(SmtpSettings {
                tls: SmtpTls::StartTls,
                password: None,
                ..smtp.clone()
            })
            .unwrap_err(),
            SettingsError::SmtpCredentialsIncomplete
        );
        assert_eq!(
            with_smtp(SmtpSettings {
                tls: SmtpTls::StartTls,
                from: "not an address".into(),
                ..smtp
            })
            .unwrap_err(),
            SettingsError::SmtpFrom
        );

        let with_sms = |sms: SmsSettings| {
            Notifier::new(&NotifySettings {
                sms: Some(sms),
                ..NotifySettings::default()
            })
        };
        let twilio = url::Url::parse(TWILIO_BASE_URL).unwrap();
        let n = with_sms(sms_settings(twilio.clone(), TOKEN)).unwrap();
        assert_eq!(
            n.sms.as_ref().unwrap().messages_url.as_str(),
            format!("https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json")
        );
        assert_eq!(
            with_sms(sms_settings(
                url::Url::parse("http://api.twilio.com/").unwrap(),
                TOKEN
            ))
            .unwrap_err(),
            SettingsError::SmsBaseUrl
        );
        assert_eq!(
            with_sms(sms_settings(twilio, "")).unwrap_err(),
            SettingsError::SmsIncomplete
        );
    }

    #[test]
    fn channels_are_lowercase_on_the_wire() {
        assert_eq!(serde_json::to_string(&Channel::Sms).unwrap(), "\"sms\"");
        assert_eq!(
            serde_json::from_str::<Channel>("\"email\"").unwrap(),
            Channel::Email
        );
        assert_eq!(
            serde_json::from_str::<SmtpTls>("\"starttls\"").unwrap(),
            SmtpTls::StartTls
        );
    }
}
