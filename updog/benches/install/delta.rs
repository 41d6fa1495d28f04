//! The `delta` part: releases that rewrite about 1 %, 10 % and 50 % of ROOT's file bytes,
//! installed over the running one, and the chunk bytes each downloads; it hands the 10 %
//! release to the `chunk-size` part.

use crate::chunk_size::chunk_size_table;
use crate::fixture::{build, chunk_bytes, chunked_options, garbage_b, index_of, warm_chunk_files};
use crate::measure::time;
use std::path::{Path, PathBuf};
use test_tools::noise;
use testsys::{BuiltRelease, HttpServer, NodeSpec, TestNode, TestRepo};
use update_metadata::chunks::ChunkData;

/// Delta (and the chunk-size table): a node running `big`, updated to releases that change
/// part of ROOT.
#[allow(clippy::too_many_arguments)]
pub(crate) fn delta(
    repo: &TestRepo,
    server: &HttpServer,
    big: &BuiltRelease,
    node_spec: &NodeSpec,
    work: &Path,
    tree: &Path,
    mib: u64,
    part: &dyn Fn(&str) -> bool,
) {
    let updog = PathBuf::from(env!("CARGO_BIN_EXE_updog"));
    let chunked = chunked_options();
    let node2 = TestNode::create(&work.join("node2"), big, node_spec).expect("node2");
    let sysroot2 = node2.sysroot.display().to_string();
    let files = list_files(tree);
    let total: u64 = files.iter().map(|(_, len)| len).sum();
    let mut changed_so_far = 0u64;
    let mut next_file = 0;
    let base_root = index_of(repo, "1.1.0", "root.ext4.lz4");
    println!(
        "\n| delta (share of file bytes changed) | chunks changed | changed chunks, compressed | downloaded (chunks + indexes) | overhead, % of the compressed image | install s |"
    );
    println!("|---|---|---|---|---|---|");
    let mut ten_percent = None;
    for (k, pct) in [1u64, 10, 50].into_iter().enumerate() {
        // Cumulative: each release rewrites more files (same sizes, new bytes).
        while changed_so_far * 100 < total * pct && next_file < files.len() {
            let (path, len) = &files[next_file];
            // New bytes in every block that held data; all-zero blocks stay zero, because
            // `mkfs.ext4 -d` leaves them out as holes, and a file that gained blocks would move
            // every file after it.
            let mut bytes = std::fs::read(path).expect("read");
            for (k, block) in bytes.chunks_mut(4096).enumerate() {
                if block.iter().any(|&b| b != 0) {
                    let fresh = noise((next_file as u64) << 20 | k as u64, block.len());
                    block.copy_from_slice(&fresh);
                    block[0] |= 1;
                }
            }
            if std::fs::write(path, &bytes).is_err() {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
                std::fs::write(path, &bytes).expect("rewrite");
            }
            changed_so_far += len;
            next_file += 1;
        }
        let version = format!("1.{}.0", k + 2);
        let release = build(repo, work, &version, tree, mib);
        repo.publish(&release, &chunked).expect("publish delta");
        garbage_b(&node2);
        warm_chunk_files(server, repo, &version);
        let m = time(&[
            updog.to_str().expect("path"),
            "update-image",
            "--progress",
            "none",
            "--image",
            &version,
            "--sysroot",
            &sysroot2,
        ]);
        let downloaded = chunk_bytes(server);
        let indexes: u64 = server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(".chunks.json"))
            .map(|r| r.body_bytes)
            .sum();
        let (mut changed, mut changed_bytes, mut compressed_total) = (0, 0u64, 0u64);
        for name in ["boot.ext4.lz4", "root.ext4.lz4", "hash.verity.lz4"] {
            let old = index_of(repo, "1.1.0", name);
            let new = index_of(repo, &version, name);
            compressed_total += new.chunk_file_length();
            for (i, c) in new.chunks().iter().enumerate() {
                if old.chunks().get(i).map(|o| o.sha256) != Some(c.sha256) {
                    changed += 1;
                    if let ChunkData::Stored { length, .. } = c.data {
                        changed_bytes += length;
                    }
                }
            }
        }
        let over = (downloaded + indexes) as f64 - changed_bytes as f64;
        println!(
            "| {pct} % ({:.1} % done) | {changed} of {} | {:.1} MiB | {:.1} MiB + {:.0} KiB | {:+.2} % | {:.2} |",
            changed_so_far as f64 * 100.0 / total as f64,
            base_root.chunks().len(),
            changed_bytes as f64 / 1048576.0,
            downloaded as f64 / 1048576.0,
            indexes as f64 / 1024.0,
            over * 100.0 / compressed_total as f64,
            m.wall
        );
        if pct == 10 {
            ten_percent = Some(release);
        }
    }

    // Chunk size: what the 10 % release would cost at other sizes.
    if let Some(ten) = ten_percent.filter(|_| part("chunk-size")) {
        chunk_size_table(&big.images.root.path, &ten.images.root.path);
    }
}

/// Every regular file under `dir` with its length, in a stable order.
fn list_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(e.path());
            } else if kind.is_file() {
                out.push((e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    out.sort();
    // Spread the changes over the whole filesystem, not one directory.
    let mut spread = Vec::with_capacity(out.len());
    let step = 7;
    for start in 0..step {
        spread.extend(out.iter().skip(start).step_by(step).cloned());
    }
    spread
}
