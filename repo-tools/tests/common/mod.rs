//! Shared helpers for repo-tools' integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "repo-tool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// Every file under `dir` with its contents, to show that a refused command wrote nothing.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
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
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in rest[..end].lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}
