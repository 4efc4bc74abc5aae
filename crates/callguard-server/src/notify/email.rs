//! One-time codes by e-mail: SMTP through lettre, over TLS unless the relay is local.

use super::*;
use callguard_core::Secret;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::net::IpAddr;

pub(crate) fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub(crate) struct EmailSender {
    pub(crate) transport: AsyncSmtpTransport<Tokio1Executor>,
    pub(crate) from: Mailbox,
}

impl EmailSender {
    pub(crate) fn new(s: &SmtpSettings, sender_name: &str) -> Result<Self, SettingsError> {
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

    pub(crate) async fn send(
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use callguard_testkit::SmtpSink;

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
}
