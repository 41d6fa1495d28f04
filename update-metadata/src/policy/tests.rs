use super::*;
use proptest::prelude::*;

const START: &str = "2030-01-01T00:00:00Z";

fn start() -> Timestamp {
    START.parse().unwrap()
}

/// How many seeds are ready at `now`.
fn ready_count(waves: &Waves, now: Timestamp) -> i64 {
    (0..u64::from(SEED_COUNT))
        .filter(|s| waves.is_ready(Seed::new(*s).unwrap(), now))
        .count() as i64
}

/// The acceptance test for any policy: when wave i+1 starts, floor(p_i * 2048) ± 1 seeds are
/// ready (for the last wave, up to the instant it starts: at its start every seed is); at a
/// fraction f of the way through wave i, the count is the linear interpolation between the
/// cumulative counts of waves i-1 and i, ± 1.
fn assert_spread(policy: &WavePolicy) {
    let waves = policy.to_waves(start()).unwrap();
    let policy_waves = policy.waves();
    let last = policy_waves.len() - 1;
    let cumulative = |i: usize| i64::from(policy_waves[i].fleet_percentage()) * 2048 / 100;
    let time = |i: usize| start().checked_add(policy_waves[i].start_after()).unwrap();
    let nanosecond = SignedDuration::from_nanos(1);
    assert_eq!(ready_count(&waves, time(0) - nanosecond), 0);
    for i in 0..last {
        let (t0, t1) = (time(i), time(i + 1));
        let mut instants = vec![("just before", t1 - nanosecond)];
        if i + 1 < last {
            instants.push(("at", t1));
        }
        for (when, instant) in instants {
            let count = ready_count(&waves, instant);
            assert!(
                (count - cumulative(i)).abs() <= 1,
                "{when} wave {}: {count} ready, expected {} ± 1",
                i + 1,
                cumulative(i)
            );
        }
        let previous = if i == 0 { 0 } else { cumulative(i - 1) };
        for quarter in 1..4 {
            let offset = t1.duration_since(t0) * quarter / 4;
            let expected = previous + (cumulative(i) - previous) * i64::from(quarter) / 4;
            let count = ready_count(&waves, t0.checked_add(offset).unwrap());
            assert!(
                (count - expected).abs() <= 1,
                "wave {i} at {quarter}/4: {count} ready, expected {expected} ± 1"
            );
        }
    }
    assert_eq!(ready_count(&waves, time(last)), 2048);
}

#[test]
fn default_policy_keys_and_times_match_bottlerocket() {
    let waves = WavePolicy::bottlerocket_default()
        .to_waves(start())
        .unwrap();
    let got: Vec<(u32, String)> = waves
        .iter()
        .map(|(seed, t)| (seed.get(), t.to_string()))
        .collect();
    // Bottlerocket's set_waves: key = floor(previous percentage × 2048).
    let expected = [
        (0, "2030-01-01T01:00:00Z"),
        (20, "2030-01-01T04:00:00Z"),
        (102, "2030-01-02T00:00:00Z"),
        (307, "2030-01-03T00:00:00Z"),
        (819, "2030-01-05T00:00:00Z"),
        (1228, "2030-01-06T00:00:00Z"),
        (1843, "2030-01-07T00:00:00Z"),
    ];
    let expected: Vec<(u32, String)> = expected.iter().map(|(s, t)| (*s, t.to_string())).collect();
    assert_eq!(got, expected);
}

#[test]
fn default_policy_spreads_evenly() {
    assert_spread(&WavePolicy::bottlerocket_default());
}

#[test]
fn single_wave_releases_everyone_at_its_start() {
    let policy: WavePolicy = "[[waves]]\nstart_after = '0 hours'\nfleet_percentage = 100\n"
        .parse()
        .unwrap();
    let waves = policy.to_waves(start()).unwrap();
    assert_eq!(ready_count(&waves, start()), 2048);
    assert_eq!(
        ready_count(&waves, start() - SignedDuration::from_secs(1)),
        0
    );
}

#[test]
fn durations() {
    for (text, hours) in [
        ("0 hours", 0),
        ("1 hour", 1),
        ("4 hours", 4),
        ("1 day", 24),
        ("3 days", 72),
        ("2 weeks", 336),
        ("1d 2h", 26),
        ("PT5H", 5),
    ] {
        assert_eq!(
            parse_start_after(text).unwrap(),
            SignedDuration::from_hours(hours),
            "{text}"
        );
    }
    assert!(matches!(
        parse_start_after("1 hour ago"),
        Err(Error::NegativeStartAfter { .. })
    ));
    assert!(matches!(
        parse_start_after("1 month"),
        Err(Error::ParseStartAfter { .. })
    ));
    assert!(matches!(
        parse_start_after("soon"),
        Err(Error::ParseStartAfter { .. })
    ));
}

fn policy_err(waves: &[(&str, i64)]) -> String {
    let toml: String = waves
        .iter()
        .map(|(after, p)| format!("[[waves]]\nstart_after = '{after}'\nfleet_percentage = {p}\n"))
        .collect();
    WavePolicy::from_toml(&toml).unwrap_err().to_string()
}

#[test]
fn errors_name_the_wave_and_field() {
    assert_eq!(
        policy_err(&[("1 hour", 0), ("2 hours", 100)]),
        "waves[0].fleet_percentage: 0 is outside 1..=100"
    );
    assert_eq!(
        policy_err(&[("1 hour", 10), ("2 hours", 101)]),
        "waves[1].fleet_percentage: 101 is outside 1..=100"
    );
    assert_eq!(
        policy_err(&[("1 hour", 10), ("2 hours", 10), ("3 hours", 100)]),
        "waves[1].fleet_percentage: 10 is not above the previous wave's 10 (percentages are cumulative)"
    );
    assert_eq!(
        policy_err(&[("1 hour", 10), ("1 hour", 20), ("3 hours", 100)]),
        "waves[1].start_after: '1 hour' is not later than the previous wave's '1 hour'"
    );
    assert_eq!(
        policy_err(&[("1 day", 10), ("23 hours", 100)]),
        "waves[1].start_after: '23 hours' is not later than the previous wave's '1 day'"
    );
    assert_eq!(
        policy_err(&[("1 hour", 10), ("2 hours", 60)]),
        "waves[1].fleet_percentage: 60: the last wave must be 100 (it releases every remaining seed)"
    );
    let err = policy_err(&[("1 hour", 10), ("whenever", 100)]);
    assert!(
        err.starts_with("waves[1].start_after: failed to parse duration 'whenever'"),
        "{err}"
    );
    assert_eq!(
        policy_err(&[("-1 hour", 100)]),
        "waves[0].start_after: duration '-1 hour' is negative"
    );
    assert_eq!(
        WavePolicy::from_toml("[[waves]]\nstart_after = '1 hour'\n")
            .unwrap_err()
            .to_string(),
        "waves[0].fleet_percentage: missing field"
    );
    assert_eq!(
        WavePolicy::from_toml("[[waves]]\nfleet_percentage = 100\n")
            .unwrap_err()
            .to_string(),
        "waves[0].start_after: missing field"
    );
    assert_eq!(
        WavePolicy::from_toml("").unwrap_err().to_string(),
        "waves: missing field"
    );
    assert_eq!(
        WavePolicy::from_toml("waves = []").unwrap_err().to_string(),
        "waves: a wave policy needs at least one wave"
    );
    let err = WavePolicy::from_toml("[[waves]\n").unwrap_err().to_string();
    assert!(err.starts_with("Failed to parse wave policy TOML"), "{err}");
}

#[test]
fn start_time_overflow_is_an_error() {
    let policy = WavePolicy::bottlerocket_default();
    let err = policy.to_waves(Timestamp::MAX).unwrap_err().to_string();
    assert!(err.starts_with("waves[0].start_after: start time"), "{err}");
}

/// Random valid policies: strictly increasing percentages ending at 100 and strictly
/// increasing offsets (in minutes, up to a few weeks).
fn arb_policy() -> impl Strategy<Value = WavePolicy> {
    (
        proptest::collection::btree_set(1u32..100, 0..8),
        proptest::collection::btree_set(0u32..40_000, 9),
    )
        .prop_map(|(percentages, offsets)| {
            let percentages: Vec<u32> = percentages.into_iter().chain([100]).collect();
            let toml: String = percentages
                .iter()
                .zip(offsets)
                .map(|(p, minutes)| {
                    format!(
                        "[[waves]]\nstart_after = '{minutes} minutes'\nfleet_percentage = {p}\n"
                    )
                })
                .collect();
            WavePolicy::from_toml(&toml).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_valid_policy_spreads_evenly(policy in arb_policy()) {
        assert_spread(&policy);
    }
}
