//! The payment page's tamper check (PCI DSS 11.6.1): fetch the page as a payer's browser gets
//! it — its security headers, its content, and every script and stylesheet it loads — and
//! compare that with a baseline recorded earlier and signed with the audit key. A change (or a
//! baseline whose signature does not hold) is written to the audit log as
//! `payments.page_changed`, which raises an alert. Run by `callguard payments page-check` and
//! on a schedule by every server.
//!
//! The page fetched is `/pay/preview`: the payment form rendered from the same template, with
//! the same head, scripts and headers as a real link's page, and fixed sample values, so that
//! two fetches of an unchanged page are byte for byte the same.

use crate::features::payments::pages::sri;
use crate::principal::Actor;
use callguard_core::audit::note::NoteSigner;
use callguard_store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The headers whose values are part of the baseline.
pub const WATCHED_HEADERS: &[&str] = &[
    "content-security-policy",
    "content-type",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "permissions-policy",
    "cache-control",
];

/// The token of the preview page.
pub const PREVIEW: &str = "preview";

/// What the page looked like: watched headers, the page's SHA-256, and every script and
/// stylesheet it loads with its integrity attribute and the SHA-256 of the bytes served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub headers: BTreeMap<String, String>,
    pub page_sha256: String,
    /// `src` or `href` → (integrity attribute, SHA-256 of the bytes served).
    pub assets: BTreeMap<String, (String, String)>,
}

/// The baseline as stored: the snapshot and its signature by the audit key.
#[derive(Serialize, Deserialize)]
struct Signed {
    snapshot: Snapshot,
    signature: String,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No baseline yet (or `--accept`): this snapshot is now the baseline.
    Recorded,
    Unchanged,
    /// What differs from the baseline, in words.
    Changed(Vec<String>),
}

/// Checks one server's payment page against the baseline in `baseline`.
pub struct PageCheck {
    client: reqwest::Client,
    base: url::Url,
    baseline: PathBuf,
    signer: Arc<NoteSigner>,
}

fn sha256(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(bytes))
}

impl PageCheck {
    /// `base` is the server's `https://` address; `ca_pem` certificates are trusted besides the
    /// usual roots (the server's own self-signed one); `resolve` pins the host to an address.
    pub fn new(
        base: url::Url,
        ca_pem: Option<&[u8]>,
        resolve: Option<std::net::SocketAddr>,
        baseline: PathBuf,
        signer: Arc<NoteSigner>,
    ) -> Result<Self, String> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true);
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| "the server's certificate file could not be read".to_owned())?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if let (Some(addr), Some(host)) = (resolve, base.host_str()) {
            b = b.resolve(host, addr);
        }
        let client = b
            .build()
            .map_err(|_| "the HTTPS client could not be built".to_owned())?;
        Ok(Self {
            client,
            base,
            baseline,
            signer,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    async fn fetch(&self, path: &str) -> Result<reqwest::Response, String> {
        let r = self
            .client
            .get(self.url(path))
            .send()
            .await
            .map_err(|e| format!("fetching {path}: {}", e.without_url()))?;
        if !r.status().is_success() {
            return Err(format!("fetching {path}: HTTP {}", r.status()));
        }
        Ok(r)
    }

    /// Fetches the page and everything it loads.
    pub async fn snapshot(&self) -> Result<Snapshot, String> {
        let page = self.fetch(&format!("/pay/{PREVIEW}")).await?;
        let headers = WATCHED_HEADERS
            .iter()
            .map(|h| {
                let v = page
                    .headers()
                    .get(*h)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(absent)");
                ((*h).to_owned(), v.to_owned())
            })
            .collect();
        let body = page
            .text()
            .await
            .map_err(|_| "reading the page failed".to_owned())?;
        let mut assets = BTreeMap::new();
        for (src, integrity) in loaded_assets(&body) {
            if !src.starts_with('/') || src.starts_with("//") {
                assets.insert(src, (integrity, "another host".to_owned()));
                continue;
            }
            let bytes = self
                .fetch(&src)
                .await?
                .bytes()
                .await
                .map_err(|_| format!("reading {src} failed"))?;
            let served = std::str::from_utf8(&bytes).map(sri).unwrap_or_default();
            let integrity = if served == integrity {
                integrity
            } else {
                format!("{integrity} (served bytes do not match it)")
            };
            assets.insert(src, (integrity, sha256(&bytes)));
        }
        Ok(Snapshot {
            headers,
            page_sha256: sha256(body.as_bytes()),
            assets,
        })
    }

    fn signature(&self, snapshot: &Snapshot) -> Result<String, String> {
        let text = serde_json::to_string(snapshot).map_err(|e| e.to_string())?;
        // Ed25519 signatures are deterministic: signing again and comparing verifies.
        Ok(self.signer.sign(&format!(
            "payment page baseline\n{}\n",
            sha256(text.as_bytes())
        )))
    }

    /// The stored baseline, its signature checked; `Err` names what is wrong with it.
    fn load(&self) -> Result<Option<Snapshot>, String> {
        let text = match std::fs::read_to_string(&self.baseline) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("the baseline cannot be read: {e}")),
        };
        let signed: Signed = serde_json::from_str(&text)
            .map_err(|_| "the baseline file is not a signed baseline".to_owned())?;
        if self.signature(&signed.snapshot)? != signed.signature {
            return Err("the baseline's signature does not match the audit key".into());
        }
        Ok(Some(signed.snapshot))
    }

    fn save(&self, snapshot: &Snapshot) -> Result<(), String> {
        let signed = Signed {
            snapshot: snapshot.clone(),
            signature: self.signature(snapshot)?,
        };
        if let Some(dir) = self.baseline.parent() {
            crate::bootstrap::create_private_dir(dir).map_err(|e| e.to_string())?;
        }
        let tmp = self.baseline.with_extension("tmp");
        let text = serde_json::to_string_pretty(&signed).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text).map_err(|e| format!("writing the baseline: {e}"))?;
        std::fs::rename(&tmp, &self.baseline).map_err(|e| format!("writing the baseline: {e}"))
    }

    /// Compares the page with the baseline (recording it when there is none, or when
    /// `accept`); a change is audited as `payments.page_changed` (an alert) by `actor`.
    pub async fn check(
        &self,
        store: &Arc<dyn Store>,
        actor: &Actor,
        accept: bool,
    ) -> Result<Verdict, String> {
        let now = self.snapshot().await?;
        let baseline = if accept { Ok(None) } else { self.load() };
        let verdict = match baseline {
            Ok(None) => {
                self.save(&now)?;
                let record = actor
                    .record("payments.page_baseline")
                    .target("page:/pay")
                    .detail("page_sha256", now.page_sha256.clone());
                store
                    .append(vec![record])
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok(Verdict::Recorded);
            }
            Ok(Some(before)) => differences(&before, &now),
            Err(bad_baseline) => vec![bad_baseline],
        };
        if verdict.is_empty() {
            return Ok(Verdict::Unchanged);
        }
        let record = actor
            .record("payments.page_changed")
            .target("page:/pay")
            .detail("changed", verdict.clone())
            .failure();
        store
            .append(vec![record])
            .await
            .map_err(|e| e.to_string())?;
        Ok(Verdict::Changed(verdict))
    }
}

/// `<script src integrity>` and `<link href integrity>` of a page, in order.
fn loaded_assets(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> String {
        tag.split_once(&format!("{name}=\""))
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(v, _)| v.to_owned())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for (open, name) in [("<script", "src"), ("<link", "href")] {
        for piece in html.split(open).skip(1) {
            let tag = piece.split('>').next().unwrap_or_default();
            let src = attr(tag, name);
            if src.is_empty() {
                // An inline script is a change in itself.
                out.push(("(inline script)".to_owned(), String::new()));
                continue;
            }
            out.push((src, attr(tag, "integrity")));
        }
    }
    out
}

/// What differs, in words naming the header, the page or the asset.
fn differences(before: &Snapshot, now: &Snapshot) -> Vec<String> {
    let mut d = Vec::new();
    for (h, v) in &now.headers {
        if before.headers.get(h) != Some(v) {
            d.push(format!("header {h} changed"));
        }
    }
    if before.page_sha256 != now.page_sha256 {
        d.push("the page's content changed".into());
    }
    for (src, v) in &now.assets {
        match before.assets.get(src) {
            None => d.push(format!("{src} is new on the page")),
            Some(b) if b != v => d.push(format!("{src} changed")),
            Some(_) => {}
        }
    }
    for src in before.assets.keys() {
        if !now.assets.contains_key(src) {
            d.push(format!("{src} is gone from the page"));
        }
    }
    d
}

/// The check of the server that `settings` describe: its `public_url` (else
/// `https://localhost:PORT` of the running server), the address it is bound to (from
/// `DATA_DIR/run/address`, when the host is this machine), its own certificate trusted, and
/// the baseline at `DATA_DIR/payments/page-baseline.json` signed with the audit key.
pub fn for_settings(
    settings: &crate::Settings,
    url: Option<url::Url>,
) -> Result<PageCheck, String> {
    let bound: Option<std::net::SocketAddr> =
        std::fs::read_to_string(settings.data_dir.join("run").join("address"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
    let base = match url.or_else(|| settings.public_url.clone()) {
        Some(u) => u,
        None => {
            let port = bound.map(|a| a.port()).ok_or(
                "the server does not seem to run here (no DATA_DIR/run/address): give --url",
            )?;
            url::Url::parse(&format!("https://localhost:{port}")).map_err(|e| e.to_string())?
        }
    };
    let local = base
        .host_str()
        .is_some_and(crate::notify::email::is_loopback_name);
    let cert = settings
        .tls_cert_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("tls").join("cert.pem"));
    let pem = std::fs::read(&cert).ok();
    let signer = crate::features::audit::service::load_or_create_signer(
        &settings.audit.signing_key_file,
        &settings.audit.origin,
    )?;
    PageCheck::new(
        base,
        pem.as_deref(),
        bound.filter(|_| local),
        settings
            .data_dir
            .join("payments")
            .join("page-baseline.json"),
        Arc::new(signer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            headers: [(
                "content-security-policy".to_owned(),
                "script-src 'self'".to_owned(),
            )]
            .into(),
            page_sha256: "aa".into(),
            assets: [(
                "/pay/assets/pay.js".to_owned(),
                ("sha384-x".to_owned(), "bb".to_owned()),
            )]
            .into(),
        }
    }

    #[test]
    fn a_changed_header_script_or_page_is_named() {
        let before = snapshot();
        assert!(differences(&before, &before).is_empty());
        let mut now = before.clone();
        now.headers
            .insert("content-security-policy".into(), "script-src *".into());
        now.page_sha256 = "cc".into();
        now.assets.insert(
            "https://evil.example/skim.js".into(),
            (String::new(), "x".into()),
        );
        assert_eq!(
            differences(&before, &now),
            [
                "header content-security-policy changed",
                "the page's content changed",
                "https://evil.example/skim.js is new on the page"
            ]
        );
    }

    #[test]
    fn every_script_and_stylesheet_of_a_page_is_found_and_inline_ones_too() {
        let html = r#"<link rel="stylesheet" href="/a.css" integrity="sha384-a"><script src="/b.js" integrity="sha384-b" defer></script><script>alert(1)</script>"#;
        assert_eq!(
            loaded_assets(html),
            [
                ("/b.js".to_owned(), "sha384-b".to_owned()),
                ("(inline script)".to_owned(), String::new()),
                ("/a.css".to_owned(), "sha384-a".to_owned())
            ]
        );
    }
}
