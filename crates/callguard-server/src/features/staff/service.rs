//! Account administration as a service: staff accounts (create, role, enable/disable, unlock,
//! reset) and portal accounts (invite, close after erasure). Sensitive changes need a recent
//! re-authentication of the admin; an admin never acts on their own account or on a portal
//! account's credentials.

use crate::error::Error;
use crate::principal::{Actor, Principal};
use callguard_core::audit::record::user as user_ref;
use callguard_core::identity::{self as policy, User, UserStatus};
use callguard_core::token::{self, TokenKind};
use callguard_core::{now, Role, Secret};
use callguard_store::{NewPendingUser, Store};
use std::sync::Arc;

use crate::features::signin::service::{internal, Identity};

/// The account administration service.
pub struct Accounts {
    store: Arc<dyn Store>,
    identity: Arc<Identity>,
}

impl Accounts {
    #[must_use]
    pub fn new(store: Arc<dyn Store>, identity: Arc<Identity>) -> Self {
        Self { store, identity }
    }

    /// An admin creates an account; creating another admin needs a recent re-authentication.
    pub async fn admin_create_user(
        &self,
        admin: &Principal,
        username: &str,
        role: Role,
    ) -> Result<(User, Secret<String>), Error> {
        if role == Role::Admin {
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
            return Err(Error::Validation(
                "`customer` is not a staff role: a staff account cannot become a customer".into(),
            ));
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
}
