//! The bench's setup: the ROOT tree copied from /usr, releases built from it and published,
//! the published repository's files and chunk indexes, the server's chunk bytes, set B filled
//! with garbage before each install, and the environment variables with defaults.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use testsys::{BuiltRelease, HttpServer, PublishOptions, TestNode, TestRepo};
use update_metadata::ChunkIndex;

/// Publishing with the default chunk size.
pub(crate) fn chunked_options() -> PublishOptions {
    PublishOptions {
        chunk_size: Some(env_or(
            "UPDOG_BENCH_CHUNK_SIZE",
            update_metadata::chunks::DEFAULT_CHUNK_SIZE,
        )),
        ..PublishOptions::default()
    }
}

/// Builds a release whose ROOT holds `tree`, of `mib` MiB.
pub(crate) fn build(
    repo: &TestRepo,
    work: &Path,
    version: &str,
    tree: &Path,
    mib: u64,
) -> BuiltRelease {
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

pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn target_file(repo: &TestRepo, suffix: &str) -> String {
    std::fs::read_dir(repo.base().join("targets"))
        .expect("targets")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(suffix))
        .unwrap_or_else(|| panic!("no target ending in {suffix}"))
}

pub(crate) fn index_of(repo: &TestRepo, version: &str, image: &str) -> ChunkIndex {
    let name = target_file(repo, &format!("-{version}-{image}.chunks.json"));
    ChunkIndex::from_json(&std::fs::read(repo.base().join("targets").join(name)).expect("index"))
        .expect("parse index")
}

/// Fetches each chunk file of `version` once, outside the timings and the counts: the bench's
/// server from memory reads a file whole at its first request, which no install should wait for.
pub(crate) fn warm_chunk_files(server: &HttpServer, repo: &TestRepo, version: &str) {
    let infix = format!("-{version}-");
    for entry in std::fs::read_dir(repo.base().join("targets")).expect("targets") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.contains(&infix) && name.ends_with(".chunks") {
            let url = format!("{}targets/{name}", server.url());
            let fetched = std::process::Command::new("curl")
                .args(["-sS", "--fail", "-o", "/dev/null", &url])
                .status()
                .expect("run curl");
            assert!(fetched.success(), "fetching {url} failed");
        }
    }
    server.clear_requests();
}

/// Body bytes the server sent for chunk files.
pub(crate) fn chunk_bytes(server: &HttpServer) -> u64 {
    server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(".chunks"))
        .map(|r| r.body_bytes)
        .sum()
}

/// Fills set B's partitions with a byte pattern that matches no chunk (outside the timings).
pub(crate) fn garbage_b(node: &TestNode) {
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

/// Copies regular files from /usr into `dst` until `budget` bytes, or `room` bytes counted in
/// whole 4 KiB blocks (files, and one block per directory). Returns both counts.
pub(crate) fn fill_tree(dst: &Path, budget: u64, room: u64) -> (u64, u64) {
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
