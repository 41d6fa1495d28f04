//! Shared helpers for updog's integration tests: a published repository served on loopback, a
//! node directory booted from set A, running the `updog` binary, and the checks every refused
//! install must pass.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use signpost::SetId;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;
use testsys::{BuiltRelease, Fault, HttpServer, LoggedRequest, PublishOptions, TestNode};

pub use testsys::{block_on, tools_present};

testsys::served_world! {
    /// A repository with 1.0.0 published, a server, and a node booted from 1.0.0 in set A
    /// (`testsys::ServedNode`, seed 42), with updog's own helpers.
    pub struct World;
}

impl World {
    /// The file name of [`World::target_file`]: what the server's faults and log match.
    pub fn target_name(&self, suffix: &str) -> String {
        let path = self.target_file(suffix);
        path.file_name().unwrap().to_string_lossy().into_owned()
    }

    /// Injects `fault` into the answers for the served target ending in `suffix` (published
    /// already), for the next `times` answers or all; returns the target's file name, which the
    /// server's log shows.
    pub fn fault_on_target(&self, suffix: &str, fault: Fault, times: Option<u32>) -> String {
        let name = self.target_name(suffix);
        self.server.inject(&name, fault, times);
        name
    }

    /// [`World::fault_on_target`] for 1.1.0's ROOT image.
    pub fn fault_on_root(&self, fault: Fault, times: Option<u32>) -> String {
        self.fault_on_target("1.1.0-root.ext4.lz4", fault, times)
    }

    /// Serves the target ending in `suffix` (published already) with its bytes changed by
    /// `edit`, in every answer; returns the target's file name.
    pub fn serve_edited(&self, suffix: &str, edit: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut bytes = std::fs::read(self.target_file(suffix)).unwrap();
        edit(&mut bytes);
        self.fault_on_target(suffix, Fault::Replace(bytes), None)
    }

    /// Publishes `release` with the default options.
    pub fn publish(&self, release: &BuiltRelease) {
        self.repo
            .publish(release, &PublishOptions::default())
            .unwrap();
    }

    /// Points the node's `etc/updog.toml` at the repository's file:// URLs (seed 42), so that
    /// nothing goes over HTTP.
    pub fn use_file_urls(&self) {
        let (metadata, targets) = self.repo.repo_dir().urls().unwrap();
        std::fs::write(
            self.node.sysroot.join("etc/updog.toml"),
            format!(
                "metadata_base_url = \"{metadata}\"\ntargets_base_url = \"{targets}\"\nseed = 42\n"
            ),
        )
        .unwrap();
    }

    /// Runs updog against the node.
    pub fn updog(&self, args: &[&str]) -> Output {
        updog(&self.node.sysroot, args)
    }

    /// `updog update-image --progress none` against the node, to run as the test needs.
    pub fn update_image_command(&self) -> Command {
        testsys::updog_command(&self.node.sysroot, &["update-image", "--progress", "none"])
    }

    /// The node's update lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.node.sysroot.join("run/updog.lock")
    }

    /// The bytes of updog's trusted-state file: the version floor.
    pub fn trusted_state_bytes(&self) -> Vec<u8> {
        std::fs::read(self.node.sysroot.join("var/lib/updog/trusted-state.json")).unwrap()
    }

    /// updog's trusted-state file, parsed.
    pub fn trusted_state(&self) -> updog::TrustedState {
        serde_json::from_slice(&self.trusted_state_bytes()).unwrap()
    }

    /// A copy of the served repository directory, to serve again later.
    pub fn save_repo(&self, name: &str) -> PathBuf {
        let copy = self.work.path().join(name);
        copy_dir(&self.repo.base(), &copy);
        copy
    }

    /// Serves `copy` (made by `save_repo`) in place of the current repository.
    pub fn serve_copy(&self, copy: &Path) {
        let base = self.repo.base();
        std::fs::remove_dir_all(&base).unwrap();
        copy_dir(copy, &base);
    }

    /// The metadata directory served.
    pub fn metadata_dir(&self) -> PathBuf {
        self.repo.repo_dir().metadata_dir()
    }
}

/// Runs the updog binary with `--sysroot sysroot`.
pub fn updog(sysroot: &Path, args: &[&str]) -> Output {
    testsys::run_updog(sysroot, args).unwrap()
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "updog failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a refusal: exit code 1 and exactly one line on stderr, `updog: Failed ...`,
/// containing every one of `needles`. Returns the line.
pub fn refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "expected a refusal: {stderr}");
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "one line expected on stderr: {stderr}");
    let line = lines[0];
    assert!(line.starts_with("updog: Failed to "), "{line}");
    for needle in needles {
        assert!(line.contains(needle), "'{needle}' not in: {line}");
    }
    line.to_string()
}

/// The active set's BOOT, ROOT and HASH bytes (hashed) and their GPT entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveFingerprint(Vec<String>);

pub fn active_fingerprint(node: &TestNode) -> ActiveFingerprint {
    let disk = node.signpost().unwrap();
    let parts = disk.partitions(SetId::A).clone();
    let mut out = Vec::new();
    for (which, part) in [
        ("boot", &parts.boot),
        ("root", &parts.root),
        ("hash", &parts.hash),
    ] {
        let bytes = node
            .read_partition(SetId::A, which, part.size_bytes())
            .unwrap();
        out.push(hex::encode(Sha256::digest(&bytes)));
        out.push(format!("{:?}", disk.table().entry(part.number).unwrap()));
    }
    ActiveFingerprint(out)
}

/// Set B holds `release` byte for byte and is staged: valid with one try, not yet applied.
pub fn assert_installed(node: &TestNode, release: &BuiltRelease) {
    assert_eq!(
        node.images_differing(SetId::B, release).unwrap(),
        Vec::<&str>::new(),
        "set B differs from the release"
    );
    let b = node.signpost().unwrap().flags(SetId::B);
    assert_eq!(
        (b.priority.get(), b.tries_left.get(), b.successful),
        (0, 1, false)
    );
}

/// The inactive set B is unbootable: priority 0, tries 0, not successful.
pub fn assert_inactive_unbootable(node: &TestNode) {
    let flags = node.signpost().unwrap().flags(SetId::B);
    assert!(
        flags.priority.is_zero() && flags.tries_left.is_zero() && !flags.successful,
        "set B should be unbootable: {flags}"
    );
}

/// Runs `run`, an updog run that ends in a refusal, and checks what a user sees: [`refused`]
/// with `needles`, `set_b` holding for set B (say [`assert_inactive_unbootable`]), set A's
/// partitions and GPT entries unchanged, and the lock file naming no holder. Returns the error
/// line.
pub fn assert_refused_with(
    world: &World,
    needles: &[&str],
    set_b: impl FnOnce(&TestNode),
    run: impl FnOnce() -> Output,
) -> String {
    let before = active_fingerprint(&world.node);
    let line = refused(&run(), needles);
    eprintln!("refused: {line}");
    set_b(&world.node);
    assert_eq!(active_fingerprint(&world.node), before, "set A changed");
    let lock = world.lock_file();
    let holder = if lock.exists() {
        std::fs::read_to_string(&lock).unwrap()
    } else {
        String::new()
    };
    assert!(
        holder.is_empty(),
        "the lock file still names a holder: {holder}"
    );
    line
}

/// Runs `update-image` and checks it is refused with a one-line error containing `needles`,
/// set B left unbootable and set A unchanged. Returns the error line.
pub fn assert_install_refused(world: &World, needles: &[&str]) -> String {
    assert_command_refused(world, world.update_image_command(), needles)
}

/// [`assert_install_refused`] for an updog command the test built (its own environment, say).
pub fn assert_command_refused(world: &World, mut command: Command, needles: &[&str]) -> String {
    assert_refused_with(world, needles, assert_inactive_unbootable, || {
        command.output().unwrap()
    })
}

/// Makes every answer for the served target ending in `suffix` trickle after 4000 bytes (16
/// bytes every 50 ms, 320 bytes/s: never still long enough for the read timeout, never done),
/// and checks that `update-image` with a minimum rate of 2000 bytes a second over each second
/// of waiting (a body that trickles is cut off in a second instead of a minute) is refused
/// naming the target, the rate and the tries. Returns the target's file name and the line.
pub fn assert_trickle_refused(world: &World, suffix: &str) -> (String, String) {
    let name = world.fault_on_target(
        suffix,
        Fault::TrickleAfter(4000, Duration::from_millis(50)),
        None,
    );
    let mut command = world.update_image_command();
    command
        .env("UPDOG_LOW_SPEED_LIMIT", "2000")
        .env("UPDOG_LOW_SPEED_TIME_MS", "1000");
    let line = assert_command_refused(
        world,
        command,
        &[&name, "slower than 2000 bytes/s", "tries"],
    );
    (name, line)
}

/// Asserts that `program` was refused because the update lock is held: exit code 4 and the one
/// line naming `lock` and its holder, pid `holder` running `updog update-image`.
pub fn locked(out: &Output, program: &str, lock: &Path, holder: u32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{program}: {stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "{program}: Failed to take the update lock '{}': it is held by pid {holder} (updog update-image)",
            lock.display(),
        )
    );
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Writes an lz4 frame of `src` bytes to `dst`.
pub fn lz4_file(bytes: impl std::io::Read, dst: &Path) {
    let mut input = bytes;
    let file = std::fs::File::create(dst).unwrap();
    let mut enc = lz4_flex::frame::FrameEncoder::new(file);
    std::io::copy(&mut input, &mut enc).unwrap();
    enc.finish().unwrap();
}

/// A release like `base` but with other lz4 image files (what publishing reads).
pub fn with_images(
    base: &BuiltRelease,
    version: &str,
    boot: Option<&Path>,
    root: Option<&Path>,
    hash: Option<&Path>,
) -> BuiltRelease {
    let mut release = base.clone();
    release.version = version.parse().unwrap();
    if let Some(p) = boot {
        release.images.boot.lz4_path = p.to_path_buf();
    }
    if let Some(p) = root {
        release.images.root.lz4_path = p.to_path_buf();
    }
    if let Some(p) = hash {
        release.images.hash.lz4_path = p.to_path_buf();
    }
    release
}

/// Publishes `release` with repo-tools directly: signed by `keys`, at time `now`.
pub fn publish_at(world: &World, release: &BuiltRelease, keys: &[PathBuf], now: jiff::Timestamp) {
    let images = &release.images;
    let spec = repo_tools::publish::Release {
        version: release.version.clone(),
        boot: images.boot.lz4_path.clone(),
        root: images.root.lz4_path.clone(),
        hash: images.hash.lz4_path.clone(),
        migrations: Vec::new(),
        migrations_from: None,
        max_version: None,
        waves: repo_tools::publish::WaveSpec::None,
    };
    block_on(repo_tools::publish::publish(
        &world.repo.repo_dir(),
        None,
        Some(&world.repo.root_json),
        &spec,
        keys,
        repo_tools::sign::Expiries::defaults(now),
        now,
    ))
    .unwrap();
}

/// Rotates the repository's root to N+1: a new key replaces the old one for `roles`; signed by
/// the old and new keys. Returns the new key.
pub fn rotate_root(world: &World, roles: &[tough::schema::RoleType], name: &str) -> PathBuf {
    let repo_dir = world.repo.repo_dir();
    let new_key = world.work.path().join(format!("{name}.pem"));
    repo_tools::keys::generate(repo_tools::keys::KeyType::Ed25519, &new_key).unwrap();
    let (version, latest) = repo_dir.latest_root().unwrap().unwrap();
    let new_root = world.work.path().join(format!("{name}.root.json"));
    std::fs::copy(&latest, &new_root).unwrap();
    let old_id = repo_tools::keys::key_id(&world.repo.key).unwrap();
    repo_tools::root::remove_key(&new_root, &old_id, roles).unwrap();
    repo_tools::root::add_key(&new_root, &new_key, roles).unwrap();
    repo_tools::root::set_version(&new_root, std::num::NonZeroU64::new(version + 1).unwrap())
        .unwrap();
    let keys = [world.repo.key.clone(), new_key.clone()];
    block_on(repo_tools::root::sign(&new_root, &keys, Some(&latest))).unwrap();
    let now = repo_tools::time::now();
    block_on(repo_tools::publish::rotate_root(
        &repo_dir,
        Some(&world.repo.root_json),
        &new_root,
        &keys,
        repo_tools::sign::Expiries::defaults(now),
        now,
    ))
    .unwrap();
    new_key
}

/// The logged requests for paths ending in `suffix`.
pub fn requests_for(server: &HttpServer, suffix: &str) -> Vec<LoggedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(suffix))
        .collect()
}

/// Waits until the server has sent body bytes of a path ending in `suffix` (a run that never
/// gets there ends at the test runner's timeout).
pub fn wait_for_body(server: &HttpServer, suffix: &str) {
    while !requests_for(server, suffix)
        .iter()
        .any(|r| r.body_bytes > 0)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to `child` (what `systemctl stop` does) and waits for its output.
pub fn sigterm(child: Child) -> Output {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}
