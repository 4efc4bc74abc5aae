//! Payment page benchmark (issue #11): the hosted page's time to first byte under load.
//!
//! Starts the given `callguard` binary on SQLite in a temporary directory, makes one payable
//! link the way an agent does (account set up with its TOTP, a customer, a call verified by
//! national id, `POST /api/v1/payments`), then for each target keeps `--clients` requests in
//! flight for `--seconds` and records, per request, the time from sending to the response head
//! (time to first byte, over kept-alive HTTPS connections) and the requests per second:
//! 1. `GET /pay/{token}` of the payable link (the token hashed, the payment read, expiry
//!    checked, the form rendered with its SRI hashes);
//! 2. `GET /pay/preview` (the same page without the database);
//! 3. `GET /healthz` (the server's floor for one HTTPS request).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: callguard-bench-payflow --bin PATH/callguard [--clients N (32)] [--seconds S (10)]";

struct Options {
    bin: PathBuf,
    clients: usize,
    seconds: u64,
}

fn options() -> Options {
    let mut o = Options {
        bin: PathBuf::from("target/release/callguard"),
        clients: 32,
        seconds: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--bin" => o.bin = PathBuf::from(value()),
            "--clients" => o.clients = value().parse().expect("--clients N"),
            "--seconds" => o.seconds = value().parse().expect("--seconds S"),
            _ => panic!("{USAGE}"),
        }
    }
    o
}

struct Running {
    child: std::process::Child,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn env(cmd: &mut Command, dir: &std::path::Path) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CALLGUARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CALLGUARD_DATA_DIR", dir.join("data"))
        .env("CALLGUARD_LISTEN", "127.0.0.1:0")
        .env("CALLGUARD_LOG_LEVEL", "warn")
        .env("CALLGUARD_PAYMENTS_PAGE_CHECK_SECONDS", "0")
        .env("CALLGUARD_VERIFICATION_LEVEL_PAYMENT", "1");
}

async fn start(bin: &PathBuf) -> (Running, reqwest::Client, String) {
    let dir = std::env::temp_dir().join(format!("callguard-bench-payflow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("serve").stdout(Stdio::null()).stderr(Stdio::null());
    env(&mut cmd, &dir);
    let running = Running {
        child: cmd.spawn().expect("start callguard"),
        dir: dir.clone(),
    };
    let addr_file = dir.join("data/run/address");
    let started = Instant::now();
    while !addr_file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "callguard did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let addr: std::net::SocketAddr = std::fs::read_to_string(&addr_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cert = std::fs::read(dir.join("data/tls/cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .resolve("localhost", addr)
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    (
        running,
        client,
        format!("https://localhost:{}", addr.port()),
    )
}

/// An agent account signed in with password and TOTP: its bearer token.
async fn agent(bin: &PathBuf, dir: &std::path::Path, c: &reqwest::Client, base: &str) -> String {
    let mut cmd = Command::new(bin);
    cmd.args(["user", "add", "bench-agent", "--role", "agent"]);
    env(&mut cmd, dir);
    let setup = String::from_utf8(cmd.output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned();
    let password = "a long enough benchmark passphrase";
    let started: Value = c
        .post(format!("{base}/api/v1/auth/setup"))
        .json(&json!({"token": setup, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = data_encoding::BASE32_NOPAD
        .decode(
            started["totp_secret"]
                .as_str()
                .unwrap()
                .trim_end_matches('=')
                .as_bytes(),
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, &secret, now);
    let confirmed: Value = c
        .post(format!("{base}/api/v1/auth/setup/confirm"))
        .json(&json!({"challenge": started["challenge"], "code": code}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    confirmed["token"].as_str().expect("signed in").to_owned()
}

/// One payable link: a customer, a call verified by national id, a link payment.
async fn link(c: &reqwest::Client, base: &str, token: &str) -> String {
    let post = |path: &str, body: Value| {
        c.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let customer: Value = post("/api/v1/customers", json!({
        "full_name": "Bench Customer", "phones": ["+48601234567"], "emails": [],
        "national_id": {"kind": "pesel", "value": "44051401359"}, "date_of_birth": "1944-05-14",
        "address": {"line1": "ul. Prosta 1", "postal_code": "00-950", "city": "Warszawa", "country": "PL"},
        "services": [], "security_questions": []
    })).await.unwrap().json().await.unwrap();
    let call: Value = post(
        "/api/v1/interactions",
        json!({"channel": "phone", "direction": "inbound",
        "from": "+48601234567", "customer_id": customer["id"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = call["id"].as_str().unwrap();
    post(
        &format!("/api/v1/interactions/{id}/verify"),
        json!({"method": "national_id", "value": "44051401359"}),
    )
    .await
    .unwrap()
    .error_for_status()
    .unwrap();
    let p: Value = post(
        "/api/v1/payments",
        json!({"interaction_id": id, "amount_minor": 4990,
        "currency": "EUR", "method": "link"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let url = p["link_url"].as_str().expect("a link").to_owned();
    url.rsplit('/').next().unwrap().to_owned()
}

struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(c: &reqwest::Client, url: String, clients: usize, seconds: u64) -> Figures {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let mut ttfb = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let r = c.get(&url).send().await.unwrap();
                    ttfb.push(sent.elapsed());
                    assert!(r.status().is_success(), "{url}: {}", r.status());
                    r.bytes().await.unwrap();
                }
                ttfb
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    Figures {
        rate: all.len() as f64 / seconds as f64,
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let o = options();
    let (running, c, base) = start(&o.bin).await;
    let token = agent(&o.bin, &running.dir, &c, &base).await;
    let link = link(&c, &base, &token).await;
    println!(
        "payment page under load: {} clients, {} s each, one client thread, SQLite",
        o.clients, o.seconds
    );
    println!("| target | requests/s | TTFB p50 | TTFB p99 |\n|---|---|---|---|");
    for (name, path) in [
        ("GET /pay/{token} (a payable link)", format!("/pay/{link}")),
        ("GET /pay/preview (no database)", "/pay/preview".to_owned()),
        ("GET /healthz (floor)", "/healthz".to_owned()),
    ] {
        // Warm the connections first.
        load(&c, format!("{base}{path}"), o.clients, 1).await;
        let f = load(&c, format!("{base}{path}"), o.clients, o.seconds).await;
        println!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms |",
            f.rate,
            f.p50.as_secs_f64() * 1000.0,
            f.p99.as_secs_f64() * 1000.0
        );
    }
}
