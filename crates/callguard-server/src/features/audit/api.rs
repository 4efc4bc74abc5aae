//! The audit log over the JSON API: entries, the signed checkpoint, the verifier key and RFC 9162
//! proofs.

use crate::error::Error;
use crate::http::access::Access;
use crate::http::routes::{number, route, ApiRoute, Params};
use crate::principal::Principal;
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use callguard_core::Permission;
use schemars::JsonSchema;
use serde::Serialize;

#[derive(Serialize, JsonSchema)]
pub struct AuditPage {
    /// The size of the log when this page was read.
    pub tree_size: u64,
    /// Entries in index order, each exactly the object whose RFC 8785 form is its Merkle leaf.
    pub entries: Vec<serde_json::Value>,
}

#[derive(Serialize, JsonSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub tree_size: u64,
    /// Base64 SHA-256 hashes, nearest the leaf first (RFC 9162 §2.1.3).
    pub hashes: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    /// Base64 SHA-256 hashes (RFC 9162 §2.1.4).
    pub hashes: Vec<String>,
}

fn b64(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes
        .iter()
        .map(|h| data_encoding::BASE64.encode(h))
        .collect()
}

async fn audit_entries(
    State(s): State<AppState>,
    p: Principal,
    q: Params,
) -> Result<Json<AuditPage>, Error> {
    let start = number(&q, "start", Some(0))?;
    let limit = number(&q, "limit", Some(100))?;
    let (tree_size, entries) = s.audit.read_page(&p.actor(), start, limit).await?;
    Ok(Json(AuditPage { tree_size, entries }))
}

async fn audit_checkpoint(State(s): State<AppState>) -> Result<Response, Error> {
    let cp = s.audit.checkpoint_now().await?.ok_or(Error::NotFound)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        cp.note,
    )
        .into_response())
}

async fn audit_verifier_key(State(s): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        s.audit.verifier_key(),
    )
        .into_response()
}

async fn audit_inclusion(
    State(s): State<AppState>,
    q: Params,
) -> Result<Json<InclusionProof>, Error> {
    let index = number(&q, "index", None)?;
    let tree_size = number(&q, "tree_size", None)?;
    let hashes = s.audit.inclusion_proof(index, tree_size).await?;
    Ok(Json(InclusionProof {
        index,
        tree_size,
        hashes: b64(&hashes),
    }))
}

async fn audit_consistency(
    State(s): State<AppState>,
    q: Params,
) -> Result<Json<ConsistencyProof>, Error> {
    let first = number(&q, "first", None)?;
    let second = number(&q, "second", None)?;
    let hashes = s.audit.consistency_proof(first, second).await?;
    Ok(Json(ConsistencyProof {
        first,
        second,
        hashes: b64(&hashes),
    }))
}

/// This feature's API routes, each with its access rule.
#[rustfmt::skip]
pub fn routes() -> Vec<ApiRoute> {
    use Access::Signed;
    use Permission::*;
    vec![
        route("GET", "/api/v1/audit", Signed(AuditRead), "Audit entries `start..start+limit` (limit ≤ 1000) and the tree size; the read itself is logged.", get(audit_entries))
            .gives::<AuditPage>(200).query("start", "integer").query("limit", "integer").may(&[422]),
        route("GET", "/api/v1/audit/checkpoint", Signed(AuditRead), "The latest signed checkpoint (C2SP tlog-checkpoint signed note, text/plain).", get(audit_checkpoint)).may(&[404]),
        route("GET", "/api/v1/audit/verifier-key", Signed(AuditRead), "The checkpoint verifier key in note format (name+keyhash+base64key, text/plain).", get(audit_verifier_key)),
        route("GET", "/api/v1/audit/proof/inclusion", Signed(AuditRead), "Inclusion proof of entry `index` in the tree of `tree_size` entries.", get(audit_inclusion))
            .gives::<InclusionProof>(200).query_required("index", "integer").query_required("tree_size", "integer").may(&[422]),
        route("GET", "/api/v1/audit/proof/consistency", Signed(AuditRead), "Consistency proof between tree sizes `first` and `second`.", get(audit_consistency))
            .gives::<ConsistencyProof>(200).query_required("first", "integer").query_required("second", "integer").may(&[422]),
    ]
}
