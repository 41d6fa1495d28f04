//! Interop with python-tuf, a TUF client nobody in this project wrote: repositories that
//! repo-tool publishes (consistent snapshots, a shared `targets/<sha256>.<name>` directory, root
//! rotation, ed25519, ECDSA and RSA keys) are served over HTTP on loopback and read by
//! python-tuf's `ngclient.Updater` through `.ci/interop/ngclient_fetch.py`; and what repo-tool
//! must refuse, python-tuf refuses too.
//!
//! Needs python3 with `tuf` (`.ci/python-requirements.txt`); skipped with a message elsewhere,
//! failed under CI.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// python3 with python-tuf's ngclient importable, or `None` (skipped outside CI).
fn python_tuf() -> Option<PathBuf> {
    test_tools::tuf::python_with(&["tuf.ngclient"])
}

/// `python3 -m http.server` serving a directory on a free loopback port; killed on drop.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(python: &Path, root: &Path, log: PathBuf) -> Self {
        // Port 0: the server picks a free port and says which on its first line of stdout.
        let mut child = Command::new(python)
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .arg("--directory")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 43117 (http://127.0.0.1:43117/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok());
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        server.port = port.unwrap_or_else(|| panic!("no port in the server's banner: {line:?}"));
        server.wait_until_it_answers();
        server
    }

    fn wait_until_it_answers(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut reply = String::new();
                let asked = stream.write_all(b"HEAD / HTTP/1.0\r\n\r\n").is_ok()
                    && stream.read_to_string(&mut reply).is_ok();
                if asked && reply.starts_with("HTTP/") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the HTTP server on port {} does not answer",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The paths python-tuf asked for, in order, with the status the server gave.
    fn requests(&self) -> Vec<(String, u16)> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter_map(|line| {
                // 127.0.0.1 - - [date] "GET /path HTTP/1.1" 200 -
                let (_, rest) = line.split_once("\"GET ")?;
                let (path, rest) = rest.split_once(' ')?;
                let status = rest.split_once("\" ")?.1.split_whitespace().next()?;
                Some((path.to_string(), status.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `.ci/interop/ngclient_fetch.py` reported, and its exit status.
struct Fetch {
    code: Option<i32>,
    summary: Value,
}

/// Runs python-tuf's ngclient from `trusted_root` against the served repository.
fn ngclient_fetch(python: &Path, server: &Server, trusted_root: &Path) -> Fetch {
    ngclient_fetch_in(python, server, trusted_root, None)
}

/// [`ngclient_fetch`] keeping the client's metadata in `work_dir` across runs, as a node keeps
/// what it trusts (so a rollback is refused), when given.
fn ngclient_fetch_in(
    python: &Path,
    server: &Server,
    trusted_root: &Path,
    work_dir: Option<&Path>,
) -> Fetch {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.ci/interop/ngclient_fetch.py"
    );
    let mut command = Command::new(python);
    if let Some(work_dir) = work_dir {
        command.arg(script).arg("--work-dir").arg(work_dir);
    } else {
        command.arg(script);
    }
    let out = command
        .arg("--trusted-root")
        .arg(trusted_root)
        .arg("--metadata-url")
        .arg(server.url("demo/x86_64/"))
        .arg("--targets-url")
        .arg(server.url("targets/"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "ngclient_fetch.py printed no JSON ({e}); stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Fetch {
        code: out.status.code(),
        summary,
    }
}

/// The targets python-tuf downloaded and verified: name → (length, sha256).
fn downloaded(summary: &Value) -> std::collections::BTreeMap<String, (u64, String)> {
    summary["targets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, t)| {
            (
                name.clone(),
                (
                    t["length"].as_u64().unwrap(),
                    t["sha256"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// The metadata files on disk: each role's `expires` as written, to compare with python-tuf's.
fn expires_on_disk(dir: &Path, file: &str) -> String {
    let text = std::fs::read_to_string(dir.join("repo/demo/x86_64").join(file)).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    json["signed"]["expires"].as_str().unwrap().to_string()
}

#[test]
fn python_tuf_downloads_every_target_and_follows_a_root_rotation() {
    let Some(python) = python_tuf() else { return };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // RSA for timestamp, so all three key types repo-tool makes are verified by python-tuf.
    two_releases(dir, "rsa", "now");
    let server = Server::start(&python, &dir.join("repo"), dir.join("http.log"));

    let fetch = ngclient_fetch(&python, &server, &dir.join("root.json"));
    assert_eq!(fetch.code, Some(0), "python-tuf refused: {}", fetch.summary);
    let repo = load_repo(dir);
    let published = published_targets(&repo);
    // Six images with a chunk file and a chunk index each, the migration and the manifest,
    // exactly as tough reads them.
    assert_eq!(published.len(), 20, "{published:?}");
    assert!(published.contains_key("demo-x86_64-1.1.0-root.ext4.lz4.chunks.json"));
    assert!(published.contains_key("migrate_v1.1.0_add-motd.json.lz4"));
    assert_eq!(downloaded(&fetch.summary), published);
    assert_eq!(fetch.summary["failed"], serde_json::json!({}));
    assert_eq!(fetch.summary["root_version"], 1);
    for (role, version) in [
        ("timestamp", repo.timestamp().signed.version.get()),
        ("snapshot", repo.snapshot().signed.version.get()),
        ("targets", repo.targets().signed.version.get()),
    ] {
        assert_eq!(fetch.summary[format!("{role}_version")], version, "{role}");
    }
    // python-tuf parses only whole-second times, and read back what is on disk.
    let expires = &fetch.summary["expires"];
    for role in ["root", "timestamp", "snapshot", "targets"] {
        assert!(
            test_tools::tuf::is_whole_seconds(expires[role].as_str().unwrap()),
            "{role}"
        );
    }
    assert_eq!(expires["timestamp"], expires_on_disk(dir, "timestamp.json"));
    assert_eq!(expires["root"], expires_on_disk(dir, "1.root.json"));

    // Consistent snapshots as python-tuf walks them: versioned snapshot and targets metadata,
    // hash-prefixed targets from the shared directory, and a 404 that ends the root chain.
    let requests = server.requests();
    let version = repo.snapshot().signed.version;
    for path in [
        "/demo/x86_64/timestamp.json".to_string(),
        format!("/demo/x86_64/{version}.snapshot.json"),
        format!("/demo/x86_64/{version}.targets.json"),
    ] {
        assert!(
            requests.contains(&(path.clone(), 200)),
            "{path}: {requests:?}"
        );
    }
    assert!(requests.contains(&("/demo/x86_64/2.root.json".to_string(), 404)));
    for (name, (_, sha)) in &published {
        let path = format!("/targets/{sha}.{name}");
        assert!(requests.contains(&(path.clone(), 200)), "{path}");
    }

    // Step 7 of the walkthrough: a new root (v2, new targets key) cross-signed by the old root.
    test_tools::tuf::rotate_root(&repo_tool(), dir, &ROOT_KEYS);
    // A fresh client that ships the OLD root walks 1.root.json -> 2.root.json and downloads.
    let fetch = ngclient_fetch(&python, &server, &dir.join("root.json"));
    assert_eq!(fetch.code, Some(0), "python-tuf refused: {}", fetch.summary);
    assert_eq!(fetch.summary["root_version"], 2);
    assert_eq!(
        downloaded(&fetch.summary),
        published_targets(&load_repo(dir))
    );
    assert_eq!(downloaded(&fetch.summary), published);
    let requests = server.requests();
    assert!(requests.contains(&("/demo/x86_64/2.root.json".to_string(), 200)));
    assert!(requests.contains(&("/demo/x86_64/3.root.json".to_string(), 404)));
}

#[test]
fn python_tuf_follows_a_timestamp_only_refresh() {
    let Some(python) = python_tuf() else { return };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    let server = Server::start(&python, &dir.join("repo"), dir.join("http.log"));
    let client = dir.join("client");
    let root = dir.join("root.json");
    let fetch = ngclient_fetch_in(&python, &server, &root, Some(&client));
    assert_eq!(fetch.code, Some(0), "python-tuf refused: {}", fetch.summary);
    let before = load_repo(dir);
    let old_timestamp = std::fs::read(dir.join("repo/demo/x86_64/timestamp.json")).unwrap();

    ok(
        dir,
        &on_repo(
            &["refresh"],
            &["--timestamp-only", "--key", "keys/timestamp.pem"],
        ),
    );
    // The client that trusts the previous timestamp takes the new one, with the same snapshot.
    let fetch = ngclient_fetch_in(&python, &server, &root, Some(&client));
    assert_eq!(fetch.code, Some(0), "python-tuf refused: {}", fetch.summary);
    let after = load_repo(dir);
    assert!(after.timestamp().signed.version > before.timestamp().signed.version);
    for (role, version) in [
        ("timestamp", after.timestamp().signed.version.get()),
        ("snapshot", before.snapshot().signed.version.get()),
        ("targets", before.targets().signed.version.get()),
    ] {
        assert_eq!(fetch.summary[format!("{role}_version")], version, "{role}");
    }
    assert_eq!(
        fetch.summary["expires"]["timestamp"],
        expires_on_disk(dir, "timestamp.json")
    );
    assert_eq!(downloaded(&fetch.summary), published_targets(&after));

    // It now trusts the new timestamp: the old one served again is a rollback it refuses.
    std::fs::write(dir.join("repo/demo/x86_64/timestamp.json"), old_timestamp).unwrap();
    let fetch = ngclient_fetch_in(&python, &server, &root, Some(&client));
    assert_eq!(fetch.code, Some(1), "{}", fetch.summary);
    assert!(
        fetch.summary["error"]
            .as_str()
            .unwrap()
            .contains("timestamp"),
        "{}",
        fetch.summary
    );
}

#[test]
fn python_tuf_refuses_a_corrupted_target_and_names_it() {
    let Some(python) = python_tuf() else { return };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ed25519", "now");
    let corrupted = "demo-x86_64-1.0.0-root.ext4.lz4";
    flip_byte(&target_file(dir, corrupted), 100);
    let server = Server::start(&python, &dir.join("repo"), dir.join("http.log"));

    let fetch = ngclient_fetch(&python, &server, &dir.join("root.json"));
    assert_eq!(fetch.code, Some(1), "{}", fetch.summary);
    let failed = fetch.summary["failed"].as_object().unwrap();
    assert_eq!(failed.keys().collect::<Vec<_>>(), [corrupted], "{failed:?}");
    let why = failed[corrupted].as_str().unwrap();
    assert!(why.contains("hash"), "{why}");
    // Every other target still verifies.
    let mut expected = published_targets(&load_repo(dir));
    expected.remove(corrupted);
    assert_eq!(downloaded(&fetch.summary), expected);

    // A target cut short fails on its length.
    let short = "demo-x86_64-1.1.0-boot.ext4.lz4";
    let path = target_file(dir, short);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let fetch = ngclient_fetch(&python, &server, &dir.join("root.json"));
    assert_eq!(fetch.code, Some(1), "{}", fetch.summary);
    let failed = fetch.summary["failed"].as_object().unwrap();
    assert_eq!(failed.len(), 2, "{failed:?}");
    let why = failed[short].as_str().unwrap();
    assert!(why.contains("length"), "{why}");
}

#[test]
fn python_tuf_refuses_tampered_metadata() {
    let Some(python) = python_tuf() else { return };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    two_releases(dir, "ecdsa-p256", "now");
    let server = Server::start(&python, &dir.join("repo"), dir.join("http.log"));
    let root = dir.join("root.json");
    let timestamp = dir.join("repo/demo/x86_64/timestamp.json");
    let original = std::fs::read_to_string(&timestamp).unwrap();
    let refused = |what: &str| {
        let fetch = ngclient_fetch(&python, &server, &root);
        assert_eq!(fetch.code, Some(1), "{what}: {}", fetch.summary);
        let error = fetch.summary["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!error.is_empty(), "{what}: {}", fetch.summary);
        assert!(downloaded(&fetch.summary).is_empty(), "{what}");
        error
    };
    assert_eq!(ngclient_fetch(&python, &server, &root).code, Some(0));

    // A signature changed: one hex digit of timestamp.json's only signature.
    let mut json: Value = serde_json::from_str(&original).unwrap();
    let sig = json["signatures"][0]["sig"].as_str().unwrap().to_string();
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    json["signatures"][0]["sig"] = Value::String(format!("{flipped}{}", &sig[1..]));
    std::fs::write(&timestamp, serde_json::to_vec(&json).unwrap()).unwrap();
    let error = refused("a changed signature");
    assert!(
        error.contains("timestamp was signed by 0/1 keys"),
        "{error}"
    );

    // The signed content changed, signature left as it was: the expiry pushed out a year.
    let mut json: Value = serde_json::from_str(&original).unwrap();
    let expires = json["signed"]["expires"].as_str().unwrap().to_string();
    let year: u32 = expires[..4].parse().unwrap();
    json["signed"]["expires"] = Value::String(format!("{}{}", year + 1, &expires[4..]));
    std::fs::write(&timestamp, serde_json::to_vec(&json).unwrap()).unwrap();
    let error = refused("changed signed content");
    assert!(
        error.contains("timestamp was signed by 0/1 keys"),
        "{error}"
    );

    // Untouched timestamp, but the snapshot it names was changed where its signature cannot
    // tell (whitespace, same length): only the hash timestamp.json records catches it.
    std::fs::write(&timestamp, &original).unwrap();
    let snapshot = dir.join(format!(
        "repo/demo/x86_64/{}.snapshot.json",
        load_repo(dir).snapshot().signed.version
    ));
    let text = std::fs::read_to_string(&snapshot).unwrap();
    let changed = text.replacen("{\n  \"signed\"", "{ \n \"signed\"", 1);
    assert!(changed != text && changed.len() == text.len());
    std::fs::write(&snapshot, changed).unwrap();
    let error = refused("a changed snapshot");
    assert!(error.to_lowercase().contains("hash"), "{error}");
}
