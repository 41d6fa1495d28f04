//! Replays every saved fuzzing input through its target on stable Rust: the corpus each target
//! was fuzzed into (`fuzz/corpus/<target>/`) and the inputs that once broke it
//! (`fuzz/regressions/<target>/`). A target without a corpus fails the test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(name: &str) {
    let (_, target) = fuzz_targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap();
    let corpus = inputs(&fuzz_dir().join("corpus").join(name));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{name}/ is missing or empty: every target keeps its corpus"
    );
    let regressions = inputs(&fuzz_dir().join("regressions").join(name));
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| target(&data));
        assert!(outcome.is_ok(), "{name} broke on {}", file.display());
    }
}

#[test]
fn every_target_has_a_test_here_and_a_cargo_fuzz_binary() {
    let here = include_str!("replay.rs");
    let fuzz_manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for (name, _) in fuzz_targets::TARGETS {
        assert!(
            here.contains(&format!("fn {name}()")),
            "no replay test for {name}"
        );
        assert!(
            fuzz_manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        let wrapper = fuzz_dir().join(format!("fuzz_targets/{name}.rs"));
        let text = std::fs::read_to_string(&wrapper).unwrap();
        assert!(
            text.contains(&format!("fuzz_targets::{name}(")),
            "{}",
            wrapper.display()
        );
    }
}

#[test]
fn manifest() {
    replay("manifest");
}

#[test]
fn updog_config() {
    replay("updog_config");
}

#[test]
fn gpt() {
    replay("gpt");
}

#[test]
fn datastore() {
    replay("datastore");
}

#[test]
fn migration() {
    replay("migration");
}

#[test]
fn api_status() {
    replay("api_status");
}

#[test]
fn partition_writer() {
    replay("partition_writer");
}

#[test]
fn chunk_index() {
    replay("chunk_index");
}
