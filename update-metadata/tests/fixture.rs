//! The Bottlerocket-style fixture parses, round-trips byte for byte, and answers choice and
//! migration questions as a Bottlerocket node would expect.

use update_metadata::{ChoiceOptions, Direction, Manifest, Node, Seed, WavePolicy};

const FIXTURE: &str = include_str!("data/bottlerocket-style/manifest.json");

fn manifest() -> Manifest {
    Manifest::from_json(FIXTURE.as_bytes()).expect("fixture parses")
}

#[test]
fn fixture_round_trips() {
    let m = manifest();
    assert_eq!(m.updates().len(), 4);
    assert_eq!(m.migrations().len(), 3);
    assert_eq!(m.to_json().expect("serialises"), FIXTURE);
}

#[test]
fn fixture_waves_are_the_default_policy() {
    let m = manifest();
    let update = &m.updates()[3];
    let start = "2024-06-04T17:00:00Z".parse().expect("time");
    let waves = WavePolicy::bottlerocket_default()
        .to_waves(start)
        .expect("waves");
    assert_eq!(update.waves, waves);
}

#[test]
fn fixture_choice_and_path() {
    let m = manifest();
    let node = Node {
        variant: "aws-k8s-1.29".into(),
        arch: "x86_64".into(),
        version: "1.19.5".parse().expect("version"),
        seed: Seed::new(1500).expect("seed"),
    };
    let options = ChoiceOptions::default();
    // In June 2024, after every wave: 1.20.1.
    let update = m
        .choose(
            &node,
            "2024-07-01T00:00:00Z".parse().expect("time"),
            &options,
        )
        .expect("an update");
    assert_eq!(update.version.to_string(), "1.20.1");
    // Seed 1500 is in 1.20.1's sixth wave (1228..1843, 9 to 10 June): not ready on 9 June
    // at 17:00, so 1.20.0 (all waves long past) is chosen.
    let update = m
        .choose(
            &node,
            "2024-06-09T17:00:00Z".parse().expect("time"),
            &options,
        )
        .expect("an update");
    assert_eq!(update.version.to_string(), "1.20.0");

    let path = m
        .migration_path(&node.version, &"1.20.1".parse().expect("version"))
        .expect("a path");
    assert_eq!(path.direction, Direction::Forward);
    let names: Vec<&str> = path.migrations.iter().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "migrate_v1.20.0_aws-control-container-v0-7-11.lz4",
            "migrate_v1.20.0_public-control-container-v0-7-11.lz4",
            "migrate_v1.20.1_kubelet-device-plugins-settings.lz4",
        ]
    );
    let back = m
        .migration_path(
            &"1.20.1".parse().expect("version"),
            &"1.19.4".parse().expect("version"),
        )
        .expect("a path");
    assert_eq!(back.direction, Direction::Backward);
    assert_eq!(back.migrations.len(), 3);
    assert_eq!(back.migrations[0].as_str(), names[2]);
}

/// The class of error fuzzing found in migration documents, checked here since
/// (`fuzz/regressions/manifest/`): errors quote keys and values from the document, and a JSON
/// string can hold a newline, so an error spanned lines.
#[test]
fn a_manifest_quoting_a_newline_still_fails_on_one_line() {
    let update = |waves: &str| {
        format!(
            r#"{{"updates": [{{"variant": "v", "arch": "x86_64", "version": "1.0.0",
            "max_version": "1.0.0", "waves": {waves},
            "images": {{"boot": "b", "root": "r", "hash": "h"}}}}], "migrations": {{}}}}"#
        )
    };
    for (doc, want) in [
        (
            update(r#"{"1\n2": "2030-01-01T00:00:00Z"}"#),
            "updates[0].waves: wave key '1\\n2' is not a decimal integer",
        ),
        (
            r#"{"updates": [], "migrations": {"(1.0\n0, 2.0.0)": []}}"#.to_string(),
            "migrations: migration key '(1.0\\n0, 2.0.0)': failed to parse version '1.0\\n0'",
        ),
    ] {
        let err = Manifest::from_json(doc.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with(want), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
