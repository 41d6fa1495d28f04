//! The `chunk-size` part: what 64 KiB to 4 MiB chunks would download, and cost in index and
//! requests, for the delta part's 10 % release.

use std::path::Path;

/// What chunks of 64 KiB to 4 MiB would cost for an update from `old` to `new` (raw images).
pub(crate) fn chunk_size_table(old: &Path, new: &Path) {
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
