//! The agent desk (SPEC C10): the desk page, registering a caller, and the call screen. Pages
//! only: every decision is made by the interactions and vault services.
pub mod pages;
