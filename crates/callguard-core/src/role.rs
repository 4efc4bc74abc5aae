//! Roles and permissions (SPEC C2). One table says which role holds which permission; the HTTP
//! layer asks [`Role::allows`] and nothing else, and anything not in the table is denied.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The staff roles. Customers and the telephony service account are separate principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Supervisor,
    Compliance,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Agent, Role::Supervisor, Role::Compliance, Role::Admin];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
        }
    }

    /// Whether this role holds `permission`. Deny by default: a permission not listed for a
    /// role in this match is refused.
    #[must_use]
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            // Every signed-in person manages their own account and sessions.
            OwnAccount => true,
            UsersRead | UsersManage => self == Role::Admin,
            AuditRead => self == Role::Compliance,
            AlertsRead | AlertsManage => matches!(self, Role::Supervisor | Role::Compliance),
            // Whoever places or plans outbound calls checks numbers; compliance watches the registry.
            DncCheck => matches!(self, Role::Agent | Role::Supervisor | Role::Compliance),
            DncStatus => matches!(self, Role::Supervisor | Role::Compliance),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of Callguard's roles.
#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: expected one of agent, supervisor, compliance, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "compliance" => Ok(Role::Compliance),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.chars().take(32).collect())),
        }
    }
}

/// What a request needs. Each route names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read and manage one's own account: sessions, recovery codes, passkeys.
    OwnAccount,
    /// List staff accounts.
    UsersRead,
    /// Create staff accounts, change roles, unlock and enable accounts.
    UsersManage,
    /// Read the audit log, its checkpoints and proofs.
    AuditRead,
    /// See alerts and their live feed.
    AlertsRead,
    /// Acknowledge and resolve alerts.
    AlertsManage,
    /// Check numbers against Do-Not-Call lists before calling.
    DncCheck,
    /// See the national registry's status (size, age).
    DncStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_manage_users() {
        for role in Role::ALL {
            assert_eq!(role.allows(Permission::UsersManage), role == Role::Admin);
            assert_eq!(role.allows(Permission::UsersRead), role == Role::Admin);
            assert!(role.allows(Permission::OwnAccount));
            assert_eq!(role.allows(Permission::AuditRead), role == Role::Compliance);
            let watches = matches!(role, Role::Supervisor | Role::Compliance);
            assert_eq!(role.allows(Permission::AlertsRead), watches);
            assert_eq!(role.allows(Permission::AlertsManage), watches);
        }
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
