//! `callguard demo`: a throw-away instance with one person per role, whose passwords, TOTP
//! secrets and recovery codes are printed so a newcomer can sign in within a minute. The data
//! lives in its own directory; nothing here is reachable from `serve`.

use callguard_core::totp::TotpSecret;
use callguard_core::{Role, Secret};
use callguard_server::{Runtime, Settings};
use std::path::Path;

const PEOPLE: [(&str, Role, &str); 4] = [
    ("demo-admin", Role::Admin, "admin demo passphrase 2026"),
    (
        "demo-supervisor",
        Role::Supervisor,
        "supervisor demo passphrase 2026",
    ),
    (
        "demo-compliance",
        Role::Compliance,
        "compliance demo passphrase 2026",
    ),
    ("demo-agent", Role::Agent, "agent demo passphrase 2026"),
];

struct DemoCustomer {
    name: &'static str,
    phone: &'static str,
    email: &'static str,
    id_kind: &'static str,
    id_value: &'static str,
    street: &'static str,
    postal: &'static str,
    city: &'static str,
    service: &'static str,
    answers: [&'static str; 2],
}

const DEMO_CUSTOMERS: [DemoCustomer; 3] = [
    DemoCustomer {
        name: "Jan Demo-Kowalski",
        phone: "+48601100200",
        email: "jan.demo@example.com",
        id_kind: "pesel",
        id_value: "44051401359",
        street: "ul. Przykładowa 1",
        postal: "00-950",
        city: "Warszawa",
        service: "demo-hosting-01",
        answers: ["Gdańsk", "Azor"],
    },
    DemoCustomer {
        name: "Anna Demo-Nowak",
        phone: "+48602200300",
        email: "anna.demo@example.com",
        id_kind: "pesel",
        id_value: "02070803628",
        street: "ul. Testowa 5 m. 2",
        postal: "30-001",
        city: "Kraków",
        service: "demo-hosting-02",
        answers: ["Poznań", "Mruczek"],
    },
    DemoCustomer {
        name: "Demo Sp. z o.o.",
        phone: "+48223300400",
        email: "biuro@demo.example",
        id_kind: "nip",
        id_value: "5260250274",
        street: "al. Pokazowa 10",
        postal: "02-001",
        city: "Warszawa",
        service: "demo-domains-03",
        answers: ["Łódź", "Reksio"],
    },
];

/// The file that marks a data directory as a demo's.
const MARKER: &str = "callguard-demo";

/// Makes `dir` the demo's: a new or empty directory, or one an earlier demo marked. A directory
/// holding anything else (a real instance's data, most likely, when CALLGUARD_DATA_DIR is set
/// in the shell) is refused: the demo adds accounts whose passwords it prints.
pub fn claim_data_dir(dir: &Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let marker = dir.join(MARKER);
    if dir.exists() && !marker.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| {
                format!(
                    "cannot read the demo's data directory {}: {e}",
                    dir.display()
                )
            })?
            .next()
            .is_none();
        if !empty {
            return Err(format!(
                "{} holds data that is not a demo's, and the demo adds accounts whose passwords it prints: give the demo a new or empty directory with --data-dir DIR, or unset CALLGUARD_DATA_DIR (and `data_dir` in --config) for a new temporary one",
                dir.display()
            )
            .into());
        }
    }
    let made = |e: std::io::Error| {
        format!(
            "cannot prepare the demo's data directory {}: {e}",
            dir.display()
        )
    };
    callguard_server::bootstrap::create_private_dir(dir).map_err(made)?;
    if !marker.exists() {
        callguard_server::bootstrap::write_private_file(
            &marker,
            b"This directory holds a `callguard demo` instance: accounts with published passwords. Never serve it for real.\n",
        )
        .map_err(made)?;
    }
    Ok(())
}

pub async fn run(
    mut settings: Settings,
    sip: Option<callguard_telephony::sip::SipSettings>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let rt = Runtime::open(&settings).await?;
    let identity = rt.identity(Default::default(), None);
    let mut lines = Vec::new();
    for (username, role, password) in PEOPLE {
        let totp = TotpSecret::generate();
        let (_, codes) = match identity
            .create_ready_user(username, role, Secret::from(password), &totp)
            .await
        {
            Ok(x) => x,
            Err(callguard_server::error::Error::UsernameTaken) => continue,
            Err(e) => return Err(e.to_string().into()),
        };
        lines.push(format!(
            "  {username:<16} role {role:<10} password: {password}\n  {:<16} TOTP secret: {}  (add to an authenticator app, or: oathtool --totp -b {})\n  {:<16} recovery codes (each works once): {}, {}\n",
            "",
            totp.to_base32().expose(),
            totp.to_base32().expose(),
            "",
            codes.first().map(|c| c.expose().as_str()).unwrap_or_default(),
            codes.get(1).map(|c| c.expose().as_str()).unwrap_or_default(),
        ));
    }
    // A small sample national Do-Not-Call registry (US numbers reserved for fiction), so the
    // Do-Not-Call page and its "check a number" form have something to show.
    let sample = settings.data_dir.join("demo-dnc-registry.txt");
    let numbers: String = (100..120).map(|n| format!("202555{n:04}\n")).collect();
    std::fs::write(&sample, numbers)
        .map_err(|e| format!("cannot write {}: {e}", sample.display()))?;
    crate::dnc_cli::import(&rt, &sample, false, Some("demo sample registry".into())).await?;
    // Demo customers (fictitious; the PESELs and NIP have valid checksums), each invited to the
    // portal.
    let (vault, _) = rt.customer_services(&settings.customers)?;
    let mut customers = Vec::new();
    for c in DEMO_CUSTOMERS {
        let body = serde_json::json!({
            "full_name": c.name,
            "phones": [c.phone],
            "emails": [c.email],
            "national_id": {"kind": c.id_kind, "value": c.id_value},
            "address": {"line1": c.street, "postal_code": c.postal, "city": c.city, "country": "PL"},
            "services": [c.service],
            "security_questions": [
                {"question": "Town of birth?", "answer": c.answers[0]},
                {"question": "First pet's name?", "answer": c.answers[1]}
            ]
        });
        let new: callguard_server::features::vault::service::NewCustomer =
            serde_json::from_value(body)?;
        let id = vault
            .create(&callguard_server::principal::Actor::cli(), new)
            .await
            .map_err(|e| e.to_string())?;
        customers.push((id, c));
    }
    let mut customer_lines = Vec::new();
    for (id, c) in &customers {
        let mut line = format!(
            "  customer {id}  {}  phone {}  {} {}  service {}  answers: {:?} / {:?}",
            c.name,
            c.phone,
            c.id_kind.to_uppercase(),
            c.id_value,
            c.service,
            c.answers[0],
            c.answers[1]
        );
        let token =
            callguard_server::features::gdpr::service::invite(&rt.store, &rt.accounts(), id)
                .await
                .map_err(|e| e.to_string())?;
        line.push_str(&format!(
            "\n  {:<17} portal: open /portal/setup and enter the invitation {}",
            "",
            token.expose()
        ));
        customer_lines.push(line);
    }
    let url = settings.public_url.clone().map_or_else(
        || format!("https://localhost:{}", settings.listen.port()),
        |u| u.to_string(),
    );
    println!("================ CALLGUARD DEMO — demo credentials, never use them for real ================");
    println!(
        "Data directory: {} (not removed on exit: delete it when done, or run the demo on it again with --data-dir)",
        settings.data_dir.display()
    );
    println!(
        "Open {url}/login (the certificate is self-signed: accept it once), then sign in as:\n"
    );
    for l in &lines {
        println!("{l}");
    }
    println!(
        "Agents: open {url}/desk, start a call from one of these numbers and verify the caller:\n"
    );
    for l in &customer_lines {
        println!("{l}");
    }
    println!(
        "\nDo-Not-Call: a sample registry of 20 numbers, +1 202 555 0100 to 0119, is loaded; check one on {url}/dnc."
    );
    println!();
    println!("==========================================================================================");
    if settings.sip_server.is_none() {
        settings.sip_server = Some(callguard_server::features::softphones::service::SipServer {
            realm: "callguard".into(),
            address: "127.0.0.1:5060".into(),
        });
    }
    let mut sip = sip;
    if let Some(s) = sip.as_mut().filter(|s| s.tls_listen.is_some()) {
        let paths = callguard_server::serve::certificate_paths(&settings)?;
        s.tls_config = Some(callguard_telephony::sip::tls_config(&paths)?);
    }
    let front_ends = demo_sip(sip).await.into_iter().collect();
    callguard_server::serve_with(settings, rt, shutdown, front_ends).await?;
    Ok(())
}

/// The SIP edge of the demo: the configured one, else 127.0.0.1:5060 taking calls from this
/// machine. A taken port is said and the demo goes on without SIP.
async fn demo_sip(
    sip: Option<callguard_telephony::sip::SipSettings>,
) -> Option<callguard_server::FrontEnd> {
    let sip = sip.unwrap_or_else(|| callguard_telephony::sip::SipSettings {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
        trunks: callguard_telephony::sip::trunks::Trunks::parse("127.0.0.1, ::1")
            .unwrap_or_default(),
        realm: "callguard".into(),
        digest_algorithms: callguard_telephony::sip::digest::Algorithm::ALL.to_vec(),
        media_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        rtp_ports: (16000, 16999),
        menu: callguard_telephony::sip::ivr::Menu::default(),
        prompts: std::sync::Arc::new(callguard_telephony::media::prompts::PromptSet::builtin()),
        acd: callguard_telephony::sip::acd::AcdSettings::default(),
        tls_listen: None,
        tls_config: None,
        agents_require_tls: false,
        agents_require_srtp: false,
        dtmf_mask: callguard_telephony::media::mask::MaskStyle::default(),
    });
    let listen = sip.listen;
    match callguard_telephony::sip::bind(sip).await {
        Ok(bound) => {
            println!("SIP edge on {listen} (UDP and TCP): calls from this machine are answered.");
            Some(callguard_telephony::front_end(bound))
        }
        Err(e) => {
            println!("No SIP edge in this demo: {e} (is another SIP program using the port?)");
            None
        }
    }
}
