//! The customer data vault as a service (SPEC C3): registering customers, masked views, search by
//! blind index, reveals, and the sealed record every other part (interactions, operations, the
//! portal, GDPR) reads and writes through. HTTP handlers and pages call this; neither opens a
//! sealed field on its own.
//!
//! A record is sealed field by field with the customer's data key (see
//! `callguard_core::vault::crypto`). The database holds the sealed fields, the data key's
//! wrapped half and blind indexes; the key store holds the other half.

use super::questions::{distinct_questions, question_key, questions_named, MAX_QUESTIONS};
pub use super::record::{
    masked_view, CustomerView, MaskedNationalId, NewCustomer, Note, Opened, Record, RevealReason,
    SecurityQuestionInput,
};
use super::record::{national_index_value, StoredAnswer};
use super::validate::check_text;
pub use super::validate::{check_address, check_emails, check_phones, check_services, Problems};
use crate::error::{Error, FieldProblem};
use crate::hasher::Hasher;
use crate::principal::customer_ref;
use crate::principal::{Actor, Principal};
use callguard_core::kek::{Keyring, Sealing};
use callguard_core::vault::crypto::{DataKey, IndexKey, IndexKind, KeyShare};
use callguard_core::vault::model::{Field, NationalId, NationalIdKind};
use callguard_core::vault::validate;
use callguard_core::{now, Role, Secret};
use callguard_store::{CustomerRow, Store, StoreError, VaultWrite};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Name of the sealed index key in `vault_keys`.
const INDEX_KEY_NAME: &str = "blind-index";

/// The sealed field holding security questions and their answers' Argon2id hashes. It is not a
/// [`Field`]: nobody can reveal it.
pub(crate) const SECURITY_FIELD: &str = "security_questions";

/// Most customers one search answers with.
const SEARCH_LIMIT: u64 = 20;

/// Loads the blind index key, creating it on first start (race-safe across nodes).
pub async fn load_index_key(store: &Arc<dyn Store>, kek: &Keyring) -> Result<IndexKey, String> {
    for _ in 0..2 {
        if let Some((sealed, _)) = store
            .vault_key(INDEX_KEY_NAME)
            .await
            .map_err(|e| e.to_string())?
        {
            return IndexKey::unseal(&sealed, kek).map_err(|_| {
                "the blind index key does not open with this key-encryption key: is this the data directory's own key?".to_owned()
            });
        }
        let (key, sealed) = IndexKey::generate(kek);
        if store
            .put_vault_key(INDEX_KEY_NAME, &sealed, &kek.id())
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(key);
        }
    }
    Err("the blind index key could not be stored".into())
}

/// Vault settings.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// Reveals one agent may make within `reveal_window_seconds`.
    pub reveals_per_window: usize,
    pub reveal_window_seconds: i64,
}

impl Default for VaultSettings {
    fn default() -> Self {
        Self {
            reveals_per_window: 30,
            reveal_window_seconds: 600,
        }
    }
}

/// The vault service.
pub struct Vault {
    store: Arc<dyn Store>,
    kek: Arc<Keyring>,
    index: Arc<IndexKey>,
    hasher: Hasher,
    reveals_per_window: i64,
    reveal_window: i64,
}

fn internal(what: &str) -> Error {
    tracing::error!(what, "vault failure");
    Error::Internal
}

/// The refusal of a national id another customer holds; it never says who.
#[must_use]
pub fn duplicate_national_id() -> Error {
    Error::DuplicateNationalId(
        "another customer already holds this national id, so it cannot be registered again; nothing was stored. If the caller is that customer, identify them by national id in a call instead",
    )
}

/// A new customer id: 12 random digits, easy to read out on the phone and to type as a portal
/// sign-in name (staff usernames always start with a letter, so they never collide).
fn new_customer_id() -> String {
    let mut rng = rand::rngs::OsRng;
    let n: u64 = rng.gen_range(100_000_000_000..1_000_000_000_000);
    n.to_string()
}

impl Vault {
    pub fn new(
        store: Arc<dyn Store>,
        kek: Arc<Keyring>,
        index: Arc<IndexKey>,
        hasher: Hasher,
        settings: &VaultSettings,
    ) -> Self {
        Self {
            store,
            kek,
            index,
            hasher,
            reveals_per_window: i64::try_from(settings.reveals_per_window).unwrap_or(i64::MAX),
            reveal_window: settings.reveal_window_seconds,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A caller's number sealed for one interaction (kept only while an unlinked call is open).
    pub(crate) fn seal_caller(&self, interaction: &str, e164: &str) -> String {
        callguard_core::kek::seal_text(
            &*self.kek,
            e164,
            &format!("interaction-caller:{interaction}"),
        )
    }

    /// The caller's number sealed by [`Vault::seal_caller`]; `None` when it does not open.
    pub(crate) fn open_caller(&self, interaction: &str, sealed: &str) -> Option<String> {
        callguard_core::kek::open_text(
            &*self.kek,
            sealed,
            &format!("interaction-caller:{interaction}"),
        )
    }

    pub fn index_key(&self) -> &Arc<IndexKey> {
        &self.index
    }

    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Opens a stored customer: unwraps the data key with the key store's share and opens every
    /// field. An erased customer (no share, no wrapped key) is not found.
    pub async fn open_row(&self, row: CustomerRow) -> Result<Opened, Error> {
        if row.wrapped_key.is_none() {
            return Err(Error::NotFound);
        }
        let share = self.store.share(&row.id).await?;
        self.open_with_share(row, share)
    }

    /// [`Self::open_row`] with the share already read (`None`: the key store has none).
    fn open_with_share(&self, row: CustomerRow, share: Option<Vec<u8>>) -> Result<Opened, Error> {
        let Some(wrapped) = row.wrapped_key.clone() else {
            return Err(Error::NotFound);
        };
        let share = share
            .and_then(KeyShare::from_bytes)
            // A customer whose share is gone is erased, whatever the row still says.
            .ok_or(Error::NotFound)?;
        let key = DataKey::unwrap(&row.id, &wrapped, &share, self.kek.as_ref())
            .map_err(|_| internal("a data key did not open"))?;
        let sealed: BTreeMap<String, String> =
            serde_json::from_str(&row.fields).map_err(|_| internal("sealed fields unreadable"))?;
        let mut record = Record::default();
        let mut answers = Vec::new();
        for (name, b64) in &sealed {
            let bytes = data_encoding::BASE64
                .decode(b64.as_bytes())
                .map_err(|_| internal("sealed field unreadable"))?;
            let plain = key
                .open(name, &bytes)
                .map_err(|_| internal("a sealed field did not open"))?;
            if name == SECURITY_FIELD {
                answers = serde_json::from_slice(plain.expose())
                    .map_err(|_| internal("security answers unreadable"))?;
            } else if let Some(f) = Field::parse(name) {
                let v: serde_json::Value = serde_json::from_slice(plain.expose())
                    .map_err(|_| internal("a field is unreadable"))?;
                record
                    .set(f, v)
                    .map_err(|_| internal("a field has the wrong shape"))?;
            }
        }
        Ok(Opened {
            row,
            key,
            record,
            answers,
        })
    }

    /// The customer with this id, opened.
    pub async fn open(&self, id: &str) -> Result<Opened, Error> {
        let row = self.store.customer(id).await?.ok_or(Error::NotFound)?;
        if row.status != "active" {
            return Err(Error::NotFound);
        }
        self.open_row(row).await
    }

    /// Seals every field of `record` (and the stored answers) with `key`.
    fn seal_all(key: &DataKey, record: &Record, answers: &[StoredAnswer]) -> Result<String, Error> {
        let mut out = BTreeMap::new();
        for f in Field::ALL {
            let v = record.field(f);
            let bytes = serde_json::to_vec(&v).map_err(|_| internal("serialise a field"))?;
            out.insert(
                f.as_str().to_owned(),
                data_encoding::BASE64.encode(&key.seal(f.as_str(), &bytes)),
            );
        }
        let bytes = serde_json::to_vec(answers).map_err(|_| internal("serialise answers"))?;
        out.insert(
            SECURITY_FIELD.to_owned(),
            data_encoding::BASE64.encode(&key.seal(SECURITY_FIELD, &bytes)),
        );
        serde_json::to_string(&out).map_err(|_| internal("serialise sealed fields"))
    }

    /// The row that stores `record` for an opened customer, one version on.
    pub fn resealed(&self, o: &Opened, record: &Record) -> Result<CustomerRow, Error> {
        let mut row = o.row.clone();
        row.fields = Self::seal_all(&o.key, record, &o.answers)?;
        row.version += 1;
        row.updated_at = now();
        Ok(row)
    }

    /// Registers a customer. Every invalid field is reported at once (422), and nothing is
    /// stored then.
    pub async fn create(&self, actor: &Actor, c: NewCustomer) -> Result<String, Error> {
        let mut p = Problems::default();
        check_text(&c.full_name, "full_name", 200, &mut p);
        let phones = check_phones(&c.phones, "phones", &mut p);
        let emails = check_emails(&c.emails, "emails", &mut p);
        let dob = match c.date_of_birth.as_deref() {
            Some(d) => match validate::date_of_birth(d) {
                Ok(date) => Some(date),
                Err(e) => {
                    p.add("date_of_birth", e);
                    None
                }
            },
            None => None,
        };
        let national_id = match &c.national_id {
            Some(n) => match validate::national_id(n, dob) {
                Ok(v) => Some(NationalId {
                    kind: n.kind,
                    value: v,
                }),
                Err(e) => {
                    p.add("national_id.value", e);
                    None
                }
            },
            None => None,
        };
        if let Some(a) = &c.address {
            check_address(a, "address", &mut p);
        }
        let services = check_services(&c.services, "services", &mut p);
        if c.security_questions.len() > MAX_QUESTIONS {
            p.add("security_questions", "at most 5 questions");
        }
        let mut asked = BTreeSet::new();
        for (i, q) in c.security_questions.iter().enumerate() {
            check_text(
                &q.question,
                &format!("security_questions[{i}].question"),
                200,
                &mut p,
            );
            if !asked.insert(question_key(&q.question)) {
                p.add(
                    format!("security_questions[{i}].question"),
                    "asks the same as an earlier question: give each question once",
                );
            }
            let a = validate::security_answer(q.answer.expose());
            if a.chars().count() < 2 || a.chars().count() > 200 {
                p.add(
                    format!("security_questions[{i}].answer"),
                    "must have 2 to 200 letters or digits",
                );
            }
        }
        p.into_result()?;

        let mut answers = Vec::new();
        for q in c.security_questions {
            let normalised = Secret::new(validate::security_answer(q.answer.expose()));
            answers.push(StoredAnswer {
                question: q.question.trim().to_owned(),
                answer_hash: self.hasher.hash(normalised).await?,
            });
        }
        let record = Record {
            full_name: c.full_name.trim().to_owned(),
            phones,
            emails,
            national_id,
            date_of_birth: dob.map(|d| d.to_string()),
            address: c.address,
            services,
            notes: Vec::new(),
        };
        let index = record.index(&self.index);
        // A national id belongs to one customer. This look-up answers the common case early;
        // the blind index's unique entry decides when two registrations race.
        if self.national_id_held(&record, None).await? {
            return Err(self.refuse_duplicate_national_id(actor).await);
        }
        for _ in 0..3 {
            let id = new_customer_id();
            let (key, wrapped, share) = DataKey::generate(&id, self.kek.as_ref());
            let fields = Self::seal_all(&key, &record, &answers)?;
            let t = now();
            let row = CustomerRow {
                id: id.clone(),
                status: "active".into(),
                version: 1,
                wrapped_key: Some(wrapped),
                kek_id: self.kek.id(),
                fields,
                created_at: t,
                updated_at: t,
                verify_failures: 0,
                verify_window_start: None,
                requests: None,
            };
            // The share first: a customer row never exists without it. (A share whose row
            // failed to commit is an orphan that opens nothing.)
            match self.store.put_share(&id, share.bytes()).await {
                Err(StoreError::Conflict) => continue,
                other => other?,
            }
            let present: Vec<&str> = Field::ALL
                .iter()
                .filter(|f| !record.field(**f).is_null())
                .map(|f| f.as_str())
                .collect();
            let audit = actor
                .record("customer.create")
                .target(customer_ref(&id))
                .detail("fields", present)
                .detail("security_questions", answers.len());
            let committed = self
                .store
                .vault_commit(VaultWrite {
                    customers: vec![(row, None)],
                    index: vec![(id.clone(), index.clone())],
                    audit: vec![audit],
                    ..VaultWrite::default()
                })
                .await;
            match committed {
                Ok(true) => return Ok(id),
                Err(StoreError::Conflict) => {
                    let _ = self.store.destroy_share(&id).await;
                    // Either the id was taken (try another) or the national id was, meanwhile.
                    if self.national_id_held(&record, None).await? {
                        return Err(self.refuse_duplicate_national_id(actor).await);
                    }
                    continue;
                }
                Ok(false) => return Err(internal("a new customer was refused")),
                Err(e) => return Err(e.into()),
            }
        }
        Err(internal("no free customer id after three tries"))
    }

    /// Whether a customer other than `except` holds `record`'s national id (in the blind index).
    pub async fn national_id_held(
        &self,
        record: &Record,
        except: Option<&str>,
    ) -> Result<bool, Error> {
        let Some(n) = &record.national_id else {
            return Ok(false);
        };
        let kind = IndexKind::NationalId;
        let holders = self
            .store
            .customers_by_index(
                kind.as_str(),
                &self
                    .index
                    .blind(kind, &national_index_value(n.kind, &n.value)),
                2,
            )
            .await?;
        Ok(holders.iter().any(|c| Some(c.id.as_str()) != except))
    }

    /// Logs a registration refused for a national id another customer holds (neither the value
    /// nor the holder), and the error that says so.
    async fn refuse_duplicate_national_id(&self, actor: &Actor) -> Error {
        let audit = actor
            .record("customer.create")
            .failure()
            .detail("refused", "duplicate_national_id");
        if let Err(e) = self.store.append(vec![audit]).await {
            return e.into();
        }
        duplicate_national_id()
    }

    /// Customers whose phone number is `phone` (E.164), opened.
    pub async fn find_by(&self, kind: IndexKind, normalised: &str) -> Result<Vec<Opened>, Error> {
        let rows = self
            .store
            .customers_with_shares_by_index(
                kind.as_str(),
                &self.index.blind(kind, normalised),
                SEARCH_LIMIT,
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (row, share) in rows {
            match self.open_with_share(row, share) {
                Ok(o) => out.push(o),
                Err(Error::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Customers matching a national id given without its kind (as a caller reads it out):
    /// every kind whose format fits is tried.
    pub async fn find_by_national_id(&self, value: &str) -> Result<Vec<Opened>, Error> {
        let mut out: Vec<Opened> = Vec::new();
        for kind in [
            NationalIdKind::Pesel,
            NationalIdKind::Nip,
            NationalIdKind::Regon,
        ] {
            let id = NationalId {
                kind,
                value: value.to_owned(),
            };
            if let Ok(v) = validate::national_id(&id, None) {
                for o in self
                    .find_by(IndexKind::NationalId, &national_index_value(kind, &v))
                    .await?
                {
                    if !out.iter().any(|x| x.row.id == o.row.id) {
                        out.push(o);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether an opened customer has this national id (normalised for its kind).
    #[must_use]
    pub fn national_id_matches(o: &Opened, value: &str) -> bool {
        let Some(n) = &o.record.national_id else {
            return false;
        };
        let given = NationalId {
            kind: n.kind,
            value: value.to_owned(),
        };
        validate::national_id(&given, None)
            .is_ok_and(|v| subtle::ConstantTimeEq::ct_eq(v.as_bytes(), n.value.as_bytes()).into())
    }

    /// Whether an opened customer has this service name.
    #[must_use]
    pub fn service_matches(o: &Opened, value: &str) -> bool {
        let Ok(given) = validate::service(value) else {
            return false;
        };
        o.record
            .services
            .iter()
            .filter_map(|s| validate::service(s).ok())
            .any(|s| subtle::ConstantTimeEq::ct_eq(s.as_bytes(), given.as_bytes()).into())
    }

    /// Checks knowledge answers: every answer given must be right, and they must answer at least
    /// two different questions on file (or every question there is, when fewer). The same
    /// question asked twice, in whatever letter case or spacing, counts once. Hashing runs off
    /// the runtime.
    pub async fn answers_match(
        &self,
        o: &Opened,
        given: &[(String, Secret<String>)],
    ) -> Result<bool, Error> {
        let (named, answered) = questions_named(&o.answers, given);
        let on_file = distinct_questions(&o.answers);
        let needed = on_file.min(2);
        // More answers than a customer can have questions is never a right set; no hashing then.
        if on_file == 0 || given.len() > MAX_QUESTIONS || answered < needed {
            return Ok(false);
        }
        let mut all = true;
        for ((_, answer), stored) in given.iter().zip(named) {
            let stored = stored.and_then(|i| o.answers.get(i));
            let normalised = Secret::new(validate::security_answer(answer.expose()));
            // An unknown question still costs one hash, so timing does not tell which.
            let ok = self
                .hasher
                .verify(normalised, stored.map(|s| s.answer_hash.clone()))
                .await?;
            all &= ok && stored.is_some();
        }
        Ok(all)
    }

    /// Who is asking, for masked reads: an agent must be in an active interaction with this
    /// customer, or the read is flagged `outside_interaction` (and raises an alert).
    pub async fn read(
        &self,
        p: &Principal,
        id: &str,
        interaction: Option<&str>,
    ) -> Result<CustomerView, Error> {
        let o = self.open(id).await?;
        let inside = match interaction {
            Some(i) => self.agent_in_interaction(p, i, id).await?,
            None => false,
        };
        let mut audit = p.actor().record("customer.read").target(customer_ref(id));
        if p.user.role == Role::Agent {
            audit = audit.detail("outside_interaction", !inside);
            if inside {
                audit.interaction = interaction.map(str::to_owned);
            }
        }
        self.store.append(vec![audit]).await?;
        Ok(masked_view(&o))
    }

    /// Search by phone number (screen-pop). The answer is masked.
    pub async fn search_phone(
        &self,
        p: &Principal,
        phone: &str,
        interaction: Option<&str>,
    ) -> Result<Vec<CustomerView>, Error> {
        let e164 = validate::phone(phone).map_err(|e| {
            Error::InvalidFields(vec![FieldProblem {
                field: "phone".into(),
                detail: e.to_string(),
            }])
        })?;
        // The look-up and the interaction read are independent: on PostgreSQL both round trips
        // go out at once.
        let in_call = async {
            Ok::<bool, Error>(match interaction {
                Some(i) => self
                    .store
                    .interaction(i)
                    .await?
                    .is_some_and(|row| row.status == "active" && row.agent_id == p.user.id),
                None => false,
            })
        };
        let (found, inside) = tokio::join!(self.find_by(IndexKind::Phone, &e164), in_call);
        let (found, inside) = (found?, inside?);
        let mut audit = p
            .actor()
            .record("customer.search")
            .detail("by", "phone")
            .detail("results", found.len());
        if p.user.role == Role::Agent {
            audit = audit.detail("outside_interaction", !inside);
            if inside {
                audit.interaction = interaction.map(str::to_owned);
            }
        }
        self.store.append(vec![audit]).await?;
        Ok(found.iter().map(masked_view).collect())
    }

    /// Whether `p` is the agent of active interaction `interaction`, linked to customer `id`.
    async fn agent_in_interaction(
        &self,
        p: &Principal,
        interaction: &str,
        id: &str,
    ) -> Result<bool, Error> {
        Ok(self.store.interaction(interaction).await?.is_some_and(|i| {
            i.status == "active" && i.agent_id == p.user.id && i.customer_id.as_deref() == Some(id)
        }))
    }

    /// Takes one reveal from the agent's allowance, which every node on the database shares;
    /// `Ok(Err(window))` when it is used up (the window to wait, in seconds).
    pub async fn take_reveal(&self, agent_id: &str) -> Result<Result<(), i64>, Error> {
        let granted = self
            .store
            .take_allowance(
                &format!("reveal:{agent_id}"),
                now(),
                self.reveal_window,
                self.reveals_per_window,
            )
            .await?;
        Ok(if granted {
            Ok(())
        } else {
            Err(self.reveal_window)
        })
    }

    /// Forgets reveal uses that have left every window (housekeeping).
    pub async fn forget_spent_allowances(&self) -> Result<u64, Error> {
        Ok(self
            .store
            .forget_allowances_before(now() - self.reveal_window)
            .await?)
    }
}
