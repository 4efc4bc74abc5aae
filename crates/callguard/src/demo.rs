//! `callguard demo`: a throw-away instance with one person per role, whose passwords, TOTP
//! secrets and recovery codes are printed so a newcomer can sign in within a minute. The data
//! lives in its own directory; nothing here is reachable from `serve`.

use callguard_core::totp::TotpSecret;
use callguard_core::{Role, Secret};
use callguard_server::{Runtime, Settings};

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

pub async fn run(
    settings: Settings,
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
            Err(callguard_server::error::ApiError::UsernameTaken) => continue,
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
    let url = settings.public_url.clone().map_or_else(
        || format!("https://localhost:{}", settings.listen.port()),
        |u| u.to_string(),
    );
    println!("================ CALLGUARD DEMO — demo credentials, never use them for real ================");
    println!("Data directory: {}", settings.data_dir.display());
    println!(
        "Open {url}/login (the certificate is self-signed: accept it once), then sign in as:\n"
    );
    for l in &lines {
        println!("{l}");
    }
    println!("==========================================================================================");
    callguard_server::serve(settings, rt, shutdown).await?;
    Ok(())
}
