//! Outbound compliance (SPEC C8): the national Do-Not-Call registry's compact, persistent set of
//! numbers, the numbers themselves, and calling-hour windows in the called party's local time.

pub mod call_list;
pub mod elias_fano;
pub mod hours;
pub mod import;
pub mod nanp;
pub mod number;
