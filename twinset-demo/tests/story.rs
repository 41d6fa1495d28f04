//! The demo, the README's first command, tells its whole story: what a newcomer reads at the
//! end of `./demo` is checked here, with the workspace's own binaries.
#![allow(clippy::unwrap_used)]

use std::process::Command;

/// A line with its runs of spaces made one (the summary's columns are padded).
fn squeezed(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs the demo with `args` and returns what it printed, once it succeeded; `None` when its
/// tools are missing (outside CI).
fn demo(args: &[&str]) -> Option<String> {
    if !testsys::tools_present() {
        return None;
    }
    // The demo runs these from its own directory, as `./demo` builds them.
    for (package, name) in [
        ("updog", "updog"),
        ("node-sim", "node-sim"),
        ("update-api", "update-api"),
        ("update-api", "apiclient"),
    ] {
        testsys::binary(package, name);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_twinset-demo"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}

#[test]
fn the_demo_updates_falls_back_and_keeps_the_setting() {
    let Some(stdout) = demo(&[]) else {
        return;
    };
    let lines: Vec<String> = stdout.lines().map(squeezed).collect();
    let summary: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.contains("== Summary"))
        .skip(3)
        .take_while(|l| !l.is_empty())
        .map(String::as_str)
        .collect();
    assert_eq!(
        summary,
        [
            r#"booted 1.0.0 p1 t0 ok p0 t0 -- 1.0.0 1.0.0 "Welcome to twinset""#,
            r#"1.1.0 written to B, applied p1 t0 ok p2 t1 -- 1.0.0 1.0.0 "Welcome to twinset""#,
            r#"booted 1.1.0 p1 t0 ok p2 t0 ok 1.1.0 1.1.0 "Welcome to twinset 1.1""#,
            r#"1.2.0 written to A, applied p2 t1 -- p1 t0 ok 1.1.0 1.1.0 "Welcome to twinset 1.1""#,
            r#"1.2.0 failed its health gate p2 t0 -- p1 t0 ok 1.2.0 1.2.0 (unconfirmed) "Welcome to twinset 1.1""#,
            r#"fell back to 1.1.0 p2 t0 -- p1 t0 ok 1.1.0 1.1.0 "Welcome to twinset 1.1""#,
        ],
        "{stdout}"
    );
    // After the fallback the update API offers nothing: 1.2.0 is not chosen again.
    let after: Vec<&str> = lines
        .iter()
        .skip_while(|l| !l.contains("so it is not offered again"))
        .map(String::as_str)
        .collect();
    assert!(after.contains(&"update state: Idle"), "{stdout}");
    assert!(after.contains(&"chosen: none"), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Fell back from unconfirmed 1.2.0 to the kept 1.1.0")),
        "{stdout}"
    );
}

#[test]
fn a_kept_demo_leaves_the_node_and_names_the_address_its_updog_knows() {
    let Some(stdout) = demo(&["--keep"]) else {
        return;
    };
    let kept = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("kept "))
        .and_then(|l| l.split_whitespace().next())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("no kept directory named:\n{stdout}"));
    let serve = stdout
        .lines()
        .find_map(|l| l.split_once("python3 -m http.server "))
        .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_else(|| panic!("no command to serve the repository:\n{stdout}"));
    let config = std::fs::read_to_string(kept.join("node/etc/updog.toml"));
    let repo_dir = kept.join("publisher/repo");
    let published = repo_dir.join("targets").is_dir();
    std::fs::remove_dir_all(&kept).unwrap();
    let config = config.unwrap();
    assert!(published, "no repository kept in {}", repo_dir.display());
    // `python3 -m http.server PORT --bind 127.0.0.1 --directory DIR`: the address the node's
    // updog was given, and the repository the demo published.
    assert_eq!(serve[1..3], ["--bind", "127.0.0.1"], "{stdout}");
    let base = format!("http://127.0.0.1:{}/", serve[0]);
    assert!(
        config.contains(&format!("metadata_base_url = \"{base}")),
        "{config}"
    );
    assert_eq!(serve[4], repo_dir.display().to_string());
}
