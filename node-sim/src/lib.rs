//! A node in a directory (design section 2): the firmware, the kernel and systemd of a real
//! node, emulated over a real GPT disk image so that the demo and the end-to-end tests run the
//! real update agent against something that boots only what was really written.
//!
//! One [`Node::boot`] does, in order:
//!
//! 1. **bootloader**: repairs a torn partition-table copy, makes signpost's gptprio choice,
//!    spends the chosen set's try (written before booting) and records the set in
//!    `run/booted-set`;
//! 2. **kernel**: reads the verity parameters from the chosen BOOT and checks every block of
//!    ROOT against HASH with them; a mismatch fails the boot, as dm-verity would;
//! 3. exposes the booted image's `etc/os-release`, `usr/share/updog/root.json` and
//!    `etc/twinset/health-checks.toml` under the sysroot;
//! 4. **migrator**: brings the datastore to the booted version (or falls back to the kept copy);
//! 5. **health gate**: runs the image's checks, each with a timeout;
//! 6. **mark-successful-boot** and the datastore confirmed, when the set was not marked yet.
//!
//! A failure before the mark asks for a reboot, and the next boot falls back to the known-good
//! set. A failing check on a set already marked is reported, never a reason to reboot. A version
//! whose first boot failed is written to `var/lib/updog/failed-versions.json`, which updog reads.
//!
//! ```no_run
//! let node = node_sim::Node::open(std::path::Path::new("/tmp/node"), None)?;
//! let boots = node.boot_until_settled(3)?;
//! println!("{:?}", boots.last().map(|b| b.outcome));
//! # Ok::<(), node_sim::Error>(())
//! ```
//!
//! # Testing
//!
//! `cargo nextest run -p node-sim`. The end-to-end tests publish real releases, serve them on
//! loopback and drive the real `updog`, `signpost` and `node-sim` binaries; the power-cut test
//! cuts at every durable point of an update and of a boot (see the `powercut` crate).
#![deny(missing_docs)]

mod boot;
mod create;
mod error;
pub mod health;
pub mod record;

pub use boot::{Node, partition_device};
pub use create::{CreateSpec, REBOOT_COMMAND, create};
pub use error::{Error, Result};
pub use record::{BootRecord, Outcome};
