//! Behind a load balancer: the client's address is taken from `X-Forwarded-For` or the PROXY
//! protocol only when the peer is on `http.trusted_proxies`, and that address is the one audited
//! and throttled. Driven through the real HAProxy (Debian's `haproxy`) with the configuration the
//! README documents (`deploy/haproxy.cfg`).

use crate::harness::{loopback, Backend, Deployment, Server};
use serde_json::json;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A failed sign-in sent from `from` with an `X-Forwarded-For` header: its status and, when
/// throttled, the seconds it was told to wait.
async fn failed_sign_in_waiting(
    server: &Server,
    from: u8,
    forwarded_for: &str,
    username: &str,
) -> (u16, u64) {
    let api = server.api_from(loopback(from));
    let req = api
        .client
        .post(api.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": username, "password": "not the password at all"}));
    let a = api.send_raw(format!("login via 127.0.0.{from}"), req).await;
    let wait = a
        .header("retry-after")
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    (a.status.as_u16(), wait)
}

/// A failed sign-in sent from `from` with an `X-Forwarded-For` header: its status.
async fn failed_sign_in(server: &Server, from: u8, forwarded_for: &str, username: &str) -> u16 {
    failed_sign_in_waiting(server, from, forwarded_for, username)
        .await
        .0
}

/// The sources of the audited failed sign-ins on `username`'s account.
async fn failure_sources(server: &Server, token: &str, username_ref: &str) -> Vec<String> {
    let page = server
        .api()
        .get("/api/v1/audit?start=0&limit=1000", Some(token))
        .await
        .expect(200)
        .json();
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "auth.sign_in"
                && e["outcome"] == "failure"
                && e["target"] == username_ref
        })
        .map(|e| e["source"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn user_ref(server: &Server, admin_token: &str, username: &str) -> String {
    let users = server
        .api()
        .get("/api/v1/users", Some(admin_token))
        .await
        .expect(200)
        .json();
    let id = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("{username} in {users}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    format!("user:{id}")
}

async fn forwarded_for_counts_only_from_a_trusted_proxy(backend: Backend) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_HTTP_TRUSTED_PROXIES", "127.0.0.7, 10.0.0.0/8")],
    )
    .await;
    let admin = server.admin_session().await;
    let officer = server.new_account("petra", "compliance").await;
    let victim = server.new_account("victor", "agent").await;
    let target = user_ref(&server, &admin.token, &victim.username).await;

    // An untrusted peer cannot choose the address it is audited under.
    assert_eq!(
        failed_sign_in(&server, 8, "203.0.113.9", &victim.username).await,
        401
    );
    // The trusted balancer appends the client it saw; whatever the client wrote before is not
    // believed beyond the nearest untrusted hop.
    assert_eq!(
        failed_sign_in(&server, 7, "198.51.100.1, 203.0.113.10", &victim.username).await,
        401
    );
    let sources = failure_sources(&server, &officer.token, &target).await;
    assert_eq!(sources, ["127.0.0.8", "203.0.113.10"], "{sources:?}");
}

async fn the_throttle_follows_the_client_behind_the_balancer(backend: Backend) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_HTTP_TRUSTED_PROXIES", "127.0.0.7")],
    )
    .await;
    // One client behind the balancer fails until it is throttled, and goes on (waiting as told)
    // until it owes at least 4 s: the throttle's clock counts whole seconds, so a shorter wait
    // could run out between the checks below on a busy machine.
    let mut throttled = false;
    for _ in 0..12 {
        match failed_sign_in_waiting(&server, 7, "203.0.113.20", "nobody-here").await {
            (401, _) => {}
            (429, wait) if wait >= 4 => {
                throttled = true;
                break;
            }
            (429, wait) => tokio::time::sleep(Duration::from_millis(wait * 1000 + 100)).await,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(throttled, "the client behind the balancer is throttled");
    // …while another client behind the same balancer is not: the balancer's own address is
    // not what the throttle counts.
    assert_eq!(
        failed_sign_in(&server, 7, "203.0.113.21", "nobody-here").await,
        401
    );
    // And a client cannot escape its throttle by writing another address itself.
    assert_eq!(
        failed_sign_in(&server, 7, "198.51.100.77, 203.0.113.20", "nobody-here").await,
        429
    );
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// HAProxy with the README's configuration, binding `port` and balancing to `nodes`.
pub fn haproxy(dir: &std::path::Path, port: u16, nodes: &[std::net::SocketAddr]) -> Haproxy {
    let documented = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy.cfg"),
    )
    .expect("deploy/haproxy.cfg");
    let mut config = String::new();
    for line in documented.lines() {
        let t = line.trim_start();
        if t.starts_with("bind ") {
            config.push_str(&format!("    bind 127.0.0.1:{port}\n"));
        } else if t.starts_with("server ") {
            if t.starts_with("server node1 ") {
                for (i, node) in nodes.iter().enumerate() {
                    config.push_str(&format!("    server node{} {node}\n", i + 1));
                }
            }
        } else {
            config.push_str(line);
            config.push('\n');
        }
    }
    let file = dir.join("haproxy.cfg");
    std::fs::write(&file, config).unwrap();
    let child = Command::new("haproxy")
        .arg("-f")
        .arg(&file)
        .arg("-db")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
        .spawn()
        .expect("haproxy (Debian package `haproxy`; scripts/test-all installs it)");
    Haproxy(child)
}

async fn haproxy_passes_the_client_address_with_the_proxy_protocol(backend: Backend) {
    let server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_HTTP_TRUSTED_PROXIES", "127.0.0.1")],
    )
    .await;
    let admin = server.admin_session().await;
    let officer = server.new_account("paula", "compliance").await;
    let victim = server.new_account("vera", "agent").await;
    let target = user_ref(&server, &admin.token, &victim.username).await;

    let port = free_port();
    let node_port = url::Url::parse(&server.url("")).unwrap().port().unwrap();
    let _balancer = haproxy(
        server.root(),
        port,
        &[std::net::SocketAddr::from(([127, 0, 0, 1], node_port))],
    );
    // Through the balancer from 127.0.0.9: HAProxy connects from 127.0.0.1, the PROXY header
    // names 127.0.0.9.
    let through = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(loopback(9))
        .timeout(Duration::from_secs(30))
        // Under the server's 10 s wait for the next request (HTTP/1).
        .pool_idle_timeout(Duration::from_secs(8))
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/api/v1/auth/login");
    let mut answered = None;
    for _ in 0..100 {
        // Until HAProxy's first health check marks the node up.
        match through
            .post(&url)
            .json(&json!({"username": victim.username, "password": "not the password at all"}))
            .send()
            .await
        {
            Ok(r) if r.status() != 503 => {
                answered = Some(r.status().as_u16());
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(answered, Some(401), "a sign-in through HAProxy");
    let sources = failure_sources(&server, &officer.token, &target).await;
    assert_eq!(
        sources,
        ["127.0.0.9"],
        "audited under the client's address: {sources:?}"
    );
}

async fn a_stopping_node_says_it_is_not_ready_before_it_stops_serving(backend: Backend) {
    let mut server = Server::start_with(
        Deployment::new(backend),
        &[("CALLGUARD_HTTP_DRAIN_SECONDS", "3")],
    )
    .await;
    let api = server.api();
    assert_eq!(
        api.get("/readyz", None).await.expect(200).json()["status"],
        "ready"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Readiness goes false first, while requests are still served.
    let mut draining = false;
    for _ in 0..50 {
        let a = api.get("/readyz", None).await;
        if a.status == 503 {
            assert_eq!(a.json()["status"], "draining");
            draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(draining, "/readyz answers 503 once SIGTERM arrived");
    api.get("/healthz", None).await.expect(200);
    let status = server.wait_for_exit(Duration::from_secs(30)).await;
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

both_backends!(
    a_stopping_node_says_it_is_not_ready_before_it_stops_serving,
    forwarded_for_counts_only_from_a_trusted_proxy,
    the_throttle_follows_the_client_behind_the_balancer,
    haproxy_passes_the_client_address_with_the_proxy_protocol
);
