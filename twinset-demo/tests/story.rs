//! The demo, the README's first command, tells its whole story: what a newcomer reads at the
//! end of `./demo` is checked here, with the workspace's own binaries.
#![allow(clippy::unwrap_used)]

use std::process::Command;

/// A line with its runs of spaces made one (the summary's columns are padded).
fn squeezed(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_demo_updates_falls_back_and_keeps_the_setting() {
    if !testsys::tools_present() {
        return;
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
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
