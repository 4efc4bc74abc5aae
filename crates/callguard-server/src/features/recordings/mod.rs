//! Call recordings (SPEC C9): the telephony edge writes them encrypted; this feature keeps the
//! files and their key shares. Playback pages come with the supervisor work.
pub mod service;
