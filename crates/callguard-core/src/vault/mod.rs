//! The customer data vault (SPEC C3): envelope encryption field by field, keyed blind indexes for
//! exact-match search, validation of identifiers, and masking by role.

pub mod crypto;
pub mod mask;
pub mod model;
pub mod validate;
