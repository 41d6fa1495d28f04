//! Helpers shared by signpost's integration tests: small disks, a recording fault-injecting
//! disk, the crash-replay checker, running the binary and reading `sgdisk`'s view.
#![allow(dead_code)] // Each test binary uses a different part of this module.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use signpost::{Disk, Layout, MemDisk, SignpostDisk, Table, create_disk};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) const MIB: u64 = 1 << 20;

/// 1 MiB partitions: a 12 MiB disk that is cheap to clone and replay.
pub(crate) fn small_layout() -> Layout {
    Layout {
        boot_mib: 1,
        root_mib: 1,
        hash_mib: 1,
        reserved_mib: 1,
        private_mib: 1,
        data_mib: Some(1),
    }
}

/// A fresh in-memory disk with the small layout.
pub(crate) fn fresh_mem_disk() -> MemDisk {
    let mut disk = MemDisk::new(small_layout().needed_mib() * MIB);
    create_disk(&mut disk, "mem", &small_layout()).expect("create the disk");
    disk
}

/// What a [`Recorder`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Write { offset: u64, bytes: Vec<u8> },
    Sync,
}

/// A disk wrapper that records every write (offset, bytes) and every sync.
#[derive(Debug)]
pub(crate) struct Recorder<D> {
    pub(crate) inner: D,
    pub(crate) events: Vec<Event>,
}

impl<D: Disk> Recorder<D> {
    pub(crate) fn new(inner: D) -> Recorder<D> {
        Recorder {
            inner,
            events: Vec::new(),
        }
    }
}

impl<D: Disk> Read for Recorder<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<D: Disk> Write for Recorder<D> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let offset = self.inner.stream_position()?;
        self.inner.write_all(buf)?;
        self.events.push(Event::Write {
            offset,
            bytes: buf.to_vec(),
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<D: Disk> Seek for Recorder<D> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<D: Disk> Disk for Recorder<D> {
    fn sync(&mut self) -> io::Result<()> {
        self.events.push(Event::Sync);
        self.inner.sync()
    }
}

/// Runs `change` on `old` (opened with `active`) through a [`Recorder`]; returns the events.
pub(crate) fn record(
    old: &MemDisk,
    active: Option<signpost::SetId>,
    no_sync_between_copies: bool,
    change: impl FnOnce(&mut SignpostDisk<Recorder<MemDisk>>) -> signpost::Result<()>,
) -> Vec<Event> {
    let mut sd = SignpostDisk::open(Recorder::new(old.clone()), "crash").expect("open");
    sd.set_active(active);
    if no_sync_between_copies {
        sd.unsafe_skip_sync_between_copies();
    }
    change(&mut sd).expect("the transition succeeds");
    let events = sd.into_inner().events;
    assert!(
        events.iter().any(|e| matches!(e, Event::Write { .. })),
        "the transition wrote nothing"
    );
    events
}

/// The result of replaying crashes.
#[derive(Debug, Default)]
pub(crate) struct CrashReport {
    pub(crate) tried: usize,
    pub(crate) failures: Vec<String>,
}

fn table_of(disk: MemDisk) -> Table {
    SignpostDisk::open(disk, "crash")
        .expect("open")
        .table()
        .clone()
}

fn apply(disk: &mut MemDisk, offset: u64, bytes: &[u8]) {
    disk.write_at(offset, bytes).expect("replay a write");
}

/// Replays the crash model of design.md section 4 over `events` applied to `old`:
/// (a) every prefix of the writes, cut at every write call and every 512-byte boundary within
/// a write; (b) `random` seeded crashes that keep every write before the last completed sync,
/// a random subset of the 512-byte sectors written after it and possibly one torn sector.
/// Each crashed disk must read (with repair) as the old or the new table with a bootable set.
pub(crate) fn check_crashes(
    old: &MemDisk,
    events: &[Event],
    seed: u64,
    random: usize,
) -> CrashReport {
    let mut new = old.clone();
    for event in events {
        if let Event::Write { offset, bytes } = event {
            apply(&mut new, *offset, bytes);
        }
    }
    let old_table = table_of(old.clone());
    let new_table = table_of(new);
    let mut report = CrashReport::default();
    let mut check = |disk: MemDisk, what: &dyn Fn() -> String| {
        report.tried += 1;
        if let Err(problem) = check_state(disk, &old_table, &new_table) {
            report.failures.push(format!("{}: {problem}", what()));
        }
    };

    let writes: Vec<(u64, &[u8])> = events
        .iter()
        .filter_map(|e| match e {
            Event::Write { offset, bytes } => Some((*offset, bytes.as_slice())),
            Event::Sync => None,
        })
        .collect();
    // (a) prefixes.
    let mut disk = old.clone();
    for (i, (offset, bytes)) in writes.iter().enumerate() {
        for cut in (0..bytes.len()).step_by(512) {
            let mut crashed = disk.clone();
            apply(&mut crashed, *offset, &bytes[..cut]);
            check(crashed, &|| format!("prefix: write {i} cut at byte {cut}"));
        }
        apply(&mut disk, *offset, bytes);
    }
    check(disk, &|| "all writes done".to_string());

    // (b) random crashes.
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0..random {
        let crash_at = rng.random_range(0..=events.len());
        let before = &events[..crash_at];
        let last_sync = before.iter().rposition(|e| *e == Event::Sync);
        let mut crashed = old.clone();
        let mut pending = Vec::new();
        for (i, event) in before.iter().enumerate() {
            let Event::Write { offset, bytes } = event else {
                continue;
            };
            if last_sync.is_some_and(|s| i < s) {
                apply(&mut crashed, *offset, bytes);
            } else {
                for (k, chunk) in bytes.chunks(512).enumerate() {
                    pending.push((offset + 512 * k as u64, chunk));
                }
            }
        }
        let mut kept = Vec::new();
        let mut left = Vec::new();
        for piece in pending {
            if rng.random_bool(0.5) {
                kept.push(piece);
            } else {
                left.push(piece);
            }
        }
        let torn = if !left.is_empty() && rng.random_bool(0.5) {
            let (offset, chunk) = left[rng.random_range(0..left.len())];
            let len = rng.random_range(1..chunk.len().max(2));
            Some((offset, &chunk[..len.min(chunk.len())]))
        } else {
            None
        };
        for (offset, chunk) in kept.iter().copied().chain(torn) {
            apply(&mut crashed, offset, chunk);
        }
        let kept_len = kept.len();
        check(crashed, &|| {
            format!(
                "random crash {n} (seed {seed}): after event {crash_at}, {kept_len} pending sectors kept, torn {:?}",
                torn.map(|(o, c)| (o / 512, c.len()))
            )
        });
    }
    report
}

fn check_state(disk: MemDisk, old: &Table, new: &Table) -> Result<(), String> {
    let mut sd = SignpostDisk::open(disk, "crash").map_err(|e| e.to_string())?;
    let table = sd.table().clone();
    if table != *old && table != *new {
        return Err("the table read back is neither the old nor the new one".to_string());
    }
    if sd.next_boot().is_none() {
        return Err("no bootable set".to_string());
    }
    sd.repair().map_err(|e| e.to_string())?;
    let again = SignpostDisk::open(sd.into_inner(), "crash").map_err(|e| e.to_string())?;
    if !again.health().is_clean() || *again.table() != table {
        return Err(format!("repair did not converge: {:?}", again.health()));
    }
    Ok(())
}

/// The `signpost` binary.
pub(crate) fn signpost() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_signpost"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A sysroot of this test process's own, for runs that name none: the verbs that write the table
/// take the update lock `<sysroot>/run/updog.lock`, which must be neither the host's `/run` nor
/// shared with tests running in parallel.
pub(crate) fn own_sysroot() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("signpost-sysroot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the test sysroot");
    dir
}

/// Runs the binary with `args` (and `--sysroot` of [`own_sysroot`] unless `args` name one)
/// and returns its output.
pub(crate) fn run_signpost(args: &[&str]) -> Output {
    let mut cmd = signpost();
    cmd.args(args);
    if !args.contains(&"--sysroot") {
        cmd.arg("--sysroot").arg(own_sysroot());
    }
    cmd.output().expect("run signpost")
}

/// Stdout of a run that must succeed.
pub(crate) fn ok_stdout(args: &[&str]) -> String {
    let out = run_signpost(args);
    assert!(
        out.status.success(),
        "signpost {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a run that must fail with exit code 1 and a one-line message.
pub(crate) fn err_line(args: &[&str]) -> String {
    let out = run_signpost(args);
    assert_eq!(out.status.code(), Some(1), "signpost {args:?}: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr}"
    );
    stderr.trim_end().to_string()
}

/// `path` as a command-line argument.
pub(crate) fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `signpost status --json --disk <disk>` with `extra` arguments, which must succeed, parsed.
pub(crate) fn status_json(disk: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["status", "--json", "--disk", s(disk)];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok_stdout(&args)).expect("status prints JSON")
}

/// Stdout of `signpost <verb> --disk <disk> --sysroot <sysroot>`, which must succeed: a verb run
/// by the node whose root is `sysroot`.
pub(crate) fn ok_verb(verb: &str, disk: &Path, sysroot: &Path) -> String {
    ok_stdout(&[verb, "--disk", s(disk), "--sysroot", s(sysroot)])
}

/// Creates a sparse image at `dir/name` with `signpost create-disk` (default layout).
pub(crate) fn create_image(dir: &Path, name: &str, size_mib: u64) -> PathBuf {
    let path = dir.join(name);
    ok_stdout(&[
        "create-disk",
        "--disk",
        s(&path),
        "--size-mib",
        &size_mib.to_string(),
    ]);
    path
}

/// The `create-disk` arguments of [`small_image`]: a 48 MiB image at `path` with 8 MiB roots.
pub(crate) fn small_image_args(path: &Path) -> Vec<&str> {
    vec![
        "create-disk",
        "--disk",
        s(path),
        "--size-mib",
        "48",
        "--root-mib",
        "8",
    ]
}

/// Creates the small image `dir/disk.img` with [`small_image_args`].
pub(crate) fn small_image(dir: &Path) -> PathBuf {
    let path = dir.join("disk.img");
    ok_stdout(&small_image_args(&path));
    path
}

/// Overwrites 8 bytes of the image at `offset` with garbage, as a damaged sector would.
pub(crate) fn corrupt(img: &Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open the image to corrupt it");
    f.seek(SeekFrom::Start(offset)).expect("seek in the image");
    f.write_all(b"garbage!").expect("corrupt the image");
}

/// One partition as `sgdisk -i` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SgdiskPartition {
    pub(crate) type_guid: String,
    pub(crate) unique_guid: String,
    pub(crate) first_lba: u64,
    pub(crate) last_lba: u64,
    pub(crate) attributes: u64,
    pub(crate) name: String,
}

/// Runs `sgdisk -i <number> <image>` and parses it.
pub(crate) fn sgdisk_info(sgdisk: &Path, image: &Path, number: u32) -> SgdiskPartition {
    let out = test_tools::run(
        Command::new(sgdisk)
            .arg("-i")
            .arg(number.to_string())
            .arg(image),
    );
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no '{name}' in sgdisk output:\n{out}"))
            .trim()
            .to_string()
    };
    let first_word = |s: String| s.split_whitespace().next().unwrap_or_default().to_string();
    let name = field("Partition name:");
    SgdiskPartition {
        type_guid: first_word(field("Partition GUID code:")).to_lowercase(),
        unique_guid: field("Partition unique GUID:").to_lowercase(),
        first_lba: first_word(field("First sector:"))
            .parse()
            .expect("first sector"),
        last_lba: first_word(field("Last sector:"))
            .parse()
            .expect("last sector"),
        attributes: u64::from_str_radix(&field("Attribute flags:"), 16).expect("hex flags"),
        name: name.trim_matches('\'').to_string(),
    }
}
