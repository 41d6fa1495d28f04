//! Times and durations as the command line gives them, and whole-second metadata timestamps.
//!
//! TUF writes times as `YYYY-MM-DDTHH:MM:SSZ`. tough keeps sub-second precision if it is handed
//! such a time, and python-tuf then refuses the metadata, so every time that reaches metadata
//! goes through [`whole_seconds`].

use crate::error::{self, Result};
use jiff::{Span, Timestamp};
use snafu::ResultExt;

/// Drops the sub-second part of a time.
pub fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// Now, in whole seconds.
pub fn now() -> Timestamp {
    whole_seconds(Timestamp::now())
}

/// Parses either an RFC 3339 time (`2026-12-01T00:00:00Z`), `now`, or an offset from now
/// (`in 7 days`, `+2 weeks`, `12h`).
pub fn parse_when(input: &str, now: Timestamp) -> Result<Timestamp> {
    let text = input.trim();
    if text == "now" {
        return Ok(whole_seconds(now));
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(whole_seconds(t));
    }
    let offset = text
        .strip_prefix("in ")
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    let span: Span = offset.parse().context(error::ParseTimeSnafu { input })?;
    let zoned = now.to_zoned(jiff::tz::TimeZone::UTC);
    let later = zoned
        .checked_add(span)
        .context(error::ParseTimeSnafu { input })?;
    Ok(whole_seconds(later.timestamp()))
}

/// The next metadata version: max(now in UNIX seconds, previous + 1).
pub fn next_version(previous: u64, now: Timestamp) -> std::num::NonZeroU64 {
    let secs = u64::try_from(now.as_second()).unwrap_or(0);
    let next = secs.max(previous.saturating_add(1));
    std::num::NonZeroU64::new(next).unwrap_or(std::num::NonZeroU64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_relative_and_now() {
        let now: Timestamp = "2026-11-25T12:00:00.75Z".parse().unwrap();
        assert_eq!(
            parse_when("now", now).unwrap().to_string(),
            "2026-11-25T12:00:00Z"
        );
        assert_eq!(
            parse_when("2027-01-02T03:04:05Z", now).unwrap().to_string(),
            "2027-01-02T03:04:05Z"
        );
        assert_eq!(
            parse_when("in 7 days", now).unwrap().to_string(),
            "2026-12-02T12:00:00Z"
        );
        assert_eq!(
            parse_when("+2 weeks", now).unwrap().to_string(),
            "2026-12-09T12:00:00Z"
        );
        assert_eq!(
            parse_when("12h", now).unwrap().to_string(),
            "2026-11-26T00:00:00Z"
        );
        let err = parse_when("next tuesday", now).unwrap_err().to_string();
        assert!(
            err.starts_with("Failed to parse time 'next tuesday'"),
            "{err}"
        );
    }

    #[test]
    fn versions_follow_the_clock_and_never_go_back() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let secs = now.as_second() as u64;
        assert_eq!(next_version(0, now).get(), secs);
        assert_eq!(next_version(secs, now).get(), secs + 1);
        assert_eq!(next_version(secs + 100, now).get(), secs + 101);
    }
}
