//! One search box for the desk: a phone number in any common format (`601 100 200`,
//! `+48 601-100-200`, `0048…`), an e-mail address, a national id or a service name, each looked
//! up through its blind index. Answers are masked; every search is audited like a phone search.

use super::service::{masked_view, CustomerView, Opened, Vault};
use crate::error::{Error, FieldProblem};
use crate::principal::Principal;
use callguard_core::vault::crypto::IndexKind;
use callguard_core::vault::validate;
use callguard_core::Role;

/// The country code a number typed without one is taken to be in (Poland, as the national ids).
pub const DEFAULT_COUNTRY_CODE: &str = "48";

/// What a typed query is looked up as.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Email(String),
    /// Digits: a phone number (when one can be made of them) and a national id.
    Digits {
        phone: Option<String>,
        digits: String,
    },
    Service(String),
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::InvalidFields(vec![FieldProblem {
        field: "q".into(),
        detail: detail.into(),
    }])
}

/// Classifies a query as the desk's search box reads it.
pub fn classify(query: &str) -> Result<Lookup, Error> {
    let q = query.trim();
    if q.is_empty() {
        return Err(invalid(
            "type a phone number, an e-mail address, a national id or a service name",
        ));
    }
    if q.contains('@') {
        return validate::email(q)
            .map(Lookup::Email)
            .map_err(|e| invalid(e.to_string()));
    }
    let numeric = q
        .chars()
        .all(|c| c.is_ascii_digit() || " -./()+".contains(c));
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    if numeric && digits.len() >= 2 {
        let international = if q.trim_start_matches('(').starts_with('+') {
            Some(digits.clone())
        } else if let Some(rest) = digits.strip_prefix("00") {
            Some(rest.to_owned())
        } else if digits.len() == 9 {
            Some(format!("{DEFAULT_COUNTRY_CODE}{digits}"))
        } else {
            None
        };
        let phone = international.and_then(|d| validate::phone(&format!("+{d}")).ok());
        return Ok(Lookup::Digits { phone, digits });
    }
    validate::service(q)
        .map(Lookup::Service)
        .map_err(|e| invalid(e.to_string()))
}

impl Vault {
    /// Searches by whatever the agent typed (see [`classify`]); masked answers, one audit entry.
    pub async fn search_any(
        &self,
        p: &Principal,
        query: &str,
        interaction: Option<&str>,
    ) -> Result<Vec<CustomerView>, Error> {
        let lookup = classify(query)?;
        let mut found: Vec<Opened> = Vec::new();
        let by = match &lookup {
            Lookup::Email(e) => {
                found = self.find_by(IndexKind::Email, e).await?;
                "email"
            }
            Lookup::Service(s) => {
                found = self.find_by(IndexKind::Service, s).await?;
                "service"
            }
            Lookup::Digits { phone, digits } => {
                if let Some(e164) = phone {
                    found = self.find_by(IndexKind::Phone, e164).await?;
                }
                for o in self.find_by_national_id(digits).await? {
                    if !found.iter().any(|x| x.row.id == o.row.id) {
                        found.push(o);
                    }
                }
                "phone_or_national_id"
            }
        };
        let mut inside = false;
        if let Some(i) = interaction {
            if let Some(row) = self.store().interaction(i).await? {
                inside = row.status == "active" && row.agent_id == p.user.id;
            }
        }
        let mut audit = p
            .actor()
            .record("customer.search")
            .detail("by", by)
            .detail("results", found.len());
        if p.user.role == Role::Agent {
            audit = audit.detail("outside_interaction", !inside);
            if inside {
                audit.interaction = interaction.map(str::to_owned);
            }
        }
        self.store().append(vec![audit]).await?;
        Ok(found.iter().map(masked_view).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone_of(q: &str) -> Option<String> {
        match classify(q) {
            Ok(Lookup::Digits { phone, .. }) => phone,
            other => panic!("{q}: {other:?}"),
        }
    }

    #[test]
    fn a_phone_number_is_found_however_it_is_typed() {
        for q in [
            "601 100 200",
            "+48 601-100-200",
            "+48601100200",
            "0048 601 100 200",
            "(+48) 601.100.200",
        ] {
            assert_eq!(phone_of(q).as_deref(), Some("+48601100200"), "{q}");
        }
    }

    #[test]
    fn digits_are_also_a_national_id_and_words_a_service() {
        assert_eq!(
            classify("44051401359").ok(),
            Some(Lookup::Digits {
                phone: None,
                digits: "44051401359".into()
            })
        );
        assert_eq!(
            classify(" Hosting-Kowalczyk-PL ").ok(),
            Some(Lookup::Service("hosting-kowalczyk-pl".into()))
        );
        assert!(matches!(classify("Jan@Example.com"), Ok(Lookup::Email(_))));
        assert!(classify("   ").is_err());
        assert!(classify("not an@address").is_err());
    }
}
