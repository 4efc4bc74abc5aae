//! Everything the product does, one folder per feature. This is the only file that names every
//! feature: it gathers their API routes and pages for the router. Each feature's `service.rs`
//! holds its rules and knows nothing of HTTP; `api.rs` and `pages.rs` are thin front ends over
//! it. Features call other features' services, never their front ends.

pub mod account;
pub mod alerts;
pub mod audit;
pub mod compliance;
pub mod desk;
pub mod dnc;
pub mod gdpr;
pub mod incall;
pub mod interactions;
pub mod keypad;
pub mod keys;
pub mod monitor;
pub mod ops;
pub mod payments;
pub mod portal;
pub mod presence;
pub mod queues;
pub mod recordings;
pub mod signin;
pub mod softphones;
pub mod staff;
pub mod transfer;
pub mod vault;

use crate::http::routes::ApiRoute;
use crate::http::routes::PageRoute;

/// Every API route. The router registers exactly these, each behind its access check, and the
/// OpenAPI document lists exactly these.
#[must_use]
pub fn api_routes() -> Vec<ApiRoute> {
    [
        ops::api::routes(),
        signin::api::routes(),
        account::api::routes(),
        staff::api::routes(),
        audit::api::routes(),
        dnc::api::routes(),
        alerts::api::routes(),
        vault::api::routes(),
        interactions::api::routes(),
        portal::api::routes(),
        gdpr::api::routes(),
        compliance::api::routes(),
        payments::api::routes(),
        keypad::api::routes(),
        incall::api::routes(),
        recordings::api::routes(),
        presence::api::routes(),
        queues::api::routes(),
        monitor::api::routes(),
        transfer::api::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Every page route with its access rule.
#[must_use]
pub fn page_routes() -> Vec<PageRoute> {
    [
        signin::pages::routes(),
        account::pages::routes(),
        staff::pages::routes(),
        alerts::pages::routes(),
        audit::pages::routes(),
        dnc::pages::routes(),
        desk::pages::routes(),
        portal::pages::routes(),
        gdpr::pages::routes(),
        compliance::pages::routes(),
        payments::pages::routes(),
        incall::pages::routes(),
        recordings::pages::routes(),
        queues::pages::routes(),
        monitor::pages::routes(),
        transfer::pages::routes(),
        crate::web::assets::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
