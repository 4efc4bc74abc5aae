//! Secure keypad payments inside a live call (issue 13 item 1, SPEC C7/C9): the agent presses
//! "Take card payment by keypad" for a keypad payment of the call on their screen; the server
//! starts the keypad capture ([`crate::features::keypad`]) and tells the SIP edge carrying that
//! call, in this process, to go secure: the caller's keys then go to the capture and never to
//! the agent, a listener or the recording. The registry of live calls and the two actions are in
//! [`service`] (no HTTP); [`api`] and [`pages`] are thin layers over it.

pub mod api;
pub mod pages;
pub mod service;
