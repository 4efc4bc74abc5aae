//! Reference pages and static files: `/problems/{slug}` explains each problem type, `/static/*`
//! serves our own stylesheet and scripts (the only scripts any page loads).

use crate::error::Error;
use crate::http::access::Access;
use crate::http::problem::PROBLEM_TYPES;
use crate::web::ProblemPage;
use crate::web::{csrf_of, render, PageRoute};
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

async fn problem_page(headers: HeaderMap, Path(slug): Path<String>) -> Response {
    let c = csrf_of(&headers);
    match PROBLEM_TYPES.iter().find(|(s, _, _)| *s == slug) {
        Some((s, title, about)) => render(
            StatusCode::OK,
            ProblemPage {
                csrf: c.token,
                who: None,
                error: String::new(),
                notice: String::new(),
                title: (*title).into(),
                slug: (*s).into(),
                about: (*about).into(),
            },
            &[],
        ),
        None => Error::NotFound.into_response(),
    }
}

async fn static_file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (
            include_str!("../../static/app.css"),
            "text/css; charset=utf-8",
        ),
        "webauthn.js" => (
            include_str!("../../static/webauthn.js"),
            "text/javascript; charset=utf-8",
        ),
        "call.js" => (
            include_str!("../../static/call.js"),
            "text/javascript; charset=utf-8",
        ),
        "alerts.js" => (
            include_str!("../../static/alerts.js"),
            "text/javascript; charset=utf-8",
        ),
        "presence.js" => (
            include_str!("../../static/presence.js"),
            "text/javascript; charset=utf-8",
        ),
        "wallboard.js" => (
            include_str!("../../static/wallboard.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return Error::NotFound.into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// This feature's pages, each with its access rule.
pub fn routes() -> Vec<PageRoute> {
    use Access::Public;

    vec![
        ("/problems/{slug}", Public, get(problem_page)),
        ("/static/{file}", Public, get(static_file)),
    ]
}
