//! The `full` part (and `stream`): updog's full install, chunked and streamed, against the
//! pipeline, the loop, and the download and the durable write alone.

use crate::fixture::garbage_b;
use crate::measure::{Measured, median, time};
use testsys::TestNode;

/// Full install: updog, the pipeline and the loop, `rounds` rounds; and `alone`, the download
/// and the durable write on their own; with `stream` (a node and its updog command), updog
/// installing the release published without chunk indexes, in the same rounds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn full_install(
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
