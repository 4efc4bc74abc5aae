//! Data-subject rights (GDPR art. 15, 17, 20) as one service: a customer's own data, export and
//! access log; requests for export or erasure; compliance handling them. Erasure needs two
//! different compliance officers (four eyes), and destroys the customer's key share before
//! anything else, so no copy of the database can be opened afterwards.

use crate::error::Error;
use crate::features::staff::service::Accounts;
use crate::features::vault::service::{Note, Vault};
use crate::principal::{customer_actor, customer_of, customer_ref, Actor, Principal};
use callguard_core::audit::record::user as user_ref;
use callguard_core::vault::model::{Address, NationalId};
use callguard_core::{now, rfc3339, Secret};
use callguard_store::{AuditFilter, VaultWrite};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Pending GDPR requests of a customer (stored as the customer row's `requests`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Requests {
    /// When the customer (or compliance for them) asked for an export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_requested_at: Option<String>,
    /// When the customer asked for erasure in the portal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_asked_by_customer_at: Option<String>,
    /// The first compliance officer who requested erasure (`user:<id>`); a different one must
    /// approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_requested_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erasure_requested_at: Option<String>,
}

impl Requests {
    fn parse(s: Option<&str>) -> Self {
        s.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.export_requested_at.is_none()
            && self.erasure_asked_by_customer_at.is_none()
            && self.erasure_requested_by.is_none()
    }

    fn stored(&self) -> Option<String> {
        if self.is_empty() {
            None
        } else {
            serde_json::to_string(self).ok()
        }
    }
}

/// A customer's own data, in the clear, for them only.
#[derive(Serialize, JsonSchema)]
pub struct MyData {
    pub customer_id: String,
    pub full_name: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub national_id: Option<NationalId>,
    pub date_of_birth: Option<String>,
    pub address: Option<Address>,
    pub services: Vec<String>,
    /// The knowledge questions on file (answers are stored only as hashes).
    pub security_questions: Vec<String>,
    /// Notes agents wrote (in the export; counted here).
    pub notes: usize,
    pub requests: Requests,
}

/// Everything stored about a customer (GDPR art. 15), for them only.
#[derive(Serialize, JsonSchema)]
pub struct MyExport {
    pub exported_at: String,
    pub data: MyData,
    pub notes: Vec<Note>,
    /// Who looked at or changed the data (from the audit log).
    pub access: Vec<AccessEntry>,
}

/// One look at or change of a customer's data, as the customer sees it.
#[derive(Serialize, JsonSchema)]
pub struct AccessEntry {
    pub time: String,
    /// `reveal`, `read`, `operation`, `export`, `verification`.
    pub what: String,
    /// The agent's id (`user:<id>`), or `customer:<id>` for yourself.
    pub by: String,
    /// The field revealed, or the operation's kind.
    pub detail: Option<String>,
    /// The reason given for a reveal.
    pub reason: Option<String>,
    pub interaction: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    Export,
    Erasure,
}

#[derive(Serialize, JsonSchema)]
pub struct PendingRequest {
    pub customer_id: String,
    pub requests: Requests,
}

#[derive(Serialize, JsonSchema)]
pub struct PendingRequests {
    pub requests: Vec<PendingRequest>,
}

/// What an export holds, as compliance sees it: names and counts, never values.
#[derive(Serialize, JsonSchema)]
pub struct ExportReceipt {
    pub customer_id: String,
    /// The fields the export contains.
    pub fields: Vec<String>,
    pub notes: usize,
    /// Where the customer gets it: their portal (`GET /api/v1/portal/export`).
    pub delivered_to: String,
}

#[derive(Serialize, JsonSchema)]
pub struct ErasureStatus {
    pub customer_id: String,
    /// `awaiting_second_approval` or `erased`.
    pub status: String,
    pub requested_by: Option<String>,
    pub approved_by: Option<String>,
}

/// The data-subject rights service.
pub struct Gdpr {
    vault: Arc<Vault>,
    accounts: Arc<Accounts>,
}

impl Gdpr {
    #[must_use]
    pub fn new(vault: Arc<Vault>, accounts: Arc<Accounts>) -> Self {
        Self { vault, accounts }
    }

    async fn my_data(&self, customer_id: &str) -> Result<(MyData, Vec<Note>), Error> {
        let o = self.vault.open(customer_id).await?;
        let questions = o.questions();
        let r = o.record;
        Ok((
            MyData {
                customer_id: customer_id.to_owned(),
                full_name: r.full_name,
                phones: r.phones,
                emails: r.emails,
                national_id: r.national_id,
                date_of_birth: r.date_of_birth,
                address: r.address,
                services: r.services,
                security_questions: questions,
                notes: r.notes.len(),
                requests: Requests::parse(o.row.requests.as_deref()),
            },
            r.notes,
        ))
    }

    /// A signed-in customer's own data (the API and the portal page), the read recorded.
    /// Who looked at or changed a signed-in customer's data.
    pub async fn my_access_log(&self, p: &Principal) -> Result<Vec<AccessEntry>, Error> {
        let id = &customer_of(p)?;
        self.access_log(id).await
    }

    pub async fn read_mine(&self, p: &Principal) -> Result<MyData, Error> {
        let id = &customer_of(p)?;
        let (data, _) = self.my_data(id).await?;
        self.vault
            .store()
            .append(vec![customer_actor(p, id)
                .record("portal.read")
                .target(customer_ref(id))])
            .await?;
        Ok(data)
    }

    /// Everything stored about a signed-in customer, the export recorded.
    pub async fn export_mine(&self, p: &Principal) -> Result<MyExport, Error> {
        let id = &customer_of(p)?;
        let (data, notes) = self.my_data(id).await?;
        let access = self.access_log(id).await?;
        self.vault
            .store()
            .append(vec![customer_actor(p, id)
                .record("customer.export")
                .target(customer_ref(id))
                .detail("by", "customer")])
            .await?;
        Ok(MyExport {
            exported_at: rfc3339(now()),
            data,
            notes,
            access,
        })
    }

    pub async fn access_log(&self, customer_id: &str) -> Result<Vec<AccessEntry>, Error> {
        // Every access acknowledged so far is shown: what waits for its index gets it first.
        self.vault.store().integrate().await?;
        let rows = self
            .vault
            .store()
            .search_audit(&AuditFilter {
                target: Some(customer_ref(customer_id)),
                limit: 500,
                ..AuditFilter::default()
            })
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let Ok(e) = serde_json::from_str::<serde_json::Value>(&r.text) else {
                continue;
            };
            if e["outcome"] != "success" {
                continue;
            }
            let what = match e["action"].as_str().unwrap_or_default() {
                "customer.reveal" => "reveal",
                "customer.read" | "customer.search" => "read",
                "customer.operation" => "operation",
                "customer.export" => "export",
                "interaction.verify" => "verification",
                _ => continue,
            };
            let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
            out.push(AccessEntry {
                time: s(&e["time"]).unwrap_or_default(),
                what: what.into(),
                by: s(&e["actor"]).unwrap_or_default(),
                detail: s(&e["details"]["field"]).or_else(|| s(&e["details"]["kind"])),
                reason: s(&e["details"]["reason"]),
                interaction: s(&e["interaction"]),
            });
        }
        Ok(out)
    }

    /// Updates a customer's pending requests (one guarded write with its audit entry).
    async fn update_requests(
        &self,
        customer_id: &str,
        change: impl Fn(&mut Requests),
        audit: callguard_core::audit::AuditRecord,
    ) -> Result<Requests, Error> {
        for _ in 0..3 {
            let row = self
                .vault
                .store()
                .customer(customer_id)
                .await?
                .filter(|r| r.status == "active")
                .ok_or(Error::NotFound)?;
            let mut req = Requests::parse(row.requests.as_deref());
            change(&mut req);
            let mut next = row.clone();
            next.requests = req.stored();
            next.version += 1;
            next.updated_at = now();
            if self
                .vault
                .store()
                .vault_commit(VaultWrite {
                    customers: vec![(next, Some(row.version))],
                    audit: vec![audit.clone()],
                    ..VaultWrite::default()
                })
                .await?
            {
                return Ok(req);
            }
        }
        Err(Error::State("the customer changed meanwhile; try again"))
    }

    /// A signed-in customer asks for export or erasure.
    pub async fn request_mine(&self, p: &Principal, kind: RequestKind) -> Result<Requests, Error> {
        let id = &customer_of(p)?;
        let at = rfc3339(now());
        let (action, kind_name) = match kind {
            RequestKind::Export => ("gdpr.export_request", "export"),
            RequestKind::Erasure => ("gdpr.erasure_request", "erasure"),
        };
        let audit = customer_actor(p, id)
            .record(action)
            .target(customer_ref(id))
            .detail("by", "customer")
            .detail("kind", kind_name);
        self.update_requests(
            id,
            |q| match kind {
                RequestKind::Export => q.export_requested_at = Some(at.clone()),
                RequestKind::Erasure => q.erasure_asked_by_customer_at = Some(at.clone()),
            },
            audit,
        )
        .await
    }

    pub async fn pending_requests(&self) -> Result<PendingRequests, Error> {
        let rows = self.vault.store().customers_with_requests(200).await?;
        Ok(PendingRequests {
            requests: rows
                .into_iter()
                .map(|r| PendingRequest {
                    requests: Requests::parse(r.requests.as_deref()),
                    customer_id: r.id,
                })
                .collect(),
        })
    }

    /// Compliance handles an export request (GDPR art. 15): recorded, and fulfilled through the
    /// customer's own portal, so that compliance never sees the values.
    pub async fn compliance_export(&self, p: &Principal, id: &str) -> Result<ExportReceipt, Error> {
        let o = self.vault.open(id).await?;
        let fields: Vec<String> = callguard_core::vault::model::Field::ALL
            .iter()
            .filter(|f| {
                let v = o.record.field(**f);
                !(v.is_null() || v.as_array().is_some_and(Vec::is_empty) || v == "")
            })
            .map(|f| f.as_str().to_owned())
            .collect();
        let audit = p
            .actor()
            .record("gdpr.export")
            .target(customer_ref(id))
            .detail("fields", fields.clone());
        self.update_requests(id, |q| q.export_requested_at = None, audit)
            .await?;
        Ok(ExportReceipt {
            customer_id: id.to_owned(),
            fields,
            notes: o.record.notes.len(),
            delivered_to: "the customer's portal".into(),
        })
    }

    /// The first of two compliance officers requests erasure.
    pub async fn request_erasure(&self, p: &Principal, id: &str) -> Result<ErasureStatus, Error> {
        let me = user_ref(&p.user.id);
        let at = rfc3339(now());
        let audit = p
            .actor()
            .record("gdpr.erasure_request")
            .target(customer_ref(id))
            .detail("by", "compliance");
        let req = self
            .update_requests(
                id,
                |q| {
                    if q.erasure_requested_by.is_none() {
                        q.erasure_requested_by = Some(me.clone());
                        q.erasure_requested_at = Some(at.clone());
                    }
                },
                audit,
            )
            .await?;
        Ok(ErasureStatus {
            customer_id: id.to_owned(),
            status: "awaiting_second_approval".into(),
            requested_by: req.erasure_requested_by,
            approved_by: None,
        })
    }

    /// The second, different compliance officer approves: the customer's key share is destroyed
    /// first (after that nothing can open the data, in any copy of the database), then the row
    /// becomes a tombstone with its indexes and codes gone, and the portal account is closed.
    pub async fn approve_erasure(&self, p: &Principal, id: &str) -> Result<ErasureStatus, Error> {
        let row = self
            .vault
            .store()
            .customer(id)
            .await?
            .filter(|r| r.status == "active")
            .ok_or(Error::NotFound)?;
        let req = Requests::parse(row.requests.as_deref());
        let me = user_ref(&p.user.id);
        let Some(first) = req.erasure_requested_by.clone() else {
            return Err(Error::State(
                "no erasure was requested: a compliance officer requests it first, another approves",
            ));
        };
        if first == me {
            self.vault
                .store()
                .append(vec![p
                    .actor()
                    .record("gdpr.erasure_approve")
                    .target(customer_ref(id))
                    .failure()
                    .detail("refused", "same_officer")])
                .await?;
            return Err(Error::FourEyes(
                "the officer who requested the erasure cannot approve it: a second compliance officer must",
            ));
        }
        // The second pair of eyes must belong to a person someone vouched for: an admin who
        // creates an officer and sets it up must not be able to approve through it.
        if let Err(e) = self.accounts.require_erasure_standing(p).await {
            self.vault
                .store()
                .append(vec![p
                    .actor()
                    .record("gdpr.erasure_approve")
                    .target(customer_ref(id))
                    .failure()
                    .detail("refused", "unconfirmed_officer")])
                .await?;
            return Err(e);
        }
        // Point of no return: without the share the data key cannot be rebuilt.
        self.vault.store().destroy_share(id).await?;
        let mut tomb = row.clone();
        tomb.status = "erased".into();
        tomb.wrapped_key = None;
        tomb.fields = "{}".into();
        tomb.requests = None;
        tomb.version += 1;
        tomb.updated_at = now();
        let audit = p
            .actor()
            .record("customer.erase")
            .target(customer_ref(id))
            .detail("requested_by", first.clone())
            .detail("approved_by", me.clone())
            .detail(
                "asked_by_customer",
                req.erasure_asked_by_customer_at.is_some(),
            );
        let ok = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                customers: vec![(tomb, Some(row.version))],
                index: vec![(id.to_owned(), Vec::new())],
                delete_codes_of: Some(id.to_owned()),
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await?;
        if !ok {
            // The share is gone already, so the data is; the tombstone is written on a retry.
            return Err(Error::State(
                "the customer changed meanwhile; approve again to finish the tombstone",
            ));
        }
        self.accounts.close_portal_account(&p.actor(), id).await?;
        Ok(ErasureStatus {
            customer_id: id.to_owned(),
            status: "erased".into(),
            requested_by: Some(first),
            approved_by: Some(me),
        })
    }
}

/// `callguard customer invite`: checks the customer exists, then issues a portal setup token.
pub async fn invite(
    store: &Arc<dyn callguard_store::Store>,
    accounts: &Accounts,
    customer_id: &str,
) -> Result<Secret<String>, Error> {
    let exists = store
        .customer(customer_id)
        .await?
        .is_some_and(|r| r.status == "active");
    if !exists {
        return Err(Error::NotFound);
    }
    accounts.invite_customer(&Actor::cli(), customer_id).await
}
