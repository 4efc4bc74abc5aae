//! The harness: a real `callguard` process on a fresh data directory (and, for PostgreSQL, a
//! fresh database), reached over real HTTPS with real certificate verification against the
//! server's own self-signed certificate, plus the operator CLI run against the same deployment.

use reqwest::header::HeaderMap;
use reqwest::{Certificate, Client, Method, StatusCode};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_callguard");
/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a CLI command may take before it is treated as hung.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// The argon2id parameters the SPEC requires at least (OWASP): m=19 MiB, t=2, p=1.
pub const ARGON2ID_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A short random lower-case suffix, for names that must be unique.
pub fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// A loopback source address other than 127.0.0.1: `127.0.0.<n>`. The whole 127.0.0.0/8 is
/// loopback on Linux, so a client bound to one of these models an attacker spreading attempts
/// over many addresses.
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

// ---- PostgreSQL ---------------------------------------------------------------------------

fn postgres_admin_url() -> String {
    std::env::var("CALLGUARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The URL without its password, for messages.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparseable URL>".into(),
    }
}

/// Runs SQL on a thread with its own runtime, so it works from `Drop` and from async tests.
fn pg_execute(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let (client, conn) = tokio::time::timeout(
                Duration::from_secs(10),
                tokio_postgres::connect(&url, tokio_postgres::NoTls),
            )
            .await
            .map_err(|_| "timed out after 10 s".to_owned())?
            .map_err(|e| error_chain(&e))?;
            let task = tokio::spawn(conn);
            let result = client
                .batch_execute(&sql)
                .await
                .map_err(|e| error_chain(&e));
            drop(client);
            let _ = task.await;
            result
        })
    })
    .join()
    .map_err(|_| "the PostgreSQL helper thread panicked".to_owned())?
}

/// An error with all its causes: "error connecting to server: Connection refused (os error 111)".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Copies the directory `from` to `to` (permissions included), leaving out the paths in `skip`
/// (relative to `from`).
fn copy_tree(from: &Path, to: &Path, skip: &[&Path]) {
    std::fs::create_dir_all(to).expect("create the copy");
    let _ = std::fs::set_permissions(to, std::fs::metadata(from).expect("source").permissions());
    for entry in std::fs::read_dir(from).expect("read the directory") {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        if skip.iter().any(|s| s.as_os_str() == name) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&src, &dst, &[]);
        } else {
            std::fs::copy(&src, &dst).expect("copy a file");
        }
    }
}

/// A fresh database `callguard_e2e_<random>` for one test, dropped when the test ends.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    fn create() -> Self {
        let admin_url = postgres_admin_url();
        let name = format!("callguard_e2e_{}", suffix());
        if let Err(e) = pg_execute(&admin_url, &format!("CREATE DATABASE {name}")) {
            panic!(
                "PostgreSQL end-to-end tests need a PostgreSQL server, but creating a test database at {} failed: {e}. \
                 Start PostgreSQL on 127.0.0.1:5432 with trust authentication for user postgres, or point \
                 CALLGUARD_TEST_POSTGRES_URL at a server where this user may create databases.",
                shown(&admin_url)
            );
        }
        let mut url = url::Url::parse(&admin_url).expect("CALLGUARD_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        Self {
            admin_url,
            name,
            url: url.to_string(),
        }
    }

    /// A client connected to this test's database.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", shown(&self.url)));
        tokio::spawn(conn);
        client
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Err(e) = pg_execute(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!(
                "warning: could not drop the test database {}: {e}",
                self.name
            );
        }
    }
}

// ---- a deployment: data directory, database, CLI -------------------------------------------

/// What a finished command left behind.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// One installation of Callguard: a fresh data directory and, on PostgreSQL, a fresh database.
pub struct Deployment {
    pub pg: Option<PgDatabase>,
    /// Another node's database this deployment joins (see [`Deployment::another_node`]).
    joined_database: Option<String>,
    pub data_dir: PathBuf,
    commands_run: AtomicU32,
    // Last, so that the directory outlives everything that writes into it.
    root: tempfile::TempDir,
}

impl Deployment {
    pub fn new(backend: Backend) -> Self {
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create()),
        };
        let root = tempfile::Builder::new()
            .prefix("callguard-e2e-")
            .tempdir()
            .expect("temp dir");
        let data_dir = root.path().join("data");
        Self {
            pg,
            joined_database: None,
            data_dir,
            commands_run: AtomicU32::new(0),
            root,
        }
    }

    /// A deployment on a database the test manages itself (a throw-away cluster, say): a fresh
    /// data directory, `url` as its database.
    pub fn on_database(url: &str) -> Self {
        let mut d = Self::new(Backend::Sqlite);
        d.joined_database = Some(url.to_owned());
        d
    }

    /// A second node of this (PostgreSQL, already started) deployment: a data directory of its
    /// own holding copies of the first one's files (the key-encryption key, the audit signing
    /// key, the TLS certificate, the witness), on the same database. The first deployment keeps
    /// owning the database.
    pub fn another_node(&self) -> Deployment {
        let url = self
            .pg
            .as_ref()
            .map(|pg| pg.url.clone())
            .or_else(|| self.joined_database.clone())
            .expect("several nodes share a PostgreSQL database");
        let root = tempfile::Builder::new()
            .prefix("callguard-e2e-node-")
            .tempdir()
            .expect("temp dir");
        let data_dir = root.path().join("data");
        copy_tree(&self.data_dir, &data_dir, &[Path::new("run")]);
        Self {
            pg: None,
            joined_database: Some(url),
            data_dir,
            commands_run: AtomicU32::new(0),
            root,
        }
    }

    /// The temporary directory holding the data directory and the captured logs.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `callguard ARGS` with this deployment's environment and nothing inherited that starts
    /// with `CALLGUARD_`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CALLGUARD_") {
                cmd.env_remove(k);
            }
        }
        cmd.env_remove("RUST_LOG");
        cmd.env("CALLGUARD_DATA_DIR", &self.data_dir)
            .env("CALLGUARD_LISTEN", "127.0.0.1:0");
        if let Some(url) = self
            .pg
            .as_ref()
            .map(|pg| &pg.url)
            .or(self.joined_database.as_ref())
        {
            cmd.env("CALLGUARD_DATABASE_URL", url);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs a prepared command to completion (at most a minute), capturing its output in files
    /// under the root so that the on-disk scans see them too.
    pub fn run(&self, mut cmd: Command) -> Ran {
        let n = self.commands_run.fetch_add(1, Ordering::Relaxed);
        let out_path = self.root().join(format!("cli-{n}.stdout"));
        let err_path = self.root().join(format!("cli-{n}.stderr"));
        cmd.stdout(std::fs::File::create(&out_path).expect("stdout file"));
        cmd.stderr(std::fs::File::create(&err_path).expect("stderr file"));
        let mut child = cmd.spawn().expect("spawn callguard");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for callguard") {
                break status;
            }
            if started.elapsed() > CLI_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`callguard` did not finish within {CLI_TIMEOUT:?}: {cmd:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        // The CLI prints setup tokens on stdout; keep them out of the directory we scan.
        let _ = std::fs::remove_file(&out_path);
        Ran {
            status,
            stdout,
            stderr,
        }
    }

    /// `callguard ARGS`, to completion.
    pub fn cli(&self, args: &[&str]) -> Ran {
        self.run(self.command(args))
    }

    /// `callguard user add USERNAME --role ROLE`: the setup token it prints.
    pub fn add_user(&self, username: &str, role: &str) -> String {
        let ran = self.cli(&["user", "add", username, "--role", role]);
        assert!(
            ran.status.success(),
            "`callguard user add {username} --role {role}` failed: {}",
            ran.describe()
        );
        let lines: Vec<&str> = ran.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "`user add` must print the setup token and nothing else: {:?}",
            ran.stdout
        );
        let token = lines[0].trim().to_owned();
        assert!(
            token.starts_with("cgu_") && token.len() > 40,
            "not a setup token: {token:?}"
        );
        token
    }
}

// ---- the server ----------------------------------------------------------------------------

/// A running `callguard serve`. Killed (and its logs printed if the test failed) on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    cert: Certificate,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    /// Always `Some` until [`Server::stop_keeping_data`] takes it.
    deployment: Option<Deployment>,
}

impl std::ops::Deref for Server {
    type Target = Deployment;
    fn deref(&self) -> &Deployment {
        self.deployment.as_ref().expect("the deployment")
    }
}

impl Server {
    /// A fresh deployment on `backend`, served.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(Deployment::new(backend), &[]).await
    }

    /// Serves `deployment` with extra environment variables.
    pub async fn start_with(deployment: Deployment, env: &[(&str, &str)]) -> Self {
        let stdout_log = deployment.root().join("server.stdout.log");
        let stderr_log = deployment.root().join("server.stderr.log");
        let mut cmd = deployment.command(&["serve"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(std::fs::File::create(&stdout_log).expect("log file"));
        cmd.stderr(std::fs::File::create(&stderr_log).expect("log file"));
        // A previous server on this deployment leaves its address behind.
        let address_file = deployment.data_dir.join("run").join("address");
        let _ = std::fs::remove_file(&address_file);
        let mut child = cmd.spawn().expect("spawn callguard serve");
        let started = Instant::now();
        let addr = loop {
            if let Some(status) = child.try_wait().expect("wait for callguard") {
                panic!(
                    "callguard serve exited with {status} before listening\n{}",
                    read_logs(&stdout_log, &stderr_log)
                );
            }
            if let Ok(text) = std::fs::read_to_string(&address_file) {
                if let Ok(addr) = text.trim().parse::<SocketAddr>() {
                    break addr;
                }
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "callguard serve did not write {} within {START_TIMEOUT:?}\n{}",
                    address_file.display(),
                    read_logs(&stdout_log, &stderr_log)
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let pem = std::fs::read(deployment.data_dir.join("tls").join("cert.pem"));
        let Some(cert) = pem.ok().and_then(|p| Certificate::from_pem(&p).ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "no readable certificate at DATA_DIR/tls/cert.pem\n{}",
                read_logs(&stdout_log, &stderr_log)
            );
        };
        let server = Server {
            child,
            addr,
            cert,
            stdout_log,
            stderr_log,
            deployment: Some(deployment),
        };
        assert!(
            addr.ip().is_loopback() && addr.port() != 0,
            "odd bound address {addr}"
        );
        server
    }

    /// Ends the process (if still running) and hands back the deployment, data intact.
    pub fn stop_keeping_data(mut self) -> Deployment {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.deployment.take().expect("the deployment")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit.
    pub async fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for callguard") {
                return Some(status);
            }
            if started.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Both captured logs.
    pub fn logs(&self) -> String {
        read_logs(&self.stdout_log, &self.stderr_log)
    }

    /// What the server wrote on stderr so far.
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// `https://localhost:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// An API client connecting from 127.0.0.1.
    pub fn api(&self) -> Api {
        self.api_from(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// An API client whose connections come from `source` (a loopback address).
    pub fn api_from(&self, source: IpAddr) -> Api {
        let client = Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(self.cert.clone())
            .https_only(true)
            .resolve("localhost", self.addr)
            .local_address(source)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            // The server closes an HTTP/1 connection that has waited 10 s for its next request;
            // a client must not reuse one that old (the request would meet a closed socket).
            .pool_idle_timeout(Duration::from_secs(8))
            .build()
            .expect("HTTPS client");
        Api {
            client,
            base: self.url(""),
        }
    }

    /// Creates an account with the CLI and sets it up over the API (password, TOTP).
    pub async fn new_account(&self, username: &str, role: &str) -> Account {
        let setup_token = self.add_user(username, role);
        self.api().set_up(&setup_token, username, role).await
    }

    /// An admin who has just set up their account: a fresh session.
    pub async fn admin_session(&self) -> Account {
        self.new_account(&format!("admin-{}", suffix()), "admin")
            .await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

fn read_logs(stdout: &Path, stderr: &Path) -> String {
    format!(
        "----- callguard serve stdout ({}) -----\n{}\n----- callguard serve stderr ({}) -----\n{}\n----- end of server log -----",
        stdout.display(),
        std::fs::read_to_string(stdout).unwrap_or_default(),
        stderr.display(),
        std::fs::read_to_string(stderr).unwrap_or_default()
    )
}

// ---- HTTP ----------------------------------------------------------------------------------

/// An HTTPS client for one server, from one source address.
#[derive(Clone)]
pub struct Api {
    pub client: Client,
    pub base: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub what: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text))
    }

    /// Asserts the status; answers self for chaining.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}: expected {status}, got {}: {}",
            self.what,
            self.status,
            self.text
        );
        self
    }

    /// Asserts an RFC 9457 problem with this status and `type` `/problems/<slug>`.
    #[track_caller]
    pub fn expect_problem(self, status: u16, slug: &str) -> Self {
        let s = self.expect(status);
        assert_eq!(
            s.problem_type(),
            format!("/problems/{slug}"),
            "{}: {}",
            s.what,
            s.text
        );
        s
    }

    /// The problem `type`, after checking the answer is `application/problem+json` with the
    /// RFC 9457 members.
    #[track_caller]
    pub fn problem_type(&self) -> String {
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "{}: content-type {ct:?}, body {}",
            self.what,
            self.text
        );
        let p = self.json();
        assert_eq!(
            p["status"].as_u64(),
            Some(u64::from(self.status.as_u16())),
            "{}: {}",
            self.what,
            self.text
        );
        assert!(
            p["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}: problem without title: {}",
            self.what,
            self.text
        );
        assert!(
            p["detail"].is_string(),
            "{}: problem without detail: {}",
            self.what,
            self.text
        );
        p["type"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: problem without type: {}", self.what, self.text))
            .to_owned()
    }

    pub fn str(&self, field: &str) -> String {
        self.json()[field]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no string `{field}` in {}", self.what, self.text))
            .to_owned()
    }
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a prepared request and reads the whole answer.
    pub async fn send_raw(&self, what: String, req: reqwest::RequestBuilder) -> Answer {
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e:?}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        // A live event stream never ends: answer with its headers only.
        let streaming = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = if streaming {
            String::from("<event stream>")
        } else {
            resp.text()
                .await
                .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"))
        };
        Answer {
            status,
            headers,
            text,
            what,
        }
    }

    /// `METHOD path`, with a bearer token and a JSON body when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self.client.request(method.clone(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.send_raw(format!("{method} {path}"), req).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.call(Method::POST, path, token, Some(&body)).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Answer {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn mfa(&self, challenge: &str, method: &str, code: &str) -> Answer {
        self.post(
            "/api/v1/auth/mfa",
            None,
            json!({"challenge": challenge, "method": method, "code": code}),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Answer {
        self.get("/api/v1/me", Some(token)).await
    }

    /// Password, then the next TOTP code: a new session token.
    pub async fn sign_in(&self, account: &Account) -> String {
        let challenge = self
            .login(&account.username, &account.password)
            .await
            .expect(200)
            .str("challenge");
        let token = self
            .mfa(&challenge, "totp", &account.totp.next_code())
            .await
            .expect(200)
            .str("token");
        assert!(token.starts_with("cgs_"), "not a session token: {token}");
        token
    }

    /// First-time setup with a setup token: a new password, enrolling TOTP, confirming with a
    /// code computed here. Answers the new account with its first session.
    pub async fn set_up(&self, setup_token: &str, username: &str, role: &str) -> Account {
        let password = new_password();
        let started = self
            .post(
                "/api/v1/auth/setup",
                None,
                json!({"token": setup_token, "password": password}),
            )
            .await
            .expect(200)
            .json();
        let challenge = started["challenge"].as_str().expect("challenge").to_owned();
        let secret = started["totp_secret"]
            .as_str()
            .expect("totp_secret")
            .to_owned();
        let uri = started["otpauth_uri"]
            .as_str()
            .expect("otpauth_uri")
            .to_owned();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains(&format!("secret={secret}")),
            "the URI carries the same secret: {uri}"
        );
        let totp = Totp::from_base32(&secret);
        let confirmed = self
            .post(
                "/api/v1/auth/setup/confirm",
                None,
                json!({"challenge": challenge, "code": totp.next_code()}),
            )
            .await
            .expect(200)
            .json();
        let token = confirmed["token"].as_str().expect("token").to_owned();
        let recovery_codes: Vec<String> = confirmed["recovery_codes"]
            .as_array()
            .expect("recovery_codes")
            .iter()
            .map(|c| c.as_str().expect("a recovery code is a string").to_owned())
            .collect();
        let me = self.me(&token).await.expect(200).json();
        assert_eq!(me["username"], username);
        assert_eq!(me["role"], role);
        Account {
            id: me["id"].as_str().expect("id").to_owned(),
            username: username.to_owned(),
            role: role.to_owned(),
            password,
            totp,
            token,
            recovery_codes,
            setup_token: setup_token.to_owned(),
            setup_challenge: challenge,
            otpauth_uri: uri,
        }
    }
}

/// A password that passes the policy (long, uncommon) and never contains a username used here.
pub fn new_password() -> String {
    let digits: String = uuid::Uuid::new_v4()
        .as_u128()
        .to_string()
        .chars()
        .take(12)
        .collect();
    format!("Quartz lantern drifts {digits} over wet slate")
}

// ---- accounts and TOTP ---------------------------------------------------------------------

/// A staff account the test knows everything about.
pub struct Account {
    pub id: String,
    pub username: String,
    pub role: String,
    pub password: String,
    pub totp: Totp,
    /// The session opened by setup.
    pub token: String,
    pub recovery_codes: Vec<String>,
    pub setup_token: String,
    pub setup_challenge: String,
    pub otpauth_uri: String,
}

/// RFC 6238 codes computed independently of the server: `totp-lite` over the base32 secret
/// decoded here. Tracks the last step used, because the server accepts each step once and only
/// steps later than the last one used.
pub struct Totp {
    pub base32: String,
    pub bytes: Vec<u8>,
    last_step: Mutex<Option<u64>>,
}

impl Totp {
    pub fn from_base32(text: &str) -> Self {
        let clean: String = text
            .chars()
            .filter(|c| *c != '=' && !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(clean.as_bytes())
            .unwrap_or_else(|e| panic!("not base32: {text:?}: {e}"));
        assert!(
            bytes.len() >= 16,
            "a TOTP secret of at least 128 bits, got {} bytes",
            bytes.len()
        );
        Self {
            base32: text.to_owned(),
            bytes,
            last_step: Mutex::new(None),
        }
    }

    /// The six-digit code of a 30-second step.
    pub fn code_at_step(&self, step: u64) -> String {
        totp_lite::totp_custom::<totp_lite::Sha1>(30, 6, &self.bytes, step * 30)
    }

    /// The step the next code will use: the oldest step the server still accepts (now-1, or now
    /// when the current step is about to end), but always later than the last one used, and at
    /// most now+1. A test that needs more codes than that must use recovery codes.
    fn next_step(&self) -> u64 {
        let now = unix_now();
        let current = now / 30;
        let mut step = if now % 30 >= 25 { current } else { current - 1 };
        if let Some(last) = *self.last_step.lock().expect("lock") {
            step = step.max(last + 1);
        }
        assert!(
            step <= current + 1,
            "this test used more authenticator codes for one account than the server's ±1 step window allows right now"
        );
        step
    }

    /// The next usable code, marked as used.
    pub fn next_code(&self) -> String {
        let step = self.next_step();
        *self.last_step.lock().expect("lock") = Some(step);
        self.code_at_step(step)
    }

    /// The next usable code, not marked as used (for an attempt that must not consume it).
    pub fn peek_code(&self) -> String {
        self.code_at_step(self.next_step())
    }

    /// The code of the last step used.
    pub fn last_code(&self) -> String {
        self.code_at_step(
            self.last_step
                .lock()
                .expect("lock")
                .expect("a code was used"),
        )
    }

    /// A six-digit code that is valid at no step the server could accept now.
    pub fn wrong_code(&self) -> String {
        let current = unix_now() / 30;
        let valid: Vec<String> = (current - 2..=current + 2)
            .map(|s| self.code_at_step(s))
            .collect();
        (0..1000u32)
            .map(|i| format!("{:06}", (i * 7919 + 123_457) % 1_000_000))
            .find(|c| !valid.contains(c))
            .expect("a wrong code")
    }
}

/// Waits (up to 30 s: the alert engine follows the log asynchronously) until the alerts that
/// `token` may read hold one that `wanted` picks; answers the first such alert and the whole list.
pub async fn alert_when(api: &Api, token: &str, wanted: impl Fn(&Value) -> bool) -> (Value, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let list = api
            .get("/api/v1/alerts?limit=500", Some(token))
            .await
            .expect(200)
            .json();
        if let Some(a) = list["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| wanted(a))
        {
            return (a.clone(), list);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expected alert never came: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A port free for both UDP and TCP (the SIP edge binds both), below Linux's ephemeral range
/// (32768 and up) so that no client connection of another test can take it meanwhile.
pub fn sip_port() -> u16 {
    for _ in 0..1000 {
        let port = 21_000 + (rand::random::<u16>() % 11_000);
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP between 21000 and 32000");
}
