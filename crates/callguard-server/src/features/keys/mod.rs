//! Key rotation: replacing the key-encryption key while servers run.
pub mod service;
