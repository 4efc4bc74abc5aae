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
    let problem = schema_value(&mut gen, |g| g.subschema_for::<Problem>());
    let mut paths = Map::new();
    for r in routes {
        let method = r.method.to_ascii_lowercase();
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert("operationId".into(), json!(operation_id(r.method, r.path)));
        if let Some(f) = r.request {
            let s = schema_value(&mut gen, f);
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
            }
            Access::Public => {
                op.insert("security".into(), json!([]));
            }
        }
        let mut params: Vec<Value> = path_params(r.path)
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(r.query.iter().map(|(name, kind, required)| {
            let schema = match *kind {
                "integer" => json!({"type": "integer", "format": "uint64", "minimum": 0}),
                _ => json!({"type": "string"}),
            };
            json!({"name": name, "in": "query", "required": required, "schema": schema})
        }));
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        op.insert(
            "responses".into(),
            Value::Object(responses(r, &mut gen, &problem)),
        );
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(method, Value::Object(op));
        }
    }
    let mut definitions = gen.take_definitions();
    for schema in definitions.values_mut() {
        for visitor in gen.visitors_mut() {
            visitor.visit_schema(schema);
        }
    }
    let schemas = serde_json::to_value(definitions).unwrap_or(Value::Null);
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

/// A wire type's schema as OpenAPI 3.0 wants it: the generator's openapi3 visitors (which,
/// among others, turn the JSON Schema `true` of a `serde_json::Value` into `{}`) run on every
/// schema, not only on root schemas.
fn schema_value(
    gen: &mut schemars::gen::SchemaGenerator,
    f: impl FnOnce(&mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema,
) -> Value {
    let mut schema = f(gen);
    for visitor in gen.visitors_mut() {
        visitor.visit_schema(&mut schema);
    }
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// Every status a route can answer: those its shape implies, then those it declares with
/// `.may` (see [`ApiRoute`]'s documentation for the rules).
fn responses(
    r: &ApiRoute,
    gen: &mut schemars::gen::SchemaGenerator,
    problem: &Value,
) -> Map<String, Value> {
    let mut out = Map::new();
    let add_problem = |out: &mut Map<String, Value>, status: u16, description: &str| {
        let mut response = json!({
            "description": description,
            "content": { "application/problem+json": { "schema": problem.clone() } }
        });
        // Every 429 and 503 problem says how long to wait (`Error::retry_after`).
        if matches!(status, 429 | 503) {
            response["headers"] = json!({"Retry-After": {
                "description": "Seconds to wait before trying again",
                "required": true,
                "schema": {"type": "integer", "minimum": 1}
            }});
        }
        out.entry(status.to_string()).or_insert(response);
    };
    match r.response {
        Some((status, f)) => {
            let s = schema_value(gen, f);
            out.insert(
                status.to_string(),
                json!({"description": "Success", "content": {"application/json": {"schema": s}}}),
            );
        }
        None if r.path == "/metrics" => {
            out.insert("200".into(), json!({"description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}}));
        }
        None if r.path.ends_with("/stream") => {
            out.insert("200".into(), json!({"description": "Server-sent events", "content": {"text/event-stream": {"schema": {"type": "string"}}}}));
        }
        None if r.path.starts_with("/api/v1/recordings/playback/") => {
            out.insert("200".into(), json!({"description": "WAV audio (16-bit PCM, stereo: caller left, agent right)", "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}}));
        }
        None if r.path.starts_with("/api/v1/audit/") => {
            out.insert("200".into(), json!({"description": "Signed note or key", "content": {"text/plain": {"schema": {"type": "string"}}}}));
        }
        None if r.path.ends_with("openapi.json") => {
            out.insert("200".into(), json!({"description": "OpenAPI 3.0 document", "content": {"application/json": {"schema": {"type": "object"}}}}));
        }
        None => {
            out.insert("204".into(), json!({"description": "Done"}));
        }
    }
    for (status, f) in &r.other_responses {
        let s = schema_value(gen, *f);
        out.insert(
            status.to_string(),
            json!({"description": problem_description(*status), "content": {"application/json": {"schema": s}}}),
        );
    }
    if r.request.is_some() {
        add_problem(
            &mut out,
            400,
            "Malformed body, wrong types or unknown fields",
        );
        add_problem(&mut out, 413, "Body too large");
    }
    if !r.query.is_empty() {
        add_problem(
            &mut out,
            400,
            "A query parameter is malformed, unknown or missing",
        );
    }
    if let Access::Signed(_) = r.access {
        add_problem(&mut out, 401, "No valid session");
        add_problem(
            &mut out,
            403,
            "Refused: the role lacks the permission, or the problem `type` says why",
        );
    }
    if path_params(r.path).next().is_some() {
        add_problem(&mut out, 404, problem_description(404));
    }
    for status in &r.may {
        add_problem(&mut out, *status, problem_description(*status));
    }
    // Everything but liveness may find the database unreachable (a restart, a failover).
    if r.path != "/healthz" {
        add_problem(
            &mut out,
            503,
            "The database (or, for sign-in, the password hasher) is busy or unreachable; retry after Retry-After",
        );
    }
    out
}

/// What a problem status means, for the statuses routes declare with `.may`; the problem's
/// `type` says exactly which case it is (`x-problem-types` lists them all).
#[must_use]
pub fn problem_description(status: u16) -> &'static str {
    match status {
        400 => "Malformed request",
        401 => "Credentials, challenge, code or session not accepted",
        403 => "Refused: the problem `type` says why (locked or disabled account, re-authentication, verification or a second approver needed)",
        404 => "No such resource, or not one you may see",
        409 => "Conflicts with the current state or an existing record",
        413 => "Body too large",
        422 => "A value is not accepted; for `invalid-fields`, `errors` lists every field",
        423 => "Verification locked: too many failed attempts",
        429 => "Too many attempts; wait as Retry-After says",
        501 => "The feature is not configured on this server",
        502 => "A service Callguard relies on did not take the request",
        503 => "Busy or unavailable; retry shortly",
        _ => "See the problem `type`",
    }
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
    fn the_problem_schema_requires_only_what_every_problem_carries() {
        use crate::error::{Error, FieldProblem};
        let doc = document(&routes());
        let schema = &doc["components"]["schemas"]["Problem"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(!required.contains(&"errors"), "{required:?}");
        let samples = [
            Error::NotFound,
            Error::Unauthenticated,
            Error::Throttled(3),
            Error::InvalidFields(vec![FieldProblem {
                field: "phone".into(),
                detail: "not E.164".into(),
            }]),
        ];
        for e in samples {
            let sent = serde_json::to_value(crate::http::problem::problem_of(&e)).unwrap();
            for field in &required {
                assert!(
                    sent.get(field).is_some(),
                    "{} lacks {field}: {sent}",
                    e.slug()
                );
            }
            for (field, _) in sent.as_object().unwrap() {
                assert!(
                    schema["properties"].get(field).is_some(),
                    "{} sends undocumented {field}",
                    e.slug()
                );
            }
        }
    }

    /// Where OpenAPI 3.0 expects a schema, it must be an object: `true` (what schemars makes of
    /// a `serde_json::Value`) is a JSON Schema but not an OpenAPI 3.0 one.
    #[test]
    fn every_schema_is_an_openapi_3_0_schema_object() {
        fn walk(v: &Value, at: &str, bad: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, child) in m {
                        let here = format!("{at}/{k}");
                        let is_schema = matches!(k.as_str(), "schema" | "items" | "not")
                            || at.ends_with("/properties")
                            || at.ends_with("/schemas");
                        if is_schema && !child.is_object() {
                            bad.push(here.clone());
                        }
                        walk(child, &here, bad);
                    }
                }
                Value::Array(a) => {
                    for (i, child) in a.iter().enumerate() {
                        let in_combinator = ["/allOf", "/anyOf", "/oneOf"]
                            .iter()
                            .any(|c| at.ends_with(c));
                        if in_combinator && !child.is_object() {
                            bad.push(format!("{at}/{i}"));
                        }
                        walk(child, &format!("{at}/{i}"), bad);
                    }
                }
                _ => {}
            }
        }
        let mut bad = Vec::new();
        walk(&document(&routes()), "", &mut bad);
        assert!(bad.is_empty(), "not schema objects: {bad:?}");
    }

    #[test]
    fn statuses_follow_from_the_route_shape_and_its_declared_extras() {
        use crate::http::routes::route;
        use callguard_core::Permission;
        let handler = || axum::routing::post(|| async { "" });
        let routes = vec![
            route("GET", "/open", Access::Public, "", handler()),
            route(
                "POST",
                "/things/{id}",
                Access::Signed(Permission::OwnAccount),
                "",
                handler(),
            )
            .takes::<crate::features::alerts::api::AlertComment>()
            .may(&[409, 429]),
            route(
                "GET",
                "/list",
                Access::Signed(Permission::OwnAccount),
                "",
                handler(),
            )
            .query("limit", "integer"),
        ];
        let doc = document(&routes);
        let statuses = |path: &str, method: &str| -> Vec<String> {
            doc["paths"][path][method]["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect()
        };
        // Every route but liveness may meet an unreachable database (503).
        assert_eq!(statuses("/open", "get"), ["204", "503"]);
        assert_eq!(
            statuses("/things/{id}", "post"),
            ["204", "400", "401", "403", "404", "409", "413", "429", "503"]
        );
        assert_eq!(
            statuses("/list", "get"),
            ["204", "400", "401", "403", "503"]
        );
        let throttled = &doc["paths"]["/things/{id}"]["post"]["responses"]["429"];
        assert!(throttled["content"]["application/problem+json"].is_object());
        assert_eq!(throttled["headers"]["Retry-After"]["required"], true);
        assert_eq!(doc["paths"]["/list"]["get"]["parameters"][0]["in"], "query");
    }

    #[test]
    fn every_declared_status_is_an_error_status_with_a_description() {
        for r in routes() {
            for status in &r.may {
                assert!(
                    (400..600).contains(status)
                        && problem_description(*status) != problem_description(0),
                    "{} {}: .may({status}) needs a line in problem_description",
                    r.method,
                    r.path
                );
            }
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
