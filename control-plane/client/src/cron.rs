//! CronJob schedules, for the API server's validation and the CronJob
//! controller alike: five standard cron fields or an `@hourly`-style
//! descriptor (parsed by the croner crate, POSIX/Vixie syntax), no `TZ=`
//! prefix, a time zone from the IANA database (jiff, reading the
//! machine's `/usr/share/zoneinfo`; the process's own zone when none is
//! named, as kube-controller-manager's), and the times a schedule fires.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// More missed start times than this are not counted further (Kubernetes
/// reports "too many missed start times" and starts the latest).
pub const MAX_MISSED: usize = 100;

/// `schedule` parsed, or why it is not a CronJob schedule.
pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Cron, String> {
    let upper = schedule.trim_start().to_ascii_uppercase();
    if upper.starts_with("TZ=") || upper.starts_with("CRON_TZ=") {
        return Err(if time_zone.is_some() {
            "cannot use both timeZone field and TZ or CRON_TZ in schedule".into()
        } else {
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into()
        });
    }
    if !schedule.trim_start().starts_with('@') {
        let fields = schedule.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {fields}: {schedule}"
            ));
        }
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(schedule)
        .map_err(|e| e.to_string())
}

/// The zone a CronJob's times are in: `timeZone`, or this process's.
pub fn time_zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        None => Ok(TimeZone::system()),
        Some(n) if n.eq_ignore_ascii_case("local") => Err(
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
                .into(),
        ),
        Some(n) => TimeZone::get(n).map_err(|_| format!("unknown time zone {n}")),
    }
}

/// The latest time in (`after`, `now`] the schedule fires at, and how
/// many times it fired in that window (counted up to [`MAX_MISSED`] + 1).
pub fn latest_missed(
    cron: &Cron,
    tz: &TimeZone,
    after: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, usize) {
    let mut latest = None;
    let mut count = 0;
    for t in cron.iter_after(after.to_zoned(tz.clone())) {
        let t = t.timestamp();
        if t > now {
            break;
        }
        latest = Some(t);
        count += 1;
        if count > MAX_MISSED {
            // Jump to the last firing before now instead of walking on.
            let back = cron
                .find_previous_occurrence(&now.to_zoned(tz.clone()), true)
                .ok()
                .map(|z: Zoned| z.timestamp());
            return (back.or(latest), count);
        }
    }
    (latest, count)
}

/// The first time after `now` the schedule fires at.
pub fn next_after(cron: &Cron, tz: &TimeZone, now: Timestamp) -> Option<Timestamp> {
    cron.find_next_occurrence(&now.to_zoned(tz.clone()), false)
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn schedules_are_five_fields_or_a_descriptor() {
        assert!(parse("*/5 * * * *", None).is_ok());
        assert!(parse("@hourly", None).is_ok());
        assert!(parse("0 3 * * MON-FRI", None).is_ok());
        assert!(parse("* * * *", None).unwrap_err().contains("found 4"));
        assert!(parse("61 * * * *", None).is_err());
        assert!(
            parse("TZ=UTC * * * * *", None)
                .unwrap_err()
                .contains("timeZone")
        );
    }

    #[test]
    fn time_zones_come_from_the_database() {
        assert!(time_zone(Some("UTC")).is_ok());
        assert!(time_zone(Some("Local")).is_err());
        assert!(time_zone(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn missed_times_are_counted_and_the_latest_kept() {
        let cron = parse("*/10 * * * *", None).unwrap();
        let utc = TimeZone::UTC;
        let (latest, n) = latest_missed(
            &cron,
            &utc,
            at("2026-12-08T10:00:00Z"),
            at("2026-12-08T10:35:00Z"),
        );
        assert_eq!((latest, n), (Some(at("2026-12-08T10:30:00Z")), 3));
        let (latest, n) = latest_missed(
            &cron,
            &utc,
            at("2026-12-01T00:00:00Z"),
            at("2026-12-08T10:35:00Z"),
        );
        assert_eq!(latest, Some(at("2026-12-08T10:30:00Z")));
        assert!(n > MAX_MISSED);
        assert_eq!(
            next_after(&cron, &utc, at("2026-12-08T10:35:00Z")),
            Some(at("2026-12-08T10:40:00Z"))
        );
    }
}
