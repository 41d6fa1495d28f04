//! `manifest.json`, as a repository serves it.

use update_metadata::{ChoiceOptions, Direction, Manifest, Node, Seed};

/// Parses `data` as a manifest. An error is one line; what parses must serialise to a fixed point that parses back
/// equal; every wave's ready time lies within its wave; choosing an update and walking a
/// migration path never panic, and a path reversed is the path back.
pub fn manifest(data: &[u8]) {
    let manifest = match Manifest::from_json(data) {
        Ok(manifest) => manifest,
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.contains('\n'),
                "a manifest error spans lines: {message:?}"
            );
            return;
        }
    };
    let json = manifest.to_json().expect("a parsed manifest serialises");
    let again = Manifest::from_json(json.as_bytes()).expect("a serialised manifest parses");
    assert_eq!(
        again, manifest,
        "the manifest changed through to_json:\n{json}"
    );
    assert_eq!(
        again.to_json().unwrap(),
        json,
        "to_json is not a fixed point"
    );

    let seeds = [0, 1, 511, 1024, 2047].map(|s| Seed::new(s).unwrap());
    let mut versions = Vec::new();
    for update in manifest.updates().iter().take(8) {
        versions.push(update.version.clone());
        let waves: Vec<_> = update.waves.iter().collect();
        for seed in seeds {
            if let Some(ready) = update.waves.ready_time(seed) {
                // Within the seed's wave: not before its start, not after the next one's.
                let (_, start) = waves.iter().rev().find(|(key, _)| *key <= seed).unwrap();
                assert!(ready >= *start, "seed {} ready before its wave", seed.get());
                if let Some((_, next)) = waves.iter().find(|(key, _)| *key > seed) {
                    assert!(ready <= *next, "seed {} ready after its wave", seed.get());
                }
            }
            let node = Node {
                variant: update.variant.clone(),
                arch: update.arch.clone(),
                version: update.version.clone(),
                seed,
            };
            for now in waves.iter().map(|(_, t)| *t).chain([jiff::Timestamp::MAX]) {
                if let Some(chosen) = manifest.choose(&node, now, &ChoiceOptions::default()) {
                    assert!(chosen.is_for(&node.variant, &node.arch));
                    assert!(chosen.version <= chosen.max_version);
                }
            }
        }
    }
    for ((from, to), _) in manifest.migrations().iter().take(8) {
        versions.push(from.clone());
        versions.push(to.clone());
    }
    for a in &versions {
        for b in &versions {
            let (Ok(up), Ok(down)) = (manifest.migration_path(a, b), manifest.migration_path(b, a))
            else {
                continue;
            };
            if a != b {
                assert_ne!(up.direction, down.direction);
            }
            let mut reversed = up.migrations.clone();
            reversed.reverse();
            assert_eq!(
                reversed, down.migrations,
                "path {a} -> {b} reversed is not the way back"
            );
            if a < b {
                assert_eq!(up.direction, Direction::Forward);
            }
        }
    }
}
