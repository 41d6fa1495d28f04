//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use image_builder::ReleaseSpec;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// The TUF root the tests ship.
pub const ROOT_JSON: &[u8] = br#"{"signed":{"_type":"root","version":1},"signatures":[]}"#;

/// Content of a file whose data blocks a test looks for in the ROOT image.
pub fn marker_content() -> Vec<u8> {
    b"MARKER-7f3c9a-"
        .iter()
        .copied()
        .cycle()
        .take(3 * 4096)
        .collect()
}

/// Whether the tools that build images are here (skips outside CI, fails under CI).
pub fn have_tools() -> bool {
    test_tools::require_tool("mkfs.ext4").is_some() && test_tools::require_tool("debugfs").is_some()
}

/// A scratch directory with [`make_tree`]'s tree in its `tree/`, or `None` when the tools are
/// missing (outside CI: [`have_tools`] fails the test under CI).
pub fn scratch_tree() -> Option<(tempfile::TempDir, PathBuf)> {
    if !have_tools() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    make_tree(&tree);
    Some((dir, tree))
}

/// A small root tree: a config file, an executable, a symlink and a marker file.
pub fn make_tree(dir: &Path) {
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::write(dir.join("etc/motd"), "welcome\n").unwrap();
    fs::write(dir.join("usr/bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    fs::set_permissions(dir.join("usr/bin/hello"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("../usr/bin/hello", dir.join("etc/hello")).unwrap();
    fs::write(dir.join("usr/marker.bin"), marker_content()).unwrap();
}

/// A spec for version 1.2.3 of variant `dev` with `tree` as the root tree.
pub fn spec(tree: &Path) -> ReleaseSpec {
    let mut spec = ReleaseSpec::new(
        semver::Version::new(1, 2, 3),
        "dev",
        "x86_64",
        ROOT_JSON.to_vec(),
    );
    spec.root_tree = Some(tree.to_path_buf());
    spec
}
