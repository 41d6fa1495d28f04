//! Seeds and the waves of an update: when a node with a given seed may take it.
//!
//! A wave key is the first seed of a wave and its value the wave's start time; wave `j` covers
//! the seeds `[key_j, key_{j+1})`, the last wave up to 2047. A seed below the first key is ready
//! at once; in the last wave every seed is ready at the wave's start; otherwise seed `s` of wave
//! `j` is ready at `start_j + (start_{j+1} - start_j) * (s - key_j) / (key_{j+1} - key_j)`.
//! Bottlerocket multiplies by the absolute seed instead; see the crate docs for why we differ.

use crate::error::{self, Error, Result};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound::{Excluded, Unbounded};
use std::str::FromStr;

/// How many seeds there are (Bottlerocket's `MAX_SEED`): seeds are `0..SEED_COUNT`.
pub const SEED_COUNT: u32 = 2048;

/// A node's place in the rollout, in `0..=2047`, chosen once at random and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct Seed(u32);

impl Seed {
    /// The highest seed, 2047.
    pub const MAX: Seed = Seed(SEED_COUNT - 1);

    /// Validates a seed: it must be below 2048.
    pub fn new(seed: u64) -> Result<Seed> {
        match u32::try_from(seed) {
            Ok(s) if s < SEED_COUNT => Ok(Seed(s)),
            _ => Err(Error::SeedOutOfRange { seed }),
        }
    }

    /// The seed as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u64> for Seed {
    type Error = Error;
    fn try_from(seed: u64) -> Result<Seed> {
        Seed::new(seed)
    }
}

impl From<Seed> for u32 {
    fn from(seed: Seed) -> u32 {
        seed.0
    }
}

impl FromStr for Seed {
    type Err = Error;
    /// Parses a decimal seed (digits only).
    fn from_str(s: &str) -> Result<Seed> {
        let n = parse_digits(s).ok_or_else(|| Error::SeedNotInteger {
            value: s.to_string(),
        })?;
        Seed::new(n)
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Parses ASCII digits only (no sign, no spaces); `None` if that is not what `s` is or it
/// overflows `u64`.
pub(crate) fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The waves of one update: wave keys (first seed of each wave) and start times, with start
/// times strictly increasing with the key. Serialises as a JSON object keyed by the seed in
/// decimal, sorted numerically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Waves(BTreeMap<Seed, Timestamp>);

impl Waves {
    /// No waves: every seed is ready at once.
    pub fn none() -> Waves {
        Waves(BTreeMap::new())
    }

    /// Builds waves from (first seed, start time) pairs; a duplicate seed or a start time that
    /// is not later than the wave before it is an error.
    pub fn new(waves: impl IntoIterator<Item = (Seed, Timestamp)>) -> Result<Waves> {
        let mut map = BTreeMap::new();
        for (seed, start) in waves {
            if map.insert(seed, start).is_some() {
                return Err(Error::DuplicateWaveKey {
                    key: seed.to_string(),
                });
            }
        }
        let mut previous: Option<(&Seed, &Timestamp)> = None;
        for (seed, start) in &map {
            if let Some((previous_seed, previous_start)) = previous {
                if start <= previous_start {
                    return error::WavesNotIncreasingSnafu {
                        seed: seed.get(),
                        start: *start,
                        previous_seed: previous_seed.get(),
                        previous_start: *previous_start,
                    }
                    .fail();
                }
            }
            previous = Some((seed, start));
        }
        Ok(Waves(map))
    }

    /// True if there are no waves.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The waves in seed order.
    pub fn iter(&self) -> impl Iterator<Item = (Seed, Timestamp)> + '_ {
        self.0.iter().map(|(seed, start)| (*seed, *start))
    }

    /// When a node with `seed` may take the update; `None` if at once (no waves, or the seed is
    /// below the first wave key).
    pub fn ready_time(&self, seed: Seed) -> Option<Timestamp> {
        // The wave the seed is in: the last key <= seed.
        let (key, start) = self.0.range(..=seed).next_back()?;
        let Some((next_key, next_start)) = self.0.range((Excluded(seed), Unbounded)).next() else {
            // The last wave: everyone at its start.
            return Some(*start);
        };
        let width = i128::from(next_key.get() - key.get());
        let position = i128::from(seed.get() - key.get());
        let span = next_start.duration_since(*start).as_nanos();
        // span < 2^71 (the whole Timestamp range) and position < 2^11: no overflow. Floor, so
        // a seed is never late.
        let offset = span * position / width;
        let secs = offset / 1_000_000_000;
        let nanos = offset % 1_000_000_000;
        // The offset is between 0 and `span`, which fits a SignedDuration, and start + offset
        // is between two valid Timestamps; the fallbacks are unreachable.
        let offset = SignedDuration::new(
            i64::try_from(secs).unwrap_or(i64::MAX),
            i32::try_from(nanos).unwrap_or(0),
        );
        Some(start.checked_add(offset).unwrap_or(*next_start))
    }

    /// True if a node with `seed` may take the update at `now`.
    pub fn is_ready(&self, seed: Seed, now: Timestamp) -> bool {
        self.ready_time(seed).is_none_or(|t| t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn seed(n: u64) -> Seed {
        Seed::new(n).unwrap()
    }

    #[test]
    fn seed_range() {
        assert_eq!(seed(0).get(), 0);
        assert_eq!(seed(2047), Seed::MAX);
        assert!(matches!(
            Seed::new(2048),
            Err(Error::SeedOutOfRange { seed: 2048 })
        ));
        assert!(Seed::new(u64::MAX).is_err());
        assert_eq!("17".parse::<Seed>().unwrap().get(), 17);
        assert!("-1".parse::<Seed>().is_err());
        assert!("+1".parse::<Seed>().is_err());
        assert!("2048".parse::<Seed>().is_err());
        assert_eq!(serde_json::from_str::<Seed>("5").unwrap().get(), 5);
        assert!(serde_json::from_str::<Seed>("4096").is_err());
    }

    #[test]
    fn no_waves_ready_at_once() {
        let waves = Waves::none();
        assert!(waves.is_empty());
        assert_eq!(waves.ready_time(seed(0)), None);
        assert!(waves.is_ready(seed(2047), ts("1970-01-01T00:00:00Z")));
    }

    #[test]
    fn below_first_key_ready_at_once() {
        let waves = Waves::new([(seed(100), ts("2030-01-01T00:00:00Z"))]).unwrap();
        assert_eq!(waves.ready_time(seed(99)), None);
        assert_eq!(waves.ready_time(seed(0)), None);
    }

    #[test]
    fn last_wave_ready_at_its_start() {
        let start = ts("2030-01-01T00:00:00Z");
        let waves = Waves::new([(seed(100), start)]).unwrap();
        assert_eq!(waves.ready_time(seed(100)), Some(start));
        assert_eq!(waves.ready_time(seed(2047)), Some(start));
        assert!(!waves.is_ready(seed(100), ts("2029-12-31T23:59:59Z")));
        assert!(waves.is_ready(seed(100), start));
    }

    #[test]
    fn position_within_wave() {
        let a = ts("2030-01-01T00:00:00Z");
        let b = ts("2030-01-01T10:00:00Z");
        let waves = Waves::new([(seed(1000), a), (seed(1010), b)]).unwrap();
        assert_eq!(waves.ready_time(seed(1000)), Some(a));
        assert_eq!(
            waves.ready_time(seed(1001)),
            Some(ts("2030-01-01T01:00:00Z"))
        );
        assert_eq!(
            waves.ready_time(seed(1009)),
            Some(ts("2030-01-01T09:00:00Z"))
        );
        // Bottlerocket's formula (absolute seed) would put seed 1001 far past the wave's end.
        assert_eq!(waves.ready_time(seed(1010)), Some(b));
    }

    #[test]
    fn fractional_offsets_floor() {
        let a = ts("2030-01-01T00:00:00Z");
        let b = ts("2030-01-01T00:00:01Z");
        let waves = Waves::new([(seed(0), a), (seed(3), b)]).unwrap();
        assert_eq!(
            waves.ready_time(seed(1)),
            Some(ts("2030-01-01T00:00:00.333333333Z"))
        );
    }

    #[test]
    fn extreme_span_does_not_overflow() {
        let a = Timestamp::MIN;
        let b = Timestamp::MAX;
        let waves = Waves::new([(seed(0), a), (seed(2047), b)]).unwrap();
        let mid = waves.ready_time(seed(2046)).unwrap();
        assert!(a < mid && mid < b);
    }

    #[test]
    fn construction_refuses_bad_waves() {
        let a = ts("2030-01-01T00:00:00Z");
        let err = Waves::new([(seed(5), a), (seed(5), a)]).unwrap_err();
        assert_eq!(err.to_string(), "duplicate wave key '5'");
        let err = Waves::new([(seed(5), a), (seed(9), a)]).unwrap_err();
        assert!(err.to_string().starts_with("wave '9' starts at"), "{err}");
        // Order of input does not matter; the order of times by seed does.
        let b = ts("2030-01-02T00:00:00Z");
        assert!(Waves::new([(seed(9), b), (seed(5), a)]).is_ok());
        assert!(Waves::new([(seed(9), a), (seed(5), b)]).is_err());
    }

    #[test]
    fn serialises_numerically_sorted_decimal_keys() {
        let waves = Waves::new([
            (seed(100), ts("2030-01-02T00:00:00Z")),
            (seed(20), ts("2030-01-01T00:00:00Z")),
        ])
        .unwrap();
        assert_eq!(
            serde_json::to_string(&waves).unwrap(),
            r#"{"20":"2030-01-01T00:00:00Z","100":"2030-01-02T00:00:00Z"}"#
        );
    }
}
