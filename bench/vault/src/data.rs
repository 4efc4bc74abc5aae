//! The benchmark's customers: distinct valid Polish mobile numbers and PESELs, checked with the
//! vault's own validators before they are sent, so a refusal can only come from the server.

use crate::Res;
use callguard_core::vault::model::{NationalId, NationalIdKind};
use callguard_core::vault::validate;
use serde_json::{json, Value};

const FIRST: [&str; 8] = [
    "Jan",
    "Anna",
    "Piotr",
    "Katarzyna",
    "Tomasz",
    "Magdalena",
    "Paweł",
    "Agnieszka",
];
const LAST: [&str; 8] = [
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Wójcik",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
];

/// One customer in the clear, as the benchmark registers it (and as the baseline stores it).
#[derive(Clone)]
pub struct Customer {
    pub full_name: String,
    pub phone: String,
    pub email: String,
    pub pesel: String,
    pub date_of_birth: String,
    pub line1: String,
    pub postal_code: String,
    pub city: String,
    pub service: String,
}

/// The PESEL of a person born on `year-month-day` with serial `serial` (0..10000): YYMMDD with
/// 20 added to the month for the 2000s, four serial digits (the last one is the sex), and the
/// check digit over the weights 1,3,7,9,1,3,7,9,1,3.
pub fn pesel(year: u32, month: u32, day: u32, serial: u32) -> String {
    let encoded_month = if year >= 2000 { month + 20 } else { month };
    let body = format!(
        "{:02}{encoded_month:02}{day:02}{:04}",
        year % 100,
        serial % 10_000
    );
    let sum: u32 = body
        .bytes()
        .zip([1u32, 3, 7, 9, 1, 3, 7, 9, 1, 3])
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Customer `i` (distinct phone, e-mail, PESEL and service for every `i` below 1,000,000).
pub fn customer(i: u32) -> Res<Customer> {
    // +48 601 000 000 upwards, 997 apart: all in the 60x mobile range.
    let phone = format!("+48{}", 601_000_000 + u64::from(i) * 997);
    let year = 1950 + i % 60;
    let (month, day) = (1 + i % 12, 1 + (i / 12) % 28);
    let pesel = pesel(year, month, day, i % 10_000);
    let date_of_birth = format!("{year:04}-{month:02}-{day:02}");
    let full_name = format!(
        "{} {}",
        FIRST[i as usize % FIRST.len()],
        LAST[(i as usize / FIRST.len()) % LAST.len()]
    );
    let c = Customer {
        email: format!("klient.{i:06}@example.pl"),
        full_name,
        phone,
        pesel,
        date_of_birth,
        line1: format!("ul. Marszałkowska {}", 1 + i % 150),
        postal_code: "00-950".into(),
        city: "Warszawa".into(),
        service: format!("internet-{i:06}"),
    };
    // The vault's own validators: the same checks the server makes.
    let e164 = validate::phone(&c.phone).map_err(|e| format!("{}: {e}", c.phone))?;
    if e164 != c.phone {
        return Err(format!("{} is not in plain E.164 form", c.phone).into());
    }
    let dob = validate::date_of_birth(&c.date_of_birth).map_err(|e| e.to_string())?;
    let id = NationalId {
        kind: NationalIdKind::Pesel,
        value: c.pesel.clone(),
    };
    validate::national_id(&id, Some(dob)).map_err(|e| format!("PESEL {}: {e}", c.pesel))?;
    validate::email(&c.email).map_err(|e| e.to_string())?;
    Ok(c)
}

impl Customer {
    /// The body of `POST /api/v1/customers` (no security questions: their Argon2id hashing
    /// would make registering thousands of customers take minutes, and screen-pop does not
    /// read them beyond their count).
    pub fn create_body(&self) -> Value {
        json!({
            "full_name": self.full_name,
            "phones": [self.phone],
            "emails": [self.email],
            "national_id": {"kind": "pesel", "value": self.pesel},
            "date_of_birth": self.date_of_birth,
            "address": {
                "line1": self.line1,
                "postal_code": self.postal_code,
                "city": self.city,
                "country": "PL"
            },
            "services": [self.service],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_customers_pass_the_vault_validators_and_are_distinct() {
        let all: Vec<Customer> = (0..3000).map(|i| customer(i).unwrap()).collect();
        let phones: std::collections::HashSet<_> = all.iter().map(|c| &c.phone).collect();
        let pesels: std::collections::HashSet<_> = all.iter().map(|c| &c.pesel).collect();
        assert_eq!(phones.len(), all.len());
        assert_eq!(pesels.len(), all.len());
    }

    #[test]
    fn a_known_pesel_gets_its_check_digit() {
        // 1944-05-14, serial 0145: the textbook example 44051401458.
        assert_eq!(pesel(1944, 5, 14, 145), "44051401458");
        // The 2000s add 20 to the month.
        assert!(pesel(2003, 2, 1, 1).starts_with("032201"));
    }
}
