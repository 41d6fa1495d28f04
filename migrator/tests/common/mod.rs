//! Shared helpers for migrator's integration tests: signed repositories published with
//! repo-tools, nodes in a directory with the cache arranged as updog leaves it, test migrations
//! that record every run.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use migrator::{Cache, Datastore, Key, MigrateOptions, Steps};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A publisher with keys, a signed root and a repository of variant demo / x86_64.
pub struct Publisher {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub key: PathBuf,
    published: std::cell::Cell<bool>,
}

impl Publisher {
    pub fn new(work: &Path) -> Publisher {
        let dir = work.join("publisher");
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        let key = dir.join("keys/all.pem");
        repo_tools::keys::generate(repo_tools::keys::KeyType::Ed25519, &key).unwrap();
        let root = dir.join("root.json");
        let expires = repo_tools::time::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * 365))
            .unwrap();
        repo_tools::root::init(&root, repo_tools::time::whole_seconds(expires)).unwrap();
        repo_tools::root::add_key(&root, &key, &repo_tools::root::ROLES).unwrap();
        runtime()
            .block_on(repo_tools::root::sign(
                &root,
                std::slice::from_ref(&key),
                None,
            ))
            .unwrap();
        Publisher {
            dir,
            root,
            key,
            published: std::cell::Cell::new(false),
        }
    }

    pub fn repo(&self) -> repo_tools::repo::RepoDir {
        repo_tools::repo::RepoDir::new(self.dir.join("repo"), "demo", "x86_64")
    }

    /// Publishes `version` with these migration files (compressed by repo-tools).
    pub fn publish(&self, version: &str, migrations: &[PathBuf]) {
        let images = self.dir.join("images").join(version);
        std::fs::create_dir_all(&images).unwrap();
        for name in ["boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"] {
            std::fs::write(images.join(name), format!("{name} {version}")).unwrap();
        }
        let release = repo_tools::publish::Release {
            version: version.parse().unwrap(),
            boot: images.join("boot.ext4.lz4"),
            root: images.join("root.ext4.lz4"),
            hash: images.join("root.verity.lz4"),
            migrations: migrations.to_vec(),
            migrations_from: None,
            max_version: None,
            waves: repo_tools::publish::WaveSpec::None,
        };
        let first = !self.published.get();
        let now = repo_tools::time::now();
        runtime()
            .block_on(repo_tools::publish::publish(
                &self.repo(),
                first.then_some(self.root.as_path()),
                Some(&self.root),
                &release,
                std::slice::from_ref(&self.key),
                repo_tools::sign::Expiries::defaults(now),
                now,
            ))
            .unwrap();
        self.published.set(true);
    }
}

/// A node in a directory.
pub struct Node {
    pub sysroot: PathBuf,
}

impl Node {
    pub fn new(work: &Path, publisher: &Publisher, booted: &str) -> Node {
        let node = Node {
            sysroot: work.join("node"),
        };
        std::fs::create_dir_all(node.sysroot.join("usr/share/updog")).unwrap();
        std::fs::copy(&publisher.root, node.sysroot.join(migrator::TRUSTED_ROOT)).unwrap();
        node.boot(booted);
        node.fill_cache(publisher);
        node
    }

    /// "Boots" a version: writes os-release.
    pub fn boot(&self, version: &str) {
        std::fs::create_dir_all(self.sysroot.join("etc")).unwrap();
        std::fs::write(
            self.sysroot.join(migrator::OS_RELEASE),
            format!("NAME=Demo\nVARIANT_ID=demo\nVERSION_ID={version}\n"),
        )
        .unwrap();
    }

    /// Copies the published repository into the cache as updog leaves it.
    pub fn fill_cache(&self, publisher: &Publisher) {
        let repo = publisher.repo();
        for (from, to) in [
            (repo.metadata_dir(), migrator::CACHE_METADATA),
            (repo.targets_dir(), migrator::CACHE_TARGETS),
        ] {
            let to = self.sysroot.join(to);
            std::fs::create_dir_all(&to).unwrap();
            for entry in std::fs::read_dir(from).unwrap() {
                let entry = entry.unwrap();
                if entry.path().is_file() {
                    std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
                }
            }
        }
    }

    pub fn datastore(&self) -> PathBuf {
        self.sysroot.join(migrator::DATASTORE)
    }

    pub fn targets(&self) -> PathBuf {
        self.sysroot.join(migrator::CACHE_TARGETS)
    }

    pub fn options(&self) -> MigrateOptions {
        self.options_with(Steps::new())
    }

    pub fn options_with(&self, steps: Steps) -> MigrateOptions {
        let version = migrator::read_os_release(&self.sysroot.join(migrator::OS_RELEASE)).unwrap();
        MigrateOptions {
            steps,
            ..MigrateOptions::under_sysroot(&self.sysroot, version)
        }
    }

    pub fn cache(&self) -> Cache {
        self.options().cache
    }

    pub fn current(&self) -> Datastore {
        Datastore::open_current(&self.datastore()).unwrap()
    }

    /// The directory `current` resolves to.
    pub fn current_dir(&self) -> PathBuf {
        std::fs::canonicalize(self.datastore().join("current")).unwrap()
    }

    /// Runs the migrator binary on this node.
    pub fn run_binary(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_migrator"))
            .arg("--sysroot")
            .arg(&self.sysroot)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs the migrator binary from `cwd` with exactly these arguments (no `--sysroot` added),
    /// for paths given relative to `cwd`.
    pub fn run_binary_in(&self, cwd: &Path, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_migrator"))
            .current_dir(cwd)
            .args(args)
            .output()
            .unwrap()
    }
}

/// Every file under a version directory's `live/`, with its bytes.
pub fn live_files(version_dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let live = version_dir.join("live");
    let mut stack = vec![live.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(&live).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

/// The settings of 1.0.0 used by the scenario tests.
pub fn seed_settings(ds: &Datastore) {
    let set = |k: &str, v: serde_json::Value| ds.set(&Key::new(k).unwrap(), &v).unwrap();
    set("settings.hostname", serde_json::json!("node-1"));
    set(
        "settings.ntp.servers",
        serde_json::json!(["a.example.com", "b.example.com"]),
    );
    set(
        "settings.kubernetes.node-labels.\"example.com/role\"",
        serde_json::json!("web"),
    );
    set("settings.motd", serde_json::json!("Welcome"));
    set("settings.legacy-flag", serde_json::json!(true));
    ds.set_metadata(
        &Key::new("settings.ntp").unwrap(),
        &migrator::MetadataKey::new("affected-services").unwrap(),
        &serde_json::json!(["chronyd"]),
    )
    .unwrap();
}

/// Writes an executable `#!/bin/sh` migration that appends "<name> <direction>" to `log` on
/// every run, copies the source to the target and then runs `forward` or `backward` (shell
/// with `$dst` set to the target version directory).
pub fn shell_migration(
    dir: &Path,
    name: &str,
    log: &Path,
    forward: &str,
    backward: &str,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    let or_nothing = |body: &str| {
        if body.trim().is_empty() {
            ":".to_string()
        } else {
            body.to_string()
        }
    };
    let (forward, backward) = (or_nothing(forward), or_nothing(backward));
    let script = format!(
        r#"#!/bin/sh
set -e
while [ $# -gt 0 ]; do
  case "$1" in
    --source-datastore) src="$2"; shift 2 ;;
    --target-datastore) dst="$2"; shift 2 ;;
    --forward) way=forward; shift ;;
    --backward) way=backward; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
echo "{name} $way" >> '{log}'
cp -a "$src" "$dst"
if [ "$way" = forward ]; then
{forward}
else
{backward}
fi
"#,
        log = log.display()
    );
    std::fs::write(&path, script).unwrap();
    path
}

/// Writes a declarative migration document.
pub fn declarative_migration(dir: &Path, name: &str, doc: serde_json::Value) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    path
}

/// The lines of a run log (empty if nothing ran).
pub fn runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Names of the entries in the datastore root, sorted.
pub fn root_entries(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Copies a tree, keeping symlinks as symlinks.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The three releases of the scenario tests: 1.0.0 (no migrations), 1.1.0 (an executable and
/// a declarative migration), 1.2.0 (a declarative migration that drops data). Every
/// executable run is appended to `log`.
pub fn publish_scenario(publisher: &Publisher, work: &Path, log: &Path) {
    let src = work.join("migrations");
    publisher.publish("1.0.0", &[]);
    let exe = shell_migration(
        &src,
        "add-exe-flag",
        log,
        r#"echo '"yes"' > "$dst/live/settings/exe-added""#,
        r#"rm -f "$dst/live/settings/exe-added""#,
    );
    let decl = declarative_migration(
        &src,
        "reshape-ntp.json",
        serde_json::json!({"operations": [
            {"op": "rename", "from": "settings.ntp.servers", "to": "settings.ntp.time-servers"},
            {"op": "add", "key": "settings.motd-color", "value": "blue"},
            {"op": "replace", "key": "settings.motd", "old": "Welcome", "new": "Welcome to 1.1"},
            {"op": "add-metadata", "key": "settings.motd", "metadata": "affected-services", "value": ["motd"]}
        ]}),
    );
    publisher.publish("1.1.0", &[exe, decl]);
    let drop = declarative_migration(
        &src,
        "drop-legacy.json",
        serde_json::json!({"operations": [
            {"op": "remove", "key": "settings.legacy-flag", "default": false},
            {"op": "replace", "key": "settings.hostname", "new": "managed", "default": "localhost"},
            {"op": "remove-metadata", "key": "settings.ntp", "metadata": "affected-services", "default": ["chronyd"]}
        ]}),
    );
    publisher.publish("1.2.0", &[drop]);
}
