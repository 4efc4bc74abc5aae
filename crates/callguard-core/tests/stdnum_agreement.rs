//! Our PESEL, NIP and REGON validators agree with an independent implementation,
//! python-stdnum (`stdnum.pl.pesel`, `stdnum.pl.nip`, `stdnum.pl.regon`), on thousands of
//! generated numbers: valid ones with computed check digits, and copies corrupted the ways people
//! corrupt them (one digit mistyped, two adjacent digits swapped, a digit dropped or doubled).
//! Python 3 with python-stdnum is required; without it this test fails rather than skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use callguard_core::vault::validate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::process::Command;

const VALID_PER_KIND: usize = 2500;

const INSTALL_HINT: &str = "this test compares against python-stdnum: install it with \
     `pip install python-stdnum` (and python3 if missing)";

/// Reads `kind<TAB>value` lines and prints, per line, `1<TAB>normal form` (the birth date for a
/// PESEL) when stdnum accepts the value, else `0`.
const STDNUM_SCRIPT: &str = r#"
import sys
from stdnum.pl import nip, pesel, regon
mods = {"pesel": pesel, "nip": nip, "regon": regon}
out = []
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        kind, value = line.rstrip("\n").split("\t", 1)
        m = mods[kind]
        if not m.is_valid(value):
            out.append("0")
        elif kind == "pesel":
            out.append("1\t" + pesel.get_birth_date(value).isoformat())
        else:
            out.append("1\t" + m.compact(value))
sys.stdout.write("\n".join(out) + "\n")
"#;

fn check_digit(digits: &[u32], weights: &[u32]) -> u32 {
    digits.iter().zip(weights).map(|(d, w)| d * w).sum()
}

fn to_string(digits: &[u32]) -> String {
    digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .collect()
}

fn random_digits(rng: &mut StdRng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.gen_range(0..10)).collect()
}

fn pesel_check(first_ten: &[u32]) -> u32 {
    (10 - check_digit(first_ten, &[1, 3, 7, 9, 1, 3, 7, 9, 1, 3]) % 10) % 10
}

/// A valid PESEL for a random real date between 1800 and 2299.
fn valid_pesel(rng: &mut StdRng) -> String {
    let year: u32 = rng.gen_range(1800..2300);
    let month: u32 = rng.gen_range(1..=12);
    let days = time::util::days_in_month(time::Month::try_from(month as u8).unwrap(), year as i32);
    let day: u32 = rng.gen_range(1..=u32::from(days));
    let offset = match year / 100 {
        18 => 80,
        19 => 0,
        20 => 20,
        21 => 40,
        _ => 60,
    };
    let mut d = vec![
        year % 100 / 10,
        year % 10,
        (month + offset) / 10,
        (month + offset) % 10,
        day / 10,
        day % 10,
    ];
    d.extend(random_digits(rng, 4));
    d.push(pesel_check(&d));
    to_string(&d)
}

/// Ten random digits and a correct check digit: the date is often impossible (month 13, day 31
/// of a 30-day month, 29 February of a common year), which only the date check catches.
fn pesel_random_date(rng: &mut StdRng) -> String {
    let mut d = random_digits(rng, 10);
    // Bias towards plausible months and days so near-misses are common.
    if rng.gen_bool(0.7) {
        d[2] = rng.gen_range(0..10);
        d[3] = rng.gen_range(0..10);
        d[4] = rng.gen_range(0..4);
    }
    if rng.gen_bool(0.3) {
        // 29, 30 or 31 February in some century.
        d[2] = [0, 2, 4, 6, 8][rng.gen_range(0..5)];
        d[3] = 2;
        d[4] = rng.gen_range(2..4);
        d[5] = if d[4] == 2 { 9 } else { rng.gen_range(0..2) };
    }
    d.push(pesel_check(&d));
    to_string(&d)
}

const NIP_WEIGHTS: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];

/// A valid NIP, in one of the ways people write it.
fn valid_nip(rng: &mut StdRng) -> String {
    loop {
        let mut d = random_digits(rng, 9);
        let check = check_digit(&d, &NIP_WEIGHTS) % 11;
        if check == 10 {
            continue;
        }
        d.push(check);
        let s = to_string(&d);
        return match rng.gen_range(0..6) {
            0 => format!("PL{s}"),
            1 => format!("PL {s}"),
            2 => format!("{}-{}-{}-{}", &s[0..3], &s[3..6], &s[6..8], &s[8..]),
            3 => format!("pl{s}"),
            _ => s,
        };
    }
}

/// Nine digits whose weighted sum leaves 10: no check digit makes a valid NIP.
fn nip_without_check_digit(rng: &mut StdRng) -> String {
    loop {
        let mut d = random_digits(rng, 9);
        if check_digit(&d, &NIP_WEIGHTS) % 11 == 10 {
            d.push(rng.gen_range(0..10));
            return to_string(&d);
        }
    }
}

const REGON_9: [u32; 8] = [8, 9, 2, 3, 4, 5, 6, 7];
const REGON_14: [u32; 13] = [2, 4, 8, 5, 0, 9, 7, 3, 6, 1, 2, 4, 8];

fn regon_check(d: &[u32], w: &[u32]) -> u32 {
    check_digit(d, w) % 11 % 10
}

/// A valid REGON, 9 or 14 digits.
fn valid_regon(rng: &mut StdRng) -> String {
    let mut d = random_digits(rng, 8);
    d.push(regon_check(&d, &REGON_9));
    if rng.gen_bool(0.5) {
        d.extend(random_digits(rng, 4));
        d.push(regon_check(&d, &REGON_14));
    }
    to_string(&d)
}

/// A REGON-14 whose own check digit is right but whose first nine digits are not a REGON.
fn regon_14_with_bad_parent(rng: &mut StdRng) -> String {
    let mut d = random_digits(rng, 8);
    let good = regon_check(&d, &REGON_9);
    d.push((good + rng.gen_range(1..10)) % 10);
    d.extend(random_digits(rng, 4));
    d.push(regon_check(&d, &REGON_14));
    to_string(&d)
}

/// Copies of a valid number as people get it wrong: one digit changed, two adjacent digits
/// swapped, a digit dropped, a digit doubled. Separators, if any, are removed first.
fn corrupted(rng: &mut StdRng, valid: &str) -> Vec<String> {
    let digits: Vec<u8> = valid.bytes().filter(u8::is_ascii_digit).collect();
    let prefix = if valid.to_ascii_uppercase().starts_with("PL") {
        &valid[..2]
    } else {
        ""
    };
    let n = digits.len();
    let mut changed = digits.clone();
    let i = rng.gen_range(0..n);
    changed[i] = b'0' + ((changed[i] - b'0') + rng.gen_range(1..10)) % 10;
    let mut swapped = digits.clone();
    swapped.swap(i.min(n - 2), i.min(n - 2) + 1);
    let mut shorter = digits.clone();
    shorter.remove(i);
    let mut longer = digits.clone();
    longer.insert(i, digits[i]);
    [changed, swapped, shorter, longer]
        .into_iter()
        .map(|d| format!("{prefix}{}", String::from_utf8(d).unwrap()))
        .collect()
}

/// What our validators say about one line, in the form the script prints.
fn ours(kind: &str, value: &str) -> String {
    let answer = match kind {
        "pesel" => validate::pesel(value).map(|d| d.to_string()),
        "nip" => validate::nip(value),
        "regon" => validate::regon(value),
        _ => unreachable!(),
    };
    match answer {
        Ok(normal) => format!("1\t{normal}"),
        Err(_) => "0".to_owned(),
    }
}

fn run_stdnum(input: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stdnum-agreement-{}.tsv", std::process::id()));
    std::fs::write(&path, input).unwrap();
    let output = Command::new("python3")
        .arg("-c")
        .arg(STDNUM_SCRIPT)
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let output = match output {
        Ok(o) => o,
        Err(e) => panic!("cannot run python3 ({e}); {INSTALL_HINT}"),
    };
    if !output.status.success() {
        panic!(
            "python3 with stdnum failed ({}); {INSTALL_HINT}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn pesel_nip_and_regon_validators_agree_with_python_stdnum() {
    let mut rng = StdRng::seed_from_u64(0x5eed_ca11_6a4d);
    let mut cases: Vec<(&str, String, bool)> = Vec::new();
    for _ in 0..VALID_PER_KIND {
        for (kind, valid) in [
            ("pesel", valid_pesel(&mut rng)),
            ("nip", valid_nip(&mut rng)),
            ("regon", valid_regon(&mut rng)),
        ] {
            for bad in corrupted(&mut rng, &valid) {
                cases.push((kind, bad, false));
            }
            cases.push((kind, valid, true));
        }
        cases.push(("pesel", pesel_random_date(&mut rng), false));
    }
    for _ in 0..500 {
        cases.push(("nip", nip_without_check_digit(&mut rng), false));
        cases.push(("regon", regon_14_with_bad_parent(&mut rng), false));
    }

    let mut input = String::new();
    for (kind, value, _) in &cases {
        writeln!(input, "{kind}\t{value}").unwrap();
    }
    let theirs = run_stdnum(&input);
    assert_eq!(
        theirs.len(),
        cases.len(),
        "stdnum answered a different number of lines"
    );

    let mut disagreements = Vec::new();
    let mut accepted = std::collections::HashMap::<&str, usize>::new();
    let mut refused = std::collections::HashMap::<&str, usize>::new();
    for ((kind, value, generated_valid), their) in cases.iter().zip(&theirs) {
        let our = ours(kind, value);
        if &our != their {
            disagreements.push(format!("{kind} {value:?}: ours {our:?}, stdnum {their:?}"));
        }
        if *generated_valid && !our.starts_with('1') {
            disagreements.push(format!("{kind} {value:?} was generated valid but refused"));
        }
        let tally = if our.starts_with('1') {
            &mut accepted
        } else {
            &mut refused
        };
        *tally.entry(kind).or_default() += 1;
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} lines disagree, e.g.:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements[..disagreements.len().min(20)].join("\n")
    );
    for kind in ["pesel", "nip", "regon"] {
        assert!(
            accepted.get(kind).copied().unwrap_or(0) >= VALID_PER_KIND,
            "{kind}"
        );
        assert!(
            refused.get(kind).copied().unwrap_or(0) >= 2 * VALID_PER_KIND,
            "{kind}"
        );
    }
}
