//! Compliance evidence (SPEC C11): controls as code for PCI DSS, GDPR and ISO/IEC 27001, read
//! from the live system; the signed report; manual controls and the breach register; retention.
pub mod api;
mod checks;
pub mod gdpr;
pub mod iso27001;
pub mod live;
pub mod model;
pub mod pages;
pub mod pci;
mod pdf;
pub mod render;
pub mod service;
