//! End-to-end tests: the real `callguard` binary, started as its own process on a fresh data
//! directory, driven over real HTTPS (certificate verified against the server's self-signed
//! certificate) and through its CLI, once on SQLite and once on PostgreSQL.
//!
//! Every behaviour is written once as `async fn name(backend: Backend)` and instantiated for both
//! backends by `both_backends!(name)`, which yields the tests `name::sqlite` and
//! `name::postgres` (`cargo test -p callguard --test e2e sqlite` runs one backend only).
//! PostgreSQL is expected at postgres://postgres@127.0.0.1:5432/postgres (override with
//! CALLGUARD_TEST_POSTGRES_URL); when it is unreachable the PostgreSQL tests fail and say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// `both_backends!(name)`: the tests `name::sqlite` and `name::postgres`, each calling
/// `name(Backend::…)` from the module where the macro is used.
macro_rules! both_backends {
    ($($test:ident),+ $(,)?) => {$(
        mod $test {
            use crate::harness::Backend;

            #[tokio::test]
            async fn sqlite() {
                super::$test(Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$test(Backend::Postgres).await;
            }
        }
    )+};
}

mod access;
mod admin_pages;
mod agent_tls;
mod alerts;
mod api_schema;
mod audit;
mod baresip;
mod calls;
mod cluster;
mod compliance;
mod compliance_pages;
mod connections;
mod dnc;
mod dnc_cli;
mod dnc_shared;
mod duties;
mod harness;
mod idempotency;
mod keys;
mod monitor;
mod operations;
mod payments;
mod payments_3ds;
mod payments_desk;
mod payments_gateway;
mod payments_keypad;
mod payments_scan;
mod payments_tamper;
mod portal;
mod presence;
mod proxies;
mod recordings;
mod registrar_limits;
mod requests;
mod secure_keypad;
mod secure_keypad_info;
mod shared_limits;
mod signin;
mod signin_limits;
mod sipp;
mod storage;
mod telephony;
mod transfers;
mod vault;
mod verification;
mod wrap_up;
