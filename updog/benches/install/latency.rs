//! The `latency` part: updog's full install and the loop's with a delay on every request.

use crate::fixture::garbage_b;
use crate::measure::{median, time};
use testsys::{HttpServer, TestNode};

/// Latency: updog and the loop, `rounds` rounds at each latency of `UPDOG_BENCH_LATENCY_MS`.
pub(crate) fn latency(
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
