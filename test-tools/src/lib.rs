//! Helpers shared by the project's tests.
//!
//! Tests that drive real tools (`sgdisk`, `veritysetup`, `mkfs.ext4`, `losetup`, python-tuf) ask
//! for them through [`require_tool`]. Outside CI a missing tool skips the test with a message on
//! stderr; under `CI=true` it fails the test, because CI installs every tool the tests need and a
//! missing one means the install step is broken.
//!
//! ```no_run
//! let Some(sgdisk) = test_tools::require_tool("sgdisk") else { return };
//! let out = test_tools::run(std::process::Command::new(sgdisk).arg("--version"));
//! assert!(out.contains("GPT fdisk"));
//! ```
#![deny(missing_docs)]

pub mod tuf;

use std::path::{Path, PathBuf};
use std::process::Command;

/// `len` pseudo-random bytes from `seed` (xorshift64): incompressible, the same for the same
/// seed, different for different seeds. Test images and releases are made of them.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Whether the tests run under CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds `name` on `PATH` (and in the sbin directories, which a non-login shell may lack).
///
/// Returns `None` after printing why the test is skipped when the tool is missing outside CI;
/// panics under CI.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    if let Some(path) = find_tool(name) {
        return Some(path);
    }
    skip_or_fail(&format!("required tool '{name}' is not installed"))
}

/// Skips (outside CI) or fails (under CI) a test that cannot run here, saying why.
pub fn skip_or_fail<T>(why: &str) -> Option<T> {
    if in_ci() {
        panic!("{why}; CI must provide it (see .ci/run)");
    }
    eprintln!("SKIPPED: {why}; this test runs in CI");
    None
}

/// Finds `name` on `PATH` or in the usual sbin directories.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/local/sbin", "/usr/sbin", "/sbin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a command to completion and returns its stdout; panics with its stderr if it fails.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("failed to start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `program` with `args` in `dir`, as [`run`] does: returns its stdout, panics with its
/// stderr if it fails.
pub fn run_in(program: &Path, dir: &Path, args: &[&str]) -> String {
    run(Command::new(program).current_dir(dir).args(args))
}

/// Runs `program` in `dir` once with each argument list of `steps`, in order, as [`run_in`]
/// does: a sequence of commands such as a documented walkthrough's.
pub fn run_each_in(program: &Path, dir: &Path, steps: &[&[&str]]) {
    for args in steps {
        run_in(program, dir, args);
    }
}

/// The fenced code block of a markdown document whose info string ends with `name`, e.g. the
/// block opened by "```json manifest.json" for `name` = `manifest.json`: how tests parse the
/// examples of docs/.
pub fn markdown_block(markdown: &str, name: &str) -> Option<String> {
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        if info.split_whitespace().last() == Some(name) && info.split_whitespace().count() == 2 {
            let mut block = String::new();
            for line in lines.by_ref() {
                if line.trim_start().starts_with("```") {
                    return Some(block);
                }
                block.push_str(line);
                block.push('\n');
            }
            return None;
        }
    }
    None
}

/// Every fenced code block of a markdown text opened by exactly "```lang" (a block whose info
/// string names a file, such as "```json manifest.json", is not one of them), in order.
pub fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        let info = line.trim().strip_prefix("```");
        match (&mut current, info) {
            (None, Some(info)) if info == lang => current = Some(String::new()),
            (Some(block), Some("")) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line.trim_end());
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The first fenced code block after the comment `<!-- marker -->` in a markdown document (the
/// other way docs/ marks the examples tests parse).
pub fn marked_block(markdown: &str, marker: &str) -> Option<String> {
    let after = markdown.split(&format!("<!-- {marker} -->")).nth(1)?;
    let mut lines = after
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("```"));
    lines.next()?;
    let mut block = String::new();
    for line in lines {
        if line.trim_start().starts_with("```") {
            return Some(block);
        }
        block.push_str(line);
        block.push('\n');
    }
    None
}

/// Reads a file of the repository's docs/ folder, from a test of any crate.
///
/// The folder is found from the running test's crate (cargo sets `CARGO_MANIFEST_DIR` when it
/// runs a test), so a build shared between two checkouts reads the docs of the one under test.
pub fn read_doc(name: &str) -> String {
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf());
    let path = crate_dir.join("../docs").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tool_that_exists_and_not_one_that_does_not() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("no-such-tool-here-at-all").is_none());
    }

    #[test]
    fn collects_the_blocks_of_one_language_and_not_named_ones() {
        let doc = "text\n```sh\necho a\n```\n```json manifest.json\n{}\n```\n```shell\nx\n```\n\
                   ```sh\necho b\n\necho c\n```\n```sh\nnever closed\n";
        assert_eq!(fenced_blocks(doc, "sh"), ["echo a\n", "echo b\n\necho c\n"]);
        assert!(fenced_blocks(doc, "json").is_empty());
    }

    #[test]
    fn finds_a_named_block_and_only_that_one() {
        let md = "text\n```json a.json\n{}\n```\n```toml b.toml\nx = 1\ny = 2\n```\n";
        assert_eq!(markdown_block(md, "a.json").as_deref(), Some("{}\n"));
        assert_eq!(
            markdown_block(md, "b.toml").as_deref(),
            Some("x = 1\ny = 2\n")
        );
        assert_eq!(markdown_block(md, "c.toml"), None);
    }
}
