//! The compliance keys: retention periods, files scanned for card numbers, key age limit.

use super::{ConfigError, Raw};
use callguard_server::features::compliance::model::ComplianceSettings;
use std::path::PathBuf;

impl Raw {
    pub(super) fn compliance_settings(
        &self,
        data_dir: &std::path::Path,
    ) -> Result<ComplianceSettings, ConfigError> {
        let mut c = ComplianceSettings::defaults(data_dir);
        let r = &mut c.retention;
        for (key, slot) in [
            ("retention.interactions_days", &mut r.interactions_days),
            ("retention.customers_days", &mut r.customers_days),
            ("retention.alerts_days", &mut r.alerts_days),
            ("retention.sessions_days", &mut r.sessions_days),
            ("retention.recordings_days", &mut r.recordings_days),
        ] {
            if let Some(days) = self.number::<u32>(
                key,
                "a whole number of days from 1 to 36500, or 0 to keep without limit",
            )? {
                if days > 36_500 {
                    return Err(ConfigError(format!(
                        "{} must be a whole number of days from 1 to 36500, or 0 to keep without limit",
                        self.describe(key)
                    )));
                }
                *slot = (days > 0).then_some(days);
            }
        }
        if let Some(list) = self.text("compliance.scan_paths") {
            c.scan_paths = list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        if let Some(days) = self.number::<u32>(
            "compliance.key_max_age_days",
            "a whole number of days from 1",
        )? {
            if days == 0 {
                return Err(ConfigError(format!(
                    "{} must be at least 1",
                    self.describe("compliance.key_max_age_days")
                )));
            }
            c.key_max_age_days = days;
        }
        Ok(c)
    }
}
