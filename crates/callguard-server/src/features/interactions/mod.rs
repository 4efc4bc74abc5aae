//! Interactions with callers (SPEC C4): start, two-step verification, level-gated operations.
pub mod api;
pub mod idempotency;
pub mod model;
pub mod operations;
pub mod reveal;
pub mod service;
pub mod verify;
pub mod wrap_up;
