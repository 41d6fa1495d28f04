//! Shared helpers: a publisher with releases, a node booted on the first one, and updates staged
//! by hand (writing the images into the inactive set) for tests that do not involve updog.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use node_sim::{BootRecord, Node, Outcome};
use signpost::SetId;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use testsys::{BuiltRelease, HttpServer, NodeSpec, PublishOptions, TestNode, TestRepo, binary};

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

    /// Publishes 1.0.0, its image carrying the health checks `checks`, and creates a node from
    /// it, not booted yet: the release, the node, and the node's boot lifecycle run in this
    /// process.
    pub fn first_node(&self, checks: &str) -> (BuiltRelease, TestNode, Node) {
        let first = self.release("1.0.0", checks, &[]);
        let node =
            TestNode::create(&self.dir.path().join("node"), &first, &NodeSpec::default()).unwrap();
        let sim = Node::open(&node.sysroot, None).unwrap();
        (first, node, sim)
    }

    /// Publishes 1.0.0 (healthy), serves the repository and creates a node whose updog follows
    /// it with `seed`, and whose reboot command does nothing (the test boots the node itself).
    /// Boots it once, healthy, and sets `settings.motd` to "hello".
    pub fn online_node(&self, seed: u32) -> (HttpServer, TestNode) {
        let first = self.release("1.0.0", HEALTHY, &[]);
        let server = HttpServer::serve(&self.repo.base()).unwrap();
        let spec = NodeSpec {
            urls: Some(self.repo.urls(&server.url())),
            seed: Some(seed),
            ..NodeSpec::default()
        };
        let node = TestNode::create(&self.dir.path().join("node"), &first, &spec).unwrap();
        let toml = node.sysroot.join("etc/updog.toml");
        let config = std::fs::read_to_string(&toml).unwrap() + "reboot_command = [\"true\"]\n";
        std::fs::write(&toml, config).unwrap();
        assert_eq!(boot_record(&node.sysroot).outcome, Outcome::Healthy);
        migrator::Datastore::open_current(&node.sysroot.join("var/lib/datastore"))
            .unwrap()
            .set(
                &migrator::Key::new("settings.motd").unwrap(),
                &serde_json::json!("hello"),
            )
            .unwrap();
        (server, node)
    }
}

/// `<name> --sysroot <sysroot> <args>`: the binary `name` of workspace package `package`.
pub fn command(package: &str, name: &str, sysroot: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary(package, name));
    command.arg("--sysroot").arg(sysroot).args(args);
    command
}

/// Runs [`command`] to completion.
pub fn run(package: &str, name: &str, sysroot: &Path, args: &[&str]) -> Output {
    command(package, name, sysroot, args).output().unwrap()
}

/// Runs `node-sim --sysroot <sysroot> <args>` to completion.
pub fn node_sim(sysroot: &Path, args: &[&str]) -> Output {
    run("node-sim", "node-sim", sysroot, args)
}

/// Asserts that a run succeeded (showing its stderr when not) and returns its stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `node-sim boot --json`: asserts that the node booted (exit 0, or 10 exactly when the boot
/// failed and asks for a reboot) and returns the boot's record.
pub fn boot_record(sysroot: &Path) -> BootRecord {
    let out = node_sim(sysroot, &["boot", "--json"]);
    assert!(
        matches!(out.status.code(), Some(0 | 10)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records: Vec<BootRecord> = serde_json::from_slice(&out.stdout).unwrap();
    let record = records.pop().unwrap();
    let code = if record.outcome.needs_reboot() { 10 } else { 0 };
    assert_eq!(out.status.code(), Some(code), "{record:?}");
    record
}

/// Flips one byte of the first data block of a set's ROOT that starts with `content` (a file's
/// data: `etc/motd` holds the release's version), as a bad disk would.
pub fn corrupt_root_block(node: &TestNode, set: SetId, content: &[u8]) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let root = node.signpost().unwrap().partitions(set).root.clone();
    let mut disk = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&node.disk)
        .unwrap();
    let mut block = vec![0u8; 4096];
    for n in 0..(root.size_bytes() / 4096) {
        let at = root.byte_range().start + n * 4096;
        disk.seek(SeekFrom::Start(at)).unwrap();
        disk.read_exact(&mut block).unwrap();
        if block.starts_with(content) {
            block[0] ^= 0x01;
            disk.seek(SeekFrom::Start(at)).unwrap();
            disk.write_all(&block).unwrap();
            return;
        }
    }
    panic!(
        "no block of ROOT starts with '{}'",
        String::from_utf8_lossy(content)
    );
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
