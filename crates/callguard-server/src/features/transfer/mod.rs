//! Call transfers (issue #13 item 4): the agent on a call passes it to another agent or to a
//! queue. The interaction goes with it, its verification level intact, and the new agent's desk
//! pops with it like any offered call. The rules (whose call, which targets) and the audit are
//! in [`service`] (no HTTP); the SIP edge carrying the call does the telephony through
//! [`service::CallTransfer`]; [`api`] and [`pages`] are thin layers over the service.

pub mod api;
pub mod pages;
pub mod service;
