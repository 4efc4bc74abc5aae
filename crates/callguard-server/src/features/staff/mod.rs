//! Staff administration: accounts, roles, lockouts, resets.
pub mod api;
pub mod pages;
pub mod service;
