//! Shared helpers for repo-tools' integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// The walkthrough's repository and publish arguments, shared with the conformance client's
// tests; not every test binary uses each of them.
#[allow(unused_imports)]
pub use test_tools::tuf::{SIGN, on_repo, publish_args, publish_args_for, strs};

/// The repo-tool binary under test.
pub fn repo_tool() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_repo-tool"))
}

/// Runs repo-tool in `dir` with `args`.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(repo_tool())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run repo-tool")
}

/// Runs repo-tool and insists it succeeds; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    test_tools::run_in(&repo_tool(), dir, args)
}

/// Runs repo-tool and insists it fails with exit code 1 and one line on stderr; returns it.
pub fn fails(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(1), "repo-tool {args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    stderr.trim_end().to_string()
}

/// Runs repo-tool expecting a refusal: exit 1, one line on stderr starting with `starts`, and
/// every file in `dir` as it was. Returns the line.
pub fn refused(dir: &Path, args: &[&str], starts: &str) -> String {
    let before = snapshot(dir);
    let line = fails(dir, args);
    assert!(
        line.starts_with(starts),
        "repo-tool {args:?}:\n  expected: {starts}…\n  got:      {line}"
    );
    let after = snapshot(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "repo-tool {args:?} added or removed files"
    );
    for (path, bytes) in &before {
        assert!(after[path] == *bytes, "repo-tool {args:?} changed {path:?}");
    }
    line
}

/// Runs `repo-tool validate` on `repo/` (demo/x86_64) from `root.json` and insists it passes.
pub fn validate_ok(dir: &Path) {
    let out = ok(
        dir,
        &on_repo(&["validate"], &["--trusted-root", "root.json"]),
    );
    assert!(out.starts_with("valid: "), "{out}");
}

/// Every file under `dir` with its contents, and every directory (with no contents), to show
/// that a refused command wrote nothing, not even an empty directory.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.insert(path.clone(), Vec::new());
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Writes small lz4-compressed stand-in images for a release (the repository tooling treats
/// images as opaque targets; the node tests use real ext4 images).
pub fn fake_images(dir: &Path, version: &str) {
    let out = dir.join("images").join(version);
    std::fs::create_dir_all(&out).unwrap();
    for name in ["boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"] {
        let data = format!("{name} of {version}\n").repeat(1000);
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut enc, data.as_bytes()).unwrap();
        std::fs::write(out.join(name), enc.finish().unwrap()).unwrap();
    }
}

/// The ```sh blocks of a markdown section, in order.
pub fn shell_blocks(markdown: &str, section: &str) -> Vec<String> {
    let start = markdown
        .find(&format!("\n## {section}\n"))
        .unwrap_or_else(|| panic!("no section '{section}'"));
    let rest = &markdown[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    test_tools::fenced_blocks(&rest[..end], "sh")
}

/// The walkthrough's two root keys (threshold 2).
pub const ROOT_KEYS: [&str; 2] = ["keys/root-1.pem", "keys/root-2.pem"];

/// Signs `root.json` with both root keys, as step 1 of the walkthrough does.
pub fn sign_root(dir: &Path) {
    let mut args = vec!["root", "sign", "root.json"];
    for key in ROOT_KEYS {
        args.extend(["--key", key]);
    }
    ok(dir, &args);
}

/// Gives `root.json` a second timestamp key, `keys/timestamp-2.pem`, and a timestamp threshold
/// of two (not yet signed: call [`sign_root`]).
pub fn second_timestamp_key(dir: &Path) {
    ok(dir, &["key", "generate", "--out", "keys/timestamp-2.pem"]);
    ok(
        dir,
        &[
            "root",
            "add-key",
            "root.json",
            "--key",
            "keys/timestamp-2.pem",
            "--role",
            "timestamp",
        ],
    );
    ok(
        dir,
        &["root", "set-threshold", "root.json", "timestamp", "2"],
    );
}

/// The walkthrough's migration, `migrations/add-motd.json` (one that changes nothing).
pub fn add_motd_migration(dir: &Path) {
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::write(
        dir.join("migrations/add-motd.json"),
        b"{\"operations\": []}\n",
    )
    .unwrap();
}

/// Keys and a signed root as step 1 of the walkthrough makes them: `keys/root-1.pem` (ed25519)
/// and `keys/root-2.pem` (ECDSA P-256) for root with threshold 2, `keys/publish.pem` for targets
/// and snapshot, and `keys/timestamp.pem` (of `timestamp_type`) for timestamp, in `root.json`.
pub fn keys_and_root(dir: &Path, timestamp_type: &str) {
    ok(dir, &["key", "generate", "--out", "keys/root-1.pem"]);
    ok(
        dir,
        &[
            "key",
            "generate",
            "--out",
            "keys/root-2.pem",
            "--type",
            "ecdsa-p256",
        ],
    );
    ok(dir, &["key", "generate", "--out", "keys/publish.pem"]);
    ok(
        dir,
        &[
            "key",
            "generate",
            "--out",
            "keys/timestamp.pem",
            "--type",
            timestamp_type,
        ],
    );
    ok(dir, &["root", "init", "root.json", "--expires", "52 weeks"]);
    for (key, roles) in [
        ("keys/root-1.pem", &["root"][..]),
        ("keys/root-2.pem", &["root"][..]),
        ("keys/publish.pem", &["targets", "snapshot"][..]),
        ("keys/timestamp.pem", &["timestamp"][..]),
    ] {
        let mut args = vec!["root", "add-key", "root.json", "--key", key];
        for role in roles {
            args.extend(["--role", role]);
        }
        ok(dir, &args);
    }
    ok(dir, &["root", "set-threshold", "root.json", "root", "2"]);
    sign_root(dir);
}

/// A repository as steps 1 to 3 of the walkthrough leave it: keys and root (see
/// [`keys_and_root`]), release 1.0.0 without waves, and 1.1.0 with the migration
/// `migrations/add-motd.json` and `waves.toml` (5 %, 25 %, 100 % after an hour, a day, three days)
/// starting at `waves_start`.
pub fn two_releases(dir: &Path, timestamp_type: &str, waves_start: &str) {
    keys_and_root(dir, timestamp_type);
    fake_images(dir, "1.0.0");
    fake_images(dir, "1.1.0");
    add_motd_migration(dir);
    std::fs::write(
        dir.join("waves.toml"),
        "[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 5\n\
         [[waves]]\nstart_after = '1 day'\nfleet_percentage = 25\n\
         [[waves]]\nstart_after = '3 days'\nfleet_percentage = 100\n",
    )
    .unwrap();
    let mut extra = vec!["--root", "root.json", "--no-waves"];
    extra.extend(SIGN);
    ok(dir, &strs(&publish_args("1.0.0", &extra)));
    let mut extra = vec![
        "--migration",
        "migrations/add-motd.json",
        "--wave-policy",
        "waves.toml",
        "--waves-start",
        waves_start,
    ];
    extra.extend(SIGN);
    ok(dir, &strs(&publish_args("1.1.0", &extra)));
}

/// Loads `repo/` (demo/x86_64) from `root.json` as a client would, expiry enforced.
pub fn load_repo(dir: &Path) -> tough::Repository {
    block_on(async {
        repo_tools::repo::RepoDir::new(dir.join("repo"), "demo", "x86_64")
            .load(&dir.join("root.json"), tough::ExpirationEnforcement::Safe)
            .await
            .unwrap()
    })
}

/// The published manifest, read through the library as the walkthrough test does.
pub fn read_manifest(dir: &Path) -> update_metadata::Manifest {
    let repo = load_repo(dir);
    block_on(async {
        repo_tools::publish::load_manifest(Some(&repo))
            .await
            .unwrap()
    })
}

/// Runs a future on a fresh current-thread runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Every target the repository lists: name → (length, sha256 in hex).
pub fn published_targets(repo: &tough::Repository) -> BTreeMap<String, (u64, String)> {
    repo.all_targets()
        .map(|(name, target)| {
            (
                name.raw().to_string(),
                (
                    target.length,
                    hex::encode(target.hashes.sha256.as_ref() as &[u8]),
                ),
            )
        })
        .collect()
}

/// The file under `repo/targets/` holding target `name` (`<sha256>.<name>`).
pub fn target_file(dir: &Path, name: &str) -> PathBuf {
    let suffix = format!(".{name}");
    std::fs::read_dir(dir.join("repo/targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .split_once('.')
                .is_some_and(|(sha, rest)| sha.len() == 64 && format!(".{rest}") == suffix)
        })
        .unwrap_or_else(|| panic!("no target file for '{name}'"))
}

/// Flips the lowest bit of the byte at `offset` of `path`.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 1;
    std::fs::write(path, bytes).unwrap();
}

/// Runs repo-tool in `dir` under `umask` (sh sets it and execs repo-tool) and insists it
/// succeeds; returns stdout.
pub fn ok_with_umask(dir: &Path, umask: u32, args: &[&str]) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
        .arg(repo_tool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run repo-tool through sh");
    assert!(
        out.status.success(),
        "repo-tool {args:?} under umask {umask:03o} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The permission bits (`0o777`) of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Holds an exclusive `flock` on the directory `path`, as a repo-tool changing the repository
/// there does, until the returned file is dropped.
pub fn hold_lock(path: &Path) -> std::fs::File {
    let dir = std::fs::File::open(path).unwrap();
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive).unwrap();
    dir
}

/// A repo-tool started in the background, its stdout and stderr piped.
pub struct Running {
    args: Vec<String>,
    child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    /// What was read from stderr so far.
    said: String,
}

/// What a [`Running`] repo-tool ended with.
#[derive(Debug)]
pub struct Finished {
    /// Whether it exited 0.
    pub success: bool,
    /// All of its stdout.
    pub stdout: String,
    /// All of its stderr.
    pub stderr: String,
}

impl Running {
    /// Starts repo-tool in `dir` with `args`.
    pub fn start(dir: &Path, args: &[&str]) -> Running {
        use std::process::Stdio;
        let mut child = Command::new(repo_tool())
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start repo-tool");
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        Running {
            args: args.iter().map(|s| s.to_string()).collect(),
            child,
            stderr,
            said: String::new(),
        }
    }

    /// The next line it writes on stderr, without its newline; blocks until it writes one or
    /// exits (then returns what is left, often "").
    pub fn stderr_line(&mut self) -> String {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut self.stderr, &mut line).unwrap();
        self.said.push_str(&line);
        line.trim_end_matches('\n').to_string()
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for it to exit, at most `limit`: kills it and panics after that.
    pub fn finish_within(mut self, limit: std::time::Duration) -> Finished {
        let deadline = std::time::Instant::now() + limit;
        while self.is_running() {
            if std::time::Instant::now() > deadline {
                self.child.kill().unwrap();
                panic!("repo-tool {:?} still runs after {limit:?}", self.args);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.finish()
    }

    /// Waits for it to exit.
    pub fn finish(mut self) -> Finished {
        std::io::Read::read_to_string(&mut self.stderr, &mut self.said).unwrap();
        let out = self.child.wait_with_output().unwrap();
        Finished {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: self.said,
        }
    }
}
