//! Timing: a command run under GNU time (wall, CPU, peak RSS) with the hypervisor's steal time
//! over the same span, and the medians the tables print.

use std::process::Command;

pub(crate) struct Measured {
    pub(crate) wall: f64,
    pub(crate) cpu: f64,
    pub(crate) rss_kib: u64,
    /// CPU time the hypervisor gave to others while the command ran (steal, all cores).
    pub(crate) steal: f64,
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Measured {
    /// The median of each measure on its own (peak RSS: the largest).
    pub(crate) fn median<'a>(all: impl Iterator<Item = &'a Measured>) -> Measured {
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
pub(crate) fn time(argv: &[&str]) -> Measured {
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
