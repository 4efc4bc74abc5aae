//! The agent desk (SPEC C10): calls, screen-pop, verification, reveals and operations on pages.
pub mod pages;
