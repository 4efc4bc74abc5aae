//! The national Do-Not-Call registry as this node holds it (SPEC C8, part): a compact set on disk
//! under `DATA_DIR/dnc/`, switched atomically by renaming a small pointer file, and reloaded by
//! the server when the pointer changes — the old registry keeps answering until the new one is
//! loaded, and a refused import never touches either. Checks answer in the order asked.

use callguard_core::dnc::elias_fano::EliasFano;
use callguard_core::dnc::hours::CallingHours;
use callguard_core::dnc::number::Callee;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Most numbers one check request may carry.
pub const MAX_BATCH: usize = 10_000;
/// A registry older than this must be refreshed (FTC: scrub at least every 31 days).
pub const MAX_AGE_SECONDS: i64 = 31 * 24 * 3600;

/// What the pointer file says about the registry in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegistryInfo {
    pub file: String,
    pub numbers: u64,
    pub sha256: String,
    pub source: String,
    pub imported_at: i64,
}

/// A loaded registry.
pub struct Registry {
    pub set: EliasFano,
    pub info: RegistryInfo,
}

/// Outbound-compliance settings (configuration keys `dnc.*`).
#[derive(Debug, Clone, Default)]
pub struct DncSettings {
    /// Calling-hour windows: a default (TCPA 08:00-21:00) and overrides by region, zone or country.
    pub calling_hours: CallingHours,
}

/// The registry of this node, and the calling-hour windows it checks against.
pub struct Dnc {
    dir: PathBuf,
    current: RwLock<Option<Arc<Registry>>>,
    hours: CallingHours,
}

fn pointer(dir: &Path) -> PathBuf {
    dir.join("current.json")
}

fn io(e: std::io::Error, what: &str, path: &Path) -> String {
    format!("{what} {}: {e}", path.display())
}

impl Dnc {
    /// Opens `dir` (creating it) and loads the registry in force, if any.
    pub fn open(dir: &Path, settings: DncSettings) -> Result<Self, String> {
        crate::bootstrap::create_private_dir(dir).map_err(|e| io(e, "cannot create", dir))?;
        let dnc = Self {
            dir: dir.to_path_buf(),
            current: RwLock::new(None),
            hours: settings.calling_hours,
        };
        dnc.reload_if_changed()?;
        Ok(dnc)
    }

    #[must_use]
    pub fn current(&self) -> Option<Arc<Registry>> {
        self.current.read().ok().and_then(|g| g.clone())
    }

    fn read_pointer(&self) -> Result<Option<RegistryInfo>, String> {
        let p = pointer(&self.dir);
        match std::fs::read_to_string(&p) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| format!("{} is damaged", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e, "cannot read", &p)),
        }
    }

    /// Loads the registry the pointer names when it is not the one in memory. Returns whether
    /// it switched.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let Some(info) = self.read_pointer()? else {
            return Ok(false);
        };
        if self.current().is_some_and(|r| r.info == info) {
            return Ok(false);
        }
        let path = self.dir.join(&info.file);
        // Read straight into the set's arrays: while the new registry loads, the old one still
        // answers, and a copy of the file on top of both would double the memory needed.
        let file = std::fs::File::open(&path).map_err(|e| io(e, "cannot read", &path))?;
        let len = file
            .metadata()
            .map_err(|e| io(e, "cannot read", &path))?
            .len();
        let set = EliasFano::read_from(file, len)
            .map_err(|e| io(e, "cannot read", &path))?
            .ok_or_else(|| format!("{} is not a registry file", path.display()))?;
        if set.len() != info.numbers {
            return Err(format!(
                "{} holds {} numbers, its pointer says {}",
                path.display(),
                set.len(),
                info.numbers
            ));
        }
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(Registry { set, info }));
        }
        tracing::info!(file = %path.display(), "national DNC registry loaded");
        Ok(true)
    }

    /// Writes a new registry file (fsynced) and returns the pointer that would put it in force.
    pub fn stage(
        &self,
        set: &EliasFano,
        sha256: &str,
        source: &str,
    ) -> Result<RegistryInfo, String> {
        let now = callguard_core::now();
        let file = format!(
            "national-{}-{now}.cgef",
            sha256.chars().take(12).collect::<String>()
        );
        let path = self.dir.join(&file);
        let tmp = self.dir.join(format!("{file}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(e, "cannot create", &tmp))?;
        f.write_all(&set.to_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| io(e, "cannot write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(e, "cannot rename", &tmp))?;
        Ok(RegistryInfo {
            file,
            numbers: set.len(),
            sha256: sha256.to_owned(),
            source: source.to_owned(),
            imported_at: now,
        })
    }

    /// Puts a staged registry in force: one atomic rename of the pointer. Older files are removed.
    pub fn commit(&self, info: &RegistryInfo) -> Result<(), String> {
        let p = pointer(&self.dir);
        let tmp = self.dir.join("current.json.tmp");
        let text = serde_json::to_vec_pretty(info).map_err(|e| e.to_string())?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| io(e, "cannot create", &tmp))?;
        f.write_all(&text)
            .and_then(|()| f.sync_all())
            .map_err(|e| io(e, "cannot write", &tmp))?;
        std::fs::rename(&tmp, &p).map_err(|e| io(e, "cannot rename", &tmp))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with("national-") && name != info.file {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// The calling-hour windows in force.
    #[must_use]
    pub fn calling_hours(&self) -> &CallingHours {
        &self.hours
    }

    /// Checks one number as written by the caller against the national registry only.
    #[must_use]
    pub fn check(&self, registry: &Registry, raw: &str) -> Verdict {
        self.verdict(
            registry,
            Callee::parse(raw).as_ref(),
            &ListFacts::default(),
            None,
        )
    }

    /// The verdict on one number (`None`: not a valid number): the national registry, what the
    /// company's own lists say of it, and, when `at` is given, the calling window at that time.
    /// Reasons come in the order of the public contract.
    #[must_use]
    pub fn verdict(
        &self,
        registry: &Registry,
        callee: Option<&Callee>,
        lists: &ListFacts,
        at: Option<callguard_core::dnc::hours::Timestamp>,
    ) -> Verdict {
        let Some(callee) = callee else {
            return Verdict {
                allowed: false,
                reasons: vec![Reason::InvalidNumber],
            };
        };
        let mut reasons = Vec::new();
        // Outside the North American plan neither the national registry nor the area-code
        // table applies.
        if let Callee::Nanp(n) = callee {
            if registry.set.contains(*n) {
                reasons.push(Reason::NationalDnc);
            }
        }
        let e164 = callee.e164();
        if lists.internal.contains(&e164) {
            reasons.push(Reason::InternalDnc);
        }
        if lists.consented.as_ref().is_some_and(|c| !c.contains(&e164)) {
            reasons.push(Reason::NoConsent);
        }
        if let (Callee::Nanp(n), Some(at)) = (callee, at) {
            if !self.hours.permits(*n, at) {
                reasons.push(Reason::OutsideCallingHours);
            }
        }
        Verdict {
            allowed: reasons.is_empty(),
            reasons,
        }
    }
}

/// What the company's own lists say about the numbers of one check, by E.164 number.
#[derive(Debug, Clone, Default)]
pub struct ListFacts {
    /// Numbers on the internal Do-Not-Call list.
    pub internal: HashSet<String>,
    /// When consent is required: the numbers that have it. `None`: consent was not asked for.
    pub consented: Option<HashSet<String>>,
}

/// Why a number may not be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// On the national Do-Not-Call registry.
    NationalDnc,
    /// On the company's own Do-Not-Call list (an opt-out).
    InternalDnc,
    /// Consent was required (a `purpose` was given) and there is no active consent for it.
    NoConsent,
    /// Outside the calling window in the called party's local time.
    OutsideCallingHours,
    /// Not a valid phone number.
    InvalidNumber,
}

impl Reason {
    /// The name on the wire and in scrub reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NationalDnc => "national_dnc",
            Reason::InternalDnc => "internal_dnc",
            Reason::NoConsent => "no_consent",
            Reason::OutsideCallingHours => "outside_calling_hours",
            Reason::InvalidNumber => "invalid_number",
        }
    }
}

/// The answer for one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub reasons: Vec<Reason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        std::env::temp_dir().join(format!("cg-dnc-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn a_registry_is_put_in_force_atomically_and_reloaded() {
        let d = dir();
        let dnc = Dnc::open(&d, DncSettings::default()).unwrap();
        assert!(dnc.current().is_none());
        let first = EliasFano::from_sorted(&[2_025_550_123], 10_000_000_000).unwrap();
        let staged = dnc.stage(&first, "aa", "first.txt").unwrap();
        assert!(
            !dnc.reload_if_changed().unwrap(),
            "staging alone changes nothing"
        );
        dnc.commit(&staged).unwrap();
        assert!(dnc.reload_if_changed().unwrap());
        let r = dnc.current().unwrap();
        assert!(!dnc.check(&r, "+1 202 555 0123").allowed);
        assert_eq!(
            dnc.check(&r, "2025550124"),
            Verdict {
                allowed: true,
                reasons: vec![]
            }
        );
        let second = EliasFano::from_sorted(&[2_025_550_124], 10_000_000_000).unwrap();
        let staged = dnc.stage(&second, "bb", "second.txt").unwrap();
        // The old registry answers until the new one is in force.
        assert!(!dnc.check(&dnc.current().unwrap(), "2025550123").allowed);
        dnc.commit(&staged).unwrap();
        dnc.reload_if_changed().unwrap();
        let r = dnc.current().unwrap();
        assert!(dnc.check(&r, "2025550123").allowed);
        assert!(!dnc.check(&r, "2025550124").allowed);
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            2,
            "pointer and one registry file remain"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn every_reason_is_given_in_the_contract_order_and_garbage_is_only_invalid() {
        use callguard_core::dnc::hours::Timestamp;
        let d = dir();
        let dnc = Dnc::open(&d, DncSettings::default()).unwrap();
        let r = Registry {
            set: EliasFano::from_sorted(&[3_035_550_100], 10_000_000_000).unwrap(),
            info: RegistryInfo {
                file: String::new(),
                numbers: 1,
                sha256: String::new(),
                source: String::new(),
                imported_at: 0,
            },
        };
        let denver = Callee::parse("+13035550100");
        let facts = ListFacts {
            internal: ["+13035550100".to_owned()].into(),
            consented: Some(HashSet::new()),
        };
        // 13:30 UTC in July is 07:30 in Denver.
        let early: Timestamp = "2024-07-15T13:30:00Z".parse().unwrap();
        assert_eq!(
            dnc.verdict(&r, denver.as_ref(), &facts, Some(early))
                .reasons,
            vec![
                Reason::NationalDnc,
                Reason::InternalDnc,
                Reason::NoConsent,
                Reason::OutsideCallingHours
            ]
        );
        assert_eq!(
            dnc.verdict(&r, None, &facts, Some(early)),
            Verdict {
                allowed: false,
                reasons: vec![Reason::InvalidNumber]
            }
        );
        // Consent on file, no consent asked, or no time given: those reasons go.
        let consented = ListFacts {
            internal: HashSet::new(),
            consented: Some(["+13035550100".to_owned()].into()),
        };
        assert_eq!(
            dnc.verdict(&r, denver.as_ref(), &consented, None).reasons,
            vec![Reason::NationalDnc]
        );
        let pl = Callee::parse("+48 601 234 567");
        assert!(
            dnc.verdict(&r, pl.as_ref(), &ListFacts::default(), Some(early))
                .allowed,
            "no window outside the North American plan"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn garbage_is_invalid_and_foreign_numbers_are_not_on_the_us_registry() {
        let d = dir();
        let dnc = Dnc::open(&d, DncSettings::default()).unwrap();
        let set = EliasFano::from_sorted(&[2_025_550_123], 10_000_000_000).unwrap();
        let r = Registry {
            set,
            info: RegistryInfo {
                file: String::new(),
                numbers: 1,
                sha256: String::new(),
                source: String::new(),
                imported_at: 0,
            },
        };
        for garbage in ["", "hello", "+1 111 555 0123", "12", "+999999"] {
            assert_eq!(
                dnc.check(&r, garbage).reasons,
                vec![Reason::InvalidNumber],
                "{garbage}"
            );
        }
        assert!(
            dnc.check(&r, "+48 601 234 567").allowed,
            "a valid Polish mobile"
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
