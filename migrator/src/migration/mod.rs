//! Migrations, both kinds, and running them at boot.
//!
//! A migration target whose name ends in `.json.lz4` is a declarative document;
//! any other is an executable. Both are lz4 frames, verified by tough against the
//! cached targets.json before anything reads them.

pub mod declarative;
pub(crate) mod executable;
pub mod run;

use crate::error::{self, Result};
use snafu::ResultExt;
use std::fmt;
use std::io::Read;

/// Which way a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Towards a newer version.
    Forward,
    /// Towards an older version.
    Backward,
}

impl Direction {
    /// The executable migration's flag: `--forward` or `--backward`.
    pub fn flag(self) -> &'static str {
        match self {
            Direction::Forward => "--forward",
            Direction::Backward => "--backward",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        })
    }
}

impl From<update_metadata::Direction> for Direction {
    fn from(d: update_metadata::Direction) -> Self {
        match d {
            update_metadata::Direction::Forward => Direction::Forward,
            update_metadata::Direction::Backward => Direction::Backward,
        }
    }
}

/// The two kinds of migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON document of operations (`*.json.lz4`).
    Declarative,
    /// A program run with Bottlerocket's arguments (anything else).
    Executable,
}

impl Kind {
    /// The kind a migration target's name says.
    pub fn of(name: &str) -> Kind {
        if name.ends_with(".json.lz4") || name.ends_with(".json") {
            Kind::Declarative
        } else {
            Kind::Executable
        }
    }
}

/// Decompresses a migration target (an lz4 frame); bounded so that a hostile frame cannot
/// exhaust memory (the compressed bytes were verified, but be frugal anyway).
pub(crate) fn decompress(name: &str, compressed: &[u8]) -> Result<Vec<u8>> {
    const LIMIT: u64 = 256 << 20;
    let mut out = Vec::new();
    lz4_flex::frame::FrameDecoder::new(compressed)
        .take(LIMIT + 1)
        .read_to_end(&mut out)
        .context(error::DecompressSnafu { name })?;
    if out.len() as u64 > LIMIT {
        return Err(std::io::Error::other("more than 256 MiB once decompressed"))
            .context(error::DecompressSnafu { name });
    }
    Ok(out)
}

/// Reads a declarative migration target as a node does: its lz4 frame decompressed within the
/// node's bound (256 MiB), then parsed and checked ([`declarative::Document::from_slice`]).
/// `name` names it in errors. Publishers call this to refuse what nodes would refuse.
pub fn read_declarative(name: &str, compressed: &[u8]) -> Result<declarative::Document> {
    declarative::Document::from_slice(name, &decompress(name, compressed)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_name() {
        assert_eq!(
            Kind::of("migrate_v1.1.0_add-motd.json.lz4"),
            Kind::Declarative
        );
        assert_eq!(Kind::of("migrate_v1.1.0_rename-ntp.lz4"), Kind::Executable);
    }

    #[test]
    fn decompresses_frames_and_refuses_garbage() {
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut enc, b"hello").unwrap();
        assert_eq!(decompress("m", &enc.finish().unwrap()).unwrap(), b"hello");
        let err = decompress("m", b"not lz4").unwrap_err().to_string();
        assert!(
            err.starts_with("Failed to decompress migration 'm'"),
            "{err}"
        );
    }
}
