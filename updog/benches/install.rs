//! Install benchmark (not a timed test): a ROOT image of `UPDOG_BENCH_MIB` MiB (default 1024),
//! an ext4 about 80 % full of ordinary files copied from /usr, lz4-compressed, published and
//! served on loopback. Reports wall time, MB/s, CPU time and peak RSS of
//! `updog update-image` next to `curl | lz4 -dc | dd conv=fsync` writing the same ROOT image
//! into the same partition. Both are measured with GNU time (`/usr/bin/time`), in
//! `UPDOG_BENCH_ROUNDS` rounds (default 6): the first is cold, the table gives the medians of the
//! others.
//!
//! `cargo bench -p updog --bench install` (see docs/benchmarks.md).

use std::path::{Path, PathBuf};
use std::process::Command;
use testsys::{BuiltRelease, HttpServer, NodeSpec, PublishOptions, TestNode, TestRepo};

struct Measured {
    wall: f64,
    cpu: f64,
    rss_kib: u64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    for tool in ["mkfs.ext4", "debugfs", "curl", "lz4", "dd"] {
        if test_tools::require_tool(tool).is_none() {
            eprintln!("skipping the install benchmark: {tool} is missing");
            return;
        }
    }
    if !Path::new("/usr/bin/time").is_file() {
        eprintln!("skipping the install benchmark: /usr/bin/time (GNU time) is missing");
        return;
    }
    let mib: u64 = std::env::var("UPDOG_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let work = tempfile::Builder::new()
        .prefix("updog-bench-")
        .tempdir_in(std::env::var("UPDOG_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
        .expect("work dir");
    let tree = work.path().join("tree");
    let copied = fill_tree(&tree, mib * 8 / 10 * (1 << 20));
    eprintln!("copied {} MiB of files from /usr", copied >> 20);

    let repo = TestRepo::create(&work.path().join("publisher"), "bench", "x86_64").expect("repo");
    let first = repo
        .release("1.0.0", &[], &PublishOptions::default())
        .expect("first release");
    let mut spec = image_builder::ReleaseSpec::new(
        "1.1.0".parse().expect("version"),
        "bench",
        "x86_64",
        std::fs::read(&repo.root_json).expect("root.json"),
    );
    spec.root_tree = Some(tree);
    spec.root_size = Some(mib << 20);
    let images =
        image_builder::build_release(&spec, &work.path().join("big")).expect("build the release");
    let root_lz4 = images.root.lz4_size;
    let release = BuiltRelease {
        version: "1.1.0".parse().expect("version"),
        images,
    };
    repo.publish(&release, &PublishOptions::default())
        .expect("publish");
    let server = HttpServer::serve(&repo.base()).expect("server");
    let layout = signpost::Layout {
        boot_mib: 8,
        root_mib: mib + 8,
        hash_mib: mib / 64 + 8,
        ..signpost::Layout::default()
    };
    let node_spec = NodeSpec {
        disk_mib: layout.needed_mib() + 8,
        layout,
        urls: Some(repo.urls(&server.url())),
        seed: Some(1),
    };
    let node = TestNode::create(&work.path().join("node"), &first, &node_spec).expect("node");
    let root_part = node
        .signpost()
        .expect("disk")
        .partitions(signpost::SetId::B)
        .root
        .clone();
    let root_name = std::fs::read_dir(repo.base().join("targets"))
        .expect("targets")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with("1.1.0-root.ext4.lz4"))
        .expect("root target");
    let url = format!("{}targets/{root_name}", server.url());

    let updog = PathBuf::from(env!("CARGO_BIN_EXE_updog"));
    let sysroot = node.sysroot.display().to_string();
    let disk = node.disk.display().to_string();
    let pipeline = format!(
        "curl -sS --fail '{url}' | lz4 -dc | dd of='{disk}' bs=1M seek={} oflag=seek_bytes conv=notrunc,fsync status=none",
        root_part.byte_range().start
    );
    // Round 0 is cold (the served file and the tools are not in the page cache yet); the
    // table gives the median of the warm rounds, so that one slow round on a shared machine
    // does not decide the result.
    let rounds: usize = std::env::var("UPDOG_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
        .max(2);
    let mut warm: Vec<(Measured, Measured)> = Vec::new();
    for round in 0..rounds {
        let base = time(&["sh", "-c", &pipeline]);
        let ours = time(&[
            updog.to_str().expect("path"),
            "update-image",
            "--progress",
            "none",
            "--sysroot",
            &sysroot,
        ]);
        eprintln!(
            "round {round}: updog {:.2}s, pipeline {:.2}s, ratio {:.2}",
            ours.wall,
            base.wall,
            ours.wall / base.wall
        );
        if round > 0 {
            warm.push((ours, base));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let ratio = median(warm.iter().map(|(o, b)| o.wall / b.wall).collect());
    let ours = Measured::median(warm.iter().map(|(o, _)| o));
    let base = Measured::median(warm.iter().map(|(_, b)| b));
    let image = (mib << 20) as f64 / 1e6;
    println!(
        "ROOT image: {mib} MiB ext4 ({} MiB of files), {:.1} MiB lz4; median of {} warm rounds\n",
        copied >> 20,
        root_lz4 as f64 / 1048576.0,
        warm.len()
    );
    println!("| | wall s | MB/s (decompressed ROOT) | CPU s | peak RSS MiB |");
    println!("|---|---|---|---|---|");
    for (name, m) in [
        ("updog update-image (ROOT+BOOT+HASH, verified)", &ours),
        ("curl \\| lz4 -dc \\| dd conv=fsync (ROOT only)", &base),
    ] {
        println!(
            "| {name} | {:.2} | {:.0} | {:.2} | {:.1} |",
            m.wall,
            image / m.wall,
            m.cpu,
            m.rss_kib as f64 / 1024.0
        );
    }
    println!(
        "\nratio updog/pipeline wall time: median {ratio:.2} (per round: {})",
        warm.iter()
            .map(|(o, b)| format!("{:.2}", o.wall / b.wall))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

impl Measured {
    /// The median of each measure on its own (peak RSS: the largest).
    fn median<'a>(all: impl Iterator<Item = &'a Measured>) -> Measured {
        let all: Vec<&Measured> = all.collect();
        let mid = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Measured {
            wall: mid(all.iter().map(|m| m.wall).collect()),
            cpu: mid(all.iter().map(|m| m.cpu).collect()),
            rss_kib: all.iter().map(|m| m.rss_kib).max().unwrap_or(0),
        }
    }
}

/// Runs `argv` under GNU time; panics if it fails.
fn time(argv: &[&str]) -> Measured {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "TIME %e %U %S %M"])
        .args(argv)
        .output()
        .expect("run /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{argv:?} failed: {stderr}");
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("TIME "))
        .expect("GNU time output");
    let f: Vec<f64> = line[5..]
        .split_whitespace()
        .map(|v| v.parse().expect("number"))
        .collect();
    Measured {
        wall: f[0],
        cpu: f[1] + f[2],
        rss_kib: f[3] as u64,
    }
}

/// Copies regular files from /usr into `dst` until `budget` bytes.
fn fill_tree(dst: &Path, budget: u64) -> u64 {
    let mut copied = 0u64;
    let mut round = 0;
    while copied < budget {
        let mut stack = vec![PathBuf::from("/usr")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let path = entry.path();
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file() {
                    let Ok(meta) = entry.metadata() else {
                        continue;
                    };
                    if copied + meta.len() > budget {
                        continue;
                    }
                    let rel = path.strip_prefix("/").expect("absolute");
                    let to = dst.join(format!("copy{round}")).join(rel);
                    if let Some(parent) = to.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    if std::fs::copy(&path, &to).is_ok() {
                        copied += meta.len();
                    }
                }
            }
        }
        round += 1;
        if round > 20 {
            break;
        }
    }
    copied
}
