//! The audit log (SPEC C5): appends, signed checkpoints, proofs, verification and export.
pub mod api;
pub mod canonical;
pub mod pages;
pub mod service;
pub mod verify;
