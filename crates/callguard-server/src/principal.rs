//! Who acts: the signed-in [`Principal`] and the [`Actor`] named in audit entries, the
//! [`Audience`] a sign-in belongs to, and where a request came from. Shared by every feature and
//! every front end (HTTP today, the telephony edge next), so it depends on none of them.

use crate::error::Error;
use callguard_core::audit::record::user as user_ref;
use callguard_core::audit::AuditRecord;
use callguard_core::identity::{Session, User};
use callguard_core::Role;
use std::net::IpAddr;

/// Which sign-in a request came through: staff accounts sign in at `/api/v1/auth/*`, customers
/// at `/api/v1/portal/auth/*`, and neither kind of account is admitted through the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Staff,
    Portal,
}

impl Audience {
    #[must_use]
    pub fn admits(self, role: Role) -> bool {
        match self {
            Audience::Staff => role.is_staff(),
            Audience::Portal => role == Role::Customer,
        }
    }
}

/// Where a request came from, for throttling and the session list.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub source: IpAddr,
    pub user_agent: String,
}

impl RequestContext {
    /// Context for actions taken at the machine itself (the CLI, the demo).
    #[must_use]
    pub fn local() -> Self {
        Self {
            source: IpAddr::from([127, 0, 0, 1]),
            user_agent: "callguard-cli".into(),
        }
    }
}

/// Who acts, for the audit log: a signed-in person, the local operator, or the system.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub source: Option<String>,
}

impl Actor {
    /// The server itself (scheduled jobs: retention, the daily compliance run).
    #[must_use]
    pub fn system() -> Self {
        Self {
            id: "system".into(),
            source: None,
        }
    }

    /// The telephony edge (`user:telephony-edge`), reporting calls it handles.
    #[must_use]
    pub fn telephony_edge() -> Self {
        Self {
            id: user_ref(TELEPHONY_EDGE),
            source: None,
        }
    }

    /// The operator at the machine (CLI commands).
    #[must_use]
    pub fn cli() -> Self {
        Self {
            id: "cli".into(),
            source: None,
        }
    }

    /// Someone not (yet) signed in, at an address.
    #[must_use]
    pub fn anonymous(ctx: &RequestContext) -> Self {
        Self {
            id: "anonymous".into(),
            source: Some(ctx.source.to_string()),
        }
    }

    #[must_use]
    pub fn record(&self, action: &str) -> AuditRecord {
        let mut r = AuditRecord::new(action, self.id.clone());
        r.source = self.source.clone();
        r
    }
}

/// A signed-in person and the session they are using.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub session: Session,
    /// The address the current request came from.
    pub source: IpAddr,
}

/// The id the telephony edge acts under: the agent of the interactions it opens for calls
/// until a person takes them, and the actor its audit entries name (`user:telephony-edge`).
pub const TELEPHONY_EDGE: &str = "telephony-edge";

impl Principal {
    /// The telephony edge acting for a call that came from `source` (the carrier). It is no
    /// account: nobody can sign in as it, and it holds no session; the services it calls
    /// (interactions and verification) treat it as the agent of the calls it answers.
    #[must_use]
    pub fn telephony_edge(source: IpAddr) -> Self {
        let t = callguard_core::now();
        Self {
            user: User {
                id: TELEPHONY_EDGE.into(),
                username: TELEPHONY_EDGE.into(),
                role: Role::Agent,
                status: callguard_core::identity::UserStatus::Active,
                failed_sign_ins: 0,
                locked_until: None,
                created_at: t,
                activated_at: Some(t),
                last_sign_in_at: None,
            },
            session: Session {
                id: String::new(),
                user_id: TELEPHONY_EDGE.into(),
                created_at: t,
                last_seen_at: t,
                reauth_at: t,
                source: source.to_string(),
                user_agent: String::new(),
            },
            source,
        }
    }

    /// This person as the actor of an audit entry.
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor {
            id: user_ref(&self.user.id),
            source: Some(self.source.to_string()),
        }
    }
}

/// `customer:<id>` for audit targets.
#[must_use]
pub fn customer_ref(id: &str) -> String {
    format!("customer:{id}")
}

/// An [`Audience`] known at compile time, so one handler serves both sign-ins.
pub trait AudienceKind: Send + Sync + 'static {
    const AUDIENCE: Audience;
}

/// Staff sign-in (`/login`, `/api/v1/auth/*`).
pub struct StaffSide;
/// Customer sign-in (`/portal/login`, `/api/v1/portal/auth/*`).
pub struct PortalSide;

impl AudienceKind for StaffSide {
    const AUDIENCE: Audience = Audience::Staff;
}

impl AudienceKind for PortalSide {
    const AUDIENCE: Audience = Audience::Portal;
}

/// The customer a portal principal is; staff are refused.
pub fn customer_of(p: &Principal) -> Result<String, Error> {
    if p.user.role == Role::Customer {
        Ok(p.user.username.clone())
    } else {
        Err(Error::Forbidden)
    }
}

/// A customer as the actor of audit entries.
#[must_use]
pub fn customer_actor(p: &Principal, customer_id: &str) -> Actor {
    Actor {
        id: customer_ref(customer_id),
        source: Some(p.source.to_string()),
    }
}
