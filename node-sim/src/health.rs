//! The health gate: commands shipped in the booted image (`etc/twinset/health-checks.toml`),
//! each with a timeout, that must all pass before the boot is marked successful.
//!
//! ```toml
//! [[check]]
//! name = "datastore readable"
//! command = ["sh", "-c", "test -e \"$TWINSET_SYSROOT/var/lib/datastore/current\""]
//! timeout_secs = 10
//! ```
//!
//! Each command runs with the sysroot as its working directory and `TWINSET_SYSROOT` set. A
//! check passes when it exits 0 within its timeout; a check that runs over is killed and fails.

use crate::error::{self, Result};
use serde::{Deserialize, Serialize};
use snafu::{ResultExt, ensure};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The default timeout of a check.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// One configured check.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// A name for logs and status.
    pub name: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Seconds before the check is killed and counted as failed.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    check: Vec<Check>,
}

/// Parses a health-check configuration; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Check>> {
    let config: Config = toml::from_str(text).context(error::HealthConfigSnafu { origin })?;
    for check in &config.check {
        ensure!(
            !check.command.is_empty(),
            error::EmptyCommandSnafu {
                name: check.name.clone(),
                origin,
            }
        );
    }
    Ok(config.check)
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Why it failed (exit status, timeout, could not start), with the end of its stderr.
    pub detail: String,
}

/// Runs every check; never stops at the first failure, so the status names them all.
pub fn run_all(checks: &[Check], sysroot: &Path) -> Vec<CheckResult> {
    checks.iter().map(|check| run_one(check, sysroot)).collect()
}

fn run_one(check: &Check, sysroot: &Path) -> CheckResult {
    let fail = |detail: String| CheckResult {
        name: check.name.clone(),
        passed: false,
        detail,
    };
    let stderr_file = match tempfile::tempfile() {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot capture its stderr: {e}")),
    };
    let stderr_for_child = match stderr_file.try_clone() {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot capture its stderr: {e}")),
    };
    let mut child = match Command::new(&check.command[0])
        .args(&check.command[1..])
        .current_dir(sysroot)
        .env("TWINSET_SYSROOT", sysroot)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_for_child)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return fail(format!("cannot start '{}': {e}", check.command[0])),
    };
    let deadline = Instant::now() + Duration::from_secs(check.timeout_secs);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "timed out after {} s and was killed",
                    check.timeout_secs
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("cannot wait for it: {e}")),
        }
    };
    let tail = stderr_tail(stderr_file);
    match status {
        Ok(status) if status.success() => CheckResult {
            name: check.name.clone(),
            passed: true,
            detail: String::new(),
        },
        Ok(status) => fail(with_tail(format!("exited with {status}"), &tail)),
        Err(detail) => fail(with_tail(detail, &tail)),
    }
}

fn stderr_tail(mut file: std::fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(64 * 1024).read_to_string(&mut text);
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    last.chars().take(200).collect()
}

fn with_tail(detail: String, tail: &str) -> String {
    if tail.is_empty() {
        detail
    } else {
        format!("{detail}: {tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_pass_fail_and_time_out_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let checks = parse(
            r#"
[[check]]
name = "ok"
command = ["true"]

[[check]]
name = "fails"
command = ["sh", "-c", "echo 'kubelet is not running' >&2; exit 3"]

[[check]]
name = "hangs"
command = ["sleep", "30"]
timeout_secs = 1

[[check]]
name = "sees the sysroot"
command = ["sh", "-c", "test \"$TWINSET_SYSROOT\" = \"$PWD\""]
"#,
            "test",
        )
        .unwrap();
        let started = Instant::now();
        let results = run_all(&checks, dir.path());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the hanging check was killed"
        );
        let passed: Vec<bool> = results.iter().map(|r| r.passed).collect();
        assert_eq!(passed, [true, false, false, true]);
        assert!(
            results[1].detail.contains("exit status: 3"),
            "{}",
            results[1].detail
        );
        assert!(results[1].detail.ends_with("kubelet is not running"));
        assert!(results[2].detail.starts_with("timed out after 1 s"));
    }

    #[test]
    fn bad_configurations_name_the_problem() {
        let err = parse("[[check]]\nname = \"x\"\ncommand = []\n", "image 1.2.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Health check 'x' in 'image 1.2.0' has an empty command"
        );
        let err = parse("[[check]]\nname = \"x\"\ncmd = [\"true\"]\n", "image 1.2.0").unwrap_err();
        assert!(err.to_string().contains("unknown field `cmd`"), "{err}");
    }
}
