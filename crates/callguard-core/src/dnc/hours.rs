//! Calling-hour windows in the called party's local time (TCPA, 47 CFR 64.1200(c)(1): no
//! telephone solicitation before 8 a.m. or after 9 p.m. where the called party is). The place
//! comes from the area code, through a table of every geographic NANP area code shipped inside
//! the binary (`data/nanp-area-codes.csv`, which documents how split area codes are mapped); the
//! time zone arithmetic, daylight saving time included, uses the tz database bundled with `jiff`,
//! so it does not depend on the machine's `/usr/share/zoneinfo`.
//!
//! An area code missing from the table (toll-free, personal, non-geographic or unassigned) says
//! nothing about where the called party is, so such a number may be called only when it would
//! be callable in every zone of the fifty states and DC (with each state's own window).

use super::nanp::Nanp;
use jiff::tz::TimeZone;
/// An instant, as the windows are checked at (RFC 3339 `parse`, `Timestamp::now()`).
pub use jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The table, as shipped.
const AREA_CODES: &str = include_str!("../../data/nanp-area-codes.csv");

/// Regions of the table that are US territories rather than states or DC; a number of unknown
/// place is not held to their windows (Guam's day overlaps too little with Hawaii's).
const TERRITORIES: [&str; 5] = ["US-PR", "US-VI", "US-GU", "US-MP", "US-AS"];

/// A daily window `start..end` in local time, in minutes after midnight. The end is excluded:
/// with the TCPA window a call may start at 08:00 and until 20:59.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: u16,
    end: u16,
}

/// A window or region setting that could not be read; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSetting {
    #[error("a calling window must look like 08:00-21:00 (24-hour times, start before end)")]
    Window,
    #[error("`{0}` is not a region of the area-code table: use a US state or Canadian province like US-FL or CA-QC, a country like US, CA or JM, or a time zone of the table like America/Chicago")]
    Region(String),
    #[error("region overrides must look like `US-FL=08:00-20:00; America/Chicago=09:00-20:00`")]
    Overrides,
}

impl Window {
    /// 08:00 to 21:00, the TCPA's window.
    pub const TCPA: Window = Window {
        start: 8 * 60,
        end: 21 * 60,
    };

    /// Parses `HH:MM-HH:MM` (24-hour clock, `24:00` allowed as an end).
    pub fn parse(text: &str) -> Result<Self, BadSetting> {
        let (a, b) = text.trim().split_once('-').ok_or(BadSetting::Window)?;
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let (start, end) = (
            minute(a).ok_or(BadSetting::Window)?,
            minute(b).ok_or(BadSetting::Window)?,
        );
        if start >= end {
            return Err(BadSetting::Window);
        }
        Ok(Self { start, end })
    }

    #[must_use]
    pub fn contains(self, minute_of_day: u16) -> bool {
        (self.start..self.end).contains(&minute_of_day)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// Where an area code is: its region (`US-FL`, `CA-QC`, `JM`) and IANA time zone.
#[derive(Debug, Clone)]
pub struct Place {
    pub region: &'static str,
    pub zone: &'static str,
    tz: TimeZone,
}

impl Place {
    /// The country part of the region: `US` for `US-FL`, `JM` for `JM`.
    #[must_use]
    pub fn country(&self) -> &'static str {
        self.region.split('-').next().unwrap_or(self.region)
    }

    /// Minutes after local midnight at `at`.
    fn local_minute(&self, at: Timestamp) -> u16 {
        let offset = i64::from(self.tz.to_offset(at).seconds());
        let second_of_day = (at.as_second() + offset).rem_euclid(86_400);
        u16::try_from(second_of_day / 60).unwrap_or(0)
    }
}

struct Table {
    by_npa: Vec<Option<Place>>,
    /// One place per distinct (region, zone) of the fifty states and DC.
    states: Vec<Place>,
}

fn parse_table() -> Table {
    let mut by_npa: Vec<Option<Place>> = vec![None; 1000];
    let mut states: Vec<Place> = Vec::new();
    for line in AREA_CODES.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split(',');
        let (Some(npa), Some(region), Some(zone)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        // A line that does not parse or names a zone the bundled database lacks is left out;
        // the unit tests hold every line of the shipped file to parse.
        let (Ok(npa), Ok(tz)) = (npa.parse::<usize>(), TimeZone::get(zone)) else {
            continue;
        };
        let Some(slot) = by_npa.get_mut(npa) else {
            continue;
        };
        let place = Place { region, zone, tz };
        if region.starts_with("US-")
            && !TERRITORIES.contains(&region)
            && !states.iter().any(|p| p.region == region && p.zone == zone)
        {
            states.push(place.clone());
        }
        *slot = Some(place);
    }
    Table { by_npa, states }
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(parse_table)
}

/// Where the area code `npa` is, when it is a geographic one of the table.
#[must_use]
pub fn place_of_area_code(npa: u16) -> Option<&'static Place> {
    table()
        .by_npa
        .get(usize::from(npa))
        .and_then(Option::as_ref)
}

/// Whether `key` names something an override can apply to: a region, a country or a zone of
/// the table.
fn known_key(key: &str) -> bool {
    table()
        .by_npa
        .iter()
        .flatten()
        .any(|p| p.region == key || p.country() == key || p.zone == key)
}

/// The windows in force: a default and overrides by region (`US-FL`), time zone
/// (`America/Chicago`) or country (`CA`). The most specific applies: region, then zone, then
/// country, then the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingHours {
    default: Window,
    overrides: BTreeMap<String, Window>,
}

impl Default for CallingHours {
    fn default() -> Self {
        Self::new(Window::TCPA)
    }
}

impl CallingHours {
    #[must_use]
    pub fn new(default: Window) -> Self {
        Self {
            default,
            overrides: BTreeMap::new(),
        }
    }

    /// Sets the window of a region, zone or country of the table.
    pub fn set(&mut self, key: &str, window: Window) -> Result<(), BadSetting> {
        let key = key.trim();
        if !known_key(key) {
            return Err(BadSetting::Region(key.chars().take(40).collect()));
        }
        self.overrides.insert(key.to_owned(), window);
        Ok(())
    }

    /// Sets every override of `KEY=HH:MM-HH:MM` pairs separated by `;` or `,`.
    pub fn set_all(&mut self, text: &str) -> Result<(), BadSetting> {
        for pair in text
            .split([';', ','])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (key, window) = pair.split_once('=').ok_or(BadSetting::Overrides)?;
            self.set(key, Window::parse(window)?)?;
        }
        Ok(())
    }

    #[must_use]
    pub fn default_window(&self) -> Window {
        self.default
    }

    /// Every override, sorted by key.
    pub fn overrides(&self) -> impl Iterator<Item = (&str, Window)> {
        self.overrides.iter().map(|(k, w)| (k.as_str(), *w))
    }

    /// The window that applies at `place`.
    #[must_use]
    pub fn window_at(&self, place: &Place) -> Window {
        [place.region, place.zone, place.country()]
            .iter()
            .find_map(|k| self.overrides.get(*k).copied())
            .unwrap_or(self.default)
    }

    /// Whether a call to `number` may start at `at`.
    #[must_use]
    pub fn permits(&self, number: Nanp, at: Timestamp) -> bool {
        let npa = u16::try_from(number / 10_000_000).unwrap_or(0);
        match place_of_area_code(npa) {
            Some(place) => self.window_at(place).contains(place.local_minute(at)),
            None => table()
                .states
                .iter()
                .all(|p| self.window_at(p).contains(p.local_minute(at))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn every_line_of_the_shipped_table_parses_to_a_known_zone() {
        let rows: Vec<&str> = AREA_CODES
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let known = table().by_npa.iter().flatten().count();
        assert_eq!(
            known,
            rows.len(),
            "a line was dropped: bad shape or unknown zone"
        );
        assert!(known > 400, "every geographic area code: {known}");
        for row in rows {
            let npa: u16 = row[..3].parse().unwrap();
            let p = place_of_area_code(npa).unwrap();
            assert!(
                crate::dnc::nanp::normalise(&format!("{npa}2000000")).is_ok(),
                "{npa} is a valid NANP area code"
            );
            assert_eq!(row, format!("{npa},{},{}", p.region, p.zone));
        }
        // Fifty states and DC, some with more than one zone.
        let regions: std::collections::BTreeSet<&str> =
            table().states.iter().map(|p| p.region).collect();
        assert_eq!(regions.len(), 51, "{regions:?}");
    }

    #[test]
    fn well_known_area_codes_are_where_they_should_be() {
        for (npa, region, zone) in [
            (212, "US-NY", "America/New_York"),
            (202, "US-DC", "America/New_York"),
            (312, "US-IL", "America/Chicago"),
            (303, "US-CO", "America/Denver"),
            (602, "US-AZ", "America/Phoenix"),
            (415, "US-CA", "America/Los_Angeles"),
            (907, "US-AK", "America/Anchorage"),
            (808, "US-HI", "Pacific/Honolulu"),
            (787, "US-PR", "America/Puerto_Rico"),
            (416, "CA-ON", "America/Toronto"),
            (514, "CA-QC", "America/Toronto"),
            (709, "CA-NL", "America/St_Johns"),
            (306, "CA-SK", "America/Regina"),
            (876, "JM", "America/Jamaica"),
            (850, "US-FL", "America/Chicago"),
            (915, "US-TX", "America/Denver"),
        ] {
            let p = place_of_area_code(npa).unwrap();
            assert_eq!((p.region, p.zone), (region, zone), "{npa}");
        }
        for non_geographic in [800, 888, 500, 900, 700, 600] {
            assert!(
                place_of_area_code(non_geographic).is_none(),
                "{non_geographic}"
            );
        }
    }

    #[test]
    fn windows_parse_and_refuse_what_is_not_a_daytime_range() {
        assert_eq!(Window::parse("08:00-21:00"), Ok(Window::TCPA));
        assert_eq!(
            Window::parse(" 09:30 - 20:00 ").unwrap().to_string(),
            "09:30-20:00"
        );
        assert_eq!(
            Window::parse("00:00-24:00").unwrap().to_string(),
            "00:00-24:00"
        );
        for bad in [
            "",
            "8-21",
            "08:00",
            "21:00-08:00",
            "08:00-08:00",
            "25:00-26:00",
            "08:60-21:00",
            "8:00-21:00",
            "08:00-24:01",
        ] {
            assert_eq!(Window::parse(bad), Err(BadSetting::Window), "{bad:?}");
        }
        assert!(Window::TCPA.contains(8 * 60));
        assert!(Window::TCPA.contains(21 * 60 - 1));
        assert!(!Window::TCPA.contains(21 * 60), "9 p.m. is too late");
        assert!(!Window::TCPA.contains(8 * 60 - 1));
    }

    #[test]
    fn the_same_instant_is_callable_in_new_york_and_too_early_in_los_angeles() {
        let hours = CallingHours::default();
        // 2024-07-15 13:30 UTC: 09:30 EDT, 08:30 CDT, 07:30 MDT, 06:30 PDT, 03:30 HST.
        let t = at("2024-07-15T13:30:00Z");
        assert!(hours.permits(2_125_550_123, t), "New York 09:30");
        assert!(hours.permits(3_125_550_123, t), "Chicago 08:30");
        assert!(!hours.permits(3_035_550_123, t), "Denver 07:30");
        assert!(!hours.permits(4_155_550_123, t), "San Francisco 06:30");
        assert!(!hours.permits(8_085_550_123, t), "Honolulu 03:30");
        // Arizona keeps standard time in summer: 06:30 MST while Denver is at 07:30.
        assert!(
            !hours.permits(6_025_550_123, at("2024-07-15T14:30:00Z")),
            "Phoenix 07:30"
        );
        assert!(
            hours.permits(3_035_550_123, at("2024-07-15T14:30:00Z")),
            "Denver 08:30"
        );
        // Evening: 20:59 in New York is fine, 21:00 is not; Los Angeles is at 18:00.
        assert!(hours.permits(2_125_550_123, at("2024-07-16T00:59:00Z")));
        assert!(!hours.permits(2_125_550_123, at("2024-07-16T01:00:00Z")));
        assert!(hours.permits(4_155_550_123, at("2024-07-16T01:00:00Z")));
        // Newfoundland is half an hour off: 08:00 NDT is 10:30 UTC.
        assert!(!hours.permits(7_095_550_123, at("2024-07-15T10:29:00Z")));
        assert!(hours.permits(7_095_550_123, at("2024-07-15T10:30:00Z")));
    }

    #[test]
    fn daylight_saving_time_moves_the_window_on_the_day_it_changes() {
        let hours = CallingHours::default();
        let new_york = 2_125_550_123;
        // 2024-03-10: clocks in New York went from 02:00 EST to 03:00 EDT. 12:30 UTC was 07:30
        // EST the day before and is 08:30 EDT on the day.
        assert!(
            !hours.permits(new_york, at("2024-03-09T12:30:00Z")),
            "07:30 EST"
        );
        assert!(
            hours.permits(new_york, at("2024-03-10T12:30:00Z")),
            "08:30 EDT"
        );
        // 2024-11-03: back to EST. 12:30 UTC was 08:30 EDT the day before, 07:30 EST on the day.
        assert!(
            hours.permits(new_york, at("2024-11-02T12:30:00Z")),
            "08:30 EDT"
        );
        assert!(
            !hours.permits(new_york, at("2024-11-03T12:30:00Z")),
            "07:30 EST"
        );
        // Phoenix does not change: 14:30 UTC is 07:30 MST on both sides of the change.
        assert!(!hours.permits(6_025_550_123, at("2024-03-09T14:30:00Z")));
        assert!(!hours.permits(6_025_550_123, at("2024-03-10T14:30:00Z")));
    }

    #[test]
    fn overrides_apply_by_region_then_zone_then_country() {
        let mut hours = CallingHours::default();
        hours
            .set_all("US-FL=08:00-20:00; America/Chicago=09:00-20:00, CA=09:00-21:30")
            .unwrap();
        // Florida's 305 (Eastern) at 20:30 local: the state's window ends at 20:00.
        let t = at("2024-07-16T00:30:00Z");
        assert!(!hours.permits(3_055_550_123, t), "Miami 20:30");
        assert!(hours.permits(4_045_550_123, t), "Atlanta 20:30");
        // Florida's 850 is Central: the region wins over the zone (08:00 allowed).
        let eight_central = at("2024-07-15T13:00:00Z");
        assert!(
            hours.permits(8_505_550_123, eight_central),
            "Pensacola 08:00"
        );
        assert!(
            !hours.permits(3_125_550_123, eight_central),
            "Chicago 08:00 < 09:00"
        );
        // Canada as a whole: Toronto at 21:15 is allowed, New York is not.
        let t = at("2024-07-16T01:15:00Z");
        assert!(hours.permits(4_165_550_123, t));
        assert!(!hours.permits(2_125_550_123, t));
        assert_eq!(hours.overrides().count(), 3);

        for bad in [
            "US-XX=08:00-20:00",
            "Mars/Olympus=08:00-20:00",
            "FL=08:00-20:00",
        ] {
            assert!(
                matches!(hours.set_all(bad), Err(BadSetting::Region(_))),
                "{bad}"
            );
        }
        assert_eq!(hours.set_all("US-FL"), Err(BadSetting::Overrides));
        assert_eq!(hours.set_all("US-FL=8-20"), Err(BadSetting::Window));
    }

    #[test]
    fn an_unknown_area_code_is_callable_only_when_every_state_is_in_its_window() {
        let hours = CallingHours::default();
        let toll_free = 8_005_550_123;
        // 17:00 UTC in July: 13:00 EDT but 07:00 HST: too early in Hawaii.
        assert!(!hours.permits(toll_free, at("2024-07-15T17:00:00Z")));
        // 19:00 UTC: 15:00 EDT, 09:00 HST, 11:00 AKDT: everyone is awake.
        assert!(hours.permits(toll_free, at("2024-07-15T19:00:00Z")));
        // 01:00 UTC: 21:00 EDT: too late on the East Coast.
        assert!(!hours.permits(toll_free, at("2024-07-16T01:00:00Z")));
        // A state's own narrower window counts too.
        let mut florida = CallingHours::default();
        florida
            .set("US-FL", Window::parse("08:00-20:00").unwrap())
            .unwrap();
        // 00:30 UTC: 20:30 EDT, fine by the TCPA, too late in Miami.
        assert!(hours.permits(toll_free, at("2024-07-16T00:30:00Z")));
        assert!(!florida.permits(toll_free, at("2024-07-16T00:30:00Z")));
    }
}
