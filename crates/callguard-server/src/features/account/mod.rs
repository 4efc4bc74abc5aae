//! My account: who I am, my sessions, passkeys and recovery codes.
pub mod api;
pub mod pages;
pub mod service;
