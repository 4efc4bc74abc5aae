//! Three `callguard serve` nodes on one PostgreSQL behind HAProxy (the README's
//! `deploy/haproxy.cfg`), all on loopback, under a steady load of calls (start with the
//! screen-pop, verify, reveal, a note, end) from several agents; one node is killed with SIGKILL mid-load and restarted, and
//! PostgreSQL (a throw-away cluster of the test's own, made with the system's `initdb`) is
//! restarted once. Afterwards every action a client saw acknowledged is in the audit log exactly
//! once, the log has no gap, `callguard audit verify` passes and so does the independent
//! verifier; during the outages clients saw only 503s with Retry-After, never another 5xx.

use crate::audit::{js_verify, note_size, read_log};
use crate::harness::{Account, Api, Deployment, Server};
use crate::proxies::{free_port, haproxy};
use crate::vault::{create_customer, customer_body, PESEL, PHONE};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A PostgreSQL cluster of the test's own, so that it can be restarted without disturbing other
/// tests. Run as the `postgres` user when the test runs as root (CI does).
struct PgCluster {
    root: tempfile::TempDir,
    port: u16,
}

fn pg_bin(tool: &str) -> PathBuf {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL's server binaries under /usr/lib/postgresql (Debian package postgresql)",
        )
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .expect("a PostgreSQL version under /usr/lib/postgresql");
    PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin/{tool}"))
}

fn as_postgres(tool: &str) -> Command {
    let running_as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if running_as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(tool));
        c
    } else {
        Command::new(pg_bin(tool))
    }
}

impl PgCluster {
    fn start() -> Self {
        let root = tempfile::Builder::new()
            .prefix("callguard-e2e-pg-")
            .tempdir()
            .unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(root.path())
            .status();
        let ran = as_postgres("initdb")
            .args(["-D"])
            .arg(root.path().join("data"))
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&ran.stderr)
        );
        let cluster = Self {
            root,
            port: free_port(),
        };
        cluster.pg_ctl(&["start"]);
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
            self.port,
            self.root.path().display()
        );
        let ran = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.root.path().join("data"))
            .arg("-l")
            .arg(self.root.path().join("log"))
            .args(["-w", "-o", &options])
            .args(args)
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.root.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// What the load saw.
#[derive(Default)]
struct Seen {
    /// Interactions whose start was acknowledged (201).
    started: Vec<String>,
    /// Interactions whose reveal was acknowledged (200), with the attempts before it that got
    /// no answer (a broken connection or a 503: the client cannot know whether those took
    /// effect, and retrying them is a new action).
    revealed: Vec<(String, usize)>,
    /// Interactions whose note (an operation, sent with an idempotency key) was acknowledged,
    /// with the unanswered attempts before it.
    noted: Vec<(String, usize)>,
    answers: u64,
    unavailable: u64,
    transport_errors: u64,
    /// Anything that breaks the rule: a 5xx other than 503, a 503 without Retry-After.
    violations: Vec<String>,
}

/// One request through the balancer: `Some(answer)` when an HTTP answer came, after recording
/// it; `None` (after a short pause) when the connection failed or the answer was a 503.
async fn send(
    api: &Api,
    seen: &Mutex<Seen>,
    token: &str,
    path: &str,
    body: Value,
) -> Option<(u16, Value)> {
    send_keyed(api, seen, token, path, body, None).await
}

/// [`send`] with an `Idempotency-Key`: retries with the key are the same request.
async fn send_keyed(
    api: &Api,
    seen: &Mutex<Seen>,
    token: &str,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> Option<(u16, Value)> {
    let mut req = api
        .client
        .post(api.url(path))
        .bearer_auth(token)
        .json(&body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let Ok(resp) = req.send().await else {
        seen.lock().unwrap().transport_errors += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        return None;
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Ok(text) = resp.text().await else {
        seen.lock().unwrap().transport_errors += 1;
        return None;
    };
    let wait = {
        let mut s = seen.lock().unwrap();
        s.answers += 1;
        if status == 503 {
            s.unavailable += 1;
            match retry_after {
                Some(wait) if wait >= 1 => Some(wait),
                _ => {
                    s.violations
                        .push(format!("503 without Retry-After on {path}: {text}"));
                    Some(1)
                }
            }
        } else if status >= 500 {
            s.violations.push(format!("{status} on {path}: {text}"));
            return None;
        } else {
            None
        }
    };
    if let Some(wait) = wait {
        tokio::time::sleep(Duration::from_millis(300.min(wait * 1000))).await;
        return None;
    }
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// One agent's calls until `stop`: start, verify by national id, reveal the phones, end.
async fn agent_load(
    api: Api,
    agent: Account,
    customer: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<tokio::sync::Notify>,
) {
    let stopped = stop.notified();
    tokio::pin!(stopped);
    stopped.as_mut().enable();
    let t = agent.token.clone();
    loop {
        let work = async {
            let start = json!({"channel": "phone", "direction": "inbound", "from": PHONE, "customer_id": customer});
            let Some((201, call)) = send(&api, &seen, &t, "/api/v1/interactions", start).await
            else {
                return;
            };
            let id = call["id"].as_str().unwrap_or_default().to_owned();
            seen.lock().unwrap().started.push(id.clone());
            let verify = json!({"method": "national_id", "value": PESEL});
            let path = format!("/api/v1/interactions/{id}/verify");
            let mut verified = false;
            for _ in 0..20 {
                match send(&api, &seen, &t, &path, verify.clone()).await {
                    Some((200, _)) => {
                        verified = true;
                        break;
                    }
                    Some(_) => break,
                    None => {}
                }
            }
            if verified {
                let reveal =
                    json!({"field": "phones", "reason": "caller_request", "interaction_id": id});
                let path = format!("/api/v1/customers/{customer}/reveal");
                for unanswered in 0..20 {
                    match send(&api, &seen, &t, &path, reveal.clone()).await {
                        Some((200, _)) => {
                            seen.lock().unwrap().revealed.push((id.clone(), unanswered));
                            break;
                        }
                        Some(_) => break,
                        None => {}
                    }
                }
            }
            if verified {
                let note = json!({"interaction_id": id, "kind": "add_note", "data": {"text": "called about the invoice"}});
                let path = format!("/api/v1/customers/{customer}/operations");
                // Every retry carries the same key: the note is taken once however many
                // attempts went unanswered.
                let key = format!("note-{id}");
                for unanswered in 0..20 {
                    match send_keyed(&api, &seen, &t, &path, note.clone(), Some(&key)).await {
                        Some((s, _)) if s < 300 => {
                            seen.lock().unwrap().noted.push((id.clone(), unanswered));
                            break;
                        }
                        Some(_) => break,
                        None => {}
                    }
                }
            }
            let path = format!("/api/v1/interactions/{id}/end");
            for _ in 0..20 {
                if send(&api, &seen, &t, &path, json!({})).await.is_some() {
                    break;
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = &mut stopped => return,
        }
    }
}

fn node_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("CALLGUARD_LISTEN".into(), format!("127.0.0.1:{port}")),
        ("CALLGUARD_HTTP_TRUSTED_PROXIES".into(), "127.0.0.1".into()),
        ("CALLGUARD_VAULT_REVEALS_PER_WINDOW".into(), "100000".into()),
        // Drained at once when killed politely; SIGKILL is the point here anyway.
        ("CALLGUARD_HTTP_DRAIN_SECONDS".into(), "0".into()),
    ]
}

async fn start_node(d: Deployment, port: u16) -> Server {
    let env = node_env(port);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start_with(d, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_behind_haproxy_survive_a_killed_node_and_a_database_restart() {
    let pg = PgCluster::start();
    let ports = [free_port(), free_port(), free_port()];
    let first = start_node(Deployment::on_database(&pg.url()), ports[0]).await;
    let mut second = start_node(first.another_node(), ports[1]).await;
    let third = start_node(first.another_node(), ports[2]).await;
    let nodes: Vec<SocketAddr> = ports
        .iter()
        .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
        .collect();
    let balancer_port = free_port();
    let _balancer = haproxy(first.root(), balancer_port, &nodes);

    let officer = first.new_account("olga", "compliance").await;
    let mut agents = Vec::new();
    for i in 0..4 {
        agents.push(first.new_account(&format!("agent{i}"), "agent").await);
    }
    let customer = create_customer(&first.api(), &agents[0], customer_body()).await;

    let through = || Api {
        client: reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(20))
            // Under the server's 10 s wait for the next request (HTTP/1).
            .pool_idle_timeout(Duration::from_secs(8))
            .build()
            .unwrap(),
        base: format!("https://127.0.0.1:{balancer_port}"),
    };
    // The balancer's health checks mark the nodes up.
    let mut up = false;
    for _ in 0..100 {
        if through()
            .client
            .get(through().url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "HAProxy reaches the nodes");

    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(tokio::sync::Notify::new());
    let load: Vec<_> = agents
        .into_iter()
        .map(|a| {
            tokio::spawn(agent_load(
                through(),
                a,
                customer.clone(),
                seen.clone(),
                stop.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(4)).await;
    // A node dies without a word…
    let killed = Command::new("kill")
        .args(["-KILL", &second.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(second
        .wait_for_exit(Duration::from_secs(10))
        .await
        .is_some());
    tokio::time::sleep(Duration::from_secs(3)).await;
    // …and comes back on its port.
    second = start_node(second.stop_keeping_data(), ports[1]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The database restarts under the load.
    pg.pg_ctl(&["-m", "fast", "stop"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.pg_ctl(&["start"]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.notify_waiters();
    for l in load {
        l.await.unwrap();
    }

    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.violations.is_empty(),
        "only 503s with Retry-After: {:#?}",
        seen.violations
    );
    assert!(
        seen.started.len() >= 20,
        "the load ran: {} calls started",
        seen.started.len()
    );
    assert!(
        seen.unavailable + seen.transport_errors > 0,
        "the outages were felt"
    );
    eprintln!(
        "cluster load: {} answers, {} calls started, {} reveals, {} notes, {} × 503, {} broken connections",
        seen.answers,
        seen.started.len(),
        seen.revealed.len(),
        seen.noted.len(),
        seen.unavailable,
        seen.transport_errors
    );

    // Every acknowledged action is in the log exactly once, and the log has no gap.
    let api = first.api();
    let t = Some(officer.token.as_str());
    let note = api
        .get("/api/v1/audit/checkpoint", t)
        .await
        .expect(200)
        .text;
    let size = note_size(&note);
    let entries = read_log(&first, &officer.token, 0, size).await;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(
            e["index"].as_u64(),
            Some(i as u64),
            "no gap or fork at {i}: {e}"
        );
    }
    let count = |action: &str, interaction: &str| {
        entries
            .iter()
            .filter(|e| {
                e["action"] == action
                    && e["interaction"] == interaction
                    && e["outcome"] == "success"
            })
            .count()
    };
    for id in &seen.started {
        assert_eq!(count("interaction.start", id), 1, "the start of {id}");
    }
    // An acknowledged reveal is in the log once; an attempt that got no answer before it may
    // also have taken effect (the node died after its commit), and each of those at most once:
    // a reveal retried is a new look at the data.
    for (id, unanswered) in &seen.revealed {
        let n = count("customer.reveal", id);
        assert!(
            (1..=1 + unanswered).contains(&n),
            "customer.reveal in {id}: {n} entries for one acknowledged request after {unanswered} unanswered attempts"
        );
    }
    // A note retried with its idempotency key is one note, whatever happened to the attempts
    // that got no answer.
    for (id, unanswered) in &seen.noted {
        assert_eq!(
            count("customer.operation", id),
            1,
            "the note in {id}, acknowledged after {unanswered} unanswered attempts"
        );
    }
    // `callguard audit verify` from a node, and the independent verifier on the whole log.
    let verified = third.run(third.command(&["audit", "verify"]));
    assert!(verified.status.success(), "{}", verified.describe());
    let key = api
        .get("/api/v1/audit/verifier-key", t)
        .await
        .expect(200)
        .text;
    let (code, verdict) = js_verify(&json!({
        "verifier_key": key,
        "checkpoints": [note],
        "entries": entries,
        "inclusion": [],
        "consistency": [],
    }));
    assert_eq!(
        code, 0,
        "the independent verifier accepts the log: {verdict:#}"
    );
    drop(second);
}
