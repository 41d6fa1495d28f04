//! The bodies of the fuzz targets: one `pub fn <target>(data: &[u8])` per parser of untrusted
//! bytes, each calling the project's real parser (or writer) and asserting its invariants.
//!
//! The cargo-fuzz project in `fuzz/` (outside the workspace: libFuzzer needs its own build
//! flags) wraps each function in a two-line `fuzz_target!`. The same functions run here on
//! stable Rust: `tests/replay.rs` feeds them every saved input of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`, so CI replays what the fuzzer found without a nightly
//! compiler or a sanitizer.
//!
//! | target | input | invariant |
//! |---|---|---|
//! | [`manifest()`] | `manifest.json` | parses or errors; what parses re-serialises to a fixed point and re-parses equal; choice and migration paths never panic |
//! | [`updog_config()`] | `etc/updog.toml` | parses or errors on one line; what parses keeps its URLs' trailing slash and seed range |
//! | [`gpt()`] | a flag byte (recompute which copies' CRCs), then the GPT sectors of a disk image | a read never panics; a table it accepts gives both sets, repairs to a clean table that reads back equal, and takes a transition |
//! | [`datastore()`] | a key name, a metadata key name, a value file | a key that parses round-trips through its display form and its on-disk path (one plain component per segment); a value file reads back as the JSON it holds |
//! | [`migration()`] | a declarative migration document | parses or errors; re-serialises equal; forward then backward on a sample datastore gives back `live/` byte for byte |
//! | [`api_status()`] | `run/update-status.json` and the status the API serves | parses or is ignored; round-trips; deriving the state from any disk never panics and matches the disk |
//! | [`chunk_index()`] | `<image>.chunks.json` | parses or errors on one line; re-serialises to a fixed point; one chunk per `chunk_size`, stored chunks back to back inside the chunk file, none beyond lz4's worst case |
//! | [`partition_writer()`] | the lz4 stream of an image | decompresses or errors; never writes a byte outside the partition |
//!
//! Adding a target: a module here with its `pub fn` and an entry in [`TARGETS`], a two-line
//! `fuzz/fuzz_targets/<target>.rs` with its `[[bin]]` in `fuzz/Cargo.toml`, and seeds in
//! `fuzz/corpus/<target>/`.
//!
//! # Testing
//!
//! `cargo nextest run -p fuzz-targets` replays every saved input (see docs/security.md,
//! "Fuzzing record", for the fuzzing runs themselves).

#![deny(missing_docs)]
// A fuzz target reports a broken invariant by panicking: that is how libFuzzer sees a crash.
#![allow(clippy::unwrap_used, clippy::panic)]

pub mod api_status;
pub mod chunk_index;
pub mod datastore;
pub mod gpt;
pub mod manifest;
pub mod migration;
pub mod partition_writer;
mod scratch;
pub mod updog_config;

pub use api_status::api_status;
pub use chunk_index::chunk_index;
pub use datastore::datastore;
pub use gpt::gpt;
pub use manifest::manifest;
pub use migration::migration;
pub use partition_writer::partition_writer;
pub use updog_config::updog_config;

/// A fuzz target: takes any bytes, panics only when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by the name of its corpus directory (and of its cargo-fuzz binary).
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("updog_config", updog_config),
    ("gpt", gpt),
    ("datastore", datastore),
    ("migration", migration),
    ("api_status", api_status),
    ("partition_writer", partition_writer),
    ("chunk_index", chunk_index),
];
