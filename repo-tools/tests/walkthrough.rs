//! The walkthrough of docs/publishing.md, run as written: keys, root, two releases with a
//! migration, validate, refresh, change waves, rotate the root.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;

#[test]
fn the_documented_walkthrough_publishes_validates_refreshes_and_rotates() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/publishing.md"
    ))
    .unwrap();
    let blocks = shell_blocks(&doc, "Walkthrough");
    assert!(
        blocks.len() >= 7,
        "walkthrough has {} shell blocks",
        blocks.len()
    );

    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    if ["mkfs.ext4", "debugfs"]
        .iter()
        .any(|t| test_tools::require_tool(t).is_none())
    {
        return;
    }
    real_images(dir, "1.0.0");
    real_images(dir, "1.1.0");
    add_motd_migration(dir);

    let bin_dir = repo_tool().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (i, block) in blocks.iter().enumerate() {
        let out = Command::new("bash")
            .arg("-euo")
            .arg("pipefail")
            .arg("-c")
            .arg(block)
            .current_dir(dir)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "block {i} failed:\n{block}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let meta = dir.join("repo/demo/x86_64");
    for file in ["1.root.json", "2.root.json", "timestamp.json"] {
        assert!(meta.join(file).is_file(), "{file} missing");
    }
    // The manifest as a client reads it: both releases, the migration, max_version raised.
    let manifest = read_manifest(dir);
    let versions: Vec<String> = manifest
        .updates()
        .iter()
        .map(|u| u.version.to_string())
        .collect();
    assert_eq!(versions, ["1.0.0", "1.1.0"]);
    assert!(
        manifest
            .updates()
            .iter()
            .all(|u| u.max_version.to_string() == "1.1.0")
    );
    let path = manifest
        .migration_path(&"1.0.0".parse().unwrap(), &"1.1.0".parse().unwrap())
        .unwrap();
    assert_eq!(
        path.migrations
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>(),
        ["migrate_v1.1.0_add-motd.json.lz4"]
    );
    // The last waves change let everyone in.
    assert!(manifest.updates()[1].waves.is_empty());
    let svg = std::fs::read_to_string(dir.join("waves.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
}

/// Builds a release's images with the project's image builder and puts the lz4 files where the
/// walkthrough expects them.
fn real_images(dir: &std::path::Path, version: &str) {
    let spec = image_builder::ReleaseSpec::new(
        version.parse().unwrap(),
        "demo",
        "x86_64",
        b"{\"signed\": {}}".to_vec(),
    );
    let built = image_builder::build_release(&spec, &dir.join("build").join(version)).unwrap();
    let out = dir.join("images").join(version);
    std::fs::create_dir_all(&out).unwrap();
    for (image, name) in [
        (&built.boot, "boot.ext4.lz4"),
        (&built.root, "root.ext4.lz4"),
        (&built.hash, "root.verity.lz4"),
    ] {
        std::fs::copy(&image.lz4_path, out.join(name)).unwrap();
    }
}
