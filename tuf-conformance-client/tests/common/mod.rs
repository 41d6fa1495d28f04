//! Shared helpers: a repository written by `tests/repo_sim.py` (python-tuf's metadata API),
//! served over HTTP on loopback by testsys, and the client binary run against it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use testsys::HttpServer;

/// The client binary under test.
pub fn client() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tuf-conformance-client"))
}

/// python3 with python-tuf's metadata API importable, or `None` (skipped outside CI).
pub fn python_tuf() -> Option<PathBuf> {
    test_tools::tuf::python_with(&["tuf.api.metadata", "securesystemslib.signer"])
}

/// Runs the client with `args`, under `prefix` (e.g. `faketime`) if given.
pub fn run_client(prefix: &[&str], args: &[&str]) -> Run {
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(client());
            c
        }
        None => Command::new(client()),
    };
    let out = command.args(args).output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What one run of the client did.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Run {
    /// Insists on exit 0.
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success: {}", self.stderr);
        self
    }

    /// Insists on exit 1 with one line on stderr containing `needle`.
    pub fn fails_with(&self, needle: &str) -> &Self {
        assert_eq!(self.code, Some(1), "expected failure: {self:?}");
        let line = self.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "one line expected: {line}");
        assert!(line.contains(needle), "'{needle}' not in: {line}");
        self
    }
}

/// The client pointed at one served repository: the URLs it fetches metadata and targets from
/// and the two directories it keeps them in.
pub struct Client {
    /// The metadata URL, without a trailing slash (as the suite passes it).
    pub metadata_url: String,
    /// The targets URL, without a trailing slash.
    pub targets_url: String,
    /// The client's metadata directory.
    pub metadata_dir: PathBuf,
    /// The client's target directory.
    pub target_dir: PathBuf,
}

impl Client {
    /// A client of the repository at these URLs that keeps its files in `client/metadata` and
    /// `client/targets` under `work`.
    pub fn new(work: &Path, metadata_url: String, targets_url: String) -> Client {
        Client {
            metadata_url,
            targets_url,
            metadata_dir: work.join("client/metadata"),
            target_dir: work.join("client/targets"),
        }
    }

    /// `init` with the trusted root `root`.
    pub fn init(&self, root: &Path) -> Run {
        run_client(
            &[],
            &[
                "--metadata-dir",
                self.metadata_dir.to_str().unwrap(),
                "init",
                root.to_str().unwrap(),
            ],
        )
    }

    /// `refresh`, under `prefix` if given.
    pub fn refresh_with(&self, prefix: &[&str]) -> Run {
        run_client(
            prefix,
            &[
                "--metadata-url",
                &self.metadata_url,
                "--metadata-dir",
                self.metadata_dir.to_str().unwrap(),
                "refresh",
            ],
        )
    }

    /// `refresh`.
    pub fn refresh(&self) -> Run {
        self.refresh_with(&[])
    }

    /// `download` of `names`, in order.
    pub fn download(&self, names: &[&str]) -> Run {
        let mut args = vec![
            "--metadata-url",
            &self.metadata_url,
            "--metadata-dir",
            self.metadata_dir.to_str().unwrap(),
        ];
        for name in names {
            args.extend(["--target-name", name]);
        }
        args.extend([
            "--target-dir",
            self.target_dir.to_str().unwrap(),
            "--target-base-url",
            &self.targets_url,
            "download",
        ]);
        run_client(&[], &args)
    }

    /// The version of `<role>.json` in the metadata directory.
    pub fn version(&self, role: &str) -> Option<u64> {
        let bytes = std::fs::read(self.metadata_dir.join(format!("{role}.json"))).ok()?;
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        value["signed"]["version"].as_u64()
    }

    /// The names in the metadata directory, sorted.
    pub fn metadata_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.metadata_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The stored targets: (file name, contents), sorted.
    pub fn targets(&self) -> Vec<(String, String)> {
        let Ok(entries) = std::fs::read_dir(&self.target_dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = entries
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// A repository made with python-tuf, served over HTTP, and a client's two directories.
pub struct World {
    pub work: tempfile::TempDir,
    pub python: PathBuf,
    pub server: HttpServer,
}

impl World {
    /// A repository after `["init", init_opts]` and `ops`; `None` when python-tuf is missing
    /// outside CI.
    pub fn new(init_opts: Value, ops: Value) -> Option<World> {
        let python = python_tuf()?;
        let work = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("repo")).unwrap();
        let server = HttpServer::serve(&work.path().join("repo")).unwrap();
        let world = World {
            work,
            python,
            server,
        };
        world.sim(serde_json::json!([["init", init_opts]]));
        world.sim(ops);
        // The root the client ships: version 1 as first published.
        std::fs::copy(
            world.repo().join("metadata/1.root.json"),
            world.work.path().join("initial_root.json"),
        )
        .unwrap();
        Some(world)
    }

    /// The served directory.
    pub fn repo(&self) -> PathBuf {
        self.work.path().join("repo")
    }

    /// The client of the served repository.
    pub fn client(&self) -> Client {
        Client::new(self.work.path(), self.metadata_url(), self.targets_url())
    }

    /// The client's metadata directory.
    pub fn metadata_dir(&self) -> PathBuf {
        self.client().metadata_dir
    }

    /// The client's target directory.
    pub fn target_dir(&self) -> PathBuf {
        self.client().target_dir
    }

    /// Applies repository operations (see `tests/repo_sim.py`).
    pub fn sim(&self, ops: Value) {
        test_tools::run(
            Command::new(&self.python)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/repo_sim.py"))
                .arg(self.repo())
                .arg(ops.to_string()),
        );
    }

    /// `http://127.0.0.1:PORT/metadata` (no trailing slash, as the suite passes it).
    pub fn metadata_url(&self) -> String {
        format!("{}metadata", self.server.url())
    }

    /// `http://127.0.0.1:PORT/targets`.
    pub fn targets_url(&self) -> String {
        format!("{}targets", self.server.url())
    }

    /// Runs the client with `args`, under `prefix` (e.g. `faketime`) if given.
    pub fn run(&self, prefix: &[&str], args: &[&str]) -> Run {
        run_client(prefix, args)
    }

    /// `init` with the first root.
    pub fn init(&self) -> Run {
        self.client()
            .init(&self.work.path().join("initial_root.json"))
    }

    /// `refresh`, under `prefix` if given.
    pub fn refresh_with(&self, prefix: &[&str]) -> Run {
        self.client().refresh_with(prefix)
    }

    /// `refresh`.
    pub fn refresh(&self) -> Run {
        self.refresh_with(&[])
    }

    /// `download` of `names`, in order.
    pub fn download(&self, names: &[&str]) -> Run {
        self.client().download(names)
    }

    /// The version of `<role>.json` in the metadata directory.
    pub fn version(&self, role: &str) -> Option<u64> {
        self.client().version(role)
    }

    /// The names in the metadata directory, sorted.
    pub fn metadata_files(&self) -> Vec<String> {
        self.client().metadata_files()
    }

    /// The stored targets: (file name, contents), sorted.
    pub fn targets(&self) -> Vec<(String, String)> {
        self.client().targets()
    }

    /// The paths requested so far.
    pub fn requested(&self) -> Vec<String> {
        self.server.requests().into_iter().map(|r| r.path).collect()
    }
}

/// `faketime` with an offset in days from now (Debian's `faketime` package), or `None`.
pub fn faketime(days: i64) -> Option<Vec<String>> {
    let faketime = test_tools::require_tool("faketime")?;
    let sign = if days < 0 { "-" } else { "+" };
    Some(vec![
        faketime.to_string_lossy().into_owned(),
        "-f".to_string(),
        format!("{sign}{}d", days.abs()),
    ])
}
