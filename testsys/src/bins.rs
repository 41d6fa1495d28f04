//! The project's binaries, for tests of one crate that drive another crate's binary (a node's
//! tests run `updog`, `signpost` and `node-sim` as a real node would).

use crate::error::{self, Result};
use snafu::ResultExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

/// The path of binary `name` of workspace package `package`, in the profile directory the
/// running test was built into; built with cargo first when it is not there yet (a
/// `cargo nextest run --workspace` has built it already).
pub fn binary(package: &str, name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps")
        .to_path_buf();
    let path = profile_dir.join(name);
    let _guard = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !path.is_file() {
        let target_dir = profile_dir
            .parent()
            .expect("a profile directory has a parent");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut command = Command::new(cargo);
        command
            .args([
                "build",
                "--quiet",
                "-p",
                package,
                "--bin",
                name,
                "--target-dir",
            ])
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {name} failed"
        );
    }
    path
}

/// How long updog waits for a read from the server in tests: long enough for loopback, short
/// enough that a stalled download fails in seconds rather than minutes.
const UPDOG_READ_TIMEOUT_MS: &str = "3000";

/// A `Command` for binary `name` of `package` with `args` then `--sysroot sysroot`, and no
/// `RUST_LOG` inherited (so stderr holds only what a user would see).
fn command(package: &str, name: &str, sysroot: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary(package, name));
    command
        .args(args)
        .arg("--sysroot")
        .arg(sysroot)
        .env_remove("RUST_LOG");
    command
}

/// Runs `command` to completion and collects its output.
fn output(mut command: Command) -> Result<Output> {
    command.output().context(error::IoSnafu {
        action: "run",
        path: PathBuf::from(command.get_program()),
    })
}

/// `updog <args> --sysroot <sysroot>`, with a short read timeout (`UPDOG_READ_TIMEOUT_MS` =
/// 3000); set the variable again on the returned command for a longer one.
pub fn updog_command(sysroot: &Path, args: &[&str]) -> Command {
    let mut command = command("updog", "updog", sysroot, args);
    command.env("UPDOG_READ_TIMEOUT_MS", UPDOG_READ_TIMEOUT_MS);
    command
}

/// `signpost <args> --sysroot <sysroot>`.
pub fn signpost_command(sysroot: &Path, args: &[&str]) -> Command {
    command("signpost", "signpost", sysroot, args)
}

/// Runs [`updog_command`] and returns its output.
pub fn run_updog(sysroot: &Path, args: &[&str]) -> Result<Output> {
    output(updog_command(sysroot, args))
}

/// Runs [`signpost_command`] and returns its output.
pub fn run_signpost(sysroot: &Path, args: &[&str]) -> Result<Output> {
    output(signpost_command(sysroot, args))
}
