//! Helpers for tests of TUF repositories, shared by the crates that publish with the real
//! `repo-tool` (repo-tools' own tests, the conformance client's): repo-tool driven the way
//! docs/publishing.md's walkthrough drives it, python-tuf as a client nobody in this project
//! wrote, and the one time form both must write and read.
//!
//! test-tools depends on no crate of the project, so the caller passes the repo-tool binary.
//!
//! ```no_run
//! # let (repo_tool, dir) = (std::path::Path::new("repo-tool"), std::path::Path::new("."));
//! use test_tools::tuf::{SIGN, publish_args, strs};
//! let mut extra = vec!["--root", "root.json", "--no-waves"];
//! extra.extend(SIGN);
//! test_tools::run_in(repo_tool, dir, &strs(&publish_args("1.0.0", &extra)));
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// The walkthrough's repository as repo-tool arguments: `repo/`, variant demo, arch x86_64.
pub const REPO: [&str; 6] = ["--repo", "repo", "--variant", "demo", "--arch", "x86_64"];

/// The walkthrough's key arguments for targets, snapshot and timestamp.
pub const SIGN: [&str; 4] = ["--key", "keys/publish.pem", "--key", "keys/timestamp.pem"];

/// `<verb...> --repo repo --variant demo --arch x86_64 <rest...>`
pub fn on_repo<'a>(verb: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    verb.iter()
        .chain(REPO.iter())
        .chain(rest.iter())
        .copied()
        .collect()
}

/// The arguments that publish `version` of demo/x86_64 into `repo/` from `images/<version>/`
/// (`boot.ext4.lz4`, `root.ext4.lz4`, `root.verity.lz4`), as steps 2 and 3 of the walkthrough
/// do; `extra` (keys, `--root`, waves, migrations) is appended.
pub fn publish_args<'a>(version: &'a str, extra: &[&'a str]) -> Vec<String> {
    publish_args_for(REPO[3], REPO[5], version, extra)
}

/// [`publish_args`] for `variant` and `arch` instead of demo and x86_64 (still in `repo/`, from
/// `images/<version>/`).
pub fn publish_args_for(variant: &str, arch: &str, version: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "publish",
        REPO[0],
        REPO[1],
        "--variant",
        variant,
        "--arch",
        arch,
        "--version",
        version,
    ]
    .map(str::to_string)
    .into();
    for (flag, file) in [
        ("--boot-image", "boot.ext4.lz4"),
        ("--root-image", "root.ext4.lz4"),
        ("--hash-image", "root.verity.lz4"),
    ] {
        args.push(flag.to_string());
        args.push(format!("images/{version}/{file}"));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// `args` as the `&[&str]` that [`crate::run_in`] takes.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Step 7 of the walkthrough ("Rotate the root"), run with `repo_tool` in `dir` as the earlier
/// steps left it: a version-2 root `root-2.json`, made from the published `1.root.json`, that
/// trusts a new `keys/publish-2.pem` for targets and snapshot instead of `keys/publish.pem`,
/// expires in 52 weeks, is signed with `root_keys` and cross-signed by version 1, and goes into
/// `repo/` with `root rotate` (which re-signs the other roles with the new key and
/// `keys/timestamp.pem`). Panics if any command fails.
pub fn rotate_root(repo_tool: &Path, dir: &Path, root_keys: &[&str]) {
    let first = "repo/demo/x86_64/1.root.json";
    std::fs::copy(dir.join(first), dir.join("root-2.json"))
        .unwrap_or_else(|e| panic!("cannot copy {first} to root-2.json: {e}"));
    crate::run_in(
        repo_tool,
        dir,
        &["key", "generate", "--out", "keys/publish-2.pem"],
    );
    let old_publish = crate::run_in(repo_tool, dir, &["key", "id", "keys/publish.pem"]);
    let mut sign = vec!["root", "sign", "root-2.json"];
    for key in root_keys {
        sign.extend(["--key", key]);
    }
    sign.extend(["--cross-sign", first]);
    crate::run_each_in(
        repo_tool,
        dir,
        &[
            &["root", "set-version", "root-2.json", "2"][..],
            &["root", "expire", "root-2.json", "52 weeks"],
            &[
                "root",
                "add-key",
                "root-2.json",
                "--key",
                "keys/publish-2.pem",
                "--role",
                "targets",
                "--role",
                "snapshot",
            ],
            &[
                "root",
                "remove-key",
                "root-2.json",
                "--key-id",
                old_publish.trim(),
            ],
            &sign,
            &on_repo(
                &["root", "rotate"],
                &[
                    "--new-root",
                    "root-2.json",
                    "--key",
                    "keys/publish-2.pem",
                    "--key",
                    "keys/timestamp.pem",
                ],
            ),
        ],
    );
}

/// python3 that can import every module of `modules` (parts of python-tuf and its
/// dependencies), or `None` after saying why the test is skipped; panics under CI (see
/// [`crate::require_tool`]).
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let python = crate::require_tool("python3")?;
    let import = Command::new(&python)
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .unwrap_or_else(|e| panic!("failed to start {}: {e}", python.display()));
    if !import.status.success() {
        return crate::skip_or_fail(&format!(
            "python3 cannot import {} (pip install -r .ci/python-requirements.txt)",
            modules.join(", ")
        ));
    }
    Some(python)
}

/// Whether `text` is a UTC time to the whole second, `YYYY-MM-DDTHH:MM:SSZ`: the only form of
/// `expires` that python-tuf parses.
pub fn is_whole_seconds(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_in_utc_and_nothing_else() {
        assert!(is_whole_seconds("2036-01-01T00:00:00Z"));
        for text in [
            "2036-01-01T00:00:00.5Z",
            "2036-01-01T00:00:00+00:00",
            "2036-01-01 00:00:00Z",
            "2036-1-01T00:00:00Z",
            "",
        ] {
            assert!(!is_whole_seconds(text), "{text}");
        }
    }

    #[test]
    fn publish_arguments_name_the_repository_the_version_and_its_images() {
        let args = publish_args("1.2.0", &["--no-waves"]);
        assert_eq!(
            strs(&args),
            [
                "publish",
                "--repo",
                "repo",
                "--variant",
                "demo",
                "--arch",
                "x86_64",
                "--version",
                "1.2.0",
                "--boot-image",
                "images/1.2.0/boot.ext4.lz4",
                "--root-image",
                "images/1.2.0/root.ext4.lz4",
                "--hash-image",
                "images/1.2.0/root.verity.lz4",
                "--no-waves",
            ]
        );
    }
}
