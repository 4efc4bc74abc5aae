//! The customer portal (SPEC roles, C3, C10): a customer's own data, codes and requests.
pub mod api;
pub mod pages;
