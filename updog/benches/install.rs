//! Install benchmark (not a timed test): a ROOT image of `UPDOG_BENCH_MIB` MiB (default 1024),
//! an ext4 about 80 % full of ordinary files copied from /usr, published with 1 MiB chunks (and
//! its lz4 stream) and served on loopback. Prints the tables of docs/benchmarks.md:
//!
//! - full install: `updog update-image` (chunked: BOOT, HASH, ROOT, every chunk verified on
//!   disk) into a set B full of garbage, next to `curl | lz4 -dc | dd conv=fsync` and to the
//!   loop Bottlerocket's updog runs (tough's target stream, an lz4 frame decoder, a file,
//!   fsync; one thread), both writing ROOT only. GNU time (`/usr/bin/time`) gives wall time,
//!   CPU time and peak RSS; `UPDOG_BENCH_ROUNDS` rounds (default 6): the first is cold, the
//!   table gives the medians of the others. With the `stream` part, each round also times the
//!   same release published without chunk indexes to a second repository and node: the lz4
//!   streams that updog installs when a release has no index or the server ignores Range.
//! - resume: an install killed (SIGKILL), or stopped (SIGTERM), when half of ROOT's chunk bytes
//!   are in, then run again: the bytes fetched twice.
//! - delta: releases whose ROOT differs from the running one in about 1 %, 10 % and 50 % of its
//!   file bytes (files rewritten in place, same sizes and holes); the chunk bytes downloaded
//!   against the compressed bytes of the chunks that changed.
//! - chunk size: for the 10 % release, what 64 KiB to 4 MiB chunks would download and cost in
//!   index and requests.
//! - latency: the full install of updog and of the loop again, with the server answering every
//!   request after a delay (`UPDOG_BENCH_LATENCY_MS`, default `2,10,40`), as a distant server
//!   would: what the Range requests cost when each takes a round trip.
//!
//! `cargo bench -p updog --bench install` (see docs/benchmarks.md). `UPDOG_BENCH_PARTS` picks
//! some of the parts (comma-separated: `full`, `stream`, `resume`, `delta`, `chunk-size`,
//! `latency`; default all);
//! `UPDOG_BENCH_CHUNK_SIZE` publishes with another chunk size (bytes).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testsys::{BuiltRelease, HttpServer, NodeSpec, PublishOptions, TestNode, TestRepo};
use update_metadata::ChunkIndex;
use update_metadata::chunks::ChunkData;

const LOOP_ARG: &str = "--bottlerocket-loop";

struct Measured {
    wall: f64,
    cpu: f64,
    rss_kib: u64,
    /// CPU time the hypervisor gave to others while the command ran (steal, all cores).
    steal: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(LOOP_ARG) {
        bottlerocket_loop(&args[2..]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
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
    let mib: u64 = env_or("UPDOG_BENCH_MIB", 1024);
    let rounds: usize = env_or("UPDOG_BENCH_ROUNDS", 6).max(2);
    let parts = std::env::var("UPDOG_BENCH_PARTS")
        .unwrap_or_else(|_| "full,stream,resume,delta,chunk-size,latency".to_string());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    let work = tempfile::Builder::new()
        .prefix("updog-bench-")
        .tempdir_in(std::env::var("UPDOG_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
        .expect("work dir");
    let tree = work.path().join("tree");
    // 80 % of the image in file bytes; and, counted in whole 4 KiB blocks (a directory takes
    // one), at most 90 % less 8 MiB for the journal and the inode tables: /usr's many small
    // files take more room than their bytes, which fills a small image first.
    let (copied, blocks) = fill_tree(
        &tree,
        mib * 8 / 10 * (1 << 20),
        (mib * 9 / 10).saturating_sub(8) << 20,
    );
    eprintln!(
        "copied {} MiB of files from /usr ({} MiB in 4 KiB blocks)",
        copied >> 20,
        blocks >> 20
    );

    let repo = TestRepo::create(&work.path().join("publisher"), "bench", "x86_64").expect("repo");
    let first = repo
        .release("1.0.0", &[], &PublishOptions::default())
        .expect("first release");
    let chunked = chunked_options();
    let big = build(&repo, work.path(), "1.1.0", &tree, mib);
    repo.publish(&big, &chunked).expect("publish");
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
    let root_name = target_file(&repo, "1.1.0-root.ext4.lz4");
    let url = format!("{}targets/{root_name}", server.url());

    let updog = PathBuf::from(env!("CARGO_BIN_EXE_updog"));
    let sysroot = node.sysroot.display().to_string();
    let disk = node.disk.display().to_string();
    let offset = root_part.byte_range().start.to_string();
    let pipeline = format!(
        "curl -sS --fail '{url}' | lz4 -dc | dd of='{disk}' bs=1M seek={offset} oflag=seek_bytes conv=notrunc,fsync status=none",
    );
    let me = std::env::current_exe().expect("bench binary");
    let (metadata_url, targets_url) = repo.urls(&server.url());
    let root_json = repo.root_json.display().to_string();
    let loop_args: Vec<String> = [
        me.display().to_string(),
        LOOP_ARG.to_string(),
        metadata_url.clone(),
        targets_url.clone(),
        root_json,
        "bench-x86_64-1.1.0-root.ext4.lz4".to_string(),
        disk.clone(),
        offset.clone(),
    ]
    .into();
    // `updog update-image` on the node whose sysroot is given.
    let update_image = |sysroot| {
        [
            updog.to_str().expect("path"),
            "update-image",
            "--progress",
            "none",
            "--sysroot",
            sysroot,
        ]
    };
    let updog_args = update_image(&sysroot);

    // The same release without chunk indexes, in a second repository served to a second node
    // (its images carry the first repository's root.json, which the install does not read).
    let streamed = part("stream").then(|| {
        let repo = TestRepo::create(&work.path().join("publisher-stream"), "bench", "x86_64")
            .expect("repo");
        let first = repo
            .release("1.0.0", &[], &PublishOptions::default())
            .expect("first release");
        repo.publish(&big, &PublishOptions::default())
            .expect("publish");
        let server = HttpServer::serve(&repo.base()).expect("server");
        let spec = NodeSpec {
            urls: Some(repo.urls(&server.url())),
            ..node_spec.clone()
        };
        let node = TestNode::create(&work.path().join("node-stream"), &first, &spec).expect("node");
        (repo, server, node)
    });
    let stream_sysroot = streamed
        .as_ref()
        .map(|(_, _, node)| node.sysroot.display().to_string());
    let stream_args = stream_sysroot.as_deref().map(update_image);

    println!(
        "ROOT image: {mib} MiB ext4 ({} MiB of files), {:.1} MiB lz4\n",
        copied >> 20,
        big.images.root.lz4_size as f64 / 1048576.0,
    );
    if part("full") || part("stream") {
        // What the machine does alone: download the ROOT stream, write the raw ROOT durably.
        let parts = [
            format!("curl -sS --fail -o /dev/null '{url}'"),
            format!(
                "dd if='{}' of='{disk}' bs=1M seek={offset} oflag=seek_bytes conv=notrunc,fsync status=none",
                big.images.root.path.display()
            ),
        ];
        let stream = streamed
            .as_ref()
            .zip(stream_args.as_ref())
            .map(|((_, _, node), args)| (node, &args[..]));
        full_install(
            &node,
            rounds,
            &pipeline,
            &loop_args,
            &updog_args,
            &parts,
            stream,
            mib << 20,
        );
    }
    if part("latency") {
        latency(&server, &node, rounds, &loop_args, &updog_args);
    }
    if part("resume") {
        resume(&repo, &server, &node, &updog, &sysroot, &updog_args);
    }
    if part("delta") || part("chunk-size") {
        delta(
            &repo,
            &server,
            &big,
            &node_spec,
            work.path(),
            &tree,
            mib,
            &part,
        );
    }
}

/// Full install: updog, the pipeline and the loop, `rounds` rounds; and `alone`, the download
/// and the durable write on their own; with `stream` (a node and its updog command), updog
/// installing the release published without chunk indexes, in the same rounds.
#[allow(clippy::too_many_arguments)]
fn full_install(
    node: &TestNode,
    rounds: usize,
    pipeline: &str,
    loop_args: &[String],
    updog_args: &[&str],
    alone: &[String; 2],
    stream: Option<(&TestNode, &[&str])>,
    image_bytes: u64,
) {
    // `UPDOG_BENCH_WRAP` (e.g. `perf record -g --`) goes in front of updog's command.
    let wrap = std::env::var("UPDOG_BENCH_WRAP").ok();
    let run_updog = |args: &[&str]| {
        let mut argv: Vec<&str> = wrap
            .as_deref()
            .map_or(Vec::new(), |w| w.split_whitespace().collect());
        argv.extend_from_slice(args);
        time(&argv)
    };
    let mut warm: Vec<Vec<Measured>> = Vec::new();
    for round in 0..rounds {
        let download = time(&["sh", "-c", &alone[0]]);
        let write = time(&["sh", "-c", &alone[1]]);
        let pipe = time(&["sh", "-c", pipeline]);
        let lp = time(&loop_args.iter().map(String::as_str).collect::<Vec<_>>());
        garbage_b(node);
        let ours = run_updog(updog_args);
        let streamed = stream.map(|(node, args)| {
            garbage_b(node);
            run_updog(args)
        });
        eprintln!(
            "round {round}: updog {:.2}s (steal {:.2}s){}, pipeline {:.2}s, loop {:.2}s (download alone {:.2}s, durable write alone {:.2}s)",
            ours.wall,
            ours.steal,
            streamed
                .as_ref()
                .map_or(String::new(), |m| format!(" (streamed {:.2}s)", m.wall)),
            pipe.wall,
            lp.wall,
            download.wall,
            write.wall
        );
        if round > 0 {
            warm.push(
                [ours, pipe, lp, download, write]
                    .into_iter()
                    .chain(streamed)
                    .collect(),
            );
        }
    }
    let image = image_bytes as f64 / 1e6;
    println!("median of {} warm rounds\n", warm.len());
    println!(
        "| full install | wall s | MB/s (decompressed ROOT) | CPU s | peak RSS MiB | steal s |"
    );
    println!("|---|---|---|---|---|---|");
    let names = [
        "updog update-image, chunked (ROOT+BOOT+HASH, every chunk verified on disk)",
        "curl \\| lz4 -dc \\| dd conv=fsync (ROOT only, nothing verified on disk)",
        "Bottlerocket's loop: tough stream → lz4 frame → file → fsync, one thread (ROOT only)",
        "alone: download the ROOT stream (curl -o /dev/null)",
        "alone: write the raw ROOT durably (dd conv=fsync from the page cache)",
        "updog update-image, streamed: no chunk index (ROOT+BOOT+HASH, verified on disk)",
    ];
    let medians: Vec<Measured> = (0..warm[0].len())
        .map(|k| Measured::median(warm.iter().map(|r| &r[k])))
        .collect();
    for (name, m) in names.iter().zip(&medians) {
        println!(
            "| {name} | {:.2} | {:.0} | {:.2} | {:.1} | {:.2} |",
            m.wall,
            image / m.wall,
            m.cpu,
            m.rss_kib as f64 / 1024.0,
            m.steal
        );
    }
    // How many times faster than `ours` the install in column k is (median of the rounds).
    let ratio = |ours: usize, k: usize| {
        median(
            warm.iter()
                .map(|r| r[k].wall / r[ours].wall)
                .collect::<Vec<_>>(),
        )
    };
    println!(
        "\nspeed-up (median of per-round ratios): {:.2}× the pipeline, {:.2}× the loop; CPU time \
         {:.2}× the loop's",
        ratio(0, 1),
        ratio(0, 2),
        medians[0].cpu / medians[2].cpu
    );
    if medians.len() > 5 {
        println!(
            "streamed: {:.2}× the pipeline, {:.2}× the loop; CPU time {:.2}× the loop's",
            ratio(5, 1),
            ratio(5, 2),
            medians[5].cpu / medians[2].cpu
        );
    }
}

/// Latency: updog and the loop, `rounds` rounds at each latency of `UPDOG_BENCH_LATENCY_MS`.
fn latency(
    server: &HttpServer,
    node: &TestNode,
    rounds: usize,
    loop_args: &[String],
    updog_args: &[&str],
) {
    let latencies = std::env::var("UPDOG_BENCH_LATENCY_MS").unwrap_or_else(|_| "2,10,40".into());
    let loop_argv: Vec<&str> = loop_args.iter().map(String::as_str).collect();
    println!(
        "\n| latency per request | updog, chunked: wall s | its requests (last round) | largest Range request (last round), MiB | loop: wall s | updog's speed-up over the loop |\n|---|---|---|---|---|---|"
    );
    for ms in latencies
        .split(',')
        .filter_map(|v| v.trim().parse::<u64>().ok())
    {
        server.set_latency(std::time::Duration::from_millis(ms));
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut requests, mut largest) = (0, 0u64);
        for round in 0..rounds {
            garbage_b(node);
            server.clear_requests();
            let u = time(updog_args);
            let log = server.requests();
            let l = time(&loop_argv);
            eprintln!(
                "latency {ms} ms, round {round}: updog {:.2}s (steal {:.2}s, {} requests), loop {:.2}s",
                u.wall,
                u.steal,
                log.len(),
                l.wall
            );
            if round > 0 {
                requests = log.len();
                largest = log
                    .iter()
                    .filter_map(testsys::LoggedRequest::range_len)
                    .max()
                    .unwrap_or(0);
                ratios.push(l.wall / u.wall);
                ours.push(u.wall);
                theirs.push(l.wall);
            }
        }
        println!(
            "| {ms} ms | {:.2} | {requests} | {:.2} | {:.2} | {:.2}× |",
            median(ours),
            largest as f64 / 1048576.0,
            median(theirs),
            median(ratios)
        );
    }
    server.set_latency(std::time::Duration::ZERO);
}

/// Resume: an install killed at 50 %, then run again.
fn resume(
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

/// Delta (and the chunk-size table): a node running `big`, updated to releases that change
/// part of ROOT.
#[allow(clippy::too_many_arguments)]
fn delta(
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
        server.clear_requests();
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

/// Publishing with the default chunk size.
fn chunked_options() -> PublishOptions {
    PublishOptions {
        chunk_size: Some(env_or(
            "UPDOG_BENCH_CHUNK_SIZE",
            update_metadata::chunks::DEFAULT_CHUNK_SIZE,
        )),
        ..PublishOptions::default()
    }
}

/// Builds a release whose ROOT holds `tree`, of `mib` MiB.
fn build(repo: &TestRepo, work: &Path, version: &str, tree: &Path, mib: u64) -> BuiltRelease {
    let mut spec = image_builder::ReleaseSpec::new(
        version.parse().expect("version"),
        "bench",
        "x86_64",
        std::fs::read(&repo.root_json).expect("root.json"),
    );
    spec.root_tree = Some(tree.to_path_buf());
    spec.root_size = Some(mib << 20);
    // One ROOT filesystem UUID and hash seed for every release (`mkfs.ext4 -U`, `-E hash_seed=`).
    spec.root_uuid_seed = Some("bench-x86_64".to_string());
    let images = image_builder::build_release(&spec, &work.join(format!("build-{version}")))
        .expect("build the release");
    BuiltRelease {
        version: version.parse().expect("version"),
        images,
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn target_file(repo: &TestRepo, suffix: &str) -> String {
    std::fs::read_dir(repo.base().join("targets"))
        .expect("targets")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(suffix))
        .unwrap_or_else(|| panic!("no target ending in {suffix}"))
}

fn index_of(repo: &TestRepo, version: &str, image: &str) -> ChunkIndex {
    let name = target_file(repo, &format!("-{version}-{image}.chunks.json"));
    ChunkIndex::from_json(&std::fs::read(repo.base().join("targets").join(name)).expect("index"))
        .expect("parse index")
}

/// Body bytes the server sent for chunk files.
fn chunk_bytes(server: &HttpServer) -> u64 {
    server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(".chunks"))
        .map(|r| r.body_bytes)
        .sum()
}

/// Fills set B's partitions with a byte pattern that matches no chunk (outside the timings).
fn garbage_b(node: &TestNode) {
    let parts = node
        .signpost()
        .expect("disk")
        .partitions(signpost::SetId::B)
        .clone();
    let disk = std::fs::OpenOptions::new()
        .write(true)
        .open(&node.disk)
        .expect("disk");
    let block = vec![0xA5u8; 8 << 20];
    for part in [&parts.boot, &parts.root, &parts.hash] {
        let range = part.byte_range();
        let mut at = range.start;
        while at < range.end {
            let n = (range.end - at).min(block.len() as u64) as usize;
            disk.write_all_at(&block[..n], at).expect("write garbage");
            at += n as u64;
        }
    }
    disk.sync_all().expect("sync");
}

/// Pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
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

/// What chunks of 64 KiB to 4 MiB would cost for an update from `old` to `new` (raw images).
fn chunk_size_table(old: &Path, new: &Path) {
    let (mut a, mut b) = (
        std::fs::File::open(old).expect("old image"),
        std::fs::File::open(new).expect("new image"),
    );
    let sizes = [64u64 << 10, 256 << 10, 1 << 20, 4 << 20];
    // Per size: changed compressed bytes, changed chunks, runs of changed chunks (requests),
    // chunks.
    let mut stats = [(0u64, 0u64, 0u64, 0u64); 4];
    let mut last_changed = [false; 4];
    let big = 4usize << 20;
    let (mut x, mut y) = (vec![0u8; big], vec![0u8; big]);
    loop {
        let n = verity::read_full(&mut b, &mut y).expect("read the new image");
        let m = verity::read_full(&mut a, &mut x).expect("read the old image");
        if n == 0 {
            break;
        }
        for (k, &size) in sizes.iter().enumerate() {
            for start in (0..n).step_by(size as usize) {
                let end = (start + size as usize).min(n);
                let changed = end > m || x[start..end] != y[start..end];
                let s = &mut stats[k];
                s.3 += 1;
                if changed {
                    let zero = y[start..end].iter().all(|&v| v == 0);
                    if !zero {
                        s.0 += lz4_flex::block::compress(&y[start..end]).len() as u64;
                    }
                    s.1 += 1;
                    if !last_changed[k] {
                        s.2 += 1;
                    }
                }
                last_changed[k] = changed;
            }
        }
    }
    println!(
        "\n| chunk size (ROOT, 10 % release) | chunks | changed | bytes to download | requests (runs of changed chunks) | index size |"
    );
    println!("|---|---|---|---|---|---|");
    for (k, size) in sizes.iter().enumerate() {
        let (bytes, changed, runs, chunks) = stats[k];
        println!(
            "| {} KiB | {chunks} | {changed} | {:.1} MiB | {runs} | {:.0} KiB |",
            size >> 10,
            bytes as f64 / 1048576.0,
            // About 190 bytes per stored chunk in the index.
            chunks as f64 * 190.0 / 1024.0
        );
    }
}

/// Bottlerocket updog's write loop: tough's target stream (hash and length checked as it
/// goes), an lz4 frame decoder, the partition written at its offset, fsync. One thread: the
/// stream is polled from the decoder's reads.
fn bottlerocket_loop(args: &[String]) {
    let [metadata, targets, root_json, target, disk, offset] = args else {
        panic!("usage: {LOOP_ARG} METADATA_URL TARGETS_URL ROOT_JSON TARGET DISK OFFSET");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let datastore = tempfile::tempdir().expect("datastore");
    let root = std::fs::read(root_json).expect("root.json");
    let config = updog::Config::parse(
        &format!("metadata_base_url = \"{metadata}\"\ntargets_base_url = \"{targets}\"\n"),
        Path::new("updog.toml"),
    )
    .expect("config");
    let transport =
        updog::transport::UpdogTransport::new(&config, updog::transport::HttpSettings::default())
            .expect("transport");
    let repo = runtime
        .block_on(
            tough::RepositoryLoader::new(
                &root,
                metadata.parse().expect("url"),
                targets.parse().expect("url"),
            )
            .transport(transport)
            .datastore(datastore.path())
            .load(),
        )
        .expect("load the repository");
    let name = tough::TargetName::new(target.as_str()).expect("target name");
    let stream = runtime
        .block_on(repo.read_target(&name))
        .expect("read target")
        .expect("target present");
    struct StreamRead<S> {
        runtime: tokio::runtime::Runtime,
        stream: std::pin::Pin<Box<S>>,
        chunk: bytes::Bytes,
    }
    impl<S> Read for StreamRead<S>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, tough::error::Error>>,
    {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            use futures_util::StreamExt;
            while self.chunk.is_empty() {
                match self.runtime.block_on(self.stream.next()) {
                    Some(Ok(c)) => self.chunk = c,
                    Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                    None => return Ok(0),
                }
            }
            let n = buf.len().min(self.chunk.len());
            buf[..n].copy_from_slice(&self.chunk.split_to(n));
            Ok(n)
        }
    }
    let reader = StreamRead {
        runtime,
        stream: Box::pin(stream),
        chunk: bytes::Bytes::new(),
    };
    let mut decoder = lz4_flex::frame::FrameDecoder::new(reader);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .expect("disk");
    std::io::Seek::seek(
        &mut file,
        std::io::SeekFrom::Start(offset.parse().expect("offset")),
    )
    .expect("seek");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    std::io::copy(&mut decoder, &mut out).expect("copy");
    out.flush().expect("flush");
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .expect("sync");
}

impl Measured {
    /// The median of each measure on its own (peak RSS: the largest).
    fn median<'a>(all: impl Iterator<Item = &'a Measured>) -> Measured {
        let all: Vec<&Measured> = all.collect();
        Measured {
            wall: median(all.iter().map(|m| m.wall).collect()),
            cpu: median(all.iter().map(|m| m.cpu).collect()),
            rss_kib: all.iter().map(|m| m.rss_kib).max().unwrap_or(0),
            steal: median(all.iter().map(|m| m.steal).collect()),
        }
    }
}

/// Runs `argv` under GNU time; panics if it fails.
fn time(argv: &[&str]) -> Measured {
    let stolen = steal_seconds();
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
        steal: steal_seconds() - stolen,
    }
}

/// The machine's steal time so far, in seconds (summed over cores): the time a virtual machine's
/// CPUs were runnable but the hypervisor ran something else. `/proc/stat`'s first line, eighth
/// value, in clock ticks (100 a second on Linux); 0 where it cannot be read.
fn steal_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .next()
        .and_then(|cpu| cpu.split_whitespace().nth(8))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |ticks| ticks / 100.0)
}

/// Copies regular files from /usr into `dst` until `budget` bytes, or `room` bytes counted in
/// whole 4 KiB blocks (files, and one block per directory). Returns both counts.
fn fill_tree(dst: &Path, budget: u64, room: u64) -> (u64, u64) {
    let block = |len: u64| len.div_ceil(4096) * 4096;
    let (mut copied, mut blocks) = (0u64, 0u64);
    let mut round = 0;
    while copied < budget {
        let before = copied;
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
                    if copied + meta.len() > budget || blocks + block(meta.len()) + 4096 > room {
                        continue;
                    }
                    let rel = path.strip_prefix("/").expect("absolute");
                    let to = dst.join(format!("copy{round}")).join(rel);
                    if let Some(parent) = to.parent() {
                        if !parent.exists() && std::fs::create_dir_all(parent).is_ok() {
                            blocks += 4096;
                        }
                    }
                    if std::fs::copy(&path, &to).is_ok() {
                        copied += meta.len();
                        blocks += block(meta.len());
                    }
                }
            }
        }
        round += 1;
        // The room ran out before the bytes did (a small image), or /usr is nearly empty.
        if copied == before || round > 20 {
            break;
        }
    }
    (copied, blocks)
}
