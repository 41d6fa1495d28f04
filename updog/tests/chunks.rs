//! Chunked installs: byte-identical results, copies from the running set, only changed chunks
//! downloaded, refusals (a corrupted chunk, a tampered index), the fallback for servers without
//! Range support, file:// repositories, a distant server, and resuming after a kill or a power
//! cut without downloading a verified chunk again.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    World, active_fingerprint, assert_inactive_unbootable, assert_install_refused,
    assert_installed, assert_refused_with, assert_trickle_refused, ok, requests_for, sigterm,
    tools_present, wait_for_body,
};
use signpost::SetId;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};
use std::time::Duration;
use test_tools::noise;
use testsys::{BuiltRelease, Fault, HttpServer, PublishOptions, ServedNode, TestNode};
use update_metadata::ChunkIndex;
use update_metadata::chunks::ChunkData;

/// Small chunks, so that the small test images have many.
const CHUNK: u64 = 64 << 10;
const FILES: usize = 48;

/// Bytes that compress to about a quarter, as most of a root filesystem does: in every 4 KiB,
/// 1 KiB of noise and 3 KiB of zeros.
fn compressible(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = noise(seed, len);
    for (i, b) in bytes.iter_mut().enumerate() {
        if i % 4096 >= 1024 {
            *b = 0;
        }
    }
    bytes
}

/// The root tree of a release: `FILES` files of 48 KiB, from `contents`; those in `changed`
/// get other contents.
fn tree_of(
    version: u64,
    changed: &[usize],
    contents: fn(u64, usize) -> Vec<u8>,
) -> Vec<(String, Vec<u8>)> {
    (0..FILES)
        .map(|i| {
            let seed = if changed.contains(&i) {
                1000 * version + i as u64
            } else {
                i as u64 + 1
            };
            (
                format!("usr/share/data/file{i:02}"),
                contents(seed, 48 << 10),
            )
        })
        .collect()
}

fn chunked() -> PublishOptions {
    PublishOptions {
        chunk_size: Some(CHUNK),
        ..PublishOptions::default()
    }
}

/// A world whose releases are published in chunks: 1.0.0 runs in set A.
fn world() -> World {
    world_of(noise)
}

fn world_of(contents: fn(u64, usize) -> Vec<u8>) -> World {
    let served = ServedNode::with_first(|repo| {
        // The same ROOT filesystem UUID for every release, as `mkfs.ext4 -U` with `-E hash_seed=`.
        repo.root_uuid_seed = Some("demo-x86_64".to_string());
        let files = tree_of(1, &[], contents);
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        repo.release("1.0.0", &files, &chunked())
    });
    World(served.unwrap())
}

/// Publishes 1.1.0 with `changed` files different from 1.0.0.
fn release(world: &World, changed: &[usize]) -> BuiltRelease {
    release_of(world, changed, noise)
}

fn release_of(
    world: &World,
    changed: &[usize],
    contents: fn(u64, usize) -> Vec<u8>,
) -> BuiltRelease {
    let files = tree_of(2, changed, contents);
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_str(), b.as_slice()))
        .collect();
    world.repo.release("1.1.0", &files, &chunked()).unwrap()
}

/// A chunked world with 1.1.0 published, every file changed (no chunk of ROOT's can be copied
/// from set A), and ROOT's index of 1.1.0.
fn everything_changed() -> (World, BuiltRelease, ChunkIndex) {
    everything_changed_of(noise)
}

/// The same, with files made by `contents`.
fn everything_changed_of(contents: fn(u64, usize) -> Vec<u8>) -> (World, BuiltRelease, ChunkIndex) {
    let world = world_of(contents);
    let second = release_of(&world, &(0..FILES).collect::<Vec<_>>(), contents);
    let root = index(&world, "1.1.0", "root");
    (world, second, root)
}

const IMAGES: [&str; 3] = ["boot", "root", "hash"];

fn image<'a>(release: &'a BuiltRelease, which: &str) -> &'a image_builder::ImageFile {
    match which {
        "boot" => &release.images.boot,
        "root" => &release.images.root,
        _ => &release.images.hash,
    }
}

/// The published index of `which` of `version`.
fn index(world: &World, version: &str, which: &str) -> ChunkIndex {
    let lz4 = match which {
        "boot" => "boot.ext4.lz4",
        "root" => "root.ext4.lz4",
        _ => "hash.verity.lz4",
    };
    let path = world.target_file(&format!("{version}-{lz4}.chunks.json"));
    ChunkIndex::from_json(&std::fs::read(path).unwrap()).unwrap()
}

/// Fills set B's three partitions with a repeating byte.
fn fill_b(node: &TestNode, byte: u8) {
    let parts = node.signpost().unwrap().partitions(SetId::B).clone();
    let disk = std::fs::OpenOptions::new()
        .write(true)
        .open(&node.disk)
        .unwrap();
    for part in [&parts.boot, &parts.root, &parts.hash] {
        let fill = vec![byte; part.size_bytes() as usize];
        disk.write_all_at(&fill, part.byte_range().start).unwrap();
    }
    disk.sync_all().unwrap();
}

/// The chunks of `which` that set B holds already (compared with the image's bytes).
fn in_place(node: &TestNode, release: &BuiltRelease, which: &str, index: &ChunkIndex) -> Vec<bool> {
    let img = image(release, which);
    let want = std::fs::read(&img.path).unwrap();
    let have = node.read_partition(SetId::B, which, img.size).unwrap();
    (0..index.chunks().len())
        .map(|i| {
            let r = index.range(i);
            let r = r.start as usize..r.end as usize;
            want[r.clone()] == have[r]
        })
        .collect()
}

/// The end of the served path of the chunk file of `index`.
fn chunk_suffix(index: &ChunkIndex) -> String {
    format!(".{}", index.chunk_file().as_str())
}

/// The chunks of `index` that the logged Range requests for its chunk file covered.
fn requested(server: &HttpServer, index: &ChunkIndex) -> BTreeSet<usize> {
    let mut covered = BTreeSet::new();
    for request in requests_for(server, &chunk_suffix(index)) {
        let (a, b) = request
            .range_bounds()
            .expect("chunk files are fetched with Range");
        let b = b.expect("chunk ranges are closed");
        for (i, chunk) in index.chunks().iter().enumerate() {
            if let ChunkData::Stored { offset, length, .. } = chunk.data {
                if offset <= b && a < offset + length {
                    covered.insert(i);
                }
            }
        }
    }
    covered
}

/// Body bytes sent for paths ending in `suffix`.
fn bytes_sent(server: &HttpServer, suffix: &str) -> u64 {
    requests_for(server, suffix)
        .iter()
        .map(|r| r.body_bytes)
        .sum()
}

/// The download events of `--progress json`'s output, in order.
fn download_events(stdout: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|v| v["phase"] == "download")
}

/// The last download event of each image.
fn last_events(stdout: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    download_events(stdout)
        .map(|v| (v["image"].as_str().unwrap().to_string(), v))
        .collect()
}

#[test]
fn an_update_downloads_only_the_changed_chunks_and_copies_the_rest() {
    if !tools_present() {
        return;
    }
    let world = world();
    let second = release(&world, &[3, 20, 41]);
    fill_b(&world.node, 0xAA);
    let before = active_fingerprint(&world.node);
    world.server.clear_requests();
    let stdout = ok(&world.updog(&["update-image", "--progress", "json"]));
    assert_installed(&world.node, &second);
    assert_eq!(active_fingerprint(&world.node), before, "set A changed");

    let mut changed_bytes = 0u64;
    let mut total_bytes = 0u64;
    let mut index_bytes = 0u64;
    let last = last_events(&stdout);
    for which in IMAGES {
        let new = index(&world, "1.1.0", which);
        let old = index(&world, "1.0.0", which);
        // The new release's index, and the running release's (for copies from any offset).
        index_bytes += (new.to_json().len() + old.to_json().len()) as u64;
        // Chunks whose bytes differ from 1.0.0's at the same offset.
        let changed: BTreeSet<usize> = (0..new.chunks().len())
            .filter(|&i| old.chunks().get(i).map(|c| c.sha256) != Some(new.chunks()[i].sha256))
            .collect();
        let size = |set: &BTreeSet<usize>| -> u64 {
            set.iter()
                .map(|&i| match new.chunks()[i].data {
                    ChunkData::Stored { length, .. } => length,
                    ChunkData::Zero => 0,
                })
                .sum()
        };
        let fetched = requested(&world.server, &new);
        assert!(
            fetched.is_subset(&changed),
            "{which}: fetched {fetched:?}, but only {changed:?} changed"
        );
        changed_bytes += size(&changed);
        total_bytes += new.chunk_file_length();
        let event = &last[which];
        assert_eq!(event["chunks_total"], new.chunks().len() as u64, "{event}");
        assert_eq!(event["chunks_downloaded"], fetched.len() as u64, "{event}");
        if which == "root" {
            assert!(event["chunks_copied"].as_u64().unwrap() > 0, "{event}");
        }
    }
    let downloaded = bytes_sent(&world.server, ".chunks");
    let with_indexes = downloaded + bytes_sent(&world.server, ".chunks.json");
    eprintln!(
        "delta: {downloaded} chunk bytes + {} index bytes downloaded; changed chunks {changed_bytes} \
         bytes; all chunks {total_bytes} bytes",
        with_indexes - downloaded
    );
    assert!(
        downloaded <= changed_bytes,
        "{downloaded} > {changed_bytes}"
    );
    assert!(with_indexes <= changed_bytes + index_bytes);
    assert!(
        downloaded * 4 < total_bytes,
        "a few changed files should not cost a quarter of the image"
    );
    // Nothing was streamed.
    assert_eq!(bytes_sent(&world.server, ".lz4"), 0);
}

#[test]
fn a_partition_of_garbage_ends_identical_to_the_image_zero_chunks_included() {
    if !tools_present() {
        return;
    }
    // Everything changed: nothing can be copied.
    let (world, second, root) = everything_changed();
    assert!(
        root.chunks().iter().any(|c| c.data == ChunkData::Zero),
        "the image has all-zero chunks"
    );
    fill_b(&world.node, 0x5C);
    let stdout = ok(&world.updog(&["update-image", "--progress", "json"]));
    assert_installed(&world.node, &second);
    // Progress counts the zero chunks (with the copies) once they are written, not before.
    let zeros = root
        .chunks()
        .iter()
        .filter(|c| c.data == ChunkData::Zero)
        .count() as u64;
    let events: Vec<serde_json::Value> = download_events(&stdout)
        .filter(|v| v["image"] == "root")
        .collect();
    let (last, before) = events.split_last().unwrap();
    assert_eq!(last["chunks_copied"], zeros, "{last}");
    assert_eq!(
        last["chunks_downloaded"],
        root.chunks().len() as u64 - zeros,
        "{last}"
    );
    for event in before {
        assert_eq!(event["chunks_copied"], 0, "{event}");
    }
}

#[test]
fn a_corrupted_chunk_is_refused_before_it_is_written_and_named() {
    if !tools_present() {
        return;
    }
    let (world, second, root) = everything_changed_of(compressible);
    // The last stored chunk: every one before it in the file is fetched and written first.
    let (bad, offset, length) = root
        .chunks()
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match c.data {
            ChunkData::Stored { offset, length, .. } => Some((i, offset, length)),
            ChunkData::Zero => None,
        })
        .next_back()
        .unwrap();
    let file = world.target_file(&chunk_suffix(&root));
    let good = std::fs::read(&file).unwrap();
    let mut bytes = good.clone();
    bytes[(offset + length / 2) as usize] ^= 0xFF;
    std::fs::write(&file, &bytes).unwrap();
    fill_b(&world.node, 0xAA);
    assert_install_refused(
        &world,
        &[
            &format!("chunk {bad} of '"),
            "1.1.0-root.ext4.lz4'",
            "sha256",
            "it was not written",
            &format!("bytes {offset}..{}", offset + length),
        ],
    );
    // Nothing decompressed from it reached the partition: its place holds at most its
    // compressed bytes as they arrived (the spool, behind a 64-byte header), and past them
    // what was there before.
    let r = root.range(bad);
    let part = world.node.read_partition(SetId::B, "root", r.end).unwrap();
    let place = &part[r.start as usize..];
    let spooled = 64 + length as usize;
    let served = &bytes[offset as usize..(offset + length) as usize];
    assert!(
        place.iter().all(|&b| b == 0xAA)
            || (&place[64..spooled] == served && place[spooled..].iter().all(|&b| b == 0xAA)),
        "the bad chunk reached the partition"
    );
    // Once the server has it right, the restart checks what the spool holds against the index,
    // refuses it and fetches the chunk again.
    std::fs::write(&file, &good).unwrap();
    world.server.clear_requests();
    ok(&world.updog(&["update-image", "--progress", "none"]));
    assert!(requested(&world.server, &root).contains(&bad));
    assert_installed(&world.node, &second);
}

#[test]
fn a_tampered_chunk_index_is_refused_by_tuf() {
    if !tools_present() {
        return;
    }
    let world = world();
    release(&world, &[1]);
    let path = world.target_file("1.1.0-root.ext4.lz4.chunks.json");
    let text = std::fs::read_to_string(&path).unwrap();
    // A plausible edit: another (well-formed) hash for the first chunk.
    let at = text.find("\"sha256\":\"").unwrap() + 10;
    let mut tampered = text.clone().into_bytes();
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_ne!(tampered, text);
    std::fs::write(&path, tampered).unwrap();
    assert_install_refused(
        &world,
        &[
            "Failed to fetch target '",
            "1.1.0-root.ext4.lz4.chunks.json'",
            "Hash mismatch",
        ],
    );
}

#[test]
fn a_server_without_range_support_gets_the_lz4_stream() {
    if !tools_present() {
        return;
    }
    let world = world();
    let second = release(&world, &[5]);
    world.server.inject(".chunks", Fault::NoRange, None);
    world.server.clear_requests();
    ok(&world.updog(&["update-image", "--progress", "none"]));
    assert_installed(&world.node, &second);
    assert!(
        bytes_sent(&world.server, "1.1.0-root.ext4.lz4") > 0,
        "ROOT was streamed"
    );
}

#[test]
fn a_trickling_chunk_file_is_cut_off_below_the_minimum_rate_and_refused() {
    if !tools_present() {
        return;
    }
    let world = world();
    release(&world, &[5]);
    world.server.clear_requests();
    // Each Range answer trickles after 4000 bytes.
    assert_trickle_refused(&world, "1.1.0-root.ext4.lz4.chunks");
}

#[test]
fn a_file_url_repository_installs_from_chunks() {
    if !tools_present() {
        return;
    }
    let world = world();
    let second = release(&world, &[7, 8]);
    world.use_file_urls();
    world.server.clear_requests();
    let stdout = ok(&world.updog(&["update-image", "--progress", "json"]));
    assert!(world.server.requests().is_empty(), "nothing went over HTTP");
    assert_installed(&world.node, &second);
    let last = last_events(&stdout);
    assert!(
        last["root"]["chunks_copied"].as_u64().unwrap() > 0,
        "{stdout}"
    );
}

/// A chunked world with 1.1.0 (every file changed) published, set B full of garbage, and
/// `faults` injected, in order, into the answers for ROOT's chunk file (each for so many
/// answers, or all); returns ROOT's index too.
fn interrupted(faults: &[(Fault, Option<u32>)]) -> (World, BuiltRelease, ChunkIndex) {
    let (world, second, root) = everything_changed();
    fill_b(&world.node, 0xAA);
    let suffix = chunk_suffix(&root);
    for (fault, times) in faults {
        world.server.inject(&suffix, fault.clone(), *times);
    }
    (world, second, root)
}

fn updog_cmd(world: &World, args: &[&str]) -> Command {
    let mut cmd = testsys::updog_command(&world.node.sysroot, args);
    cmd.env_remove(powercut::AT_ENV)
        .env_remove(powercut::LOG_ENV);
    cmd
}

/// After an interrupted install: runs it again and checks it completes, fetches no chunk that
/// was already in place, and leaves set B identical to the release.
fn resume_and_check(world: &World, second: &BuiltRelease) -> usize {
    let mut reused = 0;
    let mut before = Vec::new();
    for which in IMAGES {
        let idx = index(world, "1.1.0", which);
        let here = in_place(&world.node, second, which, &idx);
        reused += here.iter().filter(|&&h| h).count();
        before.push((which, idx, here));
    }
    world.server.clear_requests();
    let out = updog_cmd(world, &["update-image", "--progress", "none"])
        .output()
        .unwrap();
    ok(&out);
    for (which, idx, here) in &before {
        for i in requested(&world.server, idx) {
            assert!(
                !here[i],
                "{which}: chunk {i} was in place but fetched again"
            );
        }
    }
    assert_installed(&world.node, second);
    reused
}

#[test]
fn a_killed_install_resumes_without_downloading_a_verified_chunk_again() {
    if !tools_present() {
        return;
    }
    // The first four answers for ROOT's chunks are whole; every later one stalls in the middle
    // of its first chunk.
    let (world, second, root) = interrupted(&[
        (Fault::Pass, Some(4)),
        (Fault::StallAfter(CHUNK / 2, Duration::from_secs(60)), None),
    ]);
    let mut child = updog_cmd(&world, &["update-image", "--progress", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = 0;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["image"] == "root" && v["chunks_downloaded"].as_u64().unwrap_or(0) >= 2 {
            seen = v["chunks_downloaded"].as_u64().unwrap();
            break;
        }
    }
    assert!(seen >= 2, "the install never wrote a ROOT chunk");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the install was still running when killed"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    world.server.clear_faults();
    let here = in_place(&world.node, &second, "root", &root);
    assert!(
        here.iter().filter(|&&h| h).count() as u64 >= seen,
        "the chunks written before the kill are on disk"
    );
    resume_and_check(&world, &second);
}

#[test]
fn a_killed_install_keeps_the_chunks_it_received_and_the_restart_fetches_none_of_them_again() {
    if !tools_present() {
        return;
    }
    // Files that compress, so that each chunk's compressed bytes fit in its place.
    let (world, second, root) = everything_changed_of(compressible);
    fill_b(&world.node, 0xAA);
    // The first answer for ROOT's chunks stalls in its fourth chunk; the others come whole.
    // The three chunks before the stall are written; those of the next answers arrive but
    // cannot be written before the fourth.
    let suffix = chunk_suffix(&root);
    let fourth = root
        .chunks()
        .iter()
        .filter_map(|c| match c.data {
            ChunkData::Stored { offset, .. } => Some(offset),
            ChunkData::Zero => None,
        })
        .nth(3)
        .unwrap();
    world.server.inject(
        &suffix,
        Fault::StallAfter(fourth + 100, Duration::from_secs(60)),
        Some(1),
    );
    let mut child = updog_cmd(&world, &["update-image", "--progress", "none"])
        .env("UPDOG_READ_TIMEOUT_MS", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The chunks the server sent whole, in the answers after the stalled one.
    let received = |server: &HttpServer| -> BTreeSet<usize> {
        let mut whole = BTreeSet::new();
        for r in requests_for(server, &suffix).iter().skip(1) {
            let (a, _) = r.range_bounds().unwrap();
            for (i, chunk) in root.chunks().iter().enumerate() {
                if let ChunkData::Stored { offset, length, .. } = chunk.data {
                    if a <= offset && offset + length <= a + r.body_bytes {
                        whole.insert(i);
                    }
                }
            }
        }
        whole
    };
    let waited = std::time::Instant::now();
    while received(&world.server).len() < 3 && waited.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Time for the install to read what was sent.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the install was still running when killed"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let received = received(&world.server);
    assert!(received.len() >= 3, "chunks received whole: {received:?}");
    let here = in_place(&world.node, &second, "root", &root);
    assert!(
        received.iter().all(|&i| !here[i]),
        "the chunks after the stalled one were not written: {received:?}"
    );
    world.server.clear_faults();
    // The restart decompresses them from the partition and fetches none of them again.
    resume_and_check(&world, &second);
    let again: Vec<usize> = requested(&world.server, &root)
        .intersection(&received)
        .copied()
        .collect();
    assert!(
        again.is_empty(),
        "received before the kill and fetched again: {again:?}"
    );
}

#[test]
fn a_stopped_install_writes_what_it_fetched_and_the_restart_fetches_none_of_it_again() {
    if !tools_present() {
        return;
    }
    // Every answer for ROOT's chunks waits a moment before its body: requests are in flight
    // when the stop comes.
    let (world, second, root) =
        interrupted(&[(Fault::StallAfter(0, Duration::from_millis(300)), None)]);
    assert_refused_with(&world, &["cancelled"], assert_inactive_unbootable, || {
        let child = updog_cmd(&world, &["update-image", "--progress", "none"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_body(&world.server, &chunk_suffix(&root));
        std::thread::sleep(Duration::from_millis(100));
        sigterm(child)
    });
    // Every ROOT chunk asked for before the stop was received and written.
    let asked = requested(&world.server, &root);
    assert!(!asked.is_empty());
    let here = in_place(&world.node, &second, "root", &root);
    for &i in &asked {
        assert!(
            here[i],
            "chunk {i} was fetched before the stop but is not in set B"
        );
    }
    world.server.clear_faults();
    // The restart fetches none of them again.
    resume_and_check(&world, &second);
    for i in requested(&world.server, &root) {
        assert!(!asked.contains(&i), "chunk {i} was fetched twice");
    }
}

#[test]
fn a_power_cut_at_each_chunk_point_resumes_without_downloading_a_verified_chunk_again() {
    if !tools_present() {
        return;
    }
    let (world, second, _) = everything_changed();
    // Learn the points of a whole install.
    fill_b(&world.node, 0xAA);
    let log = world.work.path().join("points.log");
    let out = updog_cmd(&world, &["update-image", "--progress", "none"])
        .env(powercut::LOG_ENV, &log)
        .output()
        .unwrap();
    ok(&out);
    let points: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let chunk_points: Vec<usize> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.starts_with("updog.chunks") || p.as_str() == "updog.partition-synced")
        .map(|(n, _)| n + 1)
        .collect();
    assert!(
        points
            .iter()
            .filter(|p| *p == "updog.chunks-checkpoint")
            .count()
            >= 2,
        "ROOT has checkpoints mid-download: {points:?}"
    );
    let mut resumed_with = Vec::new();
    for n in chunk_points {
        fill_b(&world.node, 0xAA);
        let cut = updog_cmd(&world, &["update-image", "--progress", "none"])
            .env(powercut::AT_ENV, n.to_string())
            .output()
            .unwrap();
        assert!(!cut.status.success(), "the power was cut at point {n}");
        resumed_with.push((points[n - 1].clone(), resume_and_check(&world, &second)));
    }
    eprintln!("chunks in place when resuming after each cut: {resumed_with:?}");
    // A late cut leaves more in place than the first: the partition is the journal.
    let counts: Vec<usize> = resumed_with.iter().map(|(_, n)| *n).collect();
    assert!(counts.first() < counts.last(), "{resumed_with:?}");
}

/// Publishes 1.1.0 with every file changed, lets `serve` set up the server (it gets ROOT's
/// index and the path suffix of its chunk file), installs it (checking set B), and returns the
/// requests for ROOT's chunk file, and every Range request of the install in the order they
/// came (BOOT's, HASH's, then ROOT's chunk file).
fn install_everything_changed(
    serve: impl FnOnce(&HttpServer, &ChunkIndex, &str),
) -> (Vec<testsys::LoggedRequest>, Vec<testsys::LoggedRequest>) {
    let (world, second, root) = everything_changed();
    let suffix = chunk_suffix(&root);
    serve(&world.server, &root, &suffix);
    world.server.clear_requests();
    ok(&world.updog(&["update-image", "--progress", "none"]));
    assert_installed(&world.node, &second);
    let ranged = world
        .server
        .requests()
        .into_iter()
        .filter(|r| r.range_len().is_some())
        .collect();
    (requests_for(&world.server, &suffix), ranged)
}

#[test]
fn a_dropped_connection_fetches_only_the_rest_of_the_range_again() {
    if !tools_present() {
        return;
    }
    let mut cut = 0;
    let (requests, _) = install_everything_changed(|server, root, suffix| {
        // The first answer breaks off in the middle of its first chunk.
        let ChunkData::Stored { length, .. } = root.chunks()[0].data else {
            panic!("ROOT's first chunk holds the superblock");
        };
        cut = length / 2;
        server.inject(suffix, Fault::DropAfter(cut), Some(1));
    });
    let range = |r: &testsys::LoggedRequest| r.range_bounds().unwrap();
    let (first_start, first_end) = range(&requests[0]);
    assert_eq!(
        requests[0].body_bytes, cut,
        "the first request was cut: {requests:?}"
    );
    // The rest of the dropped range is asked for again from the first byte not received (in
    // the middle of a chunk): nothing is fetched twice.
    let retry = requests[1..]
        .iter()
        .find(|r| range(r).1 == first_end)
        .unwrap_or_else(|| panic!("the rest of the range was not asked for: {requests:?}"));
    assert_eq!(
        range(retry).0,
        first_start + requests[0].body_bytes,
        "{requests:?}"
    );
}

#[test]
fn on_a_distant_server_requests_grow_to_cover_the_round_trip() {
    if !tools_present() {
        return;
    }
    let mut stored = 0;
    let (requests, ranged) = install_everything_changed(|server, root, _| {
        stored = root
            .chunks()
            .iter()
            .filter(|c| c.data != ChunkData::Zero)
            .count();
        // Every answer takes 50 ms, as from a server far away.
        server.set_latency(Duration::from_millis(50));
    });
    let lengths: Vec<u64> = requests.iter().map(|r| r.range_len().unwrap()).collect();
    // Before any answer, the install's first request (for BOOT's chunks) asks for at most two
    // chunk sizes; once the round trip is measured, requests ask for more than twice that (a
    // budget of one chunk size would take one chunk per request).
    assert!(ranged[0].range_len().unwrap() <= 2 * CHUNK, "{ranged:?}");
    let largest = lengths.iter().max().copied().unwrap_or(0);
    assert!(largest > 4 * CHUNK, "{lengths:?}");
    assert!(
        lengths.len() * 2 < stored,
        "{} requests for {stored} chunks: {lengths:?}",
        lengths.len()
    );
}

#[test]
fn on_a_slow_link_requests_stay_near_what_it_carries_in_a_round_trip() {
    if !tools_present() {
        return;
    }
    const RATE: u64 = 1_000_000;
    let (requests, _) = install_everything_changed(|server, _, _| {
        // 50 ms away, over a link of 1 MB/s that every body shares.
        server.set_latency(Duration::from_millis(50));
        server.set_link_rate(RATE);
    });
    let lengths: Vec<u64> = requests.iter().map(|r| r.range_len().unwrap()).collect();
    // The workers could take far more in a round trip than the link brings: the budget is
    // two chunk sizes plus about four round trips' worth of the link (at 1 MB/s, 200 KB per
    // 50 ms), not the whole rest of the image in one request.
    let largest = lengths.iter().max().copied().unwrap_or(0);
    assert!(largest <= 12 * CHUNK, "{lengths:?}");
    let total: u64 = lengths.iter().sum();
    assert!(
        total > 24 * CHUNK,
        "ROOT's chunks are {total} bytes: {lengths:?}"
    );
}
