use super::*;
use crate::waves::Seed;
use jiff::Timestamp;
use proptest::prelude::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn images(version: &str) -> Images {
    let t = |kind: &str| TargetName::new(format!("os-{version}-{kind}.img.lz4")).unwrap();
    Images::new(t("boot"), t("root"), t("hash"))
}

fn update(variant: &str, version: &str) -> Update {
    Update::new(variant, "x86_64", v(version), images(version))
}

/// A manifest with a good update first and `update_json` second (`updates[1]`).
fn with_update(update_json: &str) -> String {
    format!(r#"{{"updates": [{GOOD_UPDATE}, {update_json}], "migrations": {{}}}}"#,)
}

const GOOD_UPDATE: &str = r#"{
    "variant": "v", "arch": "x86_64", "version": "1.0.0", "max_version": "1.1.0",
    "waves": {"0": "2030-01-01T00:00:00Z", "20": "2030-01-02T00:00:00Z"},
    "images": {"boot": "b", "root": "r", "hash": "h"}
}"#;

fn parse_err(json: &str) -> String {
    Manifest::from_json(json.as_bytes())
        .unwrap_err()
        .to_string()
}

fn bad_update(replace: &str, with: &str) -> String {
    let update = GOOD_UPDATE.replacen(replace, with, 1);
    assert_ne!(update, GOOD_UPDATE, "test did not change anything");
    parse_err(&with_update(&update))
}

#[test]
fn parses_a_minimal_manifest() {
    let m: Manifest = with_update(GOOD_UPDATE.replacen("1.0.0", "1.1.0", 1).as_str())
        .parse()
        .unwrap();
    assert_eq!(m.updates().len(), 2);
    let u = &m.updates()[1];
    assert_eq!((u.variant.as_str(), u.arch.as_str()), ("v", "x86_64"));
    assert_eq!(u.version, v("1.1.0"));
    assert_eq!(u.images.root.as_str(), "r");
    assert_eq!(u.waves.iter().count(), 2);
}

#[test]
fn wave_errors_name_the_update_and_field() {
    assert_eq!(
        bad_update(r#""20": "#, r#""0": "#),
        "updates[1].waves: duplicate wave key '0'"
    );
    assert_eq!(
        bad_update(r#""20": "#, r#""twenty": "#),
        "updates[1].waves: wave key 'twenty' is not a decimal integer"
    );
    assert_eq!(
        bad_update(r#""20": "#, r#""-20": "#),
        "updates[1].waves: wave key '-20' is not a decimal integer"
    );
    assert_eq!(
        bad_update(r#""20": "#, r#""2048": "#),
        "updates[1].waves: wave key '2048' is outside the seeds 0..=2047"
    );
    assert_eq!(
        bad_update(r#""20": "#, r#""99999999999999999999999": "#),
        "updates[1].waves: wave key '99999999999999999999999' is not a decimal integer"
    );
    let err = bad_update("2030-01-02T00:00:00Z", "2030-01-01T00:00:00Z");
    assert!(
        err.starts_with("updates[1].waves: wave '20' starts at 2030-01-01T00:00:00Z, which is not after wave '0'"),
        "{err}"
    );
    let err = bad_update("2030-01-02T00:00:00Z", "2029-01-01T00:00:00Z");
    assert!(err.contains("not after wave '0'"), "{err}");
    let err = bad_update("2030-01-02T00:00:00Z", "tomorrow");
    assert!(
        err.starts_with("updates[1].waves: failed to parse the start time 'tomorrow' of wave '20'"),
        "{err}"
    );
}

#[test]
fn version_errors_name_the_field() {
    let err = bad_update(r#""version": "1.0.0""#, r#""version": "1.0""#);
    assert!(
        err.starts_with("updates[1].version: failed to parse version '1.0'"),
        "{err}"
    );
    let err = bad_update(r#""max_version": "1.1.0""#, r#""max_version": "x""#);
    assert!(
        err.starts_with("updates[1].max_version: failed to parse version 'x'"),
        "{err}"
    );
}

#[test]
fn missing_and_invalid_fields_are_named() {
    assert_eq!(
        bad_update(r#""arch": "x86_64", "#, ""),
        "updates[1].arch: missing field"
    );
    assert_eq!(
        bad_update(r#""waves""#, r#""wavez""#),
        "updates[1].waves: missing field"
    );
    assert_eq!(
        bad_update(r#""hash": "h""#, r#""hash": "../h""#),
        "updates[1].images.hash: invalid target name '../h': it contains '/'"
    );
    assert_eq!(parse_err(r#"{"migrations": {}}"#), "updates: missing field");
    assert_eq!(parse_err(r#"{"updates": []}"#), "migrations: missing field");
    let err = parse_err(r#"{"updates": [], "updates": [], "migrations": {}}"#);
    assert!(err.contains("duplicate field `updates`"), "{err}");
    let err = bad_update(
        r#""arch": "x86_64", "#,
        r#""arch": "x86_64", "arch": "aarch64", "#,
    );
    assert!(err.contains("duplicate field `arch`"), "{err}");
    let err = parse_err("not json");
    assert!(err.starts_with("Failed to parse manifest JSON"), "{err}");
}

#[test]
fn unknown_fields_are_ignored() {
    let update = GOOD_UPDATE.replacen(r#""arch""#, r#""delta_from": {"x": 1}, "arch""#, 1);
    let json = format!(r#"{{"updates": [{update}], "migrations": {{}}, "future": true}}"#);
    let m = Manifest::from_json(json.as_bytes()).unwrap();
    assert_eq!(m.updates().len(), 1);
    assert!(!m.to_json().unwrap().contains("delta_from"));
    // Our chunk_indexes field is read; an unknown image in it is ignored, a bad name is not.
    let update = GOOD_UPDATE.replacen(
        r#""arch""#,
        r#""chunk_indexes": {"root": "r.chunks.json", "x": 1}, "arch""#,
        1,
    );
    let json = format!(r#"{{"updates": [{update}], "migrations": {{}}}}"#);
    let m = Manifest::from_json(json.as_bytes()).unwrap();
    let indexes = m.updates()[0].chunk_indexes.clone().unwrap();
    assert_eq!(indexes.root.unwrap().as_str(), "r.chunks.json");
    assert!(indexes.boot.is_none());
    let bad = GOOD_UPDATE.replacen(
        r#""arch""#,
        r#""chunk_indexes": {"boot": "../x"}, "arch""#,
        1,
    );
    let err = parse_err(&format!(r#"{{"updates": [{bad}], "migrations": {{}}}}"#));
    assert!(err.starts_with("updates[0].chunk_indexes.boot: "), "{err}");
}

#[test]
fn migration_errors_name_the_field() {
    let m = |migrations: &str| {
        parse_err(&format!(
            r#"{{"updates": [], "migrations": {{{migrations}}}}}"#
        ))
    };
    assert_eq!(
        m(r#""(1.0.0, 1.1.0)": [], "(1.0.0,1.1.0)": ["a"]"#),
        "migrations: duplicate migration key '(1.0.0,1.1.0)' ((1.0.0, 1.1.0) is already listed)"
    );
    assert_eq!(
        m(r#""(1.0.0, 1.1.0)": [], "(1.0.0, 1.1.0)": []"#),
        "migrations: duplicate migration key '(1.0.0, 1.1.0)' ((1.0.0, 1.1.0) is already listed)"
    );
    assert_eq!(
        m(r#""1.0.0 -> 1.1.0": []"#),
        "migrations: malformed migration key '1.0.0 -> 1.1.0': expected '(<from>, <to>)'"
    );
    let err = m(r#""(1.0, 1.1.0)": []"#);
    assert!(
        err.starts_with("migrations: migration key '(1.0, 1.1.0)': failed to parse version '1.0'"),
        "{err}"
    );
    assert_eq!(
        m(r#""(1.1.0, 1.0.0)": []"#),
        "migrations: migration key '(1.1.0, 1.0.0)': '1.1.0' must be lower than '1.0.0'"
    );
    assert_eq!(
        m(r#""(1.0.0, 1.1.0)": ["ok", "a/b"]"#),
        "migrations: (1.0.0, 1.1.0)[1]: invalid migration name 'a/b': it contains '/'"
    );
}

#[test]
fn serialisation_is_canonical_and_a_fixed_point() {
    // Keys out of order, odd spacing in migration keys: normalised once, then stable.
    let json = r#"{"migrations": {"(1.1.0,1.2.0)": ["m2"], "(1.0.0, 1.1.0)": ["m1"]},
        "updates": [{"images": {"root": "r", "boot": "b", "hash": "h"},
        "waves": {"100": "2030-01-02T00:00:00+00:00", "20": "2030-01-01T00:00:00Z"},
        "max_version": "1.2.0", "version": "1.2.0", "arch": "x86_64", "variant": "v"}]}"#;
    let once = Manifest::from_json(json.as_bytes())
        .unwrap()
        .to_json()
        .unwrap();
    let expected = r#"{
  "updates": [
    {
      "variant": "v",
      "arch": "x86_64",
      "version": "1.2.0",
      "max_version": "1.2.0",
      "waves": {
        "20": "2030-01-01T00:00:00Z",
        "100": "2030-01-02T00:00:00Z"
      },
      "images": {
        "boot": "b",
        "root": "r",
        "hash": "h"
      }
    }
  ],
  "migrations": {
    "(1.0.0, 1.1.0)": [
      "m1"
    ],
    "(1.1.0, 1.2.0)": [
      "m2"
    ]
  }
}
"#;
    assert_eq!(once, expected);
    let twice = Manifest::from_json(once.as_bytes()).unwrap();
    assert_eq!(twice.to_json().unwrap(), once);
    // serde's Deserialize goes through the same strict path.
    let via_serde: Manifest = serde_json::from_str(&once).unwrap();
    assert_eq!(via_serde, twice);
    let err = serde_json::from_str::<Manifest>(&once.replace("\"100\"", "\"20\"")).unwrap_err();
    assert!(
        err.to_string()
            .contains("updates[0].waves: duplicate wave key '20'"),
        "{err}"
    );
}

#[test]
fn add_update_refuses_duplicates_and_raises_max_version() {
    let mut m = Manifest::default();
    m.add_update(update("v", "1.0.0")).unwrap();
    m.add_update(update("other", "3.0.0")).unwrap();
    m.add_update(update("v", "1.1.0")).unwrap();
    let max = |m: &Manifest, version: &str| {
        m.update("v", "x86_64", &v(version))
            .unwrap()
            .max_version
            .clone()
    };
    assert_eq!(max(&m, "1.0.0"), v("1.1.0"));
    assert_eq!(max(&m, "1.1.0"), v("1.1.0"));
    // Another variant is untouched.
    assert_eq!(
        m.update("other", "x86_64", &v("3.0.0"))
            .unwrap()
            .max_version,
        v("3.0.0")
    );
    // A backport does not pull newer releases.
    m.add_update(update("v", "1.0.1")).unwrap();
    assert_eq!(max(&m, "1.0.1"), v("1.1.0"));
    assert_eq!(max(&m, "1.1.0"), v("1.1.0"));
    // An explicit higher max_version wins for all.
    let mut u = update("v", "1.2.0");
    u.max_version = v("1.5.0");
    m.add_update(u).unwrap();
    assert_eq!(max(&m, "1.0.0"), v("1.5.0"));

    let err = m.add_update(update("v", "1.1.0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to add update v/x86_64 1.1.0: it is already listed"
    );
    // Same version, other arch is a different update.
    let mut arm = update("v", "1.1.0");
    arm.arch = "aarch64".into();
    m.add_update(arm).unwrap();
    assert_eq!(m.updates().len(), 6);
}

#[test]
fn set_max_version_and_remove_update() {
    let mut m = Manifest::default();
    m.add_update(update("v", "1.0.0")).unwrap();
    m.add_update(update("v", "1.1.0")).unwrap();
    m.add_update(update("w", "1.1.0")).unwrap();
    assert_eq!(m.set_max_version("v", "x86_64", &v("1.0.0")), 2);
    assert_eq!(m.set_max_version("v", "aarch64", &v("1.0.0")), 0);
    assert!(
        m.updates()
            .iter()
            .filter(|u| u.variant == "v")
            .all(|u| u.max_version == v("1.0.0"))
    );
    assert_eq!(
        m.update("w", "x86_64", &v("1.1.0")).unwrap().max_version,
        v("1.1.0")
    );

    let removed = m.remove_update("v", "x86_64", &v("1.1.0")).unwrap();
    assert_eq!(removed.version, v("1.1.0"));
    assert!(m.update("v", "x86_64", &v("1.1.0")).is_none());
    let err = m.remove_update("v", "x86_64", &v("1.1.0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to find update v/x86_64 1.1.0 in the manifest"
    );
}

#[test]
fn set_waves_replaces_them() {
    let mut m = Manifest::default();
    m.add_update(update("v", "1.0.0")).unwrap();
    let t: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    let waves = Waves::new([(Seed::new(0).unwrap(), t)]).unwrap();
    m.set_waves("v", "x86_64", &v("1.0.0"), waves.clone())
        .unwrap();
    assert_eq!(m.updates()[0].waves, waves);
    assert!(m.set_waves("v", "x86_64", &v("9.0.0"), waves).is_err());
}

#[test]
fn add_migration_refuses_duplicates_and_downward_keys() {
    let mut m = Manifest::default();
    let name = |s: &str| MigrationName::new(s).unwrap();
    m.add_migration(v("1.0.0"), v("1.1.0"), vec![name("a"), name("b")])
        .unwrap();
    let err = m.add_migration(v("1.0.0"), v("1.1.0"), vec![]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to add migrations (1.0.0, 1.1.0): the manifest already lists them"
    );
    assert!(matches!(
        m.add_migration(v("1.1.0"), v("1.1.0"), vec![]),
        Err(Error::MigrationNotAscending { .. })
    ));
    assert_eq!(
        m.migrations()[&(v("1.0.0"), v("1.1.0"))],
        [name("a"), name("b")]
    );
}

fn arb_manifest() -> impl Strategy<Value = Manifest> {
    let update = (
        "[a-z]{1,3}",
        prop_oneof![Just("x86_64"), Just("aarch64")],
        (0u64..3, 0u64..5, 0u64..5),
        0u64..3,
        proptest::collection::btree_map(0u64..2048, 0i64..1_000_000, 0..5),
    );
    let migration = (
        (0u64..5, 0u64..5),
        proptest::collection::vec("[a-z_.]{1,8}", 0..3),
    );
    (
        proptest::collection::vec(update, 0..5),
        proptest::collection::vec(migration, 0..5),
    )
        .prop_map(|(updates, migrations)| {
            let mut m = Manifest::default();
            for (variant, arch, (ma, mi, pa), bump, waves) in updates {
                let mut u = Update::new(variant, arch, Version::new(ma, mi, pa), images("x"));
                u.max_version = Version::new(ma, mi + bump, pa);
                // Times increasing with the seed: cumulative offsets.
                let mut t: Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
                let mut list = Vec::new();
                for (seed, step) in waves {
                    t = t
                        .checked_add(jiff::SignedDuration::from_millis(step + 1))
                        .unwrap();
                    list.push((Seed::new(seed).unwrap(), t));
                }
                u.waves = Waves::new(list).unwrap();
                let _ = m.add_update(u);
            }
            for ((a, b), names) in migrations {
                let names = names
                    .into_iter()
                    .filter_map(|n| MigrationName::new(n).ok())
                    .collect();
                let _ =
                    m.add_migration(Version::new(1, a, 0), Version::new(1, a + b + 1, 0), names);
            }
            m
        })
}

proptest! {
    #[test]
    fn serialise_parse_is_identity(m in arb_manifest()) {
        let json = m.to_json().unwrap();
        let back = Manifest::from_json(json.as_bytes()).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_json().unwrap(), json);
    }
}
