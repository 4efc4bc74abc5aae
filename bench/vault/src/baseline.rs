//! The baseline: the same look-up without encryption, masking and audit. The server has no
//! such endpoint, so this is a minimal server of its own, run as a separate process (this
//! binary with `baseline-serve`) so that its CPU is counted apart from the load generator's:
//!
//! - the same HTTPS stack: `callguard_server::http::tls::serve` and `server_config` (rustls with
//!   ring, hyper-util's auto builder, the same timeouts), on the server's own certificate and
//!   key, with axum and the same security headers on every answer;
//! - the same authentication work: the bearer token's SHA-256 (`callguard_core::token::hash`),
//!   then the session by that hash and its user by id, each a read of its own;
//! - the same phone check (`callguard_core::vault::validate::phone`, the phonenumber crate);
//! - the same search: the store's query shape (index table joined to customers, `status =
//!   'active'`, ordered by id, at most 20) on SQLite with the store's pragmas (WAL,
//!   synchronous=FULL), each read through the store's reader approach (a semaphore of 16 slots,
//!   pooled connections, `spawn_blocking`);
//! - the same answer shape, `{"customers": [...]}` with the same keys, but every value in the
//!   clear, read from plain columns.
//!
//! What it leaves out: unwrapping the data key (and reading its share from the key store),
//! opening the sealed fields and parsing them, masking, the durable audit entry (and the alert
//! engine that reads it), the access-policy table and the request metrics.

use crate::data::Customer;
use crate::Res;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// As in the store.
const MAX_READERS: usize = 16;
/// As in the server.
const SEARCH_LIMIT: i64 = 20;

const SCHEMA: &str = "
CREATE TABLE users (id TEXT PRIMARY KEY, role TEXT NOT NULL, status TEXT NOT NULL);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL
);
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    full_name TEXT NOT NULL,
    phones TEXT NOT NULL,
    emails TEXT NOT NULL,
    national_id TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    address TEXT NOT NULL,
    services TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE customer_index (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    PRIMARY KEY (kind, value, customer_id)
);
";

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Writes the baseline's database: the same customers in the clear (with the server's ids),
/// and one user and session per agent token.
pub fn prepare(path: &Path, customers: &[Customer], ids: &[String], tokens: &[String]) -> Res<()> {
    let mut c = connect(path)?;
    c.execute_batch(SCHEMA)?;
    let tx = c.transaction()?;
    let now = crate::unix_now() as i64;
    for (i, t) in tokens.iter().enumerate() {
        let user = format!("agent{i:04}");
        tx.execute(
            "INSERT INTO users (id, role, status) VALUES (?1, 'agent', 'active')",
            [&user],
        )?;
        tx.execute(
            "INSERT INTO sessions (id, user_id, token_hash, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![
                format!("s{i}"),
                user,
                callguard_core::token::hash(t),
                now + 12 * 3600
            ],
        )?;
    }
    for (cu, id) in customers.iter().zip(ids) {
        let address = format!("{}, {} {}, PL", cu.line1, cu.postal_code, cu.city);
        tx.execute(
            "INSERT INTO customers (id, status, full_name, phones, emails, national_id, date_of_birth, address, services, created_at, updated_at)
             VALUES (?1, 'active', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                id,
                cu.full_name,
                serde_json::to_string(&[&cu.phone])?,
                serde_json::to_string(&[&cu.email])?,
                cu.pesel,
                cu.date_of_birth,
                address,
                serde_json::to_string(&[&cu.service])?,
                now
            ],
        )?;
        tx.execute(
            "INSERT INTO customer_index (kind, value, customer_id) VALUES ('phone', ?1, ?2)",
            params![cu.phone, id],
        )?;
    }
    tx.commit()?;
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    Ok(())
}

struct Db {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    slots: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug)]
struct Fail(StatusCode);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "application/problem+json")],
            format!("{{\"status\":{}}}", self.0.as_u16()),
        )
            .into_response()
    }
}

fn internal<E>(_: E) -> Fail {
    Fail(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Db {
    /// The store's reader approach: wait for one of 16 slots, then a pooled connection on a
    /// blocking thread.
    async fn read<R, F>(self: &Arc<Self>, f: F) -> Result<R, Fail>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let slot = self.slots.clone().acquire_owned().await.map_err(internal)?;
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let pooled = db.readers.lock().ok().and_then(|mut p| p.pop());
            let conn = match pooled {
                Some(c) => c,
                None => connect(&db.path).map_err(internal)?,
            };
            let out = f(&conn).map_err(internal);
            if let Ok(mut pool) = db.readers.lock() {
                if pool.len() < MAX_READERS {
                    pool.push(conn);
                }
            }
            out
        })
        .await
        .map_err(internal)?
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    phone: Option<String>,
}

#[derive(Serialize)]
struct PlainNationalId {
    kind: &'static str,
    masked: String,
}

/// The keys of the server's `CustomerView`, the values in the clear.
#[derive(Serialize)]
struct PlainView {
    id: String,
    full_name: String,
    phones: Vec<String>,
    emails: Vec<String>,
    national_id: Option<PlainNationalId>,
    date_of_birth: Option<String>,
    address: Option<String>,
    services: Vec<String>,
    notes: usize,
    security_questions: Vec<String>,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
struct PlainList {
    customers: Vec<PlainView>,
}

fn rfc3339(t: i64) -> String {
    use std::fmt::Write;
    // Civil date from days since the epoch (Howard Hinnant's algorithm), to stay off extra
    // dependencies; the server formats with the `time` crate.
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = String::with_capacity(20);
    let _ = write!(
        s,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    s
}

fn list(v: &str) -> Vec<String> {
    serde_json::from_str(v).unwrap_or_default()
}

async fn search(
    State(db): State<Arc<Db>>,
    headers: HeaderMap,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PlainList>, Fail> {
    // Authentication: the same reads the server makes for a bearer token.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Fail(StatusCode::UNAUTHORIZED))?;
    let hash = callguard_core::token::hash(token);
    let session = db
        .read(move |c| {
            c.prepare_cached("SELECT id, user_id, expires_at FROM sessions WHERE token_hash = ?1")?
                .query_row([hash], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .optional()
        })
        .await?
        .ok_or(Fail(StatusCode::UNAUTHORIZED))?;
    if session.2 <= crate::unix_now() as i64 {
        return Err(Fail(StatusCode::UNAUTHORIZED));
    }
    let user = session.1;
    let role = db
        .read(move |c| {
            c.prepare_cached("SELECT role, status FROM users WHERE id = ?1")?
                .query_row([user], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
        })
        .await?
        .ok_or(Fail(StatusCode::UNAUTHORIZED))?;
    if role.1 != "active" || role.0 != "agent" {
        return Err(Fail(StatusCode::FORBIDDEN));
    }
    let phone = q
        .ok()
        .and_then(|Query(q)| q.phone)
        .ok_or(Fail(StatusCode::BAD_REQUEST))?;
    let e164 = callguard_core::vault::validate::phone(&phone)
        .map_err(|_| Fail(StatusCode::UNPROCESSABLE_ENTITY))?;
    let customers = db
        .read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT c.id, c.full_name, c.phones, c.emails, c.national_id, c.date_of_birth,
                        c.address, c.services, c.created_at, c.updated_at
                 FROM customer_index i JOIN customers c ON c.id = i.customer_id
                 WHERE i.kind = ?1 AND i.value = ?2 AND c.status = 'active' ORDER BY c.id LIMIT ?3",
            )?;
            let rows = st.query_map(params!["phone", e164, SEARCH_LIMIT], |r| {
                Ok(PlainView {
                    id: r.get(0)?,
                    full_name: r.get(1)?,
                    phones: list(&r.get::<_, String>(2)?),
                    emails: list(&r.get::<_, String>(3)?),
                    national_id: Some(PlainNationalId {
                        kind: "pesel",
                        masked: r.get(4)?,
                    }),
                    date_of_birth: Some(r.get(5)?),
                    address: Some(r.get(6)?),
                    services: list(&r.get::<_, String>(7)?),
                    notes: 0,
                    security_questions: Vec::new(),
                    created_at: rfc3339(r.get(8)?),
                    updated_at: rfc3339(r.get(9)?),
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .await?;
    Ok(Json(PlainList { customers }))
}

async fn healthz() -> &'static str {
    "ok"
}

/// The server's security headers on every answer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, callguard_server::CSP);
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=63072000; includeSubDomains",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    set(h, header::CACHE_CONTROL, "no-store");
    resp
}

/// `callguard-bench-vault baseline-serve DB CERT KEY ADDRESS_FILE`: serves the baseline on
/// 127.0.0.1 (a free port, written to ADDRESS_FILE) until killed.
pub fn serve_main(args: &[String]) -> Res<()> {
    let [db, cert, key, address_file] = args else {
        return Err("baseline-serve DB CERT KEY ADDRESS_FILE".into());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let tls = callguard_server::http::tls::server_config(
            &callguard_server::http::tls::CertificatePaths {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            },
        )?;
        let db = Arc::new(Db {
            path: PathBuf::from(db),
            readers: Mutex::new(Vec::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
        });
        let app = Router::new()
            .route("/api/v1/customers", get(search))
            .route("/healthz", get(healthz))
            .layer(middleware::from_fn(security_headers))
            .with_state(db);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        std::fs::write(address_file, listener.local_addr()?.to_string())?;
        callguard_server::http::tls::serve(
            listener,
            tls,
            app,
            callguard_server::http::connection::ConnectionLimits::default(),
            callguard_server::http::proxied::TrustedProxies::default(),
            std::future::pending(),
        )
        .await;
        Ok(())
    })
}

/// The baseline server process.
pub struct Baseline {
    child: tokio::process::Child,
    pub pid: u32,
    pub addr: std::net::SocketAddr,
}

impl Baseline {
    /// Starts `baseline-serve` on `db`, with the server's certificate and key from `tls_dir`.
    pub async fn start(db: &Path, tls_dir: &Path, dir: &Path) -> Res<Self> {
        let address_file = dir.join("baseline-address");
        let log = std::fs::File::create(dir.join("baseline.log"))?;
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("baseline-serve")
            .arg(db)
            .arg(tls_dir.join("cert.pem"))
            .arg(tls_dir.join("key.pem"))
            .arg(&address_file)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(log))
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or("the baseline server exited at once")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&address_file) {
                if let Ok(addr) = text.trim().parse() {
                    return Ok(Self { child, pid, addr });
                }
            }
            if let Some(status) = child.try_wait()? {
                return Err(format!(
                    "the baseline server exited ({status}): {}",
                    std::fs::read_to_string(dir.join("baseline.log")).unwrap_or_default()
                )
                .into());
            }
            if std::time::Instant::now() > deadline {
                return Err("the baseline server did not start within 30 s".into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) -> Res<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// CPU per read, in µs, of one small SQLite read (a user by id) in this process: through the
/// store's reader approach from `tasks` concurrent tasks (a slot, `spawn_blocking`, a pooled
/// connection), and inline in a loop on one connection. The difference is what handing each
/// read to a blocking thread costs, which every read of a request pays.
pub async fn read_costs(path: &Path, tasks: usize, seconds: f64) -> Res<(f64, f64)> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const QUERY: &str = "SELECT role, status FROM users WHERE id = ?1";
    let db = Arc::new(Db {
        path: path.to_path_buf(),
        readers: Mutex::new(Vec::new()),
        slots: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (db, stop, done) = (db.clone(), stop.clone(), done.clone());
        set.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = db
                    .read(|c| {
                        c.prepare_cached(QUERY)?
                            .query_row(["agent0000"], |r| r.get::<_, String>(0))
                            .optional()
                    })
                    .await;
                if r.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (n0, c0) = (
        done.load(Ordering::Relaxed),
        crate::sys::process_cpu("self"),
    );
    tokio::time::sleep(std::time::Duration::from_secs_f64(seconds)).await;
    let (n1, c1) = (
        done.load(Ordering::Relaxed),
        crate::sys::process_cpu("self"),
    );
    stop.store(true, Ordering::Relaxed);
    while set.join_next().await.is_some() {}
    let pooled = 1e6 * (c1 - c0) / (n1 - n0).max(1) as f64;

    let path = path.to_path_buf();
    let inline = tokio::task::spawn_blocking(move || -> Res<f64> {
        let c = connect(&path)?;
        let started = std::time::Instant::now();
        let c0 = crate::crypto::thread_cpu();
        let mut n = 0u64;
        while started.elapsed().as_secs_f64() < seconds {
            for _ in 0..1000 {
                let _: Option<String> = c
                    .prepare_cached(QUERY)?
                    .query_row(["agent0000"], |r| r.get(0))
                    .optional()?;
            }
            n += 1000;
        }
        Ok(1e6 * (crate::crypto::thread_cpu() - c0) / n.max(1) as f64)
    })
    .await??;
    Ok((pooled, inline))
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn timestamps_format_like_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_033_600), "2025-11-25T01:20:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
