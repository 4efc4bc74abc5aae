//! Field checks shared by registration and the operations that change a record: every invalid
//! field is collected with what is wrong (never the value), and nothing is stored unless all pass.

use crate::error::{Error, FieldProblem};
use callguard_core::vault::model::Address;
use callguard_core::vault::validate;

/// Collects every invalid field of a request; the messages never hold the values.
#[derive(Default)]
pub struct Problems(pub Vec<FieldProblem>);

impl Problems {
    pub fn add(&mut self, field: impl Into<String>, detail: impl ToString) {
        self.0.push(FieldProblem {
            field: field.into(),
            detail: detail.to_string(),
        });
    }

    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidFields(self.0))
        }
    }
}

pub(crate) const MAX_LIST: usize = 10;

/// Validates and normalises phones into `out`.
pub fn check_phones(list: &[String], name: &str, p: &mut Problems) -> Vec<String> {
    if list.len() > MAX_LIST {
        p.add(name, format!("at most {MAX_LIST} entries"));
    }
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match validate::phone(v) {
            Ok(n) if !out.contains(&n) => out.push(n),
            Ok(_) => {}
            Err(e) => p.add(format!("{name}[{i}]"), e),
        }
    }
    out
}

pub fn check_emails(list: &[String], name: &str, p: &mut Problems) -> Vec<String> {
    if list.len() > MAX_LIST {
        p.add(name, format!("at most {MAX_LIST} entries"));
    }
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match validate::email(v) {
            Ok(n) if !out.contains(&n) => out.push(n),
            Ok(_) => {}
            Err(e) => p.add(format!("{name}[{i}]"), e),
        }
    }
    out
}

pub fn check_address(a: &Address, name: &str, p: &mut Problems) {
    if let Err(e) = validate::address(a) {
        p.add(name, e);
    }
}

pub fn check_services(list: &[String], name: &str, p: &mut Problems) -> Vec<String> {
    if list.len() > MAX_LIST {
        p.add(name, format!("at most {MAX_LIST} entries"));
    }
    let mut out = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match validate::service(v) {
            Ok(_) => out.push(v.trim().to_owned()),
            Err(e) => p.add(format!("{name}[{i}]"), e),
        }
    }
    out
}

pub(crate) fn check_text(v: &str, name: &str, max: usize, p: &mut Problems) {
    let len = v.trim().chars().count();
    if len == 0 || len > max {
        p.add(name, format!("must have 1 to {max} characters"));
    } else if v.chars().any(char::is_control) {
        p.add(name, "must not contain control characters");
    }
}
