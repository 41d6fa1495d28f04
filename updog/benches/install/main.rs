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
//!
//! The repository is served on loopback from memory (`testsys::HttpServer::serve_from_memory`),
//! as a CDN's edge answers: every command measured shares the machine's cores with the server,
//! and a node's server is elsewhere (it keeps up to 4 GiB of files in memory).
//! `UPDOG_BENCH_SERVER=files` serves it with tower-http's `ServeDir` instead (the tests'
//! server: every request opens and reads the file through the runtime's blocking pool).

mod bottlerocket_loop;
mod chunk_size;
mod delta;
mod fixture;
mod full;
mod latency;
mod measure;
mod resume;

use bottlerocket_loop::{LOOP_ARG, bottlerocket_loop};
use delta::delta;
use fixture::{build, chunked_options, env_or, fill_tree, target_file, warm_chunk_files};
use full::full_install;
use latency::latency;
use resume::resume;
use std::path::{Path, PathBuf};
use testsys::{HttpServer, NodeSpec, PublishOptions, TestNode, TestRepo};

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
    let server_kind = server_kind();
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
    let server = server_kind.serve(&repo.base());
    println!("server: {}\n", server_kind.describe());
    warm_chunk_files(&server, &repo, "1.1.0");
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
        let server = server_kind.serve(&repo.base());
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

/// How the bench's server reads what it serves (see the module's documentation).
#[derive(Debug, Clone, Copy)]
enum ServerKind {
    Files,
    Memory,
}

impl ServerKind {
    fn describe(self) -> &'static str {
        match self {
            ServerKind::Files => "files (ServeDir)",
            ServerKind::Memory => "memory",
        }
    }

    fn serve(self, root: &Path) -> HttpServer {
        match self {
            ServerKind::Files => HttpServer::serve(root),
            ServerKind::Memory => HttpServer::serve_from_memory(root),
        }
        .expect("server")
    }
}

/// `UPDOG_BENCH_SERVER`: `files`, or `memory` (the default); checked before anything is built.
fn server_kind() -> ServerKind {
    match std::env::var("UPDOG_BENCH_SERVER").as_deref() {
        Err(std::env::VarError::NotPresent) | Ok("memory") => ServerKind::Memory,
        Ok("files") => ServerKind::Files,
        other => panic!("UPDOG_BENCH_SERVER is 'files' or 'memory', not {other:?}"),
    }
}
