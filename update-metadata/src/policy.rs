//! Wave policies: Bottlerocket's wave TOML files, turned into an update's waves.
//!
//! A policy is a list of waves, each with `start_after` (a duration after the release's start,
//! e.g. `'1 hour'`, `'3 days'`, `'0 hours'`) and a cumulative `fleet_percentage` (1..=100,
//! strictly increasing, the last one 100). Durations use jiff's "friendly" format (units up to
//! weeks, a day being 24 hours; ISO 8601 such as `PT1H` is also accepted) and must strictly
//! increase.
//!
//! # Mapping (as Bottlerocket's `set_waves`)
//!
//! Wave `i` gets key `floor(p_{i-1} * 2048 / 100)` (with `p_{-1}` = 0, so the first key is 0)
//! and start time `start + start_after_i`: its seeds are those between the previous cumulative
//! percentage and its own. With the position-within-wave rule of [`crate::Waves::ready_time`],
//! wave `i`'s seeds become ready evenly from its start to wave `i+1`'s start; so when wave
//! `i+1` starts, the seeds below `floor(p_i * 2048 / 100)` are ready (plus the first seed of
//! wave `i+1`, ready at its start), and the count grows linearly with time in between. The last
//! wave has no later start to spread towards: its seeds are all ready at its start (up to that
//! instant, `floor(p_{n-2} * 2048 / 100)` seeds are ready), which is why its percentage must be
//! 100. Bottlerocket would accept a lower last percentage and ignore it.

use crate::error::{Error, Result};
use crate::waves::{SEED_COUNT, Seed, Waves};
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};
use serde::Deserialize;
use std::str::FromStr;

/// Bottlerocket's default wave policy (`default-waves.toml`), which spreads a release over six
/// days.
pub const DEFAULT_POLICY: &str = "\
# Bottlerocket's default waves: 1% after an hour, the whole fleet after six days.
[[waves]]
start_after = '1 hour'
fleet_percentage = 1

[[waves]]
start_after = '4 hours'
fleet_percentage = 5

[[waves]]
start_after = '1 day'
fleet_percentage = 15

[[waves]]
start_after = '2 days'
fleet_percentage = 40

[[waves]]
start_after = '4 days'
fleet_percentage = 60

[[waves]]
start_after = '5 days'
fleet_percentage = 90

[[waves]]
start_after = '6 days'
fleet_percentage = 100
";

/// One wave of a policy, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWave {
    start_after: SignedDuration,
    start_after_text: String,
    fleet_percentage: u32,
}

impl PolicyWave {
    /// How long after the release's start this wave begins.
    pub fn start_after(&self) -> SignedDuration {
        self.start_after
    }

    /// The share of the fleet, in percent, that has been offered the update when this wave
    /// ends (cumulative).
    pub fn fleet_percentage(&self) -> u32 {
        self.fleet_percentage
    }

    /// The first seed of this wave, given the previous wave's cumulative percentage.
    fn first_seed(previous_percentage: u32) -> Seed {
        let key = u64::from(previous_percentage) * u64::from(SEED_COUNT) / 100;
        // previous_percentage < 100 (percentages strictly increase to at most 100), so the key
        // is below 2048.
        Seed::new(key).unwrap_or(Seed::MAX)
    }
}

/// A validated wave policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavePolicy {
    waves: Vec<PolicyWave>,
}

#[derive(Deserialize)]
struct RawPolicy {
    waves: Option<Vec<RawWave>>,
}

#[derive(Deserialize)]
struct RawWave {
    start_after: Option<String>,
    fleet_percentage: Option<i64>,
}

fn parse_start_after(value: &str) -> Result<SignedDuration> {
    let parse_error = |source| Error::ParseStartAfter {
        value: value.to_string(),
        source,
    };
    let span: Span = value.trim().parse().map_err(parse_error)?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(parse_error)?;
    if duration.is_negative() {
        return Err(Error::NegativeStartAfter {
            value: value.to_string(),
        });
    }
    Ok(duration)
}

impl FromStr for WavePolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<WavePolicy> {
        WavePolicy::from_toml(s)
    }
}

impl WavePolicy {
    /// Parses a policy TOML document; errors name the wave index and field
    /// (`waves[3].fleet_percentage: ...`).
    pub fn from_toml(toml_text: &str) -> Result<WavePolicy> {
        let raw: RawPolicy =
            toml::from_str(toml_text).map_err(|source| Error::ParsePolicy { source })?;
        let raw_waves = raw.waves.ok_or_else(|| Error::MissingField.at("waves"))?;
        if raw_waves.is_empty() {
            return Err(Error::EmptyPolicy);
        }
        let last = raw_waves.len() - 1;
        let mut waves: Vec<PolicyWave> = Vec::with_capacity(raw_waves.len());
        for (i, raw) in raw_waves.into_iter().enumerate() {
            let field = |name: &str| format!("waves[{i}].{name}");
            let text = raw
                .start_after
                .ok_or_else(|| Error::MissingField.at(field("start_after")))?;
            let start_after = parse_start_after(&text).map_err(|e| e.at(field("start_after")))?;
            let percentage = raw
                .fleet_percentage
                .ok_or_else(|| Error::MissingField.at(field("fleet_percentage")))?;
            let in_range = u32::try_from(percentage)
                .ok()
                .filter(|p| (1..=100).contains(p));
            let Some(fleet_percentage) = in_range else {
                let e = Error::PercentageOutOfRange { value: percentage };
                return Err(e.at(field("fleet_percentage")));
            };
            if let Some(previous) = waves.last() {
                if start_after <= previous.start_after {
                    let e = Error::StartAfterNotIncreasing {
                        value: text,
                        previous: previous.start_after_text.clone(),
                    };
                    return Err(e.at(field("start_after")));
                }
                if fleet_percentage <= previous.fleet_percentage {
                    let e = Error::PercentageNotIncreasing {
                        value: percentage,
                        previous: i64::from(previous.fleet_percentage),
                    };
                    return Err(e.at(field("fleet_percentage")));
                }
            }
            if i == last && fleet_percentage != 100 {
                let e = Error::LastPercentageNot100 { value: percentage };
                return Err(e.at(field("fleet_percentage")));
            }
            waves.push(PolicyWave {
                start_after,
                start_after_text: text,
                fleet_percentage,
            });
        }
        Ok(WavePolicy { waves })
    }

    /// Bottlerocket's default policy ([`DEFAULT_POLICY`]).
    pub fn bottlerocket_default() -> WavePolicy {
        WavePolicy::from_toml(DEFAULT_POLICY).expect("the built-in default policy is valid")
    }

    /// The waves of the policy, in order.
    pub fn waves(&self) -> &[PolicyWave] {
        &self.waves
    }

    /// The manifest waves for a release that starts at `start` (see the module docs for the
    /// mapping).
    pub fn to_waves(&self, start: Timestamp) -> Result<Waves> {
        let mut previous_percentage = 0;
        let mut waves = Vec::with_capacity(self.waves.len());
        for (i, wave) in self.waves.iter().enumerate() {
            let time = start.checked_add(wave.start_after).map_err(|source| {
                Error::WaveTimeOverflow {
                    start,
                    value: wave.start_after_text.clone(),
                    source,
                }
                .at(format!("waves[{i}].start_after"))
            })?;
            waves.push((PolicyWave::first_seed(previous_percentage), time));
            previous_percentage = wave.fleet_percentage;
        }
        Waves::new(waves)
    }
}

#[cfg(test)]
mod tests;
