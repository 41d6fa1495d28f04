//! The `resume` part: an install stopped by SIGKILL or SIGTERM halfway through ROOT, then run
//! again, and the chunk bytes fetched twice.

use crate::fixture::{chunk_bytes, garbage_b, index_of};
use crate::measure::time;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use testsys::{HttpServer, TestNode, TestRepo};

/// Resume: an install killed at 50 %, then run again.
pub(crate) fn resume(
    repo: &TestRepo,
    server: &HttpServer,
    node: &TestNode,
    updog: &Path,
    sysroot: &str,
    updog_args: &[&str],
) {
    let all_chunk_bytes: u64 = ["boot.ext4.lz4", "root.ext4.lz4", "hash.verity.lz4"]
        .iter()
        .map(|n| index_of(repo, "1.1.0", n).chunk_file_length())
        .sum();
    println!(
        "\n| resume (chunk bytes of the release: {all_chunk_bytes}) | ROOT's bytes when stopped | sent before | sent after the restart | **fetched twice** |\n|---|---|---|---|---|"
    );
    for signal in ["KILL", "TERM"] {
        garbage_b(node);
        server.clear_requests();
        let mut child = Command::new(updog)
            .args(["update-image", "--progress", "json", "--sysroot", sysroot])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("updog");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut at = 0;
        for line in stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(&line.expect("line")).expect("json");
            let (done, total) = (
                v["bytes_done"].as_u64().unwrap_or(0),
                v["bytes_total"].as_u64().unwrap_or(u64::MAX),
            );
            if v["image"] == "root" && done * 2 >= total {
                at = done;
                break;
            }
        }
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        child.wait().expect("wait");
        let first_run = chunk_bytes(server);
        server.clear_requests();
        let resumed = time(updog_args);
        let second_run = chunk_bytes(server);
        let index_bytes: u64 = server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(".chunks.json"))
            .map(|r| r.body_bytes)
            .sum();
        let again = (first_run + second_run).saturating_sub(all_chunk_bytes);
        println!(
            "| SIG{signal} at 50 % | {at} | {first_run} | {second_run} (+ {index_bytes} of indexes, {:.2} s) | **{again}** ({:.2} MiB) |",
            resumed.wall,
            again as f64 / 1048576.0
        );
    }
}
