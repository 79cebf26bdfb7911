//! A UTC calendar day, as API Gateway's usage reports count them (`YYYY-MM-DD`).

use std::fmt;

const DAY_SECS: i64 = 24 * 3600;

/// A UTC day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDay(i64);

impl UtcDay {
    /// The day holding this unix time.
    pub fn of(unix: i64) -> Self {
        Self(unix.div_euclid(DAY_SECS))
    }

    /// `YYYY-MM-DD`.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('-');
        let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
            return None;
        }
        let (year, month, day): (i64, u32, u32) =
            (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Self(days_from_civil(year, month, day)))
    }

    /// Its first second (unix).
    pub fn start(self) -> i64 {
        self.0 * DAY_SECS
    }

    /// The first second of the next day (unix).
    pub fn end(self) -> i64 {
        self.start() + DAY_SECS
    }

    pub fn plus(self, days: i64) -> Self {
        Self(self.0 + days)
    }

    /// Days from `self` to `later` (negative when `later` is earlier).
    pub fn days_until(self, later: Self) -> i64 {
        later.0 - self.0
    }
}

impl fmt::Display for UtcDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.0);
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's `days_from_civil` and `civil_from_days` (public domain algorithms).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_should_read_and_print_as_yyyy_mm_dd() {
        for raw in [
            "1970-01-01",
            "2000-02-29",
            "2026-12-01",
            "2100-03-01",
            "1969-12-31",
        ] {
            assert_eq!(UtcDay::parse(raw).unwrap().to_string(), raw);
        }
        assert_eq!(UtcDay::parse("1970-01-01").unwrap().start(), 0);
        assert_eq!(UtcDay::parse("2026-12-02").unwrap().start(), 1_796_169_600);
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-01-01x",
            "",
        ] {
            assert_eq!(UtcDay::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_should_round_trip() {
        let first = UtcDay::parse("1900-01-01").unwrap();
        for offset in 0..146_097 {
            let day = first.plus(offset);
            assert_eq!(UtcDay::parse(&day.to_string()), Some(day));
            assert_eq!(UtcDay::of(day.start()), day);
            assert_eq!(UtcDay::of(day.end() - 1), day);
        }
    }
}
