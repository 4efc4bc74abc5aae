//! Interactions with callers (SPEC C4): start, two-step verification, level-gated operations.
pub mod api;
pub mod service;
