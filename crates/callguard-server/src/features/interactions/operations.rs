//! Operations for the caller (change contact or address, transfer a service, a duplicate
//! invoice, a note): each gated by the level the policy asks, validated field by field, and
//! committed with its audit entry only if the interaction did not change meanwhile.

use super::idempotency::{Claim, IdempotencyKey};
use super::model::*;
use super::service::*;
use crate::error::Error;
use crate::features::vault::service::Record;
use crate::features::vault::service::{self as vault, masked_view, Opened, Problems};
use crate::principal::{customer_ref, Principal};
use callguard_core::audit::AuditRecord;
use callguard_core::vault::validate;
use callguard_core::{now, rfc3339};
use callguard_store::{CustomerRow, IdempotencyRow, IndexEntry, StoreError};
use callguard_store::{InteractionRow, VaultWrite};

/// What an operation changes, gathered before the one guarded write.
struct Change {
    record: Record,
    problems: Problems,
    fields: Vec<&'static str>,
    /// Other customers the operation changes (the receiver of a transferred service).
    others: Vec<(CustomerRow, Option<i64>)>,
    other_index: Vec<(String, Vec<IndexEntry>)>,
    audit: AuditRecord,
}

fn bad_shape(what: &str) -> Error {
    Error::BadRequest(format!(
        "`data` for {what} does not have the expected fields; see /api/v1/openapi.json"
    ))
}

fn data<T: serde::de::DeserializeOwned>(r: &OperationRequest) -> Result<T, Error> {
    serde_json::from_value(r.data.clone()).map_err(|_| bad_shape(r.kind.as_str()))
}

impl Interactions {
    /// Carries out an operation for the caller: the interaction must be the agent's own, active,
    /// with this customer, at the level the policy asks; the change and its audit entry commit
    /// together, and only if the interaction did not change meanwhile.
    pub async fn operate(
        &self,
        p: &Principal,
        customer_id: &str,
        r: OperationRequest,
    ) -> Result<OperationResponse, Error> {
        Ok(self.operate_keyed(p, customer_id, r, None).await?.0)
    }

    /// [`Self::operate`] under a client's idempotency key: a request whose key names an
    /// operation already done answers as that one did (the second value is `true`) and changes
    /// nothing; otherwise the key is recorded in the operation's own write. Two requests with
    /// one key at once act once: the second write fails on the key and answers as the first.
    pub async fn operate_keyed(
        &self,
        p: &Principal,
        customer_id: &str,
        r: OperationRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<(OperationResponse, bool), Error> {
        let claim = key.map(|k| self.claim(p, customer_id, &r, k));
        if let Some(c) = &claim {
            if let Some(done) = self.replay(c).await? {
                return Ok((done, true));
            }
        }
        match self.operate_once(p, customer_id, r, claim.as_ref()).await {
            Err(Error::State(why)) => match &claim {
                // Lost a race: if it was to the same key, answer as the winner did.
                Some(c) => match self.replay(c).await? {
                    Some(done) => Ok((done, true)),
                    None => Err(Error::State(why)),
                },
                None => Err(Error::State(why)),
            },
            other => other.map(|done| (done, false)),
        }
    }

    async fn operate_once(
        &self,
        p: &Principal,
        customer_id: &str,
        r: OperationRequest,
        claim: Option<&Claim>,
    ) -> Result<OperationResponse, Error> {
        let i = self.own(p, &r.interaction_id).await?;
        if i.status != "active" {
            return Err(Error::State("the interaction has ended"));
        }
        if i.customer_id.as_deref() != Some(customer_id) {
            return Err(Error::State("the interaction is not with this customer"));
        }
        let st = state_of(&i.state);
        let needed = self.policy.required(r.kind);
        let mut audit = p
            .actor()
            .record("customer.operation")
            .target(customer_ref(customer_id))
            .detail("kind", r.kind.as_str())
            .detail("level", st.level)
            .detail("required_level", needed);
        audit.interaction = Some(i.id.clone());
        if st.level < needed {
            self.vault
                .store()
                .append(vec![audit
                    .failure()
                    .detail("refused", "verification_level")])
                .await?;
            return Err(Error::VerificationRequired(needed));
        }
        let o = self.vault.open(customer_id).await?;
        let mut change = Change {
            record: o.record.clone(),
            problems: Problems::default(),
            fields: Vec::new(),
            others: Vec::new(),
            other_index: Vec::new(),
            audit,
        };
        match r.kind {
            OperationKind::ChangeContact => change_contact(&mut change, data(&r)?),
            OperationKind::ChangeAddress => change_address(&mut change, data(&r)?),
            OperationKind::TransferService => {
                self.transfer_service(&mut change, customer_id, data(&r)?)
                    .await?;
            }
            OperationKind::DuplicateInvoice => duplicate_invoice(&mut change, data(&r)?),
            OperationKind::AddNote => add_note(&mut change, p, &i, data(&r)?),
        }
        let key = claim.map(|c| IdempotencyRow {
            level: st.level,
            ..c.0.clone()
        });
        self.commit_operation(&i, &st, &o, change, r.kind, key)
            .await?;
        let after = self.vault.open(customer_id).await?;
        Ok(OperationResponse {
            kind: r.kind,
            level: st.level,
            customer: masked_view(&after),
        })
    }

    /// Moves a service to another existing customer.
    async fn transfer_service(
        &self,
        change: &mut Change,
        customer_id: &str,
        d: TransferService,
    ) -> Result<(), Error> {
        let wanted = validate::service(&d.service).ok();
        let pos = change
            .record
            .services
            .iter()
            .position(|s| validate::service(s).ok() == wanted && wanted.is_some());
        let Some(pos) = pos else {
            change
                .problems
                .add("data.service", "the customer holds no such service");
            return Ok(());
        };
        if d.to_customer_id == customer_id {
            change.problems.add(
                "data.to_customer_id",
                "a service cannot move to the customer who holds it",
            );
            return Ok(());
        }
        let target = match self.vault.open(&d.to_customer_id).await {
            Ok(t) => t,
            Err(Error::NotFound) => {
                change
                    .problems
                    .add("data.to_customer_id", "no such customer");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let service = change.record.services.remove(pos);
        let mut trecord = target.record.clone();
        trecord.services.push(service);
        let trow = self.vault.resealed(&target, &trecord)?;
        change
            .other_index
            .push((target.row.id.clone(), trecord.index(self.vault.index_key())));
        change.others.push((trow, Some(target.row.version)));
        change.fields.push("services");
        change.audit = change
            .audit
            .clone()
            .detail("to", customer_ref(&target.row.id));
        Ok(())
    }

    /// The change, its index entries and its audit entry in one guarded write.
    async fn commit_operation(
        &self,
        i: &InteractionRow,
        st: &CallState,
        o: &Opened,
        change: Change,
        kind: OperationKind,
        idempotency: Option<IdempotencyRow>,
    ) -> Result<(), Error> {
        change.problems.into_result()?;
        // The interaction remembers what was done in it (for the customer's timeline); writing
        // it with its version also keeps the old guarantee that it did not change meanwhile.
        let mut next = i.clone();
        let mut done = st.clone();
        done.ops.push(kind.as_str().to_owned());
        next.state = serde_json::to_string(&done).map_err(|_| Error::Internal)?;
        next.version += 1;
        let steps: Vec<String> = st.steps.iter().map(|s| s.method.clone()).collect();
        let codes: Vec<String> = st.steps.iter().filter_map(|s| s.code_id.clone()).collect();
        let audit = change
            .audit
            .detail("steps", steps)
            .detail("code_ids", codes)
            .detail("fields", change.fields.clone());
        let mut customers = Vec::new();
        let mut index = Vec::new();
        if !change.fields.is_empty() {
            let row = self.vault.resealed(o, &change.record)?;
            index.push((
                o.row.id.clone(),
                change.record.index(self.vault.index_key()),
            ));
            customers.push((row, Some(o.row.version)));
        }
        customers.extend(change.others);
        index.extend(change.other_index);
        let committed = self
            .vault
            .store()
            .vault_commit(VaultWrite {
                customers,
                index,
                interaction: Some((next, Some(i.version))),
                idempotency,
                audit: vec![audit],
                ..VaultWrite::default()
            })
            .await;
        let ok = match committed {
            // The one unique entry an operation's write can meet: a national id that another
            // customer holds (a duplicate from before national ids were unique, set aside by
            // migration 0008). No operation changes a national id itself.
            Err(StoreError::Conflict) => {
                return Err(Error::DuplicateNationalId(
                    "this customer's national id is also on another customer's record; the duplicate must be resolved (ask compliance) before this record can change; nothing was changed",
                ))
            }
            other => other?,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::State(
                "the customer or the interaction changed meanwhile; reload and try again",
            ))
        }
    }
}

fn change_contact(change: &mut Change, d: ChangeContact) {
    if d.phones.is_none() && d.emails.is_none() {
        change
            .problems
            .add("data", "give `phones`, `emails` or both");
    }
    if let Some(list) = &d.phones {
        change.record.phones = vault::check_phones(list, "data.phones", &mut change.problems);
        change.fields.push("phones");
    }
    if let Some(list) = &d.emails {
        change.record.emails = vault::check_emails(list, "data.emails", &mut change.problems);
        change.fields.push("emails");
    }
}

fn change_address(change: &mut Change, d: ChangeAddress) {
    vault::check_address(&d.address, "data.address", &mut change.problems);
    change.record.address = Some(d.address);
    change.fields.push("address");
}

fn duplicate_invoice(change: &mut Change, d: DuplicateInvoice) {
    let ok = !d.invoice.is_empty()
        && d.invoice.len() <= 40
        && d.invoice
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c));
    if ok {
        change.audit = change.audit.clone().detail("invoice", d.invoice);
    } else {
        change.problems.add(
            "data.invoice",
            "an invoice number: 1 to 40 letters, digits and / - _ .",
        );
    }
}

fn add_note(change: &mut Change, p: &Principal, i: &InteractionRow, d: AddNote) {
    let len = d.text.trim().chars().count();
    if len == 0 || len > 2000 {
        change
            .problems
            .add("data.text", "must have 1 to 2000 characters");
    }
    change.record.notes.push(vault::Note {
        at: rfc3339(now()),
        by: p.actor().id,
        interaction: Some(i.id.clone()),
        text: d.text.trim().to_owned(),
    });
    change.fields.push("notes");
}
