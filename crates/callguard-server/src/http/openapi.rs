//! The OpenAPI document, generated from the route table and the wire types themselves, so it
//! cannot list a route the server does not have or miss one it has.

use crate::http::access::Access;
use crate::http::problem::{Problem, PROBLEM_TYPES};
use crate::http::routes::ApiRoute;
use schemars::gen::SchemaSettings;
use serde_json::{json, Map, Value};

/// The whole document.
#[must_use]
pub fn document(routes: &[ApiRoute]) -> Value {
    let mut gen = SchemaSettings::openapi3().into_generator();
    let problem = gen.subschema_for::<Problem>();
    let problem = serde_json::to_value(problem).unwrap_or(Value::Null);
    let problem_response = |description: &str| {
        json!({
            "description": description,
            "content": { "application/problem+json": { "schema": problem.clone() } }
        })
    };
    let mut paths = Map::new();
    for r in routes {
        let method = r.method.to_ascii_lowercase();
        let mut responses = Map::new();
        match r.response {
            Some((status, f)) => {
                let s = serde_json::to_value(f(&mut gen)).unwrap_or(Value::Null);
                responses.insert(
                    status.to_string(),
                    json!({"description": "Success", "content": {"application/json": {"schema": s}}}),
                );
            }
            None if r.path == "/metrics" => {
                responses.insert("200".into(), json!({"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}}));
            }
            None if r.path == "/api/v1/alerts/stream" => {
                responses.insert("200".into(), json!({"description": "Server-sent events", "content": {"text/event-stream": {"schema": {"type": "string"}}}}));
            }
            None if r.path.starts_with("/api/v1/audit/") => {
                responses.insert("200".into(), json!({"description": "Signed note or key", "content": {"text/plain": {"schema": {"type": "string"}}}}));
            }
            None if r.path.ends_with("openapi.json") => {
                responses.insert("200".into(), json!({"description": "OpenAPI 3.0 document", "content": {"application/json": {"schema": {"type": "object"}}}}));
            }
            None => {
                responses.insert("204".into(), json!({"description": "Done"}));
            }
        }
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert("operationId".into(), json!(operation_id(r.method, r.path)));
        if r.request.is_some() {
            responses.insert(
                "400".into(),
                problem_response("Malformed body, wrong types or unknown fields"),
            );
            responses.insert("413".into(), problem_response("Body too large"));
        }
        if let Some(f) = r.request {
            let s = serde_json::to_value(f(&mut gen)).unwrap_or(Value::Null);
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": s}}}),
            );
        }
        match r.access {
            Access::Signed(permission) => {
                op.insert(
                    "security".into(),
                    json!([{"bearer": []}, {"session_cookie": []}]),
                );
                op.insert(
                    "x-callguard-permission".into(),
                    json!(format!("{permission:?}")),
                );
                responses.insert("401".into(), problem_response("No valid session"));
                responses.insert(
                    "403".into(),
                    problem_response(
                        "The role lacks the permission, or re-authentication is needed",
                    ),
                );
            }
            Access::Public => {
                op.insert("security".into(), json!([]));
            }
        }
        if r.path.starts_with("/api/v1/auth/") && r.access == Access::Public {
            responses.insert(
                "401".into(),
                problem_response("Credentials, challenge or code not accepted"),
            );
            responses.insert(
                "429".into(),
                problem_response("Too many failures; see Retry-After"),
            );
        }
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        op.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(method, Value::Object(op));
        }
    }
    let schemas = serde_json::to_value(gen.definitions()).unwrap_or(Value::Null);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Callguard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Contact-center platform whose first job is to keep callers' data and money safe. Errors are RFC 9457 problem+json; each `type` is a path on this server that explains it.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Session token from /api/v1/auth/mfa or /api/v1/auth/setup/confirm"},
                "session_cookie": {"type": "apiKey", "in": "cookie", "name": crate::http::access::SESSION_COOKIE, "description": "Web pages; state-changing calls also need the X-CSRF-Token header"}
            }
        },
        "x-problem-types": PROBLEM_TYPES.iter().map(|(slug, title, about)| json!({"type": format!("/problems/{slug}"), "title": title, "about": about})).collect::<Vec<_>>(),
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_ascii_lowercase();
    for seg in path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
    {
        id.push('_');
        id.push_str(&seg.replace(['{', '}'], "").replace(['-', '.'], "_"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<ApiRoute> {
        crate::features::api_routes()
    }

    #[test]
    fn every_route_is_in_the_document_with_its_method() {
        let doc = document(&routes());
        for r in routes() {
            let op = &doc["paths"][r.path][r.method.to_ascii_lowercase()];
            assert!(op.is_object(), "{} {} missing", r.method, r.path);
        }
    }

    #[test]
    fn schema_references_resolve() {
        let doc = document(&routes());
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling $ref {name}"
            );
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut ids: Vec<String> = routes()
            .iter()
            .map(|r| operation_id(r.method, r.path))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
