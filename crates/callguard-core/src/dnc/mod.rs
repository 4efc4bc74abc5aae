//! Outbound compliance (SPEC C8), starting with the national Do-Not-Call registry's compact,
//! persistent set of numbers.

pub mod elias_fano;
pub mod import;
pub mod nanp;
