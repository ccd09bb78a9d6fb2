//! A CronJob's `schedule` and `timeZone`, checked as kube-apiserver checks
//! them: five standard cron fields or an `@hourly`-style descriptor (parsed
//! by the croner crate, POSIX/Vixie syntax), no `TZ=` prefix, and a time
//! zone from the IANA database.

use croner::parser::{CronParser, Seconds, Year};

/// The parser of CronJob schedules: minutes to weekdays, no seconds, no year.
pub fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
}

/// Why `schedule` is not a valid CronJob schedule, if it is not.
pub fn check(schedule: &str, time_zone: Option<&str>) -> Result<(), String> {
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
    parser()
        .parse(schedule)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Where the IANA time zone database lives on the machine.
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// Why `tz` is not a time zone of the IANA database, if it is not.
pub fn check_time_zone(tz: &str) -> Result<(), String> {
    if tz.eq_ignore_ascii_case("local") {
        return Err(
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"
                .into(),
        );
    }
    let plausible = !tz.is_empty()
        && !tz.starts_with('/')
        && tz.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-+.".contains(c))
        });
    if tz == "UTC" || (plausible && std::path::Path::new(ZONEINFO).join(tz).is_file()) {
        Ok(())
    } else {
        Err(format!("unknown time zone {tz}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_five_fields_or_a_descriptor() {
        assert_eq!(check("*/5 * * * *", None), Ok(()));
        assert_eq!(check("@hourly", None), Ok(()));
        assert_eq!(check("0 3 * * MON-FRI", None), Ok(()));
        assert!(check("* * * *", None).unwrap_err().contains("found 4"));
        assert!(check("61 * * * *", None).is_err());
        assert!(
            check("TZ=UTC * * * * *", None)
                .unwrap_err()
                .contains("timeZone")
        );
    }

    #[test]
    fn time_zones_come_from_the_database() {
        assert_eq!(check_time_zone("UTC"), Ok(()));
        assert!(check_time_zone("Local").is_err());
        assert!(check_time_zone("../../etc/passwd").is_err());
        assert!(check_time_zone("Mars/Olympus").is_err());
    }
}
