use super::*;
use crate::manifest::Images;
use crate::names::TargetName;
use crate::waves::Waves;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn update(variant: &str, arch: &str, version: &str, max: &str) -> Update {
    let t = |kind: &str| TargetName::new(format!("{version}-{kind}")).unwrap();
    let mut u = Update::new(
        variant,
        arch,
        v(version),
        Images::new(t("boot"), t("root"), t("hash")),
    );
    u.max_version = v(max);
    u
}

/// v/x86_64: 1.0.0, 1.1.0, 1.2.0 (max 1.2.0); 1.3.0 is listed but above max (pulled);
/// 1.2.0 rolls out in one wave from seed 0 starting 2030-01-01 to seed 1024 on 2030-01-02.
/// Other variant and arch have newer versions that must never be chosen.
fn manifest() -> Manifest {
    let mut updates = vec![
        update("v", "x86_64", "1.0.0", "1.2.0"),
        update("v", "x86_64", "1.2.0", "1.2.0"),
        update("v", "x86_64", "1.1.0", "1.2.0"),
        update("v", "x86_64", "1.3.0", "1.2.0"),
        update("w", "x86_64", "9.0.0", "9.0.0"),
        update("v", "aarch64", "9.0.0", "9.0.0"),
    ];
    updates[1].waves = Waves::new([
        (Seed::new(0).unwrap(), ts("2030-01-01T00:00:00Z")),
        (Seed::new(1024).unwrap(), ts("2030-01-02T00:00:00Z")),
    ])
    .unwrap();
    Manifest::from_parts(updates, Default::default())
}

fn node(version: &str, seed: u64) -> Node {
    Node {
        variant: "v".into(),
        arch: "x86_64".into(),
        version: v(version),
        seed: Seed::new(seed).unwrap(),
    }
}

const LATER: &str = "2031-01-01T00:00:00Z";
const BEFORE: &str = "2029-01-01T00:00:00Z";

fn choose(node: &Node, now: &str, options: &ChoiceOptions) -> Option<String> {
    manifest()
        .choose(node, ts(now), options)
        .map(|u| u.version.to_string())
}

fn versions(list: Vec<&Update>) -> Vec<String> {
    list.iter().map(|u| u.version.to_string()).collect()
}

#[test]
fn applicable_filters_variant_arch_max_version_and_waves() {
    let m = manifest();
    let all = ChoiceOptions::default();
    // Newest first; 1.3.0 is above max_version; other variant/arch never listed.
    assert_eq!(
        versions(m.applicable_updates(&node("1.0.0", 0), ts(LATER), &all)),
        ["1.2.0", "1.1.0", "1.0.0"]
    );
    // Before its wave, 1.2.0 is not applicable.
    assert_eq!(
        versions(m.applicable_updates(&node("1.0.0", 0), ts(BEFORE), &all)),
        ["1.1.0", "1.0.0"]
    );
    // ... unless waves are ignored.
    let ignore = ChoiceOptions {
        ignore_waves: true,
        ..Default::default()
    };
    assert_eq!(
        versions(m.applicable_updates(&node("1.0.0", 0), ts(BEFORE), &ignore)),
        ["1.2.0", "1.1.0", "1.0.0"]
    );
    // Exclusion does not hide versions from the listing.
    let exclude = ChoiceOptions {
        exclude: [v("1.2.0")].into(),
        ..Default::default()
    };
    assert_eq!(
        m.applicable_updates(&node("1.0.0", 0), ts(LATER), &exclude)
            .len(),
        3
    );
}

#[test]
fn latest_takes_the_newest_above_running() {
    let o = ChoiceOptions::default();
    assert_eq!(
        choose(&node("1.0.0", 0), LATER, &o).as_deref(),
        Some("1.2.0")
    );
    assert_eq!(
        choose(&node("1.1.0", 0), LATER, &o).as_deref(),
        Some("1.2.0")
    );
    // Up to date.
    assert_eq!(choose(&node("1.2.0", 0), LATER, &o), None);
    // Newest is not yet ready for this seed: the next one down still counts if newer.
    assert_eq!(
        choose(&node("1.0.0", 0), BEFORE, &o).as_deref(),
        Some("1.1.0")
    );
    assert_eq!(choose(&node("1.1.0", 0), BEFORE, &o), None);
}

#[test]
fn waves_decide_by_seed_and_time() {
    let o = ChoiceOptions::default();
    // Seed 512 is half-way through the wave: ready at 12:00 on 1 January.
    assert_eq!(
        choose(&node("1.1.0", 512), "2030-01-01T11:59:59Z", &o),
        None
    );
    assert_eq!(
        choose(&node("1.1.0", 512), "2030-01-01T12:00:00Z", &o).as_deref(),
        Some("1.2.0")
    );
    // Seed 2000 is in the last wave: ready at its start.
    assert_eq!(
        choose(&node("1.1.0", 2000), "2030-01-01T23:59:59Z", &o),
        None
    );
    assert_eq!(
        choose(&node("1.1.0", 2000), "2030-01-02T00:00:00Z", &o).as_deref(),
        Some("1.2.0")
    );
    let ignore = ChoiceOptions {
        ignore_waves: true,
        ..Default::default()
    };
    assert_eq!(
        choose(&node("1.1.0", 2000), BEFORE, &ignore).as_deref(),
        Some("1.2.0")
    );
}

#[test]
fn pulled_release_moves_nodes_down() {
    let o = ChoiceOptions::default();
    // Running 1.3.0 > max_version 1.2.0: the newest allowed update, although lower.
    assert_eq!(
        choose(&node("1.3.0", 0), LATER, &o).as_deref(),
        Some("1.2.0")
    );
    // ... and before 1.2.0's wave, 1.1.0.
    assert_eq!(
        choose(&node("1.3.0", 0), BEFORE, &o).as_deref(),
        Some("1.1.0")
    );
    // A node above every listed version still moves down.
    assert_eq!(
        choose(&node("5.0.0", 0), LATER, &o).as_deref(),
        Some("1.2.0")
    );
}

#[test]
fn failed_versions_are_skipped() {
    let o = ChoiceOptions {
        exclude: [v("1.2.0")].into(),
        ..Default::default()
    };
    assert_eq!(
        choose(&node("1.0.0", 0), LATER, &o).as_deref(),
        Some("1.1.0")
    );
    assert_eq!(choose(&node("1.1.0", 0), LATER, &o), None);
    // The pulled-release rule skips them too.
    assert_eq!(
        choose(&node("1.3.0", 0), LATER, &o).as_deref(),
        Some("1.1.0")
    );
}

#[test]
fn image_picks_exactly_that_version() {
    let image = |version: &str, exclude: &[&str]| ChoiceOptions {
        image: Some(v(version)),
        exclude: exclude.iter().map(|e| v(e)).collect(),
        ..Default::default()
    };
    // A downgrade, by name.
    assert_eq!(
        choose(&node("1.2.0", 0), LATER, &image("1.0.0", &[])).as_deref(),
        Some("1.0.0")
    );
    // The running version itself (a re-install).
    assert_eq!(
        choose(&node("1.2.0", 0), LATER, &image("1.2.0", &[])).as_deref(),
        Some("1.2.0")
    );
    // A failed version, named, is offered again.
    assert_eq!(
        choose(&node("1.1.0", 0), LATER, &image("1.2.0", &["1.2.0"])).as_deref(),
        Some("1.2.0")
    );
    // Absent, pulled, or another variant's version: nothing.
    assert_eq!(choose(&node("1.0.0", 0), LATER, &image("1.0.5", &[])), None);
    assert_eq!(choose(&node("1.0.0", 0), LATER, &image("1.3.0", &[])), None);
    assert_eq!(choose(&node("1.0.0", 0), LATER, &image("9.0.0", &[])), None);
    // Waves still apply unless ignored.
    assert_eq!(
        choose(&node("1.0.0", 0), BEFORE, &image("1.2.0", &[])),
        None
    );
    let mut forced = image("1.2.0", &[]);
    forced.ignore_waves = true;
    assert_eq!(
        choose(&node("1.0.0", 0), BEFORE, &forced).as_deref(),
        Some("1.2.0")
    );
    // --image wins over a version lock.
    let mut locked = image("1.0.0", &[]);
    locked.version_lock = VersionLock::Exact(v("1.1.0"));
    assert_eq!(
        choose(&node("1.2.0", 0), LATER, &locked).as_deref(),
        Some("1.0.0")
    );
}

#[test]
fn version_lock_picks_exactly_that_version() {
    let lock = |version: &str| ChoiceOptions {
        version_lock: VersionLock::Exact(v(version)),
        ..Default::default()
    };
    // Down or up, exactly.
    assert_eq!(
        choose(&node("1.2.0", 0), LATER, &lock("1.1.0")).as_deref(),
        Some("1.1.0")
    );
    assert_eq!(
        choose(&node("1.0.0", 0), LATER, &lock("1.1.0")).as_deref(),
        Some("1.1.0")
    );
    // Running it already: nothing.
    assert_eq!(choose(&node("1.1.0", 0), LATER, &lock("1.1.0")), None);
    // Not applicable (absent, pulled, wave not ready): nothing.
    assert_eq!(choose(&node("1.0.0", 0), LATER, &lock("1.0.5")), None);
    assert_eq!(choose(&node("1.0.0", 0), LATER, &lock("1.3.0")), None);
    assert_eq!(choose(&node("1.0.0", 0), BEFORE, &lock("1.2.0")), None);
    // A failed version is not retried by a lock.
    let mut failed = lock("1.1.0");
    failed.exclude.insert(v("1.1.0"));
    assert_eq!(choose(&node("1.0.0", 0), LATER, &failed), None);
}

#[test]
fn version_lock_text() {
    assert_eq!(
        "latest".parse::<VersionLock>().unwrap(),
        VersionLock::Latest
    );
    assert_eq!(
        "v1.2.3".parse::<VersionLock>().unwrap(),
        VersionLock::Exact(v("1.2.3"))
    );
    assert_eq!("1.2.3".parse::<VersionLock>().unwrap().to_string(), "1.2.3");
    let err = "newest".parse::<VersionLock>().unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Failed to parse version lock 'newest'"),
        "{err}"
    );
    assert_eq!(
        serde_json::to_string(&VersionLock::Latest).unwrap(),
        "\"latest\""
    );
    assert_eq!(
        serde_json::from_str::<VersionLock>("\"v2.0.0\"").unwrap(),
        VersionLock::Exact(v("2.0.0"))
    );
    assert_eq!(VersionLock::default(), VersionLock::Latest);
}

#[test]
fn duplicate_versions_take_the_first_listed() {
    let mut updates = vec![
        update("v", "x86_64", "1.1.0", "1.1.0"),
        update("v", "x86_64", "1.1.0", "1.1.0"),
    ];
    updates[1].images.root = TargetName::new("second").unwrap();
    let m = Manifest::from_parts(updates, Default::default());
    let chosen = m
        .choose(&node("1.0.0", 0), ts(LATER), &ChoiceOptions::default())
        .unwrap();
    assert_eq!(chosen.images.root.as_str(), "1.1.0-root");
}
