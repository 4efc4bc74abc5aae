//! Configuration: built-in defaults, then a TOML file, then `CALLGUARD_*` environment
//! variables; secrets may also come from files (`*_file` keys, `CALLGUARD_*_FILE` variables).
//! Every problem stops start-up with a message that names the key, never a secret's value.

mod compliance;

use callguard_core::Secret;
use callguard_server::{KekSource, Settings};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// One configuration key: its TOML name, whether it is secret, and what it means.
pub struct Key {
    pub name: &'static str,
    pub secret: bool,
    pub about: &'static str,
}

/// Every key Callguard reads. The environment variable is `CALLGUARD_` + the name in upper case
/// with dots as underscores; secret keys can also be read from a file named by `NAME_file`
/// (`CALLGUARD_NAME_FILE`).
pub const KEYS: &[Key] = &[
    Key { name: "listen", secret: false, about: "address and port for HTTPS (default 127.0.0.1:8443; port 0 picks a free one)" },
    Key { name: "data_dir", secret: false, about: "directory for the SQLite database, keys, certificate (default ./callguard-data)" },
    Key { name: "database_url", secret: true, about: "postgres://user@host:port/db for PostgreSQL; empty for SQLite in data_dir" },
    Key { name: "public_url", secret: false, about: "the https:// address people use; passkeys bind to its host (default https://localhost:PORT)" },
    Key { name: "tls.cert_file", secret: false, about: "PEM certificate chain; with tls.key_file, replaces the self-signed certificate" },
    Key { name: "tls.key_file", secret: false, about: "PEM private key for tls.cert_file" },
    Key { name: "http.handshake_timeout_seconds", secret: false, about: "a TLS handshake must finish within this many seconds (default 10)" },
    Key { name: "http.idle_timeout_seconds", secret: false, about: "a connection with no request in flight and no answer being sent is closed after this many seconds (default 60)" },
    Key { name: "http.body_timeout_seconds", secret: false, about: "a request body must arrive whole within this many seconds of its headers, else the request fails and the connection closes (default 30)" },
    Key { name: "http.keep_alive_seconds", secret: false, about: "HTTP/2: a quiet connection is pinged this often and closed when a ping goes unanswered as long (default 30)" },
    Key { name: "http.trusted_proxies", secret: false, about: "load balancers and reverse proxies (addresses or networks; a TOML array, comma-separated in the environment) whose X-Forwarded-For header or PROXY protocol header names the client; from every other peer both are ignored (default none)" },
    Key { name: "http.drain_seconds", secret: false, about: "on SIGTERM, seconds during which /readyz answers 503 while requests are still served, before the listener closes (default 3 when http.trusted_proxies is set, else 0)" },
    Key { name: "http.max_connections", secret: false, about: "connections open at once; further ones are closed as soon as they are accepted (default 4096)" },
    Key { name: "kek_file", secret: false, about: "file holding the key-encryption key; created on first start (default DATA_DIR/keys/kek)" },
    Key { name: "kek", secret: true, about: "the key-encryption key itself (base64 of 32 bytes), instead of kek_file" },
    Key { name: "audit.origin", secret: false, about: "the audit log's name in its checkpoints and verifier key (default HOST/callguard-audit, HOST from public_url or localhost)" },
    Key { name: "audit.signing_key_file", secret: false, about: "Ed25519 key (PKCS#8, base64) that signs checkpoints; created on first start (default DATA_DIR/keys/audit-signing.key); nodes of one log share it" },
    Key { name: "audit.witness_dir", secret: false, about: "directory outside the database for the append-only checkpoint witness file (default DATA_DIR/witness)" },
    Key { name: "audit.syslog", secret: false, about: "host:port of a syslog collector that receives every checkpoint (RFC 5424 over UDP)" },
    Key { name: "audit.witness_url", secret: false, about: "http(s):// URL that receives every checkpoint as a text/plain POST (e.g. a witness)" },
    Key { name: "audit.checkpoint_interval_ms", secret: false, about: "how often a checkpoint is signed when the log has grown (default 800, so every entry is covered within 1 s)" },
    Key { name: "alerts.webhook_url", secret: false, about: "http(s):// URL that receives every alert as a JSON POST, retried with growing delays" },
    Key { name: "alerts.webhook_secret", secret: true, about: "key of the X-Callguard-Signature header: sha256=HEX(HMAC-SHA256(key, timestamp + \".\" + body))" },
    Key { name: "alerts.syslog", secret: false, about: "host:port of a syslog collector that receives every alert (RFC 5424 over UDP)" },
    Key { name: "alerts.working_hours", secret: false, about: "HH:MM-HH:MM; sign-ins outside it raise an alert (unset: rule off)" },
    Key { name: "alerts.utc_offset", secret: false, about: "offset of working hours from UTC, like +01:00 (default +00:00)" },
    Key { name: "alerts.weekends", secret: false, about: "true when Saturday and Sunday are working days (default false)" },
    Key { name: "staff.confirmation_wait_seconds", secret: false, about: "how long a compliance account no officer confirmed waits before it may approve erasures, once every alert about it was handled by someone independent of it (default 604800, 7 days)" },
    Key { name: "alerts.stream_check_seconds", secret: false, about: "how often an open alert stream re-checks that its session still stands, 1 to 30 (default 15; also before every event)" },
    Key { name: "dnc.calling_hours", secret: false, about: "HH:MM-HH:MM: when calls may start in the called party's local time (default 08:00-21:00, the TCPA's)" },
    Key { name: "dnc.calling_hours_regions", secret: false, about: "windows by region, time zone or country, most specific first, like \"US-FL=08:00-20:00; America/Chicago=09:00-20:00; CA=09:00-21:00\"" },
    Key { name: "vault.reveals_per_window", secret: false, about: "how many fields one agent may reveal within vault.reveal_window_seconds (default 30)" },
    Key { name: "vault.reveal_window_seconds", secret: false, about: "the window of the reveal rate limit (default 600)" },
    Key { name: "verification.level.change_contact", secret: false, about: "verification level (1 or 2) a change of phone or e-mail needs (default 2)" },
    Key { name: "verification.level.change_address", secret: false, about: "verification level a change of address needs (default 2)" },
    Key { name: "verification.level.transfer_service", secret: false, about: "verification level a service transfer needs (default 2)" },
    Key { name: "verification.level.duplicate_invoice", secret: false, about: "verification level a duplicate invoice needs (default 2)" },
    Key { name: "verification.level.add_note", secret: false, about: "verification level adding a note needs (default 1)" },
    Key { name: "desk.dispositions", secret: false, about: "wrap-up codes agents choose from when a call ends, comma-separated, each 1 to 40 of a-z, 0-9, _ (default resolved, callback_needed, escalated, transferred, wrong_number, no_action)" },
    Key { name: "payments.link_ttl_seconds", secret: false, about: "how long a payment link stays payable, 5 to 604800 seconds (default 900)" },
    Key { name: "payments.merchant_name", secret: false, about: "who payment links and the hosted page say asks for the money (default Callguard)" },
    Key { name: "payments.page_check_seconds", secret: false, about: "how often the server checks the payment page against its signed baseline, 0 for never (default 3600)" },
    Key { name: "payments.postal_code", secret: false, about: "whether the hosted page asks for the card's postal code (default false)" },
    Key { name: "payments.keypad_postal_code", secret: false, about: "whether a keypad capture asks the caller for the postal code's digits after the security code (default false)" },
    Key { name: "payments.keypad_timeout_seconds", secret: false, about: "a keypad capture not finished within this is cancelled by the server, 5 to 900 seconds (default 180)" },
    Key { name: "payments.keypad_max_attempts", secret: false, about: "rejected entries of one keypad field before the capture is cancelled, 1 to 10 (default 3)" },
    Key { name: "verification.level.payment", secret: false, about: "verification level a payment request needs (default 2)" },
    Key { name: "otp.sender_name", secret: false, about: "who one-time code messages say they come from (default Callguard)" },
    Key { name: "otp.smtp_host", secret: false, about: "SMTP server that e-mails one-time codes (unset: no e-mail codes)" },
    Key { name: "otp.smtp_port", secret: false, about: "its port (default 587)" },
    Key { name: "otp.smtp_tls", secret: false, about: "starttls (default), tls, or none (only for a relay on this machine)" },
    Key { name: "otp.smtp_username", secret: false, about: "SMTP user name, with otp.smtp_password" },
    Key { name: "otp.smtp_password", secret: true, about: "SMTP password" },
    Key { name: "otp.smtp_from", secret: false, about: "sender address of code e-mails" },
    Key { name: "otp.sms_url", secret: false, about: "base URL of the SMS provider's Twilio-style Messages API (default https://api.twilio.com/)" },
    Key { name: "otp.sms_account_sid", secret: false, about: "SMS provider account id (unset: no SMS codes)" },
    Key { name: "otp.sms_auth_token", secret: true, about: "SMS provider auth token" },
    Key { name: "otp.sms_from", secret: false, about: "sending number (E.164) or sender id of code SMS" },
    Key { name: "payments.gateway", secret: false, about: "stripe or adyen: the gateway card payments go through (unset: payments off)" },
    Key { name: "payments.stripe_url", secret: false, about: "base URL of Stripe's API (default https://api.stripe.com; http:// only for a server on this machine)" },
    Key { name: "payments.stripe_secret_key", secret: true, about: "Stripe secret key (sk_live_…, sk_test_… or a restricted rk_ key)" },
    Key { name: "payments.adyen_url", secret: false, about: "base URL of Adyen's Checkout API, e.g. https://checkout-test.adyen.com or your live https://PREFIX-checkout-live.adyenpayments.com/checkout" },
    Key { name: "payments.adyen_api_key", secret: true, about: "Adyen API key (X-API-Key) of a web service user allowed to send raw card data" },
    Key { name: "payments.adyen_merchant_account", secret: false, about: "Adyen merchant account the payments are made to" },
    Key { name: "payments.timeout_seconds", secret: false, about: "a gateway request with no answer within this many seconds counts as unknown and is retried with the same idempotency key, 1 to 120 (default 30)" },
    Key { name: "metrics.token", secret: true, about: "bearer token that reads /metrics from any address (at least 16 characters); without it only metrics.allow may" },
    Key { name: "metrics.allow", secret: false, about: "addresses or networks that read /metrics without a token, comma-separated, or none (default 127.0.0.1, ::1: this machine only)" },
    Key { name: "sip.listen", secret: false, about: "address and port of the SIP edge, UDP and TCP (unset: no SIP; the demo uses 127.0.0.1:5060)" },
    Key { name: "sip.trunks", secret: false, about: "carriers' addresses or networks whose INVITEs are answered, comma-separated or a TOML array; every other INVITE gets 403" },
    Key { name: "sip.realm", secret: false, about: "digest realm of the registrar for agents' softphones (default callguard)" },
    Key { name: "sip.digest_algorithms", secret: false, about: "digest algorithms the registrar challenges softphones with, in order: SHA-256, MD5 or both (default SHA-256,MD5; some softphones, e.g. baresip 1.0, fail when offered SHA-256 at all: set MD5 for them)" },
    Key { name: "sip.media_address", secret: false, about: "address written in SDP answers and bound for RTP (default the sip.listen address; required when that is 0.0.0.0 or ::)" },
    Key { name: "sip.ivr_menu", secret: false, about: "IVR choices, key=queue comma-separated (default 1=billing,2=support, as the built-in menu prompt says)" },
    Key { name: "sip.prompts_dir", secret: false, about: "directory of WAV files (8 kHz mono PCM16, A-law or µ-law) named after the prompts they replace, e.g. recording-notice.wav, ivr-menu.wav" },
    Key { name: "sip.tls_listen", secret: false, about: "address and port of SIP over TLS for agents' softphones, e.g. 0.0.0.0:5061, with the HTTPS certificate (tls.cert_file or the self-signed one); a softphone registered over TLS is called back over its connection and offered SRTP (unset: no SIP over TLS)" },
    Key { name: "sip.agents_require_tls", secret: false, about: "true: REGISTER over UDP or TCP is refused with 403, softphones must register over sip.tls_listen (default false)" },
    Key { name: "sip.agents_require_srtp", secret: false, about: "true: every agent leg is offered SRTP only (SDES, AES_CM_128_HMAC_SHA1_80) and a softphone answering plain RTP is not bridged (default false)" },
    Key { name: "sip.dtmf_mask", secret: false, about: "what replaces a caller's key tone in the agent's audio during a keypad payment in a call: tone (one flat tone of the same length for every key) or silence (default tone)" },
    Key { name: "sip.rtp_ports", secret: false, about: "RTP port range, one even port per call leg (default 16000-16999)" },
    Key { name: "queues.ring_seconds", secret: false, about: "how long an agent's softphone rings before the call is offered to the next agent (default 15)" },
    Key { name: "queues.max_wait_seconds", secret: false, about: "how long a caller waits in a queue before moving to its overflow queue, or the call ends when it has none (default 600)" },
    Key { name: "queues.overflow", secret: false, about: "overflow queues, queue=other_queue comma-separated, e.g. billing=support (default none); a call overflows once" },
    Key { name: "queues.announce_seconds", secret: false, about: "how often a waiting caller hears their position in the queue (default 30)" },
    Key { name: "queues.wrap_up_seconds", secret: false, about: "after a queued call ends the agent is in wrap-up this many seconds, then ready by themselves, 0 to 3600 (default 30)" },
    Key { name: "queues.service_level_seconds", secret: false, about: "a queued call answered within this many seconds counts toward the service level, 1 to 3600 (default 20)" },
    Key { name: "queues.skills", secret: false, about: "which agents (usernames) serve each queue, like \"billing=ann bob; support=carol\"; a queue not listed is served by every agent (default: every agent serves every queue)" },
    Key { name: "queues.supervisors", secret: false, about: "which supervisors (usernames) may listen to, whisper into or barge into each queue's calls, like \"billing=sue; support=sue tom\"; a queue not listed may be monitored by every supervisor (default: every supervisor, every queue)" },
    Key { name: "monitor.tell_agents", secret: false, about: "true or false: whether an agent's desk shows that a supervisor is listening to, whispering into or barging into their call (default true)" },
    Key { name: "desk.not_ready_reasons", secret: false, about: "reasons agents choose from when they are not ready, comma-separated, each 1 to 40 of a-z, 0-9, _ (default break, lunch, meeting, training, coaching)" },
    Key { name: "retention.interactions_days", secret: false, about: "interactions that ended longer ago are deleted by the daily retention job (default 730; 0 keeps them)" },
    Key { name: "retention.customers_days", secret: false, about: "customer records unchanged and without an interaction for this long are crypto-shredded (default 1095; 0 keeps them)" },
    Key { name: "retention.alerts_days", secret: false, about: "resolved alerts raised longer ago are deleted (default 365; 0 keeps them)" },
    Key { name: "retention.sessions_days", secret: false, about: "session records unused this long are deleted (default 1; 0 keeps them)" },
    Key { name: "retention.recordings_days", secret: false, about: "call recordings started longer ago are deleted, file and key share (default 90; 0 keeps them)" },
    Key { name: "recordings.playback_reasons", secret: false, about: "reasons a supervisor or compliance officer picks from before playing a recording, comma-separated or a TOML array (default quality_review,complaint,dispute,legal_request,fraud_investigation)" },
    Key { name: "compliance.scan_paths", secret: false, about: "files or directories (comma-separated) the compliance report scans for card numbers, e.g. log files" },
    Key { name: "compliance.key_max_age_days", secret: false, about: "keys older than this fail the key-management controls (default 365)" },
    Key { name: "log.level", secret: false, about: "error, warn, info, debug or trace (default info)" },
    Key { name: "log.format", secret: false, about: "text or json (default text)" },
];

/// `billing=ann bob; support=carol`: the agents (usernames) who serve each queue.
fn parse_skills(text: &str) -> Result<std::collections::BTreeMap<String, Vec<String>>, String> {
    let mut skills = std::collections::BTreeMap::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (queue, agents) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not queue=usernames, like billing=ann bob"))?;
        let queue = queue.trim();
        if queue.is_empty()
            || !queue
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "{queue:?} is not a queue name (letters, digits, _ and -)"
            ));
        }
        let agents: Vec<String> = agents
            .split([' ', ','])
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if agents.is_empty() {
            return Err(format!("the queue {queue} lists no agent"));
        }
        if skills.insert(queue.to_owned(), agents).is_some() {
            return Err(format!("the queue {queue} is listed twice"));
        }
    }
    Ok(skills)
}

/// A configuration problem; the message names the key and where it came from.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Where a value came from, for messages.
#[derive(Debug, Clone)]
enum Origin {
    File(PathBuf),
    Env(String),
    SecretFile(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(p) => write!(f, "in {}", p.display()),
            Origin::Env(v) => write!(f, "from {v}"),
            Origin::SecretFile(p) => write!(f, "read from {}", p.display()),
        }
    }
}

/// Whether a secret key may also be given as `NAME_file` / `CALLGUARD_NAME_FILE`. The key
/// `kek` may not: `kek_file` is a key of its own (the key file, created on first start).
fn reads_from_file(key: &Key) -> bool {
    key.secret && key.name != "kek"
}

#[must_use]
pub fn env_name(key: &str) -> String {
    format!("CALLGUARD_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Raw values by key, with their origin.
#[derive(Default)]
pub struct Raw {
    values: BTreeMap<&'static str, (String, Origin)>,
}

impl Raw {
    /// Reads the TOML file (if any) and the environment.
    pub fn load(
        config_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw = Raw::default();
        if let Some(path) = config_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!(
                    "cannot read the configuration file {}: {e}",
                    path.display()
                ))
            })?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                ConfigError(format!(
                    "{} is not valid TOML: {}",
                    path.display(),
                    e.message()
                ))
            })?;
            let mut flat = Vec::new();
            flatten("", &table, &mut flat);
            for (name, value) in flat {
                let (key_name, from_file) = match name.strip_suffix("_file") {
                    Some(base) if KEYS.iter().any(|k| k.name == base && reads_from_file(k)) => {
                        (base.to_owned(), true)
                    }
                    _ => (name.clone(), false),
                };
                let Some(key) = KEYS.iter().find(|k| k.name == key_name) else {
                    return Err(ConfigError(format!(
                        "unknown key `{name}` in {}; known keys: {}",
                        path.display(),
                        KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                    )));
                };
                let origin = Origin::File(path.to_path_buf());
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    // Lists (`http.trusted_proxies = ["10.0.0.0/8", "::1"]`) are read like their
                    // comma-separated environment form.
                    toml::Value::Array(items)
                        if items.iter().all(|i| matches!(i, toml::Value::String(_))) =>
                    {
                        items
                            .iter()
                            .filter_map(|i| i.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    }
                    _ => {
                        return Err(ConfigError(format!(
                            "key `{name}` {origin} must be a string (or, for a list, an array of strings)"
                        )))
                    }
                };
                let entry = if from_file {
                    read_secret_file(&name, &text)?
                } else {
                    (text, origin)
                };
                raw.values.insert(key.name, entry);
            }
        }
        for key in KEYS {
            let var = env_name(key.name);
            if reads_from_file(key) {
                if let Some(file) = env(&format!("{var}_FILE")) {
                    raw.values
                        .insert(key.name, read_secret_file(&format!("{var}_FILE"), &file)?);
                }
            }
            if let Some(v) = env(&var) {
                raw.values.insert(key.name, (v, Origin::Env(var)));
            }
        }
        Ok(raw)
    }

    fn get(&self, key: &str) -> Option<&(String, Origin)> {
        self.values.get(key).filter(|(v, _)| !v.trim().is_empty())
    }

    fn describe(&self, key: &str) -> String {
        match self.values.get(key) {
            Some((_, origin)) => format!("`{key}` ({origin})"),
            None => format!("`{key}`"),
        }
    }

    /// Turns raw values into validated settings.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let listen: SocketAddr = match self.get("listen") {
            Some((v, _)) => v.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "{} is not an address and port like 127.0.0.1:8443 (got {v:?})",
                    self.describe("listen")
                ))
            })?,
            None => SocketAddr::from(([127, 0, 0, 1], 8443)),
        };
        let data_dir = self.get("data_dir").map_or_else(
            || PathBuf::from("./callguard-data"),
            |(v, _)| PathBuf::from(v.trim()),
        );
        let database_url = match self.get("database_url") {
            Some((v, _)) => {
                let v = v.trim();
                if !(v.starts_with("postgres://") || v.starts_with("postgresql://")) {
                    return Err(ConfigError(format!(
                        "{} must start with postgres:// (or be empty for SQLite)",
                        self.describe("database_url")
                    )));
                }
                if v.parse::<tokio_postgres_config::Config>().is_err() {
                    return Err(ConfigError(format!(
                        "{} is not a valid PostgreSQL URL",
                        self.describe("database_url")
                    )));
                }
                Some(Secret::new(v.to_owned()))
            }
            None => None,
        };
        let public_url = match self.get("public_url") {
            Some((v, _)) => {
                let u = url::Url::parse(v.trim()).map_err(|_| {
                    ConfigError(format!(
                        "{} is not a URL like https://callguard.example.com",
                        self.describe("public_url")
                    ))
                })?;
                if u.scheme() != "https" || u.host_str().is_none() {
                    return Err(ConfigError(format!(
                        "{} must be an https:// URL with a host",
                        self.describe("public_url")
                    )));
                }
                Some(u)
            }
            None => None,
        };
        let cert = self
            .get("tls.cert_file")
            .map(|(v, _)| PathBuf::from(v.trim()));
        let key = self
            .get("tls.key_file")
            .map(|(v, _)| PathBuf::from(v.trim()));
        match (&cert, &key) {
            (Some(_), None) => {
                return Err(ConfigError(format!(
                    "{} is set but `tls.key_file` is not",
                    self.describe("tls.cert_file")
                )))
            }
            (None, Some(_)) => {
                return Err(ConfigError(format!(
                    "{} is set but `tls.cert_file` is not",
                    self.describe("tls.key_file")
                )))
            }
            _ => {}
        }
        for (name, p) in [("tls.cert_file", &cert), ("tls.key_file", &key)] {
            if let Some(p) = p {
                if !p.is_file() {
                    return Err(ConfigError(format!(
                        "{}: no file at {}",
                        self.describe(name),
                        p.display()
                    )));
                }
            }
        }
        let kek = match (self.get("kek"), self.get("kek_file")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError(
                    "set either `kek` or `kek_file`, not both".into(),
                ));
            }
            (Some((v, _)), None) => {
                if callguard_core::kek::KeyEncryptionKey::from_text(v).is_none() {
                    return Err(ConfigError(format!(
                        "{} must be base64 of exactly 32 bytes",
                        self.describe("kek")
                    )));
                }
                KekSource::Inline(Secret::new(v.clone()))
            }
            (None, Some((v, _))) => KekSource::File(PathBuf::from(v.trim())),
            (None, None) => KekSource::File(data_dir.join("keys").join("kek")),
        };
        let audit = self.audit_settings(&data_dir, public_url.as_ref())?;
        let alerts = self.alert_settings()?;
        let dnc = self.dnc_settings()?;
        let compliance = self.compliance_settings(&data_dir)?;
        Ok(Settings {
            listen,
            data_dir,
            database_url,
            public_url,
            tls_cert_file: cert,
            tls_key_file: key,
            kek,
            audit,
            alerts,
            dnc,
            customers: self.customer_settings()?,
            staff: self.staff_settings()?,
            http: self.connection_limits()?,
            metrics: self.metrics_access()?,
            trusted_proxies: self.networks("http.trusted_proxies")?,
            drain: self.drain()?,
            payments: self.payment_settings()?,
            payment_gateway: self.payment_gateway()?,
            compliance,
            recordings: self.recording_settings()?,
            sip_server: None,
            presence: self.presence_settings()?,
            queues: self.queue_settings()?,
            monitor: self.monitor_settings()?,
        })
    }

    /// `recordings.playback_reasons`: at least one, each 1 to 40 lower-case letters, digits or _.
    fn recording_settings(
        &self,
    ) -> Result<callguard_server::features::recordings::service::RecordingSettings, ConfigError>
    {
        use callguard_server::features::interactions::wrap_up::valid_disposition_code;
        let mut settings =
            callguard_server::features::recordings::service::RecordingSettings::default();
        let Some(list) = self.text("recordings.playback_reasons") else {
            return Ok(settings);
        };
        let mut reasons: Vec<String> = Vec::new();
        for reason in list.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            if !valid_disposition_code(reason) {
                return Err(ConfigError(format!(
                    "{} lists {reason:?}: each reason must be 1 to 40 lower-case letters, digits or _, like quality_review",
                    self.describe("recordings.playback_reasons")
                )));
            }
            if !reasons.iter().any(|r| r == reason) {
                reasons.push(reason.to_owned());
            }
        }
        if reasons.is_empty() {
            return Err(ConfigError(format!(
                "{} must list at least one reason",
                self.describe("recordings.playback_reasons")
            )));
        }
        settings.playback_reasons = reasons;
        Ok(settings)
    }

    /// The drain period: configured, or 3 s behind a balancer (two of HAProxy's 1 s health
    /// checks fail first), none for a node on its own.
    fn drain(&self) -> Result<std::time::Duration, ConfigError> {
        let configured = self.number::<u64>(
            "http.drain_seconds",
            "a whole number of seconds from 0 to 300",
        )?;
        if configured.is_some_and(|s| s > 300) {
            return Err(ConfigError(format!(
                "{} must be a whole number of seconds from 0 to 300",
                self.describe("http.drain_seconds")
            )));
        }
        let behind_balancer = self.text("http.trusted_proxies").is_some();
        Ok(std::time::Duration::from_secs(
            configured.unwrap_or(if behind_balancer { 3 } else { 0 }),
        ))
    }

    /// A list of addresses or networks (`10.0.0.0/8, ::1`); empty when unset.
    fn networks(&self, key: &str) -> Result<Vec<callguard_core::net::Network>, ConfigError> {
        let Some(list) = self.text(key) else {
            return Ok(Vec::new());
        };
        list.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(|item| {
                callguard_core::net::Network::parse(item).ok_or_else(|| {
                    ConfigError(format!(
                        "{}: {:?} is not an address or network like 10.0.0.0/8 or 2001:db8::/32; list them with commas",
                        self.describe(key),
                        item.trim()
                    ))
                })
            })
            .collect()
    }

    fn payment_settings(
        &self,
    ) -> Result<callguard_server::features::payments::service::PaymentSettings, ConfigError> {
        let mut p = callguard_server::features::payments::service::PaymentSettings::default();
        if let Some(n) = self.number::<i64>("payments.link_ttl_seconds", "a number of seconds")? {
            if !(5..=7 * 24 * 3600).contains(&n) {
                return Err(ConfigError(format!(
                    "{} must be between 5 and 604800 seconds",
                    self.describe("payments.link_ttl_seconds")
                )));
            }
            p.link_ttl_seconds = n;
        }
        if let Some(name) = self.text("payments.merchant_name") {
            if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
                return Err(ConfigError(format!(
                    "{} must be 1 to 60 characters without control characters",
                    self.describe("payments.merchant_name")
                )));
            }
            p.merchant_name = name;
        }
        if let Some(n) = self.number::<u64>("payments.page_check_seconds", "a number of seconds")? {
            if n != 0 && n < 10 {
                return Err(ConfigError(format!(
                    "{} must be 0 (off) or at least 10 seconds",
                    self.describe("payments.page_check_seconds")
                )));
            }
            p.page_check_seconds = n;
        }
        if let Some(v) = self.text("payments.postal_code") {
            p.postal_code = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError(format!(
                        "{} must be true or false",
                        self.describe("payments.postal_code")
                    )))
                }
            };
        }
        if let Some(v) = self.text("payments.keypad_postal_code") {
            p.keypad_postal_code = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError(format!(
                        "{} must be true or false",
                        self.describe("payments.keypad_postal_code")
                    )))
                }
            };
        }
        if let Some(n) =
            self.number::<u64>("payments.keypad_timeout_seconds", "a number of seconds")?
        {
            if !(5..=900).contains(&n) {
                return Err(ConfigError(format!(
                    "{} must be between 5 and 900 seconds",
                    self.describe("payments.keypad_timeout_seconds")
                )));
            }
            p.keypad_timeout_seconds = n;
        }
        if let Some(n) = self.number::<u32>("payments.keypad_max_attempts", "a number")? {
            if !(1..=10).contains(&n) {
                return Err(ConfigError(format!(
                    "{} must be between 1 and 10",
                    self.describe("payments.keypad_max_attempts")
                )));
            }
            p.keypad_max_attempts = n;
        }
        Ok(p)
    }

    /// The payment gateway, checked by building its client once.
    fn payment_gateway(
        &self,
    ) -> Result<Option<callguard_server::features::payments::gateway::GatewaySettings>, ConfigError>
    {
        use callguard_server::features::payments::gateway::{
            build, AdyenSettings, GatewaySettings, StripeSettings, DEFAULT_TIMEOUT, STRIPE_BASE_URL,
        };
        let Some(gateway) = self.text("payments.gateway") else {
            return Ok(None);
        };
        let timeout = match self.number::<u64>("payments.timeout_seconds", "a number of seconds")? {
            Some(s) => std::time::Duration::from_secs(s),
            None => DEFAULT_TIMEOUT,
        };
        let url = |key: &str, default: Option<&str>| -> Result<url::Url, ConfigError> {
            let text = self
                .text(key)
                .or(default.map(str::to_owned))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "`{key}` is needed when `payments.gateway` is {gateway}"
                    ))
                })?;
            url::Url::parse(&text)
                .map_err(|_| ConfigError(format!("{} must be an https:// URL", self.describe(key))))
        };
        let needed = |key: &str| {
            self.text(key).ok_or_else(|| {
                ConfigError(format!(
                    "`{key}` is needed when `payments.gateway` is {gateway}"
                ))
            })
        };
        let settings = match gateway.as_str() {
            "stripe" => GatewaySettings::Stripe(StripeSettings {
                base_url: url("payments.stripe_url", Some(STRIPE_BASE_URL))?,
                secret_key: Secret::new(needed("payments.stripe_secret_key")?),
                timeout,
            }),
            "adyen" => GatewaySettings::Adyen(AdyenSettings {
                base_url: url("payments.adyen_url", None)?,
                api_key: Secret::new(needed("payments.adyen_api_key")?),
                merchant_account: needed("payments.adyen_merchant_account")?,
                timeout,
            }),
            _ => {
                return Err(ConfigError(format!(
                    "{} must be stripe or adyen (or unset to turn payments off)",
                    self.describe("payments.gateway")
                )))
            }
        };
        build(Some(&settings)).map_err(|e| ConfigError(e.to_string()))?;
        Ok(Some(settings))
    }

    /// The SIP edge's settings, `None` when `sip.listen` is not set.
    pub fn sip_settings(
        &self,
    ) -> Result<Option<callguard_telephony::sip::SipSettings>, ConfigError> {
        let Some(listen) = self.text("sip.listen") else {
            return Ok(None);
        };
        let listen: SocketAddr = listen.parse().map_err(|_| {
            ConfigError(format!(
                "{} is not an address and port like 127.0.0.1:5060",
                self.describe("sip.listen")
            ))
        })?;
        let trunks = callguard_telephony::sip::trunks::Trunks::parse(
            &self.text("sip.trunks").unwrap_or_default(),
        )
        .map_err(|e| ConfigError(format!("{}: {e}", self.describe("sip.trunks"))))?;
        let media_ip = match self.text("sip.media_address") {
            Some(a) => a.parse().map_err(|_| {
                ConfigError(format!(
                    "{} is not an IP address",
                    self.describe("sip.media_address")
                ))
            })?,
            None if listen.ip().is_unspecified() => {
                return Err(ConfigError(format!(
                "{} listens on every address: set sip.media_address to the address callers reach",
                self.describe("sip.listen")
            )))
            }
            None => listen.ip(),
        };
        let rtp_ports = match self.text("sip.rtp_ports") {
            None => (16000, 16999),
            Some(r) => r
                .split_once('-')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
                .filter(|&(a, b): &(u16, u16)| a >= 1024 && b > a)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{} must be a range like 16000-16999 above 1023",
                        self.describe("sip.rtp_ports")
                    ))
                })?,
        };
        let realm = self.text("sip.realm").unwrap_or_else(|| "callguard".into());
        if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
            return Err(ConfigError(format!(
                "{} may not hold quotes, backslashes or control characters",
                self.describe("sip.realm")
            )));
        }
        let digest_algorithms = match self.text("sip.digest_algorithms") {
            None => callguard_telephony::sip::digest::Algorithm::ALL.to_vec(),
            Some(list) => {
                let mut algs = Vec::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let alg = callguard_telephony::sip::digest::Algorithm::from_name(name)
                        .ok_or_else(|| {
                            ConfigError(format!(
                                "{}: {name:?} is not SHA-256 or MD5",
                                self.describe("sip.digest_algorithms")
                            ))
                        })?;
                    if !algs.contains(&alg) {
                        algs.push(alg);
                    }
                }
                if algs.is_empty() {
                    return Err(ConfigError(format!(
                        "{} needs SHA-256, MD5 or both",
                        self.describe("sip.digest_algorithms")
                    )));
                }
                algs
            }
        };
        let menu = match self.text("sip.ivr_menu") {
            Some(m) => callguard_telephony::sip::ivr::Menu::parse(&m)
                .map_err(|e| ConfigError(format!("{}: {e}", self.describe("sip.ivr_menu"))))?,
            None => callguard_telephony::sip::ivr::Menu::default(),
        };
        let prompts = match self.text("sip.prompts_dir") {
            Some(dir) => callguard_telephony::load_prompts(Path::new(&dir))
                .map_err(|e| ConfigError(format!("{}: {e}", self.describe("sip.prompts_dir"))))?,
            None => callguard_telephony::media::prompts::PromptSet::builtin(),
        };
        let tls_listen = match self.text("sip.tls_listen") {
            None => None,
            Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
                ConfigError(format!(
                    "{} is not an address and port like 127.0.0.1:5061",
                    self.describe("sip.tls_listen")
                ))
            })?),
        };
        let flag = |key: &str| -> Result<bool, ConfigError> {
            match self.text(key).as_deref() {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(_) => Err(ConfigError(format!(
                    "{} must be true or false",
                    self.describe(key)
                ))),
            }
        };
        let agents_require_tls = flag("sip.agents_require_tls")?;
        if agents_require_tls && tls_listen.is_none() {
            return Err(ConfigError(format!(
                "{} needs sip.tls_listen: without it no softphone could register",
                self.describe("sip.agents_require_tls")
            )));
        }
        let agents_require_srtp = flag("sip.agents_require_srtp")?;
        Ok(Some(callguard_telephony::sip::SipSettings {
            tls_listen,
            tls_config: None,
            agents_require_tls,
            agents_require_srtp,
            listen,
            trunks,
            realm,
            digest_algorithms,
            media_ip,
            rtp_ports,
            menu,
            prompts: std::sync::Arc::new(prompts),
            acd: self.acd_settings()?,
            dtmf_mask: match self.text("sip.dtmf_mask") {
                Some(t) => {
                    callguard_telephony::media::mask::MaskStyle::parse(&t).ok_or_else(|| {
                        ConfigError(format!(
                            "{} must be tone or silence",
                            self.describe("sip.dtmf_mask")
                        ))
                    })?
                }
                None => callguard_telephony::media::mask::MaskStyle::default(),
            },
        }))
    }

    /// The `queues.*` settings of the SIP edge's ACD.
    fn acd_settings(&self) -> Result<callguard_telephony::sip::acd::AcdSettings, ConfigError> {
        use std::time::Duration;
        let mut acd = callguard_telephony::sip::acd::AcdSettings::default();
        let seconds = |key: &str, low: u64, high: u64| -> Result<Option<Duration>, ConfigError> {
            match self.number::<u64>(key, "a number of seconds")? {
                Some(s) if (low..=high).contains(&s) => Ok(Some(Duration::from_secs(s))),
                Some(_) => Err(ConfigError(format!(
                    "{} must be between {low} and {high} seconds",
                    self.describe(key)
                ))),
                None => Ok(None),
            }
        };
        if let Some(d) = seconds("queues.ring_seconds", 3, 120)? {
            acd.ring = d;
        }
        if let Some(d) = seconds("queues.max_wait_seconds", 10, 86_400)? {
            acd.max_wait = d;
        }
        if let Some(d) = seconds("queues.announce_seconds", 5, 3_600)? {
            acd.announce_every = d;
        }
        if let Some(o) = self.text("queues.overflow") {
            acd.overflow = callguard_telephony::sip::acd::parse_overflow(&o)
                .map_err(|e| ConfigError(format!("{}: {e}", self.describe("queues.overflow"))))?;
        }
        Ok(acd)
    }

    fn metrics_access(
        &self,
    ) -> Result<callguard_server::features::ops::service::MetricsAccess, ConfigError> {
        use callguard_server::features::ops::service::MetricsAccess;
        let mut access = MetricsAccess::default();
        if let Some(token) = self.text("metrics.token") {
            if token.chars().count() < 16 || token.chars().any(char::is_whitespace) {
                return Err(ConfigError(format!(
                    "{} must be at least 16 characters without spaces",
                    self.describe("metrics.token")
                )));
            }
            access.token = Some(Secret::new(token));
        }
        if let Some(list) = self.text("metrics.allow") {
            access.allow = if list.eq_ignore_ascii_case("none") {
                Vec::new()
            } else {
                self.networks("metrics.allow")?
            };
        }
        Ok(access)
    }

    fn connection_limits(
        &self,
    ) -> Result<callguard_server::http::connection::ConnectionLimits, ConfigError> {
        let mut limits = callguard_server::http::connection::ConnectionLimits::default();
        for (key, slot) in [
            (
                "http.handshake_timeout_seconds",
                &mut limits.handshake_timeout,
            ),
            ("http.idle_timeout_seconds", &mut limits.idle_timeout),
            ("http.body_timeout_seconds", &mut limits.body_timeout),
            ("http.keep_alive_seconds", &mut limits.keep_alive),
        ] {
            if let Some(n) = self.number::<u64>(key, "a whole number of seconds from 1 to 3600")? {
                if !(1..=3600).contains(&n) {
                    return Err(ConfigError(format!(
                        "{} must be a whole number of seconds from 1 to 3600",
                        self.describe(key)
                    )));
                }
                *slot = std::time::Duration::from_secs(n);
            }
        }
        if let Some(n) = self.number::<usize>(
            "http.max_connections",
            "a whole number of connections from 1 to 1000000",
        )? {
            if !(1..=1_000_000).contains(&n) {
                return Err(ConfigError(format!(
                    "{} must be a whole number of connections from 1 to 1000000",
                    self.describe("http.max_connections")
                )));
            }
            limits.max_connections = n;
        }
        Ok(limits)
    }

    fn number<T: std::str::FromStr>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(key) {
            Some((v, _)) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ConfigError(format!("{} must be {what}", self.describe(key)))),
            None => Ok(None),
        }
    }

    /// Agent states: `queues.wrap_up_seconds`, `queues.skills`, `desk.not_ready_reasons`.
    fn presence_settings(
        &self,
    ) -> Result<callguard_server::features::presence::service::PresenceSettings, ConfigError> {
        use callguard_server::features::interactions::wrap_up::valid_disposition_code;
        let mut p = callguard_server::features::presence::service::PresenceSettings::default();
        if let Some(n) = self.number::<u64>("queues.wrap_up_seconds", "a number of seconds")? {
            if n > 3600 {
                return Err(ConfigError(format!(
                    "{} must be 0 to 3600 seconds",
                    self.describe("queues.wrap_up_seconds")
                )));
            }
            p.wrap_up = std::time::Duration::from_secs(n);
        }
        if let Some(list) = self.text("desk.not_ready_reasons") {
            let mut reasons: Vec<String> = Vec::new();
            for r in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if !valid_disposition_code(r) {
                    return Err(ConfigError(format!(
                        "{} lists {r:?}: each reason must be 1 to 40 lower-case letters, digits or _, like lunch",
                        self.describe("desk.not_ready_reasons")
                    )));
                }
                if !reasons.iter().any(|c| c == r) {
                    reasons.push(r.to_owned());
                }
            }
            if reasons.is_empty() {
                return Err(ConfigError(format!(
                    "{} must list at least one reason, like break, lunch",
                    self.describe("desk.not_ready_reasons")
                )));
            }
            p.not_ready_reasons = reasons;
        }
        if let Some(text) = self.text("queues.skills") {
            p.skills = parse_skills(&text)
                .map_err(|e| ConfigError(format!("{}: {e}", self.describe("queues.skills"))))?;
        }
        Ok(p)
    }

    /// Supervisor monitoring: `queues.supervisors`, `monitor.tell_agents`.
    fn monitor_settings(
        &self,
    ) -> Result<callguard_server::features::monitor::service::MonitorSettings, ConfigError> {
        let mut m = callguard_server::features::monitor::service::MonitorSettings::default();
        if let Some(text) = self.text("queues.supervisors") {
            m.supervisors = parse_skills(&text).map_err(|e| {
                ConfigError(format!("{}: {e}", self.describe("queues.supervisors")))
            })?;
        }
        if let Some(v) = self.text("monitor.tell_agents") {
            m.tell_agents = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError(format!(
                        "{} must be true or false",
                        self.describe("monitor.tell_agents")
                    )))
                }
            };
        }
        Ok(m)
    }

    /// Queue figures: `queues.service_level_seconds`; the queues of the IVR menu and of
    /// `queues.skills` are shown from the start.
    fn queue_settings(
        &self,
    ) -> Result<callguard_server::features::queues::service::QueueSettings, ConfigError> {
        let mut q = callguard_server::features::queues::service::QueueSettings::default();
        if let Some(n) =
            self.number::<u64>("queues.service_level_seconds", "a number of seconds")?
        {
            if !(1..=3600).contains(&n) {
                return Err(ConfigError(format!(
                    "{} must be 1 to 3600 seconds",
                    self.describe("queues.service_level_seconds")
                )));
            }
            q.service_level = std::time::Duration::from_secs(n);
        }
        let menu = match self.text("sip.ivr_menu") {
            Some(m) => callguard_telephony::sip::ivr::Menu::parse(&m).unwrap_or_default(),
            None => callguard_telephony::sip::ivr::Menu::default(),
        };
        let mut known: Vec<String> = menu.0.values().cloned().collect();
        if let Some(text) = self.text("queues.skills") {
            known.extend(parse_skills(&text).unwrap_or_default().into_keys());
        }
        known.sort();
        known.dedup();
        q.known = known;
        Ok(q)
    }

    fn staff_settings(
        &self,
    ) -> Result<callguard_server::features::staff::service::StaffSettings, ConfigError> {
        let mut staff = callguard_server::features::staff::service::StaffSettings::default();
        if let Some(wait) = self.number::<i64>(
            "staff.confirmation_wait_seconds",
            "a whole number of seconds, 0 or more",
        )? {
            if wait < 0 {
                return Err(ConfigError(format!(
                    "{} must be a whole number of seconds, 0 or more",
                    self.describe("staff.confirmation_wait_seconds")
                )));
            }
            staff.confirmation_wait_seconds = wait;
        }
        Ok(staff)
    }

    fn text(&self, key: &str) -> Option<String> {
        self.get(key).map(|(v, _)| v.trim().to_owned())
    }

    /// The wrap-up codes of `desk.dispositions`: at least one, each a short lower-case word.
    fn dispositions(&self, list: &str) -> Result<Vec<String>, ConfigError> {
        use callguard_server::features::interactions::wrap_up::valid_disposition_code;
        let mut codes: Vec<String> = Vec::new();
        for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !valid_disposition_code(code) {
                return Err(ConfigError(format!(
                    "{} lists {code:?}: each code must be 1 to 40 lower-case letters, digits or _, like callback_needed",
                    self.describe("desk.dispositions")
                )));
            }
            if !codes.iter().any(|c| c == code) {
                codes.push(code.to_owned());
            }
        }
        if codes.is_empty() {
            return Err(ConfigError(format!(
                "{} must list at least one code, like resolved, escalated",
                self.describe("desk.dispositions")
            )));
        }
        Ok(codes)
    }

    fn customer_settings(&self) -> Result<callguard_server::CustomerSettings, ConfigError> {
        use callguard_server::features::interactions::model::OperationKind;
        use callguard_server::notify::{SmsSettings, SmtpSettings, SmtpTls};
        let mut c = callguard_server::CustomerSettings::default();
        if let Some(n) =
            self.number::<usize>("vault.reveals_per_window", "a whole number from 1")?
        {
            if n == 0 {
                return Err(ConfigError(format!(
                    "{} must be at least 1",
                    self.describe("vault.reveals_per_window")
                )));
            }
            c.vault.reveals_per_window = n;
        }
        if let Some(n) = self.number::<i64>("vault.reveal_window_seconds", "a number of seconds")? {
            if n < 1 {
                return Err(ConfigError(format!(
                    "{} must be at least 1",
                    self.describe("vault.reveal_window_seconds")
                )));
            }
            c.vault.reveal_window_seconds = n;
        }
        for kind in OperationKind::ALL {
            let key = format!("verification.level.{}", kind.as_str());
            if let Some(level) = self.number::<i64>(&key, "1 or 2")? {
                if !(1..=2).contains(&level) {
                    return Err(ConfigError(format!("{} must be 1 or 2: no operation on a customer's behalf goes without identifying the caller", self.describe(&key))));
                }
                c.policy.levels.insert(kind, level);
            }
        }
        if let Some(list) = self.text("desk.dispositions") {
            c.policy.dispositions = self.dispositions(&list)?;
        }
        if let Some(level) = self.number::<i64>("verification.level.payment", "1 or 2")? {
            if !(1..=2).contains(&level) {
                return Err(ConfigError(format!(
                    "{} must be 1 or 2: no payment goes without identifying the caller",
                    self.describe("verification.level.payment")
                )));
            }
            c.policy.payment = level;
        }
        if let Some(name) = self.text("otp.sender_name") {
            c.notify.sender_name = name;
        }
        if let Some(host) = self.text("otp.smtp_host") {
            let tls = match self.text("otp.smtp_tls").as_deref() {
                None | Some("starttls") => SmtpTls::StartTls,
                Some("tls") => SmtpTls::Tls,
                Some("none") => SmtpTls::None,
                Some(_) => {
                    return Err(ConfigError(format!(
                        "{} must be starttls, tls or none",
                        self.describe("otp.smtp_tls")
                    )))
                }
            };
            let from = self.text("otp.smtp_from").ok_or_else(|| {
                ConfigError("`otp.smtp_from` is needed when `otp.smtp_host` is set".into())
            })?;
            c.notify.smtp = Some(SmtpSettings {
                host,
                port: self
                    .number::<u16>("otp.smtp_port", "a port number")?
                    .unwrap_or(587),
                tls,
                username: self.text("otp.smtp_username"),
                password: self.text("otp.smtp_password").map(Secret::new),
                from,
            });
        }
        if let Some(sid) = self.text("otp.sms_account_sid") {
            let base = self
                .text("otp.sms_url")
                .unwrap_or_else(|| callguard_server::notify::TWILIO_BASE_URL.to_owned());
            let base_url = url::Url::parse(&base).map_err(|_| {
                ConfigError(format!(
                    "{} must be an http(s):// URL",
                    self.describe("otp.sms_url")
                ))
            })?;
            let token = self.text("otp.sms_auth_token").ok_or_else(|| {
                ConfigError(
                    "`otp.sms_auth_token` is needed when `otp.sms_account_sid` is set".into(),
                )
            })?;
            let from = self.text("otp.sms_from").ok_or_else(|| {
                ConfigError("`otp.sms_from` is needed when `otp.sms_account_sid` is set".into())
            })?;
            c.notify.sms = Some(SmsSettings {
                base_url,
                account_sid: sid,
                auth_token: Secret::new(token),
                from,
            });
        }
        callguard_server::notify::Notifier::new(&c.notify)
            .map_err(|e| ConfigError(format!("`otp.*`: {e}")))?;
        Ok(c)
    }

    fn dnc_settings(
        &self,
    ) -> Result<callguard_server::features::dnc::registry::DncSettings, ConfigError> {
        use callguard_core::dnc::hours::{CallingHours, Window};
        let default = match self.get("dnc.calling_hours") {
            Some((v, _)) => Window::parse(v)
                .map_err(|e| ConfigError(format!("{}: {e}", self.describe("dnc.calling_hours"))))?,
            None => Window::TCPA,
        };
        let mut calling_hours = CallingHours::new(default);
        if let Some((v, _)) = self.get("dnc.calling_hours_regions") {
            calling_hours.set_all(v).map_err(|e| {
                ConfigError(format!(
                    "{}: {e}",
                    self.describe("dnc.calling_hours_regions")
                ))
            })?;
        }
        Ok(callguard_server::features::dnc::registry::DncSettings { calling_hours })
    }

    fn alert_settings(
        &self,
    ) -> Result<callguard_server::features::alerts::service::AlertSettings, ConfigError> {
        use callguard_core::alerts::WorkingHours;
        let mut a = callguard_server::features::alerts::service::AlertSettings::default();
        if let Some((v, _)) = self.get("alerts.webhook_url") {
            let u = url::Url::parse(v.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{} must be an http:// or https:// URL",
                        self.describe("alerts.webhook_url")
                    ))
                })?;
            a.webhook_url = Some(u);
        }
        if let Some((v, _)) = self.get("alerts.webhook_secret") {
            if v.trim().len() < 16 {
                return Err(ConfigError(format!(
                    "{} must be at least 16 characters",
                    self.describe("alerts.webhook_secret")
                )));
            }
            a.webhook_secret = Some(Secret::new(v.trim().to_owned()));
        }
        if a.webhook_url.is_some() && a.webhook_secret.is_none() {
            return Err(ConfigError("`alerts.webhook_url` needs `alerts.webhook_secret` so receivers can check the signature".into()));
        }
        if let Some((v, _)) = self.get("alerts.syslog") {
            if !v.contains(':') {
                return Err(ConfigError(format!(
                    "{} must be host:port of a syslog collector",
                    self.describe("alerts.syslog")
                )));
            }
            a.syslog = Some(v.trim().to_owned());
        }
        if let Some(n) = self.number::<u64>(
            "alerts.stream_check_seconds",
            "a whole number of seconds from 1 to 30",
        )? {
            if !(1..=callguard_server::features::alerts::service::STREAM_CHECK_MAX_SECONDS)
                .contains(&n)
            {
                return Err(ConfigError(format!(
                    "{} must be a whole number of seconds from 1 to 30",
                    self.describe("alerts.stream_check_seconds")
                )));
            }
            a.stream_check_seconds = n;
        }
        if let Some((v, _)) = self.get("alerts.working_hours") {
            let (start, end) = WorkingHours::parse_range(v).ok_or_else(|| {
                ConfigError(format!(
                    "{} must look like 08:00-18:00 (start before end)",
                    self.describe("alerts.working_hours")
                ))
            })?;
            let offset = match self.get("alerts.utc_offset") {
                Some((o, _)) => parse_offset(o).ok_or_else(|| {
                    ConfigError(format!(
                        "{} must look like +01:00 or -05:30",
                        self.describe("alerts.utc_offset")
                    ))
                })?,
                None => 0,
            };
            let weekends = match self
                .get("alerts.weekends")
                .map(|(w, _)| w.trim().to_ascii_lowercase())
            {
                None => false,
                Some(w) if w == "true" => true,
                Some(w) if w == "false" => false,
                Some(_) => {
                    return Err(ConfigError(format!(
                        "{} must be true or false",
                        self.describe("alerts.weekends")
                    )))
                }
            };
            a.rules.working_hours = Some(WorkingHours {
                start_minute: start,
                end_minute: end,
                utc_offset_minutes: offset,
                weekends,
            });
        }
        Ok(a)
    }

    fn audit_settings(
        &self,
        data_dir: &Path,
        public_url: Option<&url::Url>,
    ) -> Result<callguard_server::AuditSettings, ConfigError> {
        let mut audit = callguard_server::AuditSettings::defaults(data_dir);
        let host = public_url
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".into());
        audit.origin = match self.get("audit.origin") {
            Some((v, _)) => {
                let v = v.trim();
                if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '+') {
                    return Err(ConfigError(format!(
                        "{} must be a name without spaces or '+', like example.com/audit",
                        self.describe("audit.origin")
                    )));
                }
                v.to_owned()
            }
            None => format!("{host}/callguard-audit"),
        };
        if let Some((v, _)) = self.get("audit.signing_key_file") {
            audit.signing_key_file = PathBuf::from(v.trim());
        }
        if let Some((v, _)) = self.get("audit.witness_dir") {
            audit.witness.dir = PathBuf::from(v.trim());
        }
        if let Some((v, _)) = self.get("audit.syslog") {
            let v = v.trim();
            if !v.contains(':') {
                return Err(ConfigError(format!(
                    "{} must be host:port of a syslog collector",
                    self.describe("audit.syslog")
                )));
            }
            audit.witness.syslog = Some(v.to_owned());
        }
        if let Some((v, _)) = self.get("audit.witness_url") {
            let u = url::Url::parse(v.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{} must be an http:// or https:// URL",
                        self.describe("audit.witness_url")
                    ))
                })?;
            audit.witness.url = Some(u);
        }
        if let Some((v, _)) = self.get("audit.checkpoint_interval_ms") {
            let ms: u64 = v
                .trim()
                .parse()
                .ok()
                .filter(|n| (10..=3_600_000).contains(n))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{} must be a number of milliseconds between 10 and 3600000",
                        self.describe("audit.checkpoint_interval_ms")
                    ))
                })?;
            audit.checkpoint_interval = std::time::Duration::from_millis(ms);
        }
        Ok(audit)
    }

    /// Whether a data directory was configured (file or environment), rather than defaulted.
    #[must_use]
    pub fn data_dir_configured(&self) -> bool {
        self.get("data_dir").is_some()
    }

    /// Whether a log level was configured (file or environment).
    #[must_use]
    pub fn log_level_configured(&self) -> bool {
        self.get("log.level").is_some()
    }

    /// Log level and format.
    pub fn logging(&self) -> Result<(String, bool), ConfigError> {
        let level = self
            .get("log.level")
            .map_or("info".to_owned(), |(v, _)| v.trim().to_ascii_lowercase());
        if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
            return Err(ConfigError(format!(
                "{} must be one of error, warn, info, debug, trace",
                self.describe("log.level")
            )));
        }
        let json = match self
            .get("log.format")
            .map(|(v, _)| v.trim().to_ascii_lowercase())
        {
            None => false,
            Some(f) if f == "text" => false,
            Some(f) if f == "json" => true,
            Some(_) => {
                return Err(ConfigError(format!(
                    "{} must be text or json",
                    self.describe("log.format")
                )))
            }
        };
        Ok((level, json))
    }

    /// The effective configuration for `callguard config check`, secrets hidden.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for key in KEYS {
            let shown = match self.values.get(key.name) {
                Some(_) if key.secret => "<set, hidden>".to_owned(),
                Some((v, origin)) => format!("{v:?} ({origin})"),
                None => "(default)".to_owned(),
            };
            out.push_str(&format!(
                "{:<14} {:<28} {shown}\n",
                key.name,
                env_name(key.name)
            ));
        }
        out
    }
}

/// Minimal PostgreSQL URL check without pulling the driver into the CLI crate.
mod tokio_postgres_config {
    pub struct Config;
    impl std::str::FromStr for Config {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let u = url::Url::parse(s).map_err(|_| ())?;
            if u.host_str().is_some() {
                Ok(Config)
            } else {
                Err(())
            }
        }
    }
}

/// Parses `+HH:MM` / `-HH:MM` into minutes.
fn parse_offset(text: &str) -> Option<i32> {
    let t = text.trim();
    let (sign, rest) = match t.chars().next()? {
        '+' => (1, &t[1..]),
        '-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 14 && (0..60).contains(&m)).then_some(sign * (h * 60 + m))
}

fn read_secret_file(key: &str, path: &str) -> Result<(String, Origin), ConfigError> {
    let p = PathBuf::from(path.trim());
    let text = std::fs::read_to_string(&p).map_err(|e| {
        ConfigError(format!(
            "`{key}`: cannot read the secret file {}: {e}",
            p.display()
        ))
    })?;
    Ok((text.trim().to_owned(), Origin::SecretFile(p)))
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&name, t, out),
            other => out.push((name, other.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn monitor_settings_read_the_queues_supervisors_and_whether_agents_are_told() {
        let raw = Raw::load(
            None,
            &env_of(&[
                (
                    "CALLGUARD_QUEUES_SUPERVISORS",
                    "billing=sue; support=sue tom",
                ),
                ("CALLGUARD_MONITOR_TELL_AGENTS", "false"),
            ]),
        )
        .unwrap();
        let m = raw.monitor_settings().unwrap();
        assert_eq!(m.supervisors["support"], ["sue", "tom"]);
        assert!(!m.tell_agents);
        let default = Raw::load(None, &env_of(&[]))
            .unwrap()
            .monitor_settings()
            .unwrap();
        assert!(default.tell_agents && default.supervisors.is_empty());
        let bad = Raw::load(None, &env_of(&[("CALLGUARD_MONITOR_TELL_AGENTS", "yes")])).unwrap();
        assert!(bad
            .monitor_settings()
            .unwrap_err()
            .to_string()
            .contains("monitor.tell_agents"));
    }

    #[test]
    fn queue_settings_read_wrap_up_skills_reasons_and_service_level_and_bad_ones_name_the_key() {
        let raw = Raw::load(
            None,
            &env_of(&[
                ("CALLGUARD_QUEUES_WRAP_UP_SECONDS", "45"),
                ("CALLGUARD_QUEUES_SERVICE_LEVEL_SECONDS", "15"),
                ("CALLGUARD_QUEUES_SKILLS", "billing=ann bob; vip=carol"),
                ("CALLGUARD_DESK_NOT_READY_REASONS", "lunch, break,lunch"),
            ]),
        )
        .unwrap();
        let p = raw.presence_settings().unwrap();
        assert_eq!(p.wrap_up, std::time::Duration::from_secs(45));
        assert_eq!(p.not_ready_reasons, ["lunch", "break"]);
        assert_eq!(p.skills["billing"], ["ann", "bob"]);
        let q = raw.queue_settings().unwrap();
        assert_eq!(q.service_level, std::time::Duration::from_secs(15));
        assert_eq!(
            q.known,
            ["billing", "support", "vip"],
            "the menu's and the skills' queues"
        );
        let default = Raw::load(None, &env_of(&[])).unwrap();
        assert_eq!(
            default.presence_settings().unwrap().wrap_up,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(
            default.queue_settings().unwrap().service_level,
            std::time::Duration::from_secs(20)
        );
        for (key, value, named) in [
            (
                "CALLGUARD_QUEUES_WRAP_UP_SECONDS",
                "3601",
                "`queues.wrap_up_seconds`",
            ),
            (
                "CALLGUARD_QUEUES_SERVICE_LEVEL_SECONDS",
                "0",
                "`queues.service_level_seconds`",
            ),
            ("CALLGUARD_QUEUES_SKILLS", "billing", "`queues.skills`"),
            ("CALLGUARD_QUEUES_SKILLS", "billing=", "`queues.skills`"),
            ("CALLGUARD_QUEUES_SKILLS", "a=x; a=y", "`queues.skills`"),
            (
                "CALLGUARD_DESK_NOT_READY_REASONS",
                "Gone Fishing",
                "`desk.not_ready_reasons`",
            ),
        ] {
            let one = move |k: &str| (k == key).then(|| value.to_owned());
            let bad = Raw::load(None, &one).unwrap();
            let msg = match (bad.presence_settings(), bad.queue_settings()) {
                (Err(e), _) | (_, Err(e)) => e.to_string(),
                _ => panic!("{key}={value} was accepted"),
            };
            assert!(msg.contains(named), "{msg}");
        }
    }

    #[test]
    fn wrap_up_codes_come_from_desk_dispositions_and_a_bad_code_names_the_key() {
        let raw = Raw::load(
            None,
            &env_of(&[("CALLGUARD_DESK_DISPOSITIONS", "sale, no_sale,sale")]),
        )
        .unwrap();
        assert_eq!(
            raw.customer_settings().unwrap().policy.dispositions,
            ["sale", "no_sale"]
        );
        let bad = Raw::load(
            None,
            &env_of(&[("CALLGUARD_DESK_DISPOSITIONS", "Sale Done")]),
        )
        .unwrap();
        let msg = bad.customer_settings().err().unwrap().to_string();
        assert!(msg.contains("`desk.dispositions`"), "{msg}");
        let empty = Raw::load(None, &env_of(&[("CALLGUARD_DESK_DISPOSITIONS", " , ")])).unwrap();
        assert!(empty.customer_settings().is_err());
        let default = Raw::load(None, &env_of(&[])).unwrap();
        assert!(default
            .customer_settings()
            .unwrap()
            .policy
            .dispositions
            .contains(&"resolved".to_owned()));
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        let s = Raw::load(None, &env_of(&[])).unwrap().settings().unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(s.data_dir, PathBuf::from("./callguard-data"));
        assert!(s.database_url.is_none());
    }

    #[test]
    fn environment_overrides_the_file_and_errors_name_the_key() {
        let dir = std::env::temp_dir().join(format!("cg-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[log]\nlevel = \"debug\"\n",
        )
        .unwrap();
        let raw = Raw::load(
            Some(&file),
            &env_of(&[("CALLGUARD_LISTEN", "127.0.0.1:9100")]),
        )
        .unwrap();
        assert_eq!(raw.settings().unwrap().listen.port(), 9100);
        assert_eq!(raw.logging().unwrap().0, "debug");

        let bad = Raw::load(None, &env_of(&[("CALLGUARD_LISTEN", "not-an-address")])).unwrap();
        let msg = bad.settings().unwrap_err().to_string();
        assert!(
            msg.contains("`listen`") && msg.contains("CALLGUARD_LISTEN"),
            "{msg}"
        );

        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        let msg = Raw::load(Some(&file), &env_of(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("unknown key `lisen`"), "{msg}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_come_from_files_and_are_never_echoed() {
        let dir = std::env::temp_dir().join(format!("cg-cfg-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("db");
        std::fs::write(&f, "mysql://root:hunter2@db/x\n").unwrap();
        let path: &'static str = Box::leak(f.display().to_string().into_boxed_str());
        let leaked: &'static [(&'static str, &'static str)] =
            Box::leak(Box::new([("CALLGUARD_DATABASE_URL_FILE", path)]));
        let raw = Raw::load(None, &env_of(leaked)).unwrap();
        let msg = raw.settings().unwrap_err().to_string();
        assert!(
            msg.contains("database_url") && !msg.contains("hunter2"),
            "{msg}"
        );
        assert!(!raw.render().contains("hunter2"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn payments_are_off_by_default_and_each_gateway_names_its_missing_keys() {
        use callguard_server::features::payments::gateway::GatewaySettings;
        let s = Raw::load(None, &env_of(&[])).unwrap().settings().unwrap();
        assert!(s.payment_gateway.is_none());
        let msg = |pairs| {
            Raw::load(None, &env_of(pairs))
                .unwrap()
                .settings()
                .unwrap_err()
                .to_string()
        };
        assert!(msg(&[("CALLGUARD_PAYMENTS_GATEWAY", "paypal")]).contains("stripe or adyen"));
        assert!(msg(&[("CALLGUARD_PAYMENTS_GATEWAY", "stripe")])
            .contains("`payments.stripe_secret_key` is needed"));
        let adyen = msg(&[
            ("CALLGUARD_PAYMENTS_GATEWAY", "adyen"),
            (
                "CALLGUARD_PAYMENTS_ADYEN_URL",
                "https://checkout-test.adyen.com",
            ),
            ("CALLGUARD_PAYMENTS_ADYEN_API_KEY", "AQEsecret"),
        ]);
        assert!(adyen.contains("payments.adyen_merchant_account"), "{adyen}");
        let publishable = msg(&[
            ("CALLGUARD_PAYMENTS_GATEWAY", "stripe"),
            ("CALLGUARD_PAYMENTS_STRIPE_SECRET_KEY", "pk_live_abcdef"),
        ]);
        assert!(publishable.contains("sk_live_") && !publishable.contains("abcdef"));
        let in_clear = msg(&[
            ("CALLGUARD_PAYMENTS_GATEWAY", "stripe"),
            ("CALLGUARD_PAYMENTS_STRIPE_URL", "http://stripe.example"),
            ("CALLGUARD_PAYMENTS_STRIPE_SECRET_KEY", "sk_live_abcdef"),
        ]);
        assert!(in_clear.contains("https://"), "{in_clear}");
        let s = Raw::load(
            None,
            &env_of(&[
                ("CALLGUARD_PAYMENTS_GATEWAY", "stripe"),
                ("CALLGUARD_PAYMENTS_STRIPE_SECRET_KEY", "sk_test_hidden"),
                ("CALLGUARD_PAYMENTS_TIMEOUT_SECONDS", "5"),
            ]),
        )
        .unwrap()
        .settings()
        .unwrap();
        match s.payment_gateway.as_ref().unwrap() {
            GatewaySettings::Stripe(st) => {
                assert_eq!(st.base_url.as_str(), "https://api.stripe.com/");
                assert_eq!(st.timeout.as_secs(), 5);
            }
            GatewaySettings::Adyen(_) => panic!("stripe was configured"),
        }
        assert!(!format!("{s:?}").contains("hidden"));
    }

    #[test]
    fn the_stripe_key_comes_from_a_file() {
        let dir = std::env::temp_dir().join(format!("cg-cfg-stripe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("stripe");
        std::fs::write(&f, "sk_test_fromafile\n").unwrap();
        let path: &'static str = Box::leak(f.display().to_string().into_boxed_str());
        let leaked: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
            ("CALLGUARD_PAYMENTS_GATEWAY", "stripe"),
            ("CALLGUARD_PAYMENTS_STRIPE_SECRET_KEY_FILE", path),
        ]));
        let s = Raw::load(None, &env_of(leaked))
            .unwrap()
            .settings()
            .unwrap();
        assert!(s.payment_gateway.is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_key_file_setting_names_a_file_to_create_not_a_secret_to_read() {
        let raw = Raw::load(
            None,
            &env_of(&[("CALLGUARD_KEK_FILE", "/nonexistent/dir/kek")]),
        )
        .unwrap();
        match raw.settings().unwrap().kek {
            KekSource::File(p) => assert_eq!(p, PathBuf::from("/nonexistent/dir/kek")),
            KekSource::Inline(_) => panic!("kek_file must name the key file"),
        }
    }

    #[test]
    fn calling_hours_default_to_the_tcpa_window_and_bad_ones_name_their_key() {
        use callguard_core::dnc::hours::Window;
        let hours = Raw::load(None, &env_of(&[]))
            .unwrap()
            .settings()
            .unwrap()
            .dnc
            .calling_hours;
        assert_eq!(hours.default_window(), Window::TCPA);
        assert_eq!(hours.overrides().count(), 0);
        let set = Raw::load(
            None,
            &env_of(&[
                ("CALLGUARD_DNC_CALLING_HOURS", "09:00-20:00"),
                (
                    "CALLGUARD_DNC_CALLING_HOURS_REGIONS",
                    "US-FL=08:00-20:00; America/Chicago=10:00-19:00",
                ),
            ]),
        )
        .unwrap()
        .settings()
        .unwrap()
        .dnc
        .calling_hours;
        assert_eq!(set.default_window().to_string(), "09:00-20:00");
        assert_eq!(set.overrides().count(), 2);
        for (var, value, key) in [
            (
                "CALLGUARD_DNC_CALLING_HOURS",
                "21:00-08:00",
                "`dnc.calling_hours`",
            ),
            (
                "CALLGUARD_DNC_CALLING_HOURS_REGIONS",
                "Florida=08:00-20:00",
                "`dnc.calling_hours_regions`",
            ),
            (
                "CALLGUARD_DNC_CALLING_HOURS_REGIONS",
                "US-FL=8pm",
                "`dnc.calling_hours_regions`",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([(var, value)]));
            let msg = Raw::load(None, &env_of(pairs))
                .unwrap()
                .settings()
                .unwrap_err()
                .to_string();
            assert!(msg.contains(key) && msg.contains(var), "{msg}");
        }
    }

    #[test]
    fn connection_limits_default_to_bounded_values_and_bad_ones_name_their_key() {
        use std::time::Duration;
        let limits = Raw::load(None, &env_of(&[]))
            .unwrap()
            .settings()
            .unwrap()
            .http;
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.body_timeout, Duration::from_secs(30));
        assert_eq!(limits.max_connections, 4096);
        let set = Raw::load(
            None,
            &env_of(&[
                ("CALLGUARD_HTTP_IDLE_TIMEOUT_SECONDS", "2"),
                ("CALLGUARD_HTTP_MAX_CONNECTIONS", "5"),
            ]),
        )
        .unwrap()
        .settings()
        .unwrap()
        .http;
        assert_eq!(set.idle_timeout, Duration::from_secs(2));
        assert_eq!(set.max_connections, 5);
        for (var, value, key) in [
            (
                "CALLGUARD_HTTP_IDLE_TIMEOUT_SECONDS",
                "0",
                "`http.idle_timeout_seconds`",
            ),
            (
                "CALLGUARD_HTTP_BODY_TIMEOUT_SECONDS",
                "soon",
                "`http.body_timeout_seconds`",
            ),
            (
                "CALLGUARD_HTTP_MAX_CONNECTIONS",
                "0",
                "`http.max_connections`",
            ),
            (
                "CALLGUARD_ALERTS_STREAM_CHECK_SECONDS",
                "31",
                "`alerts.stream_check_seconds`",
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([(var, value)]));
            let msg = Raw::load(None, &env_of(pairs))
                .unwrap()
                .settings()
                .unwrap_err()
                .to_string();
            assert!(msg.contains(key) && msg.contains(var), "{msg}");
        }
    }

    #[test]
    fn queue_settings_and_digest_algorithms_are_read_and_bad_ones_say_why() {
        let sip = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060")];
            vars.extend_from_slice(extra);
            let vars: &'static [(&'static str, &'static str)] = Vec::leak(vars);
            Raw::load(None, &env_of(vars)).unwrap().sip_settings()
        };
        let s = sip(&[]).unwrap().unwrap();
        assert_eq!(s.acd, callguard_telephony::sip::acd::AcdSettings::default());
        assert_eq!(s.digest_algorithms.len(), 2);
        let s = sip(&[
            ("CALLGUARD_QUEUES_RING_SECONDS", "20"),
            ("CALLGUARD_QUEUES_MAX_WAIT_SECONDS", "120"),
            ("CALLGUARD_QUEUES_OVERFLOW", "billing=support"),
            ("CALLGUARD_QUEUES_ANNOUNCE_SECONDS", "45"),
            ("CALLGUARD_SIP_DIGEST_ALGORITHMS", "md5"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.acd.ring, std::time::Duration::from_secs(20));
        assert_eq!(s.acd.max_wait, std::time::Duration::from_secs(120));
        assert_eq!(s.acd.announce_every, std::time::Duration::from_secs(45));
        assert_eq!(
            s.acd.overflow.get("billing").map(String::as_str),
            Some("support")
        );
        assert_eq!(
            s.digest_algorithms,
            vec![callguard_telephony::sip::digest::Algorithm::Md5]
        );
        for (key, value, says) in [
            ("CALLGUARD_QUEUES_RING_SECONDS", "1", "between 3 and 120"),
            ("CALLGUARD_QUEUES_RING_SECONDS", "soon", "number of seconds"),
            ("CALLGUARD_QUEUES_OVERFLOW", "billing=billing", "itself"),
            (
                "CALLGUARD_SIP_DIGEST_ALGORITHMS",
                "SHA-1",
                "not SHA-256 or MD5",
            ),
            (
                "CALLGUARD_SIP_DIGEST_ALGORITHMS",
                " , ",
                "SHA-256, MD5 or both",
            ),
        ] {
            let e = sip(&[(key, value)]).unwrap_err().0;
            assert!(e.contains(key) && e.contains(says), "{key}={value}: {e}");
        }
    }

    #[test]
    fn sip_over_tls_and_the_agents_require_settings_are_read_and_bad_ones_say_why() {
        let sip = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060")];
            vars.extend_from_slice(extra);
            let vars: &'static [(&'static str, &'static str)] = Vec::leak(vars);
            Raw::load(None, &env_of(vars)).unwrap().sip_settings()
        };
        let s = sip(&[]).unwrap().unwrap();
        assert_eq!(
            (s.tls_listen, s.agents_require_tls, s.agents_require_srtp),
            (None, false, false)
        );
        let s = sip(&[
            ("CALLGUARD_SIP_TLS_LISTEN", "127.0.0.1:5061"),
            ("CALLGUARD_SIP_AGENTS_REQUIRE_TLS", "true"),
            ("CALLGUARD_SIP_AGENTS_REQUIRE_SRTP", "true"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.tls_listen, Some("127.0.0.1:5061".parse().unwrap()));
        assert!(s.agents_require_tls && s.agents_require_srtp);
        for (vars, key, says) in [
            (
                vec![("CALLGUARD_SIP_TLS_LISTEN", "5061")],
                "CALLGUARD_SIP_TLS_LISTEN",
                "address and port",
            ),
            (
                vec![("CALLGUARD_SIP_AGENTS_REQUIRE_SRTP", "yes")],
                "CALLGUARD_SIP_AGENTS_REQUIRE_SRTP",
                "true or false",
            ),
            (
                vec![("CALLGUARD_SIP_AGENTS_REQUIRE_TLS", "true")],
                "CALLGUARD_SIP_AGENTS_REQUIRE_TLS",
                "needs sip.tls_listen",
            ),
        ] {
            let e = sip(&vars).unwrap_err().0;
            assert!(e.contains(key) && e.contains(says), "{key}: {e}");
        }
    }

    #[test]
    fn sip_is_off_by_default_and_trunks_come_from_a_toml_array_or_a_comma_list() {
        assert!(Raw::load(None, &env_of(&[]))
            .unwrap()
            .sip_settings()
            .unwrap()
            .is_none());
        let dir = std::env::temp_dir().join(format!("cg-sipcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "[sip]\nlisten = \"127.0.0.1:5060\"\ntrunks = [\"192.0.2.0/24\", \"127.0.0.1\"]\n",
        )
        .unwrap();
        let s = Raw::load(Some(&file), &env_of(&[]))
            .unwrap()
            .sip_settings()
            .unwrap()
            .unwrap();
        assert!(s.trunks.admits("192.0.2.9".parse().unwrap()));
        assert!(!s.trunks.admits("127.0.0.2".parse().unwrap()));
        assert_eq!(s.rtp_ports, (16000, 16999));
        let env = Raw::load(
            None,
            &env_of(&[
                ("CALLGUARD_SIP_LISTEN", "0.0.0.0:5060"),
                ("CALLGUARD_SIP_TRUNKS", "10.0.0.0/8"),
            ]),
        )
        .unwrap();
        let e = env.sip_settings().unwrap_err().0;
        assert!(e.contains("sip.media_address"), "{e}");
        let bad = Raw::load(
            None,
            &env_of(&[
                ("CALLGUARD_SIP_LISTEN", "127.0.0.1:5060"),
                ("CALLGUARD_SIP_TRUNKS", "carrier"),
            ]),
        )
        .unwrap();
        let e = bad.sip_settings().unwrap_err().0;
        assert!(
            e.contains("CALLGUARD_SIP_TRUNKS") && e.contains("carrier"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_log_level_and_half_tls_settings_are_refused() {
        assert!(Raw::load(None, &env_of(&[("CALLGUARD_LOG_LEVEL", "loud")]))
            .unwrap()
            .logging()
            .is_err());
        let raw = Raw::load(
            None,
            &env_of(&[("CALLGUARD_TLS_CERT_FILE", "/etc/hostname")]),
        )
        .unwrap();
        assert!(raw
            .settings()
            .unwrap_err()
            .to_string()
            .contains("tls.key_file"));
    }
}
