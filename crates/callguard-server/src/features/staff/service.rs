//! Account administration as a service: staff accounts (create, role, enable/disable, unlock,
//! reset) and portal accounts (invite, close after erasure). Sensitive changes need a recent
//! re-authentication of the admin; an admin never acts on their own account or on a portal
//! account's credentials.
//!
//! Separation of duties: granting a privileged role (supervisor, compliance, admin) needs a
//! recent re-authentication and raises an alert (a rule over `user.create`/`user.role_change`),
//! as does a privileged account's first sign-in. A compliance account an admin creates (or
//! re-roles, or resets) may not approve an erasure until an existing officer confirms the person
//! behind it — or until a configurable wait has passed and every alert about the account was
//! handled by someone independent of it — so an admin cannot make themselves the second pair of
//! eyes.

use crate::error::Error;
use crate::principal::{Actor, Principal};
use callguard_core::audit::record::user as user_ref;
use callguard_core::identity::{self as policy, Provenance, User, UserStatus};
use callguard_core::token::{self, TokenKind};
use callguard_core::{now, Role, Secret};
use callguard_store::{NewPendingUser, Store};
use std::sync::Arc;

use crate::features::signin::service::{internal, Identity};

/// Separation-of-duties settings.
#[derive(Debug, Clone)]
pub struct StaffSettings {
    /// How long a compliance account nobody confirmed waits before it may approve an erasure
    /// (and then only once every alert about it was handled by someone independent of it).
    pub confirmation_wait_seconds: i64,
}

impl Default for StaffSettings {
    fn default() -> Self {
        Self {
            confirmation_wait_seconds: policy::CONFIRMATION_WAIT_SECONDS,
        }
    }
}

/// The alert rules that tell people about a privileged grant (see `callguard_core::alerts`).
const GRANT_ALERTS: [&str; 3] = [
    "privileged_account_created",
    "role_change",
    "privileged_first_sign_in",
];

/// Why a compliance account may not approve an erasure yet.
const UNCONFIRMED: &str = "this compliance account has not been confirmed: another compliance officer confirms the person behind it (POST /api/v1/users/{id}/confirm; the id is in the alert about the account) before it may approve an erasure";

/// A staff account with where its rights come from.
pub struct StaffAccount {
    pub user: User,
    pub provenance: Provenance,
}

/// The account administration service.
pub struct Accounts {
    store: Arc<dyn Store>,
    identity: Arc<Identity>,
    settings: StaffSettings,
}

impl Accounts {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, identity: Arc<Identity>) -> Self {
        Self {
            store,
            identity,
            settings: StaffSettings::default(),
        }
    }

    #[must_use]
    pub fn with_settings(mut self, settings: StaffSettings) -> Self {
        self.settings = settings;
        self
    }

    /// An admin creates an account; creating a privileged one (supervisor, compliance, admin)
    /// needs a recent re-authentication, and raises an alert.
    pub async fn admin_create_user(
        &self,
        admin: &Principal,
        username: &str,
        role: Role,
    ) -> Result<(User, Secret<String>), Error> {
        if role.is_privileged() {
            self.identity.require_recent_authentication(admin)?;
        }
        self.identity
            .create_user(username, role, &admin.actor())
            .await
    }

    /// A staff account an admin acts on. Portal accounts are not the admin's to unlock, reset
    /// or re-role: resetting one would hand an admin a way into a customer's data.
    async fn target(&self, id: &str) -> Result<User, Error> {
        self.store
            .user_by_id(id)
            .await?
            .filter(|u| u.role.is_staff())
            .ok_or(Error::NotFound)
    }

    /// Lifts a lockout; `actor` is the admin (or the CLI operator).
    pub async fn unlock(&self, actor: &Actor, user_id: &str) -> Result<User, Error> {
        self.target(user_id).await?;
        let audit = actor.record("user.unlock").target(user_ref(user_id));
        self.store.unlock(user_id, audit).await?;
        tracing::info!(user_id, by = %actor.id, "account unlocked");
        self.target(user_id).await
    }

    pub async fn admin_unlock(&self, admin: &Principal, user_id: &str) -> Result<User, Error> {
        self.identity.require_recent_authentication(admin)?;
        self.unlock(&admin.actor(), user_id).await
    }

    pub async fn admin_set_role(
        &self,
        admin: &Principal,
        user_id: &str,
        role: Role,
    ) -> Result<User, Error> {
        self.identity.require_recent_authentication(admin)?;
        if admin.user.id == user_id {
            return Err(Error::Validation(
                "an admin cannot change their own role".into(),
            ));
        }
        if !role.is_staff() {
            return Err(Error::Validation(format!(
                "`{role}` is not a staff role: a staff account cannot become a customer or the telephony service account"
            )));
        }
        let before = self.target(user_id).await?;
        let audit = admin
            .actor()
            .record("user.role_change")
            .target(user_ref(user_id))
            .detail("from", before.role.as_str())
            .detail("to", role.as_str());
        // A role change ends the person's sessions so the new rights apply at once.
        self.store.set_role(user_id, role, audit).await?;
        tracing::info!(user_id, role = %role, by = %admin.user.id, "role changed");
        self.target(user_id).await
    }

    pub async fn admin_set_enabled(
        &self,
        admin: &Principal,
        user_id: &str,
        enabled: bool,
    ) -> Result<User, Error> {
        self.identity.require_recent_authentication(admin)?;
        if admin.user.id == user_id {
            return Err(Error::Validation(
                "an admin cannot disable or enable their own account".into(),
            ));
        }
        let user = self.target(user_id).await?;
        if user.status == UserStatus::Pending {
            return Err(Error::Validation(
                "the account has not been set up yet".into(),
            ));
        }
        let (status, action) = if enabled {
            (UserStatus::Active, "user.enable")
        } else {
            (UserStatus::Disabled, "user.disable")
        };
        let audit = admin.actor().record(action).target(user_ref(user_id));
        self.store.set_status(user_id, status, now(), audit).await?;
        self.target(user_id).await
    }

    /// Issues a fresh setup token, wiping the account's credentials (lost authenticator).
    pub async fn reset_setup(&self, actor: &Actor, user_id: &str) -> Result<Secret<String>, Error> {
        self.target(user_id).await?;
        let setup = token::generate(TokenKind::Setup);
        let audit = actor.record("user.reset").target(user_ref(user_id));
        self.store
            .reset_setup(
                user_id,
                &token::hash(setup.expose()),
                now() + policy::SETUP_TOKEN_SECONDS,
                audit,
            )
            .await?;
        Ok(setup)
    }

    /// A one-time portal setup token for customer `customer_id` (who must exist; checked by the
    /// caller): a new pending portal account, or, for one that exists, its credentials wiped and
    /// a new token (a customer who lost their authenticator). The portal sign-in name is the
    /// customer id.
    pub async fn invite_customer(
        &self,
        actor: &Actor,
        customer_id: &str,
    ) -> Result<Secret<String>, Error> {
        let setup = token::generate(TokenKind::Setup);
        let now = now();
        if let Some(existing) = self.store.user_by_username(customer_id).await? {
            if existing.role != Role::Customer {
                return Err(internal("a staff account has a customer's id as its name"));
            }
            let audit = actor
                .record("portal.invite")
                .target(crate::principal::customer_ref(customer_id))
                .detail("account", user_ref(&existing.id))
                .detail("reset", true);
            self.store
                .reset_setup(
                    &existing.id,
                    &token::hash(setup.expose()),
                    now + policy::SETUP_TOKEN_SECONDS,
                    audit,
                )
                .await?;
            return Ok(setup);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let audit = actor
            .record("portal.invite")
            .target(crate::principal::customer_ref(customer_id))
            .detail("account", user_ref(&id))
            .detail("reset", false);
        self.store
            .create_pending_user(
                NewPendingUser {
                    id,
                    username: customer_id.to_owned(),
                    role: Role::Customer,
                    setup_token_hash: token::hash(setup.expose()),
                    setup_expires_at: now + policy::SETUP_TOKEN_SECONDS,
                    created_at: now,
                    created_by: actor.id.clone(),
                    confirmed_by: None,
                },
                audit,
            )
            .await?;
        Ok(setup)
    }

    /// Disables a customer's portal account and ends its sessions (after erasure).
    pub async fn close_portal_account(
        &self,
        actor: &Actor,
        customer_id: &str,
    ) -> Result<(), Error> {
        if let Some(u) = self
            .store
            .user_by_username(customer_id)
            .await?
            .filter(|u| u.role == Role::Customer)
        {
            let audit = actor
                .record("portal.close")
                .target(crate::principal::customer_ref(customer_id))
                .detail("account", user_ref(&u.id));
            self.store
                .set_status(&u.id, UserStatus::Disabled, now(), audit)
                .await?;
        }
        Ok(())
    }

    pub async fn admin_reset_setup(
        &self,
        admin: &Principal,
        user_id: &str,
    ) -> Result<Secret<String>, Error> {
        self.identity.require_recent_authentication(admin)?;
        if admin.user.id == user_id {
            return Err(Error::Validation(
                "an admin cannot reset their own account".into(),
            ));
        }
        self.reset_setup(&admin.actor(), user_id).await
    }

    pub async fn list_users(&self) -> Result<Vec<User>, Error> {
        let mut users = self.store.list_users().await?;
        users.retain(|u| u.role.is_staff());
        Ok(users)
    }

    /// Staff accounts with who created and who confirmed each.
    pub async fn list_accounts(&self) -> Result<Vec<StaffAccount>, Error> {
        let users = self.list_users().await?;
        let mut provenances: std::collections::HashMap<String, Provenance> = self
            .store
            .provenances()
            .await?
            .into_iter()
            .map(|p| (p.user_id.clone(), p))
            .collect();
        Ok(users
            .into_iter()
            .map(|user| StaffAccount {
                provenance: provenances.remove(&user.id).unwrap_or_default(),
                user,
            })
            .collect())
    }

    async fn provenance(&self, user_id: &str) -> Result<Provenance, Error> {
        Ok(self.store.provenance(user_id).await?.unwrap_or_default())
    }

    /// Records that `by` confirmed the person behind compliance account `user_id`.
    async fn confirm(&self, by: &Actor, user: &User) -> Result<StaffAccount, Error> {
        let provenance = self.provenance(&user.id).await?;
        let audit = by
            .record("user.confirm")
            .target(user_ref(&user.id))
            .detail("role", user.role.as_str())
            .detail(
                "created_by",
                provenance
                    .created_by
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            );
        if !self
            .store
            .confirm_officer(&user.id, &by.id, now(), audit)
            .await?
        {
            return Err(Error::State(
                "the account is confirmed already, or is not an active compliance account",
            ));
        }
        tracing::info!(user_id = %user.id, by = %by.id, "compliance officer confirmed");
        Ok(StaffAccount {
            user: self.target(&user.id).await?,
            provenance: self.provenance(&user.id).await?,
        })
    }

    /// The operator confirms a compliance account at the CLI (after a reset, say).
    pub async fn operator_confirm(&self, actor: &Actor, user_id: &str) -> Result<(), Error> {
        let user = self.confirmable(user_id).await?;
        self.confirm(actor, &user).await.map(|_| ())
    }

    /// A compliance account that can be confirmed: set up, and nobody confirmed it yet.
    async fn confirmable(&self, user_id: &str) -> Result<User, Error> {
        let user = self.target(user_id).await?;
        if user.role != Role::Compliance {
            return Err(Error::Validation(
                "only compliance accounts are confirmed: other roles need no second officer".into(),
            ));
        }
        if user.status != UserStatus::Active {
            return Err(Error::Validation(
                "the account is not active: confirm the person once they have set it up and it is enabled".into(),
            ));
        }
        if self.provenance(user_id).await?.confirmed_at.is_some() {
            return Err(Error::State("the account is confirmed already"));
        }
        Ok(user)
    }

    /// An existing compliance officer confirms a new one (four eyes on a privileged grant):
    /// needs a recent re-authentication, never one's own account, and an officer who may
    /// approve erasures themselves.
    pub async fn officer_confirm(
        &self,
        officer: &Principal,
        user_id: &str,
    ) -> Result<StaffAccount, Error> {
        self.identity.require_recent_authentication(officer)?;
        let user = self.confirmable(user_id).await?;
        if officer.user.id == user.id {
            return Err(Error::FourEyes(
                "an officer cannot confirm their own account: another compliance officer must",
            ));
        }
        self.require_erasure_standing(officer).await?;
        self.confirm(&officer.actor(), &user).await
    }

    /// Whether `officer` may be the second pair of eyes on an erasure: a compliance account an
    /// existing officer (or the operator) confirmed; or, with nobody to confirm it, one that has
    /// held its rights for the configured wait with every alert about it handled by someone
    /// independent of it (not itself, not its creator, not another account of its creator).
    pub async fn require_erasure_standing(&self, officer: &Principal) -> Result<(), Error> {
        let user = &officer.user;
        let provenance = self.provenance(&user.id).await?;
        if user.role == Role::Compliance && provenance.confirmed_at.is_some() {
            return Ok(());
        }
        let waited =
            now() - provenance.rights_since(user) >= self.settings.confirmation_wait_seconds;
        if user.role == Role::Compliance
            && waited
            && self.alerts_handled_independently(user, &provenance).await?
        {
            return Ok(());
        }
        Err(Error::FourEyes(UNCONFIRMED))
    }

    async fn alerts_handled_independently(
        &self,
        user: &User,
        provenance: &Provenance,
    ) -> Result<bool, Error> {
        let alerts = self.store.alerts_about(&user_ref(&user.id), 500).await?;
        let grants: Vec<_> = alerts
            .iter()
            .filter(|a| GRANT_ALERTS.contains(&a.rule.as_str()))
            .collect();
        if grants.is_empty() {
            return Ok(false);
        }
        for alert in grants {
            if alert.status == "open" {
                return Ok(false);
            }
            for handler in [&alert.acknowledged_by, &alert.resolved_by]
                .into_iter()
                .flatten()
            {
                if !self.independent(handler, user, provenance).await? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Whether `handler` (`user:<id>`) is independent of `user`: not the account itself, not
    /// the admin who created it, and not another account that admin created.
    async fn independent(
        &self,
        handler: &str,
        user: &User,
        provenance: &Provenance,
    ) -> Result<bool, Error> {
        if handler == user_ref(&user.id) || Some(handler) == provenance.created_by.as_deref() {
            return Ok(false);
        }
        let Some(creator) = provenance
            .created_by
            .as_deref()
            .filter(|c| c.starts_with("user:"))
        else {
            return Ok(true);
        };
        let handler_id = handler.strip_prefix("user:").unwrap_or(handler);
        let theirs = self.provenance(handler_id).await?;
        Ok(theirs.created_by.as_deref() != Some(creator))
    }
}
