//! The update metadata of an A/B image-based host, compatible with Bottlerocket's
//! `update_metadata` crate: the `manifest.json` schema, seeds and waves, wave policies, the
//! choice of an update, and migration paths. No I/O beyond (de)serialising.
//!
//! - [`Manifest`]: parse strictly ([`Manifest::from_json`]; errors name the field, e.g.
//!   `updates[2].waves: duplicate wave key '512'`), serialise stably ([`Manifest::to_json`];
//!   serialising what was parsed is a fixed point), and edit ([`Manifest::add_update`],
//!   [`Manifest::remove_update`], [`Manifest::set_max_version`], [`Manifest::set_waves`],
//!   [`Manifest::add_migration`]).
//! - [`Waves`] and [`Seed`]: when a node may take an update ([`Waves::ready_time`],
//!   [`Waves::is_ready`]).
//! - [`WavePolicy`]: Bottlerocket's wave TOML files, turned into [`Waves`] from a release start.
//! - [`Manifest::choose`] and [`Manifest::applicable_updates`]: which update a node takes.
//! - [`Manifest::migration_path`]: the migrations between two versions, either way.
//! - [`ChunkIndex`]: an image cut into independently compressed chunks, and
//!   [`ChunkIndexes`], the optional manifest field that points at them.
//!
//! # Where we differ from Bottlerocket
//!
//! - **Position within the wave.** Wave `j` covers seeds `[key_j, key_{j+1})`. Seed `s` in it
//!   is ready at `start_j + (start_{j+1} - start_j) * (s - key_j) / (key_{j+1} - key_j)`.
//!   Bottlerocket's updog multiplies by the absolute seed `s` instead, which pushes most seeds
//!   of a later wave to (or past) its end; we spread each wave evenly over its time. A seed
//!   below the first key is ready at once, and in the last wave every seed is ready at its
//!   start, as in Bottlerocket.
//! - **Strict parsing.** Duplicate keys, wave keys that are not decimal seeds in 0..=2047,
//!   wave times that do not strictly increase with the seed, unparsable versions, malformed or
//!   non-ascending migration keys are errors (Bottlerocket silently keeps the last duplicate).
//! - **Failed versions.** [`ChoiceOptions::exclude`] lists versions whose first boot failed;
//!   they are not offered again unless named with `--image` ([`ChoiceOptions::image`]).
//! - A wave policy's last wave must be 100%: it releases every remaining seed at its start.
//!
//! # Example
//!
//! ```
//! use update_metadata::{ChoiceOptions, Manifest, Node, Seed, WavePolicy};
//!
//! let manifest: Manifest = r#"{
//!   "updates": [{
//!     "variant": "aws-k8s-1.29", "arch": "x86_64",
//!     "version": "1.20.1", "max_version": "1.20.1",
//!     "waves": {"0": "2030-01-01T01:00:00Z", "1024": "2030-01-03T00:00:00Z"},
//!     "images": {"boot": "boot.ext4.lz4", "root": "root.ext4.lz4", "hash": "root.verity.lz4"}
//!   }],
//!   "migrations": {"(1.20.0, 1.20.1)": ["migrate_v1.20.1_example.lz4"]}
//! }"#.parse()?;
//!
//! let node = Node {
//!     variant: "aws-k8s-1.29".into(),
//!     arch: "x86_64".into(),
//!     version: "1.20.0".parse()?,
//!     seed: Seed::new(512)?,
//! };
//! // Seed 512 is half-way through the first wave: ready a day later, on 2 January at 00:30.
//! let options = ChoiceOptions::default();
//! assert!(manifest.choose(&node, "2030-01-02T00:00:00Z".parse()?, &options).is_none());
//! let update = manifest.choose(&node, "2030-01-02T01:00:00Z".parse()?, &options).unwrap();
//! let path = manifest.migration_path(&node.version, &update.version)?;
//! assert_eq!(path.migrations[0].as_str(), "migrate_v1.20.1_example.lz4");
//!
//! // A publisher sets waves from a policy.
//! let waves = WavePolicy::bottlerocket_default().to_waves("2030-01-01T00:00:00Z".parse()?)?;
//! assert_eq!(waves.iter().count(), 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p update-metadata` (or `cargo test`). Unit tests sit with each module:
//! every branch of the choice and of the migration walk, parse errors that name the field, the
//! spread of the default policy, and property tests (a path reversed is the path back; any
//! valid policy releases `floor(p_i * 2048)` ± 1 seeds when wave `i+1` starts and grows
//! linearly within a wave; serialising what was parsed is a fixed point). `tests/fixture.rs`
//! parses and round-trips the Bottlerocket-style manifest in `tests/data/`.

#![deny(missing_docs)]

mod choice;
pub mod chunks;
pub mod error;
mod manifest;
mod migration;
mod names;
mod parse;
mod policy;
mod waves;

pub use choice::{ChoiceOptions, Node, VersionLock};
pub use chunks::{ChunkIndex, ChunkIndexes};
pub use error::{Error, Result};
pub use manifest::{Images, Manifest, Update};
pub use migration::{Direction, MigrationPath};
pub use names::{MigrationName, TargetName};
pub use policy::{DEFAULT_POLICY, PolicyWave, WavePolicy};
pub use waves::{SEED_COUNT, Seed, Waves};
