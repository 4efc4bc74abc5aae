//! The shape every audited write shares on both backends. A write is a closure run by its
//! backend's guarded-write helper (`SqliteStore::guarded`, `PostgresStore::guarded`) inside one
//! transaction; the closure answers with a [`Guarded`]: keep the change together with the audit
//! records that describe it, keep a change whose own statement wrote them (PostgreSQL), or undo
//! it and log nothing. The helper appends the records in the same transaction and only then
//! commits, so no change is committed without its entries.

use callguard_core::audit::AuditRecord;

/// What a guarded write decided.
pub(crate) enum Guarded<R> {
    /// Commit the change with these audit records (appended in the same transaction); answer `R`.
    Keep(R, Vec<AuditRecord>),
    /// Commit the change, one of whose statements wrote its audit records itself (PostgreSQL's
    /// `Tx::query_one_recorded` / `execute_recorded`); answer `R`. The backend checks that one
    /// did: a change that says so without having done it is rolled back with an error, never
    /// committed without its entries.
    Recorded(R),
    /// Roll the change back, append nothing; answer `R` (e.g. `false`).
    Undo(R),
}

impl<R> Guarded<R> {
    /// Keep the change with its one audit record.
    pub(crate) fn keep(value: R, audit: AuditRecord) -> Self {
        Self::Keep(value, vec![audit])
    }

    /// Keep the change, whose audit records one of its own statements wrote down in the
    /// transaction (see [`Self::Recorded`]).
    pub(crate) fn recorded(value: R) -> Self {
        Self::Recorded(value)
    }
}

impl Guarded<bool> {
    /// The common single-statement shape: `true` kept with `audit` when the change `took`,
    /// `false` undone otherwise.
    pub(crate) fn changed(took: bool, audit: AuditRecord) -> Self {
        if took {
            Self::keep(true, audit)
        } else {
            Self::Undo(false)
        }
    }

    /// [`Self::changed`] for a statement that wrote `audit` itself (see [`Self::recorded`]):
    /// undone, the transaction takes the entries with it.
    pub(crate) fn changed_recorded(took: bool) -> Self {
        if took {
            Self::recorded(true)
        } else {
            Self::Undo(false)
        }
    }
}

/// The error of a change that said its statements wrote its audit entries when none did: a
/// defect of the store, refused (the change rolled back) rather than committed without entries.
pub(crate) fn unrecorded() -> crate::StoreError {
    crate::StoreError::Backend("a change said its entries were written, and none were".into())
}
