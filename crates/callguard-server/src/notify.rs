//! Delivery of one-time verification codes (C4, level 2) to a customer's registered phone, by SMS
//! through Twilio's Programmable Messaging REST API, or e-mail, through an SMTP server.
//! The code, the recipient and the provider's credentials never reach a log line, an error or a
//! `Debug` output; what comes back is the provider's id for the message, which is safe to audit.

use callguard_core::Secret;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
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
    sender_name: String,
    email: Option<EmailSender>,
    sms: Option<SmsSender>,
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

    fn subject(&self) -> String {
        // The code stays out of the subject: subjects show on locked screens and in mail logs.
        format!("Your {} verification code", self.sender_name)
    }

    /// The text of the message; `break_` separates its sentences into lines (e-mail) or not
    /// (SMS, where one line keeps it short).
    fn message_text(
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

fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailSender {
    fn new(s: &SmtpSettings, sender_name: &str) -> Result<Self, SettingsError> {
        let address: Address = s.from.trim().parse().map_err(|_| SettingsError::SmtpFrom)?;
        let name = (!sender_name.is_empty()).then(|| sender_name.to_owned());
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(
                TlsParameters::new(s.host.clone()).map_err(|_| SettingsError::SmtpTls)?,
            ),
            SmtpTls::Tls => Tls::Wrapper(
                TlsParameters::new(s.host.clone()).map_err(|_| SettingsError::SmtpTls)?,
            ),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
            .port(s.port)
            .tls(tls)
            .timeout(Some(TIMEOUT));
        match (&s.username, &s.password) {
            (Some(user), Some(password)) => {
                if s.tls == SmtpTls::None && !is_loopback_name(&s.host) {
                    return Err(SettingsError::SmtpCredentialsInClear);
                }
                builder =
                    builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
            }
            (None, None) => {}
            _ => return Err(SettingsError::SmtpCredentialsIncomplete),
        }
        Ok(Self {
            transport: builder.build(),
            from: Mailbox::new(name, address),
        })
    }

    async fn send(
        &self,
        to: &Secret<String>,
        subject: &str,
        text: Secret<String>,
    ) -> Result<Delivery, NotifyError> {
        let Ok(recipient) = to.expose().trim().parse::<Address>() else {
            tracing::warn!("the recipient is not an e-mail address");
            return Err(NotifyError::Rejected);
        };
        // Our own Message-ID, so the id we return is the one the recipient's copy carries.
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), self.from.email.domain());
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, recipient))
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(text.expose().clone())
            .map_err(|_| {
                tracing::warn!("the e-mail could not be built");
                NotifyError::Rejected
            })?;
        match tokio::time::timeout(TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(Delivery {
                provider_id: message_id,
            }),
            Ok(Err(e)) => {
                // Only the reply code: the server's text may quote the recipient.
                let status = e.status().map(|c| c.to_string());
                if e.is_permanent() || e.is_client() {
                    tracing::warn!(status, "the SMTP server refused the message");
                    Err(NotifyError::Rejected)
                } else {
                    let kind = if e.is_transient() {
                        "temporary failure"
                    } else if e.is_timeout() {
                        "timeout"
                    } else if e.is_tls() {
                        "TLS"
                    } else {
                        "connection"
                    };
                    tracing::warn!(status, kind, "the SMTP server is unavailable");
                    Err(NotifyError::Unavailable)
                }
            }
            Err(_) => {
                tracing::warn!(kind = "timeout", "the SMTP server is unavailable");
                Err(NotifyError::Unavailable)
            }
        }
    }
}

struct SmsSender {
    http: reqwest::Client,
    messages_url: url::Url,
    account_sid: String,
    auth_token: Secret<String>,
    from: String,
}

/// The part of Twilio's Message resource we read.
#[derive(Deserialize)]
struct TwilioMessage {
    sid: Option<String>,
}

/// The part of Twilio's error body we read: its numeric code, never its message, which may
/// quote the number.
#[derive(Deserialize)]
struct TwilioError {
    code: Option<u64>,
}

impl SmsSender {
    fn new(s: &SmsSettings) -> Result<Self, SettingsError> {
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

    async fn send(
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
fn is_safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use callguard_testkit::{SmsApiSink, SmtpSink};

    const CODE: &str = "482913";
    const PHONE: &str = "+48601234567";
    const ADDRESS: &str = "ada.lovelace@example.com";
    const SENDER: &str = "codes@bank.example";
    const SENDING_NUMBER: &str = "+15005550006";
    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "twilio-auth-token-for-tests";
    const WAIT: Duration = Duration::from_secs(5);

    fn secret(s: &str) -> Secret<String> {
        Secret::new(s.to_owned())
    }

    fn smtp_settings(sink: &SmtpSink) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: sink.addr().port(),
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: SENDER.into(),
        }
    }

    fn sms_settings(base_url: url::Url, token: &str) -> SmsSettings {
        SmsSettings {
            base_url,
            account_sid: SID.into(),
            auth_token: secret(token),
            from: SENDING_NUMBER.into(),
        }
    }

    fn notifier(smtp: Option<SmtpSettings>, sms: Option<SmsSettings>) -> Notifier {
        let settings = NotifySettings {
            smtp,
            sms,
            sender_name: "Example Bank".into(),
        };
        Notifier::new(&settings).unwrap()
    }

    /// A port on this machine that nothing listens on.
    async fn closed_port() -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    }

    fn assert_tells_nothing(text: &str) {
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

    async fn send_email(n: &Notifier) -> Result<Delivery, NotifyError> {
        n.send_code(Channel::Email, &secret(ADDRESS), &secret(CODE), 10)
            .await
    }

    async fn send_sms(n: &Notifier) -> Result<Delivery, NotifyError> {
        n.send_code(Channel::Sms, &secret(PHONE), &secret(CODE), 10)
            .await
    }

    #[tokio::test]
    async fn an_emailed_code_reaches_the_registered_address_from_the_configured_sender() {
        let sink = SmtpSink::start().await;
        let n = notifier(Some(smtp_settings(&sink)), None);
        let delivery = send_email(&n).await.unwrap();

        let messages = sink.wait_for(1, WAIT).await;
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.to, vec![ADDRESS.to_owned()]);
        assert_eq!(m.from, SENDER);
        assert!(
            m.data
                .contains(&format!("From: \"Example Bank\" <{SENDER}>\r\n")),
            "{}",
            m.data
        );
        assert!(m.data.contains(&format!("To: {ADDRESS}")), "{}", m.data);
        assert!(
            m.data.contains(&format!("verification code is {CODE}.")),
            "{}",
            m.data
        );
        assert!(m.data.contains("It expires in 10 minutes."));
        assert!(m.data.contains("we never ask for it otherwise."));
        // The id we hand back is the Message-ID the recipient's copy carries.
        assert!(
            delivery.provider_id.starts_with('<')
                && delivery.provider_id.ends_with("@bank.example>")
        );
        assert!(
            m.data
                .contains(&format!("Message-ID: {}", delivery.provider_id)),
            "{}",
            m.data
        );
        // The code is in the body only, not in the subject.
        let subject = m.data.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(!subject.contains(CODE));
        assert!(!delivery.provider_id.contains(CODE));
    }

    #[tokio::test]
    async fn smtp_credentials_are_used_and_a_wrong_password_is_rejected() {
        let sink = SmtpSink::start_with_credentials("mailer", "mailer-pw").await;
        let mut settings = smtp_settings(&sink);
        settings.username = Some("mailer".into());
        settings.password = Some(secret("mailer-pw"));
        send_email(&notifier(Some(settings.clone()), None))
            .await
            .unwrap();
        let messages = sink.wait_for(1, WAIT).await;
        assert_eq!(messages[0].authenticated_as.as_deref(), Some("mailer"));

        settings.password = Some(secret("not-the-password"));
        let err = send_email(&notifier(Some(settings), None))
            .await
            .unwrap_err();
        assert_eq!(err, NotifyError::Rejected);
        assert_eq!(sink.messages().len(), 1);
    }

    #[tokio::test]
    async fn an_smtp_refusal_is_rejected_and_a_temporary_failure_is_unavailable() {
        let sink = SmtpSink::start().await;
        let n = notifier(Some(smtp_settings(&sink)), None);
        sink.refuse_mail_with(Some(550));
        assert_eq!(send_email(&n).await.unwrap_err(), NotifyError::Rejected);
        sink.refuse_mail_with(Some(451));
        assert_eq!(send_email(&n).await.unwrap_err(), NotifyError::Unavailable);
        sink.refuse_mail_with(None);
        send_email(&n).await.unwrap();
        assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);
    }

    #[tokio::test]
    async fn an_address_that_is_not_an_address_is_rejected_without_contacting_the_server() {
        let sink = SmtpSink::start().await;
        let n = notifier(Some(smtp_settings(&sink)), None);
        let err = n
            .send_code(
                Channel::Email,
                &secret("not an address\r\nBcc: x@y.example"),
                &secret(CODE),
                10,
            )
            .await
            .unwrap_err();
        assert_eq!(err, NotifyError::Rejected);
        assert!(sink.messages().is_empty());
    }

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
