//! Shared helpers: a publisher with releases, a node booted on the first one, and updates staged
//! by hand (writing the images into the inactive set) for tests that do not involve updog.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use signpost::SetId;
use std::path::{Path, PathBuf};
use testsys::{BuiltRelease, NodeSpec, PublishOptions, TestNode, TestRepo};

/// Health checks that pass.
pub const HEALTHY: &str = "[[check]]\nname = \"always\"\ncommand = [\"true\"]\n";
/// Health checks that fail with a message.
pub const UNHEALTHY: &str = "[[check]]\nname = \"kubelet\"\ncommand = [\"sh\", \"-c\", \"echo 'kubelet did not start' >&2; exit 1\"]\n";
/// A health check that hangs past its timeout.
pub const HANGS: &str =
    "[[check]]\nname = \"hangs\"\ncommand = [\"sleep\", \"60\"]\ntimeout_secs = 1\n";

pub use testsys::tools_present;

pub struct World {
    pub dir: tempfile::TempDir,
    pub repo: TestRepo,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let repo = TestRepo::create(&dir.path().join("publisher"), "demo", "x86_64").unwrap();
        World { dir, repo }
    }

    /// Builds and publishes a release whose image carries `checks` and `files`.
    pub fn release(&self, version: &str, checks: &str, migrations: &[PathBuf]) -> BuiltRelease {
        let files: Vec<(&str, &[u8])> = vec![
            ("etc/twinset/health-checks.toml", checks.as_bytes()),
            ("etc/motd", version.as_bytes()),
        ];
        let options = PublishOptions {
            migrations: migrations.to_vec(),
            ..PublishOptions::default()
        };
        self.repo.release(version, &files, &options).unwrap()
    }

    /// A declarative migration file that sets `motd.text` going up (removing it going down).
    pub fn add_setting_migration(&self, name: &str, key: &str, value: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.json"));
        let doc = serde_json::json!({
            "operations": [ { "op": "add", "key": key, "value": value } ]
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        path
    }

    pub fn node(&self, first: &BuiltRelease) -> TestNode {
        TestNode::create(&self.dir.path().join("node"), first, &NodeSpec::default()).unwrap()
    }
}

/// Copies the whole published repository into the node's migration cache, as updog leaves it.
pub fn fill_cache(node: &TestNode, repo: &TestRepo) {
    let meta = node.sysroot.join("var/cache/updog/metadata");
    let targets = node.sysroot.join("var/lib/updog/migrations");
    for (from, to) in [
        (repo.repo_dir().metadata_dir(), meta),
        (repo.repo_dir().targets_dir(), targets),
    ] {
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// Writes `release` into the inactive set, marks it valid and flips to it, as `updog update`
/// would (tests of updog itself prove updog does this right).
pub fn stage(node: &TestNode, repo: &TestRepo, release: &BuiltRelease) {
    let active = active_set(node);
    let inactive = active.other();
    {
        let mut disk = node.signpost().unwrap().with_active(active);
        disk.clear_inactive().unwrap();
    }
    node.write_release(inactive, release).unwrap();
    let mut disk = node.signpost().unwrap().with_active(active);
    disk.mark_inactive_valid().unwrap();
    disk.upgrade_to_inactive().unwrap();
    fill_cache(node, repo);
}

/// The set the last boot recorded.
pub fn active_set(node: &TestNode) -> SetId {
    let marker = std::fs::read_to_string(node.sysroot.join("run/booted-set")).unwrap();
    let disk = node.signpost().unwrap();
    SetId::ALL
        .into_iter()
        .find(|s| disk.partitions(*s).boot.unique_guid.to_string() == marker.trim())
        .unwrap()
}

/// The datastore's live value of a key, as JSON text.
pub fn setting(sysroot: &Path, key: &str) -> Option<String> {
    let store = migrator::Datastore::open_current(&sysroot.join("var/lib/datastore")).unwrap();
    store
        .get(&migrator::Key::new(key).unwrap())
        .unwrap()
        .map(|v| v.to_string())
}

/// The datastore's version.
pub fn datastore_version(sysroot: &Path) -> String {
    migrator::status(&sysroot.join("var/lib/datastore"))
        .unwrap()
        .unwrap()
        .version
        .to_string()
}
