//! Roles and permissions (SPEC C2). One table says which role holds which permission; the HTTP
//! layer asks [`Role::allows`] and nothing else, and anything not in the table is denied.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The roles. The four staff roles, and `customer` for portal accounts: a customer is a separate
/// principal whose permissions share nothing with staff except managing their own sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Agent,
    Supervisor,
    Compliance,
    Admin,
    /// A customer signed in to the self-service portal.
    Customer,
    /// The telephony edge's service account: an API token issued by the CLI, never a person.
    /// It may only drive keypad card captures; it signs in nowhere and reads nothing.
    Telephony,
}

impl Role {
    /// Every role, the customer's and the telephony service account's included.
    pub const ALL: [Role; 6] = [
        Role::Agent,
        Role::Supervisor,
        Role::Compliance,
        Role::Admin,
        Role::Customer,
        Role::Telephony,
    ];
    /// The roles a staff account may have.
    pub const STAFF: [Role; 4] = [Role::Agent, Role::Supervisor, Role::Compliance, Role::Admin];

    /// Whether this is a staff role (not a portal customer).
    #[must_use]
    pub fn is_staff(self) -> bool {
        matches!(
            self,
            Role::Agent | Role::Supervisor | Role::Compliance | Role::Admin
        )
    }

    /// Whether granting this role needs a re-authentication and raises an alert: roles that
    /// watch others (supervisor, compliance) or administer accounts (admin).
    #[must_use]
    pub fn is_privileged(self) -> bool {
        matches!(self, Role::Supervisor | Role::Compliance | Role::Admin)
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
            Role::Customer => "customer",
            Role::Telephony => "telephony",
        }
    }

    /// Whether this role holds `permission`. Deny by default: a permission not listed for a
    /// role in this match is refused.
    #[must_use]
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            // Every signed-in person manages their own account and sessions; the telephony
            // service account is no person and has none.
            OwnAccount => self != Role::Telephony,
            UsersRead | UsersManage => self == Role::Admin,
            AuditRead => self == Role::Compliance,
            AlertsRead | AlertsManage => matches!(self, Role::Supervisor | Role::Compliance),
            // Whoever places or plans outbound calls checks numbers; compliance watches the registry.
            DncCheck => matches!(self, Role::Agent | Role::Supervisor | Role::Compliance),
            DncStatus => matches!(self, Role::Supervisor | Role::Compliance),
            // An opt-out heard on a call is recorded at once by whoever hears it.
            DncListManage => matches!(self, Role::Agent | Role::Supervisor | Role::Compliance),
            DncListRead | ConsentRead => matches!(self, Role::Supervisor | Role::Compliance),
            ConsentManage => matches!(self, Role::Agent | Role::Compliance),
            // Agents register and serve customers; supervisors and compliance see them masked;
            // admins never see customers at all (separation of duties).
            CustomersCreate | CustomersReveal | InteractionsHandle | CustomersOperate => {
                self == Role::Agent
            }
            CustomersRead => matches!(self, Role::Agent | Role::Supervisor | Role::Compliance),
            // GDPR requests are compliance's; erasure needs two of them (checked by the service).
            CustomersGdpr => self == Role::Compliance,
            // A second officer vouches for a new one before it may approve erasures.
            OfficersConfirm => self == Role::Compliance,
            // Compliance evidence: the live report, manual control records, the breach register.
            ComplianceEvidence => self == Role::Compliance,
            // The portal: a customer's own data, codes, consents and requests.
            Portal => self == Role::Customer,
            // Only the agent on the call asks for money; admins, compliance and supervisors
            // never start a payment (separation of duties).
            PaymentsStart => self == Role::Agent,
            PaymentsRead => matches!(self, Role::Agent | Role::Supervisor),
            // Money goes back only on a supervisor's decision.
            PaymentsRefund => self == Role::Supervisor,
            // Keypad card capture is the telephony edge's alone: no person types or sees it.
            PaymentsCapture => self == Role::Telephony,
            // Listening to calls is for those who review them; admins never hear customers
            // (separation of duties) and agents do not replay calls, theirs or others'.
            RecordingsPlay => matches!(self, Role::Supervisor | Role::Compliance),
            // Agents take queued calls; supervisors watch queues and agents. Admins configure
            // queues in the configuration, and see no calls (separation of duties).
            AgentState => self == Role::Agent,
            QueuesRead => self == Role::Supervisor,
            // Listening in, whispering to the agent or barging into a live call is the queue's
            // supervisors' alone (which queues is checked by the monitoring service).
            CallsMonitor => self == Role::Supervisor,
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
#[error(
    "unknown role {0:?}: expected one of agent, supervisor, compliance, admin, customer, telephony"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "supervisor" => Ok(Role::Supervisor),
            "compliance" => Ok(Role::Compliance),
            "admin" => Ok(Role::Admin),
            "customer" => Ok(Role::Customer),
            "telephony" => Ok(Role::Telephony),
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
    /// Add numbers to the company's own Do-Not-Call list (an opt-out heard on a call).
    DncListManage,
    /// See the company's own Do-Not-Call list.
    DncListRead,
    /// Record and revoke consent to be called (TCPA express written consent).
    ConsentManage,
    /// See consent records.
    ConsentRead,
    /// Register a new customer.
    CustomersCreate,
    /// Find customers and see their records, masked.
    CustomersRead,
    /// Reveal one field during a verified interaction, for a reason.
    CustomersReveal,
    /// Start, verify and end interactions (calls, chats, e-mails).
    InteractionsHandle,
    /// Change things on a customer's behalf (the verification level decides what).
    CustomersOperate,
    /// GDPR export and erasure requests and approvals.
    CustomersGdpr,
    /// Confirm a new compliance officer (the second pair of eyes on a privileged grant).
    OfficersConfirm,
    /// The customer portal: one's own data, verification codes, consents, requests.
    Portal,
    /// Compliance evidence: read the live control report and its trend, record manual controls
    /// (access reviews, restore tests) and breaches.
    ComplianceEvidence,
    /// Start and cancel a payment request in one's own verified interaction.
    PaymentsStart,
    /// See payment requests (an agent their own, a supervisor everyone's), never a card.
    PaymentsRead,
    /// Refund an authorised payment, fully or in part.
    PaymentsRefund,
    /// Drive a keypad card capture (the telephony edge's key events): no one else.
    PaymentsCapture,
    /// List call recordings and play one back, for a listed reason (each playback audited).
    RecordingsPlay,
    /// Take queued calls: set one's own state (ready, not ready), see calls offered to one.
    AgentState,
    /// Watch the queues and the agents' states (the wallboard).
    QueuesRead,
    /// Listen to, whisper into or barge into a live call of one's queues from the wallboard.
    CallsMonitor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_manage_users() {
        for role in Role::ALL {
            assert_eq!(role.allows(Permission::UsersManage), role == Role::Admin);
            assert_eq!(role.allows(Permission::UsersRead), role == Role::Admin);
            assert_eq!(role.allows(Permission::OwnAccount), role != Role::Telephony);
            assert_eq!(role.allows(Permission::AuditRead), role == Role::Compliance);
            let watches = matches!(role, Role::Supervisor | Role::Compliance);
            assert_eq!(role.allows(Permission::AlertsRead), watches);
            assert_eq!(role.allows(Permission::AlertsManage), watches);
        }
    }

    #[test]
    fn only_supervisors_listen_whisper_or_barge_into_calls() {
        for role in Role::ALL {
            assert_eq!(
                role.allows(Permission::CallsMonitor),
                role == Role::Supervisor,
                "{role}"
            );
        }
    }

    #[test]
    fn only_supervisors_and_compliance_play_recordings() {
        for role in Role::ALL {
            assert_eq!(
                role.allows(Permission::RecordingsPlay),
                matches!(role, Role::Supervisor | Role::Compliance),
                "{role}"
            );
        }
    }

    #[test]
    fn only_agents_start_payments_and_only_supervisors_refund_them() {
        for role in Role::ALL {
            assert_eq!(role.allows(Permission::PaymentsStart), role == Role::Agent);
            assert_eq!(
                role.allows(Permission::PaymentsRefund),
                role == Role::Supervisor
            );
            assert_eq!(
                role.allows(Permission::PaymentsRead),
                matches!(role, Role::Agent | Role::Supervisor)
            );
        }
    }

    #[test]
    fn the_telephony_account_holds_only_keypad_capture() {
        for role in Role::ALL {
            assert_eq!(
                role.allows(Permission::PaymentsCapture),
                role == Role::Telephony
            );
        }
        assert!(!Role::Telephony.is_staff());
        for p in [
            Permission::OwnAccount,
            Permission::CustomersRead,
            Permission::PaymentsRead,
            Permission::PaymentsStart,
            Permission::Portal,
        ] {
            assert!(!Role::Telephony.allows(p), "{p:?}");
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
