//! The server under test: `callguard serve` on a fresh temporary data directory, reached over
//! HTTPS at `localhost` trusting only its own certificate; accounts made and set up the way the
//! sign-in benchmark does it (one admin from the CLI, agents through the admin API, each with
//! its password and a TOTP code).

use crate::Res;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds in a TOTP step.
const STEP: u64 = 30;

pub struct Server {
    child: tokio::process::Child,
    pub pid: u32,
    pub base: PathBuf,
    pub data: PathBuf,
    bin: PathBuf,
    env: Vec<(String, String)>,
    keep: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

/// A new empty directory under the system's temp dir for one server (or the baseline).
pub fn temp_dir(label: &str) -> Res<PathBuf> {
    let base = std::env::temp_dir().join(format!(
        "callguard-bench-vault-{label}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&base)?;
    Ok(base)
}

/// A `callguard` command with only the benchmark's configuration in its environment.
fn callguard(bin: &Path, data: &Path, env: &[(String, String)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CALLGUARD_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env_remove("RUST_LOG")
        .env("CALLGUARD_DATA_DIR", data)
        .env("CALLGUARD_LISTEN", "127.0.0.1:0")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    cmd
}

impl Server {
    /// Starts `callguard serve` with `env` added to the benchmark's own settings.
    pub fn start(bin: &Path, env: &[(String, String)], label: &str, keep: bool) -> Res<Self> {
        if !bin.is_file() {
            return Err(format!(
                "{} not found: build it with `cargo build --release -p callguard` or pass --bin",
                bin.display()
            )
            .into());
        }
        let base = temp_dir(label)?;
        let data = base.join("data");
        let log = std::fs::File::create(base.join("server.log"))?;
        let child = callguard(bin, &data, env)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or("the server exited at once")?;
        Ok(Self {
            child,
            pid,
            base,
            data,
            bin: bin.to_path_buf(),
            env: env.to_vec(),
            keep,
        })
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.base.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits for `data/run/address`, which the server writes once it listens.
    pub async fn address(&mut self) -> Res<SocketAddr> {
        let file = self.data.join("run").join("address");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Ok(addr) = text.trim().parse() {
                    return Ok(addr);
                }
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "the server exited ({status}) before listening:\n{}",
                    self.log_tail()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(
                    format!("the server did not write {} within 60 s", file.display()).into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails when the server process has ended.
    pub fn check_alive(&mut self, during: &str) -> Res<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(format!(
                "the server ended ({status}) during {during}; its log:\n{}",
                self.log_tail()
            )
            .into()),
        }
    }

    /// `callguard user add NAME --role ROLE`: the setup token it prints.
    pub async fn add_user(&self, name: &str, role: &str) -> Res<String> {
        let out = callguard(&self.bin, &self.data, &self.env)
            .args(["user", "add", name, "--role", role])
            .output()
            .await?;
        if !out.status.success() {
            return Err(format!(
                "callguard user add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    pub async fn stop(mut self) -> Res<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        if self.keep {
            eprintln!("kept {} (server.log, data/)", self.base.display());
        }
        Ok(())
    }
}

// ---- HTTP for setting things up -------------------------------------------------------------

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    pub base: String,
}

impl Http {
    /// A client that trusts only the server's own certificate and reaches `localhost` at `addr`.
    pub fn new(cert_pem: &[u8], addr: SocketAddr) -> Res<Self> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert_pem)?)
            .resolve("localhost", addr)
            .user_agent("callguard-bench-vault")
            .timeout(Duration::from_secs(120))
            .build()?;
        Ok(Self {
            client,
            base: format!("https://localhost:{}", addr.port()),
        })
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        bearer: Option<&str>,
    ) -> Res<(u16, Value)> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// POST expecting `want`; the whole answer.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        bearer: Option<&str>,
        want: u16,
    ) -> Res<Value> {
        let (status, v) = self
            .send(reqwest::Method::POST, path, Some(body), bearer)
            .await?;
        if status != want {
            return Err(format!("POST {path}: {status} {v}").into());
        }
        Ok(v)
    }

    pub async fn get(&self, path: &str, bearer: &str) -> Res<(u16, Value)> {
        self.send(reqwest::Method::GET, path, None, Some(bearer))
            .await
    }
}

pub fn text_field(v: &Value, name: &str) -> Res<String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name:?} in {v}").into())
}

fn totp_now(secret: &[u8]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    totp_lite::totp_custom::<totp_lite::Sha1>(STEP, 6, secret, now)
}

/// First-time setup: password, then a code from the new authenticator. The session token.
pub async fn set_up(http: &Http, setup_token: &str, password: &str) -> Res<String> {
    let v = http
        .post(
            "/api/v1/auth/setup",
            &json!({ "token": setup_token, "password": password }),
            None,
            200,
        )
        .await?;
    let challenge = text_field(&v, "challenge")?;
    let secret = data_encoding::BASE32_NOPAD.decode(text_field(&v, "totp_secret")?.as_bytes())?;
    let v = http
        .post(
            "/api/v1/auth/setup/confirm",
            &json!({ "challenge": challenge, "code": totp_now(&secret) }),
            None,
            200,
        )
        .await?;
    text_field(&v, "token")
}

/// One admin from the CLI, then `count` agents through the admin API, each set up; answers
/// with the agents' session tokens.
pub async fn make_agents(server: &Server, http: &Http, count: usize) -> Res<Vec<String>> {
    let admin_setup = server.add_user("benchadmin", "admin").await?;
    let admin = set_up(
        http,
        &admin_setup,
        "the vault benchmark administrator's long passphrase",
    )
    .await?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (http, next, admin) = (http.clone(), next.clone(), admin.clone());
        tasks.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, crate::BoxError>(made);
                }
                let v = http
                    .post(
                        "/api/v1/users",
                        &json!({ "username": format!("agent{i:04}"), "role": "agent" }),
                        Some(&admin),
                        201,
                    )
                    .await?;
                let setup_token = text_field(&v, "setup_token")?;
                let password = format!("correct horse battery staple for agent number {i:04}");
                made.push((i, set_up(&http, &setup_token, &password).await?));
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    all.sort();
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// Registers `customers` through `POST /api/v1/customers`, 16 at a time, spread over the
/// agents; answers with their ids in the same order.
pub async fn register_customers(
    http: &Http,
    agents: &[String],
    customers: &[crate::data::Customer],
) -> Res<Vec<String>> {
    let customers: Arc<Vec<crate::data::Customer>> = Arc::new(customers.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..16 {
        let token = agents
            .get(w % agents.len().max(1))
            .ok_or("no agents")?
            .clone();
        let (http, next, customers) = (http.clone(), next.clone(), customers.clone());
        tasks.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = customers.get(i) else {
                    return Ok::<_, crate::BoxError>(made);
                };
                let v = http
                    .post("/api/v1/customers", &c.create_body(), Some(&token), 201)
                    .await?;
                made.push((i, text_field(&v, "id")?));
            }
        });
    }
    let mut all = Vec::with_capacity(customers.len());
    while let Some(r) = tasks.join_next().await {
        all.extend(r??);
    }
    all.sort();
    Ok(all.into_iter().map(|(_, id)| id).collect())
}

/// An interaction for each agent with a customer of its own, verified to level 1 with the
/// customer's PESEL: (interaction id, customer index) per agent.
pub async fn verified_interactions(
    http: &Http,
    agents: &[String],
    customers: &[crate::data::Customer],
    ids: &[String],
) -> Res<Vec<(String, usize)>> {
    let mut out = Vec::with_capacity(agents.len());
    for (a, token) in agents.iter().enumerate() {
        let k = (a * 7 + 3) % customers.len().max(1);
        let c = customers.get(k).ok_or("no customers")?;
        let v = http
            .post(
                "/api/v1/interactions",
                &json!({ "channel": "phone", "direction": "inbound", "from": c.phone }),
                Some(token),
                201,
            )
            .await?;
        let interaction = text_field(&v, "id")?;
        let linked = v.get("customer_id").and_then(Value::as_str);
        if linked != ids.get(k).map(String::as_str) {
            return Err(format!(
                "the interaction from {} was linked to {linked:?}, not to customer {:?}",
                c.phone,
                ids.get(k)
            )
            .into());
        }
        let v = http
            .post(
                &format!("/api/v1/interactions/{interaction}/verify"),
                &json!({ "method": "national_id", "value": c.pesel }),
                Some(token),
                200,
            )
            .await?;
        if v.get("level").and_then(Value::as_i64) != Some(1) {
            return Err(format!("verification by PESEL did not reach level 1: {v}").into());
        }
        out.push((interaction, k));
    }
    Ok(out)
}
